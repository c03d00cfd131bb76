"""Calendar files (.ics) for a booking, for Outlook, Google Calendar and Apple Calendar. Pure.

One booking is one event with a stable UID; every change raises its SEQUENCE, so calendars
update the event they have instead of adding another. The event is written in the business's
time zone, with its VTIMEZONE. :func:`build_ics` writes one event as an iTIP message (RFC 5546:
a download, an invitation, a cancellation); :func:`build_feed` writes many as a calendar that
clients subscribe to (RFC 7986).
"""

from __future__ import annotations

import unicodedata
from calendar import monthrange
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

import icalendar

PRODID = "-//Bookwise//Bookwise booking//EN"

Status = Literal["CONFIRMED", "TENTATIVE", "CANCELLED"]
Method = Literal["PUBLISH", "REQUEST", "CANCEL"]

# The VTIMEZONE of a feed without events: nothing refers to it, it names the feed's zone. Its
# span is fixed (the module reads no clock), wide enough to hold the present.
EMPTY_FEED_YEARS = (2020, 2040)


@dataclass(frozen=True)
class CalendarEvent:
    uid: str
    sequence: int
    start: datetime
    end: datetime
    timezone: str
    summary: str
    stamp: datetime
    description: str = ""
    location: str = ""
    url: str = ""
    organizer_name: str = ""
    organizer_email: str = ""
    attendee_name: str = ""
    attendee_email: str = ""
    status: Status = "CONFIRMED"
    # A series (issue 18): ``RRULE:FREQ=WEEKLY;INTERVAL=weeks;COUNT=count`` from ``start``, less
    # the ``exdates`` (occurrences left out or cancelled), plus the ``rdates`` (moved ones).
    repeat: SeriesRule | None = None


@dataclass(frozen=True)
class SeriesRule:
    """The recurrence of a series' event: every ``weeks`` weeks, ``count`` times."""

    weeks: int
    count: int
    exdates: tuple[datetime, ...] = ()
    rdates: tuple[datetime, ...] = ()
    # The last occurrence's start and end (the VTIMEZONE covers the series' whole span).
    last_end: datetime | None = None


def event_status(holds_slot: bool, awaiting_approval: bool) -> Status:
    """The event's ``STATUS``: a booking that waits for staff approval is ``TENTATIVE`` (the
    client's calendar shows the time as held, not as certain) until the approval, whose
    confirmation raises the SEQUENCE and says ``CONFIRMED``; one that no longer takes place is
    ``CANCELLED``."""
    if not holds_slot:
        return "CANCELLED"
    return "TENTATIVE" if awaiting_approval else "CONFIRMED"


def build_ics(event: CalendarEvent, method: Method) -> bytes:
    """The .ics file of ``event``: ``PUBLISH`` for a download, ``REQUEST`` for an invitation
    (new or changed), ``CANCEL`` for a cancellation.

    RFC 5546 (iTIP): a ``REQUEST`` or ``CANCEL`` carries the ORGANIZER and the ATTENDEE given;
    a ``PUBLISH`` carries the ORGANIZER when given and never an ATTENDEE (section 3.2.1: "Attendees
    MUST NOT be present"), so that no calendar takes a download for a meeting to answer.
    """
    calendar = _calendar(method)
    first, last = _years(event)
    calendar.add_component(_timezone(event.timezone, first, last))
    status: Status = "CANCELLED" if method == "CANCEL" else event.status
    calendar.add_component(_vevent(event, status, attendee=method != "PUBLISH"))
    data: bytes = calendar.to_ical()
    return data


