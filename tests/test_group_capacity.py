"""What a group's capacity means when two staff members can teach it, told truthfully by the slots
API and the booking page, and enforced by the booking service under a race on SQLite and
PostgreSQL.

The calendar "school" has two tutors. ``class`` is one group of 6 per session whoever teaches it
(``capacity: {places: 6, per: slot}``); ``lab`` is a group of 6 per free tutor (``capacity: 6``).
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from bookwise.bookings.models import Booking
from bookwise.bookings.services import (
    BookingError,
    BookingRequest,
    create_booking,
    find_service,
)
from bookwise.clock import Clock
from bookwise.db import unit_of_work
from tests.conftest import Loaded, base_config, write_config

PARIS = ZoneInfo("Europe/Paris")
CLIENTS = 40

CLASS = """id: class
name: Class
duration: 1h30m
booking_window: {min_notice: 0m, max_ahead: 60d}
capacity: {places: 6, per: slot}
sessions:
  - {days: [mon, tue, wed, thu, fri, sat, sun], at: "18:00"}
staff: {tags: [tutor], assignment: round_robin}
notifications: []
"""
LAB = """id: lab
name: Lab
duration: 1h30m
booking_window: {min_notice: 0m, max_ahead: 60d}
capacity: 6
sessions:
  - {days: [mon, tue, wed, thu, fri, sat, sun], at: "18:00"}
staff: {tags: [tutor], assignment: round_robin}
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
      - {id: priya, name: Priya, email: priya@school.example, tags: [tutor]}
    services:
      - workflow: class
      - workflow: lab
