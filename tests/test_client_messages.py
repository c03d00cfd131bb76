"""What clients (and staff) are told: the messages that arrive over a real SMTP server on
loopback, read back with their calendar files.

- Changes made between two dispatch cycles: nobody is told about a time they never heard of.
- A booking awaiting approval is a TENTATIVE event until staff approve it.
- A client in another time zone than the business's reads every time with its zone.
- Staff get a link to the booking in the back office, and are told about an approval as such.

No test reads the wall clock: bookings are made at ``now`` (the suite's instant) and the
dispatcher's clock is a fixed instant.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
import sqlalchemy as sa
from ruamel.yaml import YAML

from bookwise.bookings.ics import event_status
from bookwise.bookings.models import Booking
from bookwise.bookings.services import (
    BookingRequest,
    cancel_booking,
    create_booking,
    find_service,
    reschedule_booking,
    transition_booking,
)
from bookwise.config import load_settings
from bookwise.database import open_database
from bookwise.db import unit_of_work
from bookwise.formatting import format_clock, format_when, zone_note
from bookwise.notifications.channels import Channel, EmailChannel, OutgoingMessage
from bookwise.notifications.delivery import Dispatcher
from bookwise.notifications.models import Notification
from tests.conftest import SCENARIO, Inbox, Loaded, base_config, write_config

PARIS = ZoneInfo("Europe/Paris")
TORONTO = "America/Toronto"
CLIENT = "zoe@example.org"
STAFF = "ana@acme.example"

# A workflow whose bookings wait for staff approval, with messages on each step.
INTERVIEW = """
id: interview
name: {en: Interview, fr: Entretien}
duration: 45m
slot_step: 15m
booking_window: {min_notice: 24h, max_ahead: 30d}
cancellation: {allowed: true, min_notice: 24h}
staff: {tags: [consultant], client_chooses: true}
location: {type: in_person, address: {en: 1 Main Street, fr: 1 rue Principale}}
fields:
  - include: contact
states:
  requested: {initial: true}
  confirmed: {}
  declined: {final: true}
  cancelled: {final: true}
transitions:
  - {name: approve, from: requested, to: confirmed, by: staff}
  - {name: decline, from: requested, to: declined, by: staff}
  - {name: cancel, from: [requested, confirmed], to: cancelled, by: [client, staff]}
notifications:
  - {on: requested, to: [client, staff], channel: email}
  - {on: confirmed, to: [client, staff], channel: email}
  - {on: declined, to: client, channel: email}
  - {on: cancelled, to: [client, staff], channel: email}
"""


@pytest.fixture
def office(inbox: Inbox, tmp_path: Path, database_url: str) -> Iterator[Loaded]:
    """The test scenario plus the approval workflow ``interview``, e-mail to the loopback SMTP
    server, at https://book.acme.example."""
    workflows = tmp_path / "workflows"
    shutil.copytree(SCENARIO / "workflows", workflows)
    (workflows / "interview.yaml").write_text(INTERVIEW, encoding="utf-8")
    yaml = YAML()
    calendars = yaml.load((SCENARIO / "calendars.yaml").read_text(encoding="utf-8"))
    acme = next(c for c in calendars["calendars"] if c["slug"] == "acme")
    acme["services"].append({"workflow": "interview"})
    calendar_file = tmp_path / "calendars.yaml"
    with calendar_file.open("w", encoding="utf-8") as handle:
        yaml.dump(calendars, handle)
    values = base_config(tmp_path, database_url) | {
        "workflows": str(workflows),
        "mail": {
            "host": "127.0.0.1",
            "port": inbox.port,
            "sender": "Acme <bookings@acme.example>",
            "timeout": 5,
        },
        "plugins": {"enabled": []},
        "base_url": "https://book.acme.example",
    }
    settings = load_settings(write_config(tmp_path / "office.yaml", values), environ={})
    database = open_database(settings)
    from bookwise import instance

    instance.load_calendar_files(settings, database, [calendar_file])
    yield Loaded(settings, database)
    database.engine.dispose()


# --- helpers ---------------------------------------------------------------------------------


def day_at(now: datetime, hour: int, days: int = 3) -> datetime:
    """``hour`` o'clock in Paris, ``days`` calendar days after the day of ``now`` in Paris: at
    least two days ahead, inside the calendar's hours (8 to 20 every day) and well outside any
    notice the workflows ask for, whatever the instant the suite stands at."""
    day = now.astimezone(PARIS).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, tzinfo=PARIS)


