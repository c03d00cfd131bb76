"""Busy times read from a staff member's own calendar: iCalendar text in, UTC intervals out. Pure.

Staff members publish their Outlook, Google or Apple calendar (an address ending in .ics) or
upload an export, so that bookings avoid the times they are busy elsewhere. ``busy_intervals``
reads such a file over a window: it expands recurring events (recurring_ical_events), places
every time in a real zone, leaves out what does not take time (free, cancelled, zero-length) and
merges the rest into the intervals the availability engine takes away. ``minimize`` keeps only
what those times need, and is what the database stores: the titles, places, descriptions and
attendees of a doctor's or an employee's calendar are health and HR data.

Real exports are untidy, so reading is tolerant where a mistake costs one event and strict where
it would cost them all:

- Text that is not a whole calendar (a login page, JSON, a cut-short download) is refused
  (:class:`FeedError` ``not_icalendar``): read as an empty calendar, it would free every busy
  time of the staff member.
- An event that cannot be read (a DTSTART that is no date, a rule that cannot be expanded) is
  left out and counted in :attr:`BusyRead.ignored`; the other events still count.
- Time zones: an IANA name is read from the tz database; a Windows name (Outlook, Exchange) as
  the IANA zone it stands for, whatever the file's own VTIMEZONE says (Outlook writes incomplete
  ones); any other name (Outlook's "Customized Time Zone") from the file's VTIMEZONE; a name
  nothing defines in the business's zone. icalendar caches every VTIMEZONE it parses by name,
  for the whole process: two feeds that define "Customized Time Zone" differently would share
  whichever came first. Every zone is therefore resolved again here, for each file.
- Google writes times in UTC and names the calendar's zone in X-WR-TIMEZONE: those times are
  moved into that zone (x_wr_timezone) before rules are expanded, so that a weekly 09:00 stays
  at 09:00 local time across a change of daylight saving time. Floating times (no zone) are read
  in that zone too when the calendar names one, else in the business's; all-day events always in
  the business's, from local midnight to local midnight.
- Expansion is lazy and counted, so that a hostile or broken rule cannot take the process down:
  more than :data:`MAX_OCCURRENCES` occurrences near the window (a FREQ=SECONDLY rule gives
  86,400 a day), or more than ``MAX_STEPS`` steps through rules in all, stop the reading at once
  with ``too_many_events``. A rule that can never match (BYMONTH=2;BYMONTHDAY=30), on which
  python-dateutil would spin through every year up to 9999, is found first with a probe over one
  400-year cycle of the Gregorian calendar and dropped (its DTSTART still counts, as RFC 5545
  says).
- Feeds carry years of past events: one-off events whose written dates are days away from the
  window are left out before parsing, which is most of the speed of a refresh (benchmarks/feeds.py
  measures it).
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import recurring_ical_events  # type: ignore[import-untyped]
import x_wr_timezone  # type: ignore[import-untyped]
from dateutil.rrule import rrulestr  # type: ignore[import-untyped]
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from bookwise.errors import N_, Message
from bookwise.timezones import zone_names

# Occurrences of all events in the window (and a day either side of it) beyond which a calendar
# is refused: a working calendar has a few thousand; this many is a runaway rule.
MAX_OCCURRENCES = 50_000
# Steps through recurrence rules in all, before the window too (a rule with COUNT must be walked
# from its start): two seconds of python-dateutil's time at most.
MAX_STEPS = 10 * MAX_OCCURRENCES
# The largest text read at all; bookwise.calendars.fetching stops downloads well before
# (feeds.max_bytes), this bounds what any other caller can make the parser chew on.
MAX_BYTES = 64_000_000

_MESSAGES = {
    "not_icalendar": N_("This is not an iCalendar file (%(detail)s)."),
    "too_many_events": N_("The calendar has more than %(detail)s events in the period read."),
    "too_large": N_("The calendar is larger than the limit of %(detail)s bytes."),
}


class FeedError(ValueError):
    """The text cannot be read as a calendar. ``code`` is a stable word ("not_icalendar",
    "too_many_events", "too_large"); ``message`` says what is wrong in words for a person, with
    the specifics in its ``detail`` value (a short English phrase, or the limit passed)."""

    def __init__(self, code: str, detail: str = "") -> None:
        self.code = code
        self.message = Message(
            _MESSAGES.get(code, N_("The calendar cannot be read (%(detail)s).")),
            {"detail": detail or code},
        )
        super().__init__(self.message.text % dict(self.message.values))


@dataclass(frozen=True)
class BusyRead:
    """What a calendar says about a window: the busy intervals (aware UTC datetimes, sorted,
    overlapping or touching ones merged, clipped to the window), how many VEVENT components the
    file has (before expansion), and how many were left out: occurrences in the window that do
    not take time (TRANSP:TRANSPARENT, STATUS:CANCELLED, zero-length) and events that could not
    be read."""

    intervals: tuple[tuple[datetime, datetime], ...]
    events: int
    ignored: int


# --- the text: decoding, structure, what is kept ------------------------------------------------

# A fold is a line break followed by a space or a tab (as icalendar unfolds, blank lines between
# tolerated).
_UNFOLD = re.compile(r"(?:(?<!\n)\r\n|(?<![\r\n])\n)(?:\r?\n)*[ \t]")
_LINE_BREAK = re.compile(r"\r\n|\n|\r")
_NAME = re.compile(r"[A-Za-z0-9-]+")

_CALENDAR_PROPERTIES = frozenset({"VERSION", "PRODID", "CALSCALE", "X-WR-TIMEZONE"})
_EVENT_PROPERTIES = frozenset(
    {
        "UID",
        "DTSTAMP",
        "DTSTART",
        "DTEND",
        "DURATION",
        "RRULE",
        "RDATE",
        "EXDATE",
        "RECURRENCE-ID",
        "SEQUENCE",
        "TRANSP",
        "STATUS",
    }
)
_ZONE_PARTS = frozenset({"STANDARD", "DAYLIGHT"})


def _decode(text: bytes | str) -> str:
    """The text as a string: UTF-8 (a byte order mark dropped), or UTF-16 when it starts with
    its byte order mark (some Windows exports); bytes that are not valid become U+FFFD rather
    than an error, since only the times matter and they are ASCII."""
    if isinstance(text, str):
        return text.removeprefix("\ufeff")
    if text.startswith((b"\xff\xfe", b"\xfe\xff")):
        return text.decode("utf-16", errors="replace")
    return text.decode("utf-8-sig", errors="replace")


def _what_it_looks_like(body: str) -> str:
    """A few words on what a text that does not open with BEGIN:VCALENDAR seems to be, so the
    person who pasted the address of a web page instead of the calendar's understands (marked for
    the catalogs: bookwise.calendars.sources.in_words translates them)."""
    head = body[:1000]
    odd = sum(1 for ch in head if ch == "\ufffd" or (not ch.isprintable() and ch not in "\r\n\t"))
    if odd > len(head) // 20:
        return N_("it looks like binary data")
    start = head.lstrip().lower()
    if start.startswith(("<!doctype html", "<html")) or "<body" in start:
        return N_("it looks like a web page")
    if start.startswith("<"):
        return N_("it looks like XML or a web page")
    if start.startswith(("{", "[")):
        return N_("it looks like JSON data")
    return N_("it does not begin with BEGIN:VCALENDAR")


def _value_start(line: str) -> int:
    """The index just past the colon that separates a content line's value (colons inside
    quoted parameter values do not count)."""
    if '"' not in line:
        return line.find(":") + 1 or len(line)
    quoted = False
    for index, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == ":" and not quoted:
            return index + 1
    return len(line)


def _uid(line: str) -> str:
    """The UID line with its value replaced by a digest: UIDs only tie an event's moved
    occurrences to their series, and some servers write names or addresses in them."""
    value = line[_value_start(line) :]
    return "UID:" + hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()[:40]


# The parts a VTIMEZONE's RRULE may have. Its rules say when clocks change: once a year, on a
# given day. python-dateutil walks them from their DTSTART (1601 in Outlook's files) each time a
# time is converted, and icalendar builds the zone as soon as it parses it: a rule of another
# frequency (FREQ=SECONDLY) or that names many days a year would be walked millions of steps.
_ZONE_RULE_PARTS = frozenset(
    {"FREQ", "INTERVAL", "UNTIL", "COUNT", "BYMONTH", "BYDAY", "BYMONTHDAY", "BYYEARDAY", "WKST"}
)


def _sane_zone_rule(rule: str) -> bool:
    """Whether a VTIMEZONE's RRULE is yearly and picks at most a few days a year."""
    parts = _rule_parts(rule)
    if parts.get("FREQ") != "YEARLY" or not parts.keys() <= _ZONE_RULE_PARTS:
        return False
    months = len(parts["BYMONTH"].split(",")) if "BYMONTH" in parts else 12
    bounds = []
    if "BYMONTHDAY" in parts:
        bounds.append(months * len(parts["BYMONTHDAY"].split(",")))
    if "BYYEARDAY" in parts:
        bounds.append(len(parts["BYYEARDAY"].split(",")))
    if "BYDAY" in parts:
        days = parts["BYDAY"].split(",")
        bounds.append(months * sum(1 if day[:1] in "+-0123456789" else 5 for day in days))
    return min(bounds, default=1) <= 31


