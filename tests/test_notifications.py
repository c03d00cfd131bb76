"""Notifications end to end: rules become outbox rows, the dispatcher sends them to a real SMTP
server and a real HTTP receiver on loopback, and what arrives is parsed back."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
import sqlalchemy as sa

from bookwise.bookings.models import Booking
from bookwise.bookings.services import (
    BookingRequest,
    cancel_booking,
    create_booking,
    find_service,
    reschedule_booking,
    transition_booking,
)
from bookwise.db import unit_of_work
from bookwise.notifications.delivery import DeliveryRules, Dispatcher
from bookwise.notifications.models import MessageTemplate, Notification
from bookwise.notifications.planning import plan_event
from bookwise.notifications.services import record_stop, seed_templates
from bookwise.notifications.templates import SHIPPED_TEMPLATES
from tests.conftest import SECRET, TEST_NOW, Inbox, Loaded, Receiver

PARIS = ZoneInfo("Europe/Paris")
# Times here are chosen from the instant the suite stands at: CI runs these at several.
pytestmark = pytest.mark.clock


def start_in(days: int = 3, hour: int = 10) -> datetime:
    day = TEST_NOW.astimezone(PARIS).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, tzinfo=PARIS)


def book(
    loaded: Loaded,
    start: datetime,
    sms: bool = False,
    locale: str = "en",
    now: datetime | None = None,
) -> str:
    with unit_of_work(loaded.database.sessions, write=True) as session:
        context = find_service(session, "acme", "visit")
        booking = create_booking(
            session,
            context,
            BookingRequest(
                start=start,
                staff="ana",
                locale=locale,
                timezone="Europe/Paris",
                sms_opt_in=sms,
                values={
                    "name": "Zoé Martin",
                    "email": "zoe@example.org",
                    "phone": "+33612345678",
                    "topic": "Taxes",
                    "health": "asthma",
                },
            ),
            now or TEST_NOW,
            plugins=None,
        )
        return booking.uid


def rows(loaded: Loaded) -> list[Notification]:
    with loaded.database.sessions() as session:
        return list(session.scalars(sa.select(Notification).order_by(Notification.id)))


def dispatcher(loaded: Loaded, at: datetime | None = None, **rules: Any) -> Dispatcher:
    moment = at or TEST_NOW
    return Dispatcher(
        loaded.settings,
        loaded.database,
        clock=lambda: moment,
        rules=DeliveryRules(**rules) if rules else DeliveryRules(),
    )


def invitation(message: Message) -> icalendar.Event:
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            calendar = icalendar.Calendar.from_ical(part.get_payload(decode=True))
            return calendar, calendar.walk("VEVENT")[0]
    raise AssertionError("no calendar invitation attached")


def test_a_booking_plans_its_messages(mailing: Loaded) -> None:
    start = start_in()
    book(mailing, start, sms=True)
    planned = {(r.event, r.recipient_kind, r.channel): r for r in rows(mailing)}
    assert set(planned) == {
        ("confirmed", "client", "email"),
        ("confirmed", "staff", "email"),
        ("confirmed", "address", "webhook"),
        ("reminder", "client", "email"),
        ("reminder", "client", "sms"),
        ("follow_up", "client", "email"),
    }
    assert planned[("reminder", "client", "email")].due_at == start - timedelta(hours=24)
    assert planned[("reminder", "client", "sms")].recipient == "+33612345678"
    assert planned[("follow_up", "client", "email")].due_at == start + timedelta(minutes=150)
    assert all(r.state == "pending" for r in planned.values())


def test_no_text_message_without_consent(mailing: Loaded) -> None:
    book(mailing, start_in(), sms=False)
    assert not [r for r in rows(mailing) if r.channel == "sms"]


def test_confirmation_with_invitation_over_real_smtp(mailing: Loaded, inbox: Inbox) -> None:
    uid = book(mailing, start_in(hour=11))
    handled = dispatcher(mailing).drain()
    assert handled == 3
    (client,) = inbox.to("zoe@example.org")
    (staff,) = inbox.to("ana@acme.example")
    assert client["Subject"].startswith("Confirmed: Visit on ")
    assert client["Reply-To"] == "desk@acme.example"
    assert "Acme Advice" in client["From"]
    kinds = [p.get_content_type() for p in client.walk()]
    assert "text/plain" in kinds and "text/html" in kinds
    text = next(p for p in client.walk() if p.get_content_type() == "text/plain").get_content()
    assert "https://book.acme.example/manage/" + uid in text
    assert "asthma" not in text  # the client's copy carries no answers
    staff_text = next(p for p in staff.walk() if p.get_content_type() == "text/plain")
    assert "Topic: Taxes" in staff_text.get_content()
    assert "asthma" not in staff_text.get_content()  # sensitive answers stay out of messages
    calendar, event = invitation(client)
    assert str(calendar["METHOD"]) == "REQUEST"
    assert str(event["UID"]) == f"{uid}@bookwise"
    assert int(event["SEQUENCE"]) == 0
    assert event["DTSTART"].params["TZID"] == "Europe/Paris"
    assert event.decoded("DTSTART") == start_in(hour=11)
    assert calendar.walk("VTIMEZONE"), "the event carries its time zone"
    assert "mailto:zoe@example.org" in str(event["ATTENDEE"])
    with mailing.database.sessions() as session:
        sent = session.scalars(sa.select(Notification).where(Notification.state == "sent")).all()
        assert len(sent) == 3 and all(r.sent_at and r.provider_message_id for r in sent)


def test_reschedule_and_cancel_update_the_same_event(mailing: Loaded, inbox: Inbox) -> None:
    uid = book(mailing, start_in())
    dispatcher(mailing).drain()
    with unit_of_work(mailing.database.sessions, write=True) as session:
        booking = session.scalar(sa.select(Booking).where(Booking.uid == uid))
        reschedule_booking(session, booking, start_in(hour=15), TEST_NOW, plugins=None)
    dispatcher(mailing).drain()
    moved = [m for m in inbox.to("zoe@example.org") if m["Subject"].startswith("Rescheduled")]
    assert len(moved) == 1
    calendar, event = invitation(moved[0])
    assert str(event["UID"]) == f"{uid}@bookwise" and int(event["SEQUENCE"]) == 1
    assert event.decoded("DTSTART") == start_in(hour=15)
    body = next(p for p in moved[0].walk() if p.get_content_type() == "text/plain").get_content()
    assert "10:00" in body  # the old time is named

    reminders = [r for r in rows(mailing) if r.event == "reminder"]
    assert {r.state for r in reminders if r.due_at == start_in() - timedelta(hours=24)} == {
        "withdrawn"
    }
    assert [r.state for r in reminders if r.due_at == start_in(hour=15) - timedelta(hours=24)] == [
        "pending"
    ]

    with unit_of_work(mailing.database.sessions, write=True) as session:
        booking = session.scalar(sa.select(Booking).where(Booking.uid == uid))
        cancel_booking(session, booking, TEST_NOW, reason="ill", plugins=None)
    dispatcher(mailing).drain()
    cancelled = [m for m in inbox.to("zoe@example.org") if "ancel" in m["Subject"]]
    assert len(cancelled) == 1
    calendar, event = invitation(cancelled[0])
    assert str(calendar["METHOD"]) == "CANCEL"
    assert int(event["SEQUENCE"]) == 2 and str(event["STATUS"]) == "CANCELLED"
    assert all(
        r.state == "withdrawn" for r in rows(mailing) if r.event in ("reminder", "follow_up")
    )


def test_reminders_come_due_and_late_ones_are_skipped(mailing: Loaded, inbox: Inbox) -> None:
    start = start_in()
    book(mailing, start)
    dispatcher(mailing).drain()
    inbox.messages.clear()
    assert dispatcher(mailing, start - timedelta(hours=25)).drain() == 0
    assert dispatcher(mailing, start - timedelta(hours=23)).drain() == 1
    (reminder,) = inbox.to("zoe@example.org")
    assert reminder["Subject"].startswith("Reminder")
    # The worker was down until after the start: the follow-up is still useful, no reminder.
    other = book(mailing, start_in(days=5))
    later = start_in(days=5) + timedelta(hours=3)
    dispatcher(mailing, later).drain()
    by_event = {(r.event, r.channel): r for r in rows(mailing) if r.booking_id and r.due_at > start}
    skipped = by_event[("reminder", "email")]
    assert skipped.state == "skipped" and "already started" in skipped.last_error
    assert by_event[("follow_up", "email")].state == "sent"
    assert other


def test_restart_sends_each_due_message_once(mailing: Loaded, inbox: Inbox) -> None:
    """Plan reminders; the worker stops; time passes; it starts again: each is sent once."""
    from bookwise.jobs import scheduler_for

    starts = [start_in(hour=h) for h in (10, 11, 12)]
    for start in starts:
        book(mailing, start)
    dispatcher(mailing).drain()  # the confirmations
    inbox.messages.clear()
    later = starts[-1] - timedelta(hours=23, minutes=30)  # all three reminders are due
    for _ in range(2):  # start, tick, stop: twice, as across a restart
        scheduler = scheduler_for(
            dataclasses.replace(
                mailing.settings,
                scheduler=dataclasses.replace(mailing.settings.scheduler, interval=1),
            ),
            mailing.database,
            clock=lambda: later,
        )
        scheduler.start()
        deadline = time.monotonic() + 10
        while len(inbox.messages) < 3 and time.monotonic() < deadline:
            threading.Event().wait(0.1)
        threading.Event().wait(1.2)  # let another tick run: it must find nothing
        scheduler.shutdown()
    subjects = [m["Subject"] for m in inbox.messages]
    assert len(subjects) == 3 and all(s.startswith("Reminder") for s in subjects)


def test_webhook_body_and_signature(mailing: Loaded, receiver: str) -> None:
    uid = book(mailing, start_in())
    dispatcher(mailing).drain()
    ((headers, body),) = Receiver.received
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Bookwise-Signature"] == f"sha256={expected}"
    data = json.loads(body)
    assert data["event"] == "confirmed" and data["recipient"] == "desk@acme.example"
    assert data["data"]["booking"] == uid and data["data"]["calendar"] == "acme"
    assert data["data"]["start"] == start_in().astimezone(UTC).isoformat()


def test_a_channel_that_is_not_enabled_is_skipped(mailing: Loaded) -> None:
    book(mailing, start_in(days=3), sms=True)
    dispatcher(mailing, start_in(days=3) - timedelta(hours=1)).drain()
    (sms,) = [r for r in rows(mailing) if r.channel == "sms"]
    assert sms.state == "skipped" and "no channel 'sms' is enabled" in sms.last_error


def test_stop_means_no_more_text_messages(mailing: Loaded) -> None:
    with unit_of_work(mailing.database.sessions) as session:
        record_stop(session, "+33612345678", "gateway")
    book(mailing, start_in(), sms=True)
    (sms,) = [r for r in rows(mailing) if r.channel == "sms"]
    assert sms.state == "skipped" and "STOP" in sms.last_error


def test_temporary_failures_back_off_then_give_up(mailing: Loaded, inbox: Inbox) -> None:
    book(mailing, start_in())
    inbox.refuse = 451
    now = TEST_NOW
    dispatcher(mailing, now, max_attempts=3).drain()
    failed = [r for r in rows(mailing) if r.channel == "email" and r.event == "confirmed"]
    assert {r.state for r in failed} == {"failed"} and {r.attempts for r in failed} == {1}
    assert all(r.due_at == now + timedelta(minutes=1) for r in failed)
    assert "451" in failed[0].last_error
    dispatcher(mailing, now + timedelta(minutes=2), max_attempts=3).drain()
    dispatcher(mailing, now + timedelta(minutes=10), max_attempts=3).drain()
    dead = [r for r in rows(mailing) if r.channel == "email" and r.event == "confirmed"]
    assert {r.state for r in dead} == {"dead"} and {r.attempts for r in dead} == {3}


def test_a_permanent_refusal_is_dead_at_once(mailing: Loaded, inbox: Inbox) -> None:
    book(mailing, start_in())
    inbox.refuse = 550
    dispatcher(mailing).drain()
    dead = [r for r in rows(mailing) if r.channel == "email" and r.event == "confirmed"]
    assert {(r.state, r.attempts) for r in dead} == {("dead", 1)}


def test_the_mail_server_being_down_is_a_retry(mailing: Loaded) -> None:
    down = dataclasses.replace(
        mailing.settings, mail=dataclasses.replace(mailing.settings.mail, port=1)
    )
    book(mailing, start_in())
    Dispatcher(down, mailing.database, clock=lambda: TEST_NOW).drain()
    emails = [r for r in rows(mailing) if r.channel == "email" and r.event == "confirmed"]
    assert {r.state for r in emails} == {"failed"}
    assert "cannot reach the mail server" in emails[0].last_error


def test_messages_in_the_clients_language(mailing: Loaded, inbox: Inbox) -> None:
    book(mailing, start_in(), locale="fr")
    dispatcher(mailing).drain()
    (client,) = inbox.to("zoe@example.org")
    assert client["Subject"].startswith("Rendez-vous confirmé : Visite, ")
    text = next(p for p in client.walk() if p.get_content_type() == "text/plain").get_content()
    assert "1 rue Principale" in text
    (staff,) = inbox.to("ana@acme.example")
    assert staff["Subject"].startswith("New booking")  # the calendar's language for staff


def test_an_edited_template_is_used_and_a_broken_one_falls_back(
    mailing: Loaded, inbox: Inbox
) -> None:
    with unit_of_work(mailing.database.sessions) as session:
        seed_templates(session, [SHIPPED_TEMPLATES])
        row = session.scalar(
            sa.select(MessageTemplate).where(
                MessageTemplate.name == "confirmed",
                MessageTemplate.audience == "client",
                MessageTemplate.channel == "email",
                MessageTemplate.locale == "en",
            )
        )
        row.subject, row.is_default = "See you soon at {{ calendar.name }}", False
    book(mailing, start_in())
    dispatcher(mailing).drain()
    assert inbox.to("zoe@example.org")[0]["Subject"] == "See you soon at Acme Advice"
    with unit_of_work(mailing.database.sessions) as session:
        row = session.scalar(
            sa.select(MessageTemplate).where(
                MessageTemplate.name == "confirmed",
                MessageTemplate.audience == "client",
                MessageTemplate.channel == "email",
                MessageTemplate.locale == "en",
            )
        )
        row.body_text = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    inbox.messages.clear()
    book(mailing, start_in(hour=14))
    dispatcher(mailing).drain()
    (client,) = inbox.to("zoe@example.org")
    assert client["Subject"].startswith("Confirmed:")  # the shipped default
    note = [r for r in rows(mailing) if r.recipient == "zoe@example.org" and r.state == "sent"][-1]
    assert "the edited template failed" in note.last_error and "unsafe" in note.last_error


def test_seeding_keeps_edits(mailing: Loaded) -> None:
    with unit_of_work(mailing.database.sessions) as session:
        added = seed_templates(session, [SHIPPED_TEMPLATES])
        assert added > 100
        edited = session.scalar(
            sa.select(MessageTemplate).where(
                MessageTemplate.name == "reminder", MessageTemplate.locale == "de"
            )
        )
        edited.body_text, edited.is_default = "Bis bald!", False
    with unit_of_work(mailing.database.sessions) as session:
        assert seed_templates(session, [SHIPPED_TEMPLATES]) == 0
        kept = session.scalar(
            sa.select(MessageTemplate).where(
                MessageTemplate.name == "reminder",
                MessageTemplate.locale == "de",
                MessageTemplate.id == edited.id,
            )
        )
        assert kept.body_text == "Bis bald!"


def test_a_staff_decision_reaches_the_client(mailing: Loaded, inbox: Inbox) -> None:
    """hr-like approval: review workflow sends nothing (notifications: []), visit confirms;
    here a no-show by staff plans no message the workflow does not ask for."""
    uid = book(mailing, start_in())
    with unit_of_work(mailing.database.sessions, write=True) as session:
        booking = session.scalar(sa.select(Booking).where(Booking.uid == uid))
        transition_booking(
            session, booking, "no_show", "staff", "staff:ana", TEST_NOW, plugins=None
        )
    assert not [r for r in rows(mailing) if r.event == "no_show"]
    assert all(r.state == "withdrawn" for r in rows(mailing) if r.event == "reminder")


def test_time_off_tells_the_staff_member(mailing: Loaded, inbox: Inbox) -> None:
    from bookwise.calendars.models import StaffMember, TimeOff
    from bookwise.notifications.planning import plan_time_off_notice

    with unit_of_work(mailing.database.sessions) as session:
        ana = session.scalar(sa.select(StaffMember).where(StaffMember.slug == "ana"))
        off = TimeOff(
            staff_id=ana.id,
            start_at=start_in(days=10, hour=9),
            end_at=start_in(days=12, hour=18),
            reason="Training in Lyon",
        )
        session.add(off)
        session.flush()
        plan_time_off_notice(session, off, TEST_NOW)
    dispatcher(mailing).drain()
    (notice,) = inbox.to("ana@acme.example")
    body = next(p for p in notice.walk() if p.get_content_type() == "text/plain").get_content()
    assert "Training in Lyon" in body


# --- what a booking writes, and in how many statements --------------------------------------


def test_a_booking_plans_its_messages_once_in_ten_statements(mailing: Loaded) -> None:
    """A booking of the pool (round robin) runs at most ten statements, its outbox rows written
    in one; planning its event again in the same transaction adds nothing (a booking new in the
    transaction knows what it planned, without a query). On PostgreSQL one of them locks the
    member it gets (bookwise.bookings.services._claim), on SQLite the BEGIN IMMEDIATE does."""
    engine = mailing.database.engine
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.startswith(("BEGIN", "SAVEPOINT", "RELEASE")):
            statements.append(" ".join(statement.split()))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        with unit_of_work(mailing.database.sessions, write=True) as session:
            context = find_service(session, "acme", "visit")
            booking = create_booking(
                session,
                context,
                BookingRequest(
                    start=start_in(),
                    values={"name": "Zoé Martin", "email": "zoe@example.org", "topic": "Taxes"},
                ),
                TEST_NOW,
                plugins=None,
            )
            made = list(statements)
            assert plan_event(session, booking, context.workflow, booking.state, TEST_NOW) == 0
            session.flush()
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert len(made) <= 10, "\n".join(made)
    assert sum(s.startswith("INSERT INTO outbox") for s in made) == 1, made
    assert statements == made  # planning again read and wrote nothing
    with mailing.database.sessions() as session:
        rows = session.scalars(sa.select(Notification).where(Notification.booking_id == booking.id))
        keys = [row.idempotency_key for row in rows]
    assert keys and len(keys) == len(set(keys))
