"""Slot search and booking throughput. Run:

    .venv/bin/python benchmarks/availability.py                       # SQLite
    .venv/bin/python benchmarks/availability.py postgresql+psycopg://postgres@127.0.0.1/test

A calendar with 50 staff members, 31 days of 10-hour working days, a 30-minute service on a
15-minute step, and 2,000 existing bookings. Measured, each as median and 95th percentile:

1. the engine alone (the pure function, inputs already read);
2. reading those inputs from the database (four Core queries), and, as the same-process
   baseline, reading the same bookings as ORM objects;
3. the slots endpoint over real HTTP on loopback (31 days, one request), found afresh (the slot
   cache emptied first) and from the cache; and from Redis, kept there by another process;
4. booking throughput: 32 concurrent clients posting bookings of distinct times over HTTP.
"""

from __future__ import annotations

import json
import logging
import random
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from werkzeug.serving import make_server  # noqa: E402

from bookwise import instance  # noqa: E402
from bookwise.app import create_app  # noqa: E402
from bookwise.availability.engine import find_free_slots  # noqa: E402
from bookwise.availability.services import (  # noqa: E402
    local_day_bounds,
    read_pool,
    read_staff_time,
    slot_rules,
)
from bookwise.bookings.models import Booking, Client  # noqa: E402
from bookwise.bookings.services import find_service  # noqa: E402
from bookwise.config import load_settings  # noqa: E402
from bookwise.database import Database, open_database, prepare_schema  # noqa: E402

PARIS = ZoneInfo("Europe/Paris")
STAFF, DAYS, BOOKINGS = 50, 31, 2000

WORKFLOW = """id: bench
name: Benchmark consultation
duration: 30m
slot_step: 15m
booking_window: {min_notice: 0m, max_ahead: 400d}
staff: {tags: [bench]}
notifications: []
"""


def calendar_file(
    folder: Path, staff_count: int = STAFF, workflows: tuple[str, ...] = ("bench",)
) -> Path:
    """The calendar "bench": ``staff_count`` staff members tagged ``bench`` working 08:00-18:00
    Monday to Saturday, offering ``workflows``."""
    hours = (
        "{"
        + ", ".join(f'{d}: ["08:00-18:00"]' for d in ("mon", "tue", "wed", "thu", "fri", "sat"))
        + "}"
    )
    staff = "\n".join(
        f"      - {{id: s{n}, name: Staff {n}, email: s{n}@bench.example, tags: [bench]}}"
        for n in range(staff_count)
    )
    services = "".join(f"      - workflow: {name}\n" for name in workflows)
    path = folder / "calendar.yaml"
    path.write_text(
        "calendars:\n  - slug: bench\n    name: Bench\n    timezone: Europe/Paris\n"
        f"    hours: {hours}\n    staff:\n{staff}\n    services:\n{services}"
    )
    return path


@contextmanager
def target(url: str | None, folder: Path) -> Iterator[str]:
    if url is None:
        yield f"sqlite:///{folder}/bench.db"
        return
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url)
    with admin.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{url}?options=-csearch_path%3D{schema},public"
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def measure(label: str, action: Callable[[], object], repeat: int = 20) -> float:
    action()  # warm up (imports, caches, connections)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    median = statistics.median(times)
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    print(f"  {label:<58} median {median:7.1f} ms   p95 {p95:7.1f} ms")
    return median


