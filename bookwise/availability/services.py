"""Feeding the availability engine from the database, in a few Core queries read into tuples.

What is read grows with the staff and the days asked for, not with the size of the database:
every query is bounded by the pool's staff ids and by the time window (indexes on
``(staff_id, blocked_from, blocked_until)``, ``(staff_id, start_at, end_at)``).
"""

from __future__ import annotations

import time
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import cache, cached_property, lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    CompoundSelect,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    cast,
    delete,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from bookwise.availability.cache import Day, SlotCache
from bookwise.availability.engine import (
    BUSY,
    TIME_OFF,
    ExistingBooking,
    Explanation,
    Interval,
    Slot,
    SlotRules,
    StaffTime,
    booking_window_bounds,
    explain_start,
    find_free_slots,
    find_slots_any_time,
    workflow_rules,
)
from bookwise.bookings.models import Booking, WaitlistEntry
from bookwise.calendars.data import HoursRange
from bookwise.calendars.models import (
    AssignmentTurn,
    BusyTime,
    Calendar,
    CalendarSource,
    Service,
    ServiceStaff,
    SlotVersion,
    StaffMember,
    TimeOff,
    WorkingHours,
)
from bookwise.db import UTCDateTime
from bookwise.metrics import SLOT_CACHE_DAYS, SLOT_SEARCH_SECONDS, SLOTS_FOUND
from bookwise.timezones import local_instant
from bookwise.workflows.language import Workflow, route_tags


@dataclass(frozen=True)
class PoolMember:
    id: int
    slug: str
    name: str
    tags: tuple[str, ...] = ()
    uses_calendar_hours: bool = True
    # Read for a booking (``for_booking``): the whole row (held here: the session keeps only weak
    # references to what it loaded), and the member's last turn in the service's rotation
    # (0: never; None: not read).
    row: StaffMember | None = field(default=None, compare=False, repr=False)
    turn: int | None = None
    # Read for the slot cache (:func:`read_pool_versions`): the member's ``slots_version``.
    version: int | None = None


@dataclass(frozen=True)
class Availability:
    """The free slots of a service in a window, and the staff they refer to."""

    slots: list[Slot]
    pool: list[PoolMember]
    # Read through the slot cache: the days the slots are, each with the range of its slots
    # that the window and the booking window keep (``slots`` is those, in order). A caller can
    # keep what it makes of a day beside it (SlotCache.rendered).
    days: tuple[tuple[Day, int, int], ...] = ()

    def slug_of(self, staff_id: int) -> str:
        return self._slugs[staff_id]

    @cached_property
    def _slugs(self) -> dict[int, str]:
        return {member.id: member.slug for member in self.pool}


# How far ahead staff may book on a client's behalf (the workflow's window binds clients only).
STAFF_MAX_AHEAD = timedelta(days=730)


def slot_rules(
    calendar: Calendar, service: Service, workflow: Workflow, by_staff: bool = False
) -> SlotRules:
    """The engine's rules for a service. ``by_staff``: the workflow's booking window is for
    clients; staff booking for a client (a phone call) may book any future time."""
    if by_staff:
        return replace(
            slot_rules(calendar, service, workflow),
            min_notice=timedelta(0),
            max_ahead=STAFF_MAX_AHEAD,
        )
    return workflow_rules(workflow, calendar.timezone, service.id)


