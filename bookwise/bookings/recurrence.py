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
from itertools import pairwise
from zoneinfo import ZoneInfo

from bookwise.timezones import local_instant
from bookwise.workflows.language import FREQUENCIES, Recurrence


class SeriesRequestError(ValueError):
    """A series the workflow does not allow; ``code`` is stable, for the API."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


# How far from an occurrence its replacement may be: that day, or up to this many days before
# or after it (the week around it).
REPLACEMENT_DAYS = 3


@dataclass(frozen=True)
class Replacement:
    """Another time booked instead of one occurrence of the series' rule (one not free):
    ``replaces`` is the occurrence's start, ``start`` the time booked instead."""

    replaces: datetime
    start: datetime


@dataclass(frozen=True)
class SeriesRequest:
    """What a client asks for: ``count`` occurrences, every ``frequency``, from the first start.
    ``skip_unavailable``: book the free occurrences and leave the others out (``leave_out``,
    when given: only those, the ones the client saw were not free); ``replacements``: other
    times booked instead of some occurrences."""

    frequency: str
    count: int
    skip_unavailable: bool = False
    replacements: tuple[Replacement, ...] = ()
    leave_out: frozenset[datetime] | None = None


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


def check_replacements(
    starts: Sequence[datetime],
    replacements: Sequence[Replacement],
    duration: timedelta,
    timezone: str,
) -> list[datetime]:
    """The starts booked when ``replacements`` take the place of some of the rule's ``starts``
    (in order); :class:`SeriesRequestError` (``invalid_replacement``) when one replaces no
    occurrence of the rule, replaces one already replaced, is not that day or within
    :data:`REPLACEMENT_DAYS` days of it (in ``timezone``), or overlaps another time booked."""
    zone = ZoneInfo(timezone)
    rule = {start.astimezone(UTC): start for start in starts}
    replaced: set[datetime] = set()
    for replacement in replacements:
        for moment in (replacement.replaces, replacement.start):
            if moment.tzinfo is None or moment.utcoffset() is None:
                raise SeriesRequestError(
                    f"naive time {moment.isoformat()}: give its UTC offset", "invalid_replacement"
                )
        replaces = replacement.replaces.astimezone(UTC)
        if replaces not in rule:
            raise SeriesRequestError(
                f"{replacement.replaces.isoformat()} is not an occurrence of this series",
                "invalid_replacement",
            )
        if replaces in replaced:
            raise SeriesRequestError(
                f"the occurrence {replacement.replaces.isoformat()} is replaced twice",
                "invalid_replacement",
            )
        replaced.add(replaces)
        days = abs(
            (replacement.start.astimezone(zone).date() - replaces.astimezone(zone).date()).days
        )
        if days > REPLACEMENT_DAYS:
            raise SeriesRequestError(
                f"the replacement {replacement.start.isoformat()} is {days} days from the "
                f"occurrence it replaces; it must be within {REPLACEMENT_DAYS}",
                "invalid_replacement",
            )
    booked = sorted(
        [start for start in rule if start not in replaced]
        + [r.start.astimezone(UTC) for r in replacements]
    )
    for earlier, later in pairwise(booked):
        if later < earlier + duration:
            raise SeriesRequestError(
                f"{later.isoformat()} overlaps another time of the series ({earlier.isoformat()})",
                "invalid_replacement",
            )
    return booked


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