def booking_row(
    context: Any,
    staff_id: int,
    client_id: int,
    start: datetime,
    state: str = "confirmed",
    answers: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A 30-minute booking as an insert's values (benchmarks write thousands with Core)."""
    uid = uuid.uuid4().hex
    return {
        "uid": uid,
        "calendar_id": context.calendar.id,
        "service_id": context.service.id,
        "workflow_version_id": context.version.id,
        "staff_id": staff_id,
        "client_id": client_id,
        "start_at": start,
        "end_at": start + timedelta(minutes=30),
        "blocked_from": start,
        "blocked_until": start + timedelta(minutes=30),
        "state": state,
        "holds_slot": state == "confirmed",
        "slot_key": uid,
        "capacity": 1,
        "answers": answers or {},
        "locale": "en",
        "timezone": "Europe/Paris",
        "manage_token": uid,
        "sequence": 0,
        "source": "api",
        "created_at": datetime.now(UTC),
        "updated_at": datetime.now(UTC),
    }


def seed_bookings(database: Database, first: date) -> None:
    """2,000 bookings at random free times, written with Core for speed."""
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
            day = first + timedelta(days=rng.randrange(DAYS))
            if day.weekday() == 6:
                continue
            start = datetime(day.year, day.month, day.day, 8, tzinfo=PARIS) + timedelta(
                minutes=30 * rng.randrange(20)
            )
            member = rng.choice(pool).id
            if (member, start) in taken:
                continue
            taken.add((member, start))
            rows.append(booking_row(context, member, client.id, start))
        session.execute(sa.insert(Booking), rows)


def bench_instance(
    folder: Path, database_url: str, extra_config: str = ""
) -> tuple[Any, Database, date]:
    """The benchmark's instance in ``folder``: its configuration (``config.yaml``, rate limits
    off, ``extra_config`` appended), the schema, the calendar and the 2,000 bookings from
    tomorrow on. (settings, database, tomorrow)."""
    (folder / "workflows").mkdir()
    (folder / "workflows" / "bench.yaml").write_text(WORKFLOW)
    config = folder / "config.yaml"
    config.write_text(
        f"database_url: '{database_url}'\ninstance_dir: {folder}/instance\n"
        f"workflows: {folder / 'workflows'}\nforms: {ROOT / 'forms'}\n"
        # One client address sends every booking: the per-address limit would refuse them
        # after 20 a minute (429), which is not what this measures.
        "security: {rate_limits: {enabled: false}}\n" + extra_config
    )
    settings = load_settings(config, environ={})
    database = open_database(settings)
    prepare_schema(database)
    instance.load_calendar_files(settings, database, [calendar_file(folder)])
    first = datetime.now(PARIS).date() + timedelta(days=1)
    seed_bookings(database, first)
    return settings, database, first


def run(url: str | None) -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        with target(url, folder) as database_url:
            settings, database, first = bench_instance(folder, database_url)
            print(
                f"{'PostgreSQL' if url else 'SQLite'}: {STAFF} staff x {DAYS} days x 15-minute "
                f"step, {BOOKINGS} existing bookings"
            )
            window = local_day_bounds(first, first + timedelta(days=DAYS - 1), PARIS)
            now = datetime.now(UTC)
            with database.sessions() as session:
                context = find_service(session, "bench", "bench")
                pool = read_pool(session, context.service, context.workflow)
                ids = [m.id for m in pool]
                margin = timedelta(days=1, minutes=30)
                inputs = read_staff_time(session, context.calendar.id, ids, *window, margin)
                rules = slot_rules(context.calendar, context.service, context.workflow)
                slots = find_free_slots(rules, inputs, *window, now)
                print(f"  ({len(slots)} distinct start times offered)")
                measure(
                    "engine: find_free_slots (pure)",
                    lambda: find_free_slots(rules, inputs, *window, now),
                )
                core = measure(
                    "read inputs: 4 Core queries into tuples",
                    lambda: read_staff_time(session, context.calendar.id, ids, *window, margin),
                )

                def orm_bookings() -> None:
                    session.expunge_all()
                    list(
                        session.scalars(
                            sa.select(Booking).where(
                                Booking.staff_id.in_(ids),
                                Booking.blocked_until > window[0],
                                Booking.blocked_from < window[1],
                            )
                        )
                    )

                def core_bookings() -> None:
                    session.execute(
                        sa.select(
                            Booking.staff_id,
                            Booking.start_at,
                            Booking.end_at,
                            Booking.blocked_from,
                            Booking.blocked_until,
                            Booking.service_id,
                        ).where(
                            Booking.staff_id.in_(ids),
                            Booking.blocked_until > window[0],
                            Booking.blocked_from < window[1],
                        )
                    ).all()

                orm = measure("baseline: the 2,000 bookings as ORM objects", orm_bookings)
                rows = measure("the same 2,000 bookings as Core tuples", core_bookings)
                print(
                    f"  ORM objects / Core tuples: {orm / rows:.1f}x   "
                    f"(all four input queries: {core:.1f} ms)"
                )

            app = create_app(settings)
            httpd = make_server("127.0.0.1", 0, app, threaded=True)
            thread = threading.Thread(target=httpd.serve_forever, daemon=True)
            thread.start()
            base = f"http://127.0.0.1:{httpd.server_port}/api/v1/calendars/bench/services/bench"
            last = first + timedelta(days=DAYS - 1)
            cache = app.extensions["bookwise"].slot_cache

            def found_afresh() -> None:
                cache.clear()
                urllib.request.urlopen(f"{base}/slots?from={first}&to={last}").read()

            missed = measure("HTTP GET slots, 31 days, found afresh (cache emptied)", found_afresh)
            kept = measure(
                "HTTP GET slots, 31 days, from the slot cache",
                lambda: urllib.request.urlopen(f"{base}/slots?from={first}&to={last}").read(),
            )
            print(f"  found afresh / from the cache: {missed / kept:.1f}x")
            shared_from_redis(settings, first, last)
            throughput(base, first)
            httpd.shutdown()
            database.engine.dispose()
            app.extensions["bookwise"].database.engine.dispose()


def shared_from_redis(settings: Any, first: date, last: date) -> None:
    """The slots endpoint of a process that finds the 31 days in Redis, kept there by another
    (its own entries emptied before each request), when Redis answers on 127.0.0.1:6379."""
    import dataclasses

    import redis

    from bookwise.config import CacheSettings

    address = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(address, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        print("  (no Redis on 127.0.0.1:6379: the shared cache is not measured)")
        return
    shared = dataclasses.replace(settings, cache=CacheSettings(storage=address))
    one, two = create_app(shared), create_app(shared)
    url = f"/api/v1/calendars/bench/services/bench/slots?from={first}&to={last}"
    assert one.test_client().get(url).status_code == 200  # kept in Redis by the first
    client, cache = two.test_client(), two.extensions["bookwise"].slot_cache

    def from_redis() -> None:
        cache.clear()
        assert client.get(url).status_code == 200

    measure("slots, 31 days, read from Redis (test client, no HTTP)", from_redis)
    keys = redis.Redis.from_url(address)
    for name in keys.scan_iter(f"{cache.namespace}:*"):
        keys.delete(name)
    for app in (one, two):
        app.extensions["bookwise"].database.dispose()


def throughput(base: str, first: date, clients: int = 32, total: int = 640) -> None:
    """``clients`` threads post ``total`` bookings of distinct free times, as fast as they can."""
    free = json.loads(
        urllib.request.urlopen(
            f"{base}/slots?from={first + timedelta(days=40)}&to={first + timedelta(days=60)}"
        ).read()
    )
    # Starts on the half hour, each as many times as staff are free: none of them overlap.
    starts = [
        s["start"]
        for s in free["slots"]
        if s["start"][14:16] in ("00", "30")
        for _ in range(s["remaining"])
    ][:total]
    jobs = iter(enumerate(starts))
    lock = threading.Lock()
    outcomes: dict[int, int] = {}

    def client() -> None:
        while True:
            with lock:
                job = next(jobs, None)
            if job is None:
                return
            number, start = job
            body = json.dumps(
                {
                    "start": start,
                    "client": {"name": f"T{number}", "email": f"t{number}@bench.example"},
                }
            ).encode()
            request = urllib.request.Request(
                f"{base}/bookings", data=body, headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    status = response.status
            except urllib.error.HTTPError as error:
                status = error.code
            with lock:
                outcomes[status] = outcomes.get(status, 0) + 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for item in threads:
        item.start()
    for item in threads:
        item.join()
    elapsed = time.perf_counter() - started
    made = outcomes.get(201, 0)
    print(
        f"  booking POST, {clients} concurrent clients: {made} bookings in {elapsed:.1f} s = "
        f"{made / elapsed:.0f} bookings/s   (statuses: {dict(sorted(outcomes.items()))})"
    )


if __name__ == "__main__":
    run(sys.argv[1] if len(sys.argv) > 1 else None)
