"""Series of bookings (a weekly course): check every occurrence, book them in one transaction,
show them and cancel one or the rest (issue 18; docs/workflows.md, "Series").

A series is one :class:`~bookwise.bookings.models.BookingSeries` row and one
:class:`~bookwise.bookings.models.Booking` per occurrence booked. It is booked by the same path
as a single booking (:mod:`bookwise.bookings.services`: the writer's transaction, the staff
locks, the database's no-double-booking rule), with these differences:

- every occurrence is checked with one search of the availability engine over the series' span
  before anything is written; when one is not free, :class:`SeriesConflict` lists those that are
  not and nothing is written, unless the client said ``skip_unavailable`` (then the free ones are
  booked and the others left out, EXDATEs of the calendar invitation);
- one staff member free for every occurrence is preferred (a tutor keeps their pupil); else each
  occurrence is assigned by the workflow's strategy, preferring the previous one's staff member;
- the client gets one confirmation (the first occurrence's, which lists them all and carries the
  series' invitation) and a reminder before each occurrence.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from bookwise.availability.engine import Slot
from bookwise.availability.services import (
    SlotSearch,
    local_day_bounds,
    read_pool,
    routed_pool,
    service_availability,
)
from bookwise.bookings.answers import check_answers
from bookwise.bookings.ics import SeriesRule
from bookwise.bookings.models import Booking, BookingSeries
from bookwise.bookings.recurrence import (
    REPLACEMENT_DAYS,
    SeriesRequest,
    SeriesRequestError,
    check_replacements,
    check_series_request,
    continuous_staff,
    occurrence_starts,
    weeks_between,
)
from bookwise.bookings.services import (
    BookingContext,
    BookingError,
    BookingRequest,
    InvalidRequest,
    NotAllowed,
    TooLate,
    _check_window,
    _choose_staff,
    _client,
    _flush_or_taken,
    _lock_staff,
    _wanted_staff,
    begin_write_if_fresh,
    cancel_booking,
    client_may_change,
    find_service,
    new_booking,
    record_new_booking,
    routing_values,
    transition_booking,
)
from bookwise.errors import NotFound
from bookwise.notifications.planning import one_message_each, plan_event, plan_rule, plan_timed
from bookwise.workflows.lifecycle import Role
from bookwise.workflows.services import workflow_of

if TYPE_CHECKING:
    from bookwise.plugins.host import PluginHost

# What an occurrence of a series is, besides its booking's state: left out when booked (it was
# not free), or moved to another time (its booking is listed at its new start).
SKIPPED = "skipped"
MOVED = "moved"


class SeriesConflict(BookingError):
    """Some occurrences of the series are not free: nothing was written. ``details``:
    ``unavailable`` (their starts) and ``occurrences`` (every start, free or not)."""

    code = "series_conflict"


@dataclass(frozen=True)
class OccurrenceCheck:
    """One occurrence of a series asked for: its start, and whether it is free (and for whom)."""

    start: datetime
    free: bool
    staff: tuple[int, ...] = ()
    replaces: datetime | None = None  # a replacement: the occurrence of the rule it replaces


@dataclass(frozen=True)
class SeriesOccurrence:
    """One occurrence of a booked series, for pages and the API: its start, its state (the
    booking's, or :data:`SKIPPED` / :data:`MOVED`), and its booking when it has one."""

    start: datetime
    state: str
    booking: Booking | None = None


def _series_slots(
    session: Session,
    context: BookingContext,
    starts: Sequence[datetime],
    now: datetime,
    search: SlotSearch,
    margin_days: int = 0,
) -> dict[datetime, Slot]:
    """The free slots, by start, of one search of the availability engine over the series'
    span (the first start to the last, widened by ``margin_days`` local days each side), the
    booking window lifted beyond the first occurrence."""
    if margin_days:
        zone = ZoneInfo(context.calendar.timezone)
        first, last = min(starts).astimezone(zone).date(), max(starts).astimezone(zone).date()
        margin = timedelta(days=margin_days)
        window = local_day_bounds(first - margin, last + margin, zone)
    else:
        window = (min(starts), max(starts) + timedelta(seconds=1))
    search = replace(search, max_ahead=window[1] - now + timedelta(days=1))
    found = service_availability(
        session, context.calendar, context.service, context.workflow, *window, now, search
    )
    return {slot.start: slot for slot in found.slots}


def _rule_starts(
    context: BookingContext, first_start: datetime, series: SeriesRequest
) -> list[datetime]:
    """The starts of the series' rule; :class:`InvalidRequest` for a series the workflow does
    not allow, or replacements that do not fit it."""
    try:
        check_series_request(context.workflow.recurrence, series)
    except SeriesRequestError as exc:
        raise InvalidRequest(str(exc), exc.code) from None
    if first_start.tzinfo is None or first_start.utcoffset() is None:
        raise InvalidRequest("the start time needs its UTC offset", "invalid_start")
    starts = occurrence_starts(
        first_start, series.frequency, series.count, context.calendar.timezone
    )
    try:
        check_replacements(
            starts, series.replacements, context.workflow.duration, context.calendar.timezone
        )
    except SeriesRequestError as exc:
        raise InvalidRequest(str(exc), exc.code, problem=str(exc)) from None
    return starts


def check_occurrences(
    session: Session,
    context: BookingContext,
    first_start: datetime,
    series: SeriesRequest,
    now: datetime,
    *,
    staff_ids: list[int] | None = None,
    by_staff: bool = False,
    answers: dict[str, object] | None = None,
) -> tuple[list[OccurrenceCheck], dict[datetime, Slot]]:
    """Whether each occurrence of ``series`` from ``first_start`` is free, then each of its
    replacements (``replaces`` set), with one search of the availability engine over the
    series' span; and the free slots, by start. Raises :class:`InvalidRequest` for a series
    the workflow does not allow. Reads only."""
    starts = _rule_starts(context, first_start, series)
    wanted = [*starts, *(r.start.astimezone(UTC) for r in series.replacements)]
    search = SlotSearch(staff_ids=staff_ids, by_staff=by_staff, answers=answers)
    found = _series_slots(session, context, wanted, now, search)
    slots = {start: found[start] for start in wanted if start in found}
    checks = [OccurrenceCheck(s, s in slots, slots[s].staff if s in slots else ()) for s in starts]
    for replacement in series.replacements:
        start = replacement.start.astimezone(UTC)
        staff = slots[start].staff if start in slots else ()
        replaces = replacement.replaces.astimezone(UTC)
        checks.append(OccurrenceCheck(start, start in slots, staff, replaces))
    return checks, slots


# At most this many replacement times are offered on each day around an occurrence.
OPTIONS_PER_DAY = 8


def replacement_times(
    session: Session,
    context: BookingContext,
    first_start: datetime,
    series: SeriesRequest,
    now: datetime,
    *,
    staff_ids: list[int] | None = None,
    answers: dict[str, object] | None = None,
) -> tuple[list[OccurrenceCheck], dict[datetime, list[datetime]]]:
    """Whether each occurrence of the series' rule is free and, for each one that is not, the
    free times that could replace it: that day and the :data:`REPLACEMENT_DAYS` days around
    it, apart from the series' other occurrences, and with the staff member who would take
    the whole series when one would (the client's choice, else one free for every free
    occurrence). One search of the availability engine; reads only."""
    starts = _rule_starts(context, first_start, replace(series, replacements=()))
    search = SlotSearch(staff_ids=staff_ids, answers=answers)
    found = _series_slots(session, context, starts, now, search, REPLACEMENT_DAYS)
    checks = [OccurrenceCheck(s, s in found, found[s].staff if s in found else ()) for s in starts]
    free = [c.start for c in checks if c.free]
    if staff_ids and len(staff_ids) == 1:
        tutor: int | None = staff_ids[0]
    else:
        order = [m.id for m in read_pool(session, context.service, context.workflow)]
        tutor = continuous_staff({s: found[s].staff for s in free}, free, order)
    duration = context.workflow.duration
    zone = ZoneInfo(context.calendar.timezone)
    options: dict[datetime, list[datetime]] = {}
    for check in checks:
        if check.free:
            continue
        day = check.start.astimezone(zone).date()
        near = [
            start
            for start, slot in sorted(found.items())
            if abs((start.astimezone(zone).date() - day).days) <= REPLACEMENT_DAYS
            and (tutor is None or tutor in slot.staff)
            and all(abs(start - other) >= duration for other in free)
        ]
        options[check.start] = _closest_each_day(near, check.start, zone)
    return checks, options


def _closest_each_day(times: list[datetime], wanted: datetime, zone: ZoneInfo) -> list[datetime]:
    """Of ``times``, on each day the :data:`OPTIONS_PER_DAY` closest to ``wanted``'s time of
    day (the same time another day, or another time that day), in order of time."""
    local = wanted.astimezone(zone)
    minute = local.hour * 60 + local.minute
    days: dict[object, list[datetime]] = {}
    for moment in times:
        days.setdefault(moment.astimezone(zone).date(), []).append(moment)
    kept: list[datetime] = []
    for moments in days.values():

        def distance(moment: datetime) -> int:
            there = moment.astimezone(zone)
            return abs(there.hour * 60 + there.minute - minute)

        kept.extend(sorted(moments, key=distance)[:OPTIONS_PER_DAY])
    return sorted(kept)


def book_series_from_answers(
    session: Session,
    calendar_slug: str,
    workflow_slug: str,
    request: BookingRequest,
    series: SeriesRequest,
    now: datetime,
    *,
    plugins: PluginHost | None,
    public: bool = True,
) -> BookingSeries:
    """Book a series from answers: the public form's and the API's path (see
    :func:`bookwise.bookings.services.book_from_answers`). The caller commits."""
    context = find_service(session, calendar_slug, workflow_slug, public=public)
    return create_series(session, context, request, series, now, plugins=plugins)


def create_series(
    session: Session,
    context: BookingContext,
    request: BookingRequest,
    series: SeriesRequest,
    now: datetime,
    *,
    plugins: PluginHost | None,
) -> BookingSeries:
    """Book ``series.count`` occurrences from ``request.start`` (with ``series.replacements``
    booked instead of the occurrences they replace), all in the caller's one transaction;
    raises :class:`SeriesConflict` (nothing written) when a replacement is not free, or an
    occurrence is not free and not replaced and ``series.skip_unavailable`` does not leave it
    out; :class:`InvalidRequest` for replacements that do not fit the series; or any error
    :func:`create_booking` raises."""
    begin_write_if_fresh(session)
    workflow = context.workflow
    try:
        check_series_request(workflow.recurrence, series)
    except SeriesRequestError as exc:
        raise InvalidRequest(str(exc), exc.code) from None
    answers = check_answers(
        workflow,
        request.values,
        request.consent,
        now.date(),
        field_types=plugins.field_types if plugins is not None else None,
    )
    if request.start.tzinfo is None or request.start.utcoffset() is None:
        raise InvalidRequest("the start time needs its UTC offset", "invalid_start")
    first_start = request.start.astimezone(UTC)
    _check_window(workflow, first_start, now, request.by_staff)

    pool = read_pool(session, context.service, workflow)
    routing = routing_values(answers)
    wanted = _wanted_staff(workflow, routed_pool(pool, workflow, routing)[0], request)
    everyone = workflow.one_group_per_slot or not wanted
    _lock_staff(session, [m.id for m in pool] if everyone else list(wanted or ()))
    checks, slots = check_occurrences(
        session,
        context,
        first_start,
        series,
        now,
        staff_ids=wanted,
        by_staff=request.by_staff,
        answers=routing,
    )
    replaced = {c.replaces: c.start for c in checks if c.replaces is not None}
    rule = [c for c in checks if c.replaces is None]
    free_starts = sorted(
        [c.start for c in rule if c.free and c.start not in replaced]
        + [c.start for c in checks if c.replaces is not None]
    )
    _refuse_conflicts(checks, replaced, series, bool(free_starts))
    order = [m.id for m in pool]
    tutor = (
        wanted[0]
        if wanted
        else continuous_staff({s: slots[s].staff for s in free_starts}, free_starts, order)
    )

    client = _client(context, request, answers)
    session.add(client)
    row = BookingSeries(
        uid=uuid.uuid4().hex,
        calendar_id=context.calendar.id,
        service_id=context.service.id,
        client=client,
        frequency=series.frequency,
        count=series.count,
        first_start=first_start,
        locale=client.locale,
        timezone=client.timezone,
        manage_token=secrets.token_urlsafe(22),
        sequence=0,
        created_at=now,
    )
    session.add(row)
    session.flush()
    bookings: list[Booking] = []
    previous: int | None = None
    for start in free_starts:
        slot = slots[start]
        if tutor is not None:
            staff_id = tutor
        else:
            staff_id = _choose_staff(session, context, slot, pool, plugins, prefer=previous)
        previous = staff_id
        booking = new_booking(
            context, request, answers, client, staff_id, start, now, series_id=row.id
        )
        session.add(booking)
        bookings.append(booking)
    _flush_or_taken(session)
    instead = {start: replaces for replaces, start in replaced.items()}
    for booking in bookings:
        details: dict[str, str] = {"series": row.uid}
        if (replaces := instead.get(_utc(booking.start_at))) is not None:
            details["replaces"] = replaces.isoformat()
        record_new_booking(session, context, request, booking, now, plugins, **details)
    session.flush()
    _plan_series_messages(session, context, bookings, row, now)
    session.flush()
    return row


def _refuse_conflicts(
    checks: list[OccurrenceCheck],
    replaced: dict[datetime, datetime],
    series: SeriesRequest,
    anything: bool,
) -> None:
    """:class:`SeriesConflict` (nothing is written) when a replacement is not free, or an
    occurrence is not free and not replaced, unless the client agreed to leave it out; or when
    nothing would be booked."""
    rule = [c for c in checks if c.replaces is None]
    lost = [c.start for c in checks if c.replaces is not None and not c.free]
    unavailable = [c.start for c in rule if not c.free and c.start not in replaced]
    left_out = series.skip_unavailable and (
        series.leave_out is None or set(unavailable) <= series.leave_out
    )
    if lost or (unavailable and not left_out) or not anything:
        raise SeriesConflict(
            "some occurrences of the series are not free; nothing was booked",
            unavailable=[start.isoformat() for start in [*unavailable, *lost]],
            occurrences=[{"start": c.start.isoformat(), "free": c.free} for c in rule],
            replacements=[
                {"start": c.start.isoformat(), "replaces": c.replaces.isoformat(), "free": c.free}
                for c in checks
                if c.replaces is not None
            ],
        )


def _plan_series_messages(
    session: Session,
    context: BookingContext,
    bookings: list[Booking],
    series: BookingSeries,
    now: datetime,
) -> None:
    """One message per recipient for the series (the first occurrence's, which lists them all
    and carries the series' invitation); the staff of a later occurrence who is not the first's
    is told once of theirs. Reminders and follow-ups: per occurrence, as for any booking."""
    workflow = context.workflow
    lead = bookings[0]
    state = lead.state
    plan_event(session, lead, workflow, state, now, payload={"series": series.uid})
    for booking in bookings[1:]:
        if booking.staff_id != lead.staff_id:
            for rule in workflow.notifications:
                if rule.on == state and "staff" in rule.to:
                    staff_rule = replace(rule, to=("staff",))
                    plan_rule(session, booking, staff_rule, now, f"{state}#{booking.sequence}")
    session.flush()
    one_message_each(session, bookings, state, {"series": series.uid})
    for booking in bookings:
        if booking.holds_slot:
            plan_timed(session, booking, workflow, now)


# --- the series' manage link --------------------------------------------------------------------


def series_manage_token(series: BookingSeries) -> str:
    """The client's secret link token of the whole series (as a booking's: id and secret)."""
    return f"{series.uid}-{series.manage_token}"


def find_series_by_manage_token(session: Session, token: str) -> BookingSeries:
    """The series of a manage token, or :class:`NotFound` (compared in constant time)."""
    uid, _, secret = token.partition("-")
    if len(uid) != 32 or not secret or len(token) > 128 or not token.isascii():
        raise NotFound("no such series")
    series = session.scalar(select(BookingSeries).where(BookingSeries.uid == uid))
    if series is None or not hmac.compare_digest(series.manage_token.encode(), secret.encode()):
        raise NotFound("no such series")
    return series


def expected_starts(series: BookingSeries, timezone: str) -> list[datetime]:
    """The starts the series' rule makes (booked or not), in UTC."""
    first = series.first_start
    if first.tzinfo is None:
        first = first.replace(tzinfo=UTC)  # SQLite gives naive UTC
    return occurrence_starts(first, series.frequency, series.count, timezone)


def series_occurrences(series: BookingSeries) -> list[SeriesOccurrence]:
    """Every occurrence of the series by start: those of the rule (a booking's state; or
    :data:`MOVED` when a booking of the series off the rule is within
    :data:`REPLACEMENT_DAYS` days of it, a replacement or an occurrence moved; else
    :data:`SKIPPED`, left out), and the bookings off the rule at their own start."""
    bookings = {_utc(b.start_at): b for b in series.occurrences}
    rule = expected_starts(series, series.calendar.timezone)
    ruled = set(rule)
    away = sorted(s for s in bookings if s not in ruled)
    zone = ZoneInfo(series.calendar.timezone)
    out = []
    for start in rule:
        booking = bookings.get(start)
        if booking is not None:
            out.append(SeriesOccurrence(start, booking.state, booking))
            continue
        day = start.astimezone(zone).date()
        near = [s for s in away if abs((s.astimezone(zone).date() - day).days) <= REPLACEMENT_DAYS]
        if near:
            away.remove(min(near, key=lambda s: abs(s - start)))
        out.append(SeriesOccurrence(start, MOVED if near else SKIPPED))
    out.extend(SeriesOccurrence(s, b.state, b) for s, b in bookings.items() if s not in ruled)
    out.sort(key=lambda o: o.start)
    return out


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def cancel_occurrences(
    session: Session,
    series: BookingSeries,
    now: datetime,
    *,
    occurrence: datetime | None = None,
    rest_from: datetime | None = None,
    reason: str | None = None,
    plugins: PluginHost | None,
) -> list[Booking]:
    """Cancel, for the client, the occurrence starting at ``occurrence``, or every occurrence
    still to come from ``rest_from`` on (those too close to their start to cancel online are
    kept); return the bookings cancelled. :class:`NotFound` for a start that is not an
    occurrence of the series; :class:`TooLate`/:class:`NotAllowed` when nothing can be
    cancelled."""
    begin_write_if_fresh(session)
    if (occurrence is None) == (rest_from is None):
        raise InvalidRequest("give the occurrence to cancel, or the rest", "invalid_request")
    if occurrence is not None:
        wanted = _utc(occurrence)
        booking = next((b for b in series.occurrences if _utc(b.start_at) == wanted), None)
        if booking is None:
            raise NotFound("no occurrence of this series starts at this time")
        cancel_booking(session, booking, now, reason=reason, plugins=plugins)
        cancelled = [booking]
    else:
        assert rest_from is not None
        since = max(_utc(rest_from), now)
        candidates = [b for b in series.occurrences if _utc(b.start_at) >= since and b.holds_slot]
        cancelled = []
        for booking in candidates:
            workflow = workflow_of(booking.workflow_version)
            if client_may_change(workflow, booking, now):
                cancel_booking(session, booking, now, reason=reason, plugins=plugins)
                cancelled.append(booking)
        if not cancelled:
            if candidates:
                workflow = workflow_of(candidates[0].workflow_version)
                client_may_change(workflow, candidates[0], now, raise_if_not=True)
                raise TooLate("it is too late to change this booking online", "too_late")
            raise NotAllowed("no occurrence of this series is left to cancel", "nothing_to_cancel")
    series.sequence += 1
    session.flush()
    if len(cancelled) > 1:
        _one_message_for_the_rest(session, series, cancelled)
    return cancelled


def _one_message_for_the_rest(
    session: Session, series: BookingSeries, cancelled: list[Booking]
) -> None:
    """Cancelling the rest tells each recipient once: their first occurrence's message lists
    every occurrence cancelled that they are told of (``series.cancelled``); their messages of
    the others are withdrawn."""
    one_message_each(session, cancelled, "cancelled", {"series": series.uid}, listed="cancelled")


def series_moves_from(series: BookingSeries, booking: Booking, now: datetime) -> list[Booking]:
    """The occurrences of ``booking``'s series a move on the whole series applies to: those
    still to come in ``booking``'s state (``requested``: the series awaiting approval), in
    order. Empty for a single booking."""
    if booking.series_id is None:
        return []
    return [
        b
        for b in series.occurrences
        if b.state == booking.state
        and b.workflow_version_id == booking.workflow_version_id
        and _utc(b.start_at) > now
    ]


def move_occurrences(
    session: Session,
    occurrences: list[Booking],
    name: str,
    role: Role,
    actor: str,
    now: datetime,
    reason: str | None = None,
    *,
    plugins: PluginHost | None,
) -> list[Booking]:
    """Make the lifecycle move ``name`` (``approve``, ``decline``...) on each of
    ``occurrences`` (of one series) in the caller's one transaction: all of them or, when one is
    refused (:class:`NotAllowed`, a time taken since), none (the caller rolls back). Each
    recipient gets one message naming every occurrence moved (``series.changed``), as for
    cancelling the rest."""
    begin_write_if_fresh(session)
    series = session.get(BookingSeries, occurrences[0].series_id) if occurrences else None
    if series is None or any(b.series_id != series.id for b in occurrences):
        raise NotAllowed("no occurrence of this series is waiting for this", "nothing_to_move")
    moved = [
        transition_booking(session, b, name, role, actor, now, reason, plugins=plugins)
        for b in occurrences
    ]
    series.sequence += 1
    session.flush()
    states = {b.state for b in moved}
    for state in states:
        same = [b for b in moved if b.state == state]
        one_message_each(session, same, state, {"series": series.uid}, listed="changed")
    return moved


# --- the series' calendar invitation -------------------------------------------------------------


@dataclass(frozen=True)
class SeriesInvitation:
    """The one calendar event of a series: its UID, SEQUENCE, first occurrence and rule (with
    the occurrences left out or cancelled as EXDATEs, the moved ones as RDATEs); ``holds``:
    whether any occurrence still takes place (else the event is cancelled as a whole)."""

    uid: str
    sequence: int
    start: datetime
    end: datetime
    repeat: SeriesRule
    holds: bool


def series_invitation(booking: Booking) -> SeriesInvitation | None:
    """The invitation of the series ``booking`` belongs to, or None for a single booking.

    Its SEQUENCE is the series' own plus every occurrence's, so that any change (an occurrence
    cancelled from its own link, approved, moved) raises it and calendars update the event."""
    if booking.series_id is None:
        return None
    session = object_session(booking)
    series = session.get(BookingSeries, booking.series_id) if session is not None else None
    if series is None:
        return None
    duration = booking.end_at - booking.start_at
    rule = expected_starts(series, series.calendar.timezone)
    holding = {_utc(b.start_at) for b in series.occurrences if b.holds_slot}
    ruled = set(rule)
    last = max([*rule, *holding])
    repeat = SeriesRule(
        weeks=weeks_between(series.frequency),
        count=series.count,
        exdates=tuple(start for start in rule if start not in holding),
        rdates=tuple(sorted(start for start in holding if start not in ruled)),
        last_end=last + duration,
    )
    return SeriesInvitation(
        uid=f"{series.uid}@bookwise",
        sequence=series.sequence + sum(b.sequence for b in series.occurrences),
        start=rule[0],
        end=rule[0] + duration,
        repeat=repeat,
        holds=bool(holding),
    )


def occurrence_position(booking: Booking) -> tuple[BookingSeries, int, int] | None:
    """The series ``booking`` is an occurrence of, its place in it (from 1) and how many
    occurrences the series has (those booked, in order of time); None for a single booking."""
    if booking.series_id is None:
        return None
    session = object_session(booking)
    series = session.get(BookingSeries, booking.series_id) if session is not None else None
    if series is None:
        return None
    ids = [b.id for b in series.occurrences]
    return series, ids.index(booking.id) + 1, len(ids)
