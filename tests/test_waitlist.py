"""The waitlist of a full time or day (issue 18): the language, joining (the API's contract), the
offer made in the transaction of the cancellation that frees a place, its message by real SMTP,
accepting, leaving, and expiry passing the place to the next in line; on SQLite and PostgreSQL.

The calendar "school" has one tutor. ``class`` is a group of two per session with a waitlist
holding a freed place two hours; ``lesson`` is one to one with the same waitlist; ``plain`` has
no waitlist.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from bookwise.audit.models import AuditEntry
from bookwise.availability.services import SlotSearch, local_day_bounds, service_availability
from bookwise.bookings.models import Booking, WaitlistEntry
from bookwise.bookings.offers import expire_offers
from bookwise.bookings.services import (
    BookingRequest,
    cancel_booking,
    create_booking,
    find_service,
    reschedule_booking,
)
from bookwise.bookings.waitlist import WaitlistRequest, join_waitlist
from bookwise.calendars.models import StaffMember, TimeOff
from bookwise.clock import Clock
from bookwise.db import unit_of_work
from bookwise.errors import Problem, errors_only
from bookwise.notifications.delivery import Dispatcher
from bookwise.notifications.models import Notification
from bookwise.notifications.templates import SHIPPED_TEMPLATES, template_names
from bookwise.workflows.loader import CheckContext, check_workflow_file, read_field_sets
from tests.conftest import ROOT, Inbox, Loaded, base_config, write_config

PARIS = ZoneInfo("Europe/Paris")

CLASS = """id: class
name: {en: Class, fr: Cours}
duration: 1h30m
booking_window: {min_notice: 0m, max_ahead: 60d}
capacity: {places: 2, per: slot}
sessions:
  - {days: [mon, tue, wed, thu, fri, sat, sun], at: "18:00"}
staff: {tags: [tutor]}
waitlist: {enabled: true, hold: 2h}
fields:
  - {id: level, type: select, required: true, label: Level,
     options: [{value: a, label: A}, {value: b, label: B}]}
notifications: []
"""
LESSON = """id: lesson
name: Lesson
duration: 1h
booking_window: {min_notice: 0m, max_ahead: 60d}
staff: {tags: [tutor]}
waitlist: {enabled: true, hold: 2h}
fields:
  - {id: goal, type: select, label: Goal,
     options: [{value: exam, label: An exam}, {value: fun, label: For fun}]}
  - {id: exam_day, type: date, required: true, label: Day of the exam,
     show_if: {field: goal, equals: exam}}
notifications: []
"""
PLAIN = """id: plain
name: Plain
duration: 1h
booking_window: {min_notice: 0m, max_ahead: 60d}
staff: {tags: [tutor]}
notifications: []
"""
CALENDARS = """calendars:
  - slug: school
    name: School
    timezone: Europe/Paris
    locale: en
    hours: {mon: ["08:00-20:00"], tue: ["08:00-20:00"], wed: ["08:00-20:00"],
            thu: ["08:00-20:00"], fri: ["08:00-20:00"], sat: ["08:00-20:00"],
            sun: ["08:00-20:00"]}
    staff:
      - {id: maya, name: Maya, email: maya@school.example, tags: [tutor]}
    services:
      - workflow: class
      - workflow: plain
      - workflow: lesson
"""


def school_config(tmp_path: Path, database_url: str, smtp_port: int) -> dict[str, Any]:
    workflows = tmp_path / "workflows"
    workflows.mkdir(exist_ok=True)
    (workflows / "class.yaml").write_text(CLASS)
    (workflows / "plain.yaml").write_text(PLAIN)
    (workflows / "lesson.yaml").write_text(LESSON)
    return base_config(tmp_path, database_url) | {
        "workflows": str(workflows),
        "mail": {
            "host": "127.0.0.1",
            "port": smtp_port,
            "sender": "School <school@school.example>",
            "timeout": 5,
        },
        "base_url": "https://book.school.example",
    }


def open_school(tmp_path: Path, values: dict[str, Any], calendars: str) -> Loaded:
    """The instance of ``values`` (see :func:`school_config`) with the ``calendars`` file."""
    from bookwise import instance
    from bookwise.config import load_settings
    from bookwise.database import open_database

    (tmp_path / "calendars.yaml").write_text(calendars)
    settings = load_settings(write_config(tmp_path / "school.yaml", values), environ={})
    database = open_database(settings)
    instance.sync_workflows(settings, database)
    instance.load_calendar_file(settings, database, tmp_path / "calendars.yaml")
    return Loaded(settings, database)


@pytest.fixture
def school(tmp_path: Path, database_url: str, inbox: Inbox) -> Any:
    loaded = open_school(tmp_path, school_config(tmp_path, database_url, inbox.port), CALENDARS)
    yield loaded
    loaded.database.engine.dispose()


@pytest.fixture
def school_app(school: Loaded, clock: Clock) -> Any:
    from bookwise.app import create_app

    application = create_app(school.settings, clock=clock)
    application.config.update(TESTING=True)
    yield application
    application.extensions["bookwise"].database.engine.dispose()


def session_start(now: datetime, days: int = 2) -> datetime:
    day = now.astimezone(PARIS).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, 18, tzinfo=PARIS)


def book(school: Loaded, start: datetime, now: datetime, number: int) -> int:
    with unit_of_work(school.database.sessions, write=True) as session:
        context = find_service(session, "school", "class")
        booking = create_booking(
            session,
            context,
            BookingRequest(
                start=start,
                values={"name": f"S{number}", "email": f"s{number}@example.org", "level": "a"},
            ),
            now,
            plugins=None,
        )
        return booking.id


def join(school: Loaded, start: datetime, now: datetime, number: int) -> str:
    with unit_of_work(school.database.sessions, write=True) as session:
        context = find_service(session, "school", "class")
        entry = join_waitlist(
            session,
            context,
            WaitlistRequest(
                values={"name": f"W{number}", "email": f"w{number}@example.org", "level": "b"},
                start=start,
            ),
            now,
            plugins=None,
        )
        return entry.manage_token


def cancel(school: Loaded, booking_id: int, now: datetime) -> None:
    with unit_of_work(school.database.sessions, write=True) as session:
        booking = session.get(Booking, booking_id)
        assert booking is not None
        cancel_booking(session, booking, now, plugins=None)


def book_lesson(school: Loaded, start: datetime, now: datetime) -> int:
    """The tutor's one-to-one lesson at ``start`` (its id): that time is full."""
    with unit_of_work(school.database.sessions, write=True) as session:
        return create_booking(
            session,
            find_service(session, "school", "lesson"),
            BookingRequest(start=start, values={"name": "S1", "email": "s1@example.org"}),
            now,
            plugins=None,
        ).id