def _zone_block(lines: list[str], seen: set[str]) -> list[str]:
    """A VTIMEZONE's lines when icalendar reads them, their rules are sane and their TZID is the
    first of that name; else none (events naming it then fall back as for a name nothing
    defines). icalendar refuses a whole calendar over one bad line in a VTIMEZONE; a bad zone
    should cost only itself."""
    rules = [value for name, value in map(_name_and_value, lines) if name == "RRULE"]
    if not all(_sane_zone_rule(rule) for rule in rules):
        return []
    try:
        zone = icalendar.Timezone.from_ical("\r\n".join(lines) + "\r\n")
        tzid = str(zone["TZID"])
    except Exception:  # anything the parser does on bad input: the zone is left out
        return []
    if tzid in seen:
        return []
    seen.add(tzid)
    return lines


_CALENDAR = ("VCALENDAR",)
_EVENT = ("VCALENDAR", "VEVENT")
_ZONE = ("VCALENDAR", "VTIMEZONE")


def _enter_or_leave(
    stack: list[str], name: str, line: str, number: int, last: int
) -> tuple[str, ...]:
    """Open or close a component (``stack`` changed in place); the path of that component.
    An END that does not close the last BEGIN makes the file unreadable: nothing says where the
    events it was meant to close end."""
    component = line[_value_start(line) :].strip().upper()
    if name == "BEGIN":
        stack.append(component)
        return tuple(stack)
    if not stack or stack[-1] != component:
        if number == last:
            raise FeedError("not_icalendar", N_("it is cut short: its last line is incomplete"))
        opened = f"BEGIN:{stack[-1]}" if stack else "no BEGIN"
        raise FeedError("not_icalendar", f"line {number}: END:{component} after {opened}")
    path = tuple(stack)
    stack.pop()
    return path


