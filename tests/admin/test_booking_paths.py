"""One way to book: the public form, the back office's phone booking and the API all go through
``find_service`` then ``create_booking`` (``book_from_answers``), so a refusal reads the same
wherever it happens (issue 13, item 2), a plugin's refusal (``bookwise_validate_booking``)
included."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from html import unescape
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bookwise.bookings.messages import describe
from bookwise.bookings.models import Booking, Client
from bookwise.calendars.models import Service
from bookwise.i18n import gettext
from bookwise.notifications.models import Notification
from bookwise.plugins import BookingData, hookimpl
from bookwise.plugins.host import PluginHost, PluginInfo
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


# --- a plugin's bookwise_validate_booking --------------------------------------------------------


class Gatekeeper:
    """A business rule the workflow language cannot say: no bookings from one domain."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.seen: list[Any] = []

    @hookimpl
    def bookwise_validate_booking(self, booking: BookingData) -> Any:
        self.seen.append(booking)
        if self.fail:
            raise RuntimeError("the referral system is down")
        if booking.client_email.endswith("@blocked.example"):
            return {"en": "Bookings from this company go through its HR office.", "fr": "Non."}
        return None


def _with_plugin(world: World, plugin: Gatekeeper) -> PluginHost:
    host: PluginHost = world.app.extensions["bookwise"].database.plugins
    host.manager.register(plugin, name="gatekeeper")
    host.plugins["gatekeeper"] = PluginInfo("gatekeeper", "tests", None, None, False, True)
    return host


def _counts(world: World) -> tuple[int, int, int]:
    with db(world) as session:
        return (
            session.scalar(select(func.count()).select_from(Booking)) or 0,
            session.scalar(select(func.count()).select_from(Client)) or 0,
            session.scalar(select(func.count()).select_from(Notification)) or 0,
        )


def test_a_plugin_refuses_a_booking_in_the_same_words_everywhere_and_nothing_is_written(
    world: World,
) -> None:
    gatekeeper = Gatekeeper()
    host = _with_plugin(world, gatekeeper)
    assert host.checks_bookings()
    start = _start() + timedelta(hours=4)
    send_public = _public_form(world, start)
    before = _counts(world)
    told = "Bookings from this company go through its HR office."

    api = _api(world, start, "ann@blocked.example")
    assert api.status_code == 422
    assert api.get_json()["error"] == {"code": "refused", "message": told}
    page = send_public("bob@blocked.example")
    assert page.status_code == 409 and told in _text(page.get_data(as_text=True))
    office = _admin(world, start, "cy@blocked.example")
    assert office.status_code == 409 and told in _text(office.get_data(as_text=True))
    assert _counts(world) == before  # no booking, no client, no message
    # The plugin saw the booking as it would have been: the time, the staff member, the client.
    seen = gatekeeper.seen[0]
    assert (
        seen.start == start and seen.staff == "ana" and seen.client_email == "ann@blocked.example"
    )

    allowed = _api(world, start, "dee@client.example")
    assert allowed.status_code == 201, allowed.get_json()


def test_a_plugin_whose_check_fails_is_reported_and_does_not_close_the_booking_page(
    world: World,
) -> None:
    host = _with_plugin(world, Gatekeeper(fail=True))
    response = _api(world, _start() + timedelta(hours=5), "eve@blocked.example")
    assert response.status_code == 201, response.get_json()
    info = host.plugins["gatekeeper"]
    assert info.errors == 1 and "the referral system is down" in (info.last_error or "")
