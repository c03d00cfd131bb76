"""What retention and erasure remove, and how: one place, so that both do exactly the same.

- A client row keeps its id, calendar, language and time zone; its name becomes a pseudonym
  (:func:`pseudonym`), its e-mail address and phone number are removed, ``erased_at`` is set.
- A booking keeps its times, service, staff member, state, source and history (what was done
  when: the counts of the reports); its answers are removed (``answers_erased_at`` set), a
  reason typed in its history is removed, and its manage link stops working.
- An outbox row keeps its channel, event, template, times and state; the client's address, the
  key that names it, the error text (which may quote it) and the payload beyond times are
  removed. The outbox never stores a rendered message: subjects and bodies are made when sent.
- A consent record stays as it is (the text shown, its hash, link, language, given and
  withdrawn times): proof of what was agreed, without personal data once the client is a
  pseudonym.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.orm import Session

from bookwise.audit.models import AuditEntry
from bookwise.bookings.models import Booking, BookingEvent, Client, WaitlistEntry
from bookwise.bookings.offers import offer_again
from bookwise.notifications.models import Notification, SmsOptOut

BATCH = 500
# Outbox states a message no longer leaves: a row in one of these may be purged.
SETTLED_STATES = ("sent", "dead", "skipped", "withdrawn")
ERASED_RECIPIENT = "(erased)"
PURGED_KEY = "purged:"
ERASED_KEY = "erased:"
# The manage token of an erased waitlist entry begins so (nobody holds the rest of it).
ERASED_ENTRY = "wl-erased-"
# What an outbox row's payload may keep: the times a recipient was told (no personal data).
KEPT_PAYLOAD = ("sequence", "told", "previous_start")
# What a history line's details may keep.
KEPT_DETAILS = ("start", "source", "from", "to", "from_staff", "to_staff")

T = TypeVar("T")


def batches(items: Sequence[T], size: int = BATCH) -> Iterator[Sequence[T]]:
    """``items`` in slices of ``size`` (one statement each: no huge IN lists)."""
    for first in range(0, len(items), size):
        yield items[first : first + size]


def normalise_email(email: str) -> str:
    """An address as it is matched: trimmed, case-insensitive (``Zoe@Example.org`` is
    ``zoe@example.org``: people type addresses with capitals)."""
    return email.strip().casefold()


def subject_key(secret: str, calendar_id: int, email: str | None, client_id: int) -> str:
    """A keyed hash of the person in a calendar: the same for every row of one address there
    (so counts per client survive), not reversible, and testable against a guessed address
    only by someone who holds the instance's secret key."""
    who = normalise_email(email) if email else f"client#{client_id}"
    message = f"bookwise-erasure:{calendar_id}:{who}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def pseudonym(key: str) -> str:
    """The name an erased client shows: ``Erased client 7f3a9c01``."""
    return f"Erased client {key[:8]}"


def erase_clients(
    session: Session, clients: Iterable[Client], secret: str, now: datetime
) -> dict[int, str]:
    """Pseudonymise ``clients`` (see the module); their subject keys by client id."""
    keys: dict[int, str] = {}
    phones: set[str] = set()
    for client in clients:
        if client.erased_at is not None:
            continue
        key = subject_key(secret, client.calendar_id, client.email, client.id)
        keys[client.id] = key
        if client.phone:
            phones.add(client.phone)
        client.name = pseudonym(key)
        client.email = None
        client.phone = None
        client.erased_at = now
    session.flush()
    forget_opt_outs(session, phones)
    return keys


def forget_opt_outs(session: Session, phones: set[str]) -> None:
    """Remove the STOP of phone numbers that no client still holds (a number still used by a
    client who was not erased keeps its STOP: it is that client's wish too)."""
    for phone in phones:
        still_used = session.scalar(select(Client.id).where(Client.phone == phone).limit(1))
        if still_used is None:
            session.query(SmsOptOut).filter(SmsOptOut.phone == phone).delete(
                synchronize_session=False
            )


def erase_answers(session: Session, bookings: Iterable[Booking], now: datetime) -> int:
    """Remove the answers of ``bookings`` and the reasons typed in their history; the number
    of bookings whose answers were still held."""
    erased = 0
    ids = []
    for booking in bookings:
        ids.append(booking.id)
        if booking.answers_erased_at is None:
            booking.answers = {}
            booking.answers_erased_at = now
            erased += 1
    for chunk in batches(ids):
        for event in session.scalars(
            select(BookingEvent).where(BookingEvent.booking_id.in_(chunk))
        ):
            details = event.details or {}
            if any(k not in KEPT_DETAILS for k in details):
                event.details = {k: v for k, v in details.items() if k in KEPT_DETAILS}
    session.flush()
    return erased


def erase_waitlist_entries(session: Session, client_ids: Sequence[int], now: datetime) -> int:
    """The waitlist entries of erased clients (see :func:`erase_entries`); the number."""
    entries = [
        entry
        for chunk in batches(list(client_ids))
        for entry in session.scalars(
            select(WaitlistEntry).where(WaitlistEntry.client_id.in_(chunk))
        )
    ]
    return erase_entries(session, entries, now)


