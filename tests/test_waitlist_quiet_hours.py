"""A waitlist offer's hold counts from when its first message can reach the client: after the
quiet hours on the client's clock (issue 18 with "Quiet hours"), when made, when passed on by
the job or by a client leaving; across a change of the clocks; in the client's own zone. A real
database (SQLite and PostgreSQL), a real SMTP server, the real worker, fixed clocks.

The calendar "school" has one tutor and a lesson at 18:00 every day, one client per lesson:
``night`` keeps its own quiet hours (21:00-08:00, e-mail exempt) and holds a freed place two
hours; ``late`` has none of its own (the calendar's apply).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from bookwise.bookings.models import WaitlistEntry
from bookwise.bookings.offers import expire_offers
from bookwise.bookings.services import BookingRequest, create_booking, find_service
from bookwise.bookings.waitlist import (
    WaitlistRequest,
    find_entry_by_token,
    join_waitlist,
    leave_waitlist,
)
from bookwise.calendars.models import Calendar
from bookwise.clock import clock_from
from bookwise.db import unit_of_work
from bookwise.formatting import format_when
from bookwise.notifications.channels import Channel, EmailChannel
from bookwise.notifications.delivery import Dispatcher
from bookwise.notifications.models import Notification
from bookwise.notifications.services import record_stop
from tests.conftest import Inbox, Loaded
from tests.test_client_messages import Recorder as Texts
from tests.test_waitlist import CALENDARS as WAITLIST_CALENDARS
from tests.test_waitlist import cancel, open_school, school_config

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
HOLD = timedelta(hours=2)
pytestmark = pytest.mark.clock

LESSON = """id: {slug}
name: Evening lesson
duration: 1h
booking_window: {{min_notice: 0m, max_ahead: 60d}}
sessions:
  - {{days: [mon, tue, wed, thu, fri, sat, sun], at: "18:00"}}
staff: {{tags: [tutor]}}
waitlist: {{enabled: true, hold: 2h}}
fields:
  - {{id: name, type: text, required: true, label: Name}}
  - {{id: email, type: email, required: false, label: E-mail}}
  - {{id: phone, type: phone, required: false, label: Mobile phone}}
notifications:
  - {{on: confirmed, to: client, channel: sms}}
{more}"""
# The school of tests/test_waitlist.py, offering these two lessons.
CALENDARS = WAITLIST_CALENDARS.split("    services:")[0] + (
    "    services:\n      - workflow: night\n      - workflow: late\n"
)
PHONE = "+33612345678"


@pytest.fixture
def school(tmp_path: Path, database_url: str, inbox: Inbox) -> Any:
    values = school_config(tmp_path, database_url, inbox.port)
    workflows = Path(values["workflows"])
    for name in ("class.yaml", "plain.yaml", "lesson.yaml"):
        (workflows / name).unlink()
    quiet = 'quiet_hours: {from: "21:00", to: "08:00"}\n'
    (workflows / "night.yaml").write_text(LESSON.format(slug="night", more=quiet))
    (workflows / "late.yaml").write_text(LESSON.format(slug="late", more=""))
    loaded = open_school(tmp_path, values, CALENDARS)
    yield loaded
    loaded.database.engine.dispose()


def local(day: date, clock: str, zone: ZoneInfo = PARIS) -> datetime:
    return datetime.combine(day, time.fromisoformat(clock), tzinfo=zone)


def paris_day(moment: datetime, days: int = 0) -> date:
    return moment.astimezone(PARIS).date() + timedelta(days=days)


def book(school: Loaded, service: str, start: datetime, now: datetime) -> int:
    with unit_of_work(school.database.sessions, write=True) as session:
        booking = create_booking(
            session,
            find_service(session, "school", service),
            BookingRequest(start=start, values={"name": "Sam", "email": "sam@example.org"}),
            now,
            plugins=None,
        )
        return booking.id


def join(
    school: Loaded,
    service: str,
    start: datetime,
    now: datetime,
    name: str,
    *,
    email: bool = True,
    phone: bool = True,
    zone: str = "Europe/Paris",
) -> str:
    values = {"name": name}
    if email:
        values["email"] = f"{name.lower()}@example.org"
    if phone:
        values["phone"] = PHONE if name == "Wim" else "+33698765432"
    with unit_of_work(school.database.sessions, write=True) as session:
        entry = join_waitlist(
            session,
            find_service(session, "school", service),
            WaitlistRequest(values=values, start=start, timezone=zone, sms_opt_in=phone),
            now,
            plugins=None,
        )
        return entry.manage_token


def entry_of(school: Loaded, token: str) -> WaitlistEntry:
    with school.database.sessions() as session:
        return find_entry_by_token(session, token)


def offer_rows(school: Loaded, token: str) -> dict[str, Notification]:
    """The latest offer's messages to the entry of ``token``, by channel."""
    entry = entry_of(school, token)
    with school.database.sessions() as session:
        found = session.scalars(
            sa.select(Notification)
            .where(Notification.template == "waitlist_offer")
            .order_by(Notification.id)
        )
        return {
            r.channel: r
            for r in found
            if r.payload["waitlist_entry_id"] == entry.id
            and datetime.fromisoformat(r.payload["offered_at"]) == entry.offered_at
        }


