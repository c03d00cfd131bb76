"""Offering a freed place to the waitlist (issue 18; see :mod:`bookwise.bookings.waitlist`).

:func:`offer_freed_place` runs in the transaction of the change that frees a place (the bookings
service calls it when a booking stops holding its time, or moves away from it): the first entry
in line whose wish holds the freed time is ``offered`` it until ``now + hold``, and its message
is planned in the outbox, in that transaction. :func:`expire_offers` (the ``waitlist-offers``
job) turns offers not taken in time into ``expired`` and gives each place to the next in line.

The hold counts from when the offer can reach the client (:func:`first_send`): its messages keep
the quiet hours of the workflow (else the calendar) on the client's clock, so an offer made at
23:00 to a client reachable only by text message is sent at 08:00, and held from 08:00 for
``hold``. A message's ``due_at`` is that instant: the worker sends it then, never held again.

One live offer per freed place, whatever the number of workers: writers are serialised on
SQLite; on PostgreSQL the entry offered is taken with ``FOR UPDATE SKIP LOCKED`` (two
cancellations never pick the same entry, and one never waits for the other), and the partial
unique index ``uq_waitlist_offer`` refuses a second live offer of one freed booking (that
refusal, in a savepoint, leaves the other transaction's offer standing).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bookwise.availability.services import SlotSearch, service_availability
from bookwise.bookings.models import Booking, WaitlistEntry
from bookwise.notifications.models import Notification
from bookwise.notifications.planning import STOPPED, held_note, opted_out, quiet_hours_of
from bookwise.notifications.quiet import held_until
from bookwise.workflows.language import Workflow
from bookwise.workflows.services import current_version, workflow_of

log = logging.getLogger(__name__)

TEMPLATE = "waitlist_offer"
# Entries in line read for one freed place: the first of them the offer can reach in time.
CANDIDATES = 20
# Offers whose hold ran out, expired per run of the job (the next run takes the rest).
EXPIRY_BATCH = 200


@dataclass(frozen=True)
class OfferMessage:
    """One message of an offer: its channel and address, when it is sent (after the client's
    quiet hours), and why it is not sent at all (an SMS to a number that replied STOP)."""

    channel: str
    recipient: str
    send_at: datetime
    skipped: str | None = None


def first_send(messages: list[OfferMessage], now: datetime) -> datetime:
    """When the first of an offer's messages leaves: the earliest send time of those sent
    (``now`` when none is: the hold then counts from the offer, as on its page)."""
    return min((m.send_at for m in messages if m.skipped is None), default=now)


def skip_locked(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _place_is_free(
    session: Session, booking: Booking, start: datetime, staff_id: int | None, now: datetime
) -> int | None:
    """The staff member who can take the freed place at ``start`` now (the one it was with when
    still free), or None when it is taken again or no longer offered."""
    workflow = workflow_of(current_version(session, booking.service.workflow.slug))
    found = service_availability(
        session,
        booking.calendar,
        booking.service,
        workflow,
        start,
        start + timedelta(seconds=1),
        now,
        SlotSearch(by_staff=True),
    )
    slot = next((s for s in found.slots if s.start == start), None)
    if slot is None:
        return None
    return staff_id if staff_id in slot.staff else slot.staff[0]


def offer_freed_place(
    session: Session,
    freed: Booking,
    now: datetime,
    *,
    start: datetime | None = None,
    staff_id: int | None = None,
) -> WaitlistEntry | None:
    """Offer the place ``freed`` gave up (at ``start`` with ``staff_id``; by default its own)
    to the first entry in line that wants it, in the caller's transaction; plan its message.
    None when the service has no waitlist, nobody waits for that time, or the place is not free.
    """
    start = (start or freed.start_at).astimezone(UTC)
    staff_id = staff_id if staff_id is not None else freed.staff_id
    if start <= now:
        return None
    workflow = workflow_of(current_version(session, freed.service.workflow.slug))
    if not workflow.waitlist_enabled:
        return None
    live = select(WaitlistEntry.id).where(
        WaitlistEntry.freed_booking_id == freed.id, WaitlistEntry.state == "offered"
    )
    if session.scalar(live) is not None:
        return None  # this booking's earlier place is on offer (a booking moved twice)
    candidate = (
        select(WaitlistEntry)
        .where(
            WaitlistEntry.service_id == freed.service_id,
            WaitlistEntry.state == "waiting",
            WaitlistEntry.wanted_from <= start,
            WaitlistEntry.wanted_until >= start,
        )
        .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
        .limit(CANDIDATES)
    )
    if skip_locked(session):
        candidate = candidate.with_for_update(skip_locked=True)
    in_line = list(session.scalars(candidate))
    if not in_line:
        return None
    chosen = _place_is_free(session, freed, start, staff_id, now)
    if chosen is None:
        return None
    # The first in line whose message can reach them before the place starts (one whose only
    # channel waits for the end of their night past a 07:30 start is passed over: still in
    # line, for another time). Read before the entry changes: the queries must not flush the
    # offer outside the savepoint.
    reachable = (
        (entry, messages)
        for entry in in_line
        if first_send(messages := offer_messages(session, entry, workflow, now), now) < start
    )
    found = next(reachable, None)
    if found is None:
        return None
    entry, messages = found
    entry.state = "offered"
    entry.freed_booking_id = freed.id
    entry.offered_start = start
    entry.offered_staff_id = chosen
    entry.offered_at = now
    # Held from when it can reach the client, never past the start of the place.
    entry.offer_expires_at = min(first_send(messages, now) + workflow.waitlist_hold, start)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        # Another transaction offered this place first (uq_waitlist_offer): keep theirs.
        session.refresh(entry)
        log.info("waitlist: place of booking %s already offered; not offered twice", freed.id)
        return None
    _plan_offer(session, entry, messages, now)
    return entry


def offer_messages(
    session: Session, entry: WaitlistEntry, workflow: Workflow, now: datetime
) -> list[OfferMessage]:
    """The messages of an offer made at ``now``: by e-mail, and by text message when the client
    gave a phone and agreed to texts; each sent after the quiet hours (the workflow's, else the
    calendar's, as for a booking's messages) on the client's clock, in ``entry.timezone``."""
    client = entry.client
    hours = quiet_hours_of(workflow, entry.calendar)
    messages = []
    for channel, recipient in (("email", client.email), ("sms", client.phone)):
        if not recipient or (channel == "sms" and not (entry.answers or {}).get("_sms_opt_in")):
            continue
        stopped = channel == "sms" and opted_out(session, recipient)
        send_at = held_until(now, channel, hours, entry.timezone, now=now)
        messages.append(OfferMessage(channel, recipient, send_at, STOPPED if stopped else None))
    return messages


