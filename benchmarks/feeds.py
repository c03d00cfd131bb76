"""Staff calendar feeds: reading busy times from iCalendar. Run:

    .venv/bin/python benchmarks/feeds.py
    .venv/bin/python benchmarks/feeds.py --events 5000 --series 200 --days 90 --repeat 7
    .venv/bin/python benchmarks/feeds.py --dense     # every one-off event in the window

1. parse and expand (``parse_and_expand``, pure, no database): a feed of 5,000 VEVENTs shaped
   like an Outlook export (Windows zone names, folded lines, descriptions, attendees, alarms),
   200 of them weekly series (some with UNTIL, COUNT and EXDATE, some with a moved occurrence),
   the others one-off events spread over two years (with ``--dense``, all in the window: no
   event can be skipped before parsing, the worst case). Measured: ``busy_intervals`` over 90 days
   (median of several runs, seconds) and its peak memory (tracemalloc), and ``minimize``.

2. slot search with feeds (``slots_with_feeds``, SQLite): the 50-staff calendar of
   benchmarks/availability.py; the slots endpoint for 31 days (in process, Flask's test client),
   first with no feeds, then after every staff member got an uploaded feed of 300 events (20
   weekly series) read into busy times: the ratio of the two, same process, same run. Also the
   refresh of those 50 sources (each re-expanded from its stored copy), as the job runs it when
   the booking window has slid.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bookwise.availability.busy import busy_intervals, minimize  # noqa: E402

# Fixed instants: the figures do not depend on the day the benchmark runs.
WINDOW_START = datetime(2027, 3, 1, tzinfo=UTC)
ZONE = "Europe/Paris"
TZID = "Romance Standard Time"

VTIMEZONE = """BEGIN:VTIMEZONE
TZID:Romance Standard Time
BEGIN:STANDARD
DTSTART:16010101T030000
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010101T020000
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3
END:DAYLIGHT
END:VTIMEZONE"""


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%S")


def _fold(line: str) -> list[str]:
    return [line[:75]] + [" " + line[i : i + 74] for i in range(75, len(line), 74)]


def _event(rng: random.Random, number: int, start: datetime, minutes: int) -> list[str]:
    """One VEVENT's lines, with what an Outlook export carries besides the times."""
    end = start + timedelta(minutes=minutes)
    lines = [
        "BEGIN:VEVENT",
        f"UID:040000008200E00074C5B7101A82E0080000000{number:08d}",
        f"SUMMARY;LANGUAGE=fr-FR:Consultation patient {rng.randrange(10_000)}",
        "DESCRIPTION;LANGUAGE=fr-FR:" + "Notes de suivi\\, traitement en cours\\n" * 4,
        f"DTSTART;TZID={TZID}:{_stamp(start)}",
        f"DTEND;TZID={TZID}:{_stamp(end)}",
        "ORGANIZER;CN=Dr Claire Martin:mailto:c.martin@cabinet.example",
        f"ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED;RSVP=TRUE;CN=Patient {number}:"
        f"mailto:patient{number}@mail.example",
        "LOCATION;LANGUAGE=fr-FR:Cabinet 2",
        "CLASS:PRIVATE",
        "PRIORITY:5",
        "DTSTAMP:20270101T120000Z",
        "TRANSP:OPAQUE",
        "STATUS:CONFIRMED",
        "SEQUENCE:0",
        "X-MICROSOFT-CDO-BUSYSTATUS:BUSY",
    ]
    return lines


def _alarm() -> list[str]:
    return [
        "BEGIN:VALARM",
        "DESCRIPTION:REMINDER",
        "TRIGGER;RELATED=START:-PT15M",
        "ACTION:DISPLAY",
        "END:VALARM",
    ]


