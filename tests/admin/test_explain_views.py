"""'Why is this time not offered?' from outside: the API's contract, the back office's page and
day view, ``bookwise explain``; and what each reader may learn of a staff member's life."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bookwise.bookings.models import Booking
from bookwise.calendars.models import BusyTime, StaffMember, TimeOff
from tests.admin.conftest import NOW, World, db
from tests.conftest import add_workflow_version

URL = "/api/v1/calendars/acme/services/consult/explain"
PRIVATE_URL = "/api/v1/calendars/private/services/consult/explain"
DAY = NOW + timedelta(days=3)  # Saturday 28 November 2026; the world's consult at 09:00 UTC


def explain(client: Any, url: str = URL, **params: str) -> Any:
    return client.get(url, query_string=params)


def staff_slug_of(world: World, booking_id: int) -> str:
    session = db(world)
    try:
        booking = session.get(Booking, booking_id)
        assert booking is not None
        return session.get(StaffMember, booking.staff_id).slug  # type: ignore[union-attr]
    finally:
        session.close()


def add(world: World, *rows: Any) -> None:
    session = db(world)
    try:
        session.add_all(rows)
        session.commit()
    finally:
        session.close()


def by_id(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {member["id"]: member for member in data["staff"]}


def test_the_contract_names_the_booked_member_and_the_free_ones(world: World) -> None:
    booked = staff_slug_of(world, world.ids["acme_consult"])
    response = explain(world.app.test_client(), start=DAY.replace(hour=9).isoformat())
    assert response.status_code == 200
    data = response.get_json()
    assert data["start"] == "2026-11-28T09:00:00+00:00"
    assert data["offered"] is True and data["reasons"] == []
    staff = by_id(data)
    assert set(staff) == {"ana", "ben", "cleo"}
    assert staff[booked]["free"] is False
    assert [r["code"] for r in staff[booked]["reasons"]] == ["booked"]
    # A client learns that the person is booked, not when or with whom.
    assert staff[booked]["reasons"][0]["message"] == "Already booked."
    assert all(m["free"] and m["reasons"] == [] for slug, m in staff.items() if slug != booked)


@pytest.mark.parametrize(
    ("start", "code"),
    [
        (NOW - timedelta(hours=1), "past"),
        (NOW + timedelta(days=402), "max_ahead"),
    ],
)
def test_the_booking_window_is_a_service_wide_reason(world: World, start: Any, code: str) -> None:
    data = explain(world.app.test_client(), start=start.replace(minute=0).isoformat()).get_json()
    assert data["offered"] is False
    assert [r["code"] for r in data["reasons"]] == [code]


def test_off_the_step_and_outside_hours(world: World) -> None:
    client = world.app.test_client()
    data = explain(client, start=DAY.replace(hour=9, minute=10).isoformat()).get_json()
    codes = {m["id"]: [r["code"] for r in m["reasons"]] for m in data["staff"]}
    assert set(map(tuple, codes.values())) <= {("not_a_start",), ("not_a_start", "booked")}
    message = data["staff"][0]["reasons"][0]["message"]
    assert message == (
        "Not a start time of this service: the nearest are 10:00\u202fAM and 10:30\u202fAM."
    )
    # 21:00 in Paris: acme works 08:00-20:00. Asked in French, answered in French.
    data = explain(client, start="2026-11-28T21:00:00+01:00", lang="fr").get_json()
    assert {r["code"] for m in data["staff"] for r in m["reasons"]} == {"outside_hours"}
    assert data["staff"][0]["reasons"][0]["message"] == "En dehors des heures de travail."


def test_time_off_and_busy_details_only_for_those_who_may_read_them(world: World) -> None:
    start = DAY.replace(hour=14)
    add(
        world,
        TimeOff(
            staff_id=world.ids["staff_ben"],
            start_at=start,
            end_at=start + timedelta(hours=1),
            reason="Medical appointment",
            origin="admin",
        ),
        BusyTime(
            staff_id=world.ids["staff_cleo"],
            start_at=start,
            end_at=start + timedelta(hours=1),
            source="Outlook (work)",
        ),
    )

    def messages(client: Any) -> dict[str, str]:
        data = explain(client, start=start.isoformat()).get_json()
        return {m["id"]: " ".join(r["message"] for r in m["reasons"]) for m in data["staff"]}

    public = messages(world.app.test_client())
    assert public["ben"] == "Time off, 3:00\u202fPM\u20134:00\u202fPM."
    assert public["cleo"] == "Busy in another calendar, 3:00\u202fPM\u20134:00\u202fPM."
    for who in ("admin", "viewer", "super"):
        told = messages(world.login(who))
        assert "Medical appointment" in told["ben"], who
        assert "Outlook (work)" in told["cleo"], who
    # A staff member of the calendar reads no more of a colleague than a client does.
    assert messages(world.login("ana")) == public


def test_a_sign_in_calendar_explains_to_signed_in_users_only(world: World) -> None:
    start = (NOW + timedelta(days=20, hours=1)).isoformat()
    anonymous = explain(world.app.test_client(), PRIVATE_URL, start=start)
    assert anonymous.status_code == 401
    assert anonymous.get_json()["error"]["code"] == "sign_in_required"
    stranger = explain(world.login("admin"), PRIVATE_URL, start=start).get_json()
    assert stranger["staff"][0]["reasons"][0]["code"] == "time_off"
    assert "Secret trip" not in str(stranger)
    owner = explain(world.login("other"), PRIVATE_URL, start=start).get_json()
    assert "Secret trip" in owner["staff"][0]["reasons"][0]["message"]


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({}, 400, "invalid_start"),
        ({"start": "tomorrow"}, 400, "invalid_start"),
        ({"start": "2026-11-28T10:00"}, 400, "invalid_start"),
        ({"start": "9999-11-28T10:00:00Z"}, 400, "invalid_start"),
        ({"start": "2026-11-28T10:00:00%ED%A0%80Z"}, 400, "invalid_start"),  # a lone surrogate
        ({"start": "2026-11-28T10:00:00Z", "tz": "Mars/Olympus"}, 400, "invalid_timezone"),
    ],
)
def test_bad_questions_get_clear_errors(
    world: World, params: dict[str, str], status: int, code: str
) -> None:
    query = "&".join(f"{key}={value}" for key, value in params.items())
    response = world.app.test_client().get(f"{URL}?{query}")
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code


def test_an_unknown_service_is_404(world: World) -> None:
    response = explain(
        world.app.test_client(), "/api/v1/calendars/acme/services/nope/explain", start="x"
    )
    assert response.status_code == 404


# --- the back office ----------------------------------------------------------------------------


def test_the_day_view_links_each_empty_time_to_its_explanation(world: World) -> None:
    client = world.login("admin")
    page = client.get(f"/admin/bookings/grid?date={DAY.date().isoformat()}").get_data(True)
    assert 'class="agenda-empty" data-explain="/admin/bookings/explain?start=2026-11-28T08' in page
    link = (
        f"/admin/bookings/explain?start=2026-11-28T11:00:00%2B01:00&staff={world.ids['staff_ana']}"
    )
    assert link.replace("&", "&amp;") in page


def test_the_explainer_page_in_words(world: World) -> None:
    booked = staff_slug_of(world, world.ids["acme_consult"])
    client = world.login("admin")
    start = "2026-11-28T10:00:00+01:00"
    page = client.get(
        "/admin/bookings/explain", query_string={"start": start, "staff": world.ids["staff_ana"]}
    ).get_data(True)
    assert "Clients can book this time: 2 places left." in page
    # The admin reads which booking is in the way.
    assert "Already booked, 10:00\u202fAM\u201310:30\u202fAM." in page
    assert booked.capitalize()[:3] in page
    # Asked with the form: a day and a time in the calendar's zone; a service without staff.
    page = client.get(
        "/admin/bookings/explain", query_string={"date": "2026-11-28", "time": "21:00"}
    ).get_data(True)
    assert "Clients cannot book this time." in page
    assert "Outside working hours." in page
    page = client.get("/admin/bookings/explain", query_string={"start": "noon"}).get_data(True)
    assert "This is not a day and time" in page
    # From a day of the grid ("ask about a time"): the form starts on that day.
    page = client.get("/admin/bookings/explain", query_string={"date": "2026-12-05"})
    assert 'name="date" value="2026-12-05"' in page.get_data(True)
    # A time already past: the staff are free, but the time is not bookable.
    page = client.get(
        "/admin/bookings/explain", query_string={"start": "2026-11-25T09:30:00+01:00"}
    ).get_data(True)
    assert "Free, but not bookable (see above)" in page


def test_the_cli_explains_in_words(world: World, bookwise_cli: Any, tmp_path: Any) -> None:
    settings = world.app.extensions["bookwise"].settings
    result = bookwise_cli(
        "--config",
        str(settings.source),
        "explain",
        "acme",
        "consult",
        "2026-11-28T21:00",
        "--at",
        "2026-11-25T09:00Z",
    )
    assert result.exit_code == 0, result.stderr
    assert "acme/consult at" in result.stdout and "not offered" in result.stdout
    assert "Ana: outside_hours: Outside working hours." in result.stdout
    bad = bookwise_cli("--config", str(settings.source), "explain", "acme", "nope", "2026-11-28")
    assert bad.exit_code == 1 and "no service 'nope'" in bad.stderr


ROUTED_CONSULT = """\
id: consult
name: {en: Consultation, fr: Consultation}
duration: 30m
slot_step: 30m
booking_window: {min_notice: 0m, max_ahead: 400d}
staff: {tags: [consultant], assignment: round_robin}
fields:
  - include: contact
  - id: topic
    type: select
    label: {en: Topic, fr: Sujet}
    options:
      - {value: tax, label: {en: Taxes, fr: Impôts}}
      - {value: other, label: {en: Something else, fr: Autre chose}}
