"""Where bookings meet plugins: meeting links, and booking events after commit.

The host rides on the database's sessions (``session.info["bookwise.plugins"]``, set by
:func:`attach`), so that every way of changing a booking (public page, API, back office, CLI)
reaches the plugins without each caller remembering to. The booking services note each change
(:func:`note_change`); the booking is read as data just before the commit, and the plugins are
called just after it. A rolled-back change calls nobody.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from bookwise.plugins.api import BookingChange, BookingData, FieldType, Meeting

if TYPE_CHECKING:
    from bookwise.bookings.models import Booking
    from bookwise.instance import Database
    from bookwise.plugins.host import PluginHost

log = logging.getLogger("bookwise.plugins")

HOST_KEY = "bookwise.plugins"
_CHANGES = "bookwise.plugins.changes"
_READY = "bookwise.plugins.ready"


def attach(database: Database, host: PluginHost) -> None:
    """Give every session of ``database`` the plugin host, and call plugins after commits."""
    database.sessions.configure(info={HOST_KEY: host})
    if not event.contains(database.sessions, "before_commit", _before_commit):
        event.listen(database.sessions, "before_commit", _before_commit)
        event.listen(database.sessions, "after_commit", _after_commit)
        event.listen(database.sessions, "after_soft_rollback", _after_rollback)


def host_of(session: Session) -> PluginHost | None:
    host: PluginHost | None = session.info.get(HOST_KEY)
    return host


def plugin_field_types(session: Session | None) -> Mapping[str, FieldType]:
    """The field types the plugins of ``session``'s database add, by name."""
    host = host_of(session) if session is not None else None
    return host.field_types if host is not None else {}


def snapshot(booking: Booking) -> BookingData:
    """The booking as plugins see it (answers to sensitive fields left out)."""
    from bookwise.workflows.services import workflow_of

    workflow = workflow_of(booking.workflow_version)
    sensitive = {spec.id for spec in workflow.fields if spec.sensitive}
    client, staff = booking.client, booking.staff_member
    return BookingData(
        uid=booking.uid,
        state=booking.state,
        calendar=booking.calendar.slug,
        calendar_name=booking.calendar.name,
        service=booking.workflow_version.workflow.slug,
        service_name=workflow.name.get(booking.locale, booking.calendar.default_locale),
        start=booking.start_at,
        end=booking.end_at,
        timezone=booking.timezone,
        locale=booking.locale,
        staff=staff.slug,
        staff_name=staff.name,
        staff_email=staff.email,
        client_name=client.name,
        client_email=client.email,
        client_phone=client.phone,
        answers={k: v for k, v in (booking.answers or {}).items() if k not in sensitive},
        meeting_url=booking.meeting_url,
        source=booking.source,
        sequence=booking.sequence,
    )


def note_change(
    session: Session,
    booking: Booking,
    action: str,
    actor: str,
    from_state: str | None,
    details: dict[str, Any] | None,
) -> None:
    """Remember a change of ``booking`` for the plugins, called once the transaction commits."""
    host = host_of(session)
    if host is None or not host.listens_to_bookings():
        return
    change = BookingChange(action, from_state, actor, dict(details or {}))
    session.info.setdefault(_CHANGES, []).append((booking, change))


def _before_commit(session: Session) -> None:
    changes = session.info.pop(_CHANGES, None)
    if changes:
        session.info[_READY] = [(booking, snapshot(booking), change) for booking, change in changes]


def _after_rollback(session: Session, _previous: Any) -> None:
    session.info.pop(_CHANGES, None)
    session.info.pop(_READY, None)


def _after_commit(session: Session) -> None:
    ready = session.info.pop(_READY, None)
    host = host_of(session)
    if not ready or host is None:
        return
    for booking, data, change in ready:
        if change.from_state != data.state and not booking.holds_slot:
            _delete_meeting(host, booking)
        booking_event(host, data, change)


def booking_event(host: PluginHost, data: BookingData, change: BookingChange) -> None:
    """Call the hooks of one committed change: the one named for it, then the general one."""
    if change.action == "created":
        host.call_each("bookwise_booking_created", booking=data)
    elif change.action == "rescheduled":
        previous = datetime.fromisoformat(change.details.get("from", data.start.isoformat()))
        host.call_each("bookwise_booking_rescheduled", booking=data, previous_start=previous)
    elif data.state == "cancelled" and change.from_state != "cancelled":
        host.call_each(
            "bookwise_booking_cancelled", booking=data, reason=change.details.get("reason")
        )
    elif data.state == "confirmed" and change.from_state != "confirmed":
        host.call_each("bookwise_booking_confirmed", booking=data)
    host.call_each("bookwise_booking_changed", booking=data, change=change)


# Meeting links ------------------------------------------------------------------------------


def create_meeting(session: Session, booking: Booking, provider_name: str | None) -> None:
    """Ask the workflow's meeting provider for a link (in the booking's transaction, so that
    the first message has it). A provider that fails leaves the booking without a link, and the
    booking's history says why."""
    host = host_of(session)
    if provider_name is None or host is None:
        return
    provider = host.meeting_providers.get(provider_name)
    if provider is None:
        _meeting_problem(
            session, booking, provider_name, host.unknown_provider_message(provider_name)
        )
        return
    try:
        meeting = provider.create(snapshot(booking))
        if not isinstance(meeting, Meeting) or not meeting.url.startswith(("https://", "http://")):
            raise TypeError(f"create() returned {meeting!r}, not a Meeting with an http(s) url")
    except Exception as exc:
        host.failed(host.meeting_provider_owner(provider_name), "create a meeting", exc)
        _meeting_problem(session, booking, provider_name, f"{type(exc).__name__}: {exc}")
        return
    booking.meeting_url = meeting.url[:500]
    booking.meeting_provider = provider_name
    booking.meeting_id = meeting.id[:500] or None


def move_meeting(session: Session, booking: Booking) -> None:
    """The booking moved: let its provider move the meeting (most keep the same link)."""
    host = host_of(session)
    if host is None or booking.meeting_provider is None or booking.meeting_url is None:
        return
    provider = host.meeting_providers.get(booking.meeting_provider)
    if provider is None:
        return
    current = Meeting(booking.meeting_url, booking.meeting_id or "")
    try:
        meeting = provider.update(current, snapshot(booking))
    except Exception as exc:
        host.failed(host.meeting_provider_owner(booking.meeting_provider), "move a meeting", exc)
        _meeting_problem(session, booking, booking.meeting_provider, f"{type(exc).__name__}: {exc}")
        return
    booking.meeting_url = meeting.url[:500]
    booking.meeting_id = meeting.id[:500] or None


def _delete_meeting(host: PluginHost, booking: Booking) -> None:
    name = booking.meeting_provider
    provider = host.meeting_providers.get(name) if name else None
    if provider is None or not booking.meeting_url:
        return
    try:
        provider.delete(Meeting(booking.meeting_url, booking.meeting_id or ""))
    except Exception as exc:
        host.failed(host.meeting_provider_owner(name or ""), "delete a meeting", exc)


def _meeting_problem(session: Session, booking: Booking, provider: str, problem: str) -> None:
    from bookwise.bookings.models import BookingEvent

    log.error("booking %s has no meeting link: %s: %s", booking.uid, provider, problem)
    session.add(
        BookingEvent(
            booking_id=booking.id,
            action="meeting_failed",
            from_state=booking.state,
            to_state=booking.state,
            actor=f"plugin:{provider}",
            details={"provider": provider, "error": problem[:500]},
        )
    )
