"""Turning booking events into outbox rows, in the same transaction as the change.

The workflow's rules say which messages an event causes. Each message is one row of the outbox,
keyed by (booking, rule, recipient, channel, occurrence) with a unique constraint: the same
message can never be planned twice. Reminders and follow-ups are rows due later; a reschedule
or a cancellation withdraws those that no longer hold and plans the new ones.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bookwise.accounts.models import CalendarRole, User
from bookwise.bookings.models import Booking
from bookwise.calendars.models import Calendar, StaffMember, TimeOff
from bookwise.notifications.models import Notification, SmsOptOut
from bookwise.notifications.quiet import (
    QuietHours,
    effective_quiet_hours,
    held_until,
    stored_quiet_hours,
)
from bookwise.workflows.language import NotificationRule, Workflow
from bookwise.workflows.lifecycle import FOLLOW_UP, REMINDER, RESCHEDULED
from bookwise.workflows.services import workflow_of

log = logging.getLogger(__name__)

# Why a text message is not sent to a number that replied STOP (its row's ``last_error``).
STOPPED = "this number asked for no more text messages (STOP)"

# Events whose e-mails carry the calendar invitation, and with which method. A request that
# waits for approval is invited as TENTATIVE (bookwise.bookings.ics.event_status).
INVITATION_METHOD = {
    "requested": "REQUEST",
    "confirmed": "REQUEST",
    RESCHEDULED: "REQUEST",
    REMINDER: "REQUEST",
    "cancelled": "CANCEL",
    "declined": "CANCEL",
}


def _recipients(
    session: Session, booking: Booking, who: str, channel: str
) -> list[tuple[str, str, str, str]]:
    """(kind, address, locale, time zone) of each recipient of ``who`` on ``channel``."""
    calendar = booking.calendar
    staff_locale, staff_zone = calendar.default_locale, calendar.timezone

    def address(email: str | None, phone: str | None) -> str | None:
        return phone if channel == "sms" else email

    if who == "client":
        client = booking.client
        if channel == "sms" and not booking.sms_opt_in:
            return []
        target = address(client.email, client.phone)
        return [("client", target, booking.locale, booking.timezone)] if target else []
    if who == "staff":
        member = booking.staff_member
        target = address(member.email, member.phone)
        return [("staff", target, staff_locale, staff_zone)] if target else []
    if who == "calendar_admins":
        rows = session.execute(
            select(User.email, User.locale)
            .join(CalendarRole, CalendarRole.user_id == User.id)
            .where(
                CalendarRole.calendar_id == calendar.id, CalendarRole.role == "admin", User.active
            )
        )
        if channel == "sms":
            return []
        return [
            ("calendar_admins", email, locale or staff_locale, staff_zone) for email, locale in rows
        ]
    # A fixed address written in the workflow.
    return [("address", who, staff_locale, staff_zone)] if channel != "sms" else []


def calendar_quiet_hours(calendar: Calendar | None) -> QuietHours | None:
    """The calendar's quiet hours (None: none, or a stored value that no longer reads)."""
    hours = stored_quiet_hours(calendar.quiet_hours) if calendar is not None else None
    if calendar is not None and calendar.quiet_hours and hours is None:
        log.warning("calendar %s: quiet hours %r ignored", calendar.slug, calendar.quiet_hours)
    return hours


def quiet_hours_of(workflow: Workflow, calendar: Calendar | None) -> QuietHours | None:
    """The quiet hours of messages about ``workflow`` in ``calendar``: the workflow's, else the
    calendar's (a booking's messages, and a waitlist offer's)."""
    return effective_quiet_hours(workflow.quiet_hours, calendar_quiet_hours(calendar))


def quiet_hours_for(booking: Booking, workflow: Workflow) -> QuietHours | None:
    """The quiet hours of the booking's messages: the workflow's, else its calendar's."""
    return quiet_hours_of(workflow, booking.calendar)


# In a session's ``info``: its current transaction, and the bookings inserted in it (by id) with
# the keys planned for each since: what else is planned for them is known without a query.
_NEW_BOOKINGS = "bookwise.new_bookings"