@lru_cache(maxsize=4096)
def local_day_bounds(first: date, last: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The real-time window of the local days ``first`` to ``last`` (inclusive) in ``zone``.
    Kept (a cached search asks for the bounds of each day it reads, at every request)."""
    start = local_instant(first, 0, zone, earliest=True)
    end = local_instant(last + timedelta(days=1), 0, zone, earliest=True)
    return datetime.fromtimestamp(start, ZoneInfo("UTC")), datetime.fromtimestamp(
        end, ZoneInfo("UTC")
    )


_POOL_COLUMNS = (
    StaffMember.id,
    StaffMember.slug,
    StaffMember.name,
    StaffMember.tags,
    StaffMember.uses_calendar_hours,
)


def read_pool(
    session: Session, service: Service, workflow: Workflow, *, for_booking: bool = False
) -> list[PoolMember]:
    """The staff who can take bookings of ``service``, in priority order, with one query.

    ``for_booking``: the whole rows are read, as objects of the session (the one a booking goes
    to is then at hand, for its messages), with each member's last turn in the service's
    rotation (bookwise.calendars.models.AssignmentTurn)."""
    columns: tuple[Any, ...] = (
        (StaffMember, func.coalesce(AssignmentTurn.turn, 0)) if for_booking else _POOL_COLUMNS
    )
    rows = session.execute(
        _pool_query(service.calendar_id, service.id, service.pool_by_tags, columns, for_booking)
    )
    members = [
        replace(_member(row[0]), turn=row[1]) if for_booking else _member(row) for row in rows
    ]
    return _tagged(members, service, workflow)


def read_pool_versions(
    session: Session, service: Service, workflow: Workflow
) -> tuple[list[PoolMember], int]:
    """:func:`read_pool` with each member's ``slots_version``, and the calendar's, in the same
    query: what the slot cache names its entries after (bookwise.availability.cache)."""
    rows = session.execute(
        _pool_versions_statement(service.pool_by_tags),
        {"calendar_id": service.calendar_id, "service_id": service.id},
    ).all()
    if not rows:
        return [], 0  # no one: no slot to keep
    members = [
        PoolMember(
            row.id,
            row.slug,
            row.name,
            tuple(row.tags or ()),
            bool(row.uses_calendar_hours),
            version=row.slots_version,
        )
        for row in rows
    ]
    return _tagged(members, service, workflow), rows[0].calendar_version


@cache
def _pool_versions_statement(by_tags: bool) -> Select[*tuple[Any, ...]]:
    """The statement of :func:`read_pool_versions`, built once (a cached search runs it at
    every request), with bind parameters ``calendar_id`` and ``service_id``."""
    calendar_id = bindparam("calendar_id", type_=Integer())
    calendar_version = (
        select(Calendar.slots_version)
        .where(Calendar.id == calendar_id)
        .scalar_subquery()
        .label("calendar_version")
    )
    columns = (*_POOL_COLUMNS, StaffMember.slots_version, calendar_version)
    return _pool_query(
        calendar_id, bindparam("service_id", type_=Integer()), by_tags, columns, for_booking=False
    )


def _pool_query(
    calendar_id: Any, service_id: Any, by_tags: bool, columns: tuple[Any, ...], for_booking: bool
) -> Select[*tuple[Any, ...]]:
    """The pool of the service ``service_id`` of the calendar ``calendar_id`` (values, or bind
    parameters), in priority order: its calendar's staff when ``by_tags`` (the tags are
    matched by :func:`_tagged`), else its own list."""
    available = and_(StaffMember.bookable, StaffMember.invitation == "accepted")
    if by_tags:
        query = (
            select(*columns)
            .where(StaffMember.calendar_id == calendar_id, available)
            .order_by(StaffMember.id)
        )
    else:
        query = (
            select(*columns)
            .join(ServiceStaff, ServiceStaff.staff_id == StaffMember.id)
            .where(ServiceStaff.service_id == service_id, available)
            .order_by(ServiceStaff.position)
        )
    if for_booking:
        query = query.outerjoin(
            AssignmentTurn,
            and_(
                AssignmentTurn.staff_id == StaffMember.id,
                AssignmentTurn.service_id == service_id,
            ),
        )
    return query


def _tagged(members: list[PoolMember], service: Service, workflow: Workflow) -> list[PoolMember]:
    """The members with the workflow's tags, for a service whose pool is by tags."""
    if service.pool_by_tags:
        wanted = set(workflow.staff.tags)
        return [m for m in members if wanted <= set(m.tags)]
    return members


def _member(row: Any) -> PoolMember:
    return PoolMember(
        row.id,
        row.slug,
        row.name,
        tuple(row.tags or ()),
        bool(row.uses_calendar_hours),
        row if isinstance(row, StaffMember) else None,
    )


def routed_pool(
    pool: Sequence[PoolMember], workflow: Workflow, answers: Mapping[str, Any] | None
) -> tuple[list[PoolMember], list[PoolMember]]:
    """The pool as the workflow's ``route`` narrows it for ``answers`` (checked values, by field
    id): (kept, excluded), each in pool order. No answers, or no rule that holds: all kept."""
    tags = route_tags(workflow, answers) if answers is not None else None
    if tags is None:
        return list(pool), []
    wanted = set(tags)
    kept = [m for m in pool if wanted <= set(m.tags)]
    return kept, [m for m in pool if not wanted <= set(m.tags)]


def read_staff_time(
    session: Session,
    calendar_id: int,
    staff_ids: list[int],
    window_start: datetime,
    window_end: datetime,
    margin: timedelta,
    exclude_booking: int | None = None,
    now: datetime | None = None,
) -> list[StaffTime]:
    """Hours, time off, busy times and bookings of ``staff_ids`` around the window, with the
    places offered to the waitlist and still held at ``now`` (see :func:`read_held_offers`).

    Three queries: the hours, whose hours they are, then everything that takes time in one
    ``UNION ALL`` (a search that read the pool knows whose hours: two)."""
    return _read_time(
        session,
        calendar_id,
        staff_ids,
        window_start - margin,
        window_end + margin,
        None,
        _Bookings(exclude_booking, now),
    )