def join_lesson(school: Loaded, start: datetime, now: datetime) -> str:
    """W1 waits for the lesson at ``start``: the entry's token."""
    with unit_of_work(school.database.sessions, write=True) as session:
        return join_waitlist(
            session,
            find_service(session, "school", "lesson"),
            WaitlistRequest(values={"name": "W1", "email": "w1@example.org"}, start=start),
            now,
            plugins=None,
        ).manage_token


def entries(school: Loaded) -> dict[str, WaitlistEntry]:
    with school.database.sessions() as session:
        found = session.scalars(sa.select(WaitlistEntry).order_by(WaitlistEntry.id))
        return {e.client.email: e for e in found}


def full_class(school: Loaded, now: datetime) -> tuple[datetime, list[int]]:
    start = session_start(now)
    return start, [book(school, start, now, n) for n in (1, 2)]


# --- the language ---------------------------------------------------------------------------------


def check(text: str, tmp_path: Path) -> tuple[Any, list[Problem]]:
    path = tmp_path / "class.yaml"
    path.write_text(text)
    field_sets, _ = read_field_sets(ROOT / "forms")
    context = CheckContext(
        field_sets=field_sets,
        known_templates=template_names([SHIPPED_TEMPLATES]),
        known_channels=frozenset({"email"}),
        locales=("en", "fr"),
    )
    return check_workflow_file(path, context)


def test_the_language_reads_the_waitlist_and_checks_it(tmp_path: Path) -> None:
    checked, _ = check(CLASS, tmp_path)
    assert checked is not None
    assert checked.workflow.waitlist_enabled
    assert checked.workflow.waitlist_hold == timedelta(hours=2)
    plain, _ = check(PLAIN.replace("id: plain", "id: class"), tmp_path)
    assert plain is not None and not plain.workflow.waitlist_enabled

    def errors(text: str) -> list[tuple[int | None, str]]:
        checked, problems = check(text, tmp_path)
        assert checked is None
        return [(p.line, p.message) for p in errors_only(problems)]

    assert errors(CLASS.replace("hold: 2h", "hold: 0m")) == [
        (9, "waitlist.hold: hold must be longer than 0m")
    ]
    (wrong,) = errors(CLASS.replace("hold: 2h", "hold: soon"))
    assert wrong[0] == 9 and "is not a duration" in wrong[1]
    (unknown,) = errors(CLASS.replace("hold: 2h", "hodl: 2h"))
    assert unknown[0] == 9 and "did you mean 'hold'" in unknown[1]
    idle, problems = check(CLASS.replace("enabled: true", "enabled: false"), tmp_path)
    assert idle is not None
    assert [(p.line, p.message) for p in problems if p.severity == "warning"] == [
        (9, "waitlist.hold: hold has no effect without a waitlist; add enabled: true")
    ]


def test_the_tutoring_group_class_has_a_waitlist(tmp_path: Path) -> None:
    text = (ROOT / "workflows" / "tutoring-group.yaml").read_text()
    checked, _ = check(text.replace("id: tutoring-group", "id: class"), tmp_path)
    assert checked is not None and checked.workflow.waitlist_enabled
    assert checked.workflow.waitlist_hold == timedelta(hours=2)


# --- joining: the API's contract -----------------------------------------------------------------


def join_body(start: datetime, number: int = 1, **more: Any) -> dict[str, Any]:
    return {
        "start": start.isoformat(),
        "client": {"name": f"W{number}", "email": f"w{number}@example.org"},
        "answers": {"level": "a"},
        **more,
    }


URL = "/api/v1/calendars/school/services/{service}/waitlist"


def test_joining_a_full_time_and_not_a_free_one(
    school: Loaded, school_app: Any, now: datetime
) -> None:
    client = school_app.test_client()
    start = session_start(now)
    free = client.post(URL.format(service="class"), json=join_body(start))
    assert free.status_code == 409
    assert free.get_json()["error"]["code"] == "slot_free"

    book(school, start, now, 1)
    book(school, start, now, 2)
    first = client.post(URL.format(service="class"), json=join_body(start, 1))
    second = client.post(URL.format(service="class"), json=join_body(start, 2))
    assert first.status_code == second.status_code == 201
    token = first.get_json()["manage_token"]
    assert first.headers["Location"].endswith(f"/api/v1/manage/{token}")
    shown = client.get(f"/api/v1/manage/{token}").get_json()
    assert shown["state"] == "waiting"
    assert shown["position"] == 1
    assert shown["offer"] is None
    assert datetime.fromisoformat(shown["start"]) == start
    assert (
        client.get(f"/api/v1/manage/{second.get_json()['manage_token']}").get_json()["position"]
        == 2
    )