def _kept(path: tuple[str, ...], name: str) -> bool:
    """Whether a line named ``name`` in the component at ``path`` is kept (VTIMEZONEs aside)."""
    wanted = (
        _CALENDAR_PROPERTIES if path == _CALENDAR else _EVENT_PROPERTIES if path == _EVENT else None
    )
    return wanted is not None and (name in ("BEGIN", "END") or name in wanted)


def _content_lines(text: bytes | str) -> tuple[list[str], int]:
    """The unfolded content lines busy times need, and the number of VEVENTs in the file.

    The structure is checked as it is read: the first line must be BEGIN:VCALENDAR, every END
    must close the last BEGIN, and the file must not stop inside a component (a cut-short
    download). Kept: each VCALENDAR's VERSION, PRODID, CALSCALE and X-WR-TIMEZONE, its VTIMEZONEs
    whole (their STANDARD and DAYLIGHT parts), and its VEVENTs' properties that say when they
    take place or whether they take time. Everything else (other properties, alarms, to-dos,
    journal entries, free/busy blocks, lines that are no content line) is dropped.
    """
    if len(text) > MAX_BYTES:
        raise FeedError("too_large", str(MAX_BYTES))
    body = _decode(text).strip()
    if not body:
        raise FeedError("not_icalendar", N_("it is empty"))
    lines = _LINE_BREAK.split(_UNFOLD.sub("", body))
    if lines[0].strip().upper() != "BEGIN:VCALENDAR":
        raise FeedError("not_icalendar", _what_it_looks_like(body))
    kept: list[str] = []
    stack: list[str] = []
    zone: list[str] = []
    zones_seen: set[str] = set()
    events = 0
    for number, line in enumerate(lines, 1):
        match = _NAME.match(line)
        if match is None or line[match.end() : match.end() + 1] not in (":", ";"):
            continue  # not a content line (blank, or text that lost its fold)
        name = match.group().upper()
        if name in ("BEGIN", "END"):
            path = _enter_or_leave(stack, name, line, number, len(lines))
            if name == "BEGIN" and path == _EVENT:
                events += 1
        else:
            path = tuple(stack)
        if path[:2] == _ZONE:
            if len(path) == 2 or (len(path) == 3 and path[2] in _ZONE_PARTS):
                zone.append(line)
            if path == _ZONE and name == "END":
                kept.extend(_zone_block(zone, zones_seen))
                zone = []
        elif _kept(path, name):
            kept.append(_uid(line) if name == "UID" else line)
    if stack:
        raise FeedError("not_icalendar", f"it is cut short: END:{stack[0]} is missing")
    return kept, events


