"""The application's one clock: what "now" is, for every service, view and job.

Services take ``now`` as an argument; the web app and the scheduler get it from a :data:`Clock`,
the system's by default. Tests, demos and screenshots stand at a chosen instant with
:func:`clock_from`, which starts there and runs on at the real pace (pages that poll, leases and
timeouts still see time pass). Pure: no Flask, no database.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Clock = Callable[[], datetime]

_WITH_ZONE = re.compile(r"^(?P<stamp>\S+)\s+(?P<zone>[A-Za-z_]+(?:/[A-Za-z0-9_+\-]+)*)$")


def system_clock() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def clock_from(start: datetime) -> Clock:
    """A clock that reads ``start`` now and then runs on at the real pace."""
    if start.tzinfo is None:
        raise ValueError(f"{start.isoformat()} has no time zone; give an offset or a zone name")
    origin = time.monotonic()
    start = start.astimezone(UTC)

    def read() -> datetime:
        return start + timedelta(seconds=time.monotonic() - origin)

    return read


def parse_instant(text: str) -> datetime:
    """An aware instant from ``2027-03-28T08:30:00+02:00``, ``2027-03-28T08:30Z`` or
    ``2027-03-28T08:30 Europe/Paris`` (a local time in a named zone); in UTC.

    Raises :class:`ValueError` with a sentence saying what to write instead.
    """
    text = text.strip()
    zone = None
    match = _WITH_ZONE.match(text)
    if match:
        text = match["stamp"]
        try:
            zone = ZoneInfo(match["zone"])
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{match['zone']!r} is not a known time zone") from None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a date and time; write it like 2027-03-28T08:30+02:00 "
            "or 2027-03-28T08:30 Europe/Paris"
        ) from None
    if zone is not None:
        if moment.tzinfo is not None:
            raise ValueError(f"{text!r} has both an offset and a zone name; give one of them")
        moment = moment.replace(tzinfo=zone)
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone; add an offset (+01:00) or a zone name")
    return moment.astimezone(UTC)