def test_joining_is_refused_with_a_clear_code(
    school: Loaded, school_app: Any, now: datetime
) -> None:
    client = school_app.test_client()
    start = session_start(now)
    book(school, start, now, 1)
    book(school, start, now, 2)

    def refused(service: str, body: dict[str, Any]) -> tuple[int, str]:
        answer = client.post(URL.format(service=service), json=body)
        return answer.status_code, answer.get_json()["error"]["code"]

    assert refused("class", join_body(start.replace(hour=19))) == (422, "not_a_slot")
    assert refused("class", join_body(start - timedelta(days=5))) == (422, "in_the_past")
    assert refused("plain", join_body(start)) == (422, "waitlist_closed")
    assert refused("class", join_body(start) | {"answers": {}}) == (422, "invalid")
    no_time = {k: v for k, v in join_body(start).items() if k != "start"}
    assert refused("class", no_time) == (400, "invalid_request")
    assert refused("class", join_body(start) | {"start": "tomorrow"}) == (400, "invalid_start")
    assert refused("nothing", join_body(start)) == (404, "not_found")
    with school.database.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(WaitlistEntry)) == 0


def test_the_same_person_cannot_wait_twice_for_one_time(
    school: Loaded, school_app: Any, now: datetime
) -> None:
    start, _bookings = full_class(school, now)
    first = join(school, start, now, 1)
    client = school_app.test_client()
    url = URL.format(service="class")
    person = {"client": {"name": "W1 again", "email": "W1@Example.org"}, "answers": {"level": "a"}}
    again = client.post(url, json={"start": start.isoformat(), **person})
    assert (again.status_code, again.get_json()["error"]["code"]) == (409, "already_waiting")
    assert "already on the waitlist" in again.get_json()["error"]["message"]
    assert first not in again.get_data(as_text=True)  # the entry is not named
    # A day holds its times: the whole day overlaps the time waited for.
    day = client.post(url, json={"day": start.date().isoformat(), **person})
    assert day.get_json()["error"]["code"] == "already_waiting"
    # Someone who booked that time does not wait for it too.
    booked = {"client": {"name": "S1", "email": "S1@example.org"}, "answers": {"level": "a"}}
    mine = client.post(url, json={"start": start.isoformat(), **booked})
    assert (mine.status_code, mine.get_json()["error"]["code"]) == (409, "already_booked")
    # Another person, the same time: fine. And once left, the first may join again.
    assert join(school, start, now, 2).startswith("wl-")
    assert client.post(f"/api/v1/manage/{first}/cancel").status_code == 200
    rejoined = client.post(url, json={"start": start.isoformat(), **person})
    assert rejoined.status_code == 201, rejoined.get_json()


def test_a_reassignment_offers_the_time_the_staff_member_gave_up(
    school: Loaded, now: datetime
) -> None:
    from bookwise.bookings.services import reassign_booking

    start = session_start(now) - timedelta(hours=8)  # 10:00, a lesson
    taken = book_lesson(school, start, now)
    join_lesson(school, start, now)
    # A second tutor arrives: the time is no longer full, and nobody was told.
    with unit_of_work(school.database.sessions, write=True) as session:
        maya = session.scalars(sa.select(StaffMember)).one()
        noor = StaffMember(
            calendar_id=maya.calendar_id,
            slug="noor",
            name="Noor",
            email="noor@school.example",
            tags=["tutor"],
        )
        session.add(noor)
    assert entries(school)["w1@example.org"].state == "waiting"
    with unit_of_work(school.database.sessions, write=True) as session:
        booking = session.get(Booking, taken)
        assert booking is not None
        reassign_booking(session, booking, noor.id, now, "admin", plugins=None)
    offered = entries(school)["w1@example.org"]
    assert (offered.state, offered.offered_start, offered.offered_staff_id) == (
        "offered",
        start,
        maya.id,
    )


def test_a_day_without_a_free_time(school: Loaded, school_app: Any, now: datetime) -> None:
    client = school_app.test_client()
    start, _ = full_class(school, now)
    day = start.date().isoformat()
    body = join_body(start)
    del body["start"]
    answer = client.post(URL.format(service="class"), json=body | {"day": day})
    assert answer.status_code == 201, answer.get_json()
    assert answer.get_json()["day"] == day
    other = (start + timedelta(days=1)).date().isoformat()
    free = client.post(URL.format(service="class"), json=body | {"day": other})
    assert free.get_json()["error"]["code"] == "slot_free"
    far = (start + timedelta(days=90)).date().isoformat()
    too_far = client.post(URL.format(service="class"), json=body | {"day": far})
    assert (too_far.status_code, too_far.get_json()["error"]["code"]) == (422, "too_far")
    bad = client.post(URL.format(service="class"), json=body | {"day": "soon"})
    assert (bad.status_code, bad.get_json()["error"]["code"]) == (400, "invalid_date")


# --- the offer ---------------------------------------------------------------------------------


def test_a_cancellation_offers_the_place_to_the_first_in_line_in_its_transaction(
    school: Loaded, now: datetime
) -> None:
    start, bookings = full_class(school, now)
    join(school, start, now, 1)
    join(school, start, now, 2)
    cancel(school, bookings[0], now)
    found = entries(school)
    first, second = found["w1@example.org"], found["w2@example.org"]
    assert first.state == "offered"
    assert first.freed_booking_id == bookings[0]
    assert first.offered_start == start
    assert first.offer_expires_at == now + timedelta(hours=2)
    assert second.state == "waiting"
    with school.database.sessions() as session:
        planned = session.scalars(
            sa.select(Notification).where(Notification.template == "waitlist_offer")
        ).all()
    assert [(r.recipient, r.channel, r.booking_id) for r in planned] == [
        ("w1@example.org", "email", None)
    ]


def test_a_cancellation_that_rolls_back_offers_nothing(school: Loaded, now: datetime) -> None:
    start, bookings = full_class(school, now)
    join(school, start, now, 1)

    class Abandon(Exception):
        pass

    with pytest.raises(Abandon), unit_of_work(school.database.sessions, write=True) as session:
        booking = session.get(Booking, bookings[0])
        assert booking is not None
        cancel_booking(session, booking, now, plugins=None)
        raise Abandon
    assert entries(school)["w1@example.org"].state == "waiting"
    with school.database.sessions() as session:
        assert [row.event for row in session.scalars(sa.select(Notification))] == [
            "waitlist_joined"
        ]


