"""The waitlist of a full time or day (issue 18, docs/booking.md "Waitlist").

A client joins the waitlist of a time that is full (every place taken, or no staff member free)
or of a day without a free time, when the workflow says ``waitlist: {enabled: true}``. When a
booking stops holding its place (a cancellation, a move, any step to a state that frees it),
:func:`offer_freed_place` runs in that same transaction: the first entry in line whose wish
holds the freed time is ``offered`` it, held until ``offer_expires_at``, and its message is
planned in the outbox. The ``waitlist-offers`` job expires offers not taken in time and gives the
same place to the next in line (:func:`expire_offers`). The client accepts through the one
booking path (:func:`accept_offer`).

One live offer per freed place, whatever the number of workers: writers are serialised on
SQLite; on PostgreSQL the entry offered is taken with ``FOR UPDATE SKIP LOCKED`` and the partial
unique index ``uq_waitlist_offer`` refuses a second live offer of one freed booking.

Like every service here these functions take a ``Session`` and never commit.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from babel import Locale
from sqlalchemy import func, or_, select, tuple_
from sqlalchemy.orm import Session

from bookwise.availability.services import SlotSearch, local_day_bounds, service_availability
from bookwise.bookings.answers import check_answers
from bookwise.bookings.models import Booking, Client, WaitlistEntry
from bookwise.bookings.offers import offer_again, skip_locked
from bookwise.bookings.services import (
    BookingContext,
    BookingError,
    BookingRequest,
    NotASlot,
    OutsideWindow,
    SlotTaken,
    _check_window,
    begin_write_if_fresh,
    create_booking,
    routing_values,
)
from bookwise.calendars.models import Service, StaffMember
from bookwise.errors import NotFound
from bookwise.formatting import format_day, format_when
from bookwise.notifications.models import Notification
from bookwise.workflows.services import current_version

if TYPE_CHECKING:
    from bookwise.plugins.host import PluginHost

log = logging.getLogger(__name__)

# A waitlist entry's manage token starts with this (a booking's starts with its 32-hex uid).
JOINED_TEMPLATE = "waitlist_joined"  # the client's message on joining
TOKEN_PREFIX = "wl-"  # noqa: S105 (a prefix, not a secret)
LIVE = ("waiting", "offered")


class WaitlistError(BookingError):
    """A waitlist request that cannot be honoured; ``code`` is stable, for the API."""

    code = "waitlist_error"


class WaitlistClosed(WaitlistError):
    """The service's workflow has no waitlist."""

    code = "waitlist_closed"


class SlotFree(WaitlistError):
    """The time (or day) still has a free place: book it instead of waiting."""

    code = "slot_free"


class AlreadyWaiting(WaitlistError):
    """The same person (e-mail or phone) already waits for this time of this service."""

    code = "already_waiting"


class OfferExpired(WaitlistError):
    """The offer was not taken in time; the place went to the next in line."""

    code = "offer_expired"


class OfferTaken(WaitlistError):
    """The place offered is no longer free."""

    code = "offer_taken"


class NoOffer(WaitlistError):
    """The entry has no live offer (still waiting, booked already, or left)."""

    code = "no_offer"


@dataclass(frozen=True)
class WaitlistRequest:
    """What a client asks for: a full ``start``, or any time of a local ``day`` (not both);
    ``values`` holds every field's answer, contact details included."""

    values: dict[str, Any]
    start: datetime | None = None
    day: date | None = None
    consent: bool | None = None
    locale: str | None = None
    timezone: str | None = None
    sms_opt_in: bool = False


