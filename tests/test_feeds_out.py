"""Subscribable calendars: private, revocable addresses per staff member and per calendar, read
by a calendar client (parsed here by icalendar and, independently, by vobject)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import icalendar
import pytest
import sqlalchemy as sa
import vobject

from bookwise.audit.models import AuditEntry
from bookwise.audit.services import Actor
from bookwise.calendars.feeds import active_link, create_link, stop_link
from bookwise.calendars.models import Calendar, FeedLink, StaffMember
from bookwise.db import unit_of_work
from tests.conftest import Loaded
from tests.test_api import tomorrow_at

pytestmark = pytest.mark.clock

BASE = "https://bookings.example.org"


def make_link(loaded: Loaded, staff: str | None, now: datetime, calendar: str = "acme") -> str:
    with unit_of_work(loaded.database.sessions, write=True) as session:
        cal = session.scalar(sa.select(Calendar).where(Calendar.slug == calendar))
        assert cal is not None
        member = None
        if staff is not None:
            member = session.scalar(
                sa.select(StaffMember).where(
                    StaffMember.slug == staff, StaffMember.calendar_id == cal.id
                )
            )
        return create_link(session, cal, member, actor=Actor("test"), now=now, base_url=BASE)


def path_of(url: str) -> str:
    assert url.startswith(BASE + "/feeds/") and url.endswith(".ics")
    return url[len(BASE) :]


def book(api: Any, start: datetime, staff: str, name: str = "Zoé Martin") -> None:
    body = {
        "start": start.isoformat(),
        "staff": staff,
        "client": {"name": name, "email": "zoe@example.org"},
    }
    response = api.post("/api/v1/calendars/acme/services/review/bookings", json=body)
    assert response.status_code == 201, response.get_json()


def events_of(data: bytes) -> list[Any]:
    return list(icalendar.Calendar.from_ical(data).walk("VEVENT"))


def test_a_staff_feed_holds_their_bookings_only(
    scenario: Loaded, scenario_app: Any, now: datetime
) -> None:
    api = scenario_app.test_client()
    book(api, tomorrow_at(10), "ben")
    book(api, tomorrow_at(11), "cleo")
    url = make_link(scenario, "ben", now)
    response = api.get(path_of(url))
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    assert "private" in response.headers["Cache-Control"]
    [event] = events_of(response.data)
    assert str(event["status"]) == "TENTATIVE"  # review waits for staff approval
    assert event.decoded("dtstart").astimezone(UTC) == tomorrow_at(10).astimezone(UTC)
    assert str(event["dtstart"].params["TZID"]) == "Europe/Paris"
    # The calendar does not allow clients' names: the event names the service only.
    assert "Zoé" not in response.data.decode()
    assert "zoe@example.org" not in response.data.decode()
    # A second, independent parser reads the same.
    parsed = vobject.readOne(response.data.decode())
    [vevent] = parsed.vevent_list
    assert vevent.dtstart.value.astimezone(UTC) == tomorrow_at(10).astimezone(UTC)
    assert vevent.uid.value == str(event["uid"])
    # Polled again unchanged: 304.
    etag = response.headers["ETag"]
    assert api.get(path_of(url), headers={"If-None-Match": etag}).status_code == 304


def test_the_calendar_feed_names_clients_only_when_allowed(
    scenario: Loaded, scenario_app: Any, now: datetime
) -> None:
    api = scenario_app.test_client()
    book(api, tomorrow_at(10), "ben", name="Zoé Martin")
    url = make_link(scenario, None, now)
    [event] = events_of(api.get(path_of(url)).data)
    assert "Zoé" not in str(event["summary"])
    assert "Ben" in str(event["summary"])  # the calendar's feed says whose booking it is
    with unit_of_work(scenario.database.sessions, write=True) as session:
        cal = session.scalar(sa.select(Calendar).where(Calendar.slug == "acme"))
        assert cal is not None
        cal.feed_client_names = True
    [event] = events_of(api.get(path_of(url)).data)
    assert "Zoé Martin" in str(event["summary"])


def test_a_new_address_ends_the_old_one_and_stopping_ends_it(
    scenario: Loaded, scenario_app: Any, now: datetime
) -> None:
    api = scenario_app.test_client()
    first = make_link(scenario, "ben", now)
    assert api.get(path_of(first)).status_code == 200
    second = make_link(scenario, "ben", now)
    assert api.get(path_of(first)).status_code == 404
    assert api.get(path_of(second)).status_code == 200
    with unit_of_work(scenario.database.sessions, write=True) as session:
        cal = session.scalar(sa.select(Calendar).where(Calendar.slug == "acme"))
        ben = session.scalar(sa.select(StaffMember).where(StaffMember.slug == "ben"))
        assert cal is not None and ben is not None
        link = active_link(session, cal, ben)
        assert link is not None and link.last_used_at is not None
        assert now <= link.last_used_at < now + timedelta(minutes=1)  # the app's clock runs on
        assert stop_link(session, cal, ben, actor=Actor("test"), now=now)
        assert active_link(session, cal, ben) is None
    assert api.get(path_of(second)).status_code == 404
    with scenario.database.sessions() as session:
        actions = session.scalars(
            sa.select(AuditEntry.action)
            .where(AuditEntry.action.like("feed.%"))
            .order_by(AuditEntry.id)
        ).all()
        assert actions == ["feed.created", "feed.replaced", "feed.stopped"]
        # Only hashes are stored.
        tokens = [path_of(u)[len("/feeds/") : -len(".ics")] for u in (first, second)]
        hashes = session.scalars(sa.select(FeedLink.token_hash)).all()
        assert not set(tokens) & set(hashes)


@pytest.mark.parametrize(
    "path",
    [
        "/feeds/nope.ics",
        "/feeds/" + "a" * 300 + ".ics",
        "/feeds/%00.ics",
        "/feeds/%ED%A0%80.ics",
        "/feeds/.ics",
    ],
)
def test_unknown_addresses_are_plain_404(scenario_app: Any, path: str) -> None:
    response = scenario_app.test_client().get(path)
    assert response.status_code == 404
