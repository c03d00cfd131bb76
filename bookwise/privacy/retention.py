"""Retention: what each workflow's ``retention`` asks, planned and applied.

``retention: {delete_answers_after: 365d, delete_client_after: 730d}`` counts from the end of a
booking. When ``delete_answers_after`` has passed, the booking's answers are removed and its
outbox rows purged (the client's address, the error text, the payload beyond times: the outbox
keeps no rendered message). When ``delete_client_after`` has passed, the client row is
pseudonymised too (and, with it, the answers). The booking itself stays, with its times,
service, staff member and state, so that the reports keep counting it.

A waitlist entry counts from the end of the time it waited for (``wanted_until``): past the
answers' period, it is erased as an erased client's entry is (answers removed, out of the line,
its link closed, its offer messages purged); past the client's period, a client row that only
waited (it never booked) is pseudonymised too. Entries keep no version: the workflow's current
periods apply.

The periods in force for a booking are the shorter of those of the workflow version it was made
under (what the client was told) and of the workflow's current version (a period shortened
since applies to the bookings made before). :func:`plan_retention` writes nothing (``bookwise
retention --dry-run``); :func:`apply_retention` does what a plan lists again, so running it twice
removes nothing more; :func:`run_retention` applies it per calendar and workflow, each in its own
write transaction (the ``apply-retention`` job).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bookwise.audit.services import Actor, record
from bookwise.bookings.models import Booking, Client, WaitlistEntry
from bookwise.calendars.models import Calendar, Service
from bookwise.db import unit_of_work
from bookwise.errors import NotFound
from bookwise.notifications.models import Notification
from bookwise.privacy.erasure import (
    ERASED_ENTRY,
    ERASED_KEY,
    PURGED_KEY,
    SETTLED_STATES,
    batches,
    close_manage_links,
    erase_answers,
    erase_clients,
    erase_entries,
    purge_message,
)
from bookwise.workflows.language import Retention
from bookwise.workflows.models import WorkflowRecord, WorkflowVersion
from bookwise.workflows.services import current_version, workflow_of

if TYPE_CHECKING:
    from sqlalchemy.orm import sessionmaker


@dataclass
class RetentionGroup:
    """What is due in one calendar for one workflow: ids, and the span of booking ends."""

    calendar_id: int
    calendar: str
    workflow: str
    bookings: list[int] = field(default_factory=list)  # answers to remove
    clients: list[int] = field(default_factory=list)  # client rows to pseudonymise
    messages: list[int] = field(default_factory=list)  # outbox rows to purge
    entries: list[int] = field(default_factory=list)  # waitlist entries to erase
    oldest_end: datetime | None = None
    newest_end: datetime | None = None

    @property
    def empty(self) -> bool:
        return not (self.bookings or self.clients or self.messages or self.entries)

    def _span(self, end: datetime) -> None:
        self.oldest_end = end if self.oldest_end is None else min(self.oldest_end, end)
        self.newest_end = end if self.newest_end is None else max(self.newest_end, end)


@dataclass
class RetentionPlan:
    """What retention removes at ``now``, per calendar and workflow (only groups with work)."""

    now: datetime
    groups: list[RetentionGroup] = field(default_factory=list)

    @property
    def answers(self) -> int:
        return sum(len(g.bookings) for g in self.groups)

    @property
    def clients(self) -> int:
        return sum(len(g.clients) for g in self.groups)

    @property
    def messages(self) -> int:
        return sum(len(g.messages) for g in self.groups)

    @property
    def entries(self) -> int:
        return sum(len(g.entries) for g in self.groups)

    @property
    def empty(self) -> bool:
        return not self.groups


def periods_in_force(made_under: Retention, current: Retention | None) -> Retention:
    """The shorter of each period of the two versions (None: never)."""

    def shorter(a: timedelta | None, b: timedelta | None) -> timedelta | None:
        known = [p for p in (a, b) if p is not None]
        return min(known) if known else None

    if current is None:
        return made_under
    return Retention(
        delete_answers_after=shorter(made_under.delete_answers_after, current.delete_answers_after),
        delete_client_after=shorter(made_under.delete_client_after, current.delete_client_after),
    )


def _retention_of(session: Session, version: WorkflowVersion) -> Retention:
    own = workflow_of(version).retention
    try:
        latest = current_version(session, version.workflow.slug)
    except NotFound:
        return own
    return periods_in_force(own, workflow_of(latest).retention)


def plan_retention(session: Session, now: datetime) -> RetentionPlan:
    """What retention removes at ``now`` (see the module); writes nothing."""
    if now.tzinfo is None:
        raise ValueError("plan_retention needs an aware datetime")
    plan = RetentionPlan(now)
    groups: dict[tuple[int, str], RetentionGroup] = {}
    pairs = session.execute(
        select(Booking.calendar_id, Booking.workflow_version_id).distinct()
    ).all()
    for calendar_id, version_id in sorted(pairs):
        version = session.get(WorkflowVersion, version_id)
        calendar = session.get(Calendar, calendar_id)
        if version is None or calendar is None:
            continue
        periods = _retention_of(session, version)
        known = [p for p in (periods.delete_answers_after, periods.delete_client_after) if p]
        if not known:
            continue
        slug = version.workflow.slug
        group = groups.setdefault(
            (calendar_id, slug), RetentionGroup(calendar_id, calendar.slug, slug)
        )
        of_version = (Booking.calendar_id == calendar_id, Booking.workflow_version_id == version_id)
        # Removing a client removes the answers: the answers' limit is the shorter of the two.
        answers_cutoff = now - min(known)
        for booking_id, end in session.execute(
            select(Booking.id, Booking.end_at)
            .where(
                *of_version, Booking.end_at <= answers_cutoff, Booking.answers_erased_at.is_(None)
            )
            .order_by(Booking.id)
        ):
            group.bookings.append(booking_id)
            group._span(end)
        for message_id, end in session.execute(
            select(Notification.id, Booking.end_at)
            .join(Booking, Booking.id == Notification.booking_id)
            .where(
                *of_version,
                Booking.end_at <= answers_cutoff,
                Notification.state.in_(SETTLED_STATES),
                ~Notification.idempotency_key.startswith(PURGED_KEY, autoescape=True),
                ~Notification.idempotency_key.startswith(ERASED_KEY, autoescape=True),
            )
            .order_by(Notification.id)
        ):
            group.messages.append(message_id)
            group._span(end)
        if periods.delete_client_after is not None:
            client_cutoff = now - periods.delete_client_after
            # A client row whose every booking ended before the limit (one row per booking
            # today; the rule holds if rows are ever shared).
            latest_end = (
                select(Booking.client_id, func.max(Booking.end_at).label("last_end"))
                .group_by(Booking.client_id)
                .subquery()
            )
            for client_id, end in session.execute(
                select(Client.id, latest_end.c.last_end)
                .join(latest_end, latest_end.c.client_id == Client.id)
                .join(Booking, Booking.client_id == Client.id)
                .where(
                    *of_version, Client.erased_at.is_(None), latest_end.c.last_end <= client_cutoff
                )
                .distinct()
                .order_by(Client.id)
            ):
                group.clients.append(client_id)
                group._span(end)
    _plan_waitlist(session, now, groups)
    plan.groups = [g for g in groups.values() if not g.empty]
    return plan


def _plan_waitlist(
    session: Session, now: datetime, groups: dict[tuple[int, str], RetentionGroup]
) -> None:
    """The waitlist entries due (see the module), into ``groups``."""
    pairs = session.execute(
        select(WaitlistEntry.calendar_id, WorkflowRecord.slug)
        .join(Service, Service.id == WaitlistEntry.service_id)
        .join(WorkflowRecord, WorkflowRecord.id == Service.workflow_id)
        .distinct()
    ).all()
    for calendar_id, slug in sorted(pairs):
        calendar = session.get(Calendar, calendar_id)
        try:
            periods = workflow_of(current_version(session, slug)).retention
        except NotFound:
            continue
        known = [p for p in (periods.delete_answers_after, periods.delete_client_after) if p]
        if calendar is None or not known:
            continue
        group = groups.setdefault(
            (calendar_id, slug), RetentionGroup(calendar_id, calendar.slug, slug)
        )
        of_workflow = (
            WaitlistEntry.calendar_id == calendar_id,
            WaitlistEntry.service_id.in_(
                select(Service.id).join(WorkflowRecord).where(WorkflowRecord.slug == slug)
            ),
        )
        for entry_id, end in session.execute(
            select(WaitlistEntry.id, WaitlistEntry.wanted_until)
            .where(
                *of_workflow,
                WaitlistEntry.wanted_until <= now - min(known),
                ~WaitlistEntry.manage_token.startswith(ERASED_ENTRY, autoescape=True),
            )
            .order_by(WaitlistEntry.id)
        ):
            group.entries.append(entry_id)
            group._span(end)
        if periods.delete_client_after is None:
            continue
        # A client row that only waited: none of its bookings, every entry's time long past.
        latest = (
            select(WaitlistEntry.client_id, func.max(WaitlistEntry.wanted_until).label("last"))
            .group_by(WaitlistEntry.client_id)
            .subquery()
        )
        for client_id, end in session.execute(
            select(Client.id, latest.c.last)
            .join(latest, latest.c.client_id == Client.id)
            .join(WaitlistEntry, WaitlistEntry.client_id == Client.id)
            .where(
                *of_workflow,
                Client.erased_at.is_(None),
                latest.c.last <= now - periods.delete_client_after,
                ~select(Booking.id).where(Booking.client_id == Client.id).exists(),
            )
            .distinct()
            .order_by(Client.id)
        ):
            if client_id not in group.clients:
                group.clients.append(client_id)
                group._span(end)


def apply_retention(
    session: Session,
    plan_or_now: RetentionPlan | datetime,
    *,
    secret: str,
    actor: Actor | str = "system",
) -> RetentionPlan:
    """Do what the plan lists (planned here when given an instant), in batches, in the
    caller's transaction; each group audited with its counts. Idempotent: what was removed
    already is left alone, and the returned plan counts only what this call removed."""
    plan = (
        plan_or_now
        if isinstance(plan_or_now, RetentionPlan)
        else plan_retention(session, plan_or_now)
    )
    done = RetentionPlan(plan.now)
    for group in plan.groups:
        applied = _apply_group(session, group, plan.now, secret)
        if applied.empty:
            continue
        done.groups.append(applied)
        record(
            session,
            "retention.applied",
            actor,
            object_type="workflow",
            object_id=group.workflow,
            calendar_id=group.calendar_id,
            details={
                "at": plan.now.isoformat(),
                "answers_erased": len(applied.bookings),
                "clients_erased": len(applied.clients),
                "messages_purged": len(applied.messages),
                "waitlist_entries_erased": len(applied.entries),
                "oldest_end": applied.oldest_end.isoformat() if applied.oldest_end else None,
                "newest_end": applied.newest_end.isoformat() if applied.newest_end else None,
            },
        )
    session.flush()
    return done


def _apply_group(
    session: Session, group: RetentionGroup, now: datetime, secret: str
) -> RetentionGroup:
    applied = RetentionGroup(group.calendar_id, group.calendar, group.workflow)
    for chunk in batches(group.bookings):
        bookings = list(
            session.scalars(
                select(Booking).where(Booking.id.in_(chunk), Booking.answers_erased_at.is_(None))
            )
        )
        erase_answers(session, bookings, now)
        for booking in bookings:
            applied.bookings.append(booking.id)
            applied._span(booking.end_at)
    for chunk in batches(group.clients):
        clients = list(
            session.scalars(select(Client).where(Client.id.in_(chunk), Client.erased_at.is_(None)))
        )
        erase_clients(session, clients, secret, now)
        applied.clients.extend(c.id for c in clients)
        bookings = list(
            session.scalars(select(Booking).where(Booking.client_id.in_([c.id for c in clients])))
        )
        close_manage_links(bookings)
        for booking in bookings:
            applied._span(booking.end_at)
    for chunk in batches(group.entries):
        entries = list(
            session.scalars(
                select(WaitlistEntry).where(
                    WaitlistEntry.id.in_(chunk),
                    ~WaitlistEntry.manage_token.startswith(ERASED_ENTRY, autoescape=True),
                )
            )
        )
        erase_entries(session, entries, now)
        for entry in entries:
            applied.entries.append(entry.id)
            applied._span(entry.wanted_until)
    for chunk in batches(group.messages):
        rows = session.scalars(
            select(Notification).where(
                Notification.id.in_(chunk),
                Notification.state.in_(SETTLED_STATES),
                ~Notification.idempotency_key.startswith(PURGED_KEY, autoescape=True),
                ~Notification.idempotency_key.startswith(ERASED_KEY, autoescape=True),
            )
        )
        for row in rows:
            purge_message(row, erasing=False)
            applied.messages.append(row.id)
    session.flush()
    return applied


def run_retention(
    sessions: sessionmaker[Session], now: datetime, *, secret: str, actor: Actor | str = "system"
) -> RetentionPlan:
    """Plan, then apply each calendar's and workflow's part in its own write transaction (a
    long run never holds the database for long); what was applied."""
    with sessions() as session:
        plan = plan_retention(session, now)
    done = RetentionPlan(now)
    for group in plan.groups:
        with unit_of_work(sessions, write=True) as session:
            part = apply_retention(session, RetentionPlan(now, [group]), secret=secret, actor=actor)
        done.groups.extend(part.groups)
    return done