def join_waitlist(
    session: Session,
    context: BookingContext,
    request: WaitlistRequest,
    now: datetime,
    *,
    plugins: PluginHost | None,
) -> WaitlistEntry:
    """Put a client on the waitlist of a full time or of a day without a free time.

    Raises :class:`WaitlistClosed`, :class:`SlotFree` (book instead), :class:`NotASlot` (the
    service is never offered then), an :class:`~bookwise.bookings.services.OutsideWindow`, or
    :class:`~bookwise.bookings.answers.InvalidAnswers` (checked as a booking's are, consent
    included); nothing is written then.
    """
    begin_write_if_fresh(session)
    workflow = context.workflow
    if not workflow.waitlist_enabled:
        raise WaitlistClosed("this service has no waitlist")
    answers = check_answers(
        workflow,
        request.values,
        request.consent,
        now.date(),
        field_types=plugins.field_types if plugins is not None else None,
    )
    routing = routing_values(answers)
    if (request.start is None) == (request.day is None):
        raise WaitlistError("give either a start time or a day", "invalid_request")
    if request.start is not None:
        start = request.start
        _check_window(workflow, start, now)
        start = start.astimezone(UTC)
        wanted_from, wanted_until = start, start
        window = (start, start + timedelta(seconds=1))
    else:
        assert request.day is not None
        zone = ZoneInfo(context.calendar.timezone)
        window = local_day_bounds(request.day, request.day, zone)
        if window[1] <= now:
            raise OutsideWindow("this day has passed", "in_the_past")
        if window[0] > now + workflow.max_ahead:
            raise OutsideWindow("this day is too far ahead to be booked yet", "too_far")
        # A day's entry wants any start of it: its last second is the end of the range.
        wanted_from, wanted_until = window[0], window[1] - timedelta(seconds=1)
    _refuse_twice(session, context, answers.email, answers.phone, wanted_from, wanted_until)
    search = SlotSearch(answers=routing)
    free = service_availability(
        session, context.calendar, context.service, workflow, *window, now, search
    )
    if any(window[0] <= slot.start < window[1] for slot in free.slots):
        raise SlotFree("there is still a free place: book it", "slot_free")
    unbooked = service_availability(
        session,
        context.calendar,
        context.service,
        workflow,
        *window,
        now,
        SlotSearch(answers=routing, ignore_bookings=True),
    )
    if not any(window[0] <= slot.start < window[1] for slot in unbooked.slots):
        raise NotASlot("this service is not offered at this time")
    client = Client(
        calendar_id=context.calendar.id,
        name=answers.name,
        email=answers.email,
        phone=answers.phone,
        locale=request.locale or context.calendar.default_locale,
        timezone=request.timezone or context.calendar.timezone,
    )
    session.add(client)
    stored = dict(answers.answers)
    if workflow.consent is not None and request.consent:
        # The booking made from the offer records the consent; until then, when it was given.
        stored["_consent_given_at"] = now.isoformat()
    if request.sms_opt_in and workflow.texts_client:
        stored["_sms_opt_in"] = True
    entry = WaitlistEntry(
        calendar_id=context.calendar.id,
        service_id=context.service.id,
        client=client,
        wanted_from=wanted_from,
        wanted_until=wanted_until,
        state="waiting",
        answers=stored,
        locale=client.locale,
        timezone=client.timezone,
        manage_token=TOKEN_PREFIX + secrets.token_urlsafe(30),
        created_at=now,
    )
    session.add(entry)
    session.flush()
    _plan_joined(session, entry, now)
    return entry


def _plan_joined(session: Session, entry: WaitlistEntry, now: datetime) -> None:
    """The client's e-mail saying they are in line, with their entry's page (their place in
    line, leave the list), in the join's transaction."""
    if not entry.client.email:
        return
    session.add(
        Notification(
            idempotency_key=f"waitlist-joined:{entry.id}",
            booking_id=None,
            calendar_id=entry.calendar_id,
            event=JOINED_TEMPLATE,
            rule_key=None,
            channel="email",
            recipient_kind="client",
            recipient=entry.client.email,
            template=JOINED_TEMPLATE,
            locale=entry.locale,
            timezone=entry.timezone,
            due_at=now,
            state="pending",
            payload={"waitlist_entry_id": entry.id},
        )
    )
    session.flush()