def note_new_booking(session: Session, booking: Booking) -> None:
    """``booking`` was inserted in the session's current transaction: none of its messages can
    be planned already but those this transaction plans, so :func:`plan_rule` need not look (its
    rows are then written together, in one statement)."""
    _new_bookings(session)[booking.id] = set()


def _new_bookings(session: Session) -> dict[int, set[str]]:
    transaction = session.get_transaction()
    noted = session.info.get(_NEW_BOOKINGS)
    if noted is None or noted[0] is not transaction:
        noted = session.info[_NEW_BOOKINGS] = (transaction, {})
    return noted[1]


def plan_rule(
    session: Session,
    booking: Booking,
    rule: NotificationRule,
    due: datetime,
    occurrence: str,
    payload: dict[str, Any] | None = None,
    workflow: Workflow | None = None,
    now: datetime | None = None,
) -> int:
    """Add the rows of one rule (each recipient, each channel); return how many were added.

    Every channel the rule names gets its rows; the worker skips, and says why, a channel the
    instance has not enabled. A row due inside the recipient's quiet hours is due when they end
    (or begin, per rule: not before ``now``), and its payload says so (``held``).
    """
    if workflow is None:
        workflow = workflow_of(booking.workflow_version)
    hours = quiet_hours_for(booking, workflow)
    wanted = [
        (f"{booking.uid}:{rule.key}:{kind}:{recipient}:{channel}:{occurrence}"[:200], channel,
         kind, recipient, locale, zone)
        for channel in rule.channels
        for who in rule.to
        for kind, recipient, locale, zone in _recipients(session, booking, who, channel)
    ]  # fmt: skip
    # Those planned already: of a booking new in this transaction, those it planned; else in one
    # query (the unique constraint is the last word).
    fresh = _new_bookings(session).get(booking.id)
    if fresh is not None:
        planned = set(fresh)
    elif wanted:
        keys = [key for key, *_rest in wanted]
        planned = set(
            session.scalars(
                select(Notification.idempotency_key).where(Notification.idempotency_key.in_(keys))
            )
        )
    else:
        planned = set()
    added = 0
    for key, channel, kind, recipient, locale, zone in wanted:
        if key in planned:
            continue
        planned.add(key)
        if fresh is not None:
            fresh.add(key)
        send_at = held_until(due, channel, hours, zone, rule.quiet_hours, now)
        extra = {"held": held_note(due, send_at)} if send_at != due else {}
        row = Notification(
            idempotency_key=key,
            booking_id=booking.id,
            calendar_id=booking.calendar_id,
            event=rule.on,
            rule_key=rule.key,
            channel=channel,
            recipient_kind=kind,
            recipient=recipient,
            template=rule.template,
            locale=locale,
            timezone=zone,
            due_at=send_at,
            state="pending",
            payload={"sequence": booking.sequence, **(payload or {}), **extra},
        )
        if channel == "sms" and opted_out(session, recipient):
            row.state = "skipped"
            row.last_error = STOPPED
        session.add(row)
        added += 1
    return added


def held_note(due: datetime, until: datetime) -> dict[str, str]:
    """What a row held for quiet hours keeps: when it was due, and until when it waits."""
    return {"due": due.isoformat(), "until": until.isoformat()}


def opted_out(session: Session, phone: str) -> bool:
    """Whether ``phone`` replied STOP to our text messages."""
    return session.scalar(select(SmsOptOut.id).where(SmsOptOut.phone == phone)) is not None


def plan_event(
    session: Session,
    booking: Booking,
    workflow: Workflow,
    event: str,
    now: datetime,
    payload: dict[str, Any] | None = None,
) -> int:
    """Plan the messages of ``event`` (a state entered, or ``rescheduled``), due now.

    The occurrence is the booking's sequence: the same event after another change is another
    message; the same event planned twice for one change is one.
    """
    occurrence = f"{event}#{booking.sequence}"
    return sum(
        plan_rule(session, booking, rule, now, occurrence, payload, workflow, now)
        for rule in workflow.notifications
        if rule.on == event
    )


