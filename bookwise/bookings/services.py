"""Booking, rescheduling, cancelling, and moving a booking through its lifecycle.

There is one way to book: the public pages, the API and the back office all call these
functions. They take a ``Session`` and never commit; a booking is written in one transaction that
cannot double-book:

- the transaction is begun as a writer (:func:`bookwise.db.begin_write`: ``BEGIN IMMEDIATE`` on
  SQLite, which serialises writers);
- availability is then computed again inside the transaction, from what is committed;
- on PostgreSQL a one-to-one booking then locks only the member it gets, skipping a member
  another request is booking at that moment (:func:`_claim`: ``FOR UPDATE SKIP LOCKED``), so
  bookings for different staff never wait for each other; a group's bookings lock their staff
  first (``SELECT ... FOR UPDATE``, in id order so that two bookings never deadlock), so that
  one writer at a time counts its places;
- the database refuses what would still slip through (migration 0002: an exclusion constraint on
  PostgreSQL, triggers on SQLite), and that refusal becomes :class:`SlotTaken`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, Select, bindparam, func, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, aliased, defer

from bookwise.availability.assignment import (
    STRATEGIES,
    AssignmentContext,
    assign,
    rotation_order,
)
from bookwise.availability.engine import Slot
from bookwise.availability.services import (
    PoolMember,
    SlotSearch,
    read_pool,
    routed_pool,
    service_availability,
)
from bookwise.bookings.answers import CleanAnswers, check_answers
from bookwise.bookings.models import Booking, BookingEvent, Client, ConsentRecord
from bookwise.bookings.offers import offer_freed_place
from bookwise.calendars.models import AssignmentTurn, Calendar, Service, StaffMember
from bookwise.db import UTCDateTime
from bookwise.errors import N_, BookwiseError, NotFound
from bookwise.notifications.models import WebhookEndpoint
from bookwise.notifications.planning import (
    note_new_booking,
    plan_event,
    plan_timed,
    withdraw_timed,
)
from bookwise.notifications.webhooks import event_type, note_without_endpoints, plan_webhooks
from bookwise.plugins.bookings import (
    create_meeting,
    forget_meeting,
    move_meeting,
    note_change,
    snapshot,
    used_by,
)
from bookwise.workflows.language import Consent, Field, Workflow
from bookwise.workflows.lifecycle import RESCHEDULED, Role, TransitionNotAllowed
from bookwise.workflows.models import WorkflowRecord, WorkflowVersion
from bookwise.workflows.services import workflow_of

if TYPE_CHECKING:
    from bookwise.plugins.host import PluginHost

log = logging.getLogger(__name__)


class BookingError(BookwiseError):
    """A booking request that cannot be honoured; ``code`` is stable, for the API."""

    code = "booking_error"
    # What to tell the person, already in their language (a plugin's refusal); else the pages
    # word the code (bookwise.bookings.messages.describe).
    told: str | None = None

    def __init__(self, message: str, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.details = details


class Busy(BookingError):
    """The database could not give this booking its locks in time (many people booking the same
    staff at once): nothing was written; the same request may simply be sent again."""

    code = "busy"
    retry_after = 2  # seconds, for the API's Retry-After


class Refused(BookingError):
    """A plugin's ``bookwise_validate_booking`` refused the booking; ``told`` is its reason."""

    code = "refused"

    def __init__(self, told: str) -> None:
        super().__init__(f"refused by a plugin: {told}")
        self.told = told


class SlotTaken(BookingError):
    """The time was free a moment ago and is not any more: pick another."""

    code = "slot_taken"


class NotASlot(BookingError):
    """The time is not one this service offers (outside hours, off the grid, time off)."""

    code = "not_a_slot"


class OutsideWindow(BookingError):
    """The time is in the past, too soon or too far ahead for the workflow's booking window."""

    code = "outside_booking_window"


class TooLate(BookingError):
    """Too close to the start to cancel or reschedule online."""

    code = "too_late"


class NotAllowed(BookingError):
    """The workflow or the booking's state does not allow this."""

    code = "not_allowed"


class InvalidRequest(BookingError):
    """The request itself is wrong (an unknown staff member, a choice the client cannot make)."""

    code = "invalid_request"


@dataclass(frozen=True)
class BookingRequest:
    """What a client asks for. ``values`` holds every field's answer, contact details included."""

    start: datetime
    values: dict[str, Any]
    consent: bool | None = None
    staff: str | None = None
    locale: str | None = None
    timezone: str | None = None
    source: str = "public"
    actor: str = "client"
    sms_opt_in: bool = False
    # Made by staff for a client (a phone booking): the workflow's booking window does not apply,
    # and the staff member may be chosen even where the workflow assigns staff itself.
    by_staff: bool = False


@dataclass
class BookingContext:
    """A service with its calendar and the workflow version in force."""

    calendar: Calendar
    service: Service
    version: WorkflowVersion
    workflow: Workflow = field(init=False)

    def __post_init__(self) -> None:
        self.workflow = workflow_of(self.version)


def find_service(
    session: Session, calendar_slug: str, workflow_slug: str, *, public: bool = True
) -> BookingContext:
    """The service ``workflow_slug`` of the calendar ``calendar_slug``, or :class:`NotFound`.

    ``public`` requires the calendar to be published and the service active.
    """
    # The calendar, its service, the workflow and its version in force in one query (a booking
    # reads them in its write transaction: every statement there holds the writers back), with
    # whether the calendar has webhook endpoints (when none, a booking's history reads none).
    found = session.execute(
        _service_statement(), {"calendar_slug": calendar_slug, "workflow_slug": workflow_slug}
    ).first()
    if found is None:
        calendar = session.scalar(select(Calendar).where(Calendar.slug == calendar_slug))
        if calendar is None or (public and not calendar.published):
            raise NotFound(f"no calendar {calendar_slug!r}")
        raise NotFound(f"no service {workflow_slug!r} in calendar {calendar_slug!r}")
    calendar, service, version, has_webhooks = found
    if public and not calendar.published:
        raise NotFound(f"no calendar {calendar_slug!r}")
    if public and not service.active:
        raise NotFound(f"no service {workflow_slug!r} in calendar {calendar_slug!r}")
    if version is None:
        raise NotFound(f"no workflow {workflow_slug!r}")
    if not has_webhooks:
        note_without_endpoints(session, calendar.id)
    return BookingContext(calendar, service, version)


