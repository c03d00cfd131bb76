"""The values a message template sees (``VARIABLES`` in rendering.py), for one outbox row:
written in the recipient's language and time zone."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bookwise.bookings.models import Booking, BookingEvent
from bookwise.calendars.models import Calendar, StaffMember, TimeOff
from bookwise.config import Settings
from bookwise.formatting import (
    format_clock,
    format_day,
    format_when,
    human_duration,
    translator,
    zone_note,
)
from bookwise.notifications.models import Notification
from bookwise.workflows.services import workflow_of

if TYPE_CHECKING:
    from bookwise.plugins.api import FieldType

log = logging.getLogger(__name__)


def reference(booking: Booking) -> str:
    """A short code people can read out on the phone: ``BW-`` and six characters of the id."""
    return reference_code(booking.uid)


def reference_code(uid: str) -> str:
    return f"BW-{uid[:6].upper()}"


def manage_url(settings: Settings, booking: Booking) -> str:
    from bookwise.bookings.services import manage_token

    return f"{settings.base_url}/manage/{manage_token(booking)}"


# The back office's page of a booking (``BookingsView.details`` in bookwise/admin/views/
# bookings.py, mounted at /admin/bookings): written out here because messages are rendered
# outside any request; a test checks that the app routes it to that page.
ADMIN_BOOKING_PATH = "/admin/bookings/{id}"


def admin_booking_url(settings: Settings, booking: Booking) -> str:
    """The absolute link to the booking in the back office, for staff messages."""
    return settings.base_url + ADMIN_BOOKING_PATH.format(id=booking.id)


def moment_text(moment: datetime, zone: str, locale: str, business_zone: str) -> str:
    """Day and time of ``moment`` for a reader in ``zone``, followed by that zone when it is not
    the business's: a client abroad never reads a bare time they could take for the business's.
    """
    when = format_when(moment, zone, locale)
    if zone == business_zone:
        return when
    return f"{when} ({zone_note(zone, moment)})"


@dataclass(frozen=True)
class Times:
    """The times a message names: the booking's own unless the message is about a time the
    recipient knew and that has since changed (a cancellation names the time they last heard
    of; a reschedule names it as the previous time)."""

    start: datetime
    end: datetime
    previous: datetime | None = None


def calendar_values(calendar: Calendar) -> dict[str, str]:
    """The ``calendar`` variable of every message."""
    return {
        "name": calendar.name,
        "address": calendar.address or "",
        "phone": calendar.phone or "",
        "reply_to": calendar.reply_to or "",
    }


def booking_context(
    booking: Booking,
    locale: str,
    zone: str,
    settings: Settings,
    audience: str,
    times: Times | None = None,
    field_types: Mapping[str, FieldType] | None = None,
) -> dict[str, Any]:
    """Everything about a booking, written for the recipient. Sensitive answers, and every answer
    for a client's own copy of the message, are left out. ``times``: the times to name, when
    not the booking's current ones; ``field_types``: the plugins' field types, by name (their
    answers written as the plugin writes them)."""
    workflow = workflow_of(booking.workflow_version)
    calendar = booking.calendar
    fallback = calendar.default_locale
    location = workflow.location
    answers = []
    field_types = field_types or {}
    if audience != "client":
        for spec in workflow.custom_fields:
            if spec.sensitive or spec.id not in booking.answers:
                continue
            answers.append(
                {
                    "label": spec.label.get(locale, fallback),
                    "value": answer_text(
                        spec, booking.answers[spec.id], locale, fallback, field_types
                    ),
                }
            )
    address = location.address.get(locale, fallback) or calendar.address or ""
    start = times.start if times is not None else booking.start_at
    end = times.end if times is not None else booking.end_at
    business_zone = calendar.timezone
    previous = times.previous if times is not None else None
    return {
        "calendar": calendar_values(calendar),
        "service": {
            "name": workflow.name.get(locale, fallback),
            "duration": human_duration(workflow.duration, locale),
        },
        "booking": {
            "start": moment_text(start, zone, locale, business_zone),
            "end": format_clock(end, zone, locale),
            "when": f"{format_when(start, zone, locale)} \u2013 {format_clock(end, zone, locale)}"
            f" ({zone_note(zone, start)})",
            "date": format_day(start.astimezone(_zone(zone)), locale),
            "time": format_clock(start, zone, locale),
            "timezone": zone,
            "state": booking.state,
            "location": address if location.type == "in_person" else "",
            "meeting_url": booking.meeting_url or location.url or "",
            "reference": reference(booking),
            "approved": False,
            "admin_url": admin_booking_url(settings, booking) if audience != "client" else "",
        },
        "client": {
            "name": booking.client.name,
            "email": booking.client.email or "",
            "phone": booking.client.phone or "",
        },
        "staff": {"name": booking.staff_member.name, "email": booking.staff_member.email},
        # In the message's language: the page then speaks it, whatever the browser says.
        "manage_url": f"{manage_url(settings, booking)}?lang={locale}",
        "booking_url": f"{settings.base_url}/{calendar.slug}/{workflow.id}",
        "answers": answers,
        "consent": consent_values(booking, zone, locale),
        "reason": "",
        "previous": {
            "start": moment_text(previous, zone, locale, business_zone) if previous else ""
        },
    }


def _add_series(
    session: Session,
    context: dict[str, Any],
    booking: Booking,
    row: Notification,
    settings: Settings,
) -> None:
    """The series' occurrences (its one confirmation lists them) and its manage link."""
    from bookwise.bookings.models import BookingSeries
    from bookwise.bookings.series import series_manage_token

    series = session.get(BookingSeries, booking.series_id)
    if series is None:
        return
    business = booking.calendar.timezone
    held = [b for b in series.occurrences if b.holds_slot]
    payload = row.payload or {}

    def listed(key: str) -> list[str]:
        starts = [datetime.fromisoformat(start) for start in payload.get(key, [])]
        return [moment_text(s, row.timezone, row.locale, business) for s in starts]

    context["series"] = {
        "occurrences": [moment_text(b.start_at, row.timezone, row.locale, business) for b in held],
        "count": len(held),
        # "Cancel the rest": the occurrences this one message tells of.
        "cancelled": listed("cancelled"),
        # The whole series approved or declined (any move made on it at once): the same.
        "changed": listed("changed") or listed("cancelled"),
    }
    if row.recipient_kind == "client":
        link = f"{settings.base_url}/manage/{series_manage_token(series)}"
        context["manage_url"] = f"{link}?lang={row.locale}"


