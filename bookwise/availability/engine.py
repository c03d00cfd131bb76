"""The availability engine: which start times can be booked. Pure: plain data in, plain data out.

The rules, for each staff member of a service's pool:

- Working hours are local ranges on weekdays, in the calendar's time zone. A range is real time
  from its local start to its local end: on the day clocks go back, 00:00-06:00 holds 7 real hours
  (the repeated hour counts twice); on the day they go forward, 5. A local time that does not exist
  (inside the skipped hour) is taken as the moment the clocks jump.
- Slots start every ``slot_step`` of real time from the start of each range, and must end by the
  end of the range. A slot lasts ``duration`` of real time, even across a clock change.
- A booking blocks its staff member from ``start - buffer_before`` to ``end + buffer_after``. A
  start is offered only when its own blocked interval overlaps no other blocked interval of that
  staff member: existing bookings (as stored, with their own buffers), time off, external busy
  times. Intervals are half-open, so touching is fine.
- Slots start at the workflow's ``sessions`` instead, when it has some: local weekdays and times
  (a time the clocks skip that day is taken as the moment they jump; a repeated one, as its
  first occurrence). Working hours, buffers and bookings still apply to each staff member.
- For a group service (capacity > 1), the bookings of this service at a start with one staff
  member form a session: that start stays open until the session is full.
- What ``capacity`` counts (``per``): with ``per_slot`` false, each staff member free at a start
  runs a group of their own, and ``remaining`` is the places of all of them (two free tutors of a
  class of 6: 12). With ``per_slot``, there is one group per start: ``remaining`` is ``capacity``
  less every booking of this service at that start (those of staff outside the given pool
  included, ``joined_elsewhere``), and once the group has begun only the staff members teaching
  it are offered (a client joins the group; a second one never opens beside it).
- ``min_notice`` and ``max_ahead`` count from ``now``, which is an input so that tests can fix it.

All datetimes are aware; the engine works in UTC seconds internally.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from bookwise.calendars.data import HoursRange
from bookwise.timezones import local_instant
from bookwise.workflows.language import Workflow


@dataclass(frozen=True)
class Interval:
    """A half-open period of real time ``[start, end)``; aware datetimes. ``kind`` says what it
    is (``time_off`` or ``busy``, a :data:`REASON_CODES` code) and ``label`` which one (the time
    off's reason, the calendar feed's name), for :func:`explain_start`."""

    start: datetime
    end: datetime
    kind: str = "time_off"
    label: str = ""


@dataclass(frozen=True)
class ExistingBooking:
    """A booking that takes its staff member's time (its state holds the slot), or a place
    offered to the waitlist and held for it until the offer is taken or runs out (``held``)."""

    start: datetime
    end: datetime
    blocked_from: datetime
    blocked_until: datetime
    service_id: int
    booking_id: int = 0
    held: bool = False
    # A held place: when the offer runs out (the engine counts it all the same: the caller
    # reads only the offers held at its time; the slot cache keeps no day past it).
    held_until: datetime | None = None


@dataclass(frozen=True)
class StaffTime:
    """What the engine needs to know of one staff member."""

    staff_id: int
    hours: tuple[HoursRange, ...]
    unavailable: tuple[Interval, ...] = ()  # time off and external busy times
    bookings: tuple[ExistingBooking, ...] = ()


@dataclass(frozen=True)
class SlotRules:
    """The workflow's timing rules, and the calendar's time zone."""

    timezone: str
    duration: timedelta
    slot_step: timedelta
    buffer_before: timedelta = timedelta(0)
    buffer_after: timedelta = timedelta(0)
    min_notice: timedelta = timedelta(0)
    max_ahead: timedelta = timedelta(days=365)
    capacity: int = 1
    service_id: int = 0
    # One group per start whatever the staff (``capacity: {per: slot}``), not one per staff member.
    per_slot: bool = False
    # Fixed starts, local (weekday 0 = Monday, minutes since midnight); empty: every slot_step.
    sessions: tuple[tuple[int, int], ...] = ()


def workflow_rules(workflow: Workflow, timezone: str, service_id: int) -> SlotRules:
    """The engine's rules of a workflow, for a service in a calendar's time zone."""
    return SlotRules(
        timezone=timezone,
        duration=workflow.duration,
        slot_step=workflow.slot_step,
        buffer_before=workflow.buffer_before,
        buffer_after=workflow.buffer_after,
        min_notice=workflow.min_notice,
        max_ahead=workflow.max_ahead,
        capacity=workflow.capacity,
        service_id=service_id,
        per_slot=workflow.one_group_per_slot,
        sessions=tuple((t.weekday, t.minute) for t in workflow.sessions),
    )


@dataclass(frozen=True)
class Slot:
    """A start time that can be booked, with the staff who can take it and the places left."""

    start: datetime
    end: datetime
    staff: tuple[int, ...]
    remaining: int
    remaining_by_staff: dict[int, int] = field(default_factory=dict, compare=False)


def _seconds(moment: datetime) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: the engine needs aware datetimes")
    return int(moment.timestamp())


def _moment(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def working_intervals(
    hours: Iterable[HoursRange], zone: ZoneInfo, first_day: date, last_day: date
) -> list[tuple[int, int]]:
    """The real-time working ranges, in UTC seconds, of the local days first_day..last_day."""
    by_weekday: dict[int, list[HoursRange]] = defaultdict(list)
    for item in hours:
        by_weekday[item.weekday].append(item)
    out: list[tuple[int, int]] = []
    day = first_day
    while day <= last_day:
        for item in by_weekday.get(day.weekday(), ()):
            start = local_instant(day, item.start_minute, zone, earliest=True)
            end = local_instant(day, item.end_minute, zone, earliest=False)
            if end > start:
                out.append((start, end))
        day += timedelta(days=1)
    out.sort()
    return out


def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge open intervals ``(lo, hi)``; two that only touch stay apart (the point between them
    is allowed)."""
    intervals.sort()
    merged: list[tuple[int, int]] = []
    for lo, hi in intervals:
        if merged and lo < merged[-1][1]:
            if hi > merged[-1][1]:
                merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return merged