@cache
def _service_statement() -> Select[Calendar, Service, WorkflowVersion, bool]:
    """The query of :func:`find_service`, built once (building it cost more than running it),
    with the bind parameters ``calendar_slug`` and ``workflow_slug``."""
    other = aliased(WorkflowVersion)
    latest = (
        select(func.max(other.number))
        .where(other.workflow_id == WorkflowRecord.id)
        .correlate(WorkflowRecord)
        .scalar_subquery()
    )
    hooked = (
        select(WebhookEndpoint.id)
        .where(WebhookEndpoint.calendar_id == Calendar.id, WebhookEndpoint.active.is_(True))
        .exists()
    )
    return (
        select(Calendar, Service, WorkflowVersion, hooked)
        .join(Service, Service.calendar_id == Calendar.id)
        .join(WorkflowRecord, WorkflowRecord.id == Service.workflow_id)
        .outerjoin(
            WorkflowVersion,
            (WorkflowVersion.workflow_id == WorkflowRecord.id) & (WorkflowVersion.number == latest),
        )
        .where(
            Calendar.slug == bindparam("calendar_slug"),
            WorkflowRecord.slug == bindparam("workflow_slug"),
        )
        # The version's texts are read when used: its definition once per process
        # (workflow_of keeps what it builds), not at every request.
        .options(defer(WorkflowVersion.definition), defer(WorkflowVersion.source_text))
    )


def book_from_answers(
    session: Session,
    calendar_slug: str,
    workflow_slug: str,
    request: BookingRequest,
    now: datetime,
    *,
    plugins: PluginHost | None,
    public: bool = True,
) -> Booking:
    """Book from answers: the one path of the public form, the admin's phone booking and the
    API. The service is read again inside the caller's write transaction (what a page read
    before it may have changed), then :func:`create_booking` applies every rule. Raises
    :class:`NotFound`, :class:`InvalidAnswers` or a :class:`BookingError`; the caller commits.
    ``public=False`` (the back office) also books unpublished calendars and inactive services.
    """
    context = find_service(session, calendar_slug, workflow_slug, public=public)
    return create_booking(session, context, request, now, plugins=plugins)


def manage_token(booking: Booking) -> str:
    """The client's secret link token: the public id and a 176-bit secret."""
    return f"{booking.uid}-{booking.manage_token}"


def find_by_manage_token(session: Session, token: str) -> Booking:
    """The booking of a manage token, or :class:`NotFound` (the same for a bad id or secret).

    The secret is compared in constant time, so timing tells nothing about it.
    """
    uid, _, secret = token.partition("-")
    if len(uid) != 32 or not secret or len(token) > 128 or not token.isascii():
        raise NotFound("no such booking")
    booking = session.scalar(select(Booking).where(Booking.uid == uid))
    if booking is None or not hmac.compare_digest(booking.manage_token.encode(), secret.encode()):
        raise NotFound("no such booking")
    return booking


# How long a booking waits for another's locks on PostgreSQL before it gives up with Busy: long
# enough for the bookings ahead of it (a few milliseconds each), short enough that no request
# hangs. It stays in force for the rest of the transaction (SET LOCAL).
LOCK_TIMEOUT_MS = 5000


def _lock_staff(session: Session, staff_ids: list[int]) -> None:
    """On PostgreSQL, lock the staff rows (in id order) until the transaction ends, waiting at
    most :data:`LOCK_TIMEOUT_MS`; raise :class:`Busy` when they could not be had in time."""
    if session.get_bind().dialect.name == "postgresql" and staff_ids:
        session.execute(text(f"SET LOCAL lock_timeout = {int(LOCK_TIMEOUT_MS)}"))
        try:
            session.execute(
                select(StaffMember.id)
                .where(StaffMember.id.in_(sorted(staff_ids)))
                .order_by(StaffMember.id)
                .with_for_update()
            ).all()
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available
                raise Busy("the staff's calendars are busy; try again in a moment") from None
            raise


def _check_window(
    workflow: Workflow, start: datetime, now: datetime, by_staff: bool = False
) -> None:
    """The workflow's booking window, for clients; staff booking for a client may book any
    future time."""
    if start.tzinfo is None or start.utcoffset() is None:
        raise InvalidRequest("the start time needs its UTC offset", "invalid_start")
    if start <= now:
        raise OutsideWindow("this time is in the past", "in_the_past")
    if by_staff:
        return
    if start < now + workflow.min_notice:
        raise OutsideWindow("this time is too soon to be booked online", "too_soon")
    if start > now + workflow.max_ahead:
        raise OutsideWindow("this time is too far ahead to be booked yet", "too_far")


def _slot_at(
    session: Session, context: BookingContext, start: datetime, now: datetime, search: SlotSearch
) -> Slot:
    """The free slot starting exactly at ``start``, for the staff and bookings ``search``
    counts (the staff the workflow routes its answers to, the pool when the caller read it in
    this transaction...); :class:`SlotTaken` when it is booked up, :class:`NotASlot` when it was
    never offered."""
    window = (start, start + timedelta(seconds=1))
    found = service_availability(
        session, context.calendar, context.service, context.workflow, *window, now, search
    )
    for slot in found.slots:
        if slot.start == start:
            return slot
    unbooked = service_availability(
        session,
        context.calendar,
        context.service,
        context.workflow,
        *window,
        now,
        replace(search, ignore_bookings=True),
    )
    if any(slot.start == start for slot in unbooked.slots):
        raise SlotTaken("this time was just taken; please pick another")
    raise NotASlot("this service is not offered at this time")