route:
  - {if: {field: topic, equals: tax}, staff: {tags: [host]}}
notifications: []
"""


@pytest.fixture
def routed(world: World) -> World:
    """The world's ``consult`` given a version that sends tax questions to the host (ana)."""
    bookwise = world.app.extensions["bookwise"]
    add_workflow_version(bookwise.settings, bookwise.database, ROUTED_CONSULT)
    return world


def test_routing_is_explained_with_the_answers(routed: World) -> None:
    start = DAY.replace(hour=11).isoformat()
    client = routed.app.test_client()
    data = client.get(URL, query_string={"start": start, "answers[topic]": "tax"}).get_json()
    codes = {m["id"]: [r["code"] for r in m["reasons"]] for m in data["staff"]}
    assert codes == {"ana": [], "ben": ["routing"], "cleo": ["routing"]}
    assert data["offered"] is True
    # Without answers, the whole pool; with a wrong one, the slots' own error.
    data = client.get(URL, query_string={"start": start}).get_json()
    assert all(m["free"] for m in data["staff"])
    wrong = client.get(URL, query_string={"start": start, "answers[topic]": "x" * 300})
    assert wrong.status_code == 422
    # The back office asks the routing question beside the time.
    page = (
        routed.login("admin")
        .get("/admin/bookings/explain", query_string={"start": start, "field_topic": "tax"})
        .get_data(True)
    )
    assert "Does not take this client: the answers send them to other staff." in page
    assert '<option value="tax" selected>Taxes</option>' in page