"""


@pytest.fixture
def school(tmp_path: Path, database_url: str) -> Any:
    from bookwise import instance
    from bookwise.config import load_settings
    from bookwise.database import open_database

    workflows = tmp_path / "workflows"
    workflows.mkdir()
    (workflows / "class.yaml").write_text(CLASS)
    (workflows / "lab.yaml").write_text(LAB)
    (tmp_path / "calendars.yaml").write_text(CALENDARS)
    values = base_config(tmp_path, database_url) | {"workflows": str(workflows)}
    settings = load_settings(write_config(tmp_path / "school.yaml", values), environ={})
    database = open_database(settings)
    instance.sync_workflows(settings, database)
    instance.load_calendar_file(settings, database, tmp_path / "calendars.yaml")
    yield Loaded(settings, database)
    database.engine.dispose()


@pytest.fixture
def school_app(school: Loaded, clock: Clock) -> Any:
    from bookwise.app import create_app

    application = create_app(school.settings, clock=clock)
    application.config.update(TESTING=True)
    yield application
    application.extensions["bookwise"].database.engine.dispose()


def session_start(now: datetime, days: int = 2) -> datetime:
    """18:00 in Paris, ``days`` local days after ``now`` (a session of both services)."""
    day = now.astimezone(PARIS).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, 18, tzinfo=PARIS)


def book(school: Loaded, service: str, start: datetime, now: datetime, number: int) -> Any:
    with unit_of_work(school.database.sessions, write=True) as session:
        context = find_service(session, "school", service)
        booking = create_booking(
            session,
            context,
            BookingRequest(
                start=start,
                values={"name": f"S{number}", "email": f"s{number}@example.org"},
            ),
            now,
            plugins=None,
        )
        return booking.staff_id


def race(school: Loaded, service: str, start: datetime, now: datetime) -> Counter[str]:
    """CLIENTS threads book ``start`` through the service at the same instant."""
    barrier = threading.Barrier(CLIENTS)
    outcomes: list[str] = []
    lock = threading.Lock()

    def client(number: int) -> None:
        barrier.wait()
        try:
            book(school, service, start, now, number)
            outcome = "booked"
        except BookingError as error:
            outcome = error.code
        except Exception as error:  # reported, so that the assertion shows what went wrong
            outcome = f"{type(error).__name__}: {error}"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    return Counter(outcomes)


def held(school: Loaded, service: str, start: datetime) -> list[int]:
    """The staff ids of the bookings of ``service`` at ``start`` that hold their place."""
    with school.database.sessions() as session:
        return list(
            session.scalars(
                sa.select(Booking.staff_id)
                .join(Booking.service)
                .where(Booking.start_at == start, Booking.holds_slot)
                .where(Booking.service_id.in_(_service_ids(session, service)))
            )
        )


def _service_ids(session: Any, service: str) -> list[int]:
    from bookwise.calendars.models import Service
    from bookwise.workflows.models import WorkflowRecord

    return list(
        session.scalars(
            sa.select(Service.id).join(Service.workflow).where(WorkflowRecord.slug == service)
        )
    )


def test_one_group_per_slot_takes_exactly_its_places_under_a_race(
    school: Loaded, now: datetime
) -> None:
    start = session_start(now)
    assert race(school, "class", start, now) == Counter({"booked": 6, "slot_taken": CLIENTS - 6})
    staff = held(school, "class", start)
    assert len(staff) == 6 and len(set(staff)) == 1, "one group, with one tutor"


def test_a_group_per_tutor_takes_each_tutors_places_under_a_race(
    school: Loaded, now: datetime
) -> None:
    start = session_start(now)
    assert race(school, "lab", start, now) == Counter({"booked": 12, "slot_taken": CLIENTS - 12})
    assert sorted(Counter(held(school, "lab", start)).values()) == [6, 6]


def test_remaining_tells_the_truth_in_the_api_and_on_the_page(
    school: Loaded, school_app: Any, now: datetime
) -> None:
    client = school_app.test_client()
    # On two days: the tutors teaching one service's group are not free for the other's.
    starts = {"class": session_start(now, 2), "lab": session_start(now, 3)}

    def remaining(service: str) -> int | None:
        day = starts[service].date().isoformat()
        slots = client.get(
            f"/api/v1/calendars/school/services/{service}/slots?from={day}&to={day}"
        ).get_json()["slots"]
        return {s["start"]: s["remaining"] for s in slots}.get(starts[service].isoformat())

    def places(service: str) -> str | None:
        day = starts[service].date().isoformat()
        data = client.get(f"/school/{service}/times?date={day}&tz=Europe/Paris").get_json()
        return {s["start"]: s["places"] for s in data["slots"]}.get(starts[service].isoformat())

    assert remaining("class") == 6 and places("class") == "6 places left"
    assert remaining("lab") == 12 and places("lab") == "12 places left"
    for number in range(2):
        book(school, "class", starts["class"], now, number)
        book(school, "lab", starts["lab"], now, 10 + number)
    assert remaining("class") == 4 and places("class") == "4 places left"
    assert remaining("lab") == 10 and places("lab") == "10 places left"
    # Exactly as many more succeed as were announced, then the time is gone.
    for number in range(4):
        book(school, "class", starts["class"], now, 20 + number)
    assert remaining("class") is None and places("class") is None
    with pytest.raises(BookingError) as caught:
        book(school, "class", starts["class"], now, 99)
    assert caught.value.code == "slot_taken"
    for number in range(10):
        book(school, "lab", starts["lab"], now, 30 + number)
    assert remaining("lab") is None and places("lab") is None


def test_staff_naming_another_tutor_still_cannot_overfill_one_group(
    school: Loaded, now: datetime
) -> None:
    """A phone booking may name the tutor; the one group still holds 6 places in all."""
    start = session_start(now)
    first = book(school, "class", start, now, 0)
    with school.database.sessions() as session:
        from bookwise.calendars.models import StaffMember

        other = session.scalar(sa.select(StaffMember.slug).where(StaffMember.id != first))
    for number in range(1, 6):
        with unit_of_work(school.database.sessions, write=True) as session:
            context = find_service(session, "school", "class")
            create_booking(
                session,
                context,
                BookingRequest(
                    start=start,
                    values={"name": f"P{number}", "email": f"p{number}@example.org"},
                    staff=other,
                    by_staff=True,
                    source="admin",
                    actor="staff",
                ),
                now,
                plugins=None,
            )
    with pytest.raises(BookingError) as caught:
        book(school, "class", start, now, 6)
    assert caught.value.code == "slot_taken"
    assert len(held(school, "class", start)) == 6