def _choose_staff(
    session: Session,
    context: BookingContext,
    slot: Slot,
    pool: list[PoolMember],
    plugins: PluginHost | None,
    prefer: int | None = None,
) -> int:
    """Who takes the slot (the first of :func:`_staff_order`), for a caller that holds the
    pool's locks already; their turn taken when the strategy chose them."""
    order, strategy_chose = _staff_order(session, context, slot, pool, plugins, prefer)
    if strategy_chose:
        _take_turn(session, context.service.id, order[0])
    return order[0]


def _staff_order(
    session: Session,
    context: BookingContext,
    slot: Slot,
    pool: list[PoolMember],
    plugins: PluginHost | None,
    prefer: int | None = None,
) -> tuple[list[int], bool]:
    """The free staff of ``slot`` in the order to try them, and whether the workflow's strategy
    chose the first (which then takes a turn in the rotation).

    ``prefer`` alone when free; for a group, the staff member whose session at that time is the
    fullest not yet full (a class fills before another opens); else the strategy's choice, then
    the others in rotation order (on PostgreSQL, when the first is being booked by another
    request at this moment, the next is tried rather than waited for: see :func:`_claim`)."""
    if prefer is not None and prefer in slot.staff:
        return [prefer], False
    capacity = context.workflow.capacity
    if context.workflow.one_group_per_slot and slot.remaining < capacity:
        # The group has begun: the engine offers only its staff; keep it with the first of them.
        return [slot.staff[0]], False
    if capacity > 1:
        started = [s for s in slot.staff if slot.remaining_by_staff.get(s, capacity) < capacity]
        if started:
            order = [m.id for m in pool]
            fullest = min(started, key=lambda s: (slot.remaining_by_staff[s], order.index(s)))
            return [fullest], False
    turns = _turns(session, context.service.id, pool)
    strategy = context.workflow.staff.assignment
    week_counts: dict[int, int] = {}
    if strategy not in ("random", "round_robin", "priority"):
        week_counts = _week_counts(session, context, slot)
    latest = max(turns, key=turns.__getitem__, default=None)
    assignment = AssignmentContext(
        free=list(slot.staff),
        pool=[m.id for m in pool],
        last_assigned=latest,
        week_counts=week_counts,
        rng=random.SystemRandom(),
        turns=turns,
    )
    chosen = _assign(plugins, strategy, assignment)
    return [chosen, *(m for m in rotation_order(assignment) if m != chosen)], True


# In a session's ``info``: its current transaction, and the rotation's turns read or taken in it
# (service id -> staff id -> turn).
_TURNS = "bookwise.assignment_turns"


def _turns(session: Session, service_id: int, pool: list[PoolMember]) -> dict[int, int]:
    """The turns of the service's rotation (staff id -> last turn; 0: never): as this
    transaction knows them, else as the pool was read with them, else in one query."""
    transaction = session.get_transaction()
    noted = session.info.get(_TURNS)
    if noted is None or noted[0] is not transaction:
        noted = session.info[_TURNS] = (transaction, {})
    known: dict[int, dict[int, int]] = noted[1]
    if service_id not in known:
        if pool and all(m.turn is not None for m in pool):
            known[service_id] = {m.id: m.turn for m in pool if m.turn}
        else:
            rows = session.execute(
                select(AssignmentTurn.staff_id, AssignmentTurn.turn).where(
                    AssignmentTurn.service_id == service_id
                )
            )
            known[service_id] = {staff: turn for staff, turn in rows if turn}
    return known[service_id]


def _take_turn(session: Session, service_id: int, staff_id: int) -> None:
    """Give ``staff_id`` the service's next turn: a number that only grows (PostgreSQL: the
    sequence ``assignment_turn_seq``, which never waits; SQLite, one writer at a time: the
    largest so far plus one), so two bookings made at once never share one. One row written,
    the member's own (an upsert): bookings for different staff never wait for each other."""
    postgres = session.get_bind().dialect.name == "postgresql"
    number: Any = (
        func.nextval("assignment_turn_seq")
        if postgres
        else select(func.coalesce(func.max(AssignmentTurn.turn), 0) + 1).scalar_subquery()
    )
    statement = (postgresql_insert if postgres else sqlite_insert)(AssignmentTurn).values(
        service_id=service_id, staff_id=staff_id, turn=number
    )
    upsert = statement.on_conflict_do_update(
        index_elements=["service_id", "staff_id"], set_={"turn": statement.excluded.turn}
    ).returning(AssignmentTurn.turn)
    _turns(session, service_id, [])[staff_id] = int(session.scalar(upsert) or 0)


def _claim(
    session: Session, context: BookingContext, order: list[int], start: datetime, rotate: bool
) -> int:
    """On PostgreSQL, the first of ``order`` (free staff, in the order to try them) whose row
    this transaction can lock at once and who has no booking over the new one's time: that
    member is this booking's until it commits. A member another request is booking at this
    moment is skipped (``SKIP LOCKED``), not waited for, so bookings for different staff never
    wait for each other. ``rotate`` (round robin): the one whose turn is the oldest as of this
    statement, not as of the search, so that bookings made at once go round the pool.

    When every free member is being booked by another request, this tries again after a few
    milliseconds (holding no lock, so no deadlock), for at most :data:`LOCK_TIMEOUT_MS`
    (:class:`Busy`); :class:`SlotTaken` once none is free. Elsewhere (SQLite's writers are one
    at a time): the first."""
    if session.get_bind().dialect.name != "postgresql":
        return order[0]
    workflow = context.workflow
    claim, free = _claim_statements(rotate)
    values = {
        "order": order,
        "low": start - workflow.buffer_before,
        "high": start + workflow.duration + workflow.buffer_after,
        "service_id": context.service.id,
    }
    deadline = time.monotonic() + LOCK_TIMEOUT_MS / 1000
    while True:
        mine = session.scalar(claim, values)
        if mine is not None:
            return int(mine)
        if session.scalar(free, values) is None:
            raise SlotTaken("this time was just taken; please pick another")
        if time.monotonic() > deadline:
            raise Busy("the staff's calendars are busy; try again in a moment")
        time.sleep(random.uniform(0.002, 0.01))  # noqa: S311 (a back-off, not a secret)


