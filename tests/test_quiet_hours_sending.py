"""Quiet hours where messages are planned and where they are sent: a real database, a real
SMTP server on loopback, the real worker, fixed clocks."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from bookwise.bookings.models import Booking
from bookwise.calendars.models import Calendar
from bookwise.db import unit_of_work
from bookwise.notifications.planning import plan_timed
from bookwise.notifications.quiet import QuietHours, minute_of
from bookwise.workflows.language import NotificationRule
from bookwise.workflows.services import workflow_of
from tests.conftest import TEST_NOW, Inbox, Loaded
from tests.test_notifications import book, dispatcher, rows, start_in

PARIS = ZoneInfo("Europe/Paris")
NIGHT = QuietHours(minute_of("21:00"), minute_of("08:00"))
pytestmark = pytest.mark.clock


def set_calendar_quiet_hours(loaded: Loaded, spec: dict[str, Any] | None) -> None:
    with unit_of_work(loaded.database.sessions, write=True) as session:
        calendar = session.scalar(sa.select(Calendar).where(Calendar.slug == "acme"))
        assert calendar is not None
        calendar.quiet_hours = spec


def at(day: datetime, clock: str) -> datetime:
    hours, minutes = (int(p) for p in clock.split(":"))
    return day.replace(hour=hours, minute=minutes)


def local_text(moment: datetime) -> str:
    return moment.astimezone(PARIS).strftime("%Y-%m-%d %H:%M")


def replan(loaded: Loaded, uid: str, **changes: Any) -> None:
    """Plan the booking's reminders again under its workflow with ``changes`` (its timed rows
    planned at booking are removed first)."""
    with unit_of_work(loaded.database.sessions, write=True) as session:
        booking = session.scalar(sa.select(Booking).where(Booking.uid == uid))
        assert booking is not None
        session.execute(
            sa.delete(sa.table("outbox", sa.column("booking_id"), sa.column("event"))).where(
                sa.column("booking_id") == booking.id,
                sa.column("event").in_(("reminder", "follow_up")),
            )
        )
        workflow = dataclasses.replace(workflow_of(booking.workflow_version), **changes)
        plan_timed(session, booking, workflow, TEST_NOW)


def test_a_reminder_sms_due_at_three_is_due_at_eight_and_email_is_unchanged(
    mailing: Loaded,
) -> None:
    start = start_in(days=3, hour=10)
    uid = book(mailing, start, sms=True)
    rule = NotificationRule(
        on="reminder", to=("client",), channels=("sms", "email"), before=timedelta(hours=7)
    )
    replan(mailing, uid, quiet_hours=NIGHT, notifications=(rule,))
    planned = {r.channel: r for r in rows(mailing) if r.event == "reminder"}
    assert local_text(planned["sms"].due_at) == local_text(at(start, "08:00"))
    held_from = datetime.fromisoformat(planned["sms"].payload["held"]["due"])
    assert held_from == start - timedelta(hours=7)
    assert planned["email"].due_at == start - timedelta(hours=7)  # 03:00: e-mail is exempt
    assert "held" not in planned["email"].payload


def test_before_sends_it_the_evening_before(mailing: Loaded) -> None:
    start = start_in(days=3, hour=10)
    uid = book(mailing, start, sms=True)
    rule = NotificationRule(
        on="reminder",
        to=("client",),
        channels=("sms",),
        before=timedelta(hours=8),
        quiet_hours="before",
    )
    replan(mailing, uid, quiet_hours=NIGHT, notifications=(rule,))
    (sms,) = [r for r in rows(mailing) if r.event == "reminder"]
    assert local_text(sms.due_at) == local_text(at(start - timedelta(days=1), "21:00"))


def test_ignore_is_never_held_and_the_workflow_wins_over_the_calendar(mailing: Loaded) -> None:
    set_calendar_quiet_hours(mailing, {"from": "21:00", "to": "08:00"})
    start = start_in(days=3, hour=10)
    uid = book(mailing, start, sms=True)
    urgent = NotificationRule(
        on="reminder", to=("client",), channels=("sms",), before=timedelta(hours=7)
    )
    replan(mailing, uid, notifications=(dataclasses.replace(urgent, quiet_hours="ignore"),))
    (sms,) = [r for r in rows(mailing) if r.event == "reminder"]
    assert sms.due_at == start - timedelta(hours=7)
    # The calendar's quiet hours hold it; the workflow's own (02:00-04:00) win over them.
    replan(mailing, uid, notifications=(urgent,))
    (sms,) = [r for r in rows(mailing) if r.event == "reminder"]
    assert local_text(sms.due_at) == local_text(at(start, "08:00"))
    replan(
        mailing,
        uid,
        notifications=(urgent,),
        quiet_hours=QuietHours(minute_of("02:00"), minute_of("04:00")),
    )
    (sms,) = [r for r in rows(mailing) if r.event == "reminder"]
    assert local_text(sms.due_at) == local_text(at(start, "04:00"))


def test_a_booking_made_at_half_past_eleven_is_confirmed_at_eight(
    mailing: Loaded, inbox: Inbox
) -> None:
    set_calendar_quiet_hours(mailing, {"from": "21:00", "to": "08:00", "email": True})
    evening = at(start_in(days=1), "23:30")
    book(mailing, start_in(days=3), now=evening)
    confirmations = [r for r in rows(mailing) if r.event == "confirmed"]
    by_channel = {(r.recipient_kind, r.channel): r for r in confirmations}
    morning = at(start_in(days=2), "08:00")
    assert by_channel[("client", "email")].due_at == morning
    assert by_channel[("staff", "email")].due_at == morning
    assert by_channel[("address", "webhook")].due_at == evening  # a machine: never held
    assert dispatcher(mailing, evening + timedelta(minutes=1)).drain() == 1
    assert inbox.messages == []
    assert dispatcher(mailing, morning - timedelta(minutes=1)).drain() == 0
    assert dispatcher(mailing, morning).drain() == 2
    assert sorted(m["To"] for m in inbox.messages) == ["ana@acme.example", "zoe@example.org"]


def test_a_worker_that_was_down_does_not_send_at_three(mailing: Loaded, inbox: Inbox) -> None:
    start = start_in(days=3, hour=10)
    book(mailing, start)
    dispatcher(mailing).drain()  # the confirmations, whatever the hour of the suite
    inbox.messages.clear()
    # The quiet hours come after the reminder was planned (due 10:00 the day before).
    set_calendar_quiet_hours(mailing, {"from": "21:00", "to": "08:00", "email": True})
    three = at(start, "03:00")
    assert dispatcher(mailing, three).drain() == 1
    assert inbox.messages == []
    (reminder,) = [r for r in rows(mailing) if r.event == "reminder" and r.channel == "email"]
    assert reminder.state == "pending" and reminder.attempts == 0
    assert reminder.due_at == at(start, "08:00")
    assert datetime.fromisoformat(reminder.payload["held"]["due"]) == start - timedelta(hours=24)
    assert dispatcher(mailing, at(start, "07:59")).drain() == 0
    assert dispatcher(mailing, at(start, "08:00")).drain() == 1
    (sent,) = inbox.to("zoe@example.org")
    assert sent["Subject"].startswith("Reminder")


def test_email_is_sent_at_night_unless_it_waits_too(mailing: Loaded, inbox: Inbox) -> None:
    start = start_in(days=3, hour=10)
    book(mailing, start)
    dispatcher(mailing).drain()
    inbox.messages.clear()
    set_calendar_quiet_hours(mailing, {"from": "21:00", "to": "08:00"})
    assert dispatcher(mailing, at(start, "03:00")).drain() == 1
    (sent,) = inbox.to("zoe@example.org")
    assert sent["Subject"].startswith("Reminder")


def test_a_message_planned_for_the_evening_before_goes_out_a_tick_late(
    mailing: Loaded, inbox: Inbox
) -> None:
    start = start_in(days=3, hour=10)
    uid = book(mailing, start)
    dispatcher(mailing).drain()
    inbox.messages.clear()
    set_calendar_quiet_hours(mailing, {"from": "21:00", "to": "08:00", "email": True})
    rule = NotificationRule(
        on="reminder",
        to=("client",),
        channels=("email",),
        before=timedelta(hours=8),
        template="reminder",
        quiet_hours="before",
    )
    replan(mailing, uid, notifications=(rule,))
    (planned,) = [r for r in rows(mailing) if r.event == "reminder"]
    evening = at(start - timedelta(days=1), "21:00")
    assert planned.due_at == evening
    assert dispatcher(mailing, evening + timedelta(seconds=30)).drain() == 1
    (row,) = [r for r in rows(mailing) if r.event == "reminder"]
    assert row.state == "sent", (row.state, row.last_error, row.due_at)
    (sent,) = inbox.to("zoe@example.org")
    assert sent["Subject"].startswith("Reminder")
