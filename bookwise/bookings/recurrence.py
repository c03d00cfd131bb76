"""Series of bookings (a weekly course): when the occurrences start, and which staff member can
take them all. Pure: plain data in, plain data out.

An occurrence keeps the *local wall time* of the first one in the calendar's time zone: a weekly
18:00 in Europe/Paris stays 18:00 after the clocks change, so two occurrences are then 167 or
169 hours apart. A wall time the clocks skip on a day is taken as the moment they jump; one they
repeat, as its first occurrence (the availability engine reads working hours the same way).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bookwise.timezones import local_instant
from bookwise.workflows.language import FREQUENCIES, Recurrence


class SeriesRequestError(ValueError):
    """A series the workflow does not allow; ``code`` is stable, for the API."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class SeriesRequest:
    """What a client asks for: ``count`` occurrences, every ``frequency``, from the first start.
    ``skip_unavailable``: book the free occurrences and leave the others out."""

    frequency: str
    count: int
    skip_unavailable: bool = False


def weeks_between(frequency: str) -> int:
    """The weeks between two occurrences of ``frequency`` (``every_2_weeks``: 2)."""
    return FREQUENCIES[frequency]


def check_series_request(recurrence: Recurrence, request: SeriesRequest) -> None:
    """:class:`SeriesRequestError` when the workflow's ``recurrence`` does not allow ``request``."""
    if not recurrence.allowed:
        raise SeriesRequestError("this service does not take series", "series_not_allowed")
    if request.frequency not in recurrence.frequencies:
        offered = ", ".join(recurrence.frequencies)
        raise SeriesRequestError(
            f"frequency {request.frequency!r} is not offered; use one of: {offered}",
            "invalid_frequency",
        )
    if not 2 <= request.count <= recurrence.max_occurrences:
        raise SeriesRequestError(
            f"count must be from 2 to {recurrence.max_occurrences}, got {request.count}",
            "invalid_count",
        )


def occurrence_starts(
    first_start: datetime, frequency: str, count: int, timezone: str
) -> list[datetime]:
    """The starts (aware, UTC) of ``count`` occurrences every ``frequency`` from
    ``first_start``, each at the first one's local wall time in ``timezone``."""
    if first_start.tzinfo is None or first_start.utcoffset() is None:
        raise ValueError(f"naive datetime {first_start!r}: a series needs an aware first start")
    if count < 1:
        raise ValueError(f"a series has at least one occurrence, not {count}")
    zone = ZoneInfo(timezone)
    local = first_start.astimezone(zone)
    minute = local.hour * 60 + local.minute
    step = timedelta(weeks=weeks_between(frequency))
    starts = [first_start.astimezone(UTC)]
    for index in range(1, count):
        day = local.date() + index * step
        seconds = local_instant(day, minute, zone, earliest=True) + local.second
        starts.append(datetime.fromtimestamp(seconds, UTC))
    return starts


def continuous_staff(
    free_staff: Mapping[datetime, Sequence[int]], starts: Sequence[datetime], order: Sequence[int]
) -> int | None:
    """The first staff member (in pool ``order``) free at every one of ``starts``, given who is
    free at each (``free_staff``); None when nobody is free at them all (or no start is free)."""
    if not starts:
        return None
    common = set(order)
    for start in starts:
        common &= set(free_staff.get(start, ()))
        if not common:
            return None
    return next(member for member in order if member in common)
