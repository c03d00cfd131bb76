"""What the waitlist's full times cost the public service page and its /times endpoint. Run:

    .venv/bin/python benchmarks/waitlist_page.py                       # SQLite
    .venv/bin/python benchmarks/waitlist_page.py postgresql+psycopg://postgres@127.0.0.1/test
    .venv/bin/python benchmarks/waitlist_page.py --profile             # and where time goes

A calendar with 10 staff members working 08:00-18:00 Monday to Saturday and two one-to-one
30-minute services that differ only by ``waitlist: {enabled: true}`` (the baseline has none),
both letting the client choose the staff member. In March 2027, half of each day's start times
are booked for every staff member (2,700 bookings, written in bulk): half the month's times are
full, the other half free. The app runs on a fixed clock (2027-02-26 10:00 in Paris) and is
asked through the Flask test client for the service page and for ``/times`` of 2027-03-15, each
with and without a chosen staff member, for both services. The eight requests are interleaved
(shuffled within each of ``ROUNDS`` rounds, after a warm-up round) so that the machine's noise
falls on all of them alike. Median and 95th percentile of each, and the ratio of the medians
with / without the waitlist. With ``--profile``, then: the cProfile of 20 of the request of
the highest ratio (the page with a chosen staff member, with the waitlist), its 25 dearest calls.
"""

from __future__ import annotations

import cProfile
import logging
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import availability as base  # noqa: E402

from bookwise import instance  # noqa: E402
from bookwise.app import create_app  # noqa: E402
from bookwise.availability.services import read_pool  # noqa: E402
from bookwise.bookings.models import Booking, Client  # noqa: E402
from bookwise.bookings.services import find_service  # noqa: E402
from bookwise.config import load_settings  # noqa: E402
from bookwise.database import Database, open_database, prepare_schema  # noqa: E402

STAFF, ROUNDS = 10, 60
NOW = datetime(2027, 2, 26, 10, tzinfo=base.PARIS)
MONTH, DAY = date(2027, 3, 1), date(2027, 3, 15)
WORKFLOW = """id: {id}
name: Benchmark lesson
duration: 30m
booking_window: {{min_notice: 0m, max_ahead: 400d}}
staff: {{tags: [bench], client_chooses: true}}
notifications: []
{waitlist}
"""
SERVICES = {"wait": "waitlist: {enabled: true}", "plain": ""}


def seed(database: Database) -> int:
    """Half of each working day's 20 starts of March booked for every staff member (the
    bookings count for both services: a staff member's time is one)."""
    rng = random.Random(7)
    with database.sessions() as session, session.begin():
        context = find_service(session, "bench", "plain")
        pool = read_pool(session, context.service, context.workflow)
        client = Client(calendar_id=context.calendar.id, name="Bench", email="b@bench.example")
        session.add(client)
        session.flush()
        rows = []
        day = MONTH
        while day.month == MONTH.month:
            if day.weekday() != 6:
                for half_hour in rng.sample(range(20), 10):
                    start = datetime(day.year, day.month, day.day, 8, tzinfo=base.PARIS)
                    start += timedelta(minutes=30 * half_hour)
                    rows += [base.booking_row(context, m.id, client.id, start) for m in pool]
            day += timedelta(days=1)
        session.execute(sa.insert(Booking), rows)
        return len(rows)


def summary(times: list[float]) -> tuple[float, float]:
    """Median and 95th percentile (as base.measure computes them)."""
    times = sorted(times)
    return statistics.median(times), times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]


def run(url: str | None, profile: bool = False) -> None:
    logging.getLogger("bookwise").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / "workflows").mkdir()
        for service, waitlist in SERVICES.items():
            (folder / "workflows" / f"{service}.yaml").write_text(
                WORKFLOW.format(id=service, waitlist=waitlist)
            )
        with base.target(url, folder) as database_url:
            config = folder / "config.yaml"
            config.write_text(
                f"database_url: '{database_url}'\ninstance_dir: {folder}/instance\n"
                f"workflows: {folder / 'workflows'}\nforms: {ROOT / 'forms'}\n"
                "log_level: WARNING\n"
            )
            settings = load_settings(config, environ={})
            database = open_database(settings)
            prepare_schema(database)
            instance.sync_workflows(settings, database)
            instance.load_calendar_files(
                settings, database, [base.calendar_file(folder, STAFF, tuple(SERVICES))]
            )
            booked = seed(database)
            app = create_app(settings, clock=lambda: NOW)
            client = app.test_client()
            query = f"date={DAY}&tz=Europe/Paris"
            requests: dict[tuple[str, str, str], Callable[[], None]] = {}
            for service in SERVICES:
                for staff in ("", "&staff=s3"):
                    for kind, path in (("page", ""), ("times", "/times")):
                        target = f"/bench/{service}{path}?{query}{staff}"

                        def get(target: str = target, service: str = service) -> None:
                            answer = client.get(target)
                            assert answer.status_code == 200, (target, answer.status_code)
                            full = b"/waitlist?start=" in answer.data
                            assert full == (service == "wait"), target

                        requests[(kind, "one staff member" if staff else "any", service)] = get
            print(
                f"{'PostgreSQL' if url else 'SQLite'}: {STAFF} staff, {booked} bookings "
                f"(half of March's times full), {ROUNDS} interleaved rounds"
            )
            times: dict[tuple[str, str, str], list[float]] = {key: [] for key in requests}
            order = list(requests)
            rng = random.Random(11)
            for round_number in range(ROUNDS + 1):
                rng.shuffle(order)
                for key in order:
                    started = time.perf_counter()
                    requests[key]()
                    if round_number:  # the first round warms up (imports, caches, connections)
                        times[key].append((time.perf_counter() - started) * 1000)
            for kind, label in (("page", "service page"), ("times", "/times")):
                for staff in ("any", "one staff member"):
                    with_median, with_p95 = summary(times[(kind, staff, "wait")])
                    plain_median, plain_p95 = summary(times[(kind, staff, "plain")])
                    print(
                        f"  {label + ', ' + staff:<32} with waitlist: median {with_median:6.1f} "
                        f"ms, p95 {with_p95:6.1f} ms   without: median {plain_median:6.1f} ms, "
                        f"p95 {plain_p95:6.1f} ms   ratio {with_median / plain_median:.2f}x"
                    )
            if profile:
                profiler = cProfile.Profile()
                profiler.runcall(
                    lambda: [requests[("page", "one staff member", "wait")]() for _ in range(20)]
                )
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
            database.engine.dispose()
            app.extensions["bookwise"].database.engine.dispose()


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if a != "--profile"]
    run(arguments[0] if arguments else None, profile="--profile" in sys.argv[1:])