@cache
def _claim_statements(rotate: bool) -> tuple[Select[int], Select[int]]:
    """:func:`_claim`'s statements on PostgreSQL, built once: the claim (the first member of
    ``order`` free over ``[low, high)`` and not locked, ranked by their turn in the rotation of
    ``service_id`` with ``rotate``, then their place in ``order``), and whether any of them is
    still free at all. Bind parameters: ``order`` (an array), ``low``, ``high``, ``service_id``."""
    order = bindparam("order", type_=postgresql.ARRAY(Integer))
    taken = (
        select(Booking.id)
        .where(
            Booking.staff_id == StaffMember.id,
            Booking.holds_slot,
            Booking.blocked_until > bindparam("low", type_=UTCDateTime()),
            Booking.blocked_from < bindparam("high", type_=UTCDateTime()),
        )
        .exists()
    )
    free = select(StaffMember.id).where(StaffMember.id == func.any(order), ~taken)
    place = func.array_position(order, StaffMember.id)
    ranking: tuple[Any, ...] = (place,)
    if rotate:
        turn = (
            select(AssignmentTurn.turn)
            .where(
                AssignmentTurn.service_id == bindparam("service_id", type_=Integer()),
                AssignmentTurn.staff_id == StaffMember.id,
            )
            .scalar_subquery()
        )
        ranking = (func.coalesce(turn, 0), place)
    claim = free.order_by(*ranking).limit(1).with_for_update(of=StaffMember, skip_locked=True)
    return claim, free.limit(1)


def _check_with_plugins(booking: Booking, host: PluginHost | None) -> None:
    """:class:`Refused` when a plugin (that the booking's calendar uses) refuses ``booking`` in
    its ``bookwise_validate_booking`` (written but not committed: the caller's rollback takes it
    back)."""
    if host is not None and host.checks_bookings():
        told = host.refusal(snapshot(booking), only=used_by(booking.calendar, host))
        if told:
            raise Refused(told)


def _assign(host: PluginHost | None, strategy: str, context: AssignmentContext) -> int:
    """The strategy's choice; a plugin's strategy that fails, or names someone not free, is
    reported and the fair rotation decides instead."""
    if strategy in STRATEGIES:
        return assign(strategy, context)
    chosen: Any = None
    if host is not None and strategy in host.assignment_strategies:
        try:
            chosen = host.assignment_strategies[strategy](context)
            if chosen not in context.free:
                raise ValueError(f"it chose {chosen!r}, who is not among the free {context.free}")
        except Exception as exc:
            host.failed(host.strategy_owner(strategy), f"assignment strategy {strategy!r}", exc)
            chosen = None
    else:
        log.error("assignment strategy %r is not enabled; round_robin decides", strategy)
    return int(chosen) if chosen is not None else assign("round_robin", context)


def _week_counts(session: Session, context: BookingContext, slot: Slot) -> dict[int, int]:
    """Bookings per free staff member in the (local, Monday to Sunday) week of the slot."""
    zone = ZoneInfo(context.calendar.timezone)
    local = slot.start.astimezone(zone)
    monday = datetime.combine(local.date() - timedelta(days=local.weekday()), datetime.min.time())
    start = monday.replace(tzinfo=zone)
    end = (monday + timedelta(days=7)).replace(tzinfo=zone)
    rows = session.execute(
        select(Booking.staff_id, func.count())
        .where(
            Booking.staff_id.in_(slot.staff),
            Booking.holds_slot,
            Booking.start_at >= start,
            Booking.start_at < end,
        )
        .group_by(Booking.staff_id)
    )
    return dict(rows.all())


def _slot_key(context: BookingContext, staff_id: int, start: datetime, uid: str) -> str:
    """The key a booking shares with the other participants of its group (see the model): per
    staff member and start, or, with one group per slot, per start whoever teaches (then the
    database counts the whole group against its capacity)."""
    moment = start.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    if context.workflow.one_group_per_slot:
        return f"{context.service.id}:slot:{moment}"
    if context.workflow.capacity > 1:
        return f"{context.service.id}:{staff_id}:{moment}"
    return uid


def _flush_or_taken(session: Session) -> None:
    """Flush; a refusal by the database's double-booking guard becomes :class:`SlotTaken`."""
    try:
        session.flush()
    except IntegrityError as exc:
        text = str(exc.orig)
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if sqlstate == "23P01" or "booking_overlap" in text or "slot_full" in text:
            raise SlotTaken("this time was just taken; please pick another") from None
        raise


def history(
    session: Session,
    booking: Booking,
    action: str,
    actor: str,
    *,
    at: datetime,
    from_state: str | None = None,
    details: dict[str, Any] | None = None,
    plugins: PluginHost | None,
) -> None:
    """A line of the booking's history: ``action`` by ``actor`` at ``at`` (the service's
    ``now``, so that history and messages agree on when things happened), told to ``plugins``
    once committed."""
    session.add(
        BookingEvent(
            booking_id=booking.id,
            action=action,
            from_state=from_state,
            to_state=booking.state,
            actor=actor,
            details=details or {},
            at=at,
        )
    )
    # The calendar's webhook endpoints hear of it in the same transaction (the outbox).
    plan_webhooks(session, booking, event_type(action, from_state, booking.state), at)
    note_change(session, booking, action, actor, from_state, details, plugins)