def read_working_time(
    session: Session,
    calendar_id: int,
    staff_ids: list[int],
    window_start: datetime,
    window_end: datetime,
    margin: timedelta,
) -> list[StaffTime]:
    """Hours, time off and busy times of ``staff_ids`` around the window, no booking: what a
    search as if nothing were booked needs (three queries, as :func:`read_staff_time`; none of
    the bookings is read)."""
    return _read_time(
        session, calendar_id, staff_ids, window_start - margin, window_end + margin, None, None
    )


@dataclass(frozen=True)
class _Bookings:
    """Which bookings a read of staff time counts: all that hold their slot but ``exclude``,
    and the places offered to the waitlist still held at ``now``."""

    exclude: int | None
    now: datetime | None


# What takes a staff member's time, as the branches of one UNION ALL: the kind of each row, then
# the columns every kind fills in its own way (see _taken_query).
_BOOKING, _HELD = "booking", "held"


def _read_time(
    session: Session,
    calendar_id: int,
    staff_ids: list[int],
    low: datetime,
    high: datetime,
    uses_calendar_hours: Mapping[int, bool] | None,
    bookings: _Bookings | None,
) -> list[StaffTime]:
    if not staff_ids:
        return []
    hours_rows = session.execute(
        select(
            WorkingHours.staff_id,
            WorkingHours.weekday,
            WorkingHours.start_minute,
            WorkingHours.end_minute,
        ).where(
            WorkingHours.calendar_id == calendar_id,
            or_(WorkingHours.staff_id.is_(None), WorkingHours.staff_id.in_(staff_ids)),
        )
    ).all()
    if uses_calendar_hours is None or any(i not in uses_calendar_hours for i in staff_ids):
        uses_calendar_hours = dict(
            session.execute(
                select(StaffMember.id, StaffMember.uses_calendar_hours).where(
                    StaffMember.id.in_(staff_ids)
                )
            ).all()
        )
    calendar_hours = tuple(
        sorted(HoursRange(w, s, e) for staff, w, s, e in hours_rows if staff is None)
    )
    member_hours: dict[int, list[HoursRange]] = defaultdict(list)
    for staff, weekday, start, end in hours_rows:
        if staff is not None:
            member_hours[staff].append(HoursRange(weekday, start, end))

    unavailable: dict[int, list[Interval]] = defaultdict(list)
    booked: dict[int, list[ExistingBooking]] = defaultdict(list)
    statement, values = _taken_query(staff_ids, low, high, bookings)
    for row in session.execute(statement, values):
        if row.kind == _BOOKING:
            booked[row.staff_id].append(
                ExistingBooking(
                    row.start_at,
                    row.end_at,
                    row.blocked_from,
                    row.blocked_until,
                    row.service_id,
                    row.booking_id,
                )
            )
        elif row.kind == _HELD:
            if row.staff_id is not None and row.offered_start is not None:
                booked[row.staff_id].append(_held(row))
        else:
            unavailable[row.staff_id].append(
                Interval(row.start_at, row.end_at, row.kind, row.label)
            )
    return [
        StaffTime(
            staff_id=staff_id,
            hours=calendar_hours
            if uses_calendar_hours.get(staff_id, True)
            else tuple(sorted(member_hours[staff_id])),
            unavailable=tuple(unavailable[staff_id]),
            bookings=tuple(booked[staff_id]),
        )
        for staff_id in staff_ids
    ]


def _taken_query(
    staff_ids: list[int], low: datetime, high: datetime, bookings: _Bookings | None
) -> tuple[CompoundSelect[*tuple[Any, ...]], dict[str, Any]]:
    """Time off, busy times and (``bookings``) the bookings and held offers of ``staff_ids``
    that meet ``[low, high)``, as one UNION ALL of rows (kind, staff_id, start_at, end_at,
    blocked_from, blocked_until, service_id, booking_id, label, offered_start,
    offer_expires_at): the statement
    (built once per shape: building it costs more than running it) and its parameters."""
    values: dict[str, Any] = {"staff_ids": staff_ids, "low": low, "high": high}
    if bookings is None:
        return _taken_statement(False, False, False), values
    values["since"] = low - timedelta(days=1)
    if bookings.exclude is not None:
        values["exclude"] = bookings.exclude
    if bookings.now is not None:
        values["now"] = bookings.now
    shape = (True, bookings.exclude is not None, bookings.now is not None)
    return _taken_statement(*shape), values