def _fold(line: str) -> str:
    """``line`` folded after at most 75 octets, as RFC 5545 asks (never inside a character)."""
    if len(line) <= 75 and line.isascii():
        return line
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for char in line:
        width = len(char.encode("utf-8"))
        if current and size + width > (75 if not parts else 74):
            parts.append("".join(current))
            current, size = [], 0
        current.append(char)
        size += width
    parts.append("".join(current))
    return "\r\n ".join(parts)


def minimize(text: bytes | str) -> str:
    """The same calendar with only what busy times need: each VCALENDAR's VERSION, PRODID,
    CALSCALE and X-WR-TIMEZONE, its VTIMEZONEs, and each VEVENT with only UID, DTSTAMP, DTSTART,
    DTEND, DURATION, RRULE, RDATE, EXDATE, RECURRENCE-ID, SEQUENCE, TRANSP and STATUS. No
    SUMMARY, DESCRIPTION, LOCATION, ATTENDEE, ORGANIZER, ATTACH, alarms, to-dos, journal entries
    or free/busy blocks: this is what the database keeps of a staff member's calendar, and those
    are health and HR data. UIDs are replaced by a digest (they only tie moved occurrences to
    their series; some servers write names in them).

    Lines are kept as written (not re-encoded), so ``busy_intervals(minimize(x))`` equals
    ``busy_intervals(x)``: ``busy_intervals`` reads exactly these lines. Raises
    :class:`FeedError` as ``busy_intervals`` does for text that is not a calendar.
    """
    lines, _events = _content_lines(text)
    return "".join(_fold(line) + "\r\n" for line in lines)


# --- time zones ----------------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _tz_database_name(tzid: str) -> str | None:
    """The IANA zone a TZID stands for: itself, the zone of a Windows name ("W. Europe Standard
    Time" -> Europe/Berlin), or the end of a "globally unique" TZID that names one
    ("/freeassociation.sourceforge.net/Europe/Paris"); None for any other name."""
    known = zone_names()
    cleaned = tzid.strip().strip('"').strip("/")
    windows = WINDOWS_TO_OLSON.get(cleaned)
    if cleaned in known:
        return cleaned
    if windows in known:
        return windows
    parts = cleaned.split("/")
    for first in range(1, len(parts)):
        candidate = "/".join(parts[first:])
        if candidate in known:
            return candidate
    return None


class _Zones:
    """The zones one calendar's TZIDs stand for, each resolved once (module docstring)."""

    def __init__(self, calendar: icalendar.Calendar, fallback: tzinfo) -> None:
        self._definitions = {
            str(component.get("TZID", "")).strip("/"): component
            for component in calendar.subcomponents
            if isinstance(component, icalendar.Timezone)
        }
        self._fallback = fallback
        self._resolved: dict[str, tzinfo] = {}

    def __call__(self, tzid: str) -> tzinfo:
        zone = self._resolved.get(tzid)
        if zone is None:
            zone = self._resolved[tzid] = self._resolve(tzid)
        return zone

    def _resolve(self, tzid: str) -> tzinfo:
        name = _tz_database_name(tzid)
        if name is not None:
            return ZoneInfo(name)
        definition = self._definitions.get(tzid.strip("/"))
        if definition is not None:
            try:
                # lookup_tzid=False: this file's definition, not one cached from another file.
                zone: tzinfo = definition.to_tz(lookup_tzid=False)
            except Exception:  # a VTIMEZONE icalendar cannot turn into a zone
                return self._fallback
            return zone
        return self._fallback


def _place(value: Any, tzid: str | None, zones: _Zones, floating: tzinfo) -> Any:
    """A DTSTART/DTEND/RDATE/EXDATE/RECURRENCE-ID value with its real zone: the wall time as
    written, in the zone its TZID stands for (icalendar has already attached one, perhaps from
    another file or none at all); a floating time in ``floating``; UTC times, dates and
    durations as they are."""
    if isinstance(value, tuple):  # an RDATE period: (start, end or duration)
        return tuple(_place(part, tzid, zones, floating) for part in value)
    if not isinstance(value, datetime):
        return value
    if tzid:
        return value.replace(tzinfo=zones(tzid))
    if value.tzinfo is None:
        return value.replace(tzinfo=floating)
    return value


