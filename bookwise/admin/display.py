"""How the back office shows bookings, workflows and states in the user's language."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import url_for
from flask_babel import lazy_gettext
from sqlalchemy import ColumnElement, Select, and_, false, or_, select
from sqlalchemy.orm import Session, selectinload

from bookwise.bookings.messages import state_name
from bookwise.bookings.models import Booking
from bookwise.formatting import format_clock, format_when
from bookwise.i18n import gettext
from bookwise.web import instance
from bookwise.workflows.language import Text, Workflow
from bookwise.workflows.models import WorkflowVersion
from bookwise.workflows.services import workflow_of

# A message's event, as the scenario editor and the message lists name it.
EVENT_LABELS = {
    "requested": lazy_gettext("Requested (waiting for approval)"),
    "confirmed": lazy_gettext("Confirmed"),
    "declined": lazy_gettext("Declined"),
    "cancelled": lazy_gettext("Cancelled"),
    "completed": lazy_gettext("Completed"),
    "no_show": lazy_gettext("No-show"),
    "rescheduled": lazy_gettext("Moved to another time"),
    "reminder": lazy_gettext("Reminder before the start"),
    "follow_up": lazy_gettext("Follow-up after the end"),
}
# Channels as a business user names them (a plugin's own channel: its class's ``label``, or its
# name); the order the editor offers them.
CHANNEL_LABELS = {
    "email": lazy_gettext("E-mail"),
    "sms": lazy_gettext("Text message (SMS)"),
    "chat": lazy_gettext("Team chat"),
    "webhook": lazy_gettext("Another system (webhook)"),
    "log": lazy_gettext("Log file only (for testing)"),
}


def event_label(name: str) -> str:
    """A message's event in words ("Reminder before the start"), else its name."""
    label = EVENT_LABELS.get(name)
    return str(label) if label is not None else name


def channel_name(name: str) -> str:
    """A channel in words ("Text message (SMS)"); a plugin's by its label, or its name."""
    label = CHANNEL_LABELS.get(name)
    if label is not None:
        return str(label)
    return instance().database.plugins.channel_label(name) or name


def outbox_state_name(state: str) -> str:
    """Where a message stands, in words."""
    names = {
        "pending": gettext("waiting"),
        "sending": gettext("sending"),
        "sent": gettext("sent"),
        "failed": gettext("failed, will retry"),
        "dead": gettext("not delivered"),
        "skipped": gettext("skipped"),
        "withdrawn": gettext("withdrawn"),
    }
    return names.get(state, state)


def recipient_name(recipient: str) -> str:
    """A message's recipient as stored: an address, or a role in words."""
    roles = {
        "client": gettext("The client"),
        "staff": gettext("The staff member"),
        "calendar_admins": gettext("The calendar's administrators"),
    }
    return roles.get(recipient, recipient)


def text(value: Any, locale: str, fallback: str | None = None) -> str:
    """A workflow text (a string or a map of languages) in ``locale``."""
    return Text.of(value).get(locale, fallback)


def workflow_name(workflow: Workflow, locale: str, fallback: str | None = None) -> str:
    return workflow.name.get(locale, fallback) or workflow.id


def state_label(workflow: Workflow, state: str, locale: str) -> str:
    spec = workflow.lifecycle.states.get(state)
    return state_name(spec.label if spec else {}, state, locale, gettext)


def transition_label(workflow: Workflow, name: str, locale: str) -> str:
    """The workflow's name for a move ("Approve"), else ours, else the id made readable."""
    for transition in workflow.lifecycle.transitions:
        if transition.name == name and transition.label:
            return Text.of(dict(transition.label)).get(locale)
    return action_name(name)


def action_name(name: str) -> str:
    """Our words for a move of the usual lifecycles, else its identifier made readable."""
    ours = {
        "approve": gettext("Approve"),
        "decline": gettext("Decline"),
        "cancel": gettext("Cancel booking"),
        "complete": gettext("Mark as completed"),
        "no_show": gettext("Mark as no-show"),
    }
    return ours.get(name, name.replace("_", " ").capitalize())


def booking_row(booking: Booking, locale: str) -> dict[str, Any]:
    """A booking as a line of a list: when (in the business's zone), what, who, state."""
    workflow = workflow_of(booking.workflow_version)
    calendar = booking.calendar
    zone = calendar.timezone
    return {
        "id": booking.id,
        "when": format_when(booking.start_at, zone, locale),
        "time": format_clock(booking.start_at, zone, locale),
        "until": format_clock(booking.end_at, zone, locale),
        "service": workflow_name(workflow, locale, calendar.default_locale),
        "client": booking.client.name if booking.client.erased_at is None else gettext("(erased)"),
        "email": booking.client.email or "",
        "phone": booking.client.phone or "",
        "staff": booking.staff_member.name,
        "state": booking.state,
        "state_label": state_label(workflow, booking.state, locale),
        "active": booking.holds_slot,
        # Struck through in lists: what did not and will not take place.
        "struck": not booking.holds_slot and booking.state in ("cancelled", "declined"),
        "url": url_for("bookings.details", booking_id=booking.id),
    }


def listed_bookings() -> Select[Booking]:
    """``select(Booking)`` with what a line of a list shows, read in a few queries, not one per
    line."""
    return select(Booking).options(
        selectinload(Booking.client),
        selectinload(Booking.staff_member),
        selectinload(Booking.workflow_version),
        selectinload(Booking.calendar),
    )


def booking_rows(bookings: Iterable[Booking], locale: str) -> list[dict[str, Any]]:
    return [booking_row(b, locale) for b in bookings]


def awaiting_approval(session: Session, where: ColumnElement[bool]) -> ColumnElement[bool]:
    """Bookings (among ``where``) still in the first state of a workflow that asks staff to
    approve: one query for the versions concerned, then a plain filter."""
    version_ids = select(Booking.workflow_version_id).where(where).distinct()
    versions = session.scalars(select(WorkflowVersion).where(WorkflowVersion.id.in_(version_ids)))
    pairs = []
    for version in versions:
        lifecycle = workflow_of(version).lifecycle
        if lifecycle.needs_approval:
            pairs.append(
                and_(Booking.workflow_version_id == version.id, Booking.state == lifecycle.initial)
            )
    return or_(*pairs) if pairs else false()


def message_words(message: Any) -> dict[str, str]:
    """A message of the outbox in words: its event, recipient, channel and state."""
    return {
        "event": event_label(message.event),
        "recipient": recipient_name(message.recipient),
        "channel": channel_name(message.channel),
        "state": outbox_state_name(message.state),
    }
