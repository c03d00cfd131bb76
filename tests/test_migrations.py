"""The migrations build exactly the schema the models describe, on every database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from bookwise import migrate
from bookwise.db import make_engine
from bookwise.models import metadata


def test_migrations_match_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert migrate.schema_state(engine) == "current"
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, metadata)
        assert differences == [], (
            "the models changed without a migration: run "
            "`alembic revision --autogenerate` (see docs/development.md)"
        )
    finally:
        engine.dispose()


def test_an_empty_database_is_reported_empty(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    assert migrate.schema_state(engine) == "empty"
    migrate.upgrade(engine)
    assert migrate.schema_state(engine) == "current"
    engine.dispose()


def test_upgrading_keeps_existing_bookings(tmp_path) -> None:
    """A database at the first revision, holding a booking with its consent and history, keeps
    every row through every later migration. (SQLite: where altering a table means copying it
    and dropping the original.)"""
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine, "0001")
    now = "2026-01-01 09:00:00.000000"
    with engine.begin() as connection:
        run = connection.exec_driver_sql
        run(
            "INSERT INTO calendars (id, slug, name, description, timezone, default_locale, "
            "published, search_indexing, sign_in_required, show_business_timezone, "
            f"embed_origins, created_at, updated_at) VALUES (1, 'c', 'C', '{{}}', 'UTC', 'en', "
            f"1, 1, 0, 0, '[]', '{now}', '{now}')"
        )
        run(
            "INSERT INTO staff_members (id, calendar_id, slug, name, email, tags, bookable, "
            f"invitation, uses_calendar_hours, created_at, updated_at) VALUES (1, 1, 's', 'S', "
            f"'s@x.org', '[]', 1, 'accepted', 1, '{now}', '{now}')"
        )
        run(
            f"INSERT INTO time_off (id, staff_id, start_at, end_at, created_at) VALUES "
            f"(1, 1, '{now}', '2026-01-02 00:00:00.000000', '{now}')"
        )
        run(f"INSERT INTO workflows (id, slug, archived, created_at) VALUES (1, 'w', 0, '{now}')")
        run(
            "INSERT INTO workflow_versions (id, workflow_id, number, source_text, definition, "
            f"content_hash, origin, created_at) VALUES (1, 1, 1, 'x', '{{\"id\": \"w\"}}', 'h', "
            f"'file', '{now}')"
        )
        run(
            f"INSERT INTO services (id, calendar_id, workflow_id, active, pool_by_tags, "
            f"created_at, updated_at) VALUES (1, 1, 1, 1, 1, '{now}', '{now}')"
        )
        run(f"INSERT INTO clients (id, calendar_id, name, created_at) VALUES (1, 1, 'K', '{now}')")
        run(
            "INSERT INTO bookings (id, uid, calendar_id, service_id, workflow_version_id, "
            "staff_id, client_id, start_at, end_at, blocked_from, blocked_until, state, "
            "holds_slot, answers, locale, timezone, manage_token, sequence, source, created_at, "
            f"updated_at) VALUES (1, 'u1', 1, 1, 1, 1, 1, '2026-02-01 09:00:00.000000', "
            "'2026-02-01 10:00:00.000000', '2026-02-01 09:00:00.000000', "
            "'2026-02-01 10:00:00.000000', 'confirmed', 1, '{}', 'en', 'UTC', 't', 0, "
            f"'public', '{now}', '{now}')"
        )
        run(
            f"INSERT INTO consents (id, booking_id, text, text_hash, locale, given_at) VALUES "
            f"(1, 1, 'yes', 'h', 'en', '{now}')"
        )
        run(
            f"INSERT INTO booking_history (id, booking_id, at, action, actor, details) VALUES "
            f"(1, 1, '{now}', 'created', 'client', '{{}}')"
        )
    migrate.upgrade(engine)
    with engine.connect() as connection:
        for table in ("bookings", "consents", "booking_history", "time_off", "staff_members"):
            count = connection.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
            assert count == 1, table
        assert connection.execute(sa.text("SELECT slot_key, capacity FROM bookings")).one() == (
            "u1",
            1,
        )
        triggers = (
            connection.execute(sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
            .scalars()
            .all()
        )
        # The double-booking guards, and the slot cache's versions (0022) on every table the
        # slots are found from.
        watched = ("bookings", "time_off", "busy_times", "waitlist_entries", "working_hours")
        assert sorted(triggers) == sorted(
            [
                "bookings_no_double_booking_insert",
                "bookings_no_double_booking_update",
                *(f"slots_{t}_{e}" for t in watched for e in ("insert", "update", "delete")),
            ]
        )
    engine.dispose()


def test_calendars_keep_every_plugin_through_the_plugins_migration(database_url: str) -> None:
    """0008 adds ``calendars.plugins``: a calendar made before it uses every plugin enabled on
    the instance (NULL), and a choice of none (``[]``) stays apart from no choice (NULL)."""
    import sqlalchemy as sa
    from alembic import command
    from sqlalchemy.orm import Session

    from bookwise.calendars.models import Calendar

    def downgrade(engine: sa.Engine, revision: str) -> None:
        config = migrate.alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, revision)

    engine = make_engine(database_url)
    try:
        downgrade(engine, "0007")
        with engine.connect() as connection:
            columns = {c["name"] for c in sa.inspect(connection).get_columns("calendars")}
        assert "plugins" not in columns
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO calendars (slug, name, description, timezone, default_locale, "
                    "published, search_indexing, sign_in_required, show_business_timezone, "
                    "embed_origins, created_at, updated_at) VALUES ('old', 'Old', '{}', 'UTC', "
                    "'en', true, true, false, false, '[]', :at, :at)"
                ),
                {"at": "2026-01-01 09:00:00"},
            )
        migrate.upgrade(engine)
        with Session(engine) as session:
            old = session.scalars(sa.select(Calendar)).one()
            assert old.plugins is None and old.uses_plugin("jitsi")
            session.add_all(
                [
                    Calendar(slug="none", name="None", timezone="UTC", plugins=[]),
                    Calendar(slug="some", name="Some", timezone="UTC", plugins=["jitsi"]),
                    Calendar(slug="every", name="Every", timezone="UTC", plugins=None),
                ]
            )
            session.commit()
        with Session(engine) as session:
            stored = {c.slug: c for c in session.scalars(sa.select(Calendar))}
            assert stored["none"].plugins == [] and not stored["none"].uses_plugin("jitsi")
            assert stored["some"].plugins == ["jitsi"] and stored["some"].uses_plugin("jitsi")
            assert not stored["some"].uses_plugin("sms_http")
            # No choice is SQL NULL (not JSON null), whether never set or set to None.
            unset = session.scalars(
                sa.select(Calendar.slug).where(Calendar.plugins.is_(None)).order_by(Calendar.slug)
            ).all()
            assert unset == ["every", "old"]
    finally:
        migrate.upgrade(engine)
        engine.dispose()


def test_bookwise_db_says_where_the_schema_stands_and_upgrades_it(
    bookwise_cli: Any, tmp_path: Path
) -> None:
    from tests.conftest import base_config, write_config

    url = f"sqlite:///{tmp_path / 'new.db'}"
    config = str(write_config(tmp_path / "c.yaml", base_config(tmp_path, url)))
    head = migrate.head_revision()
    empty = bookwise_cli("db", "current", "--config", config)
    assert (
        empty.exit_code == 1
        and f"empty; the latest is {head}: run bookwise db upgrade" in empty.stdout
    )
    engine = make_engine(url)
    migrate.upgrade(engine, "0018")
    engine.dispose()
    behind = bookwise_cli("db", "current", "--config", config)
    assert behind.exit_code == 1 and f"0018; the latest is {head}" in behind.stdout
    upgraded = bookwise_cli("db", "upgrade", "--config", config)
    assert upgraded.exit_code == 0 and f"database upgraded from 0018 to {head}" in upgraded.stdout
    latest = bookwise_cli("db", "current", "--config", config)
    assert latest.exit_code == 0 and f"{head} (the latest)" in latest.stdout
    again = bookwise_cli("db", "upgrade", "--config", config)
    assert again.exit_code == 0 and "already at the latest migration" in again.stdout


def test_bookwise_db_current_on_every_database(bookwise_cli: Any, config_file: Path) -> None:
    answer = bookwise_cli("db", "current", "--config", str(config_file))
    assert answer.exit_code == 0 and f"{migrate.head_revision()} (the latest)" in answer.stdout