def _place_event(event: icalendar.Component, zones: _Zones, floating: tzinfo) -> None:
    """Every time of ``event`` placed (:func:`_place`), in place; raises (icalendar's
    BrokenCalendarProperty, a ValueError) when one of them could not be parsed."""
    for name in ("DTSTART", "DTEND", "RECURRENCE-ID"):
        prop = event.get(name)
        if prop is not None:
            prop.dt = _place(prop.dt, prop.params.get("TZID"), zones, floating)
    for name in ("RDATE", "EXDATE"):
        found = event.get(name)
        for values in found if isinstance(found, list) else [found] if found else []:
            for item in values.dts:
                tzid = item.params.get("TZID") or values.params.get("TZID")
                item.dt = _place(item.dt, tzid, zones, floating)


# --- recurrence rules ----------------------------------------------------------------------------


class _Exhausted(Exception):
    """More occurrences or rule steps than a calendar may have (becomes ``too_many_events``)."""


class _Unsupported(Exception):
    """A rule this module does not expand (not a ValueError: recurring_ical_events would take it
    for a badly written UNTIL and try again)."""


@dataclass
class _Budget:
    steps: int = 0
    occurrences: int = 0

    def step(self, count: int = 1) -> None:
        self.steps += count
        if self.steps > MAX_STEPS:
            raise _Exhausted

    def occurrence(self) -> None:
        self.occurrences += 1
        if self.occurrences > MAX_OCCURRENCES:
            raise _Exhausted


def _rule_parts(rule: str) -> dict[str, str]:
    """``FREQ=WEEKLY;BYDAY=MO`` as ``{"FREQ": "WEEKLY", "BYDAY": "MO"}``."""
    pairs = (part.partition("=") for part in rule.split(";"))
    return {key.strip().upper(): value.strip().upper() for key, _, value in pairs if key}