def set_calendar_quiet_hours(school: Loaded, spec: dict[str, Any] | None) -> None:
    with unit_of_work(school.database.sessions, write=True) as session:
        calendar = session.scalar(sa.select(Calendar).where(Calendar.slug == "school"))
        assert calendar is not None
        calendar.quiet_hours = spec


def deliver(school: Loaded, at: datetime, texts: Texts) -> int:
    channels: dict[str, Channel] = {"email": EmailChannel(school.settings.mail), "sms": texts}
    return Dispatcher(school.settings, school.database, channels=channels, clock=lambda: at).drain()


def full_lesson(school: Loaded, service: str, now: datetime, days: int = 3) -> tuple[datetime, int]:
    start = local(paris_day(now, days), "18:00")
    return start, book(school, service, start, now)


def test_a_text_only_offer_at_eleven_pm_is_held_from_eight_and_sent_then(
    school: Loaded, inbox: Inbox, now: datetime
) -> None:
    start, booking = full_lesson(school, "night", now)
    token = join(school, "night", start, now, "Wim", email=False)
    evening = local(paris_day(now, 1), "23:00")
    morning = local(paris_day(now, 2), "08:00")
    cancel(school, booking, evening)
    entry = entry_of(school, token)
    assert (entry.state, entry.offered_at) == ("offered", evening)
    assert entry.offer_expires_at == morning + HOLD
    (sms,) = offer_rows(school, token).values()
    assert (sms.channel, sms.recipient, sms.due_at) == ("sms", PHONE, morning)
    held = {k: datetime.fromisoformat(v) for k, v in sms.payload["held"].items()}
    assert held == {"due": evening, "until": morning}
    # The worker sends it then, not a minute earlier, and does not hold it again.
    texts = Texts()
    assert deliver(school, evening + timedelta(minutes=1), texts) == 0
    assert deliver(school, morning - timedelta(minutes=1), texts) == 0
    assert deliver(school, morning, texts) == 1
    (sent,) = texts.sent
    until = format_when(morning + HOLD, "Europe/Paris", "en")
    assert " ".join(until.split()) in " ".join(sent.text.split())
    # The hold runs two hours from 08:00, not from 23:00.
    with unit_of_work(school.database.sessions, write=True) as session:
        assert expire_offers(session, evening + HOLD + timedelta(minutes=1)) == 0
        assert expire_offers(session, morning + HOLD - timedelta(seconds=1)) == 0
    with unit_of_work(school.database.sessions, write=True) as session:
        assert expire_offers(session, morning + HOLD) == 1


def test_the_manage_link_and_the_page_show_the_hold_from_eight(
    school: Loaded, now: datetime
) -> None:
    from bookwise.app import create_app

    start, booking = full_lesson(school, "night", now)
    token = join(school, "night", start, now, "Wim", email=False)
    evening = local(paris_day(now, 1), "23:00")
    cancel(school, booking, evening)
    expires = local(paris_day(now, 2), "08:00") + HOLD
    application = create_app(school.settings, clock=clock_from(evening + timedelta(hours=3)))
    application.config.update(TESTING=True)
    try:
        client = application.test_client()
        shown = client.get(f"/api/v1/manage/{token}").get_json()
        assert shown["state"] == "offered"
        assert datetime.fromisoformat(shown["offer"]["expires_at"]) == expires
        page = client.get(f"/manage/{token}").get_data(as_text=True)
        assert format_when(expires, "Europe/Paris", "en") in page
        assert ">Accept</button>" in page  # at 02:00: still held, past 23:00 + 2 h
    finally:
        application.extensions["bookwise"].database.engine.dispose()