@cache
def _taken_statement(
    with_bookings: bool, excluding: bool, until_now: bool
) -> CompoundSelect[*tuple[Any, ...]]:
    """The statement of :func:`_taken_query`, with bind parameters ``staff_ids`` (expanding),
    ``low``, ``high`` and, with bookings, ``since`` (for held offers, a day before ``low``),
    ``exclude`` (a booking left out) and ``now`` (offers still held). The first branch types
    the columns (a typed NULL where a kind has nothing to say)."""
    moment, number, text = UTCDateTime(), Integer(), String()
    staff_ids: Any = bindparam("staff_ids", expanding=True)
    low, high = bindparam("low", type_=moment), bindparam("high", type_=moment)

    def nothing(kind: Any) -> Any:
        return cast(null(), kind)

    time_off = select(
        literal(TIME_OFF, String()).label("kind"),
        TimeOff.staff_id.label("staff_id"),
        TimeOff.start_at.label("start_at"),
        TimeOff.end_at.label("end_at"),
        nothing(moment).label("blocked_from"),
        nothing(moment).label("blocked_until"),
        nothing(number).label("service_id"),
        nothing(number).label("booking_id"),
        cast(func.coalesce(TimeOff.reason, ""), text).label("label"),
        nothing(moment).label("offered_start"),
        nothing(moment).label("offer_expires_at"),
    ).where(TimeOff.staff_id.in_(staff_ids), TimeOff.end_at > low, TimeOff.start_at < high)
    busy = (
        select(
            literal(BUSY, String()),
            BusyTime.staff_id,
            BusyTime.start_at,
            BusyTime.end_at,
            nothing(moment),
            nothing(moment),
            nothing(number),
            nothing(number),
            cast(func.coalesce(CalendarSource.label, BusyTime.source), text),
            nothing(moment),
            nothing(moment),
        )
        .outerjoin(CalendarSource, CalendarSource.id == BusyTime.source_id)
        .where(BusyTime.staff_id.in_(staff_ids), BusyTime.end_at > low, BusyTime.start_at < high)
    )
    if not with_bookings:
        return union_all(time_off, busy)
    taken = select(
        literal(_BOOKING, String()),
        Booking.staff_id,
        Booking.start_at,
        Booking.end_at,
        Booking.blocked_from,
        Booking.blocked_until,
        Booking.service_id,
        Booking.id,
        nothing(text),
        nothing(moment),
        nothing(moment),
    ).where(
        Booking.staff_id.in_(staff_ids),
        Booking.holds_slot,
        Booking.blocked_until > low,
        Booking.blocked_from < high,
    )
    if excluding:
        taken = taken.where(Booking.id != bindparam("exclude", type_=number))
    held = _held_offers_query(
        bindparam("since", type_=moment),
        high,
        bindparam("now", type_=moment) if until_now else None,
        staff_ids=staff_ids,
    ).with_only_columns(
        literal(_HELD, String()),
        WaitlistEntry.offered_staff_id,
        Booking.start_at,
        Booking.end_at,
        Booking.blocked_from,
        Booking.blocked_until,
        WaitlistEntry.service_id,
        nothing(number),
        nothing(text),
        WaitlistEntry.offered_start,
        WaitlistEntry.offer_expires_at,
        maintain_column_froms=True,
    )
    return union_all(time_off, busy, taken, held)


def _held(row: Any) -> ExistingBooking:
    """The booking a held offer stands for: the freed booking's length and buffers, at the
    offered start."""
    start = row.offered_start
    return ExistingBooking(
        start,
        start + (row.end_at - row.start_at),
        start - (row.start_at - row.blocked_from),
        start + (row.blocked_until - row.start_at),
        row.service_id,
        held=True,
        held_until=row.offer_expires_at,
    )