def erase_entries(session: Session, entries: Sequence[WaitlistEntry], now: datetime) -> int:
    """Waitlist entries, as bookings are: answers removed, the entry out of the line (``left``),
    its manage link closed (``wl-erased-``: how an erased entry is known), its offer messages
    purged (unsent ones withdrawn); the number of entries. A place on offer to them goes to the
    next in line."""
    passed_on = []
    for entry in entries:
        entry.answers = {}
        entry.manage_token = ERASED_ENTRY + secrets.token_urlsafe(30)
        if entry.state in ("waiting", "offered"):
            if entry.state == "offered":
                passed_on.append(entry)
            entry.state = "left"
    ids = {entry.id for entry in entries}
    calendars = {entry.calendar_id for entry in entries}
    if ids:
        for row in session.scalars(
            select(Notification).where(
                Notification.event.in_(("waitlist_offer", "waitlist_joined")),
                Notification.calendar_id.in_(calendars),
                ~Notification.idempotency_key.startswith(ERASED_KEY, autoescape=True),
            )
        ):
            if (row.payload or {}).get("waitlist_entry_id") in ids:
                purge_message(row, erasing=True)
    session.flush()
    for entry in passed_on:
        offer_again(session, entry, now)
    return len(entries)


def close_manage_links(bookings: Iterable[Booking]) -> None:
    """Give each booking a new secret nobody knows: its manage link stops working (it would
    show an erased booking, and let anyone holding an old e-mail act on it)."""
    for booking in bookings:
        booking.manage_token = secrets.token_urlsafe(22)


def purge_messages(session: Session, booking_ids: Sequence[int], *, erasing: bool) -> int:
    """Purge the outbox rows of the bookings (see the module); the number purged.

    ``erasing`` (an erasure request): every row, and the client's messages not sent yet are
    withdrawn. Otherwise (retention): only rows that will not be sent any more."""
    purged = 0
    for chunk in batches(list(booking_ids)):
        query = select(Notification).where(
            Notification.booking_id.in_(chunk),
            ~Notification.idempotency_key.startswith(PURGED_KEY, autoescape=True),
            ~Notification.idempotency_key.startswith(ERASED_KEY, autoescape=True),
        )
        if not erasing:
            query = query.where(Notification.state.in_(SETTLED_STATES))
        for row in session.scalars(query):
            purge_message(row, erasing=erasing)
            purged += 1
    session.flush()
    return purged


def purge_message(row: Notification, *, erasing: bool) -> None:
    """One outbox row purged (see :func:`purge_messages`)."""
    to_client = row.recipient_kind == "client"
    if erasing and to_client and row.state not in SETTLED_STATES:
        row.state = "withdrawn"
        row.claimed_by = None
        row.claimed_until = None
    row.idempotency_key = f"{ERASED_KEY if erasing else PURGED_KEY}{row.id}"
    if to_client:
        row.recipient = ERASED_RECIPIENT
        row.last_error = None
    payload = row.payload or {}
    row.payload = {k: v for k, v in payload.items() if k in KEPT_PAYLOAD}


def scrub_audit(
    session: Session, calendar_ids: Iterable[int], emails: set[str], names: set[str], label: str
) -> int:
    """Replace the address and names of erased clients in the calendars' audit entries (an
    entry made by the client, or naming them in its details) with ``label``; the number of
    entries changed. The entry itself, its action and time, stay."""
    changed = 0
    # A name alone is looked for only when it is a full name ("Zoé Martin"): a first name
    # ("Ana") would also be a staff member's, whose entries must stay as they are.
    full_names = {n.casefold().strip() for n in names if len(n.strip().split()) >= 2}
    needles = {n for n in emails | full_names if len(n) >= 3}
    if not needles:
        return 0
    ids = list(calendar_ids)
    details = func.lower(cast(AuditEntry.details, String))
    for needle in needles:
        # JSON text may hold "Zo\u00e9" for "Zoé" (SQLite keeps it so): look for both forms.
        forms = {needle, json.dumps(needle)[1:-1].lower()}
        rows = session.scalars(
            select(AuditEntry).where(
                AuditEntry.calendar_id.in_(ids),
                or_(
                    func.lower(AuditEntry.actor).contains(needle, autoescape=True),
                    *(details.contains(form, autoescape=True) for form in forms),
                ),
            )
        )
        for entry in rows:
            if needle in entry.actor.casefold():
                entry.actor = label
            entry.details = _replace_in(entry.details or {}, needle, label)
            changed += 1
    session.flush()
    return changed


def _replace_in(value: Any, needle: str, label: str) -> Any:
    """``value`` (JSON) with every string containing ``needle`` (case-insensitive) replaced."""
    if isinstance(value, dict):
        return {k: _replace_in(v, needle, label) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_in(v, needle, label) for v in value]
    if isinstance(value, str) and needle in value.casefold():
        return label
    return value
