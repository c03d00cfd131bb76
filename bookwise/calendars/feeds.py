"""Subscribable calendars: a private address per staff member (their bookings) and per calendar
(all its bookings, for its admins) that Outlook, Google Calendar, Apple Calendar or Thunderbird
poll.

An address holds a random token; only its SHA-256 is stored (:class:`FeedLink`), so the database
cannot give the address away, and the address is shown once, when it is made. Making a new one
ends the old one; stopping it ends it at once. An event names the service, and the client only
when the calendar allows it (``Calendar.feed_client_names``: off by default, for health and HR
calendars); never their e-mail, phone or answers.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from bookwise.audit.services import Actor, record
from bookwise.bookings.ics import CalendarEvent, build_feed, event_status
from bookwise.bookings.models import Booking
from bookwise.calendars.models import Calendar, FeedLink, StaffMember
from bookwise.errors import NotFound
from bookwise.notifications.context import ADMIN_BOOKING_PATH
from bookwise.workflows.services import workflow_of

# What a feed holds: the last month (a week's review) and the next year.
PAST = timedelta(days=31)
AHEAD = timedelta(days=366)
# last_used_at is written at most this often (calendar clients poll every few minutes).
USE_NOTED_EVERY = timedelta(hours=1)
FEED_PATH = "/feeds/{token}.ics"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def active_link(
    session: Session, calendar: Calendar, member: StaffMember | None
) -> FeedLink | None:
    """The address in force for ``member``'s bookings (the whole calendar's when None)."""
    query = select(FeedLink).where(
        FeedLink.calendar_id == calendar.id,
        FeedLink.revoked_at.is_(None),
        FeedLink.staff_id.is_(None) if member is None else FeedLink.staff_id == member.id,
    )
    return session.scalars(query.order_by(FeedLink.id.desc())).first()


def _end_links(
    session: Session, calendar: Calendar, member: StaffMember | None, now: datetime
) -> int:
    result = session.execute(
        update(FeedLink)
        .where(
            FeedLink.calendar_id == calendar.id,
            FeedLink.revoked_at.is_(None),
            FeedLink.staff_id.is_(None) if member is None else FeedLink.staff_id == member.id,
        )
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def create_link(
    session: Session,
    calendar: Calendar,
    member: StaffMember | None,
    *,
    actor: Actor,
    now: datetime,
    base_url: str,
) -> str:
    """A new private address for ``member``'s bookings (the calendar's when None), ending the
    one before; the address itself, to show once."""
    replaced = _end_links(session, calendar, member, now)
    token = secrets.token_urlsafe(32)
    session.add(
        FeedLink(
            calendar_id=calendar.id,
            staff_id=member.id if member is not None else None,
            token_hash=_hash(token),
            created_by=actor.user_id,
            created_at=now,
        )
    )
    record(
        session,
        "feed.replaced" if replaced else "feed.created",
        actor,
        object_type="staff" if member is not None else "calendar",
        object_id=member.slug if member is not None else calendar.slug,
        calendar_id=calendar.id,
    )
    return base_url + FEED_PATH.format(token=token)


def stop_link(
    session: Session, calendar: Calendar, member: StaffMember | None, *, actor: Actor, now: datetime
) -> bool:
    """End the address for ``member``'s bookings (the calendar's when None); whether there was
    one. Calendar clients subscribed to it get "not found" from then on."""
    ended = _end_links(session, calendar, member, now)
    if ended:
        record(
            session,
            "feed.stopped",
            actor,
            object_type="staff" if member is not None else "calendar",
            object_id=member.slug if member is not None else calendar.slug,
            calendar_id=calendar.id,
        )
    return bool(ended)


@dataclass(frozen=True)
class Feed:
    """A feed as served: the .ics bytes and what the address is for."""

    data: bytes
    calendar: Calendar
    member: StaffMember | None


def _find(session: Session, token: str, now: datetime) -> FeedLink:
    if not token or len(token) > 100:
        raise NotFound("no such feed")
    link = session.scalar(select(FeedLink).where(FeedLink.token_hash == _hash(token)))
    if link is None or link.revoked_at is not None:
        raise NotFound("no such feed")
    member = link.staff_member
    if member is not None and member.removed_at is not None:
        raise NotFound("no such feed")
    if link.last_used_at is None or link.last_used_at < now - USE_NOTED_EVERY:
        link.last_used_at = now
    return link


def feed_of(session: Session, token: str, *, now: datetime, base_url: str) -> Feed:
    """The feed at ``token``'s address; :class:`NotFound` when there is none or it was ended.
    (Notes when it was last read: the caller commits.)"""
    link = _find(session, token, now)
    calendar, member = link.calendar, link.staff_member
    query = (
        select(Booking)
        .where(
            Booking.calendar_id == calendar.id,
            Booking.holds_slot.is_(True),
            Booking.end_at > now - PAST,
            Booking.start_at < now + AHEAD,
        )
        .options(
            selectinload(Booking.client),
            selectinload(Booking.workflow_version),
            selectinload(Booking.staff_member),
        )
        .order_by(Booking.start_at, Booking.id)
    )
    if member is not None:
        query = query.where(Booking.staff_id == member.id)
    bookings = list(session.scalars(query))
    # A group session is one event for the staff member, however many take part.
    groups: dict[str, list[Booking]] = {}
    for booking in bookings:
        key = booking.slot_key if booking.capacity > 1 else booking.uid
        groups.setdefault(key, []).append(booking)
    events = [
        _event(calendar, member, group, base_url=base_url, now=now) for group in groups.values()
    ]
    name = calendar.name if member is None else f"{member.name} · {calendar.name}"
    data = build_feed(events, name=name, timezone=calendar.timezone)
    return Feed(data, calendar, member)


def _event(
    calendar: Calendar,
    member: StaffMember | None,
    group: list[Booking],
    *,
    base_url: str,
    now: datetime,
) -> CalendarEvent:
    first = group[0]
    workflow = workflow_of(first.workflow_version)
    lifecycle = workflow.lifecycle
    locale = calendar.default_locale
    service = workflow.name.get(locale)
    if first.capacity > 1:
        uid = "slot-" + hashlib.sha256(first.slot_key.encode()).hexdigest()[:24]
        who = [f"{len(group)}/{first.capacity}"]
        sequence = sum(b.sequence for b in group) + len(group)
    else:
        uid = first.uid
        who = [first.client.name] if calendar.feed_client_names else []
        sequence = first.sequence
    if member is None:
        who.append(first.staff_member.name)
    waiting = all(b.state == lifecycle.initial for b in group) and lifecycle.needs_approval
    return CalendarEvent(
        uid=f"{uid}@bookwise",
        sequence=sequence,
        start=first.start_at,
        end=first.end_at,
        timezone=calendar.timezone,
        summary=" · ".join([service, *who]),
        description=base_url + ADMIN_BOOKING_PATH.format(id=first.id),
        url=first.meeting_url or "",
        status=event_status(True, waiting),
        stamp=max((b.updated_at or now) for b in group),
    )


__all__ = ["FEED_PATH", "Feed", "active_link", "create_link", "feed_of", "stop_link"]
