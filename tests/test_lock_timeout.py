"""A booking never hangs behind another's locks: on PostgreSQL it waits at most
LOCK_TIMEOUT_MS for the staff rows, then answers "busy, try again" (503 with Retry-After)
having written nothing; the same request succeeds once the locks are free (issue 13, item 3)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from bookwise.bookings import services
from bookwise.bookings.models import Booking

PARIS = ZoneInfo("Europe/Paris")


def test_a_booking_waiting_too_long_for_a_lock_is_told_to_try_again(
    scenario_app: Any, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = scenario_app.extensions["bookwise"].database.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's row locks; SQLite serialises writers with BEGIN IMMEDIATE")
    monkeypatch.setattr(services, "LOCK_TIMEOUT_MS", 300)
    day = now.astimezone(PARIS).date() + timedelta(days=7)
    start = datetime(day.year, day.month, day.day, 10, tzinfo=PARIS)
    body = {
        "start": start.isoformat(),
        "staff": "ana",
        "client": {"name": "Zoé Martin", "email": "zoe@example.org"},
    }
    api = scenario_app.test_client()
    url = "/api/v1/calendars/acme/services/review/bookings"
    # Another transaction (a booking in progress, an admin's edit) holds Ana's row.
    with engine.connect() as holder:
        holder.execute(sa.text("SELECT id FROM staff_members WHERE slug = 'ana' FOR UPDATE"))
        refused = api.post(url, json=body)
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "2"
        assert refused.get_json()["error"]["code"] == "busy"
        holder.rollback()
    with engine.connect() as connection:
        written = connection.execute(sa.select(sa.func.count()).select_from(Booking)).scalar()
    assert written == 0
    assert api.post(url, json=body).status_code == 201


def test_a_database_too_busy_to_answer_is_a_503_not_a_500(scenario_app: Any, now: datetime) -> None:
    """Past SQLite's busy timeout (another writer holds the database: a long import, a backup)
    or PostgreSQL's lock timeout on any table, any request answers 503 with Retry-After, in
    the API and on the pages, having written nothing; the same request then succeeds."""
    engine = scenario_app.extensions["bookwise"].database.engine
    postgresql = engine.dialect.name == "postgresql"

    @sa.event.listens_for(engine, "connect")
    def wait_little(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # Run after the app's own settings: SQLite's 10 s busy timeout, shortened.
        cursor.execute("SET lock_timeout = 200" if postgresql else "PRAGMA busy_timeout = 200")
        cursor.close()
        if postgresql:
            dbapi_connection.commit()

    engine.dispose()  # new connections, with the timeout above
    day = now.astimezone(PARIS).date() + timedelta(days=7)
    start = datetime(day.year, day.month, day.day, 10, tzinfo=PARIS)
    body = {
        "start": start.isoformat(),
        "client": {"name": "Zoé Martin", "email": "zoe@example.org"},
        "answers": {"topic": "Maths"},
        "consent": True,
    }
    api = scenario_app.test_client()
    url = "/api/v1/calendars/acme/services/consult/bookings"
    holder = sa.create_engine(engine.url).connect()
    try:
        if postgresql:
            holder.execute(sa.text("LOCK TABLE bookings IN ACCESS EXCLUSIVE MODE"))
        else:
            holder.exec_driver_sql("BEGIN IMMEDIATE")
        refused = api.post(url, json=body)
        assert refused.status_code == 503, refused.get_json()
        assert refused.headers["Retry-After"] == "2"
        assert refused.get_json()["error"]["code"] == "busy"
        page = api.get("/acme/consult")
        if not postgresql:  # SQLite's readers do not wait: the page reads
            assert page.status_code == 200, page.status_code
        else:
            assert page.status_code == 503 and page.headers["Retry-After"] == "2"
            assert "try again in a moment" in page.get_data(as_text=True)
        holder.rollback()
    finally:
        holder.close()
    with engine.connect() as connection:
        written = connection.execute(sa.select(sa.func.count()).select_from(Booking)).scalar()
    assert written == 0
    assert api.post(url, json=body).status_code == 201