def _refuse_twice(
    session: Session,
    context: BookingContext,
    email: str | None,
    phone: str | None,
    wanted_from: datetime,
    wanted_until: datetime,
) -> None:
    """:class:`AlreadyWaiting` when the same e-mail address or phone number is still in line
    (or on offer) for a time of the service that overlaps the one asked for (a day holds its
    times), or holds a booking of it then (``already_booked``). The entry is not named:
    whoever types someone's address learns nothing more.
    Joins of one service are serialised (its row locked ``FOR NO KEY UPDATE`` on PostgreSQL,
    which bookings referring to it do not wait for; SQLite has one writer): two at once by the
    same person cannot both pass."""
    session.execute(
        select(Service.id).where(Service.id == context.service.id).with_for_update(key_share=True)
    ).one()
    same = []
    if email:
        same.append(func.lower(Client.email) == email.lower())
    if phone:
        same.append(Client.phone == phone)
    if not same:
        return
    found = session.scalar(
        select(WaitlistEntry.id)
        .join(Client, Client.id == WaitlistEntry.client_id)
        .where(
            WaitlistEntry.service_id == context.service.id,
            WaitlistEntry.state.in_(LIVE),
            WaitlistEntry.wanted_from <= wanted_until,
            WaitlistEntry.wanted_until >= wanted_from,
            or_(*same),
        )
        .limit(1)
    )
    if found is not None:
        raise AlreadyWaiting("you are already on the waitlist for this time", "already_waiting")
    booked = session.scalar(
        select(Booking.id)
        .join(Client, Client.id == Booking.client_id)
        .where(
            Booking.service_id == context.service.id,
            Booking.holds_slot,
            Booking.start_at >= wanted_from,
            Booking.start_at <= wanted_until,
            or_(*same),
        )
        .limit(1)
    )
    if booked is not None:
        raise AlreadyWaiting("you have already booked this time", "already_booked")


def is_waitlist_token(token: str) -> bool:
    """Whether a manage token is a waitlist entry's (else it may be a booking's)."""
    return token.startswith(TOKEN_PREFIX)


def find_entry_by_token(session: Session, token: str, *, lock: bool = False) -> WaitlistEntry:
    """The entry of a manage token, or :class:`NotFound`; ``lock`` takes its row (PostgreSQL)
    until the transaction ends."""
    if not is_waitlist_token(token) or len(token) > 64 or not token.isascii():
        raise NotFound("no such waitlist entry")
    query = select(WaitlistEntry).where(WaitlistEntry.manage_token == token)
    if lock:
        query = query.with_for_update()
    entry = session.scalar(query)
    # The lookup is by the whole token; the comparison again, in constant time, costs nothing.
    if entry is None or not hmac.compare_digest(entry.manage_token.encode(), token.encode()):
        raise NotFound("no such waitlist entry")
    return entry


def wanted_words(entry: WaitlistEntry, zone: str, locale: str | Locale) -> str:
    """What an entry waits for, in words: the day ("Saturday, December 5, 2026", in the
    calendar's zone, where its bounds are) or the time (in ``zone``)."""
    if entry.wanted_from != entry.wanted_until:
        local = entry.wanted_from.astimezone(ZoneInfo(entry.calendar.timezone))
        return format_day(local.date(), locale)
    return format_when(entry.wanted_from, zone, locale)


def position_in_line(session: Session, entry: WaitlistEntry) -> int | None:
    """1 for the first in line among those waiting for a time this entry wants; None when the
    entry no longer waits."""
    if entry.state != "waiting":
        return None
    ahead = session.scalar(
        select(func.count())
        .select_from(WaitlistEntry)
        .where(
            WaitlistEntry.service_id == entry.service_id,
            WaitlistEntry.state == "waiting",
            WaitlistEntry.wanted_from <= entry.wanted_until,
            WaitlistEntry.wanted_until >= entry.wanted_from,
            tuple_(WaitlistEntry.created_at, WaitlistEntry.id) < (entry.created_at, entry.id),
        )
    )
    return int(ahead or 0) + 1