def test_a_routed_booking_is_moved_only_to_its_routed_staffs_times(routed: World) -> None:
    """A booking moved (by staff, or by the client from the manage page) stays with the staff
    its answers route to: the times offered are theirs, not the whole pool's."""
    from bookwise.bookings.services import BookingRequest, create_booking, find_service
    from bookwise.db import unit_of_work

    database = routed.app.extensions["bookwise"].database
    eleven = DAY.replace(hour=10)  # 11:00 in Paris
    with unit_of_work(database.sessions, write=True) as session:
        context = find_service(session, "acme", "consult")
        booking = create_booking(
            session,
            context,
            BookingRequest(
                start=eleven,
                values={"name": "Tax Client", "email": "tax@client.example", "topic": "tax"},
                locale="en",
            ),
            NOW,
            plugins=None,
        )
        session.flush()
        booking_id, staff_id = booking.id, booking.staff_id
    assert staff_id == routed.ids["staff_ana"]
    # Ana is away at 14:00 (15:00 in Paris); Ben and Cléo are free then.
    add(
        routed,
        TimeOff(
            staff_id=staff_id,
            start_at=DAY.replace(hour=14),
            end_at=DAY.replace(hour=15),
            reason="Away",
            origin="admin",
        ),
    )
    page = (
        routed.login("admin")
        .get(f"/admin/bookings/{booking_id}/reschedule?date={DAY.date().isoformat()}")
        .get_data(True)
    )
    assert 'value="2026-11-28T15:00:00+00:00"' in page  # Ana is back
    assert 'value="2026-11-28T14:00:00+00:00"' not in page  # only Ben and Cléo could take it
    assert '<small class="text-muted">Ben</small>' not in page