def plan_timed(session: Session, booking: Booking, workflow: Workflow, now: datetime) -> int:
    """Plan the reminders and follow-ups of the booking's current time.

    A reminder whose time has already passed when the booking is made (a booking for tomorrow
    with a 48-hour reminder) is not planned: the confirmation says the same, just now.
    """
    added = 0
    occurrence = f"at#{int(booking.start_at.timestamp())}"
    for rule in workflow.notifications:
        if rule.on == REMINDER and rule.before is not None:
            due = booking.start_at - rule.before
        elif rule.on == FOLLOW_UP and rule.after is not None:
            due = booking.end_at + rule.after
        else:
            continue
        if rule.on == REMINDER and due <= now:
            continue
        added += plan_rule(session, booking, rule, due, occurrence, None, workflow, now)
    return added


def withdraw_timed(session: Session, booking: Booking) -> int:
    """Withdraw the reminders and follow-ups not sent yet (the time changed, or it is off)."""
    result = session.execute(
        update(Notification)
        .where(
            Notification.booking_id == booking.id,
            Notification.event.in_((REMINDER, FOLLOW_UP)),
            Notification.state.in_(("pending", "failed")),
        )
        .values(state="withdrawn", last_error="the booking changed")
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def plan_staff_notice(
    session: Session,
    member: StaffMember,
    event: str,
    key: str,
    now: datetime,
    payload: dict[str, Any],
) -> Notification:
    """An e-mail to a staff member about something other than a booking (time off, an
    invitation), in the calendar's language; ``key`` makes it unique."""
    calendar = member.calendar
    row = Notification(
        idempotency_key=f"{event}:{key}",
        booking_id=None,
        calendar_id=calendar.id,
        event=event,
        rule_key=None,
        channel="email",
        recipient_kind="staff",
        recipient=member.email,
        template=event,
        locale=calendar.default_locale,
        timezone=calendar.timezone,
        due_at=now,
        payload=payload,
    )
    session.add(row)
    return row


def plan_time_off_notice(session: Session, time_off: TimeOff, now: datetime) -> Notification | None:
    """Tell a staff member that time off was recorded for them, with its reason."""
    member = session.get(StaffMember, time_off.staff_id)
    if member is None or not member.email:
        return None
    return plan_staff_notice(
        session,
        member,
        "time-off",
        f"{time_off.id}:{member.email}",
        now,
        {"time_off_id": time_off.id, "staff_id": member.id},
    )


def one_message_each(
    session: Session,
    bookings: list[Booking],
    event: str,
    payload: dict[str, Any],
    listed: str | None = None,
) -> int:
    """Occurrences of a series changed together (approved, declined, cancelled, booked) tell
    each recipient once: of the pending ``event`` rows just planned for ``bookings`` (in
    order), the first of each rule and recipient (kind, address, channel) is kept, with
    ``payload`` added and, under ``listed``, the starts of the bookings that recipient is told
    of; their rows for the others are withdrawn. Returns how many rows were withdrawn."""
    if not bookings:
        return 0
    order = {booking.id: index for index, booking in enumerate(bookings)}
    rows = session.scalars(
        select(Notification).where(
            Notification.booking_id.in_(list(order)),
            Notification.event == event,
            Notification.state == "pending",
        )
    ).all()
    groups: dict[tuple[str | None, str, str, str], list[Notification]] = {}
    for row in sorted(rows, key=lambda r: (order[r.booking_id or 0], r.id)):
        key = (row.rule_key, row.recipient_kind, row.recipient, row.channel)
        groups.setdefault(key, []).append(row)
    starts = {booking.id: _utc_text(booking.start_at) for booking in bookings}
    withdrawn = 0
    for group in groups.values():
        kept, *others = group
        extra = dict(payload)
        if listed is not None:
            told = dict.fromkeys(starts[r.booking_id or 0] for r in group)
            extra[listed] = list(told)
        kept.payload = {**(kept.payload or {}), **extra}
        for row in others:
            row.state = "withdrawn"
            row.last_error = "told in one message for the series"
            withdrawn += 1
    session.flush()
    return withdrawn


def _utc_text(moment: datetime) -> str:
    """A stored time as an aware UTC ISO string (SQLite gives naive UTC)."""
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.isoformat()
