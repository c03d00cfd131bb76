"""What plugins cost a booking. Run:

    .venv/bin/python benchmarks/plugins.py

Makes 80 bookings of the demo's HR interview (SQLite, one at a time, each in its own write
transaction, the availability check included) in three instances, in this process:

1. baseline: only the core plugins (no booking listener, no meeting provider);
2. a plugin listening to every booking event (a no-op) and creating a meeting link;
3. the same plugin, its listener raising on every call (logged, counted, isolated).

Prints the median and 95th percentile per booking, and the ratios to the baseline.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bookwise.bookings.services import BookingRequest, create_booking, find_service  # noqa: E402
from bookwise.db import unit_of_work  # noqa: E402
from bookwise.hookspecs import hookimpl  # noqa: E402
from bookwise.plugins import Meeting, MeetingProvider  # noqa: E402
from bookwise.plugins.bookings import attach  # noqa: E402
from bookwise.plugins.host import PluginHost  # noqa: E402
from bookwise.testing import free_starts, make_instance  # noqa: E402

BOOKINGS = 80
HR = {"position": "dev", "cv_url": "https://example.org/cv.pdf"}


class Provider(MeetingProvider):
    name = "jitsi"  # what the HR workflow asks for

    @classmethod
    def from_settings(cls, context: object) -> Provider:
        return cls()

    def create(self, booking: object) -> Meeting:
        return Meeting("https://meet.invalid/room", "room")


class Listener:
    BOOKWISE_API = "1.0"

    def __init__(self, fail: bool) -> None:
        self.fail = fail

    @hookimpl
    def bookwise_register_meeting_providers(self) -> list[type[MeetingProvider]]:
        return [Provider]

    @hookimpl
    def bookwise_booking_changed(self, booking: object, change: object) -> None:
        if self.fail:
            raise RuntimeError("listener bug")


QUIET = Listener(fail=False)
FAILING = Listener(fail=True)


def run(folder: Path, plugin: str | None) -> list[float]:
    bw = make_instance(folder)
    if plugin is not None:
        settings = dataclasses.replace(bw.settings, plugins={"enabled": ["bench"]})
        host = PluginHost(settings, bw.database)
        core = [e for e in entry_points(group="bookwise.plugins") if e.dist.name == "bookwise"]
        host.load([*core, EntryPoint("bench", f"__main__:{plugin}", "bookwise.plugins")])
        bw.database.plugins = host
        attach(bw.database, host)
    now = datetime.now(UTC)
    with bw.database.sessions() as session:
        context = find_service(session, "northwind-hr", "hr-interview")
        starts = free_starts(session, context, now, days_ahead=1, days=59)
    spaced: list[datetime] = []
    for start in starts:  # far enough apart for buffers not to matter
        if not spaced or start >= spaced[-1] + timedelta(hours=2):
            spaced.append(start)
    starts = spaced
    if len(starts) < BOOKINGS:
        raise SystemExit(f"only {len(starts)} free starts")
    timings = []
    for number, start in enumerate(starts[:BOOKINGS]):
        values = {"name": f"C{number}", "email": f"c{number}@example.org", **HR}
        began = time.perf_counter()
        with unit_of_work(bw.database.sessions, write=True) as session:
            context = find_service(session, "northwind-hr", "hr-interview")
            create_booking(
                session,
                context,
                BookingRequest(start=start, values=values, consent=True),
                now,
                plugins=bw.database.plugins,
            )
        timings.append((time.perf_counter() - began) * 1000)
    bw.database.engine.dispose()
    return timings


def main() -> None:
    logging.disable(logging.CRITICAL)  # the failing listener would log 80 errors
    results = {}
    with tempfile.TemporaryDirectory() as name:
        for label, plugin in (
            ("baseline: core plugins only", None),
            ("a listener and a meeting provider", "QUIET"),
            ("the same, the listener raising", "FAILING"),
        ):
            timings = run(Path(name) / label.split(":")[0].replace(" ", "-"), plugin)
            median = statistics.median(timings)
            p95 = statistics.quantiles(timings, n=20)[18]
            results[label] = median
            print(f"{label:<40} median {median:6.2f} ms   p95 {p95:6.2f} ms")
    base = results["baseline: core plugins only"]
    for label, median in results.items():
        print(f"  {label:<38} {median / base:.2f}x")


if __name__ == "__main__":
    main()