def test_with_email_not_held_the_hold_starts_at_once_and_the_late_text_is_not_sent(
    school: Loaded, inbox: Inbox, now: datetime
) -> None:
    start, booking = full_lesson(school, "night", now)
    token = join(school, "night", start, now, "Wim")
    evening = local(paris_day(now, 1), "23:00")
    morning = local(paris_day(now, 2), "08:00")
    cancel(school, booking, evening)
    assert entry_of(school, token).offer_expires_at == evening + HOLD
    rows = offer_rows(school, token)
    assert (rows["email"].due_at, "held" in rows["email"].payload) == (evening, False)
    assert rows["sms"].due_at == morning
    texts = Texts()
    assert deliver(school, evening, texts) == 2  # on joining, then the offer
    assert [m["To"] for m in inbox.messages] == ["wim@example.org"] * 2
    assert "A place is free" in inbox.messages[-1]["Subject"]
    # The hold ended at 01:00: the text message of 08:00 has nothing left to offer.
    with unit_of_work(school.database.sessions, write=True) as session:
        assert expire_offers(session, evening + HOLD) == 1
    assert deliver(school, morning, texts) == 1
    assert texts.sent == []
    sms = offer_rows(school, token)["sms"]
    assert sms.state == "skipped"
    assert sms.last_error == "the offer is no longer open (the waitlist entry is expired)"


def test_the_calendars_quiet_hours_holding_email_too_hold_every_channel(
    school: Loaded, now: datetime
) -> None:
    set_calendar_quiet_hours(school, {"from": "21:00", "to": "08:00", "email": True})
    start, booking = full_lesson(school, "late", now)
    token = join(school, "late", start, now, "Wim")
    evening = local(paris_day(now, 1), "23:00")
    morning = local(paris_day(now, 2), "08:00")
    cancel(school, booking, evening)
    assert entry_of(school, token).offer_expires_at == morning + HOLD
    assert {c: r.due_at for c, r in offer_rows(school, token).items()} == {
        "email": morning,
        "sms": morning,
    }


def test_a_number_that_replied_stop_does_not_count(school: Loaded, now: datetime) -> None:
    start, booking = full_lesson(school, "night", now)
    token = join(school, "night", start, now, "Wim", email=False)
    with unit_of_work(school.database.sessions, write=True) as session:
        record_stop(session, PHONE)
    evening = local(paris_day(now, 1), "23:00")
    cancel(school, booking, evening)
    # No message can reach them: the hold counts from the offer, as their page shows it.
    assert entry_of(school, token).offer_expires_at == evening + HOLD
    (sms,) = offer_rows(school, token).values()
    assert sms.state == "skipped" and "STOP" in (sms.last_error or "")


def test_an_offer_passed_on_by_the_job_is_held_from_the_next_clients_morning(
    school: Loaded, now: datetime
) -> None:
    start, booking = full_lesson(school, "night", now)
    first = join(school, "night", start, now, "Ada")  # e-mail: sent at once
    second = join(school, "night", start, now, "Wim", email=False)
    evening = local(paris_day(now, 1), "23:00")
    morning = local(paris_day(now, 2), "08:00")
    cancel(school, booking, evening)
    assert entry_of(school, first).offer_expires_at == evening + HOLD
    one = evening + HOLD + timedelta(seconds=30)
    with unit_of_work(school.database.sessions, write=True) as session:
        assert expire_offers(session, one) == 1
    offered = entry_of(school, second)
    assert (offered.state, offered.offered_at) == ("offered", one)
    assert offered.offer_expires_at == morning + HOLD
    (sms,) = offer_rows(school, second).values()
    assert sms.due_at == morning


def test_an_offer_passed_on_by_a_client_leaving_is_held_from_the_morning(
    school: Loaded, now: datetime
) -> None:
    start, booking = full_lesson(school, "night", now)
    first = join(school, "night", start, now, "Ada")
    second = join(school, "night", start, now, "Wim", email=False)
    evening = local(paris_day(now, 1), "23:00")
    morning = local(paris_day(now, 2), "08:00")
    cancel(school, booking, evening)
    # A running clock's instant (the pages' and the API's): to the microsecond.
    left = evening + timedelta(minutes=5, microseconds=123456)
    with unit_of_work(school.database.sessions, write=True) as session:
        leave_waitlist(session, find_entry_by_token(session, first), left)
    assert entry_of(school, second).offer_expires_at == morning + HOLD
    texts = Texts()
    deliver(school, morning, texts)
    # Ada's text message of 08:00 is not sent: she left. Wim's is.
    assert [m.recipient for m in texts.sent] == [PHONE]
    assert offer_rows(school, first)["sms"].last_error == (
        "the offer is no longer open (the waitlist entry is left)"
    )


