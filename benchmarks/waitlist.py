"""A cancellation with 500 people waiting: the time to the first offer (issue 18). Run:

    .venv/bin/python benchmarks/waitlist.py                       # SQLite
    .venv/bin/python benchmarks/waitlist.py postgresql+psycopg://postgres@127.0.0.1/test

One staff member, a one-to-one service with a waitlist. For each of 20 rounds a time is
booked, 500 clients wait for it (each with a client row and encrypted answers; the line is
written in bulk) and the booking is cancelled: measured is the cancellation's whole transaction,
from the cancel to the commit, in which the first in line is offered the place and its message
planned. The baseline is the same cancellation of a service without a waitlist. Median and 95th
percentile.
"""

from __future__ import annotations

import logging
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import availability as base  # noqa: E402

from bookwise import instance  # noqa: E402
from bookwise.bookings.models import Booking, Client, WaitlistEntry  # noqa: E402
from bookwise.bookings.services import (  # noqa: E402
    BookingRequest,
    cancel_booking,
    create_booking,
    find_service,
)
from bookwise.config import load_settings  # noqa: E402
from bookwise.database import Database, open_database, prepare_schema  # noqa: E402
from bookwise.db import unit_of_work  # noqa: E402

WAITING, ROUNDS = 500, 20
WORKFLOW = """id: {id}
name: Benchmark lesson
duration: 30m
booking_window: {{min_notice: 0m, max_ahead: 400d}}
staff: {{tags: [bench]}}
fields:
  - {{id: level, type: text, label: Level}}
notifications: []
{waitlist}
"""
CALENDAR = """calendars:
  - slug: bench
    name: Bench
    timezone: Europe/Paris
    hours: {mon: ["08:00-18:00"], tue: ["08:00-18:00"], wed: ["08:00-18:00"],
            thu: ["08:00-18:00"], fri: ["08:00-18:00"], sat: ["08:00-18:00"]}
    staff:
      - {id: s0, name: Staff 0, email: s0@bench.example, tags: [bench]}
    services:
      - workflow: lesson
      - workflow: plain
"""


def book(database: Database, service: str, start: datetime, now: datetime) -> int:
    with unit_of_work(database.sessions, write=True) as session:
        context = find_service(session, "bench", service)
        values = {"name": "Booked", "email": "booked@bench.example", "level": "x"}
        booking = create_booking(
            session, context, BookingRequest(start=start, values=values), now, plugins=None
        )
        return booking.id


def line_up(database: Database, start: datetime, now: datetime) -> None:
    """500 clients waiting for ``start``, written in bulk."""
    with unit_of_work(database.sessions, write=True) as session:
        context = find_service(session, "bench", "lesson")
        calendar_id, service_id = context.calendar.id, context.service.id
        ids = session.scalars(
            sa.insert(Client).returning(Client.id),
            [
                {
                    "calendar_id": calendar_id,
                    "name": f"Waiting {n}",
                    "email": f"w{n}@bench.example",
                    "locale": "en",
                    "timezone": "Europe/Paris",
                }
                for n in range(WAITING)
            ],
        ).all()
        session.execute(
            sa.insert(WaitlistEntry),
            [
                {
                    "calendar_id": calendar_id,
                    "service_id": service_id,
                    "client_id": client_id,
                    "wanted_from": start,
                    "wanted_until": start,
                    "state": "waiting",
                    "answers": {"level": "b"},
                    "locale": "en",
                    "timezone": "Europe/Paris",
                    "manage_token": "wl-" + secrets.token_urlsafe(30),
                    "created_at": now + timedelta(microseconds=n),
                    "updated_at": now,
                }
                for n, client_id in enumerate(ids)
            ],
        )


def cancel_timed(database: Database, booking_id: int, now: datetime) -> float:
    started = time.perf_counter()
    with unit_of_work(database.sessions, write=True) as session:
        booking = session.get(Booking, booking_id)
        assert booking is not None
        cancel_booking(session, booking, now, role="staff", actor="bench", plugins=None)
    return (time.perf_counter() - started) * 1000


def summary(label: str, times: list[float]) -> None:
    times = sorted(times)
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    print(f"{label}: median {statistics.median(times):.1f} ms, p95 {p95:.1f} ms")


def run(url: str | None) -> None:
    logging.getLogger("bookwise").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / "workflows").mkdir()
        (folder / "workflows" / "lesson.yaml").write_text(
            WORKFLOW.format(id="lesson", waitlist="waitlist: {enabled: true, hold: 2h}")
        )
        (folder / "workflows" / "plain.yaml").write_text(WORKFLOW.format(id="plain", waitlist=""))
        (folder / "calendar.yaml").write_text(CALENDAR)
        with base.target(url, folder) as database_url:
            config = folder / "config.yaml"
            config.write_text(
                f"database_url: '{database_url}'\ninstance_dir: {folder}/instance\n"
                f"workflows: {folder / 'workflows'}\nforms: {ROOT / 'forms'}\n"
            )
            settings = load_settings(config, environ={})
            database = open_database(settings)
            prepare_schema(database)
            instance.sync_workflows(settings, database)
            instance.load_calendar_files(settings, database, [folder / "calendar.yaml"])
            now = datetime.now(UTC).replace(microsecond=0)
            monday = (now + timedelta(days=7 - now.weekday())).date()
            print(f"{'PostgreSQL' if url else 'SQLite'}: {WAITING} waiting, {ROUNDS} rounds")
            with_line, without = [], []
            for n in range(ROUNDS):
                day = monday + timedelta(days=7 * (n // 6) + n % 6)
                start = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
                booked = book(database, "lesson", start, now)
                line_up(database, start, now)
                with_line.append(cancel_timed(database, booked, now))
                with database.sessions() as session:
                    offered = session.scalar(
                        sa.select(sa.func.count())
                        .select_from(WaitlistEntry)
                        .where(WaitlistEntry.wanted_from == start, WaitlistEntry.state == "offered")
                    )
                assert offered == 1, offered
                plain = book(database, "plain", start + timedelta(hours=2), now)
                without.append(cancel_timed(database, plain, now))
            summary(f"cancellation, {WAITING} waiting, to the first offer (committed)", with_line)
            summary("baseline: the same cancellation without a waitlist", without)
            database.engine.dispose()


if __name__ == "__main__":
    run(sys.argv[1] if len(sys.argv) > 1 else None)