def make_feed(
    events: int = 5000, series: int = 200, dense_days: int | None = None, seed: int = 7
) -> str:
    """An Outlook-shaped feed of ``events`` VEVENTs, ``series`` of them weekly series, the
    others one-off events from a year before the window to a year after it, or all in the
    ``dense_days`` from the window's start (the worst case: none can be skipped)."""
    rng = random.Random(seed)
    lines = [
        "BEGIN:VCALENDAR",
        "METHOD:PUBLISH",
        "PRODID:Microsoft Exchange Server 2010",
        "VERSION:2.0",
        "X-WR-CALNAME:Agenda Dr Martin",
        *VTIMEZONE.splitlines(),
    ]
    first = datetime(2026, 3, 2, 8)  # naive wall times, written with TZID
    for number in range(series):
        start = first + timedelta(days=rng.randrange(350), minutes=30 * rng.randrange(20))
        body = _event(rng, number, start, rng.choice((30, 60, 90)))
        day = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")[start.weekday()]
        rule = f"RRULE:FREQ=WEEKLY;INTERVAL={rng.choice((1, 1, 1, 2))};BYDAY={day}"
        if number % 5 == 1:
            rule += f";UNTIL={_stamp(start + timedelta(days=500))}Z"
        elif number % 5 == 2:
            rule += ";COUNT=60"
        body.insert(-1, rule)
        if number % 3 == 0:
            exdate = start + timedelta(weeks=rng.randrange(40, 60))
            body.insert(-1, f"EXDATE;TZID={TZID}:{_stamp(exdate)}")
        lines += body + _alarm() + ["END:VEVENT"]
        if number % 10 == 0:  # one occurrence moved by an hour
            moved = start + timedelta(weeks=rng.randrange(50, 58))
            override = _event(rng, number, moved + timedelta(hours=1), 60)
            override.insert(-1, f"RECURRENCE-ID;TZID={TZID}:{_stamp(moved)}")
            lines += [*override, "END:VEVENT"]
    for number in range(series, events):
        start = first + timedelta(
            days=rng.randrange(730), hours=rng.randrange(10), minutes=15 * rng.randrange(4)
        )
        if dense_days:
            start = WINDOW_START.replace(tzinfo=None) + timedelta(
                days=rng.randrange(dense_days), hours=8 + rng.randrange(10)
            )
        lines += [*_event(rng, number, start, rng.choice((15, 30, 45, 60, 120))), "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return "\r\n".join(folded for line in lines for folded in _fold(line)) + "\r\n"


def _median_seconds(action: Callable[[], object], repeat: int) -> float:
    action()  # warm up (imports, zone caches)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def parse_and_expand(
    events: int = 5000, series: int = 200, days: int = 90, repeat: int = 7, dense: bool = False
) -> dict[str, float]:
    """Part 1: ``busy_intervals`` and ``minimize`` on a generated feed (no database)."""
    text = make_feed(events, series, days if dense else None)
    data = text.encode("utf-8")
    end = WINDOW_START + timedelta(days=days)
    read = busy_intervals(data, WINDOW_START, end, timezone=ZONE)
    small = minimize(data)
    print(
        f"Feed: {events} VEVENTs ({series} weekly series), {len(data) / 1e6:.2f} MB; "
        f"minimized {len(small.encode()) / 1e6:.2f} MB; window {days} days: "
        f"{len(read.intervals)} busy intervals, {read.ignored} ignored"
    )
    figures = {
        "busy_intervals_s": _median_seconds(
            lambda: busy_intervals(data, WINDOW_START, end, timezone=ZONE), repeat
        ),
        "busy_intervals_minimized_s": _median_seconds(
            lambda: busy_intervals(small, WINDOW_START, end, timezone=ZONE), repeat
        ),
        "minimize_s": _median_seconds(lambda: minimize(data), repeat),
    }
    tracemalloc.start()
    busy_intervals(data, WINDOW_START, end, timezone=ZONE)
    figures["busy_intervals_peak_mb"] = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    for label, key, unit in (
        (f"busy_intervals: parse + expand {days} days", "busy_intervals_s", "s (median)"),
        ("the same on the minimized copy (as stored)", "busy_intervals_minimized_s", "s (median)"),
        ("minimize", "minimize_s", "s (median)"),
        ("busy_intervals peak memory (tracemalloc)", "busy_intervals_peak_mb", "MB"),
    ):
        print(f"  {label:<46} {figures[key]:7.3f} {unit}")
    return figures