def build_feed(
    events: Sequence[CalendarEvent], *, name: str, timezone: str, refresh_minutes: int = 15
) -> bytes:
    """A subscribable calendar (what a calendar client polls at a private address):
    ``METHOD:PUBLISH``, ``X-WR-CALNAME`` and ``NAME`` (RFC 7986) = ``name``, ``X-WR-TIMEZONE`` =
    ``timezone``, ``REFRESH-INTERVAL`` and ``X-PUBLISHED-TTL`` = ``refresh_minutes``, one VTIMEZONE
    per zone used (``timezone``'s always), covering all its events' years, and one VEVENT per
    event, written as :func:`build_ics` writes a ``PUBLISH`` (no ATTENDEE; a cancelled event
    says ``STATUS:CANCELLED``)."""
    if refresh_minutes < 1:
        raise ValueError(f"refresh_minutes must be at least 1, not {refresh_minutes}")
    calendar = _calendar("PUBLISH")
    calendar.add("name", icalendar.vText(name))
    calendar.add("x-wr-calname", icalendar.vText(name))
    calendar.add("x-wr-timezone", icalendar.vText(timezone))
    refresh = timedelta(minutes=refresh_minutes)
    calendar.add("refresh-interval", refresh, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", icalendar.vDuration(refresh))
    spans: dict[str, tuple[int, int]] = {}
    for event in events:
        first, last = _years(event)
        known = spans.get(event.timezone)
        spans[event.timezone] = (
            (first, last) if known is None else (min(known[0], first), max(known[1], last))
        )
    if timezone not in spans:
        everything = spans.values()
        spans[timezone] = (
            (min(s[0] for s in everything), max(s[1] for s in everything))
            if spans
            else EMPTY_FEED_YEARS
        )
    for zone in sorted(spans, key=lambda z: (z != timezone, z)):
        calendar.add_component(_timezone(zone, *spans[zone]))
    for event in events:
        calendar.add_component(_vevent(event, event.status, attendee=False))
    data: bytes = calendar.to_ical()
    return data


def _calendar(method: Method) -> icalendar.Calendar:
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", method)
    return calendar


def _vevent(event: CalendarEvent, status: Status, *, attendee: bool) -> icalendar.Event:
    """The VEVENT of ``event`` (every method and the feed write it here)."""
    zone = ZoneInfo(event.timezone)
    vevent = icalendar.Event()
    vevent.add("uid", event.uid)
    vevent.add("sequence", event.sequence)
    vevent.add("dtstamp", _aware(event.stamp, "stamp").astimezone(UTC))
    vevent.add("dtstart", _local(_aware(event.start, "start"), zone))
    vevent.add("dtend", _local(_aware(event.end, "end"), zone))
    vevent.add("summary", _text(event.summary))
    vevent.add("status", status)
    if event.repeat is not None:
        _add_repeat(vevent, event.repeat, zone)
    if event.description:
        vevent.add("description", _text(event.description))
    if event.location or event.url:
        vevent.add("location", _text(event.location or event.url))
    if event.url:
        vevent.add("url", event.url)
    if event.organizer_email:
        vevent.add(
            "organizer",
            icalendar.vCalAddress(f"mailto:{event.organizer_email}"),
            parameters={"CN": _parameter(event.organizer_name or event.organizer_email)},
        )
    if attendee and event.attendee_email:
        vevent.add(
            "attendee",
            icalendar.vCalAddress(f"mailto:{event.attendee_email}"),
            parameters={
                "CN": _parameter(event.attendee_name or event.attendee_email),
                "ROLE": "REQ-PARTICIPANT",
                "PARTSTAT": "ACCEPTED",
            },
        )
    return vevent


def _add_repeat(vevent: icalendar.Event, repeat: SeriesRule, zone: ZoneInfo) -> None:
    """RRULE, then EXDATE and RDATE in the event's zone (each matching a DTSTART of the rule)."""
    vevent.add("rrule", {"FREQ": "WEEKLY", "INTERVAL": repeat.weeks, "COUNT": repeat.count})
    for name, moments in (("exdate", repeat.exdates), ("rdate", repeat.rdates)):
        if moments:
            vevent.add(name, [_local(_aware(m, name), zone) for m in sorted(moments)])


def _aware(moment: datetime, what: str) -> datetime:
    # A naive datetime would be read in the server's own zone: refuse it.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"the event's {what} {moment!r} is naive: give it a time zone")
    return moment


def _local(moment: datetime, zone: ZoneInfo) -> datetime:
    """``moment`` in ``zone`` (written with its TZID), or in UTC when that local time comes twice
    and ``moment`` is the second (the hour the clocks go back): RFC 5545 (3.3.5) reads such a
    local time as the first, an hour early."""
    local = moment.astimezone(zone)
    if local.fold and local.replace(fold=0).utcoffset() != local.utcoffset():
        return moment.astimezone(UTC)
    return local


def _text(value: str) -> str:
    """A TEXT value without control characters (RFC 5545 allows none but the line breaks, which
    are escaped, and the tab)."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(c for c in value if c in "\n\t" or unicodedata.category(c) != "Cc")


def _parameter(value: str) -> str:
    """A parameter value (a CN) on one line and without double quotes, which a parameter cannot
    hold: the RFC 6868 escapes icalendar would write instead (``^'``, ``^n``) are shown as they
    are by Outlook and vobject."""
    value = "".join(" " if unicodedata.category(c) == "Cc" else c for c in value)
    return " ".join(value.replace('"', "'").split())


def _years(event: CalendarEvent) -> tuple[int, int]:
    """The first and last years the VTIMEZONE of ``event`` must cover: a year either side of the
    event's own (local) years."""
    zone = ZoneInfo(event.timezone)
    start = _aware(event.start, "start").astimezone(zone).year
    end = _aware(event.end, "end").astimezone(zone).year
    if event.repeat is not None and event.repeat.last_end is not None:
        end = max(end, _aware(event.repeat.last_end, "last_end").astimezone(zone).year)
    return min(start, end) - 1, max(start, end) + 1


# The scan's step: no zone of the tz database has changed twice within two days since 1970.
_SCAN = 6 * 3600


@lru_cache(maxsize=256)
def _timezone(zone: str, first_year: int, last_year: int) -> icalendar.Timezone:
    """The zone's VTIMEZONE from the start of ``first_year`` to the end of ``last_year`` (built
    once per span: it is the same for every event).

    Written from the zone's transitions rather than by ``icalendar.Timezone.from_tzid``, whose
    daylight-saving onsets are an hour late: each onset's DTSTART is the local time before the
    change (in TZOFFSETFROM), as RFC 5545 (3.6.5) requires, so a calendar that reads the VTIMEZONE
    (rather than the zone's name) places the hour after the change right. The first observance
    is the last change before the span (a real onset, whose hour that comes twice readers can
    tell apart), and a change to a larger offset is DAYLIGHT, as calendars expect (Europe/Dublin's
    winter time, a "negative daylight saving" in the tz database, is then STANDARD).
    """
    tz = ZoneInfo(zone)

    def observance(second: int) -> tuple[timedelta, str]:
        local = datetime.fromtimestamp(second, tz)
        offset = local.utcoffset() or timedelta()
        return offset, local.tzname() or _offset_name(offset)

    start = int(datetime(first_year, 1, 1, tzinfo=tz).timestamp())
    finish = int(datetime(last_year + 1, 1, 1, tzinfo=tz).timestamp())
    # (offset from, offset to, name, daylight saving) -> its local onsets
    onsets: dict[tuple[timedelta, timedelta, str, bool], list[datetime]] = {}
    opened = False  # whether a change before the span opens the VTIMEZONE
    before = start - 366 * 86400
    current = observance(before)
    while before < finish:
        after = before + _SCAN
        following = observance(after)
        if following != current:
            low, high = before, after  # the change is in (low, high]: find its first second
            while high - low > 1:
                middle = (low + high) // 2
                if observance(middle) == current:
                    low = middle
                else:
                    high = middle
            if high <= start:
                onsets.clear()  # only the last change before the span is kept
                opened = True
            onset = datetime.fromtimestamp(high, UTC).replace(tzinfo=None) + current[0]
            key = (current[0], *following, following[0] > current[0])
            onsets.setdefault(key, []).append(onset)
            current = following
        before = after
    if not opened:
        # No change in the year before the span: the observance it starts in, from its start.
        local = datetime.fromtimestamp(start, tz)
        offset, name = observance(start)
        key = (offset, offset, name, (local.dst() or timedelta()) > timedelta())
        onsets.setdefault(key, []).insert(0, local.replace(tzinfo=None))
    parts: list[tuple[datetime, icalendar.Component]] = []
    for (offset_from, offset_to, tzname, daylight), times in onsets.items():
        for run in _yearly_runs(times):
            part = icalendar.TimezoneDaylight() if daylight else icalendar.TimezoneStandard()
            part.add("dtstart", run[0])
            if len(run) > 1:
                month, weekday, week, _ = _yearly(run[0])
                rule = {"freq": "yearly", "bymonth": month, "byday": f"{week}{_DAYS[weekday]}"}
                # UNTIL is in UTC in a VTIMEZONE (RFC 5545, 3.3.10): a day after the last
                # onset, which dateutil (vobject), reading it as a local time, also keeps.
                rule["until"] = (run[-1] - offset_from + timedelta(days=1)).replace(tzinfo=UTC)
                part.add("rrule", rule)
            part.add("tzname", tzname)
            part.add("tzoffsetfrom", offset_from)
            part.add("tzoffsetto", offset_to)
            parts.append((run[0], part))
    vtimezone = icalendar.Timezone()
    vtimezone.add("tzid", zone)
    for _, component in sorted(parts, key=lambda p: p[0]):
        vtimezone.add_component(component)
    return vtimezone


_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def _yearly(onset: datetime) -> tuple[int, int, int, time]:
    """The yearly rule ``onset`` follows: (month, weekday, week, local time); the week is 1 to 4,
    or -1 for the month's last such weekday."""
    last_day = monthrange(onset.year, onset.month)[1]
    week = -1 if onset.day > last_day - 7 else (onset.day - 1) // 7 + 1
    return onset.month, onset.weekday(), week, onset.time()


def _yearly_runs(onsets: list[datetime]) -> list[list[datetime]]:
    """``onsets`` cut into runs of consecutive years that follow one yearly rule, each written as
    one observance with an RRULE (what every calendar reads: vobject, for one, keeps only the
    first date of an RDATE list); an onset that follows no rule is a run of its own."""
    runs: list[list[datetime]] = []
    for onset in onsets:
        run = runs[-1] if runs else None
        if (
            run is not None
            and onset.year == run[-1].year + 1
            and _yearly(onset) == _yearly(run[-1])
        ):
            run.append(onset)
        else:
            runs.append([onset])
    return runs


def _offset_name(offset: timedelta) -> str:
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"


__all__ = ["CalendarEvent", "Method", "Status", "build_feed", "build_ics", "event_status"]