def test_a_message_due_just_before_the_quiet_hours_goes_when_a_worker_takes_it_inside(
    school: Loaded, now: datetime
) -> None:
    """Its hold counts from its due time: a worker ticking at 21:00:30 sends it, never at 08:00."""
    start, booking = full_lesson(school, "night", now)
    token = join(school, "night", start, now, "Wim", email=False)
    before = local(paris_day(now, 1), "20:59") + timedelta(seconds=50)
    cancel(school, booking, before)
    assert entry_of(school, token).offer_expires_at == before + HOLD
    texts = Texts()
    assert deliver(school, local(paris_day(now, 1), "21:00") + timedelta(seconds=30), texts) == 1
    assert len(texts.sent) == 1


@pytest.mark.parametrize(
    ("night", "sent_utc"),
    [
        # Paris springs forward (02:00 -> 03:00): 08:00 is 06:00 UTC, the hold ends at 08:00 UTC.
        (date(2027, 3, 27), datetime(2027, 3, 28, 6, tzinfo=UTC)),
        # Paris falls back (03:00 -> 02:00): 08:00 is 07:00 UTC, the hold ends at 09:00 UTC.
        (date(2027, 10, 30), datetime(2027, 10, 31, 7, tzinfo=UTC)),
    ],
)
def test_across_a_change_of_the_clocks_the_hold_ends_at_the_right_instant(
    school: Loaded, night: date, sent_utc: datetime
) -> None:
    earlier = local(night - timedelta(days=2), "12:00")
    start = local(night + timedelta(days=2), "18:00")
    booking = book(school, "night", start, earlier)
    token = join(school, "night", start, earlier, "Wim", email=False)
    cancel(school, booking, local(night, "23:00"))
    assert entry_of(school, token).offer_expires_at == sent_utc + HOLD
    (sms,) = offer_rows(school, token).values()
    assert sms.due_at == sent_utc
    assert sms.due_at.astimezone(PARIS).strftime("%H:%M") == "08:00"


def test_a_client_in_another_zone_gets_their_own_night(school: Loaded, now: datetime) -> None:
    start, booking = full_lesson(school, "night", now)
    token = join(school, "night", start, now, "Wim", email=False, zone="America/New_York")
    # 23:00 in Paris is the afternoon in New York: sent at once, held from then.
    evening = local(paris_day(now, 1), "23:00")
    cancel(school, booking, evening)
    assert entry_of(school, token).offer_expires_at == evening + HOLD
    assert offer_rows(school, token)["sms"].due_at == evening
    # 10:00 in Paris is before dawn in New York: sent at 08:00 there, held from then.
    start, booking = full_lesson(school, "night", now, days=4)
    token = join(school, "night", start, now, "Wim", email=False, zone="America/New_York")
    morning = local(paris_day(now, 2), "10:00")
    cancel(school, booking, morning)
    dawn = local(morning.astimezone(NEW_YORK).date(), "08:00", NEW_YORK)
    assert entry_of(school, token).offer_expires_at == dawn + HOLD
    assert offer_rows(school, token)["sms"].due_at == dawn


def test_one_whose_text_could_only_come_after_the_start_is_passed_over(
    school: Loaded, now: datetime
) -> None:
    """First in line: a client in Tokyo reachable only by text, whose night (21:00-08:00
    there) lasts past the 18:00 Paris lesson; second: a client with an e-mail address. The
    second is offered the place at once; the first stays in line."""
    start, booking = full_lesson(school, "night", now)
    far = join(school, "night", start, now, "Wim", email=False, zone="Asia/Tokyo")
    near = join(school, "night", start, now, "Zoe")
    # 22:00 or 23:00 in Tokyo, as Paris keeps summer time or not (21:00 itself still sends).
    afternoon = local(start.astimezone(PARIS).date(), "15:00")
    cancel(school, booking, afternoon)
    assert entry_of(school, far).state == "waiting"
    offered = entry_of(school, near)
    assert (offered.state, offered.offer_expires_at) == ("offered", afternoon + HOLD)


def test_a_hold_never_runs_past_the_start_of_the_place(school: Loaded, now: datetime) -> None:
    start, booking = full_lesson(school, "night", now)
    token = join(school, "night", start, now, "Zoe")
    hour_before = start - timedelta(hours=1)
    cancel(school, booking, hour_before)
    assert entry_of(school, token).offer_expires_at == start