def _held_offers_query(
    since: Any,
    high: Any,
    now: Any,
    *,
    staff_ids: Any = None,
    service_id: int | None = None,
    other_staff: bool = False,
) -> Select[*tuple[Any, ...]]:
    """Held offers starting in ``[since, high)``: values, or bind parameters (a statement built
    once, see :func:`_taken_statement`)."""
    query: Select[*tuple[Any, ...]] = (
        select(
            WaitlistEntry.offered_staff_id.label("staff_id"),
            WaitlistEntry.offered_start,
            WaitlistEntry.offer_expires_at,
            WaitlistEntry.service_id,
            Booking.start_at,
            Booking.end_at,
            Booking.blocked_from,
            Booking.blocked_until,
        )
        .join(Booking, Booking.id == WaitlistEntry.freed_booking_id)
        .where(
            WaitlistEntry.state == "offered",
            WaitlistEntry.offered_start >= since,
            WaitlistEntry.offered_start < high,
        )
    )
    if now is not None:
        query = query.where(WaitlistEntry.offer_expires_at > now)
    if staff_ids is not None:
        member = WaitlistEntry.offered_staff_id
        query = query.where(member.not_in(staff_ids) if other_staff else member.in_(staff_ids))
    if service_id is not None:
        query = query.where(WaitlistEntry.service_id == service_id)
    return query


def read_held_offers(
    session: Session,
    low: datetime,
    high: datetime,
    now: datetime | None,
    *,
    staff_ids: Sequence[int] | None = None,
    service_id: int | None = None,
    other_staff: bool = False,
) -> list[tuple[int, ExistingBooking]]:
    """Places offered to the waitlist and held (``offered``, not run out at ``now``) with a
    start in ``[low - 1 day, high)``, as the bookings they stand for: (staff id, booking). An
    offer holds the freed booking's length and breaks at the offered start, for its staff
    member: one place of a group, the whole time otherwise. ``staff_ids`` (or, ``other_staff``,
    all but them) and ``service_id`` narrow what is read. The client who accepts the offer
    turns it into ``booked`` first, so their own offer is not in their way."""
    query = _held_offers_query(
        low - timedelta(days=1),
        high,
        now,
        staff_ids=staff_ids,
        service_id=service_id,
        other_staff=other_staff,
    )
    return [
        (row.staff_id, _held(row))
        for row in session.execute(query)
        if row.staff_id is not None and row.offered_start is not None
    ]


@dataclass(frozen=True)
class SlotSearch:
    """Whose time and which bookings a search counts, beyond the service and the window.

    ``staff_ids`` narrows the pool (a client's choice, a reschedule that keeps its staff);
    ``exclude_booking`` leaves one booking out (the one being moved); ``ignore_bookings`` gives
    the slots as if nothing were booked (to tell "taken" from "never offered"); ``by_staff``
    lifts the workflow's booking window (see :func:`slot_rules`); ``answers`` (checked values,
    by field id) narrow the pool by the workflow's ``route`` (see :func:`routed_pool`).
    """

    staff_ids: Sequence[int] | None = None
    exclude_booking: int | None = None
    ignore_bookings: bool = False
    by_staff: bool = False
    answers: Mapping[str, Any] | None = None
    # How far ahead the search may look, when further than the rules allow (a series: the first
    # occurrence obeys the booking window, the later ones follow it).
    max_ahead: timedelta | None = None
    # The service's pool, when the caller read it already in this transaction (a booking):
    # not read again.
    pool: tuple[PoolMember, ...] | None = None
    # Where a client's search keeps the days it found, and finds them again (see
    # :func:`service_availability`); None: found anew.
    cache: SlotCache | None = field(default=None, compare=False, repr=False)


def service_availability(
    session: Session,
    calendar: Calendar,
    service: Service,
    workflow: Workflow,
    window_start: datetime,
    window_end: datetime,
    now: datetime,
    search: SlotSearch | None = None,
) -> Availability:
    """Free slots of ``service`` starting in ``[window_start, window_end)``, counting what
    ``search`` says (by default: the whole pool, every booking, the workflow's window). Timed,
    and the slots counted, for /metrics (bookwise.metrics).
    With ``search.cache``, days found before are read from it and the days found are kept
    there (bookwise.availability.cache), for the searches that show times to clients (not those
    of a booking, of a reschedule, nor staff's: the cache is not used for them)."""
    started = time.perf_counter()
    search = search or SlotSearch()
    if _cacheable(search):
        found = _cached_availability(
            session, calendar, service, workflow, (window_start, window_end), now, search
        )
    else:
        found = _service_availability(
            session, calendar, service, workflow, window_start, window_end, now, search
        )
    SLOT_SEARCH_SECONDS.observe(time.perf_counter() - started)
    SLOTS_FOUND.inc(len(found.slots))
    return found


