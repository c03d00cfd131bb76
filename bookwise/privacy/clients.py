"""A client's rights: everything held about an e-mail address, exported as JSON or erased.

Clients are rows per booking (bookwise.bookings.services makes a new one for each booking, never
updating an earlier one), so "a client" here is every client row of one address in a calendar,
matched without regard to case. A calendar admin acts in their calendar; ``calendar=None``
means every calendar (a superadmin, ``bookwise client ... --all-calendars``).

The manage link (the API and the public manage page) acts on its own booking's client row
only: the link proves that its holder made that booking, not that they own the address (anyone
may type anyone's address in a form), so it cannot open other bookings of the same address.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bookwise.audit.services import Actor, record
from bookwise.bookings.models import Booking, BookingEvent, Client, ConsentRecord
from bookwise.bookings.services import transition_booking
from bookwise.calendars.models import Calendar
from bookwise.errors import BookwiseError
from bookwise.notifications.models import Notification
from bookwise.privacy.erasure import (
    close_manage_links,
    erase_answers,
    erase_clients,
    erase_waitlist_entries,
    normalise_email,
    pseudonym,
    purge_messages,
    scrub_audit,
)
from bookwise.workflows.lifecycle import TransitionNotAllowed
from bookwise.workflows.services import workflow_of

if TYPE_CHECKING:
    from bookwise.plugins.host import PluginHost

EXPORT_SCHEMA = "bookwise.client-data"
EXPORT_VERSION = 1


class ClientNotFound(BookwiseError):
    """No client holds this address (in the calendars searched)."""

    code = "client_not_found"


class InvalidEmail(BookwiseError):
    """The address given is empty or not an address."""

    code = "invalid_email"


@dataclass(frozen=True)
class ClientSummary:
    """What is held about an address, counted (the confirmation step shows it)."""

    email: str
    calendars: tuple[str, ...]
    clients: int
    bookings: int
    future_bookings: int
    answered: int
    consents: int
    messages: int


@dataclass
class ErasureReport:
    """What an erasure did."""

    calendars: list[str] = field(default_factory=list)
    clients: list[int] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)  # the erased clients' pseudonyms
    bookings: int = 0
    answers: int = 0
    cancelled: int = 0
    not_cancelled: list[str] = field(default_factory=list)  # uids kept in their state
    messages: int = 0
    audit_entries: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "calendars": self.calendars,
            "clients": len(self.clients),
            "pseudonyms": self.subjects,
            "bookings": self.bookings,
            "answers_erased": self.answers,
            "bookings_cancelled": self.cancelled,
            "bookings_not_cancelled": self.not_cancelled,
            "messages_purged": self.messages,
        }


def iso(moment: datetime | None) -> str | None:
    """An instant as ISO 8601 in UTC (``2027-03-28T06:30:00Z``), or None."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def checked_email(email: str) -> str:
    """The address as matched, or :class:`InvalidEmail` saying what is wrong."""
    address = normalise_email(email or "")
    if not address or "@" not in address or len(address) > 320 or any(c.isspace() for c in address):
        raise InvalidEmail(f"{email!r} is not an e-mail address: give one like name@example.org")
    return address


def find_clients(session: Session, calendar: Calendar | None, email: str) -> list[Client]:
    """The client rows of ``email`` (any case) in ``calendar`` (None: every calendar), oldest
    first; :class:`ClientNotFound` when there are none."""
    address = checked_email(email)
    query = select(Client).where(func.lower(Client.email) == address)
    if calendar is not None:
        query = query.where(Client.calendar_id == calendar.id)
    clients = list(session.scalars(query.order_by(Client.id)))
    if not clients:
        where = f"in the calendar {calendar.slug!r}" if calendar is not None else "in any calendar"
        raise ClientNotFound(f"no client with the address {email.strip()} {where}")
    return clients


def _bookings_of(session: Session, client_ids: Sequence[int]) -> list[Booking]:
    return list(
        session.scalars(
            select(Booking).where(Booking.client_id.in_(client_ids)).order_by(Booking.start_at)
        )
    )


def summarise_client(
    session: Session, calendar: Calendar | None, email: str, now: datetime
) -> ClientSummary:
    """What is held about ``email`` (counts), for the confirmation step; :class:`ClientNotFound`
    when nothing is."""
    clients = find_clients(session, calendar, email)
    return _summary(session, checked_email(email), clients, now)