def _free_starts(
    first: int, last: int, step: int, forbidden: list[tuple[int, int]], lows: list[int]
) -> list[int]:
    """Starts ``first + k * step`` up to ``last`` that fall in no forbidden open interval."""
    out: list[int] = []
    if last < first:
        return out
    index = max(0, bisect.bisect_right(lows, first) - 1)
    start = first
    while start <= last:
        while index < len(forbidden) and forbidden[index][1] <= start:
            index += 1
        if index < len(forbidden) and forbidden[index][0] < start < forbidden[index][1]:
            # Jump to the first grid point at or after the end of this forbidden interval.
            end = forbidden[index][1]
            start = first + -(-(end - first) // step) * step
            continue
        out.append(start)
        start += step
    return out


def session_starts(
    sessions: Iterable[tuple[int, int]], zone: ZoneInfo, first_day: date, last_day: date
) -> list[int]:
    """The real instants, in UTC seconds, of the local sessions of days first_day..last_day."""
    by_weekday: dict[int, list[int]] = defaultdict(list)
    for weekday, minute in sessions:
        by_weekday[weekday].append(minute)
    out: set[int] = set()
    day = first_day
    while day <= last_day:
        for minute in by_weekday.get(day.weekday(), ()):
            out.add(local_instant(day, minute, zone, earliest=True))
        day += timedelta(days=1)
    return sorted(out)


def _free_among(
    candidates: list[int], first: int, last: int, forbidden: list[tuple[int, int]], lows: list[int]
) -> list[int]:
    """The ``candidates`` in ``[first, last]`` that fall in no forbidden open interval."""
    out: list[int] = []
    for start in candidates[bisect.bisect_left(candidates, first) :]:
        if start > last:
            break
        index = bisect.bisect_left(lows, start) - 1
        # Merged intervals are apart: only the last one opening before ``start`` can hold it.
        if index >= 0 and forbidden[index][0] < start < forbidden[index][1]:
            continue
        out.append(start)
    return out


@dataclass(frozen=True)
class _Search:
    """The rules of one search in the engine's units: UTC seconds, local days of the zone."""

    rules: SlotRules
    zone: ZoneInfo
    duration: int
    step: int
    before: int
    after: int
    earliest: int  # the first and last start the window, the notice and max_ahead allow
    latest: int
    first_day: date  # local days that can hold a start (a day's range may start the day before)
    last_day: date
    fixed: list[int] | None  # the sessions' starts, when the workflow has fixed sessions
    fixed_set: frozenset[int]

    @property
    def grouped(self) -> bool:
        """Whether bookings of this service at one start share their staff member's time."""
        return self.rules.capacity > 1 or self.rules.per_slot


def _search(
    rules: SlotRules, window_start: datetime, window_end: datetime, now: datetime
) -> _Search | None:
    """The search's bounds; ``None`` when no start can be offered in the window."""
    zone = ZoneInfo(rules.timezone)
    duration = int(rules.duration.total_seconds())
    step = int(rules.slot_step.total_seconds())
    if duration <= 0 or step <= 0:
        raise ValueError("duration and slot_step must be positive")
    earliest, latest = booking_window_bounds(rules, window_start, window_end, now)
    if latest < earliest:
        return None
    first_day = datetime.fromtimestamp(earliest, zone).date() - timedelta(days=1)
    last_day = datetime.fromtimestamp(latest, zone).date()
    fixed = session_starts(rules.sessions, zone, first_day, last_day) if rules.sessions else None
    return _Search(
        rules=rules,
        zone=zone,
        duration=duration,
        step=step,
        before=int(rules.buffer_before.total_seconds()),
        after=int(rules.buffer_after.total_seconds()),
        earliest=earliest,
        latest=latest,
        first_day=first_day,
        last_day=last_day,
        fixed=fixed,
        fixed_set=frozenset(fixed or ()),
    )


def booking_window_bounds(
    rules: SlotRules, window_start: datetime, window_end: datetime, now: datetime
) -> tuple[int, int]:
    """The first and last start (UTC seconds, both included) the window and the booking window
    allow at ``now``: what :func:`in_booking_window` keeps, for a caller holding starts sorted
    (a cut by bisection)."""
    now_s = _seconds(now)
    earliest = max(_seconds(window_start), now_s + int(rules.min_notice.total_seconds()))
    latest = min(_seconds(window_end) - 1, now_s + int(rules.max_ahead.total_seconds()))
    return earliest, latest


@dataclass
class _MemberTime:
    """One staff member's blocked time, in UTC seconds, and their sessions of this service."""

    blockers: list[tuple[int, int]] = field(default_factory=list)
    sessions: dict[int, int] = field(default_factory=lambda: defaultdict(int))  # start -> booked
    session_blocks: dict[int, list[tuple[int, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )


def _member_time(search: _Search, member: StaffTime) -> _MemberTime:
    time = _MemberTime()
    for booking in member.bookings:
        lo, hi = _seconds(booking.blocked_from), _seconds(booking.blocked_until)
        if search.grouped and booking.service_id == search.rules.service_id:
            start = _seconds(booking.start)
            time.sessions[start] += 1
            time.session_blocks[start].append((lo, hi))
        time.blockers.append((lo, hi))
    for period in member.unavailable:
        time.blockers.append((_seconds(period.start), _seconds(period.end)))
    return time


def _open_starts(
    search: _Search, ranges: list[tuple[int, int]], blockers: list[tuple[int, int]]
) -> Iterator[int]:
    """The starts of the working ``ranges`` whose slot meets none of the ``blockers``."""
    # A start s is forbidden when [s - before, s + duration + after) meets [lo, hi).
    forbidden = _merge(
        [(lo - search.duration - search.after, hi + search.before) for lo, hi in blockers]
    )
    lows = [lo for lo, _ in forbidden]
    for range_start, range_end in ranges:
        first = range_start
        if first < search.earliest:
            first = range_start + -(-(search.earliest - range_start) // search.step) * search.step
        last = min(range_end - search.duration, search.latest)
        if search.fixed is None:
            yield from _free_starts(first, last, search.step, forbidden, lows)
        else:
            yield from _free_among(
                search.fixed, max(range_start, search.earliest), last, forbidden, lows
            )


def _joinable_sessions(
    search: _Search, ranges: list[tuple[int, int]], time: _MemberTime
) -> Iterator[tuple[int, int]]:
    """The member's sessions of this service that a client may still join, with the places left:
    not full, in the window and the working hours, and clear of everything but the session."""
    capacity = search.rules.capacity
    for start, count in time.sessions.items():
        if count >= capacity or not search.earliest <= start <= search.latest:
            continue
        if search.fixed is not None and start not in search.fixed_set:
            continue
        if not _holds(search, ranges, start):
            continue
        others = list(time.blockers)
        for block in time.session_blocks[start]:
            others.remove(block)
        if not any(_clashes(search, start, lo, hi) for lo, hi in others):
            yield start, capacity - count


def _clashes(search: _Search, start: int, lo: int, hi: int) -> bool:
    """Whether a slot at ``start`` with its buffers, ``[start - before, start + duration +
    after)``, meets the blocked interval ``[lo, hi)``. (:func:`_open_starts` asks the same of
    many starts at once: ``start`` is forbidden when ``lo - duration - after < start < hi +
    before``.)"""
    return start - search.before < hi and lo < start + search.duration + search.after


def _holds(search: _Search, ranges: list[tuple[int, int]], start: int) -> bool:
    """Whether a working range holds the whole slot at ``start``."""
    return any(a <= start and start + search.duration <= b for a, b in ranges)


def find_free_slots(
    rules: SlotRules,
    staff: Sequence[StaffTime],
    window_start: datetime,
    window_end: datetime,
    now: datetime,
    joined_elsewhere: Mapping[datetime, int] | None = None,
) -> list[Slot]:
    """Every start in ``[window_start, window_end)`` that at least one staff member can take.

    Slots are sorted by start and unique; each lists its staff in the order given.
    ``joined_elsewhere`` (``per_slot`` only): bookings of this service, by start, held by staff
    not in ``staff``; they take places of the one group too.
    """
    search = _search(rules, window_start, window_end, now)
    if search is None:
        return []
    interval_cache: dict[tuple[HoursRange, ...], list[tuple[int, int]]] = {}
    offers: dict[int, dict[int, int]] = defaultdict(dict)  # start -> staff -> places left
    held: dict[int, dict[int, int]] = defaultdict(dict)  # start -> staff -> participants
    for member in staff:
        ranges = interval_cache.get(member.hours)
        if ranges is None:
            ranges = interval_cache[member.hours] = working_intervals(
                member.hours, search.zone, search.first_day, search.last_day
            )
        if not ranges:
            continue
        time = _member_time(search, member)
        for start in _open_starts(search, ranges, time.blockers):
            offers[start][member.staff_id] = rules.capacity
        for start, count in time.sessions.items():
            held[start][member.staff_id] = count
        for start, left in _joinable_sessions(search, ranges, time):
            offers[start][member.staff_id] = left
    elsewhere = {_seconds(k): v for k, v in (joined_elsewhere or {}).items()}
    return _slots(search, staff, offers, held, elsewhere)


def find_slots_any_time(
    rules: SlotRules,
    staff: Sequence[StaffTime],
    window_start: datetime,
    window_end: datetime,
    joined_elsewhere: Mapping[datetime, int] | None = None,
) -> list[Slot]:
    """:func:`find_free_slots` without the booking window: every start in the window that the
    staff's time allows, whatever the time of asking. It reads no clock, so it can be kept (a
    cache of the slots, bookwise.availability.cache) and narrowed when asked, by
    :func:`in_booking_window`: the two give what :func:`find_free_slots` gives at that time.

    Slots start on their working range's grid of ``slot_step`` (or at the fixed sessions), not
    from ``now``: the booking window only cuts the list at both ends."""
    anytime = replace(rules, min_notice=timedelta(0), max_ahead=window_end - window_start)
    return find_free_slots(anytime, staff, window_start, window_end, window_start, joined_elsewhere)


def in_booking_window(
    rules: SlotRules,
    slots: Iterable[Slot],
    window_start: datetime,
    window_end: datetime,
    now: datetime,
) -> list[Slot]:
    """The ``slots`` that start in the window and that the booking window (``min_notice``,
    ``max_ahead``) allows at ``now``."""
    earliest, latest = booking_window_bounds(rules, window_start, window_end, now)
    return [slot for slot in slots if earliest <= _seconds(slot.start) <= latest]


def _slots(
    search: _Search,
    staff: Sequence[StaffTime],
    offers: dict[int, dict[int, int]],
    held: dict[int, dict[int, int]],
    elsewhere: dict[int, int],
) -> list[Slot]:
    """The offers as slots, by start, each with its staff in the order of ``staff``."""
    rules = search.rules
    order = {member.staff_id: position for position, member in enumerate(staff)}
    slots = []
    for start in sorted(offers):
        by_staff = offers[start]
        if rules.per_slot:
            by_staff = _one_group(by_staff, held.get(start, {}), elsewhere.get(start, 0), rules)
            if not by_staff:
                continue
            remaining = next(iter(by_staff.values()))
        else:
            remaining = sum(by_staff.values())
        slots.append(
            Slot(
                start=_moment(start),
                end=_moment(start + search.duration),
                staff=tuple(sorted(by_staff, key=order.__getitem__)),
                remaining=remaining,
                remaining_by_staff=dict(by_staff),
            )
        )
    return slots


def _one_group(
    free: dict[int, int], held: dict[int, int], elsewhere: int, rules: SlotRules
) -> dict[int, int]:
    """Per slot: who may take the next place of the one group at a start, and the places left
    (the same for each). Once begun, only its staff take more: a second group never opens."""
    left = rules.capacity - sum(held.values()) - elsewhere
    if left <= 0:
        return {}
    teaching = [member for member, count in held.items() if count > 0]
    takers = [member for member in free if member in teaching] if teaching else list(free)
    return dict.fromkeys(takers, left)


# --- why a start is not offered -------------------------------------------------------------------

# The codes of :class:`Reason`. Service-wide: the start is too soon, too far or its group full.
PAST, MIN_NOTICE, MAX_AHEAD, CAPACITY = "past", "min_notice", "max_ahead", "capacity"
# Per staff member (``capacity`` too, for a member's own group).
OUTSIDE_HOURS, NOT_A_START = "outside_hours", "not_a_start"
TIME_OFF, BUSY, BOOKED, BUFFER = "time_off", "busy", "booked", "buffer"
ROUTING, OTHER_GROUP = "routing", "other_group"
HELD = "held"  # a place offered to the waitlist, held for that client
REASON_CODES = (
    PAST,
    MIN_NOTICE,
    MAX_AHEAD,
    CAPACITY,
    OUTSIDE_HOURS,
    NOT_A_START,
    TIME_OFF,
    BUSY,
    BOOKED,
    BUFFER,
    ROUTING,
    OTHER_GROUP,
    HELD,
)


@dataclass(frozen=True)
class Reason:
    """One reason a start is not offered. ``start``/``end``: the period in the way (a booking,
    a time off, the nearest starts for ``not_a_start``, the first and last start allowed for
    ``min_notice``/``max_ahead``); ``label``: which one (a time off's reason, a feed's name);
    ``count``: places (``capacity``) or the booking's id (``booked``, ``buffer``; not ``held``).
    """

    code: str
    start: datetime | None = None
    end: datetime | None = None
    label: str = ""
    count: int = 0


@dataclass(frozen=True)
class StaffVerdict:
    """Whether one staff member can take a start, and if not, every reason why."""

    staff_id: int
    reasons: tuple[Reason, ...]
    remaining: int = 0  # places this member can still give at the start

    @property
    def free(self) -> bool:
        return not self.reasons


@dataclass(frozen=True)
class Explanation:
    """Why a start is, or is not, offered: reasons for the whole service, then per member."""

    start: datetime
    offered: bool
    reasons: tuple[Reason, ...]
    staff: tuple[StaffVerdict, ...]
    remaining: int = 0


def explain_start(
    rules: SlotRules,
    staff: Sequence[StaffTime],
    start: datetime,
    now: datetime,
    joined_elsewhere: int = 0,
    routed_out: Iterable[int] = (),
) -> Explanation:
    """Why ``start`` is or is not offered by :func:`find_free_slots` with the same inputs
    (``staff`` less ``routed_out``, a window holding ``start``): the engine's own rules, each
    failed one a :class:`Reason`. ``routed_out``: members the workflow's routing leaves out for
    this client; they are explained too, with ``routing`` first. ``joined_elsewhere``
    (``per_slot``): bookings of the service at ``start`` held by staff outside ``staff``."""
    at = _seconds(start)
    # The staff's rules do not depend on the booking window: search as if it held ``at``.
    search = _search(
        replace(rules, min_notice=timedelta(0), max_ahead=timedelta(days=365 * 200)),
        start,
        _moment(at + 1),
        _moment(min(at, _seconds(now))),
    )
    assert search is not None  # its bounds are ``at`` and ``at``
    wide = _service_reasons(rules, at, _seconds(now))
    out = frozenset(routed_out)
    verdicts: list[StaffVerdict] = []
    held: dict[int, int] = {}
    interval_cache: dict[tuple[HoursRange, ...], list[tuple[int, int]]] = {}
    for member in staff:
        ranges = interval_cache.get(member.hours)
        if ranges is None:
            ranges = interval_cache[member.hours] = working_intervals(
                member.hours, search.zone, search.first_day, search.last_day
            )
        # Only a group service needs the member's sessions (who already joined at ``at``).
        time = _member_time(search, member) if search.grouped else _MemberTime()
        if time.sessions.get(at):
            if member.staff_id in out:
                joined_elsewhere += time.sessions[at]
            else:
                held[member.staff_id] = time.sessions[at]
        reasons, left = _member_reasons(search, member, ranges, time, at)
        if member.staff_id in out:
            reasons = [Reason(ROUTING), *reasons]
        verdicts.append(StaffVerdict(member.staff_id, tuple(reasons), left if not reasons else 0))
    if rules.per_slot:
        verdicts, full = _explain_one_group(verdicts, held, joined_elsewhere, rules)
        if full:
            wide.append(Reason(CAPACITY, count=rules.capacity))
            offered = sum(_held_places(search, member, at) for member in staff)
            if offered:  # some of the group's places are held for the waitlist
                wide.append(Reason(HELD, count=offered))
    free = [verdict for verdict in verdicts if verdict.free]
    if rules.per_slot:
        remaining = free[0].remaining if free else 0
    else:
        remaining = sum(verdict.remaining for verdict in free)
    return Explanation(
        start=_moment(at),
        offered=not wide and bool(free),
        reasons=tuple(wide),
        staff=tuple(verdicts),
        remaining=remaining if not wide else 0,
    )


def _service_reasons(rules: SlotRules, at: int, now: int) -> list[Reason]:
    """The booking window: not in the past, not sooner than the notice, not beyond max_ahead."""
    earliest = now + int(rules.min_notice.total_seconds())
    latest = now + int(rules.max_ahead.total_seconds())
    if at < now:
        return [Reason(PAST, start=_moment(now))]
    if at < earliest:
        return [Reason(MIN_NOTICE, start=_moment(earliest))]
    if at > latest:
        return [Reason(MAX_AHEAD, end=_moment(latest))]
    return []


def _member_reasons(
    search: _Search,
    member: StaffTime,
    ranges: list[tuple[int, int]],
    time: _MemberTime,
    at: int,
) -> tuple[list[Reason], int]:
    """Why ``member`` cannot take ``at`` (nothing when they can), and the places they give."""
    capacity = search.rules.capacity
    reasons: list[Reason] = []
    own_session = time.sessions.get(at, 0) if search.grouped else 0
    if not _holds(search, ranges, at):
        reasons.append(Reason(OUTSIDE_HOURS))
    elif search.fixed is not None:
        if at not in search.fixed_set:
            reasons.append(_not_a_start(search, ranges, at))
    elif not own_session and not any(
        a <= at and at + search.duration <= b and (at - a) % search.step == 0 for a, b in ranges
    ):
        reasons.append(_not_a_start(search, ranges, at))
    if own_session >= capacity:
        reasons.append(Reason(CAPACITY, count=capacity))
        if offered := _held_places(search, member, at):
            reasons.append(Reason(HELD, count=offered))
    own = {booking for booking in member.bookings if _in_session(search, booking, at)}
    for booking in member.bookings:
        if booking in own and own_session:
            continue
        lo, hi = _seconds(booking.blocked_from), _seconds(booking.blocked_until)
        if _clashes(search, at, lo, hi):
            meets = _seconds(booking.start) < at + search.duration and at < _seconds(booking.end)
            reasons.append(
                Reason(
                    HELD if booking.held else BOOKED if meets else BUFFER,
                    start=booking.start,
                    end=booking.end,
                    count=booking.booking_id,
                )
            )
    for period in member.unavailable:
        if _clashes(search, at, _seconds(period.start), _seconds(period.end)):
            reasons.append(
                Reason(period.kind, start=period.start, end=period.end, label=period.label)
            )
    return reasons, capacity - own_session


def _held_places(search: _Search, member: StaffTime, at: int) -> int:
    """The places of ``member``'s group at ``at`` that are held for the waitlist."""
    return sum(1 for b in member.bookings if b.held and _in_session(search, b, at))


def _in_session(search: _Search, booking: ExistingBooking, at: int) -> bool:
    """Whether ``booking`` is one of the group booked at ``at`` that a client would join."""
    return (
        search.grouped
        and booking.service_id == search.rules.service_id
        and _seconds(booking.start) == at
    )


def _not_a_start(search: _Search, ranges: list[tuple[int, int]], at: int) -> Reason:
    """``not_a_start``, with the offered grid's nearest starts around ``at`` (in hours)."""
    if search.fixed is not None:
        starts = [s for s in search.fixed if _holds(search, ranges, s)]
    else:
        starts = []
        for a, b in ranges:
            if a <= at <= b:
                below = a + (at - a) // search.step * search.step
                starts += [s for s in (below, below + search.step) if a <= s <= b - search.duration]
    before = [s for s in starts if s < at]
    after = [s for s in starts if s > at]
    return Reason(
        NOT_A_START,
        start=_moment(max(before)) if before else None,
        end=_moment(min(after)) if after else None,
    )


def _explain_one_group(
    verdicts: list[StaffVerdict], held: dict[int, int], elsewhere: int, rules: SlotRules
) -> tuple[list[StaffVerdict], bool]:
    """The one group per start (see :func:`_one_group`): full, or who may take its next place."""
    free = {verdict.staff_id: verdict.remaining for verdict in verdicts if verdict.free}
    takers = _one_group(free, held, elsewhere, rules)
    left = rules.capacity - sum(held.values()) - elsewhere
    if left <= 0:
        return verdicts, True
    out = []
    for verdict in verdicts:
        if not verdict.free:
            out.append(verdict)
        elif verdict.staff_id in takers:
            out.append(StaffVerdict(verdict.staff_id, (), takers[verdict.staff_id]))
        else:
            out.append(StaffVerdict(verdict.staff_id, (Reason(OTHER_GROUP),)))
    return out, False