def _service_availability(
    session: Session,
    calendar: Calendar,
    service: Service,
    workflow: Workflow,
    window_start: datetime,
    window_end: datetime,
    now: datetime,
    search: SlotSearch | None,
) -> Availability:
    search = search or SlotSearch()
    pool = list(search.pool) if search.pool is not None else read_pool(session, service, workflow)
    pool = _narrowed(pool, workflow, search)
    rules = slot_rules(calendar, service, workflow, search.by_staff)
    if search.max_ahead is not None and search.max_ahead > rules.max_ahead:
        rules = replace(rules, max_ahead=search.max_ahead)
    margin = _margin(workflow)
    ids = [m.id for m in pool]
    joined_elsewhere: dict[datetime, int] = {}
    # Whose hours are the calendar's is known from the pool: the time in two queries.
    staff_time = _read_time(
        session,
        calendar.id,
        ids,
        window_start - margin,
        window_end + margin,
        {m.id: m.uses_calendar_hours for m in pool},
        # No booking read with ignore_bookings: as if nothing were booked.
        None if search.ignore_bookings else _Bookings(search.exclude_booking, now),
    )
    if rules.per_slot and not search.ignore_bookings:
        joined_elsewhere = read_joined_elsewhere(
            session, service, ids, window_start, window_end, search.exclude_booking, now
        )
    return Availability(
        find_free_slots(rules, staff_time, window_start, window_end, now, joined_elsewhere), pool
    )


def _cacheable(search: SlotSearch) -> bool:
    """Searches whose days the slot cache keeps: a client's (the workflow's window, no booking
    left out, the pool read here)."""
    return (
        search.cache is not None
        and search.exclude_booking is None
        and not search.by_staff
        and search.max_ahead is None
        and search.pool is None
    )


def _narrowed(pool: list[PoolMember], workflow: Workflow, search: SlotSearch) -> list[PoolMember]:
    """The pool as ``search`` narrows it: by the workflow's route, then to the staff asked for."""
    if search.answers is not None and workflow.route:
        pool, _excluded = routed_pool(pool, workflow, search.answers)
    if search.staff_ids is not None:
        pool = [m for m in pool if m.id in search.staff_ids]
    return pool


@dataclass(frozen=True)
class _Asked:
    """A slot search through the cache: where it reads, what it is of, and when."""

    session: Session
    calendar: Calendar
    service: Service
    workflow: Workflow
    now: datetime
    search: SlotSearch


def _cached_availability(
    session: Session,
    calendar: Calendar,
    service: Service,
    workflow: Workflow,
    window: tuple[datetime, datetime],
    now: datetime,
    search: SlotSearch,
) -> Availability:
    """:func:`_service_availability` through the slot cache: the versions first, with the pool
    (one query); then the local days of the window that the cache does not hold are found, in
    runs of days, and kept; then the booking window cuts them at ``now``."""
    cache = search.cache
    assert cache is not None
    asked = _Asked(session, calendar, service, workflow, now, search)
    whole, calendar_version = read_pool_versions(session, service, workflow)
    pool = _narrowed(whole, workflow, search)
    rules = slot_rules(calendar, service, workflow)
    zone = ZoneInfo(rules.timezone)
    # The local days (of the calendar's zone) that may hold a start the window and the booking
    # window allow: each found whole.
    low = max(window[0], now + rules.min_notice)
    high = min(window[1], now + rules.max_ahead + timedelta(seconds=1))
    if not pool or low >= high:
        return Availability([], pool)
    first = low.astimezone(zone).date()
    last = (high - timedelta(microseconds=1)).astimezone(zone).date()  # high: not in it
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    bounds = [local_day_bounds(d, d, zone) for d in days]
    # The blocks of time each local day's slots are found from (where a booking or time off
    # takes a slot of the day: its starts, their length and buffers), and the changes in them.
    before, after = workflow.buffer_before, workflow.duration + workflow.buffer_after
    reach = [(_block(start - before), _block(end + after)) for start, end in bounds]
    changed = read_slot_versions(
        session,
        [m.id for m in (whole if rules.per_slot else pool)],
        reach[0][0],
        reach[-1][1],
    )
    found_from = (
        rules,
        calendar.id,
        calendar_version,
        tuple((m.id, m.version, m.uses_calendar_hours) for m in pool),
        # One group per slot counts the bookings of the pool's other members too.
        tuple((m.id, m.version) for m in whole) if rules.per_slot else (),
        search.ignore_bookings,
    )
    names = cache.names(
        found_from,
        [
            (start, sum(changed.get(block, 0) for block in range(first_block, last_block + 1)))
            for (start, _end), (first_block, last_block) in zip(bounds, reach, strict=True)
        ],
    )
    kept = cache.get(names, now)
    missing = [i for i, k in enumerate(kept) if k is None]
    SLOT_CACHE_DAYS.labels("hit").inc(len(days) - len(missing))
    for run in _runs(missing):
        with cache.finding(names[run[0]]):
            # Another thread may have found them meanwhile.
            again = cache.get([names[i] for i in run], now)
            if all(day is not None for day in again):
                kept[run[0] : run[-1] + 1] = again
                SLOT_CACHE_DAYS.labels("hit").inc(len(run))
                continue
            SLOT_CACHE_DAYS.labels("miss").inc(len(run))
            by_day: dict[date, list[Slot]] = {days[i]: [] for i in run}
            bounds_of_run = (bounds[run[0]][0], bounds[run[-1]][1])
            slots, until = _any_time(asked, rules, pool, bounds_of_run)
            for slot in slots:
                by_day[slot.start.astimezone(zone).date()].append(slot)
            made = cache.put({names[i]: by_day[days[i]] for i in run}, now, until)
        kept[run[0] : run[-1] + 1] = made
    # The booking window's cut (in_booking_window), by bisection of each day's starts.
    earliest, latest = booking_window_bounds(rules, *window, now)
    cut = []
    for day in kept:
        assert day is not None
        first_kept, after_kept = bisect_left(day.starts, earliest), bisect_right(day.starts, latest)
        if first_kept < after_kept:
            cut.append((day, first_kept, after_kept))
    return Availability([slot for day, i, j in cut for slot in day.slots[i:j]], pool, tuple(cut))