def book(
    loaded: Loaded,
    service: str,
    start: datetime,
    now: datetime,
    zone: str = "Europe/Paris",
    locale: str = "en",
    sms: bool = False,
) -> str:
    with unit_of_work(loaded.database.sessions, write=True) as session:
        context = find_service(session, "acme", service)
        values: dict[str, Any] = {"name": "Zoé Martin", "email": CLIENT, "phone": "+33612345678"}
        if service == "visit":
            values["topic"] = "Taxes"
        booking = create_booking(
            session,
            context,
            BookingRequest(
                start=start,
                staff="ana",
                locale=locale,
                timezone=zone,
                sms_opt_in=sms,
                values=values,
            ),
            now,
            plugins=None,
        )
        return booking.uid


def change(loaded: Loaded, uid: str, action: Any) -> None:
    with unit_of_work(loaded.database.sessions, write=True) as session:
        booking = session.scalar(sa.select(Booking).where(Booking.uid == uid))
        assert booking is not None
        action(session, booking)


def booking_id(loaded: Loaded, uid: str) -> int:
    with loaded.database.sessions() as session:
        found = session.scalar(sa.select(Booking.id).where(Booking.uid == uid))
        assert found is not None
        return found


def send_due(loaded: Loaded, at: datetime, channels: dict[str, Channel] | None = None) -> int:
    """Deliver what is due at ``at`` (a fixed clock)."""
    return Dispatcher(loaded.settings, loaded.database, channels=channels, clock=lambda: at).drain()


def outbox(loaded: Loaded) -> list[Notification]:
    with loaded.database.sessions() as session:
        return list(session.scalars(sa.select(Notification).order_by(Notification.id)))


def spaced(text: str) -> str:
    """``text`` with every run of spaces as one plain space: a subject is one line, so Babel's
    narrow no-break space ("10:00\u202fAM") arrives in it as a plain space."""
    return " ".join(text.split())


def subject(message: Message) -> str:
    return spaced(str(message["Subject"]))


def text_of(message: Message) -> str:
    part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    return "\n".join(spaced(line) for line in str(part.get_content()).splitlines())


def invitation(message: Message) -> tuple[icalendar.Calendar, icalendar.Event]:
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            calendar = icalendar.Calendar.from_ical(part.get_payload(decode=True))
            return calendar, calendar.walk("VEVENT")[0]
    raise AssertionError(f"no calendar file in {message['Subject']!r}")


def has_invitation(message: Message) -> bool:
    return any(p.get_content_type() == "text/calendar" for p in message.walk())


def when(moment: datetime, locale: str = "en", zone: str = "Europe/Paris") -> str:
    return spaced(format_when(moment, zone, locale))


def clock_time(moment: datetime) -> str:
    return spaced(format_clock(moment, "Europe/Paris", "en"))


class Recorder(Channel):
    """A text-message channel that keeps what it is given (a plugin's channel, not a mock)."""

    name = "sms"

    def __init__(self) -> None:
        self.sent: list[OutgoingMessage] = []

    def send(self, message: OutgoingMessage) -> str:
        self.sent.append(message)
        return f"sms-{len(self.sent)}"


# --- 1. changes between two dispatch cycles ------------------------------------------------------


