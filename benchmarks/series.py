"""Booking a series (issue 18) against the same occurrences booked one by one. Run:

    .venv/bin/python benchmarks/series.py                       # SQLite
    .venv/bin/python benchmarks/series.py postgresql+psycopg://postgres@127.0.0.1/test

The calendar of benchmarks/availability.py (50 staff members, 10-hour days six days a week, a
30-minute service on a 15-minute step) with 2,000 bookings spread over 12 weeks. In one process,
each as median and 95th percentile of 20 runs after a warm-up:

1. a 12-occurrence weekly series: one transaction, one search of the availability engine over
   the series' 12 weeks, 12 bookings written (``create_series``);
2. the same 12 starts booked one by one, each in its own transaction (``create_booking``, as 12
   clients or a client clicking 12 times would);

each rolled back at the end, so that every run finds the same calendar. The ratio says what a
series costs against its occurrences booked singly.
"""

from __future__ import annotations

import logging
import random
import sys
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import availability as base  # noqa: E402

from bookwise import instance  # noqa: E402
from bookwise.availability.services import read_pool  # noqa: E402
from bookwise.bookings.models import Booking, Client  # noqa: E402
from bookwise.bookings.recurrence import SeriesRequest, occurrence_starts  # noqa: E402
from bookwise.bookings.series import create_series  # noqa: E402
from bookwise.bookings.services import (  # noqa: E402
    BookingRequest,
    create_booking,
    find_service,
)
from bookwise.config import load_settings  # noqa: E402
from bookwise.database import Database, open_database, prepare_schema  # noqa: E402
from bookwise.db import begin_write  # noqa: E402

WEEKS, COUNT, BOOKINGS = 12, 12, 2000
WORKFLOW = base.WORKFLOW + "recurrence: {allowed: true, max_occurrences: 12}\n"
VALUES = {"name": "Bench Client", "email": "client@bench.example"}


def seed(database: Database, first: date) -> None:
    """2,000 bookings at random times over the 12 weeks (Core inserts, for speed)."""
    rng = random.Random(7)
    with database.sessions() as session, session.begin():
        context = find_service(session, "bench", "bench")
        pool = read_pool(session, context.service, context.workflow)
        client = Client(calendar_id=context.calendar.id, name="Bench", email="b@bench.example")
        session.add(client)
        session.flush()
        taken: set[tuple[int, datetime]] = set()
        rows = []
        while len(rows) < BOOKINGS:
            day = first + timedelta(days=rng.randrange(WEEKS * 7))
            if day.weekday() == 6:
                continue
            start = datetime(day.year, day.month, day.day, 8, tzinfo=base.PARIS) + timedelta(
                minutes=30 * rng.randrange(20)
            )
            member = rng.choice(pool).id
            if (member, start) in taken:
                continue
            taken.add((member, start))
            rows.append(base.booking_row(context, member, client.id, start))
        session.execute(sa.insert(Booking), rows)


def run(url: str | None) -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / "workflows").mkdir()
        (folder / "workflows" / "bench.yaml").write_text(WORKFLOW)
        with base.target(url, folder) as database_url:
            config = folder / "config.yaml"
            config.write_text(
                f"database_url: '{database_url}'\ninstance_dir: {folder}/instance\n"
                f"workflows: {folder / 'workflows'}\nforms: {ROOT / 'forms'}\n"
            )
            settings = load_settings(config, environ={})
            database = open_database(settings)
            prepare_schema(database)
            instance.load_calendar_files(settings, database, [base.calendar_file(folder)])
            first_day = datetime.now(base.PARIS).date() + timedelta(days=1)
            while first_day.weekday() != 1:  # a Tuesday: every occurrence is a working day
                first_day += timedelta(days=1)
            seed(database, first_day)
            now = datetime.now(UTC)
            first = datetime(
                first_day.year, first_day.month, first_day.day, 10, 15, tzinfo=base.PARIS
            )
            starts = occurrence_starts(first, "weekly", COUNT, "Europe/Paris")
            print(
                f"{'PostgreSQL' if url else 'SQLite'}: {base.STAFF} staff, {BOOKINGS} bookings "
                f"over {WEEKS} weeks; a {COUNT}-occurrence weekly series at 10:15"
            )

            def series() -> None:
                with database.sessions() as session:
                    begin_write(session)
                    context = find_service(session, "bench", "bench")
                    request = BookingRequest(start=first, values=VALUES, source="api")
                    booked = create_series(
                        session,
                        context,
                        request,
                        SeriesRequest("weekly", COUNT),
                        now,
                        plugins=None,
                    )
                    assert len(booked.occurrences) == COUNT
                    session.rollback()

            def singles() -> None:
                for start in starts:
                    with database.sessions() as session:
                        begin_write(session)
                        context = find_service(session, "bench", "bench")
                        request = BookingRequest(start=start, values=VALUES, source="api")
                        create_booking(session, context, request, now, plugins=None)
                        session.rollback()

            one = base.measure(f"one series of {COUNT} (one transaction, one search)", series)
            many = base.measure(f"{COUNT} single bookings (one transaction each)", singles)
            print(f"  series / {COUNT} singles: {one / many:.2f}x")
            database.engine.dispose()


if __name__ == "__main__":
    run(sys.argv[1] if len(sys.argv) > 1 else None)
