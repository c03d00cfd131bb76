"""A read-only copy of the database for the slot searches (issue 20, "Beyond one machine").

``database_replica_url`` is tested as the issue asks: a second address of the same database (the
same SQLite file, the same PostgreSQL schema), read through its own engine, which refuses to
write. The statements each engine runs tell which one served what.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from bookwise import web
from bookwise.app import create_app
from bookwise.config import ConfigError, load_settings
from bookwise.database import open_database
from tests.conftest import TEST_NOW, Loaded, base_config, write_config

PARIS = ZoneInfo("Europe/Paris")
URL = "/api/v1/calendars/acme/services/consult"


class Statements:
    """The statements an engine runs, while listening."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.seen: list[str] = []

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.seen.append(" ".join(statement.split()))

    def touching(self, table: str) -> list[str]:
        return [s for s in self.seen if f" {table}" in s]


@pytest.fixture
def replica_app(scenario: Loaded, clock: Any) -> Iterator[Any]:
    settings = dataclasses.replace(
        scenario.settings, database_replica_url=scenario.settings.database_url
    )
    app = create_app(settings, clock=clock)
    app.config.update(TESTING=True)
    yield app
    app.extensions["bookwise"].database.dispose()


@pytest.fixture
def engines(replica_app: Any) -> Iterator[tuple[Statements, Statements]]:
    database = replica_app.extensions["bookwise"].database
    primary = Statements(database.engine)
    replica = Statements(database.replica.kw["bind"])
    for listener in (primary, replica):
        sa.event.listen(listener.engine, "before_cursor_execute", listener)
    yield primary, replica
    for listener in (primary, replica):
        sa.event.remove(listener.engine, "before_cursor_execute", listener)


def day_after(days: int) -> str:
    return (TEST_NOW.astimezone(PARIS).date() + timedelta(days=days)).isoformat()


def test_slots_are_read_from_the_replica_and_bookings_written_to_the_primary(
    replica_app: Any, engines: tuple[Statements, Statements]
) -> None:
    primary, replica = engines
    client = replica_app.test_client()
    day = day_after(2)
    slots = client.get(f"{URL}/slots?from={day}&to={day}").get_json()["slots"]
    assert slots
    assert replica.touching("bookings") and replica.touching("working_hours")
    assert not primary.touching("bookings") and not primary.touching("working_hours")

    primary.seen.clear()
    replica.seen.clear()
    made = client.post(
        f"{URL}/bookings",
        json={
            "start": slots[0]["start"],
            "client": {"name": "Zoé", "email": "zoe@example.org"},
            "answers": {"topic": "Maths"},
            "consent": True,
        },
    )
    assert made.status_code == 201, made.get_json()
    assert any(s.startswith("INSERT INTO bookings") for s in primary.seen)
    # The booking checks its time on the primary, in its write transaction, never the copy.
    assert primary.touching("working_hours") and replica.seen == []

    # The copy (here the same database) then shows the time taken.
    again = client.get(f"{URL}/slots?from={day}&to={day}").get_json()["slots"]
    assert (
        slots[0]["start"] not in [s["start"] for s in again if s["remaining"] == 3]
        or len(again) < len(slots)
        or again[0]["remaining"] < slots[0]["remaining"]
    )


def test_the_public_page_reads_its_times_from_the_replica(
    replica_app: Any, engines: tuple[Statements, Statements]
) -> None:
    primary, replica = engines
    page = replica_app.test_client().get(f"/acme/consult?day={day_after(2)}")
    assert page.status_code == 200
    assert replica.touching("bookings")
    assert not primary.touching("working_hours")


def test_the_replica_refuses_to_write(replica_app: Any) -> None:
    database = replica_app.extensions["bookwise"].database
    with database.replica() as session, pytest.raises(DBAPIError) as refused:
        session.execute(sa.text("UPDATE calendars SET name = 'x'"))
        session.commit()
    assert "read" in str(refused.value.orig).lower()  # read-only (either database's words)
    with database.sessions() as session:
        assert "x" not in session.scalars(sa.text("SELECT name FROM calendars")).all()


def test_readiness_checks_the_replica(replica_app: Any, scenario: Loaded) -> None:
    client = replica_app.test_client()
    answer = client.get("/readyz").get_json()
    assert answer["checks"]["replica"] == {"ok": True}


def test_an_unreachable_replica_leaves_the_searches_to_the_primary(
    scenario: Loaded, clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A replica down does not take the site down: the slots are read from the primary (said
    once in the log, then the replica is left alone a while), and the process stays ready,
    saying the replica does not answer."""
    settings = dataclasses.replace(
        scenario.settings,
        database_replica_url="postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2",
    )
    app = create_app(settings, clock=clock)
    web._replica_down_until[0] = 0.0
    try:
        client = app.test_client()
        day = day_after(2)
        with caplog.at_level("WARNING", logger="bookwise.web"):
            first = client.get(f"{URL}/slots?from={day}&to={day}")
            second = client.get(f"{URL}/slots?from={day}&to={day}")
        assert first.status_code == second.status_code == 200
        assert first.get_json()["slots"] and first.get_json() == second.get_json()
        warnings = [r for r in caplog.records if "does not answer" in r.getMessage()]
        assert len(warnings) == 1  # then left alone for REPLICA_REST seconds
        answer = client.get("/readyz")
        assert answer.status_code == 200
        assert answer.get_json()["checks"]["replica"]["ok"] is False
        assert answer.get_json()["checks"]["replica"]["reads"] == "primary"
    finally:
        web._replica_down_until[0] = 0.0
        app.extensions["bookwise"].database.dispose()


def test_a_bad_replica_address_is_named(tmp_path: Path, database_url: str) -> None:
    values = base_config(tmp_path, database_url) | {"database_replica_url": "nothing://here"}
    settings = load_settings(write_config(tmp_path / "c.yaml", values), environ={})
    with pytest.raises(ConfigError, match=r"c\.yaml: database_replica_url 'nothing://here'"):
        open_database(settings)


def test_the_pool_is_configured(tmp_path: Path, database_url: str) -> None:
    values = base_config(tmp_path, database_url) | {
        "database_pool": {"size": 3, "max_overflow": 2, "timeout": 7, "recycle": 600}
    }
    settings = load_settings(write_config(tmp_path / "c.yaml", values), environ={})
    database = open_database(settings)
    try:
        pool = database.engine.pool
        if database.engine.dialect.name == "postgresql":
            assert isinstance(pool, sa.QueuePool)
            assert (pool.size(), pool._max_overflow, pool._timeout, pool._recycle) == (3, 2, 7, 600)
        else:  # SQLite keeps its own pool: the settings are PostgreSQL's
            assert settings.database_pool.size == 3
    finally:
        database.dispose()
    with pytest.raises(ConfigError, match="database_pool"):
        load_settings(
            write_config(
                tmp_path / "bad.yaml",
                base_config(tmp_path, database_url) | {"database_pool": {"size": 0}},
            ),
            environ={},
        )


def test_the_environment_names_the_replica(tmp_path: Path, database_url: str) -> None:
    values = base_config(tmp_path, database_url)
    settings = load_settings(
        write_config(tmp_path / "c.yaml", values),
        environ={"BOOKWISE_DATABASE_REPLICA_URL": database_url},
    )
    assert settings.database_replica_url == database_url