def test_reschedule_twice_then_cancel_names_the_time_the_client_knew(
    mailing: Loaded, inbox: Inbox, now: datetime
) -> None:
    first, second, third = day_at(now, 10), day_at(now, 15), day_at(now, 17)
    uid = book(mailing, "visit", first, now)
    send_due(mailing, now)
    (confirmation,) = inbox.to(CLIENT)
    assert int(invitation(confirmation)[1]["SEQUENCE"]) == 0
    inbox.messages.clear()

    change(mailing, uid, lambda s, b: reschedule_booking(s, b, second, now, plugins=None))
    change(mailing, uid, lambda s, b: reschedule_booking(s, b, third, now, plugins=None))
    change(mailing, uid, lambda s, b: cancel_booking(s, b, now, reason="ill", plugins=None))
    send_due(mailing, now)

    # One message: the booking the client has (at the first time) is cancelled. The two moves
    # they never heard of are not mentioned, and no moved-then-cancelled pair arrives.
    (cancelled,) = inbox.to(CLIENT)
    assert subject(cancelled) == f"Cancelled: Visit on {when(first)}"
    body = text_of(cancelled)
    assert when(first) in body
    for unknown in (second, third):
        assert clock_time(unknown) not in body + subject(cancelled)
    calendar, event = invitation(cancelled)
    assert str(calendar["METHOD"]) == "CANCEL" and str(event["STATUS"]) == "CANCELLED"
    assert str(event["UID"]) == f"{uid}@bookwise"
    assert int(event["SEQUENCE"]) == 3  # above every version the client's calendar may hold
    assert event.decoded("DTSTART") == first  # the event they have
    assert event.decoded("DTEND") == first + timedelta(minutes=30)

    # Staff were told about the first time too; their message names it.
    (staff,) = inbox.to(STAFF)
    assert when(first) in subject(staff)
    skipped = [r for r in outbox(mailing) if r.event == "rescheduled"]
    assert {r.state for r in skipped} == {"skipped"}
    assert all("no longer takes place" in (r.last_error or "") for r in skipped)


def test_two_reschedules_in_one_cycle_make_one_message_from_the_known_time(
    mailing: Loaded, inbox: Inbox, now: datetime
) -> None:
    first, second, third = day_at(now, 10), day_at(now, 15), day_at(now, 17)
    uid = book(mailing, "visit", first, now)
    send_due(mailing, now)
    inbox.messages.clear()

    change(mailing, uid, lambda s, b: reschedule_booking(s, b, second, now, plugins=None))
    change(mailing, uid, lambda s, b: reschedule_booking(s, b, third, now, plugins=None))
    send_due(mailing, now)

    (moved,) = inbox.to(CLIENT)
    body = text_of(moved)
    assert f"Previous time: {when(first)}" in body
    assert f"New time: {when(third)}" in body
    assert clock_time(second) not in body
    calendar, event = invitation(moved)
    assert str(calendar["METHOD"]) == "REQUEST"
    assert int(event["SEQUENCE"]) == 2 and event.decoded("DTSTART") == third

    # A later cancellation starts from what that message said.
    inbox.messages.clear()
    change(mailing, uid, lambda s, b: cancel_booking(s, b, now, plugins=None))
    send_due(mailing, now)
    (cancelled,) = inbox.to(CLIENT)
    assert when(third) in subject(cancelled)
    event = invitation(cancelled)[1]
    assert int(event["SEQUENCE"]) == 3 and event.decoded("DTSTART") == third


def test_a_booking_changed_before_any_message_went_out(
    mailing: Loaded, inbox: Inbox, now: datetime
) -> None:
    """Booked, moved and cancelled before the worker ran: the confirmation and the move are not
    sent (no longer true), and the cancellation names the time the client booked."""
    first, second = day_at(now, 10), day_at(now, 15)
    uid = book(mailing, "visit", first, now)
    change(mailing, uid, lambda s, b: reschedule_booking(s, b, second, now, plugins=None))
    change(mailing, uid, lambda s, b: cancel_booking(s, b, now, plugins=None))
    send_due(mailing, now)

    (cancelled,) = inbox.to(CLIENT)
    assert subject(cancelled) == f"Cancelled: Visit on {when(first)}"
    assert clock_time(second) not in text_of(cancelled)
    event = invitation(cancelled)[1]
    assert event.decoded("DTSTART") == first and int(event["SEQUENCE"]) == 2


def test_booked_then_moved_before_any_message_is_one_confirmation(
    mailing: Loaded, inbox: Inbox, now: datetime
) -> None:
    first, second = day_at(now, 10), day_at(now, 15)
    uid = book(mailing, "visit", first, now)
    change(mailing, uid, lambda s, b: reschedule_booking(s, b, second, now, plugins=None))
    send_due(mailing, now)

    (confirmation,) = inbox.to(CLIENT)
    assert subject(confirmation) == f"Confirmed: Visit on {when(second)}"
    event = invitation(confirmation)[1]
    assert event.decoded("DTSTART") == second and int(event["SEQUENCE"]) == 1
    (moved,) = [r for r in outbox(mailing) if r.event == "rescheduled" and r.channel == "email"][:1]
    assert moved.state == "skipped" and "already told" in (moved.last_error or "")


# --- 2. awaiting approval -----------------------------------------------------------------------