def test_a_move_frees_the_old_place_for_the_waitlist(school: Loaded, now: datetime) -> None:
    start, bookings = full_class(school, now)
    join(school, start, now, 1)
    with unit_of_work(school.database.sessions, write=True) as session:
        booking = session.get(Booking, bookings[1])
        assert booking is not None
        reschedule_booking(session, booking, start + timedelta(days=1), now, plugins=None)
    offered = entries(school)["w1@example.org"]
    assert offered.state == "offered"
    assert offered.offered_start == start


def test_the_offer_reaches_the_client_by_real_smtp(
    school: Loaded, inbox: Inbox, now: datetime
) -> None:
    start, bookings = full_class(school, now)
    token = join(school, start, now, 1)
    cancel(school, bookings[0], now)
    Dispatcher(school.settings, school.database, clock=lambda: now).drain()
    joined, message = inbox.to("w1@example.org")
    assert "You are on the waitlist: Class" in joined["Subject"]
    told = joined.get_body(preferencelist=("plain",)).get_content()
    assert f"https://book.school.example/manage/{token}" in told
    assert "hold it for you for 2 hours" in told
    assert "A place is free: Class" in message["Subject"]
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert f"https://book.school.example/manage/{token}" in body
    # Nothing of the client whose cancellation freed the place (the links' random tokens may
    # hold the letters S1: the name is looked for as a word).
    assert not re.search(r"\bS1\b", body) and "s1@example.org" not in body


def test_accepting_books_the_place_and_a_second_accept_is_refused(
    school: Loaded, school_app: Any, now: datetime
) -> None:
    client = school_app.test_client()
    start, bookings = full_class(school, now)
    token = join(school, start, now, 1)
    cancel(school, bookings[0], now)
    accepted = client.post(f"/api/v1/manage/{token}/accept")
    assert accepted.status_code == 200, accepted.get_json()
    payload = accepted.get_json()
    assert payload["state"] == "booked"
    assert payload["booking"]["status"] == "confirmed"
    assert datetime.fromisoformat(payload["booking"]["start"]) == start
    again = client.post(f"/api/v1/manage/{token}/accept")
    assert (again.status_code, again.get_json()["error"]["code"]) == (409, "no_offer")
    with school.database.sessions() as session:
        entry = session.scalar(sa.select(WaitlistEntry))
        assert entry is not None and entry.booking_id is not None
        booking = session.get(Booking, entry.booking_id)
        assert booking is not None and booking.answers == {"level": "b"}
        assert booking.source == "waitlist"


def test_an_offer_not_taken_in_time_goes_to_the_next_in_line(
    school: Loaded, school_app: Any, now: datetime
) -> None:
    start, bookings = full_class(school, now)
    first = join(school, start, now, 1)
    join(school, start, now, 2)
    cancel(school, bookings[0], now)
    with unit_of_work(school.database.sessions, write=True) as session:
        assert expire_offers(session, now + timedelta(hours=1)) == 0
    with unit_of_work(school.database.sessions, write=True) as session:
        assert expire_offers(session, now + timedelta(hours=2, minutes=1)) == 1
    found = entries(school)
    assert found["w1@example.org"].state == "expired"
    assert found["w2@example.org"].state == "offered"
    assert found["w2@example.org"].freed_booking_id == bookings[0]
    assert found["w2@example.org"].offer_expires_at == now + timedelta(hours=4, minutes=1)
    answer = school_app.test_client().post(f"/api/v1/manage/{first}/accept")
    assert (answer.status_code, answer.get_json()["error"]["code"]) == (409, "offer_expired")
    shown = school_app.test_client().get(f"/api/v1/manage/{first}").get_json()
    assert shown["state"] == "expired"


def test_an_offer_whose_hold_ran_out_cannot_be_accepted_before_the_job_runs(
    school: Loaded, school_app: Any, now: datetime
) -> None:
    start, bookings = full_class(school, now)
    token = join(school, start, now - timedelta(hours=3), 1)
    cancel(school, bookings[0], now - timedelta(hours=3))
    answer = school_app.test_client().post(f"/api/v1/manage/{token}/accept")
    assert (answer.status_code, answer.get_json()["error"]["code"]) == (409, "offer_expired")


def test_an_offered_place_is_held_against_other_bookers(
    school: Loaded, school_app: Any, now: datetime
) -> None:
    from bookwise.bookings.services import SlotTaken

    client = school_app.test_client()
    start, bookings = full_class(school, now)
    token = join(school, start, now, 1)
    cancel(school, bookings[0], now)
    day = start.date().isoformat()
    slots = client.get(f"/api/v1/calendars/school/services/class/slots?from={day}&to={day}")
    assert start not in [datetime.fromisoformat(s["start"]) for s in slots.get_json()["slots"]]
    with pytest.raises(SlotTaken):
        book(school, start, now, 3)
    why = client.get(
        "/api/v1/calendars/school/services/class/explain",
        query_string={"start": start.isoformat()},
    ).get_json()
    assert (why["offered"], [r["code"] for r in why["reasons"]]) == (False, ["capacity", "held"])
    assert why["reasons"][1]["message"] == (
        "Of these places, 1 held for clients on the waitlist until they answer."
    )
    # The time is full while the place is held: another client may still join the line.
    join(school, start, now, 2)
    accepted = client.post(f"/api/v1/manage/{token}/accept")
    assert accepted.status_code == 200, accepted.get_json()
    with school.database.sessions() as session:
        held = session.scalar(
            sa.select(sa.func.count()).where(Booking.start_at == start, Booking.holds_slot)
        )
    assert held == 2


def test_a_hold_that_ran_out_no_longer_holds_the_place(school: Loaded, now: datetime) -> None:
    start, bookings = full_class(school, now)
    join(school, start, now, 1)
    cancel(school, bookings[0], now)
    # Past the two hours, before the job passes the place on: it is anyone's.
    book(school, start, now + timedelta(hours=2, minutes=1), 3)
    with unit_of_work(school.database.sessions, write=True) as session:
        assert expire_offers(session, now + timedelta(hours=2, minutes=2)) == 1
    assert entries(school)["w1@example.org"].state == "expired"