def new_booking(
    context: BookingContext,
    request: BookingRequest,
    answers: CleanAnswers,
    client: Client,
    staff_id: int,
    start: datetime,
    now: datetime,
    series_id: int | None = None,
) -> Booking:
    """The row of a new booking of ``start`` with ``staff_id``, in the workflow's first state
    (not added to the session: the caller checks and writes it)."""
    workflow = context.workflow
    uid = uuid.uuid4().hex
    end = start + workflow.duration
    return Booking(
        created_at=now,
        uid=uid,
        calendar_id=context.calendar.id,
        service_id=context.service.id,
        workflow_version_id=context.version.id,
        # The objects too, as read in this transaction: describing the new booking then reads
        # nothing again (no consent yet: record_new_booking adds the one given).
        workflow_version=context.version,
        consent=None,
        staff_id=staff_id,
        client=client,
        start_at=start,
        end_at=end,
        blocked_from=start - workflow.buffer_before,
        blocked_until=end + workflow.buffer_after,
        state=workflow.lifecycle.initial,
        holds_slot=workflow.lifecycle.holds_slot(workflow.lifecycle.initial),
        slot_key=_slot_key(context, staff_id, start, uid),
        capacity=workflow.capacity,
        answers=answers.answers,
        locale=client.locale,
        timezone=client.timezone,
        manage_token=secrets.token_urlsafe(22),
        source=request.source,
        sms_opt_in=request.sms_opt_in and workflow.texts_client,
        series_id=series_id,
    )


def record_new_booking(
    session: Session,
    context: BookingContext,
    request: BookingRequest,
    booking: Booking,
    now: datetime,
    plugins: PluginHost | None,
    **details: Any,
) -> None:
    """What follows a new booking's row once written: the plugins' checks, its meeting, the
    consent as given, and its first history entry (with ``details`` besides start and source)."""
    workflow = context.workflow
    note_new_booking(session, booking)
    _check_with_plugins(booking, plugins)
    if workflow.location.type == "online":
        create_meeting(session, booking, workflow.location.provider, plugins)
    if workflow.consent is not None and request.consent:
        booking.consent = _consent_record(workflow.consent, booking, context.calendar, now)
    history(
        session,
        booking,
        "created",
        request.actor,
        at=now,
        details={"start": booking.start_at.isoformat(), "source": request.source, **details},
        plugins=plugins,
    )


def create_booking(
    session: Session,
    context: BookingContext,
    request: BookingRequest,
    now: datetime,
    *,
    plugins: PluginHost | None,
) -> Booking:
    """Book ``request.start`` for a client; raises a :class:`BookingError` or
    :class:`~bookwise.bookings.answers.InvalidAnswers`, leaving nothing written.

    ``plugins``: the instance's plugin host (its field types, assignment strategies, booking
    checks, meeting providers and booking events), or None for none. The session must be
    fresh: this begins its transaction as a writer.
    """
    begin_write_if_fresh(session)
    workflow = context.workflow
    answers = check_answers(
        workflow,
        request.values,
        request.consent,
        now.date(),
        field_types=plugins.field_types if plugins is not None else None,
    )
    start = request.start.astimezone(UTC) if request.start.tzinfo else request.start
    _check_window(workflow, start, now, request.by_staff)

    # The staff as whole rows: the one given the booking is at hand for its messages.
    pool = read_pool(session, context.service, workflow, for_booking=True)
    routing = routing_values(answers)
    # A client (or staff for them) names only a member the answers route to.
    wanted = _wanted_staff(workflow, routed_pool(pool, workflow, routing)[0], request)
    # A group's places are counted under its staff's locks (PostgreSQL), taken before the count:
    # with one group per slot (whoever teaches it, even a member staff named) the whole pool's,
    # so that one writer at a time counts the group. A one-to-one booking locks only the member
    # it gets (_claim), after the search.
    grouped = workflow.capacity > 1
    if grouped:
        everyone = workflow.one_group_per_slot or not wanted
        _lock_staff(session, [m.id for m in pool] if everyone else list(wanted or ()))
    search = SlotSearch(
        staff_ids=wanted, by_staff=request.by_staff, answers=routing, pool=tuple(pool)
    )
    slot = _slot_at(session, context, start, now, search)
    order, strategy_chose = (
        (list(wanted), False) if wanted else _staff_order(session, context, slot, pool, plugins)
    )
    rotate = strategy_chose and workflow.staff.assignment == "round_robin"
    staff_id = order[0] if grouped else _claim(session, context, order, start, rotate)

    client = _client(context, request, answers)
    session.add(client)
    booking = new_booking(context, request, answers, client, staff_id, start, now)
    member = next((m.row for m in pool if m.id == staff_id), None)
    if member is not None:
        booking.staff_member = member
    session.add(booking)
    _flush_or_taken(session)
    if strategy_chose:
        _take_turn(session, context.service.id, staff_id)
    record_new_booking(session, context, request, booking, now, plugins)
    session.flush()
    plan_event(session, booking, workflow, booking.state, now)
    if booking.holds_slot:
        plan_timed(session, booking, workflow, now)
    session.flush()
    return booking


def routing_values(answers: CleanAnswers) -> dict[str, Any]:
    """The checked answers a ``route`` may test: the custom fields' and the phone."""
    return {**answers.answers, "phone": answers.phone}