# Rule parts after which a rule may match no day at all; without them every period has a match.
_SPARSE = ("BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYSETPOS", "BYEASTER")
_DAY_FILTERS = ("BYMONTH", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYEASTER", "WKST")
# Rules whose periods have a fixed length in wall time, by which their start can be moved.
_PERIODS = {
    "WEEKLY": timedelta(weeks=1),
    "DAILY": timedelta(days=1),
    "HOURLY": timedelta(hours=1),
    "MINUTELY": timedelta(minutes=1),
    "SECONDLY": timedelta(seconds=1),
}
# A leap year 404 years before the end of datetime: a probe from it sees a whole 400-year cycle
# of the Gregorian calendar (weekdays and leap years repeat after it) and then stops.
_PROBE_YEAR = 9596
# The periods a probe that finds nothing has gone through (sub-daily rules are probed yearly).
_PROBE_COST = {"MONTHLY": 404 * 12, "WEEKLY": 404 * 53}


def _never_matches(rule: str, start: datetime) -> bool:
    """Whether ``rule`` (from ``start``) has no occurrence at all: python-dateutil would look for
    one through every year up to 9999, seconds of work per rule. Decided by a probe over one
    400-year cycle, with the rule's own frequency when a period is a week or longer, else with the
    rule's day filters on a yearly rule (a sub-daily rule matches no time when no day passes)."""
    parts = _rule_parts(rule)
    days = [day for day in parts.get("BYDAY", "").split(",") if day]
    numbered = any(day[:1] in "+-0123456789" for day in days)
    frequency = parts.get("FREQ", "")
    # A monthly or yearly rule takes its day of the month from DTSTART when it names none, which
    # may not exist (the 30th of February): those are always probed (they find a match in a few
    # periods). Without the parts below, a weekly or shorter rule has a match in every period.
    if (
        frequency not in ("YEARLY", "MONTHLY")
        and not numbered
        and not any(key in parts for key in _SPARSE)
    ):
        return False
    try:
        if frequency in ("YEARLY", "MONTHLY", "WEEKLY"):
            probe_parts = {
                k: v for k, v in parts.items() if k not in ("COUNT", "UNTIL", "INTERVAL")
            }
            probe_start = start.replace(tzinfo=None, year=_PROBE_YEAR)
        elif "BYSETPOS" in parts:
            raise _Unsupported(f"BYSETPOS with FREQ={frequency}")
        else:
            probe_parts = {k: v for k, v in parts.items() if k in _DAY_FILTERS}
            if days:
                probe_parts["BYDAY"] = ",".join(day.lstrip("+-0123456789") for day in days)
            probe_parts |= {"FREQ": "YEARLY", "BYHOUR": "0", "BYMINUTE": "0", "BYSECOND": "0"}
            probe_start = datetime(_PROBE_YEAR, 1, 1)  # noqa: DTZ001 (a naive probe)
        text = ";".join(f"{key}={value}" for key, value in probe_parts.items())
        probe = rrulestr(text, dtstart=probe_start, cache=False)
        return next(iter(probe), None) is None
    except (ValueError, TypeError, OverflowError) as exc:
        raise _Unsupported(str(exc)) from exc


class _Rules(recurring_ical_events.Series.RecurrenceRules):  # type: ignore[misc]
    """recurring_ical_events' rules of a series, walked lazily and counted.

    The library asks python-dateutil for ``between(start, end)``, which builds a list of every
    occurrence, and walks every rule from its first occurrence: a FREQ=SECONDLY rule makes
    millions of datetimes before anything can be counted. Here rules are iterated one occurrence
    at a time (each a step of the budget), a rule without COUNT whose periods have a fixed length
    starts from the period just before the window rather than from its DTSTART of years ago, and
    rules that never match are left out.
    """

    def __init__(self, core: _Adapter) -> None:
        self._never: set[int] = set()
        super().__init__(core)

    def rrulestr(self, rule_string: str) -> Any:
        rule = super().rrulestr(rule_string)
        if _never_matches(rule_string, self.start):
            # The probe went through a whole cycle: that work counts, so that a file of such
            # rules stops like one of rules that match too often.
            self.core.budget.step(_PROBE_COST.get(_rule_parts(rule_string).get("FREQ", ""), 404))
            self._never.add(id(rule))
        return rule

    def _first_walked(self, rule: Any, earliest: datetime) -> datetime | None:
        """The period boundary of ``rule`` a day before ``earliest`` to walk it from (the same
        occurrences from there on: its periods have a fixed length in wall time, which is what
        python-dateutil steps in, and no COUNT needs the ones before); None to walk it from its
        DTSTART."""
        parts = _rule_parts(getattr(rule, "string", ""))
        period = _PERIODS.get(parts.get("FREQ", ""))
        if period is None or "COUNT" in parts:
            return None
        try:
            period *= max(1, int(parts.get("INTERVAL", "1")))
            zone = self.start.tzinfo
            first = self.start.replace(tzinfo=None)
            target = (earliest.astimezone(zone) if zone else earliest).replace(tzinfo=None)
            steps = (target - timedelta(days=1) - first) // period
            moved: datetime = (first + steps * period).replace(tzinfo=zone)
        except (ValueError, OverflowError):
            return None
        return moved if steps > 0 else None

    def _walked(self, rule: Any, earliest: datetime) -> Any:
        """``rule`` as walked: from :meth:`_first_walked`, and without python-dateutil's cache,
        which would keep every occurrence walked."""
        first = self._first_walked(rule, earliest)
        try:
            if first is None:
                return rule.replace(cache=False)
            return rule.replace(dtstart=first, cache=False)
        except (ValueError, OverflowError):
            return rule

    def rrule_between(self, span_start: Any, span_stop: Any) -> Iterator[Any]:
        budget: _Budget = self.core.budget
        lowest = recurring_ical_events.util.convert_to_datetime(span_start, self.tzinfo)
        highest = recurring_ical_events.util.convert_to_datetime(span_stop, self.tzinfo)
        for index, rule in enumerate(self.rrules):
            if id(rule) in self._never:
                continue
            walked = self._walked(rule, lowest) if index else rule
            until = getattr(rule, "until", None)
            for start in walked:
                budget.step()
                if start > highest:
                    break
                if start < lowest:
                    continue
                if until is not None and recurring_ical_events.util.compare_greater(start, until):
                    break  # (the library's check: dateutil's UNTIL may have been widened)
                yield start


class _Adapter(recurring_ical_events.EventAdapter):  # type: ignore[misc]
    """A VEVENT, with whether it takes time and the budget its series counts against."""

    def __init__(self, component: icalendar.Component, budget: _Budget) -> None:
        super().__init__(component)
        self.budget = budget
        self.busy = (
            str(component.get("STATUS", "")).upper() != "CANCELLED"
            and str(component.get("TRANSP", "")).upper() != "TRANSPARENT"
        )


class _Occurrence(recurring_ical_events.Occurrence):  # type: ignore[misc]
    def __init__(self, adapter: _Adapter, start: Any, end: Any, sequence: int) -> None:
        super().__init__(adapter, start, end, sequence=sequence)
        self.busy = adapter.busy


class _Series(recurring_ical_events.Series):  # type: ignore[misc]
    """The events of one UID (a series, its moved occurrences), expanded with :class:`_Rules`;
    each occurrence knows whether its own event (a moved occurrence may be cancelled) takes
    time."""

    RecurrenceRules = _Rules

    def occurrence(self, adapter: _Adapter, start: Any = None, end: Any = None) -> _Occurrence:
        return _Occurrence(adapter, start, end, sequence=self.sequence)


# --- reading -------------------------------------------------------------------------------------

# How much wider than the window occurrences are asked for: the library compares all-day dates
# with the window as if they were UTC midnights; the exact clipping is done here.
_MARGIN = timedelta(days=1)


_RAW_TIME = re.compile(r"(\d{8})(?:T\d{6}Z?)?")
# Lines whose value changes nothing to busy times, left out before parsing (a third of a
# feed's lines): DTSTAMP, and TRANSP or STATUS other than the two values that free the time.
_NEUTRAL = frozenset({"DTSTAMP", "TRANSP", "STATUS"})
_FREEING = frozenset({("TRANSP", "TRANSPARENT"), ("STATUS", "CANCELLED")})


def _raw_day(block: dict[str, str], name: str) -> str | None:
    """The YYYYMMDD of a DTSTART or DTEND as written, when it is a plain date or time."""
    value = block.get(name)
    match = _RAW_TIME.fullmatch(value) if value is not None else None
    return match.group(1) if match else None


def _out_of_reach(block: dict[str, str], first_day: str, last_day: str) -> bool:
    """Whether a one-off event (no rule, no other event with its UID) certainly ends before
    ``first_day`` or starts after ``last_day``, read from its text alone (the days have a
    margin for any zone). Feeds carry years of past events; parsing only those near the window
    is most of the speed of a refresh."""
    start = _raw_day(block, "DTSTART")
    if start is None:
        return False
    if "DTEND" in block:
        end = _raw_day(block, "DTEND")
        return end is not None and (max(start, end) < first_day or min(start, end) > last_day)
    if "DURATION" in block:
        return start > last_day and not block["DURATION"].startswith("-")
    return start < first_day or start > last_day  # a day at most


def _name_and_value(line: str) -> tuple[str, str]:
    """A kept content line's name (upper case) and value (as written, stripped)."""
    match = _NAME.match(line)
    return (match.group().upper() if match else ""), line[_value_start(line) :].strip()


def _for_window(lines: list[str], start: datetime, end: datetime) -> list[str]:
    """The content lines worth parsing for the window: one-off events out of its reach and
    lines that change nothing (``_NEUTRAL``) left out."""
    first_day = (start - 2 * _MARGIN).strftime("%Y%m%d")
    last_day = (end + 2 * _MARGIN).strftime("%Y%m%d")
    parsed = [_name_and_value(line) for line in lines]
    blocks: list[tuple[int, int, dict[str, str]]] = []
    uids: dict[str, int] = defaultdict(int)
    block: dict[str, str] | None = None
    opened = 0
    for index, (name, value) in enumerate(parsed):
        if name == "BEGIN" and value.upper() == "VEVENT":
            opened, block = index, {}
        elif name == "END" and value.upper() == "VEVENT" and block is not None:
            blocks.append((opened, index, block))
            uids[block.get("UID", f"#{opened}")] += 1
            block = None
        elif block is not None:
            block[name] = value
    skipped: set[int] = set()
    for first, last, fields in blocks:
        if (
            uids[fields.get("UID", f"#{first}")] == 1
            and not fields.keys() & {"RRULE", "RDATE", "RECURRENCE-ID"}
            and _out_of_reach(fields, first_day, last_day)
        ):
            skipped.update(range(first, last + 1))
    return [
        line
        for index, (line, (name, value)) in enumerate(zip(lines, parsed, strict=True))
        if index not in skipped and (name not in _NEUTRAL or (name, value.upper()) in _FREEING)
    ]


def _utc(value: date | datetime, zone: tzinfo) -> datetime:
    """An occurrence's start or end as an aware UTC datetime: a date is local midnight in
    ``zone`` (DST-correct: the day's own offset), a naive datetime a wall time in ``zone``."""
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(), tzinfo=zone)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def _zone_named(name: object) -> ZoneInfo | None:
    found = _tz_database_name(str(name)) if name else None
    return ZoneInfo(found) if found else None


