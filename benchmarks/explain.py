"""What "why is this time not offered?" costs, against computing the slots alone. Run:

    .venv/bin/python benchmarks/explain.py

The engine only (pure functions, inputs in memory), in one process so that the ratios hold on a
noisy machine: 50 staff members working 08:00-18:00 in Europe/Paris, a 30-minute service on a
15-minute step with 10-minute buffers, 2,000 existing bookings and 100 time-off periods over 31
days. Measured as medians of many runs:

1. ``find_free_slots`` over the day of the asked time (what the public page computes);
2. ``find_free_slots`` over one second at the asked time (the cheapest "is it offered?");
3. ``explain_start`` at the asked time (every reason, for every staff member).

The figures go in docs/performance.md with the date.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bookwise.availability.engine import (
    ExistingBooking,
    Interval,
    SlotRules,
    StaffTime,
    explain_start,
    find_free_slots,
)
from bookwise.calendars.data import HoursRange

PARIS = ZoneInfo("Europe/Paris")
STAFF, DAYS, BOOKINGS, TIME_OFF = 50, 31, 2000, 100
FIRST = date(2027, 3, 1)
M = timedelta(minutes=1)


def world(seed: int = 7) -> tuple[SlotRules, list[StaffTime]]:
    chance = random.Random(seed)
    hours = tuple(HoursRange(day, 8 * 60, 18 * 60) for day in range(6))
    bookings: dict[int, list[ExistingBooking]] = {n: [] for n in range(STAFF)}
    for _ in range(BOOKINGS):
        day = FIRST + timedelta(days=chance.randrange(DAYS))
        start = datetime(day.year, day.month, day.day, 8, tzinfo=PARIS) + chance.randrange(38) * (
            15 * M
        )
        end = start + 30 * M
        bookings[chance.randrange(STAFF)].append(
            ExistingBooking(start, end, start - 10 * M, end + 10 * M, 1)
        )
    off: dict[int, list[Interval]] = {n: [] for n in range(STAFF)}
    for _ in range(TIME_OFF):
        day = FIRST + timedelta(days=chance.randrange(DAYS))
        start = datetime(day.year, day.month, day.day, 8 + chance.randrange(10), tzinfo=PARIS)
        off[chance.randrange(STAFF)].append(Interval(start, start + 2 * timedelta(hours=1)))
    rules = SlotRules(
        "Europe/Paris",
        30 * M,
        15 * M,
        10 * M,
        10 * M,
        max_ahead=timedelta(days=400),
        service_id=1,
    )
    staff = [
        StaffTime(n, hours, tuple(off[n]), tuple(sorted(bookings[n], key=lambda b: b.start)))
        for n in range(STAFF)
    ]
    return rules, staff


def median_ms(action: Callable[[], object], repeat: int) -> float:
    action()  # warm up
    times = []
    for _ in range(repeat):
        begin = time.perf_counter()
        action()
        times.append(time.perf_counter() - begin)
    return statistics.median(times) * 1000


def main() -> None:
    rules, staff = world()
    now = datetime(2027, 2, 1, tzinfo=UTC)
    asked = datetime(2027, 3, 16, 10, 15, tzinfo=PARIS)  # a Tuesday
    day_start = datetime(2027, 3, 16, tzinfo=PARIS)
    day_end = day_start + timedelta(days=1)
    second = asked + timedelta(seconds=1)
    day = median_ms(lambda: find_free_slots(rules, staff, day_start, day_end, now), 200)
    one = median_ms(lambda: find_free_slots(rules, staff, asked, second, now), 200)
    told = median_ms(lambda: explain_start(rules, staff, asked, now), 200)
    explanation = explain_start(rules, staff, asked, now)
    reasons = sum(len(v.reasons) for v in explanation.staff)
    print(f"{STAFF} staff, {BOOKINGS} bookings, {TIME_OFF} time off over {DAYS} days")
    print(f"slots of the day (find_free_slots, 1 day):   {day:7.3f} ms")
    print(f"is it offered (find_free_slots, 1 second):   {one:7.3f} ms")
    print(
        f"explain_start (every reason, {STAFF} staff):   {told:7.3f} ms "
        f"({reasons} reasons; offered: {explanation.offered})"
    )
    print(f"ratio explain / slots of the day:            {told / day:7.2f}")
    print(f"ratio explain / is it offered:               {told / one:7.2f}")


if __name__ == "__main__":
    main()