def routing_answers(
    workflow: Workflow,
    values: Mapping[str, Any],
    today: date,
    field_types: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The answers to the questions the workflow routes on (and those they depend on), checked
    as the booking form checks them, before a time is picked; raises
    :class:`~bookwise.bookings.answers.InvalidAnswers` for a wrong or missing one. Other values
    are ignored."""
    asked = routing_questions(workflow)
    part = replace(workflow, fields=asked, consent=None)
    ids = {f.id for f in asked}
    checked = check_answers(
        part, {k: v for k, v in values.items() if k in ids}, None, today, field_types=field_types
    )
    return routing_values(checked)


def routing_questions(workflow: Workflow) -> tuple[Field, ...]:
    """The questions a client answers before the times are shown: those ``route`` tests, and
    those their ``show_if`` depends on, in the order of the form."""
    needed = set(workflow.routing_fields)
    frontier = list(needed)
    while frontier:
        spec = workflow.field(frontier.pop())
        if spec is not None and spec.show_if is not None and spec.show_if.field not in needed:
            needed.add(spec.show_if.field)
            frontier.append(spec.show_if.field)
    return tuple(f for f in workflow.fields if f.id in needed)


def _wanted_staff(
    workflow: Workflow, pool: list[PoolMember], request: BookingRequest
) -> list[int] | None:
    """The staff member the request names (as a one-member list), or None to assign one."""
    if request.staff is None:
        return None
    if not workflow.staff.client_chooses and not request.by_staff:
        raise InvalidRequest("this service assigns its staff itself", "staff_not_choosable")
    member = next((m for m in pool if m.slug == request.staff), None)
    if member is None:
        raise InvalidRequest(f"no staff member {request.staff!r} for this service", "unknown_staff")
    return [member.id]


def _client(context: BookingContext, request: BookingRequest, answers: CleanAnswers) -> Client:
    """The contact details as given for this booking. Never an update of an earlier client with
    the same e-mail: whoever knows an address could otherwise rename, re-route or relocate
    someone else's bookings."""
    return Client(
        calendar_id=context.calendar.id,
        name=answers.name,
        email=answers.email,
        phone=answers.phone,
        locale=request.locale or context.calendar.default_locale,
        timezone=request.timezone or context.calendar.timezone,
    )


def _consent_record(
    consent: Consent, booking: Booking, calendar: Calendar, now: datetime
) -> ConsentRecord:
    """The consent as the client read it (text, link, language) and when they gave it."""
    text = consent.text.get(booking.locale, calendar.default_locale)
    link = consent.link.get(booking.locale, calendar.default_locale)
    return ConsentRecord(
        booking_id=booking.id,
        text=text,
        text_hash=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        link=link or None,
        locale=booking.locale,
        given_at=now,
    )


def begin_write_if_fresh(session: Session) -> None:
    """Begin as a writer, or check that the caller did (``unit_of_work(..., write=True)``).

    On SQLite a transaction begun as a reader fails ("database is locked") when it comes to write
    while another writer went first; that would turn a lost race into an error instead of
    :class:`SlotTaken`, so it is refused here as the programming mistake it is.
    """
    from bookwise.db import begin_write

    if not session.in_transaction():
        begin_write(session)
        return
    connection = session.connection()
    if connection.dialect.name == "sqlite" and (
        connection.get_execution_options().get("sqlite_begin") != "IMMEDIATE"
    ):
        raise RuntimeError("bookings are written in a unit_of_work(..., write=True)")


def context_of(booking: Booking) -> BookingContext:
    """The context a booking lives in: its service, calendar and *its own* workflow version."""
    return BookingContext(booking.calendar, booking.service, booking.workflow_version)


def client_may_change(
    workflow: Workflow, booking: Booking, now: datetime, raise_if_not: bool = False
) -> bool:
    """Whether the client may still move or cancel the booking online (the workflow's
    ``cancellation`` rules, and a booking that still takes place)."""
    if not workflow.client_may_change_at(booking.start_at, now):
        if raise_if_not and not workflow.cancellation_allowed:
            raise NotAllowed(
                "this booking cannot be changed online; please contact us", "not_allowed"
            )
        if raise_if_not:
            raise TooLate(
                "it is too late to change this booking online; please contact us",
                "too_late",
                deadline=change_deadline(workflow, booking).isoformat(),
            )
        return False
    return booking.holds_slot and not workflow.lifecycle.is_final(booking.state)


def change_deadline(workflow: Workflow, booking: Booking) -> datetime:
    """Until when the client may change the booking online."""
    return workflow.change_deadline(booking.start_at)


def _check_still_free(session: Session, booking: Booking) -> None:
    """The rule the database enforces, checked before a booking takes its time back."""
    overlapping = session.scalar(
        select(func.count())
        .select_from(Booking)
        .where(
            Booking.staff_id == booking.staff_id,
            Booking.holds_slot,
            Booking.id != booking.id,
            Booking.slot_key != booking.slot_key,
            Booking.blocked_from < booking.blocked_until,
            booking.blocked_from < Booking.blocked_until,
        )
    )
    taken = session.scalar(
        select(func.count())
        .select_from(Booking)
        .where(Booking.slot_key == booking.slot_key, Booking.holds_slot, Booking.id != booking.id)
    )
    if overlapping or (taken or 0) >= booking.capacity:
        raise SlotTaken("this time was taken in the meantime")


def reschedule_booking(
    session: Session,
    booking: Booking,
    new_start: datetime,
    now: datetime,
    role: Role = "client",
    actor: str = "client",
    *,
    plugins: PluginHost | None,
) -> Booking:
    """Move a booking to ``new_start`` under the rules of the version it was made under.

    Keeps its staff member when free (always when the client chose them); otherwise assigns
    another by the workflow's strategy. When the client moves a booking that staff approved, it
    goes back to waiting for approval: the approval was for the other time.
    """
    begin_write_if_fresh(session)
    context = context_of(booking)
    workflow = context.workflow
    if workflow.lifecycle.is_final(booking.state) or not booking.holds_slot:
        raise NotAllowed(f"a {booking.state} booking cannot be moved", "invalid_state")
    if role == "client":
        client_may_change(workflow, booking, now, raise_if_not=True)
    start = new_start.astimezone(UTC)
    by_staff = role != "client"
    _check_window(workflow, start, now, by_staff)
    pool = read_pool(session, context.service, workflow)
    keep_staff = workflow.staff.client_chooses
    wanted = [booking.staff_id] if keep_staff else None
    _lock_staff(session, sorted({booking.staff_id, *(m.id for m in pool)}))
    search = SlotSearch(
        staff_ids=wanted,
        exclude_booking=booking.id,
        by_staff=by_staff,
        answers=booked_answers(booking),
        pool=tuple(pool),
    )
    slot = _slot_at(session, context, start, now, search)
    staff_id = _choose_staff(session, context, slot, pool, plugins, prefer=booking.staff_id)
    previous = booking.start_at
    previous_staff = booking.staff_id
    state_before = booking.state
    initial = workflow.lifecycle.initial
    back_to_approval = (
        role == "client" and booking.state != initial and workflow.lifecycle.needs_approval
    )
    if back_to_approval:
        booking.state = initial
    booking.staff_id = staff_id
    booking.start_at = start
    booking.end_at = start + workflow.duration
    booking.blocked_from = start - workflow.buffer_before
    booking.blocked_until = booking.end_at + workflow.buffer_after
    booking.slot_key = _slot_key(context, staff_id, start, booking.uid)
    booking.sequence += 1
    _flush_or_taken(session)
    move_meeting(session, booking, plugins)
    history(
        session,
        booking,
        "rescheduled",
        actor,
        at=now,
        from_state=state_before,
        details={"from": previous.isoformat(), "to": start.isoformat()},
        plugins=plugins,
    )
    withdraw_timed(session, booking)
    if back_to_approval:
        plan_event(session, booking, workflow, initial, now)
    plan_event(
        session,
        booking,
        workflow,
        RESCHEDULED,
        now,
        payload={"previous_start": previous.isoformat()},
    )
    plan_timed(session, booking, workflow, now)
    session.flush()
    if previous != start or previous_staff != staff_id:
        _offer_to_waitlist(session, booking, now, previous, previous_staff)
    return booking


def _offer_to_waitlist(
    session: Session,
    booking: Booking,
    now: datetime,
    start: datetime | None = None,
    staff_id: int | None = None,
) -> None:
    """The place a booking just gave up, to the first on the waitlist, in this transaction."""
    offer_freed_place(session, booking, now, start=start, staff_id=staff_id)


def booked_answers(booking: Booking) -> dict[str, Any]:
    """A booking's answers as its ``route`` reads them: a moved booking stays with the staff
    its answers route to."""
    return {**(booking.answers or {}), "phone": booking.client.phone if booking.client else None}


def transition_booking(
    session: Session,
    booking: Booking,
    name: str,
    role: Role,
    actor: str,
    now: datetime,
    reason: str | None = None,
    *,
    plugins: PluginHost | None,
) -> Booking:
    """Make the lifecycle move ``name`` as ``role``; :class:`NotAllowed` when the workflow does
    not allow it from the booking's state or for that role. A move that brings a booking back
    to a state that holds its time checks, under lock, that the time is still free."""
    begin_write_if_fresh(session)
    workflow = workflow_of(booking.workflow_version)
    try:
        move = workflow.lifecycle.find(booking.state, name, role)
    except TransitionNotAllowed as exc:
        raise NotAllowed(str(exc), exc.code) from None
    if role == "client":
        client_may_change(workflow, booking, now, raise_if_not=True)
    previous = booking.state
    held = booking.holds_slot
    if not booking.holds_slot and workflow.lifecycle.holds_slot(move.target):
        _lock_staff(session, [booking.staff_id])
        _check_still_free(session, booking)
    booking.state = move.target
    booking.holds_slot = workflow.lifecycle.holds_slot(move.target)
    booking.sequence += 1
    _flush_or_taken(session)  # a booking brought back to a slot-holding state is checked too
    history(
        session,
        booking,
        name,
        actor,
        at=now,
        from_state=previous,
        details={"reason": reason} if reason else None,
        plugins=plugins,
    )
    if not booking.holds_slot:
        withdraw_timed(session, booking)
        forget_meeting(session, booking, plugins)
    plan_event(
        session,
        booking,
        workflow,
        booking.state,
        now,
        payload={"reason": reason} if reason else None,
    )
    session.flush()
    if held and not booking.holds_slot:
        _offer_to_waitlist(session, booking, now)
    return booking


def cancel_booking(
    session: Session,
    booking: Booking,
    now: datetime,
    role: Role = "client",
    actor: str = "client",
    reason: str | None = None,
    *,
    plugins: PluginHost | None,
) -> Booking:
    """Cancel one booking (for a group, this participant only) by the transition ``cancel``."""
    return transition_booking(session, booking, "cancel", role, actor, now, reason, plugins=plugins)


def reassign_booking(
    session: Session,
    booking: Booking,
    staff_id: int,
    now: datetime,
    actor: str,
    *,
    plugins: PluginHost | None,
) -> Booking:
    """Give a booking to another staff member of its service's pool, free at its time (manual
    load balancing). Its reminders are planned again for the new staff member."""
    begin_write_if_fresh(session)
    context = context_of(booking)
    workflow = context.workflow
    if workflow.lifecycle.is_final(booking.state) or not booking.holds_slot:
        raise NotAllowed(
            f"a {booking.state} booking cannot be given to someone else", "invalid_state"
        )
    if booking.start_at <= now:
        raise OutsideWindow("this booking has already started", "in_the_past")
    if staff_id == booking.staff_id:
        return booking
    pool = read_pool(session, context.service, workflow)
    if staff_id not in {m.id for m in pool}:
        raise InvalidRequest("this person does not take bookings for this service", "unknown_staff")
    _lock_staff(session, sorted({booking.staff_id, staff_id}))
    search = SlotSearch(staff_ids=[staff_id], exclude_booking=booking.id, by_staff=True)
    _slot_at(session, context, booking.start_at, now, search)
    previous = booking.staff_id
    booking.staff_id = staff_id
    booking.slot_key = _slot_key(context, staff_id, booking.start_at, booking.uid)
    booking.sequence += 1
    _flush_or_taken(session)
    history(
        session,
        booking,
        "reassigned",
        actor,
        at=now,
        from_state=booking.state,
        details={"from_staff": previous, "to_staff": staff_id},
        plugins=plugins,
    )
    withdraw_timed(session, booking)
    plan_timed(session, booking, workflow, now)
    session.flush()
    # The time the previous member gave up: a place of the service may have come free there
    # (one waited for since, say, a colleague's time off was taken back).
    _offer_to_waitlist(session, booking, now, booking.start_at, previous)
    return booking


def reassign_to_anyone(
    session: Session,
    booking: Booking,
    now: datetime,
    actor: str,
    excluded: int,
    *,
    plugins: PluginHost | None,
) -> Booking:
    """Give a booking to whoever else in its pool is free at its time, chosen by the workflow's
    assignment strategy; :class:`SlotTaken` when no one is."""
    begin_write_if_fresh(session)
    context = context_of(booking)
    everyone = read_pool(session, context.service, context.workflow)
    routed = routed_pool(everyone, context.workflow, booked_answers(booking))[0]
    pool = [m for m in routed if m.id != excluded]
    if not pool:
        raise SlotTaken("no one else takes bookings of this service")
    _lock_staff(session, sorted({booking.staff_id, *(m.id for m in pool)}))
    search = SlotSearch(
        staff_ids=[m.id for m in pool],
        exclude_booking=booking.id,
        by_staff=True,
        pool=tuple(everyone),
    )
    slot = _slot_at(session, context, booking.start_at, now, search)
    staff_id = _choose_staff(session, context, slot, pool, plugins)
    return reassign_booking(session, booking, staff_id, now, actor, plugins=plugins)


# --- consent withdrawal --------------------------------------------------------------------------

CONSENT_WITHDRAWN = "consent-withdrawn"  # the staff's message (a shipped template of that name)
# What the pages and the API tell a client whose withdrawal is refused, by code.
CONSENT_REFUSALS = {
    "no_consent": N_("This booking has no consent to withdraw."),
    "consent_withdrawn": N_("You have already withdrawn your consent for this booking."),
}


@dataclass(frozen=True)
class ConsentWithdrawal:
    """What withdrawing a booking's consent did."""

    booking: Booking
    cancelled: bool
    erased: tuple[str, ...]  # the ids of the answers removed


def withdrawal_cancels(booking: Booking, now: datetime) -> bool:
    """Whether withdrawing the consent of ``booking`` cancels it: its workflow requires consent
    to book and the booking is still to come (what the client is told before they confirm)."""
    workflow = workflow_of(booking.workflow_version)
    return (
        workflow.consent is not None
        and workflow.consent.required
        and booking.holds_slot
        and not workflow.lifecycle.is_final(booking.state)
        and booking.start_at > now
    )


def withdraw_consent(
    session: Session,
    booking: Booking,
    now: datetime,
    actor: str = "client",
    *,
    plugins: PluginHost | None,
) -> ConsentWithdrawal:
    """Record that the client withdrew the consent they gave on ``booking``: ``withdrawn_at``
    set (what they agreed to, and when, is kept), the sensitive answers erased, a line of
    history, an audit entry and a message to the staff member. When the workflow requires
    consent to book, a booking still to come is cancelled through the same move as a
    cancellation (its messages planned as for any), whatever the cancellation deadline: a consent
    can always be withdrawn. :class:`NotAllowed` (``no_consent``, ``consent_withdrawn``) when
    there is nothing to withdraw."""
    from bookwise.audit.services import record

    begin_write_if_fresh(session)
    # Locked (PostgreSQL; SQLite's writers are serialised already): two withdrawals at once
    # make one, and the other is told it was done.
    consent = session.scalar(
        select(ConsentRecord)
        .where(ConsentRecord.booking_id == booking.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if consent is None:
        raise NotAllowed("this booking has no consent to withdraw", "no_consent")
    if consent.withdrawn_at is not None:
        raise NotAllowed("the consent of this booking was already withdrawn", "consent_withdrawn")
    workflow = workflow_of(booking.workflow_version)
    cancels = withdrawal_cancels(booking, now)
    consent.withdrawn_at = now
    sensitive = {spec.id for spec in workflow.custom_fields if spec.sensitive}
    erased = tuple(sorted(key for key in booking.answers if key in sensitive))
    if erased:
        booking.answers = {k: v for k, v in booking.answers.items() if k not in sensitive}
    session.flush()
    cancelled = False
    if cancels:
        cancelled = _cancel_for_withdrawal(session, booking, workflow, actor, now, plugins)
    history(
        session,
        booking,
        "consent_withdrawn",
        actor,
        at=now,
        details={"cancelled": cancelled, "erased": list(erased)},
        plugins=plugins,
    )
    record(
        session,
        "consent.withdrawn",
        actor,
        object_type="booking",
        object_id=booking.id,
        calendar_id=booking.calendar_id,
        details={"cancelled": cancelled, "erased": list(erased)},
    )
    _tell_staff_of_withdrawal(session, booking, now)
    session.flush()
    return ConsentWithdrawal(booking, cancelled, erased)


def _cancel_for_withdrawal(
    session: Session,
    booking: Booking,
    workflow: Workflow,
    actor: str,
    now: datetime,
    plugins: PluginHost | None,
) -> bool:
    """Cancel by the workflow's ``cancel`` move, else by its first move to an end that frees the
    time (a request's ``decline``), as staff may (no deadline); False when it has none."""
    lifecycle = workflow.lifecycle
    moves = [t for t in lifecycle.available(booking.state, "staff") if t.name == "cancel"]
    moves += [
        t
        for t in lifecycle.available(booking.state, "staff")
        if t.name != "cancel"
        and lifecycle.is_final(t.target)
        and not lifecycle.holds_slot(t.target)
    ]
    if not moves:
        log.warning("booking %s: no move ends it; consent withdrawn, booking kept", booking.id)
        return False
    transition_booking(
        session,
        booking,
        moves[0].name,
        "staff",
        actor,
        now,
        plugins=plugins,
    )
    return True


def _tell_staff_of_withdrawal(session: Session, booking: Booking, now: datetime) -> None:
    """An e-mail to the booking's staff member, through the outbox like every message."""
    from bookwise.notifications.models import Notification

    member = booking.staff_member
    if not member.email:
        return
    calendar = booking.calendar
    session.add(
        Notification(
            idempotency_key=f"{booking.uid}:{CONSENT_WITHDRAWN}:staff:{member.email}"[:200],
            booking_id=booking.id,
            calendar_id=booking.calendar_id,
            event=CONSENT_WITHDRAWN,
            rule_key=None,
            channel="email",
            recipient_kind="staff",
            recipient=member.email,
            template=CONSENT_WITHDRAWN,
            locale=calendar.default_locale,
            timezone=calendar.timezone,
            due_at=now,
            state="pending",
            payload={"sequence": booking.sequence},
        )
    )