@dataclass
class _Reading:
    """One reading of a file over a window: what is found as the calendars are gone through."""

    start: datetime
    end: datetime
    zone: ZoneInfo
    budget: _Budget
    intervals: list[tuple[datetime, datetime]]
    ignored: int = 0

    def calendar(self, calendar: icalendar.Calendar) -> None:
        """Read the events of one VCALENDAR."""
        named = _zone_named(calendar.get("X-WR-TIMEZONE"))
        zones = _Zones(calendar, self.zone)
        readable = []
        for component in calendar.subcomponents:
            if component.name != "VEVENT":
                readable.append(component)
                continue
            try:
                _place_event(component, zones, named or self.zone)
            except Exception:  # a time icalendar could not parse: this event is left out
                self.ignored += 1
            else:
                readable.append(component)
        calendar.subcomponents = readable
        if named is not None:
            calendar = x_wr_timezone.to_standard(calendar, timezone=named)
        series: dict[str, list[icalendar.Component]] = defaultdict(list)
        for component in calendar.subcomponents:
            if component.name == "VEVENT":
                series[str(component.get("UID", id(component)))].append(component)
        for events in series.values():
            self.series(events)

    def series(self, events: list[icalendar.Component]) -> None:
        """Read the events of one UID; all left out (and counted) when they cannot be
        expanded."""
        found = []
        try:
            expanded = _Series([_Adapter(event, self.budget) for event in events])
            for occurrence in expanded.between(self.start - _MARGIN, self.end + _MARGIN):
                self.budget.occurrence()
                found.append(
                    (_utc(occurrence.start, self.zone), _utc(occurrence.end, self.zone), occurrence)
                )
        except _Exhausted:
            raise
        except Exception:  # the library on a series it cannot expand: only this one is lost
            self.ignored += len(events)
            return
        for start, end, occurrence in found:
            self.occurrence(start, end, occurrence.busy)

    def occurrence(self, start: datetime, end: datetime, busy: bool) -> None:
        if end <= start:  # zero-length (counted when it is in the window)
            if self.start <= start < self.end:
                self.ignored += 1
            return
        start, end = max(start, self.start), min(end, self.end)
        if end <= start:
            return
        if not busy:
            self.ignored += 1
            return
        self.intervals.append((start, end))