def _summary(session: Session, email: str, clients: list[Client], now: datetime) -> ClientSummary:
    bookings = _bookings_of(session, [c.id for c in clients])
    ids = [b.id for b in bookings] or [-1]
    consents = session.scalar(
        select(func.count()).select_from(ConsentRecord).where(ConsentRecord.booking_id.in_(ids))
    )
    messages = session.scalar(
        select(func.count())
        .select_from(Notification)
        .where(Notification.booking_id.in_(ids), Notification.recipient_kind == "client")
    )
    slugs = sorted({c.calendar_id for c in clients})
    names = [session.get(Calendar, i) for i in slugs]
    return ClientSummary(
        email=email,
        calendars=tuple(c.slug for c in names if c is not None),
        clients=len(clients),
        bookings=len(bookings),
        future_bookings=sum(1 for b in bookings if b.holds_slot and b.start_at > now),
        answered=sum(1 for b in bookings if b.answers),
        consents=int(consents or 0),
        messages=int(messages or 0),
    )


# --- export --------------------------------------------------------------------------------------


def export_client(
    session: Session, calendar: Calendar | None, email: str, now: datetime
) -> dict[str, Any]:
    """Everything held about ``email`` in ``calendar`` (None: every calendar), JSON-able:
    the client rows, each booking with its answers, consent (as given, and withdrawn),
    history and the messages sent to the client. Times are ISO 8601 in UTC.
    :class:`ClientNotFound` when nothing is held. Writes nothing: the caller audits."""
    clients = find_clients(session, calendar, email)
    return _export(session, clients, now, checked_email(email))


def export_booking_client(session: Session, booking: Booking, now: datetime) -> dict[str, Any]:
    """The data of the client row of ``booking`` (what its manage link may see): see the
    module for why not every booking of the address."""
    return _export(session, [booking.client], now, normalise_email(booking.client.email or ""))


def _export(session: Session, clients: list[Client], now: datetime, email: str) -> dict[str, Any]:
    calendars = {c.calendar_id: session.get(Calendar, c.calendar_id) for c in clients}
    slug = {i: (c.slug if c is not None else "") for i, c in calendars.items()}
    bookings = _bookings_of(session, [c.id for c in clients])
    return {
        "schema": EXPORT_SCHEMA,
        "version": EXPORT_VERSION,
        "generated_at": iso(now),
        "email": email,
        "calendars": sorted(set(slug.values())),
        "clients": [
            {
                "id": c.id,
                "calendar": slug[c.calendar_id],
                "name": c.name,
                "email": c.email,
                "phone": c.phone,
                "locale": c.locale,
                "timezone": c.timezone,
                "created_at": iso(c.created_at),
                "erased_at": iso(c.erased_at),
            }
            for c in clients
        ],
        "bookings": [_booking_export(session, b, slug[b.calendar_id]) for b in bookings],
        "notes": [
            "Messages are composed when sent and their text is not kept: each message is "
            "listed with its channel, kind and times.",
        ],
    }


def _booking_export(session: Session, booking: Booking, calendar: str) -> dict[str, Any]:
    consent = booking.consent
    history = session.scalars(
        select(BookingEvent).where(BookingEvent.booking_id == booking.id).order_by(BookingEvent.id)
    )
    messages = session.scalars(
        select(Notification)
        .where(Notification.booking_id == booking.id, Notification.recipient_kind == "client")
        .order_by(Notification.due_at, Notification.id)
    )
    return {
        "id": booking.uid,
        "client_id": booking.client_id,
        "calendar": calendar,
        "service": booking.workflow_version.workflow.slug,
        "staff": booking.staff_member.name,
        "start": iso(booking.start_at),
        "end": iso(booking.end_at),
        "state": booking.state,
        "source": booking.source,
        "locale": booking.locale,
        "timezone": booking.timezone,
        "created_at": iso(booking.created_at),
        "sms_opt_in": booking.sms_opt_in,
        "answers": dict(booking.answers or {}),
        "answers_erased_at": iso(booking.answers_erased_at),
        "consent": None
        if consent is None
        else {
            "text": consent.text,
            "text_sha256": consent.text_hash,
            "link": consent.link,
            "locale": consent.locale,
            "given_at": iso(consent.given_at),
            "withdrawn_at": iso(consent.withdrawn_at),
        },
        "history": [
            {
                "at": iso(event.at),
                "action": event.action,
                "from_state": event.from_state,
                "to_state": event.to_state,
                "by": event.actor,
                "details": dict(event.details or {}),
            }
            for event in history
        ],
        "messages": [
            {
                "channel": row.channel,
                "event": row.event,
                "template": row.template,
                "to": row.recipient,
                "state": row.state,
                "due_at": iso(row.due_at),
                "sent_at": iso(row.sent_at),
                "subject": None,
                "body": None,
            }
            for row in messages
        ],
    }


def record_export(session: Session, data: dict[str, Any], by: Actor | str) -> None:
    """Audit an export (one entry per calendar): who took it, which client ids and how many
    bookings; never the address."""
    per_calendar: dict[int, list[int]] = {}
    for row in data["clients"]:
        client = session.get(Client, row["id"])
        if client is not None:
            per_calendar.setdefault(client.calendar_id, []).append(client.id)
    for calendar_id, ids in sorted(per_calendar.items()):
        record(
            session,
            "client.exported",
            by,
            object_type="client",
            object_id=ids[0],
            calendar_id=calendar_id,
            details={
                "clients": ids,
                "bookings": sum(1 for b in data["bookings"] if b["client_id"] in ids),
            },
        )


