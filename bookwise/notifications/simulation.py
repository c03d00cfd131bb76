"""``bookwise simulate``: every message a workflow would send for a booking, rendered, sent to no
one. Business users check their rules and wording before publishing a workflow."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bookwise.formatting import format_clock, format_day, format_when, human_duration, zone_note
from bookwise.notifications.quiet import held_until
from bookwise.notifications.rendering import (
    Rendered,
    TemplateProblem,
    file_template,
    render,
    sample_context,
)
from bookwise.workflows.language import NotificationRule, Workflow
from bookwise.workflows.lifecycle import FOLLOW_UP, REMINDER, RESCHEDULED


@dataclass(frozen=True)
class SimulatedMessage:
    when: str  # "at booking", "24h before", ...
    due: datetime | None
    event: str
    recipient: str
    channel: str
    rendered: Rendered | None
    problem: str | None = None
    held: datetime | None = None  # sent then instead of ``due``: held for quiet hours


def _context(workflow: Workflow, start: datetime, zone: str, locale: str) -> dict[str, Any]:
    context = sample_context()
    context["calendar"] = {
        "name": "Example Business",
        "address": "1 Example Street",
        "phone": "+44 20 7946 0000",
        "reply_to": "hello@example.org",
    }
    context["staff"] = {"name": "Alex Morgan", "email": "alex@example.org"}
    context["client"] = {"name": "Sam Taylor", "email": "sam@example.org", "phone": "+447700900123"}
    context["answers"] = [
        {
            "label": spec.label.get(locale),
            "value": spec.options[0].label.get(locale) if spec.options else "…",
        }
        for spec in workflow.custom_fields
        if not spec.sensitive
    ]
    end = start + workflow.duration
    context["service"] = {
        "name": workflow.name.get(locale),
        "duration": human_duration(workflow.duration, locale),
    }
    context["booking"] = dict(
        context["booking"],
        start=format_when(start, zone, locale),
        end=format_clock(end, zone, locale),
        date=format_day(start, locale),
        time=format_clock(start, zone, locale),
        timezone=zone,
        when=f"{format_when(start, zone, locale)} \u2013 {format_clock(end, zone, locale)} "
        f"({zone_note(zone, start)})",
        location=workflow.location.address.get(locale)
        if workflow.location.type == "in_person"
        else "",
        meeting_url="https://meet.example.org/room" if workflow.location.type == "online" else "",
    )
    context["previous"] = {"start": format_when(start - timedelta(days=1), zone, locale)}
    return context


def _stage(event: str, workflow: Workflow) -> str:
    lifecycle = workflow.lifecycle
    if event == lifecycle.initial:
        return "at booking"
    if event == RESCHEDULED:
        return "if it is rescheduled"
    state = lifecycle.states.get(event)
    if state is not None and state.final:
        return f"if it becomes {event}"
    return f"when it becomes {event}"


@dataclass(frozen=True)
class ScheduledMessage:
    """One message a workflow's rules send for a booking: on which event, to whom, on which
    channel, and when (``due`` for reminders and follow-ups; ``None``: when the event happens)."""

    rule: NotificationRule
    event: str
    recipient: str
    channel: str
    due: datetime | None
    when: str  # "at booking", "24h before", "when it becomes confirmed", ...
    # When it is sent instead of ``due``: held for the workflow's quiet hours (None: not held).
    held: datetime | None = None

    @property
    def sent_at(self) -> datetime | None:
        """When it goes out: ``held`` when held for quiet hours, else ``due``."""
        return self.held or self.due

    @property
    def at_booking(self) -> bool:
        """Sent as the booking is made (an entry into the initial state)."""
        return self.when == "at booking"


def message_schedule(
    workflow: Workflow, start: datetime, zone: str | None = None
) -> list[ScheduledMessage]:
    """Which messages ``workflow`` sends for a booking at ``start``, and when: the immediate ones
    in the order of the lifecycle, then the reminders and follow-ups in time order. ``simulate``
    renders them; a workflow's scenario tests compare them with what the author expects.

    With ``zone`` (the recipients'), a reminder or follow-up due inside the workflow's quiet
    hours says when it is sent instead (``held``)."""
    order = [*workflow.lifecycle.states, RESCHEDULED]
    rules = sorted(
        workflow.notifications,
        key=lambda r: (
            r.on in (REMINDER, FOLLOW_UP),
            start - r.before if r.before else start + workflow.duration + (r.after or timedelta()),
            order.index(r.on) if r.on in order else len(order),
        ),
    )
    out: list[ScheduledMessage] = []
    for rule in rules:
        if rule.on == REMINDER and rule.before is not None:
            due: datetime | None = start - rule.before
            when = f"{_span(rule.before)} before"
        elif rule.on == FOLLOW_UP and rule.after is not None:
            due = start + workflow.duration + rule.after
            when = f"{_span(rule.after)} after the end"
        else:
            due, when = None, _stage(rule.on, workflow)
        for recipient in rule.to:
            for channel in rule.channels:
                held = None
                if due is not None and zone is not None:
                    sent = held_until(due, channel, workflow.quiet_hours, zone, rule.quiet_hours)
                    held = sent if sent != due else None
                out.append(ScheduledMessage(rule, rule.on, recipient, channel, due, when, held))
    return out


def simulate(
    workflow: Workflow,
    start: datetime,
    zone: str,
    locale: str,
    template_folders: Iterable[Path],
) -> list[SimulatedMessage]:
    """The messages of ``workflow`` for a booking at ``start``, rendered, in the order of
    :func:`message_schedule`."""
    folders = list(template_folders)
    context = _context(workflow, start, zone, locale)
    out: list[SimulatedMessage] = []
    for message in message_schedule(workflow, start, zone):
        rule, recipient, channel = message.rule, message.recipient, message.channel
        when, due, held = message.when, message.due, message.held
        audience = "client" if recipient == "client" else "staff"
        parts = file_template(folders, rule.template, audience, channel, locale, "en")
        if parts is None and channel not in ("email", "sms"):
            parts = file_template(folders, rule.template, audience, "email", locale, "en")
        if parts is None:
            out.append(
                SimulatedMessage(
                    when,
                    due,
                    rule.on,
                    recipient,
                    channel,
                    None,
                    f"no template {rule.template!r} for {audience} on {channel}",
                    held,
                )
            )
            continue
        try:
            rendered = render(parts, context)
        except TemplateProblem as exc:
            out.append(
                SimulatedMessage(when, due, rule.on, recipient, channel, None, str(exc), held)
            )
            continue
        out.append(SimulatedMessage(when, due, rule.on, recipient, channel, rendered, None, held))
    return out


def _span(value: timedelta) -> str:
    from bookwise.durations import format_duration

    return format_duration(value)