def accept_offer(
    session: Session, entry: WaitlistEntry, now: datetime, *, plugins: PluginHost | None
) -> Booking:
    """Book the place offered to ``entry``, through the one booking path, with the staff member
    and time offered; :class:`OfferExpired`, :class:`OfferTaken` or :class:`NoOffer` otherwise
    (nothing written then)."""
    begin_write_if_fresh(session)
    if skip_locked(session):
        session.refresh(entry, with_for_update=True)
    if entry.state == "expired" or (
        entry.state == "offered"
        and entry.offer_expires_at is not None
        and entry.offer_expires_at <= now
    ):
        raise OfferExpired("this offer has expired; the place went to the next in line")
    if entry.state != "offered" or entry.offered_start is None:
        raise NoOffer("there is no place on offer for this entry")
    version = current_version(session, entry.service.workflow.slug)
    context = BookingContext(entry.calendar, entry.service, version)
    answers = {k: v for k, v in (entry.answers or {}).items() if not k.startswith("_")}
    client = entry.client
    contact = {"name": client.name, "email": client.email, "phone": client.phone}
    values = {**answers, **{k: v for k, v in contact.items() if v is not None}}
    member = session.get(StaffMember, entry.offered_staff_id) if entry.offered_staff_id else None
    request = BookingRequest(
        start=entry.offered_start,
        values=values,
        consent=True if context.workflow.consent is not None else None,
        staff=member.slug if member is not None else None,
        locale=entry.locale,
        timezone=entry.timezone,
        source="waitlist",
        actor="client",
        sms_opt_in=bool((entry.answers or {}).get("_sms_opt_in")),
        # The client was offered this very place: the booking window (min_notice) does not
        # stand between them and it, and the offer names its staff member.
        by_staff=True,
    )
    try:
        with session.begin_nested():
            # The offer holds the place against everyone else (see
            # availability.services.read_held_offers): no longer on offer, it is free for this
            # client. Refused, the savepoint puts the offer back as it was.
            entry.state = "booked"
            session.flush()
            booking = create_booking(session, context, request, now, plugins=plugins)
    except (SlotTaken, NotASlot):
        raise OfferTaken("the place offered is no longer free") from None
    entry.booking_id = booking.id
    session.flush()
    return booking


def leave_waitlist(session: Session, entry: WaitlistEntry, now: datetime) -> WaitlistEntry:
    """The client leaves the list (``left``); a place on offer to them goes to the next in line.
    Leaving twice is harmless; a booked entry is :class:`NoOffer` (cancel the booking)."""
    begin_write_if_fresh(session)
    if skip_locked(session):
        session.refresh(entry, with_for_update=True)
    if entry.state == "booked":
        raise NoOffer("this entry was booked: cancel the booking instead", "already_booked")
    if entry.state not in LIVE:
        return entry
    was_offered = entry.state == "offered"
    entry.state = "left"
    session.flush()
    if was_offered:
        offer_again(session, entry, now)
    return entry


def entries_of_calendar(session: Session, calendar_id: int) -> list[WaitlistEntry]:
    """A calendar's entries still in line or on offer, in line order (then the others, newest
    first), for the back office."""
    live = list(
        session.scalars(
            select(WaitlistEntry)
            .where(WaitlistEntry.calendar_id == calendar_id, WaitlistEntry.state.in_(LIVE))
            .order_by(WaitlistEntry.service_id, WaitlistEntry.created_at, WaitlistEntry.id)
        )
    )
    done = list(
        session.scalars(
            select(WaitlistEntry)
            .where(WaitlistEntry.calendar_id == calendar_id, WaitlistEntry.state.not_in(LIVE))
            .order_by(WaitlistEntry.updated_at.desc(), WaitlistEntry.id.desc())
            .limit(200)
        )
    )
    return live + done