def slots_with_feeds(repeat: int = 20) -> dict[str, float]:
    """Part 2: the slots of a 50-staff service for 31 days, without and with a feed each."""
    import logging
    import tempfile

    from benchmarks.availability import STAFF, WORKFLOW, calendar_file, measure
    from bookwise import instance
    from bookwise.app import create_app
    from bookwise.audit.services import Actor
    from bookwise.calendars.models import BusyTime, CalendarSource, StaffMember
    from bookwise.calendars.sources import add_file_source, refresh_sources
    from bookwise.clock import clock_from
    from bookwise.config import load_settings
    from bookwise.database import open_database, prepare_schema
    from bookwise.db import unit_of_work

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    now = WINDOW_START - timedelta(days=1)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / "workflows").mkdir()
        (folder / "workflows" / "bench.yaml").write_text(WORKFLOW)
        config = folder / "config.yaml"
        config.write_text(
            f"database_url: 'sqlite:///{folder}/bench.db'\ninstance_dir: {folder}/instance\n"
            f"workflows: {folder / 'workflows'}\nforms: {ROOT / 'forms'}\n"
        )
        settings = load_settings(config, environ={})
        database = open_database(settings)
        prepare_schema(database)
        instance.load_calendar_files(settings, database, [calendar_file(folder)])
        app = create_app(settings, clock=clock_from(now))
        client = app.test_client()
        first = WINDOW_START.date()
        last = first + timedelta(days=30)
        url = f"/api/v1/calendars/bench/services/bench/slots?from={first}&to={last}"

        def slots() -> None:
            response = client.get(url)
            assert response.status_code == 200, response.status_code

        print(f"Slots of a {STAFF}-staff service, 31 days, in process (SQLite):")
        without = measure("no feeds", slots, repeat)
        feeds = [make_feed(300, 20, None, seed=n).encode() for n in range(STAFF)]
        with unit_of_work(database.sessions, write=True) as session:
            for number, member in enumerate(session.query(StaffMember).order_by(StaffMember.id)):
                add_file_source(
                    session, member, "own.ics", feeds[number], actor=Actor("bench"), now=now
                )
        with database.sessions() as session:
            busy = session.query(BusyTime).count()
        print(f"  ({STAFF} feeds of 300 events read: {busy} busy intervals stored)")
        with_feeds = measure("every staff member with a feed", slots, repeat)
        print(f"  with feeds / without: {with_feeds / without:.2f}x")
        started = time.perf_counter()
        # A day later the window has slid: each source is expanded again from its stored copy.
        later = now + timedelta(days=1)
        outcomes = refresh_sources(database.sessions, settings.feeds, later, force=True)
        refresh = time.perf_counter() - started
        print(f"  refresh of the {len(outcomes)} sources (re-expanded): {refresh:.2f} s")
        with database.sessions() as session:
            assert session.query(CalendarSource).count() == STAFF
        app.extensions["bookwise"].database.engine.dispose()
        database.engine.dispose()
    return {"without_ms": without, "with_ms": with_feeds, "refresh_s": refresh}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=5000, help="VEVENTs in the feed")
    parser.add_argument("--series", type=int, default=200, help="of which weekly series")
    parser.add_argument("--days", type=int, default=90, help="window expanded, in days")
    parser.add_argument("--repeat", type=int, default=7, help="runs per median")
    parser.add_argument(
        "--dense",
        action="store_true",
        help="every one-off event in the window (the worst case), not over two years",
    )
    parser.add_argument("--no-slots", action="store_true", help="skip part 2 (the database)")
    options = parser.parse_args(argv)
    parse_and_expand(options.events, options.series, options.days, options.repeat, options.dense)
    if not options.no_slots:
        slots_with_feeds()


if __name__ == "__main__":
    main()
