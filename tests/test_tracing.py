"""Request ids carried into log lines and outbox rows, and JSON log lines (issue 20;
bookwise.tracing, bookwise.health)."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from bookwise.jobs import runner_for
from bookwise.notifications.models import Notification
from bookwise.tracing import RequestIdFilter, json_formatter, request_id_from, traced
from tests.conftest import TEST_NOW, Loaded

PARIS = ZoneInfo("Europe/Paris")


def start_at(hour: int, days: int = 2) -> str:
    day = TEST_NOW.astimezone(PARIS).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, tzinfo=PARIS).isoformat()


def test_the_messages_a_request_plans_carry_its_id(scenario_app: Any, scenario: Loaded) -> None:
    client = scenario_app.test_client()
    booked = client.post(
        "/api/v1/calendars/acme/services/visit/bookings",
        json={"start": start_at(10), "client": {"name": "P", "email": "p@example.org"}},
        headers={"X-Request-ID": "nginx-4f2a9c"},
    )
    assert booked.status_code == 201, booked.get_json()
    assert booked.headers["X-Request-ID"] == "nginx-4f2a9c"
    with scenario.database.sessions() as session:
        ids = set(session.scalars(sa.select(Notification.request_id)))
    assert ids == {"nginx-4f2a9c"}
    # Without one, or with one that could break a log line, the request gets its own.
    made = client.get("/healthz").headers["X-Request-ID"]
    assert len(made) == 32 and made != client.get("/healthz").headers["X-Request-ID"]
    hostile = client.get("/healthz", headers={"X-Request-ID": "a b\tc"}).headers["X-Request-ID"]
    assert " " not in hostile and len(hostile) == 32


def test_a_scheduled_jobs_run_goes_by_its_own_id(scenario: Loaded, clock: Any) -> None:
    """What a job's run logs and plans (its messages: their default) goes by ``job-<name>-...``,
    and outside it by nothing."""
    from bookwise.plugins import Every, Job
    from bookwise.tracing import current_request_id

    seen: list[str | None] = []

    def note(_context: Any) -> None:
        seen.append(current_request_id())

    job = Job("trace-me", note, Every(60), once=True)
    runner_for(scenario.settings, scenario.database, clock=clock, jobs=[job]).run_now("trace-me")
    assert len(seen) == 1 and (seen[0] or "").startswith("job-trace-me-")
    assert current_request_id() is None


def test_json_lines_carry_the_request_id() -> None:
    record = logging.LogRecord(
        "bookwise.test", logging.WARNING, __file__, 1, "hello %s", ("you",), None
    )
    with traced("req-123"):
        RequestIdFilter().filter(record)
    line = json.loads(json_formatter().format(record))
    assert line["message"] == "hello you" and line["request_id"] == "req-123"
    assert line["level"] == "WARNING" and line["logger"] == "bookwise.test" and line["time"]


@pytest.mark.parametrize("header", ["", "x" * 65, "a\nb", "\u00e9t\u00e9"])
def test_an_id_that_could_break_a_log_line_is_replaced(header: str) -> None:
    made = request_id_from(header)
    assert made != header and len(made) == 32