def consent_version(booking: Booking) -> str:
    """Which consent text was agreed to: the workflow's version number and the start of the
    text's hash (``v3-1f2e3d4c``), enough to find the exact text again."""
    consent = booking.consent
    if consent is None:
        return ""
    return f"v{booking.workflow_version.number}-{consent.text_hash[:8]}"


def consent_values(booking: Booking, zone: str, locale: str) -> dict[str, str]:
    """The ``consent`` variable: what the client agreed to, as shown to them, its version, when
    (in the reader's time zone) and, once withdrawn, when; empty without consent."""
    consent = booking.consent
    if consent is None:
        return {}
    business_zone = booking.calendar.timezone
    return {
        "text": consent.text,
        "link": consent.link or "",
        "version": consent_version(booking),
        "given_at": moment_text(consent.given_at, zone, locale, business_zone),
        "withdrawn_at": moment_text(consent.withdrawn_at, zone, locale, business_zone)
        if consent.withdrawn_at is not None
        else "",
    }


def _zone(zone: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(zone)


def answer_text(
    spec: Any,
    value: Any,
    locale: str,
    fallback: str,
    field_types: Mapping[str, FieldType] | None = None,
) -> str:
    """An answer as text (for messages, the back office and exports); a plugin's field type
    writes its own (``field_types``: the enabled ones, by name)."""
    kind = (field_types or {}).get(spec.type)
    if kind is not None:
        try:
            return str(kind.export(value))
        except Exception:
            log.exception("field type %s could not write the answer %r", spec.type, spec.id)
            return str(value)
    labels = {str(o.value): o.label.get(locale, fallback) for o in spec.options}
    if isinstance(value, list):
        return ", ".join(labels.get(str(v), str(v)) for v in value)
    if isinstance(value, bool):
        return "✓" if value else "✗"
    return str(labels.get(str(value), str(value)))


def message_context(
    session: Session,
    row: Notification,
    settings: Settings,
    times: Times | None = None,
    field_types: Mapping[str, FieldType] | None = None,
) -> dict[str, Any]:
    """The template values of an outbox row; ``times``: what it names (by default the booking's
    current time and, for a reschedule, the time before it)."""
    audience = "client" if row.recipient_kind == "client" else "staff"
    if row.booking_id is not None:
        booking = session.get(Booking, row.booking_id)
        assert booking is not None
        payload = row.payload or {}
        if times is None and payload.get("previous_start"):
            times = Times(
                booking.start_at, booking.end_at, datetime.fromisoformat(payload["previous_start"])
            )
        context = booking_context(
            booking, row.locale, row.timezone, settings, audience, times, field_types
        )
        context["booking"]["approved"] = was_approved(session, booking, row.event)
        if payload.get("reason"):
            context["reason"] = payload["reason"]
        if payload.get("series") and booking.series_id is not None:
            _add_series(session, context, booking, row, settings)
        return context
    if row.event == "time-off":
        time_off = session.get(TimeOff, (row.payload or {}).get("time_off_id"))
        member = session.get(StaffMember, (row.payload or {}).get("staff_id"))
        if time_off is None or member is None:
            return {}
        return {
            "calendar": calendar_values(member.calendar),
            "staff": {"name": member.name, "email": member.email},
            "time_off": {
                "start": format_when(time_off.start_at, row.timezone, row.locale),
                "end": format_when(time_off.end_at, row.timezone, row.locale),
            },
            "reason": time_off.reason or "",
        }
    if row.event == "calendar-feed-failing":
        return _feed_failing_values(session, row, settings)
    if row.event == "waitlist_offer":
        return waitlist_offer_values(session, row, settings)
    if row.event == "waitlist_joined":
        return waitlist_joined_values(session, row, settings)
    return dict(row.payload or {})


def waitlist_url(settings: Settings, token: str) -> str:
    """A waitlist entry's public page, its manage link (its state, and "Accept" while a place
    is on offer)."""
    return f"{settings.base_url}/manage/{token}"


def waitlist_offer_values(
    session: Session, row: Notification, settings: Settings
) -> dict[str, Any]:
    """The values of a waitlist offer's message: the entry's own, never the freed booking's."""
    found = _entry_values(session, row)
    if found is None:
        return {"offer": {}}
    entry, values = found
    del values["_hold"]
    if entry.offered_start is None or entry.offer_expires_at is None:
        return {"offer": {}}
    zone = entry.calendar.timezone
    values["offer"] = {
        "start": moment_text(entry.offered_start, row.timezone, row.locale, zone),
        "expires": moment_text(entry.offer_expires_at, row.timezone, row.locale, zone),
        "accept_url": waitlist_url(settings, entry.manage_token),
    }
    return values


def waitlist_joined_values(
    session: Session, row: Notification, settings: Settings
) -> dict[str, Any]:
    """The values of the message saying a client joined a waitlist: what they wait for, how
    long a freed place would be held, and their entry's page."""
    from bookwise.bookings.waitlist import wanted_words

    found = _entry_values(session, row)
    if found is None:
        return {"waiting": {}}
    entry, values = found
    values["waiting"] = {
        "wanted": wanted_words(entry, row.timezone, row.locale),
        "hold": values.pop("_hold"),
        "page_url": waitlist_url(settings, entry.manage_token),
    }
    return values


def _entry_values(session: Session, row: Notification) -> tuple[Any, dict[str, Any]] | None:
    """A waitlist message's entry (its payload's ``waitlist_entry_id``), and the values every
    such message has: the calendar, the service (as the workflow's current version names it),
    the client; ``_hold``, the workflow's hold in words. None when the entry is gone."""
    from bookwise.bookings.models import WaitlistEntry
    from bookwise.workflows.services import current_version

    entry = session.get(WaitlistEntry, (row.payload or {}).get("waitlist_entry_id"))
    if entry is None:
        return None
    calendar = entry.calendar
    workflow = workflow_of(current_version(session, entry.service.workflow.slug))
    return entry, {
        "calendar": calendar_values(calendar),
        "service": {
            "name": workflow.name.get(row.locale, calendar.default_locale),
            "duration": human_duration(workflow.duration, row.locale),
        },
        "client": {"name": entry.client.name, "email": entry.client.email or ""},
        "_hold": human_duration(workflow.waitlist_hold, row.locale),
    }


def _feed_failing_values(session: Session, row: Notification, settings: Settings) -> dict[str, Any]:
    from bookwise.calendars.models import CalendarSource
    from bookwise.calendars.sources import translate_problem

    source = session.get(CalendarSource, (row.payload or {}).get("source_id"))
    if source is None:  # removed since: the message says what it can
        member = session.get(StaffMember, (row.payload or {}).get("staff_id"))
        return {"staff": {"name": member.name if member else ""}, "source": {}}
    member = source.staff_member
    return {
        "calendar": calendar_values(member.calendar),
        "staff": {"name": member.name, "email": member.email},
        "source": {
            "name": source.label,
            "since": format_when(source.failing_since, row.timezone, row.locale)
            if source.failing_since
            else "",
            "problem": translate_problem(source, translator(row.locale)),
            "admin_url": f"{settings.base_url}/admin/staff/{member.id}/",
        },
    }


def was_approved(session: Session, booking: Booking, event: str) -> bool:
    """Whether ``event`` (a state) was reached by staff approving the booking: a move out of
    the initial state of a workflow where bookings wait for approval (``requested`` ->
    ``confirmed``), so that staff read "approved", not "has booked"."""
    lifecycle = workflow_of(booking.workflow_version).lifecycle
    if not lifecycle.needs_approval or event == lifecycle.initial:
        return False
    found = session.scalar(
        select(BookingEvent.id)
        .where(
            BookingEvent.booking_id == booking.id,
            BookingEvent.from_state == lifecycle.initial,
            BookingEvent.to_state == event,
            BookingEvent.actor != "client",
        )
        .limit(1)
    )
    return found is not None