def test_a_request_is_tentative_until_approved(
    office: Loaded, inbox: Inbox, now: datetime, clock: Any
) -> None:
    start = day_at(now, 11)
    uid = book(office, "interview", start, now)
    send_due(office, now)

    (request,) = inbox.to(CLIENT)
    assert subject(request).startswith("Request received")
    calendar, event = invitation(request)
    assert str(calendar["METHOD"]) == "REQUEST"
    assert str(event["STATUS"]) == "TENTATIVE" and int(event["SEQUENCE"]) == 0
    assert event.decoded("DTSTART") == start

    inbox.messages.clear()
    change(
        office,
        uid,
        lambda s, b: transition_booking(s, b, "approve", "staff", "staff:1", now, plugins=None),
    )
    send_due(office, now)
    (confirmed,) = inbox.to(CLIENT)
    assert subject(confirmed).startswith("Confirmed")
    calendar, event = invitation(confirmed)
    assert str(event["STATUS"]) == "CONFIRMED" and int(event["SEQUENCE"]) == 1
    assert str(event["UID"]) == f"{uid}@bookwise"


def test_staff_are_asked_to_approve_with_a_link_to_the_booking(
    office: Loaded, inbox: Inbox, now: datetime, clock: Any
) -> None:
    uid = book(office, "interview", day_at(now, 11), now)
    send_due(office, now)
    (approval,) = inbox.to(STAFF)
    assert subject(approval).startswith("Approval needed")
    identifier = booking_id(office, uid)
    link = f"https://book.acme.example/admin/bookings/{identifier}"
    assert re.search(rf"{re.escape(link)}\b", text_of(approval))
    from bookwise.app import create_app

    app = create_app(office.settings, clock=clock)
    try:
        endpoint, arguments = app.url_map.bind("book.acme.example").match(
            f"/admin/bookings/{identifier}"
        )
    finally:
        app.extensions["bookwise"].database.engine.dispose()
    assert endpoint == "bookings.details" and arguments == {"booking_id": identifier}


def test_staff_are_told_that_the_request_was_approved(
    office: Loaded, inbox: Inbox, now: datetime
) -> None:
    uid = book(office, "interview", day_at(now, 11), now)
    send_due(office, now)
    inbox.messages.clear()
    change(
        office,
        uid,
        lambda s, b: transition_booking(s, b, "approve", "staff", "staff:1", now, plugins=None),
    )
    send_due(office, now)
    (told,) = inbox.to(STAFF)
    assert subject(told).startswith("Approved: Interview")
    body = text_of(told)
    assert "has been approved" in body and "has booked" not in body


def test_a_booking_without_approval_still_says_new_booking_to_staff(
    mailing: Loaded, inbox: Inbox, now: datetime
) -> None:
    book(mailing, "visit", day_at(now, 10), now)
    send_due(mailing, now)
    (staff,) = inbox.to(STAFF)
    assert subject(staff).startswith("New booking") and "has booked" in text_of(staff)


def test_a_declined_request_cancels_the_tentative_event(
    office: Loaded, inbox: Inbox, now: datetime
) -> None:
    start = day_at(now, 11)
    uid = book(office, "interview", start, now)
    send_due(office, now)
    inbox.messages.clear()
    change(
        office,
        uid,
        lambda s, b: transition_booking(s, b, "decline", "staff", "staff:1", now, plugins=None),
    )
    send_due(office, now)
    (declined,) = inbox.to(CLIENT)
    calendar, event = invitation(declined)
    assert str(calendar["METHOD"]) == "CANCEL" and int(event["SEQUENCE"]) == 1
    assert event.decoded("DTSTART") == start


def test_event_status() -> None:
    assert event_status(holds_slot=True, awaiting_approval=True) == "TENTATIVE"
    assert event_status(holds_slot=True, awaiting_approval=False) == "CONFIRMED"
    assert event_status(holds_slot=False, awaiting_approval=True) == "CANCELLED"


# --- 3. a client in another time zone -----------------------------------------------------------


def bare_times(text: str, moment: datetime, locale: str, zone: str = TORONTO) -> list[str]:
    """The places where ``moment`` is written (in ``zone``) without the zone after it: neither
    "<time> (<zone>)" nor the range "<time> \u2013 <end> (<zone>)" (an en dash)."""
    written = re.escape(when(moment, locale, zone))
    label = re.escape(f"({zone_note(zone, moment)})")
    bare = []
    for found in re.finditer(written, text):
        rest = text[found.end() :]
        if not re.match(rf" {label}| \u2013 [^\n(]+ {label}", rest):
            bare.append(text[max(0, found.start() - 30) : found.end() + 30])
    return bare