def test_a_held_one_to_one_place_holds_the_staff_members_time(
    school: Loaded, school_app: Any, now: datetime
) -> None:
    from bookwise.bookings.services import SlotTaken

    start = session_start(now) - timedelta(hours=8)  # 10:00, the lesson's hour
    taken = book_lesson(school, start, now)
    token = join_lesson(school, start, now)
    cancel(school, taken, now)
    assert entries(school)["w1@example.org"].state == "offered"
    # The tutor's hour is held: not for the lesson, nor for another service of hers.
    with unit_of_work(school.database.sessions, write=True) as session, pytest.raises(SlotTaken):
        create_booking(
            session,
            find_service(session, "school", "plain"),
            BookingRequest(start=start, values={"name": "S2", "email": "s2@example.org"}),
            now,
            plugins=None,
        )
    client = school_app.test_client()
    why = client.get(
        "/api/v1/calendars/school/services/lesson/explain",
        query_string={"start": start.isoformat()},
    ).get_json()
    (maya,) = why["staff"]
    assert [r["code"] for r in maya["reasons"]] == ["held"]
    assert "held for them until they answer" in maya["reasons"][0]["message"]
    assert client.post(f"/api/v1/manage/{token}/accept").status_code == 200


def test_a_place_taken_meanwhile_is_refused_as_taken(
    school: Loaded, school_app: Any, now: datetime
) -> None:
    start, bookings = full_class(school, now)
    token = join(school, start, now, 1)
    cancel(school, bookings[0], now)
    with unit_of_work(school.database.sessions, write=True) as session:
        (maya,) = session.scalars(sa.select(StaffMember)).all()
        session.add(TimeOff(staff_id=maya.id, start_at=start, end_at=start + timedelta(hours=2)))
    answer = school_app.test_client().post(f"/api/v1/manage/{token}/accept")
    assert (answer.status_code, answer.get_json()["error"]["code"]) == (409, "offer_taken")
    assert entries(school)["w1@example.org"].state == "offered"


def test_leaving_passes_an_offer_on(school: Loaded, school_app: Any, now: datetime) -> None:
    client = school_app.test_client()
    start, bookings = full_class(school, now)
    first = join(school, start, now, 1)
    join(school, start, now, 2)
    cancel(school, bookings[0], now)
    left = client.post(f"/api/v1/manage/{first}/cancel")
    assert left.status_code == 200
    assert left.get_json()["state"] == "left"
    assert entries(school)["w2@example.org"].state == "offered"
    assert client.post(f"/api/v1/manage/{first}/cancel").get_json()["state"] == "left"
    assert client.get("/api/v1/manage/wl-nothing").status_code == 404


def test_one_live_offer_per_freed_place_in_the_database(school: Loaded, now: datetime) -> None:
    start, bookings = full_class(school, now)
    join(school, start, now, 1)
    join(school, start, now, 2)
    cancel(school, bookings[0], now)
    with pytest.raises(sa.exc.IntegrityError), school.database.sessions() as session:
        second = session.scalar(sa.select(WaitlistEntry).where(WaitlistEntry.state == "waiting"))
        assert second is not None
        second.state = "offered"
        second.freed_booking_id = bookings[0]
        session.commit()


# --- the job, and two worker processes at once --------------------------------------------------


def test_the_job_expires_offers_through_the_command(
    school: Loaded, now: datetime, bookwise_cli: Any, tmp_path: Path
) -> None:
    from bookwise.scheduling.core import core_jobs
    from bookwise.scheduling.registry import Every

    job = next(j for j in core_jobs(school.settings) if j.name == "waitlist-offers")
    assert isinstance(job.trigger, Every) and job.trigger.seconds == 60
    start, bookings = full_class(school, now)
    join(school, start, now, 1)
    join(school, start, now, 2)
    cancel(school, bookings[0], now)
    config = str(tmp_path / "school.yaml")
    at = (now + timedelta(hours=2, minutes=1)).isoformat()
    result = bookwise_cli("jobs", "run", "waitlist-offers", "--config", config, "--at", at)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip().endswith(": 1 waitlist offer(s) expired")
    found = entries(school)
    assert (found["w1@example.org"].state, found["w2@example.org"].state) == ("expired", "offered")
    again = bookwise_cli("jobs", "run", "waitlist-offers", "--config", config, "--at", at)
    assert again.exit_code == 0 and "expired" not in again.stdout


WORKER = """
import sys
from datetime import timedelta
from bookwise.bookings.models import Booking
from bookwise.bookings.offers import expire_offers
from bookwise.bookings.services import cancel_booking
from bookwise.clock import parse_instant
from bookwise.config import load_settings
from bookwise.database import open_database
from bookwise.db import unit_of_work
settings = load_settings(sys.argv[1], environ={})
database = open_database(settings)
now = parse_instant(sys.argv[2])
later = now + timedelta(hours=3)  # every offer made at `now` has run out by then
expired = 0
for booking_id in [int(n) for n in sys.argv[3].split(",")]:
    with unit_of_work(database.sessions, write=True) as session:
        booking = session.get(Booking, booking_id)
        cancel_booking(session, booking, now, role="staff", actor="load", plugins=None)
    with unit_of_work(database.sessions, write=True) as session:
        expired += expire_offers(session, later)
print(expired, flush=True)
"""
DAYS = 8
WAITING = 3  # per session, for its two places


