"""The migrations build exactly the schema the models describe, on every database."""

from __future__ import annotations

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