def _margin(workflow: Workflow) -> timedelta:
    """How far around a window the staff's time is read: what a slot's length and buffers reach,
    and a day (working ranges are read from the day before)."""
    return workflow.duration + workflow.buffer_before + workflow.buffer_after + timedelta(days=1)


def _block(moment: datetime) -> int:
    """The block of six hours (SlotVersion) ``moment`` falls in."""
    return int(moment.timestamp()) // SlotVersion.BLOCK_SECONDS


def read_slot_versions(
    session: Session, staff_ids: list[int], first: int, last: int
) -> dict[int, int]:
    """How many changes of the time of ``staff_ids`` were counted in each of the blocks
    ``first`` to ``last`` (SlotVersion): the sum of their versions, by block (none: 0).

    A sum names the state of a block as well as the versions do: each change raises one
    version by one, and a version never goes down (the purge deletes only blocks no kept day
    is found from), so the sum of a given pool's versions rises at every change. One row per
    block is read instead of one per member and block."""
    if not staff_ids:
        return {}
    rows = session.execute(
        _slot_versions_statement(), {"staff_ids": staff_ids, "first": first, "last": last}
    )
    return {int(block): int(total) for block, total in rows}


@cache
def _slot_versions_statement() -> Select[int, int]:
    """The statement of :func:`read_slot_versions`, built once, with bind parameters
    ``staff_ids`` (expanding), ``first`` and ``last``."""
    return (
        select(SlotVersion.block, func.sum(SlotVersion.version))
        .where(
            SlotVersion.staff_id.in_(bindparam("staff_ids", expanding=True)),
            SlotVersion.block >= bindparam("first", type_=BigInteger()),
            SlotVersion.block <= bindparam("last", type_=BigInteger()),
        )
        .group_by(SlotVersion.block)
    )


# How long the versions of a past block are kept: a day's slots are never found from blocks
# further back (the buffers before a start are shorter), nor kept longer (cache.slots_seconds
# is at most a day), so a version counted again from 1 can never name a kept day.
SLOT_VERSIONS_KEPT = timedelta(days=7)


def purge_slot_versions(session: Session, now: datetime) -> int:
    """Delete the versions of the blocks more than :data:`SLOT_VERSIONS_KEPT` past; how many."""
    done = session.execute(
        delete(SlotVersion).where(SlotVersion.block < _block(now - SLOT_VERSIONS_KEPT))
    )
    return int(getattr(done, "rowcount", 0) or 0)


def _runs(indexes: list[int]) -> list[list[int]]:
    """Consecutive indexes, grouped: [1, 2, 5] -> [[1, 2], [5]]."""
    runs: list[list[int]] = []
    for i in indexes:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def _any_time(
    asked: _Asked, rules: SlotRules, pool: list[PoolMember], window: tuple[datetime, datetime]
) -> tuple[list[Slot], datetime | None]:
    """The slots of the pool in the window whatever the time of asking (the cache's days), and
    until when they hold: when the first waitlist offer they count runs out (None: always)."""
    workflow, search = asked.workflow, asked.search
    margin = _margin(workflow)
    ids = [m.id for m in pool]
    staff_time = _read_time(
        asked.session,
        asked.calendar.id,
        ids,
        window[0] - margin,
        window[1] + margin,
        {m.id: m.uses_calendar_hours for m in pool},
        None if search.ignore_bookings else _Bookings(None, asked.now),
    )
    joined_elsewhere: dict[datetime, int] = {}
    until = _first_expiry(b for member in staff_time for b in member.bookings)
    if rules.per_slot and not search.ignore_bookings:
        joined_elsewhere, joined_until = _joined_elsewhere(
            asked.session, asked.service, ids, *window, None, asked.now
        )
        until = min((t for t in (until, joined_until) if t is not None), default=None)
    return find_slots_any_time(rules, staff_time, *window, joined_elsewhere), until