def _merged(intervals: list[tuple[datetime, datetime]]) -> tuple[tuple[datetime, datetime], ...]:
    """Sorted, with overlapping and touching intervals made one."""
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return tuple(merged)


def busy_intervals(text: bytes | str, start: datetime, end: datetime, *, timezone: str) -> BusyRead:
    """Busy intervals of the calendar text between aware datetimes ``start`` and ``end``.

    ``timezone`` (an IANA name, the business's zone) places floating times (unless the calendar
    names its zone in X-WR-TIMEZONE), TZIDs that nothing defines, and all-day events: an all-day
    event on 2027-03-01 is busy from local midnight to the next local midnight, DST-correct, and
    one of several days spans all of them. An event with a DTSTART only lasts a day when it is a
    date, nothing (ignored) when it is a time.

    Raises :class:`FeedError` for text that is not a calendar, or has more than
    :data:`MAX_OCCURRENCES` occurrences around the window; ValueError for naive or reversed
    ``start`` and ``end`` or an unknown ``timezone`` (mistakes of the caller, not of the file).
    """
    if start.utcoffset() is None or end.utcoffset() is None:
        raise ValueError("busy_intervals needs aware start and end datetimes")
    if end < start:
        raise ValueError(f"the window ends ({end}) before it starts ({start})")
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {timezone!r}") from exc
    lines, events = _content_lines(text)
    lines = _for_window(lines, start, end)
    try:
        calendars = icalendar.Calendar.from_ical("\r\n".join(lines) + "\r\n", multiple=True)
    except Exception as exc:  # whatever icalendar raises on text it cannot read
        raise FeedError("not_icalendar", str(exc)[:200]) from exc
    reading = _Reading(start.astimezone(UTC), end.astimezone(UTC), zone, _Budget(), [])
    try:
        for calendar in calendars:
            reading.calendar(calendar)
    except _Exhausted:
        raise FeedError("too_many_events", str(MAX_OCCURRENCES)) from None
    except Exception as exc:  # a file the libraries fail on elsewhere than in one event
        raise FeedError("not_icalendar", f"it could not be read: {exc}"[:200]) from exc
    return BusyRead(_merged(reading.intervals), events, reading.ignored)


__all__ = [
    "MAX_BYTES",
    "MAX_OCCURRENCES",
    "MAX_STEPS",
    "BusyRead",
    "FeedError",
    "busy_intervals",
    "minimize",
]