@pytest.mark.slow
def test_two_worker_processes_never_offer_one_place_twice(
    school: Loaded, now: datetime, tmp_path: Path
) -> None:
    """Two processes cancel the bookings of eight full sessions (two places each) and expire
    offers at once, three people waiting per session: each freed place is offered to one
    person at a time, each person is offered a place once, and each offer has one message."""
    import subprocess
    import sys

    cancelled: list[int] = []
    for day in range(DAYS):
        start = session_start(now, 2 + day)
        cancelled += [book(school, start, now, 10 * day + n) for n in (1, 2)]
        for n in range(WAITING):
            join(school, start, now, 10 * day + n)
    config = tmp_path / "school.yaml"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(config), now.isoformat(), ids],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for ids in (
            ",".join(map(str, cancelled[0::2])),
            ",".join(map(str, reversed(cancelled[1::2]))),
        )
    ]
    for worker in workers:
        _out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
    with unit_of_work(school.database.sessions, write=True) as session:
        for hours in range(3, 3 * (WAITING + 2), 3):  # each place passes on down the line
            expire_offers(session, now + timedelta(hours=hours))
    with school.database.sessions() as session:
        found = session.scalars(sa.select(WaitlistEntry)).all()
        messages = session.scalars(
            sa.select(Notification.payload).where(Notification.template == "waitlist_offer")
        ).all()
    # Every person waiting got exactly one offer (three people, two places: the chain ends).
    assert sorted(e.state for e in found) == ["expired"] * (DAYS * WAITING)
    assert sorted(m["waitlist_entry_id"] for m in messages) == sorted(e.id for e in found)
    # Each offer was of a place its session freed.
    by_id = {b: session_start(now, 2 + n // 2) for n, b in enumerate(cancelled)}
    assert all(e.freed_booking_id is not None for e in found)
    assert all(by_id[e.freed_booking_id] == e.offered_start for e in found)


# --- the entry's page, without JavaScript -------------------------------------------------------


def form_token(page: str) -> str:
    import re

    found = re.search(r'name="form_token"[^>]*value="([^"]+)"', page)
    assert found is not None, page
    return found.group(1)


def test_the_entry_page_shows_the_line_then_the_offer_and_accepts_it(
    school: Loaded, school_app: Any, now: datetime
) -> None:
    client = school_app.test_client()
    start, bookings = full_class(school, now)
    token = join(school, start, now, 1)
    waiting = client.get(f"/manage/{token}")
    assert waiting.status_code == 200
    assert "You are number 1 in line." in waiting.get_data(as_text=True)
    assert (
        waiting.headers["Cache-Control"].startswith("no-store")
        or "private" in waiting.headers["Cache-Control"]
    )
    cancel(school, bookings[0], now)
    offered = client.get(f"/manage/{token}").get_data(as_text=True)
    assert "A place is free for you" in offered and ">Accept</button>" in offered
    stale = client.post(f"/manage/{token}/accept", data={"form_token": "forged"})
    assert stale.status_code == 409
    accepted = client.post(f"/manage/{token}/accept", data={"form_token": form_token(offered)})
    assert accepted.status_code == 302
    assert "/booked" in accepted.headers["Location"]
    page = client.get(accepted.headers["Location"]).get_data(as_text=True)
    assert "Your booking is confirmed" in page
    assert entries(school)["w1@example.org"].state == "booked"


def test_leaving_from_the_entry_page(school: Loaded, school_app: Any, now: datetime) -> None:
    client = school_app.test_client()
    start, _ = full_class(school, now)
    token = join(school, start, now, 1)
    page = client.get(f"/manage/{token}").get_data(as_text=True)
    left = client.post(f"/manage/{token}/leave", data={"form_token": form_token(page)})
    assert left.status_code == 302
    assert "You have left the waitlist." in client.get(left.headers["Location"]).get_data(
        as_text=True
    )
    assert client.get("/manage/wl-forged").status_code == 404


# --- privacy: encrypted answers, key rotation, erasure -------------------------------------------


def test_answers_are_encrypted_rotated_and_erased(
    school: Loaded, school_app: Any, now: datetime, bookwise_cli: Any, tmp_path: Path
) -> None:
    start, bookings = full_class(school, now)
    first = join(school, start, now, 1)
    join(school, start, now, 2)
    cancel(school, bookings[0], now)
    raw = sa.table("waitlist_entries", sa.column("id"), sa.column("answers", sa.JSON))
    with school.database.engine.connect() as connection:
        stored = connection.execute(sa.select(raw.c.answers)).scalars().all()
    assert all("$fernet" in str(value) and "'b'" not in str(value) for value in stored)

    result = bookwise_cli("--config", str(tmp_path / "school.yaml"), "keys", "rotate")
    assert result.exit_code == 0, result.stderr
    assert "2 waitlist entry(ies)" in result.stdout
    assert entries(school)["w2@example.org"].answers == {"level": "b"}

    with unit_of_work(school.database.sessions, write=True) as session:
        from bookwise.config import secret_key_of
        from bookwise.privacy.clients import erase_client

        erase_client(
            session, None, "w1@example.org", "test", now,
            secret=secret_key_of(school.settings), plugins=None,
        )  # fmt: skip
    with school.database.sessions() as session:
        erased = session.scalars(sa.select(WaitlistEntry).order_by(WaitlistEntry.id)).all()
        assert (erased[0].state, erased[0].answers, erased[0].client.email) == ("left", {}, None)
        # The place on offer to the erased client went to the next in line.
        assert erased[1].state == "offered"
        offers = session.scalars(
            sa.select(Notification.recipient).where(Notification.event == "waitlist_offer")
        ).all()
    assert sorted(offers) == ["(erased)", "w2@example.org"]
    assert school_app.test_client().get(f"/api/v1/manage/{first}").status_code == 404


def test_retention_erases_entries_whose_time_has_long_passed(
    school: Loaded, school_app: Any, now: datetime, tmp_path: Path
) -> None:
    from bookwise import instance
    from bookwise.privacy.retention import apply_retention, plan_retention

    class_file = tmp_path / "workflows" / "class.yaml"
    class_file.write_text(
        CLASS + "retention: {delete_answers_after: 30d, delete_client_after: 90d}\n"
    )
    instance.sync_workflows(school.settings, school.database)
    start, bookings = full_class(school, now)
    first = join(school, start, now, 1)
    join(school, start, now, 2)
    for number in (4, 5):
        book(school, start + timedelta(days=40), now, number)
    later = join(school, start + timedelta(days=40), now, 3)  # a time still ahead at day 33
    cancel(school, bookings[0], now)
    assert school_app.test_client().post(f"/api/v1/manage/{first}/accept").status_code == 200
    secret = "test-secret-" + "x" * 40

    with school.database.sessions() as session:
        soon = plan_retention(session, start + timedelta(days=29))
        assert soon.entries == 0
        due = plan_retention(session, start + timedelta(days=33))
    assert (due.entries, due.clients) == (2, 0)
    with unit_of_work(school.database.sessions, write=True) as session:
        done = apply_retention(session, start + timedelta(days=33), secret=secret)
        assert done.entries == 2
        again = apply_retention(session, start + timedelta(days=33), secret=secret)
        assert again.empty
    found = entries(school)
    assert (found["w1@example.org"].state, found["w1@example.org"].answers) == ("booked", {})
    assert (found["w2@example.org"].state, found["w2@example.org"].answers) == ("left", {})
    assert found["w3@example.org"].answers == {"level": "b"}
    client = school_app.test_client()
    assert client.get(f"/api/v1/manage/{first}").status_code == 404
    assert client.get(f"/api/v1/manage/{later}").status_code == 200

    # Past the clients' period, the rows of clients who only waited are pseudonymised (the
    # booking made through the offer has a client row of its own, the bookings' retention's);
    # the third client's time was 40 days later: their answers go, their row stays.
    with unit_of_work(school.database.sessions, write=True) as session:
        done = apply_retention(session, start + timedelta(days=95), secret=secret)
    # Five clients: the two who only waited, and the three of the first time's bookings.
    assert (done.entries, done.clients) == (1, 5)
    with school.database.sessions() as session:
        waited = session.scalars(sa.select(WaitlistEntry).order_by(WaitlistEntry.id)).all()
        assert [e.client.email for e in waited] == [None, None, "w3@example.org"]
        assert waited[2].answers == {}
    with school.database.sessions() as session:
        audited = session.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == "retention.applied")
        ).all()
    assert [a.details["waitlist_entries_erased"] for a in audited] == [2, 1]


