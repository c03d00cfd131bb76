"""The experiment behind the no-double-booking design: a naive check-then-insert double-books.

Run: .venv/bin/python benchmarks/naive_double_booking.py [postgresql+psycopg://postgres@127.0.0.1/test]

50 threads book the same one-to-one slot through the real booking service twice: once with its
guards removed (no write lock, no staff row lock, no database constraint or trigger: each
thread checks availability, then inserts), once as shipped. The first run ends with several
bookings of one slot; the second with exactly one.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bookwise import instance  # noqa: E402
from bookwise.bookings import services  # noqa: E402
from bookwise.bookings.models import Booking  # noqa: E402
from bookwise.config import load_settings  # noqa: E402
from bookwise.database import open_database, prepare_schema  # noqa: E402
from bookwise.db import unit_of_work, utcnow  # noqa: E402

SCENARIO = ROOT / "tests" / "data" / "scenario"
THREADS = 50


@contextmanager
def database(url: str | None, folder: str) -> Iterator[str]:
    if url is None:
        yield f"sqlite:///{folder}/race.db"
        return
    schema = f"race_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url)
    with admin.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{url}?options=-csearch_path%3D{schema},public"
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def race(url: str, folder: str, naive: bool) -> tuple[int, Counter[str]]:
    config = Path(folder) / f"config-{naive}.yaml"
    config.write_text(
        f"database_url: '{url}'\ninstance_dir: {folder}/instance\n"
        f"workflows: {SCENARIO / 'workflows'}\nforms: {ROOT / 'forms'}\n"
    )
    settings = load_settings(config, environ={})
    db = open_database(settings)
    prepare_schema(db)
    instance.load_calendar_files(settings, db, [SCENARIO / "calendars.yaml"])
    with db.engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM bookings"))
        if naive and db.engine.dialect.name == "postgresql":
            connection.execute(
                sa.text("ALTER TABLE bookings DROP CONSTRAINT ex_bookings_no_overlap")
            )
        elif naive:
            connection.execute(sa.text("DROP TRIGGER bookings_no_double_booking_insert"))
    saved = services._lock_staff, services.begin_write_if_fresh
    if naive:
        services._lock_staff = lambda *_: None  # type: ignore[assignment]
        services.begin_write_if_fresh = lambda *_: None  # type: ignore[assignment]
    paris = ZoneInfo("Europe/Paris")
    day = datetime.now(paris).date() + timedelta(days=3)
    start = datetime(day.year, day.month, day.day, 10, tzinfo=paris)
    barrier = threading.Barrier(THREADS)
    failures: Counter[str] = Counter()

    def client(number: int) -> None:
        barrier.wait()
        try:
            with unit_of_work(db.sessions, write=not naive) as session:
                context = services.find_service(session, "acme", "review")
                services.create_booking(
                    session,
                    context,
                    services.BookingRequest(
                        start=start,
                        staff="ben",
                        values={"name": f"C{number}", "email": f"c{number}@example.org"},
                    ),
                    utcnow(),
                    plugins=None,
                )
        except services.SlotTaken:
            failures["slot taken"] += 1
        except Exception as exc:
            failures[f"{type(exc).__name__}: {str(exc).splitlines()[0][:60]}"] += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    services._lock_staff, services.begin_write_if_fresh = saved  # type: ignore[assignment]
    with db.sessions() as session:
        count = session.scalar(sa.select(sa.func.count()).select_from(Booking)) or 0
    db.engine.dispose()
    return count, failures


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else None
    with tempfile.TemporaryDirectory() as folder:
        for naive in (True, False):
            with database(url, folder) as target:
                count, failures = race(target, folder, naive)
            label = "naive check-then-insert" if naive else "as shipped"
            kind = "PostgreSQL" if url else "SQLite"
            losers = ", ".join(f"{n} {why}" for why, n in failures.most_common())
            print(f"{kind}, {THREADS} threads, one slot, {label}: {count} booking(s); {losers}")


if __name__ == "__main__":
    main()