def read_joined_elsewhere(
    session: Session,
    service: Service,
    staff_ids: list[int],
    window_start: datetime,
    window_end: datetime,
    exclude_booking: int | None = None,
    now: datetime | None = None,
) -> dict[datetime, int]:
    """Bookings of ``service`` starting in the window, by start, held by staff other than
    ``staff_ids`` (places offered to the waitlist too): with one group per slot they take its
    places too, whoever teaches them."""
    joined, _until = _joined_elsewhere(
        session, service, staff_ids, window_start, window_end, exclude_booking, now
    )
    return joined


def _joined_elsewhere(
    session: Session,
    service: Service,
    staff_ids: list[int],
    window_start: datetime,
    window_end: datetime,
    exclude_booking: int | None,
    now: datetime | None,
) -> tuple[dict[datetime, int], datetime | None]:
    """:func:`read_joined_elsewhere`, and when the first offer it counts runs out (None: no
    offer)."""
    query = (
        select(Booking.start_at, func.count())
        .where(
            Booking.service_id == service.id,
            Booking.holds_slot,
            Booking.start_at >= window_start,
            Booking.start_at < window_end,
        )
        .group_by(Booking.start_at)
    )
    if staff_ids:
        query = query.where(Booking.staff_id.not_in(staff_ids))
    if exclude_booking is not None:
        query = query.where(Booking.id != exclude_booking)
    joined: dict[datetime, int] = defaultdict(int, session.execute(query).all())
    offers = read_held_offers(
        session,
        window_start,
        window_end,
        now,
        staff_ids=staff_ids,
        service_id=service.id,
        other_staff=True,
    )
    counted = [held for _member, held in offers if window_start <= held.start < window_end]
    for held in counted:
        joined[held.start] += 1
    return dict(joined), _first_expiry(counted)


def _first_expiry(bookings: Iterable[ExistingBooking]) -> datetime | None:
    """When the first of the held offers among ``bookings`` runs out (None: none held)."""
    return min((b.held_until for b in bookings if b.held_until is not None), default=None)


@dataclass(frozen=True)
class TimeExplanation:
    """Why a start is or is not offered (:func:`bookwise.availability.engine.explain_start`), and
    the pool its staff verdicts refer to (the whole pool, those the routing leaves out too)."""

    explanation: Explanation
    pool: list[PoolMember]

    def member(self, staff_id: int) -> PoolMember:
        return next(m for m in self.pool if m.id == staff_id)


def explain_time(
    session: Session,
    calendar: Calendar,
    service: Service,
    workflow: Workflow,
    start: datetime,
    now: datetime,
    search: SlotSearch | None = None,
) -> TimeExplanation:
    """Why ``start`` is or is not offered for ``service``: the same inputs as
    :func:`service_availability` (``search`` alike: ``answers`` route, ``staff_ids`` narrow),
    explained by the engine itself."""
    search = search or SlotSearch()
    pool = list(search.pool) if search.pool is not None else read_pool(session, service, workflow)
    if search.staff_ids is not None:
        pool = [m for m in pool if m.id in search.staff_ids]
    excluded: list[PoolMember] = []
    if search.answers is not None and workflow.route:
        _kept, excluded = routed_pool(pool, workflow, search.answers)
    rules = slot_rules(calendar, service, workflow, search.by_staff)
    margin = workflow.duration + workflow.buffer_before + workflow.buffer_after + timedelta(days=1)
    end = start + timedelta(seconds=1)
    ids = [m.id for m in pool]
    staff_time = _read_time(
        session,
        calendar.id,
        ids,
        start - margin,
        end + margin,
        {m.id: m.uses_calendar_hours for m in pool},
        _Bookings(search.exclude_booking, now),
    )
    joined = 0
    if rules.per_slot:
        joined = sum(
            read_joined_elsewhere(
                session, service, ids, start, end, search.exclude_booking, now
            ).values()
        )
    explanation = explain_start(
        rules, staff_time, start, now, joined, routed_out=[m.id for m in excluded]
    )
    return TimeExplanation(explanation, pool)