def test_a_full_time_in_a_day_with_free_times_may_be_waited_for(
    school: Loaded, school_app: Any, now: datetime
) -> None:
    import re

    client = school_app.test_client()
    start = session_start(now) - timedelta(hours=8)  # 10:00, a lesson
    book_lesson(school, start, now)
    day = start.date().isoformat()
    page = client.get(f"/school/lesson?date={day}&tz=Europe/Paris").get_data(as_text=True)
    assert 'href="/school/lesson/book?start=' in page  # the day has free times
    assert "Join the waitlist for this day" not in page
    links = re.findall(r'class="join-waitlist" href="([^"]+)"', page)
    assert len(links) == 1 and "start=" in links[0], links
    times = client.get(f"/school/lesson/times?date={day}&tz=Europe/Paris").get_json()
    assert [t["href"] for t in times["full"]] == [links[0].replace("&amp;", "&")]
    url = links[0].replace("&amp;", "&")
    form = client.get(url).get_data(as_text=True)
    assert "Every place at this time is taken." in form
    # Without the script: an answer that makes another question apply brings the form back
    # with it, nothing written.
    details = {"field_name": "W1", "field_email": "w1@example.org", "field_goal": "exam"}
    more = client.post(url, data={"form_token": form_token(form), "asked": "", **details})
    assert more.status_code == 200
    assert "A few more questions" in more.get_data(as_text=True)
    assert entries(school) == {}
    exam = (start + timedelta(days=20)).date().isoformat()
    joined = client.post(
        url,
        data={
            "form_token": form_token(form),
            "asked": "exam_day",
            **details,
            "field_exam_day": exam,
            "start": start.isoformat(),
        },
    )
    assert joined.status_code == 302, joined.get_data(as_text=True)[:3000]
    entry = entries(school)["w1@example.org"]
    assert entry.wanted_from == entry.wanted_until == start
    assert entry.answers == {"goal": "exam", "exam_day": exam}
    again = client.post(
        url,
        data={
            "form_token": form_token(form),
            "asked": "exam_day",
            **details,
            "field_exam_day": exam,
        },
    )
    assert again.status_code == 409
    assert "already on the waitlist" in again.get_data(as_text=True)


@contextmanager
def windows_read(engine: sa.Engine) -> Iterator[list[timedelta]]:
    """The span of each window that the availability searches on ``engine`` read (their
    time-off query's bounds, as sent to the database), in order."""
    spans: list[timedelta] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if "FROM time_off" in statement:
            values = parameters.values() if isinstance(parameters, dict) else parameters
            moments = [  # SQLite's are sent as text (UTC), PostgreSQL's as datetimes
                datetime.fromisoformat(v) if isinstance(v, str) else v.replace(tzinfo=None)
                for v in values
                if isinstance(v, datetime) or (isinstance(v, str) and v[:4].isdigit())
            ]
            spans.append(max(moments) - min(moments))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield spans
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def test_the_times_answer_tells_the_days_full_times_as_the_page_does(
    school: Loaded, school_app: Any, now: datetime
) -> None:
    """/times looks for the full times of its day alone (not of the whole month): the same as
    the page lists for that day, day after day."""
    import re

    client = school_app.test_client()
    first = session_start(now) - timedelta(hours=8)  # 10:00, a lesson
    second = first + timedelta(days=1, hours=2)  # 12:00 the next day
    for start in (first, second):
        book_lesson(school, start, now)
    for start in (first, second):
        query = f"date={start.astimezone(PARIS).date()}&tz=Europe/Paris"
        page = client.get(f"/school/lesson?{query}").get_data(as_text=True)
        links = [
            h.replace("&amp;", "&") for h in re.findall(r'"join-waitlist" href="([^"]+)"', page)
        ]
        # The page's searches left their days in the slot cache: forgotten, to see the reads.
        school_app.extensions["bookwise"].slot_cache.clear()
        with windows_read(school_app.extensions["bookwise"].database.engine) as spans:
            times = client.get(f"/school/lesson/times?{query}").get_json()
        assert [t["href"] for t in times["full"]] == links
        assert [t["start"] for t in times["full"]] == [start.astimezone(PARIS).isoformat()]
        # The month's free times, then the day's times as if nothing were booked: one day and
        # the margins (the lesson's hour and a day) on either side.
        assert len(spans) == 2 and spans[1] <= timedelta(days=3, hours=3), spans