LOCALES = ["en", "fr", "de", "es"]


@pytest.mark.parametrize("locale", LOCALES)
def test_every_time_a_client_abroad_reads_carries_its_zone(
    mailing: Loaded, inbox: Inbox, now: datetime, locale: str
) -> None:
    first, second = day_at(now, 10), day_at(now, 15)
    uid = book(mailing, "visit", first, now, zone=TORONTO, locale=locale)
    send_due(mailing, now)
    change(mailing, uid, lambda s, b: reschedule_booking(s, b, second, now, plugins=None))
    send_due(mailing, now)
    change(mailing, uid, lambda s, b: cancel_booking(s, b, now, plugins=None))
    send_due(mailing, now)

    confirmation, moved, cancelled = inbox.to(CLIENT)
    expected = ((confirmation, [first]), (moved, [first, second]), (cancelled, [second]))
    for message, times in expected:
        for part in (subject(message), text_of(message)):
            for moment in times:
                assert when(moment, locale, TORONTO) in part or part == subject(message)
                assert bare_times(part, moment, locale) == [], (subject(message), part)
            assert "))" not in part, part  # never "(America/Toronto (UTC-05:00))"
    assert when(second, locale, TORONTO) in subject(cancelled)
    # Staff, in the business's zone, read the business's time.
    staff = inbox.to(STAFF)[-1]
    assert when(second) in subject(staff)
    assert zone_note(TORONTO, second) not in subject(staff)


@pytest.mark.parametrize("locale", LOCALES)
def test_a_text_message_to_a_client_abroad_carries_the_zone(
    mailing: Loaded, now: datetime, locale: str
) -> None:
    start = day_at(now, 10)
    book(mailing, "visit", start, now, zone=TORONTO, locale=locale, sms=True)
    texts = Recorder()
    channels: dict[str, Channel] = {"email": EmailChannel(mailing.settings.mail), "sms": texts}
    send_due(mailing, start - timedelta(hours=2) + timedelta(minutes=1), channels)
    (reminder,) = texts.sent
    assert reminder.recipient == "+33612345678"
    assert when(start, locale, TORONTO) in spaced(reminder.text)
    assert bare_times(spaced(reminder.text), start, locale) == []
    assert "))" not in reminder.text


def test_a_client_in_the_business_zone_reads_no_zone_after_each_time(
    mailing: Loaded, inbox: Inbox, now: datetime
) -> None:
    start = day_at(now, 10)
    uid = book(mailing, "visit", start, now)
    send_due(mailing, now)
    change(mailing, uid, lambda s, b: cancel_booking(s, b, now, plugins=None))
    send_due(mailing, now)
    cancelled = inbox.to(CLIENT)[-1]
    assert subject(cancelled) == f"Cancelled: Visit on {when(start)}"


def test_the_calendar_file_of_a_request_is_tentative(
    scenario: Loaded, scenario_app: Any, now: datetime
) -> None:
    from bookwise.bookings.services import manage_token

    with unit_of_work(scenario.database.sessions, write=True) as session:
        context = find_service(session, "acme", "review")
        booking = create_booking(
            session,
            context,
            BookingRequest(
                start=day_at(now, 11),
                staff="ben",
                values={"name": "Zoé Martin", "email": CLIENT},
            ),
            now,
            plugins=None,
        )
        token, uid = manage_token(booking), booking.uid
    web = scenario_app.test_client()
    event = icalendar.Calendar.from_ical(web.get(f"/manage/{token}/booking.ics").data)
    assert str(event.walk("VEVENT")[0]["STATUS"]) == "TENTATIVE"
    change(
        scenario,
        uid,
        lambda s, b: transition_booking(s, b, "approve", "staff", "staff:1", now, plugins=None),
    )
    event = icalendar.Calendar.from_ical(web.get(f"/manage/{token}/booking.ics").data)
    assert str(event.walk("VEVENT")[0]["STATUS"]) == "CONFIRMED"
    assert int(event.walk("VEVENT")[0]["SEQUENCE"]) == 1
