"""One way to book: the public form, the back office's phone booking and the API all go through
``book_from_answers``, so a refusal reads the same wherever it happens (issue 13, item 2)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from html import unescape
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bookwise.bookings.messages import describe
from bookwise.calendars.models import Service
from bookwise.i18n import gettext
from bookwise.workflows.models import WorkflowRecord
from tests.admin.conftest import NOW, World, db, post
from tests.test_public import form_values

PARIS = ZoneInfo("Europe/Paris")
ORIGIN = {"Origin": "http://localhost"}


def _start() -> datetime:
    """10:00 in Paris on the Monday after the back office's instant (a Wednesday): open, free."""
    day = NOW.astimezone(PARIS).date() + timedelta(days=5)
    return datetime(day.year, day.month, day.day, 10, tzinfo=PARIS)


def _text(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def _api(world: World, start: datetime, email: str) -> Any:
    return world.app.test_client().post(
        "/api/v1/calendars/acme/services/review/bookings",
        json={
            "start": start.isoformat(),
            "staff": "ana",
            "client": {"name": "Api Client", "email": email},
        },
    )


def _public_form(world: World, start: datetime) -> Any:
    """A visitor opens the form for ``start`` (while it is free); call the result to send it."""
    web = world.app.test_client()
    url = f"/acme/review/book?start={quote(start.isoformat())}&tz=Europe/Paris&staff=ana"
    hidden = form_values(web.get(url).get_data(as_text=True))
    assert hidden.get("start"), "the form was not offered"

    def send(email: str) -> Any:
        answers = hidden | {"field_name": "Web Client", "field_email": email}
        return web.post("/acme/review/book", data=answers, headers=ORIGIN)

    return send


def _admin(world: World, start: datetime, email: str) -> Any:
    client = world.login("admin")
    with db(world) as session:
        service_id = session.scalar(
            select(Service.id)
            .join(WorkflowRecord)
            .where(Service.calendar_id == world.ids["acme"], WorkflowRecord.slug == "review")
        )
    path = f"/admin/bookings/new?service={service_id}&start={quote(start.isoformat())}"
    return post(
        client,
        path,
        {
            "service": service_id,
            "start": start.isoformat(),
            "field_name": "Phone Client",
            "field_email": email,
            "staff_member": "ana",
        },
    )


def test_a_taken_time_reads_the_same_on_the_page_in_the_back_office_and_in_the_api(
    world: World,
) -> None:
    start = _start()
    send_public = _public_form(world, start)  # opened while the time was free
    first = _api(world, start, "first@client.example")
    assert first.status_code == 201, first.get_json()
    with world.app.test_request_context():
        taken = gettext(describe("slot_taken"))

    api = _api(world, start, "second@client.example")
    assert api.status_code == 409
    assert api.get_json()["error"] == {"code": "slot_taken", "message": taken}
    page = send_public("third@client.example")
    assert page.status_code == 409 and taken in _text(page.get_data(as_text=True))
    office = _admin(world, start, "fourth@client.example")
    assert office.status_code == 409 and taken in _text(office.get_data(as_text=True))


def test_a_wrong_answer_reads_the_same_everywhere(world: World) -> None:
    start = _start() + timedelta(hours=2)
    api = _api(world, start, "not an address")
    assert api.status_code == 422
    said = api.get_json()["error"]["fields"]["email"]
    page = _public_form(world, start)("not an address")
    office = _admin(world, start, "not an address")
    for response in (page, office):
        assert response.status_code == 422
        assert said in _text(response.get_data(as_text=True))