def test_the_times_as_if_nothing_were_booked_read_no_booking(school: Loaded, now: datetime) -> None:
    """The search that tells full times from times never offered (the picker's full times, a
    join's check) sends no query of the bookings or the held places: it would drop them."""
    start = session_start(now) - timedelta(hours=8)  # 10:00, a lesson
    book_lesson(school, start, now)
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    day = local_day_bounds(start.date(), start.date(), PARIS)
    with school.database.sessions() as session:
        context = find_service(session, "school", "lesson")

        def starts(search: SlotSearch) -> set[datetime]:
            found = service_availability(
                session, context.calendar, context.service, context.workflow, *day, now, search
            )
            return {slot.start for slot in found.slots}

        free = starts(SlotSearch())
        sa.event.listen(school.database.engine, "before_cursor_execute", record)
        try:
            unbooked = starts(SlotSearch(ignore_bookings=True))
        finally:
            sa.event.remove(school.database.engine, "before_cursor_execute", record)
    assert start not in free
    assert unbooked == free | {start}
    assert any("FROM working_hours" in s for s in statements), statements
    assert not [s for s in statements if "bookings" in s or "waitlist_entries" in s]


def test_a_full_day_offers_to_join_the_waitlist_without_javascript(
    school: Loaded, school_app: Any, now: datetime
) -> None:
    client = school_app.test_client()
    start, _ = full_class(school, now)
    day = start.date().isoformat()
    page = client.get(f"/school/class?date={day}&tz=Europe/Paris").get_data(as_text=True)
    # One session that day: waiting for it is waiting for the day (one link, the time's).
    assert "Join the waitlist for this day" not in page
    assert page.count('class="join-waitlist"') == 1
    assert "Shaded days are full" in page
    free_day = (start + timedelta(days=1)).date().isoformat()
    other = client.get(f"/school/class?date={free_day}&tz=Europe/Paris").get_data(as_text=True)
    assert "Join the waitlist for this day" not in other and "join-waitlist" not in other
    plain = client.get(f"/school/plain?date={day}&tz=Europe/Paris").get_data(as_text=True)
    assert "Join the waitlist" not in plain

    url = f"/school/class/waitlist?date={day}&tz=Europe/Paris"
    form = client.get(url).get_data(as_text=True)
    assert "Every time of this day is taken." in form
    missing = client.post(url, data={"form_token": form_token(form), "field_name": "W1"})
    assert missing.status_code == 422
    joined = client.post(
        url,
        data={
            "form_token": form_token(form),
            "field_name": "W1",
            "field_email": "w1@example.org",
            "field_level": "b",
        },
    )
    assert joined.status_code == 302, joined.get_data(as_text=True)[:2000]
    confirmation = client.get(joined.headers["Location"]).get_data(as_text=True)
    assert "You are on the waitlist." in confirmation
    assert "You are number 1 in line." in confirmation
    entry = entries(school)["w1@example.org"]
    assert entry.wanted_from != entry.wanted_until  # the day
    closed = client.get(f"/school/plain/waitlist?date={day}")
    assert closed.status_code == 409
    assert "This service has no waitlist." in closed.get_data(as_text=True)


@pytest.mark.parametrize(
    "query",
    [
        "start=not-a-time",
        "start=2026-13-45T10:00:00%2B01:00",
        "start=9999-12-31T23:59:59%2B14:00",
        "start=2027-01-05T10:00:00",  # no offset
        "start=%ED%A0%80",  # a lone surrogate, as UTF-8 bytes
        "start=2027-01-05T10:07:00%2B01:00",  # not a start of the service
        "date=0001-01-01",
        "date=2027-02-30",
        "start=2020-01-01T10:00:00%2B01:00",  # past
    ],
)
def test_a_join_link_with_a_bad_time_is_a_clear_refusal(
    school: Loaded, school_app: Any, now: datetime, query: str
) -> None:
    client = school_app.test_client()
    page = client.get(f"/school/lesson/waitlist?{query}")
    assert page.status_code in (200, 409), page.status_code
    if page.status_code == 200:  # a time the form names: sending it says what is wrong
        form = page.get_data(as_text=True)
        sent = client.post(
            f"/school/lesson/waitlist?{query}",
            data={"form_token": form_token(form), "field_name": "W", "field_email": "w@x.org"},
        )
        assert sent.status_code in (409, 422), sent.status_code
        assert "error-summary" in sent.get_data(as_text=True)
    assert entries(school) == {}


def test_two_joins_at_once_by_one_person_make_one_entry(school: Loaded, now: datetime) -> None:
    """The second join waits for the first's transaction, then finds its entry: refused."""
    import threading

    from bookwise.bookings.waitlist import AlreadyWaiting

    start, _bookings = full_class(school, now)
    outcome: list[str] = []

    def second() -> None:
        try:
            join(school, start, now, 1)
            outcome.append("joined")
        except AlreadyWaiting:
            outcome.append("refused")

    with unit_of_work(school.database.sessions, write=True) as session:
        join_waitlist(
            session,
            find_service(session, "school", "class"),
            WaitlistRequest(
                values={"name": "W1", "email": "w1@example.org", "level": "b"}, start=start
            ),
            now,
            plugins=None,
        )
        other = threading.Thread(target=second)
        other.start()
        other.join(timeout=1.0)  # it waits for this transaction
        assert other.is_alive() and outcome == []
    other.join(timeout=30)
    assert outcome == ["refused"]
    assert len(entries(school)) == 1