# --- erasure -------------------------------------------------------------------------------------


def erase_client(
    session: Session,
    calendar: Calendar | None,
    email: str,
    by: Actor | str,
    now: datetime,
    *,
    secret: str,
    plugins: PluginHost | None,
) -> ErasureReport:
    """Erase everything held about ``email`` in ``calendar`` (None: every calendar).

    Future bookings are cancelled through the booking path (staff are told as usual; the
    client is not: their address is removed first). Then answers are removed, names become a
    pseudonym, addresses and phones are removed, manage links stop working, the outbox rows are
    purged and the client's unsent messages withdrawn; the bookings stay, as anonymous counts.
    Audited, per calendar, with client ids and pseudonyms, never the address.
    :class:`ClientNotFound` when nothing is held. The caller commits."""
    address = checked_email(email)
    clients = find_clients(session, calendar, address)
    return _erase(session, clients, by, now, secret=secret, plugins=plugins, email=address)


def erase_booking_client(
    session: Session,
    booking: Booking,
    by: Actor | str,
    now: datetime,
    *,
    secret: str,
    plugins: PluginHost | None,
) -> ErasureReport:
    """Erase the client row of ``booking`` (the manage link's own), as :func:`erase_client`."""
    address = normalise_email(booking.client.email or "")
    return _erase(session, [booking.client], by, now, secret=secret, plugins=plugins, email=address)


def _erase(
    session: Session,
    clients: list[Client],
    by: Actor | str,
    now: datetime,
    *,
    secret: str,
    plugins: PluginHost | None,
    email: str,
) -> ErasureReport:
    report = ErasureReport()
    bookings = _bookings_of(session, [c.id for c in clients])
    names = {c.name for c in clients if c.erased_at is None}
    keys = erase_clients(session, clients, secret, now)  # first: no message goes to the client
    actor = by if isinstance(by, Actor) else Actor(by)
    cancelled: set[int] = set()
    for booking in bookings:
        if booking.holds_slot and booking.start_at > now:
            if _cancel_for_erasure(session, booking, actor, now, plugins):
                cancelled.add(booking.id)
                report.cancelled += 1
            else:
                report.not_cancelled.append(booking.uid)
    report.answers = erase_answers(session, bookings, now)
    close_manage_links(bookings)
    erase_waitlist_entries(session, [c.id for c in clients], now)
    report.messages = purge_messages(session, [b.id for b in bookings], erasing=True)
    report.bookings = len(bookings)
    report.clients = [c.id for c in clients]
    report.subjects = sorted({pseudonym(k) for k in keys.values()})
    per_calendar: dict[int, list[Client]] = {}
    for client in clients:
        per_calendar.setdefault(client.calendar_id, []).append(client)
    label = report.subjects[0] if report.subjects else "Erased client"
    report.audit_entries = scrub_audit(
        session, per_calendar, {email} if email else set(), names, label
    )
    for calendar_id, members in sorted(per_calendar.items()):
        calendar = session.get(Calendar, calendar_id)
        if calendar is not None:
            report.calendars.append(calendar.slug)
        own = [b for b in bookings if b.calendar_id == calendar_id]
        record(
            session,
            "client.erased",
            actor,
            object_type="client",
            object_id=members[0].id,
            calendar_id=calendar_id,
            details={
                "clients": [c.id for c in members],
                "pseudonyms": sorted({pseudonym(keys[c.id]) for c in members if c.id in keys}),
                "bookings": len(own),
                "cancelled": sum(1 for b in own if b.id in cancelled),
                "answers_erased": sum(1 for b in own if b.answers_erased_at == now),
            },
        )
    session.flush()
    return report


def _cancel_for_erasure(
    session: Session,
    booking: Booking,
    actor: Actor,
    now: datetime,
    plugins: PluginHost | None,
) -> bool:
    """Cancel a future booking as staff would (``cancel``, else the first staff move to an end
    that frees the time: ``decline`` of a request); False when the workflow has none."""
    lifecycle = workflow_of(booking.workflow_version).lifecycle
    moves = ["cancel"] + [
        t.name
        for t in lifecycle.available(booking.state, "staff")
        if not lifecycle.holds_slot(t.target) and t.name != "cancel"
    ]
    who = f"user:{actor.user_id}" if actor.user_id is not None else actor.name
    for name in moves:
        try:
            lifecycle.find(booking.state, name, "staff")
        except TransitionNotAllowed:
            continue
        transition_booking(session, booking, name, "staff", who, now, plugins=plugins)
        return True
    return False