def _plan_offer(
    session: Session, entry: WaitlistEntry, messages: list[OfferMessage], now: datetime
) -> None:
    """The offer's ``messages`` in the outbox of the offer's transaction, each due when it is
    sent (a message held for quiet hours says so, as a booking's does)."""
    assert entry.offered_at is not None
    moment = entry.offered_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    for message in messages:
        channel, recipient = message.channel, message.recipient
        held = {"held": held_note(now, message.send_at)} if message.send_at != now else {}
        row = Notification(
            idempotency_key=f"waitlist:{entry.id}:{moment}:{channel}"[:200],
            booking_id=None,
            calendar_id=entry.calendar_id,
            event=TEMPLATE,
            rule_key=None,
            channel=channel,
            recipient_kind="client",
            recipient=recipient,
            template=TEMPLATE,
            locale=entry.locale,
            timezone=entry.timezone,
            due_at=message.send_at,
            state="pending" if message.skipped is None else "skipped",
            last_error=message.skipped,
            payload={
                "waitlist_entry_id": entry.id,
                "offered_at": entry.offered_at.isoformat(),
                **held,
            },
        )
        session.add(row)
    session.flush()


def offer_closed(session: Session, payload: dict[str, Any] | None, now: datetime) -> str | None:
    """Why the offer an outbox row announces (its ``payload``) is no longer open at ``now``, or
    None: an offer taken, left, passed on or run out is not announced (a text message held
    until 08:00 whose e-mail went at once, and whose hold ended at 01:00, is not sent)."""
    payload = payload or {}
    entry_id = payload.get("waitlist_entry_id")
    entry = session.get(WaitlistEntry, entry_id) if isinstance(entry_id, int) else None
    if entry is None:
        return "the waitlist entry no longer exists"
    offered = payload.get("offered_at")
    if (
        entry.state != "offered"
        or entry.offered_at is None
        or not isinstance(offered, str)
        or datetime.fromisoformat(offered) != entry.offered_at
    ):
        return f"the offer is no longer open (the waitlist entry is {entry.state})"
    if entry.offer_expires_at is not None and entry.offer_expires_at <= now:
        return "the offer ran out before its message went out"
    return None


def offer_again(session: Session, entry: WaitlistEntry, now: datetime) -> WaitlistEntry | None:
    """The place ``entry`` was offered, to the next in line (after ``entry`` let it go)."""
    freed = session.get(Booking, entry.freed_booking_id) if entry.freed_booking_id else None
    if freed is None or entry.offered_start is None:
        return None
    return offer_freed_place(
        session, freed, now, start=entry.offered_start, staff_id=entry.offered_staff_id
    )


def expire_offers(session: Session, now: datetime) -> int:
    """Offers past their hold become ``expired`` and each place goes to the next in line; the
    number expired. Safe in several workers at once: each takes the rows no other holds."""
    due = (
        select(WaitlistEntry)
        .where(WaitlistEntry.state == "offered", WaitlistEntry.offer_expires_at <= now)
        .order_by(WaitlistEntry.offer_expires_at, WaitlistEntry.id)
        .limit(EXPIRY_BATCH)
    )
    if skip_locked(session):
        due = due.with_for_update(skip_locked=True)
    expired = list(session.scalars(due))
    for entry in expired:
        entry.state = "expired"
        session.flush()
        offer_again(session, entry, now)
    return len(expired)
