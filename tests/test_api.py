"""The public JSON API on a real database: services, slots, booking, managing a booking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from bookwise.bookings.models import Booking, BookingEvent, Client, ConsentRecord
from bookwise.models import metadata
from tests.conftest import TEST_NOW

PARIS = ZoneInfo("Europe/Paris")
# Times here are chosen from the instant the suite stands at: CI runs these at several.
pytestmark = pytest.mark.clock


def tomorrow_at(hour: int, minute: int = 0, days: int = 1) -> datetime:
    day = TEST_NOW.astimezone(PARIS).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=PARIS)


def consult(start: datetime, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "start": start.isoformat(),
        "client": {
            "name": "Zoé Martin",
            "email": "zoe@example.org",
            "timezone": "Europe/Paris",
            "locale": "fr",
        },
        "answers": {"topic": "Taxes"},
        "consent": True,
    }
    body.update(overrides)
    return body


def counts(app: Any) -> dict[str, int]:
    """Rows per table: a failed request must leave every count unchanged."""
    engine = app.extensions["bookwise"].database.engine
    with engine.connect() as connection:
        return {
            t.name: connection.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in metadata.sorted_tables
        }


@pytest.fixture
def api(scenario_app: Any) -> Any:
    return scenario_app.test_client()


URL = "/api/v1/calendars/acme/services"


def test_services_are_listed_with_their_fields(api: Any) -> None:
    data = api.get(f"{URL}?lang=fr").get_json()
    assert data["calendar"] == {"id": "acme", "name": "Acme Advice", "timezone": "Europe/Paris"}
    by_id = {s["id"]: s for s in data["services"]}
    assert set(by_id) == {"consult", "workshop", "review", "visit"}
    consult_service = by_id["consult"]
    assert consult_service["duration_minutes"] == 30
    assert consult_service["consent"]["required"] is True
    assert consult_service["consent"]["text"].startswith("J'accepte")
    assert [f["id"] for f in consult_service["fields"]] == ["name", "email", "phone", "topic"]
    assert consult_service["fields"][3]["label"] == "Sujet"
    assert by_id["workshop"]["capacity"] == 5
    assert by_id["review"]["staff_choice"] is True


def test_slots_in_the_visitors_time_zone(api: Any) -> None:
    day = TEST_NOW.astimezone(PARIS).date() + timedelta(days=2)
    data = api.get(f"{URL}/consult/slots?from={day}&to={day}&tz=America/New_York").get_json()
    assert data["timezone"] == "America/New_York"
    first = data["slots"][0]
    # 08:00 in Paris is 02:00 in New York (or 03:00 in the weeks their clock changes differ).
    assert first["start"].startswith(f"{day}T0")
    assert first["start"][-6:] in ("-05:00", "-04:00")
    assert first["remaining"] == 3 and "staff" not in first
    assert len(data["slots"]) == 24  # 08:00-20:00 every 30 minutes
    review = api.get(f"{URL}/review/slots?from={day}&to={day}").get_json()
    assert review["slots"][0]["staff"] == ["ana", "ben", "cleo"]
    only_ben = api.get(f"{URL}/review/slots?from={day}&to={day}&staff=ben").get_json()
    assert all(s["remaining"] == 1 for s in only_ben["slots"])


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("from=2026-12-01", 400, "invalid_request"),
        ("from=2026-12-01&to=tomorrow", 400, "invalid_date"),
        ("from=2026-12-05&to=2026-12-01", 400, "invalid_range"),
        ("from=2026-01-01&to=2026-06-30", 400, "range_too_long"),
        ("from=2026-12-01&to=2026-12-01&tz=Mars/Olympus", 400, "invalid_timezone"),
        ("from=2026-12-01&to=2026-12-01&tz=EST5EDT-ish", 400, "invalid_timezone"),
    ],
)
def test_bad_slot_queries(api: Any, query: str, status: int, code: str) -> None:
    response = api.get(f"{URL}/consult/slots?{query}")
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code
    assert response.get_json()["error"]["message"]


def test_unknown_calendar_or_service(api: Any) -> None:
    for url in (
        "/api/v1/calendars/nope/services",
        f"{URL}/nope/slots?from=2026-12-01&to=2026-12-01",
        "/api/v1/calendars/nope/services/consult/bookings",
    ):
        response = api.get(url) if "bookings" not in url else api.post(url, json={})
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "not_found"


def test_book_then_the_slot_is_taken(api: Any, scenario_app: Any) -> None:
    start = tomorrow_at(10)
    response = api.post(f"{URL}/consult/bookings", json=consult(start))
    assert response.status_code == 201, response.get_json()
    booking = response.get_json()
    assert booking["status"] == "confirmed"
    assert booking["start"] == start.isoformat()
    assert booking["staff"] in ("ana", "ben", "cleo")
    assert len(booking["manage_token"]) >= 32 + 1 + 22
    assert booking["manage_url"].endswith(f"/manage/{booking['manage_token']}")
    assert response.headers["Location"] == f"/api/v1/manage/{booking['manage_token']}"

    engine = scenario_app.extensions["bookwise"].database.engine
    with engine.connect() as connection:
        row = connection.execute(sa.select(Booking)).one()
        assert row.answers == {"topic": "Taxes"} and row.locale == "fr"
        consent = connection.execute(sa.select(ConsentRecord)).one()
        assert consent.text.startswith("J'accepte") and len(consent.text_hash) == 64
        client = connection.execute(sa.select(Client)).one()
        assert (client.name, client.email) == ("Zoé Martin", "zoe@example.org")
        history = connection.execute(sa.select(BookingEvent.action)).scalars().all()
        assert history == ["created"]

    # The same time can be taken twice more (three consultants), not a fourth time.
    assert api.post(f"{URL}/consult/bookings", json=consult(start)).status_code == 201
    assert api.post(f"{URL}/consult/bookings", json=consult(start)).status_code == 201
    fourth = api.post(f"{URL}/consult/bookings", json=consult(start))
    assert fourth.status_code == 409
    assert fourth.get_json()["error"] == {
        "code": "slot_taken",
        "message": "This time was just taken. Please pick another time.",
    }
    day = start.date()
    slots = api.get(f"{URL}/consult/slots?from={day}&to={day}").get_json()["slots"]
    assert start.isoformat() not in [s["start"] for s in slots]


def test_a_client_chooses_and_buffers_apply(api: Any) -> None:
    start = tomorrow_at(10)
    response = api.post(
        f"{URL}/review/bookings",
        json={
            "start": start.isoformat(),
            "staff": "ben",
            "client": {"name": "A", "email": "a@example.org"},
        },
    )
    assert response.status_code == 201
    assert response.get_json()["staff"] == "ben" and response.get_json()["status"] == "requested"
    day = start.date()
    slots = api.get(f"{URL}/review/slots?from={day}&to={day}&staff=ben").get_json()["slots"]
    starts = {datetime.fromisoformat(s["start"]).astimezone(PARIS).strftime("%H:%M") for s in slots}
    # 45 minutes with 10 before and 15 after: ben is blocked 09:50-11:00, and a new booking's
    # own blocked time may not meet that: 08:45 (08:35-09:45) fits, 09:00 (08:50-10:00) does not.
    assert "08:45" in starts and "09:00" not in starts and "11:00" not in starts
    assert "11:15" in starts
    other = api.post(
        f"{URL}/review/bookings",
        json={
            "start": tomorrow_at(10, 30).isoformat(),
            "staff": "ben",
            "client": {"name": "B", "email": "b@example.org"},
        },
    )
    assert other.status_code == 409


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"answers": {}}, 422, "invalid"),
        ({"consent": False}, 422, "invalid"),
        ({"start": "2026-12-01T10:00:00"}, 400, "invalid_start"),
        ({"start": "next tuesday"}, 400, "invalid_start"),
        ({"start": 1700000000}, 400, "invalid_start"),
        ({"client": "Zoé"}, 400, "invalid_request"),
        ({"answers": ["Taxes"]}, 400, "invalid_request"),
        ({"consent": "yes"}, 400, "invalid_request"),
        ({"staff": "ben"}, 422, "staff_not_choosable"),
        (
            {"client": {"name": "Z", "email": "z@example.org", "locale": "it"}},
            400,
            "invalid_locale",
        ),
        (
            {"client": {"name": "Z", "email": "z@example.org", "timezone": "Paris"}},
            400,
            "invalid_timezone",
        ),
    ],
)
def test_bad_bookings_write_nothing(
    api: Any, scenario_app: Any, change: dict, status: int, code: str
) -> None:
    before = counts(scenario_app)
    response = api.post(f"{URL}/consult/bookings", json=consult(tomorrow_at(11)) | change)
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"]["code"] == code
    assert counts(scenario_app) == before


def test_invalid_answers_name_each_field(api: Any) -> None:
    body = consult(tomorrow_at(11), consent=None)
    body["client"] = {"name": "", "email": "not-an-email", "phone": "06 12"}
    body["answers"] = {"topic": "x" * 300, "colour": "blue"}
    error = api.post(f"{URL}/consult/bookings?lang=fr", json=body).get_json()["error"]
    assert set(error["fields"]) == {"name", "email", "phone", "topic", "colour", "consent"}
    assert error["fields"]["topic"] == "Saisissez au plus 200 caractères."  # in French


@pytest.mark.parametrize(
    ("start", "code"),
    [
        (lambda: tomorrow_at(10, 10), "not_a_slot"),  # off the 30-minute grid
        (lambda: tomorrow_at(21), "not_a_slot"),  # after hours
        (lambda: TEST_NOW - timedelta(hours=1), "in_the_past"),
        (lambda: tomorrow_at(10, days=500), "too_far"),
    ],
)
def test_times_that_are_not_offered(api: Any, start: Any, code: str) -> None:
    response = api.post(f"{URL}/consult/bookings", json=consult(start()))
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == code


def test_malformed_requests(api: Any) -> None:
    response = api.post(
        f"{URL}/consult/bookings", data="{not json", content_type="application/json"
    )
    assert (response.status_code, response.get_json()["error"]["code"]) == (400, "malformed_json")
    response = api.post(f"{URL}/consult/bookings", data="start=now")
    assert (response.status_code, response.get_json()["error"]["code"]) == (
        415,
        "unsupported_media_type",
    )
    response = api.post(f"{URL}/consult/bookings", json=[1, 2])
    assert response.status_code == 400
    response = api.post(
        f"{URL}/consult/bookings", data="x" * (65 * 1024), content_type="application/json"
    )
    assert (response.status_code, response.get_json()["error"]["code"]) == (413, "too_large")
    response = api.get("/api/v1/nothing/here")
    assert response.get_json()["error"]["code"] == "not_found"


def test_sign_in_required(api: Any) -> None:
    response = api.post(
        "/api/v1/calendars/private/services/consult/bookings", json=consult(tomorrow_at(10))
    )
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "sign_in_required"


def test_group_places(api: Any) -> None:
    start = tomorrow_at(9)
    for number in range(5):
        body = {
            "start": start.isoformat(),
            "client": {"name": f"P{number}", "email": f"p{number}@example.org"},
        }
        assert api.post(f"{URL}/workshop/bookings", json=body).status_code == 201
        day = start.date()
        slots = api.get(f"{URL}/workshop/slots?from={day}&to={day}").get_json()["slots"]
        remaining = {s["start"]: s["remaining"] for s in slots}
        assert remaining.get(start.isoformat(), 0) == 4 - number
    body = {"start": start.isoformat(), "client": {"name": "Late", "email": "late@example.org"}}
    assert api.post(f"{URL}/workshop/bookings", json=body).status_code == 409


def test_cancelling_one_participant_keeps_the_others(api: Any) -> None:
    start = tomorrow_at(9)
    tokens = []
    for number in range(3):
        body = {
            "start": start.isoformat(),
            "client": {"name": f"P{number}", "email": f"p{number}@example.org"},
        }
        tokens.append(api.post(f"{URL}/workshop/bookings", json=body).get_json()["manage_token"])
    cancelled = api.post(f"/api/v1/manage/{tokens[0]}/cancel").get_json()
    assert cancelled["status"] == "cancelled"
    assert [api.get(f"/api/v1/manage/{t}").get_json()["status"] for t in tokens[1:]] == [
        "confirmed",
        "confirmed",
    ]
    day = start.date()
    slots = api.get(f"{URL}/workshop/slots?from={day}&to={day}").get_json()["slots"]
    assert {s["start"]: s["remaining"] for s in slots}[start.isoformat()] == 3


def test_manage_reschedule_and_cancel(api: Any, scenario_app: Any) -> None:
    created = api.post(f"{URL}/consult/bookings", json=consult(tomorrow_at(10))).get_json()
    token = created["manage_token"]
    seen = api.get(f"/api/v1/manage/{token}").get_json()
    assert seen["id"] == created["id"] and seen["can_change"] is True

    moved = api.post(
        f"/api/v1/manage/{token}/reschedule", json={"start": tomorrow_at(15).isoformat()}
    )
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json()["start"] == tomorrow_at(15).isoformat()
    assert moved.get_json()["id"] == created["id"]
    engine = scenario_app.extensions["bookwise"].database.engine
    with engine.connect() as connection:
        assert connection.execute(sa.select(Booking.sequence)).scalar_one() == 1

    # Fill 16:00 with three other clients, then try to move there.
    for _ in range(3):
        api.post(f"{URL}/consult/bookings", json=consult(tomorrow_at(16)))
    taken = api.post(
        f"/api/v1/manage/{token}/reschedule", json={"start": tomorrow_at(16).isoformat()}
    )
    assert (taken.status_code, taken.get_json()["error"]["code"]) == (409, "slot_taken")

    done = api.post(f"/api/v1/manage/{token}/cancel", json={"reason": "ill"})
    assert done.get_json()["status"] == "cancelled"
    again = api.post(f"/api/v1/manage/{token}/cancel")
    assert (again.status_code, again.get_json()["error"]["code"]) == (409, "invalid_state")
    moved_after = api.post(
        f"/api/v1/manage/{token}/reschedule", json={"start": tomorrow_at(17).isoformat()}
    )
    assert moved_after.status_code == 409
    with engine.connect() as connection:
        actions = connection.execute(
            sa.select(BookingEvent.action, BookingEvent.to_state)
            .order_by(BookingEvent.id)
            .join(Booking)
            .where(Booking.uid == created["id"])
        ).all()
        assert actions == [
            ("created", "confirmed"),
            ("rescheduled", "confirmed"),
            ("cancel", "cancelled"),
        ]


def test_too_late_to_cancel_or_move(api: Any, scenario_app: Any) -> None:
    start = tomorrow_at(10)
    token = api.post(f"{URL}/consult/bookings", json=consult(start)).get_json()["manage_token"]
    # Stand 90 minutes before the start: inside the workflow's 2-hour notice.
    scenario_app.extensions["bookwise"].clock = lambda: start - timedelta(minutes=90)
    assert api.get(f"/api/v1/manage/{token}").get_json()["can_change"] is False
    for response in (
        api.post(f"/api/v1/manage/{token}/cancel"),
        api.post(f"/api/v1/manage/{token}/reschedule", json={"start": tomorrow_at(15).isoformat()}),
    ):
        assert response.status_code == 409
        error = response.get_json()["error"]
        assert error["code"] == "too_late"
        assert error["deadline"] == (start - timedelta(hours=2)).astimezone(UTC).isoformat()
    assert api.get(f"/api/v1/manage/{token}").get_json()["status"] == "confirmed"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # wrong secret
        lambda t: "0" * 32 + t[32:],  # wrong id
        lambda t: t.split("-", 1)[0],  # no secret
        lambda t: "x" * 300,
    ],
)
def test_tampered_tokens_are_404(api: Any, mangle: Any) -> None:
    token = api.post(f"{URL}/consult/bookings", json=consult(tomorrow_at(10))).get_json()[
        "manage_token"
    ]
    for response in (
        api.get(f"/api/v1/manage/{mangle(token)}"),
        api.post(f"/api/v1/manage/{mangle(token)}/cancel"),
    ):
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "not_found"


def test_round_robin_spreads_300_bookings_within_one(scenario: Any) -> None:
    from bookwise.bookings.services import BookingRequest, create_booking, find_service
    from bookwise.db import unit_of_work

    now = TEST_NOW
    first = TEST_NOW.astimezone(PARIS).date() + timedelta(days=1)
    made = 0
    day = first
    while made < 300:
        for half_hours in range(24):
            if made == 300:
                break
            start = datetime(day.year, day.month, day.day, 8, tzinfo=PARIS) + timedelta(
                minutes=30 * half_hours
            )
            with unit_of_work(scenario.database.sessions, write=True) as session:
                context = find_service(session, "acme", "consult")
                create_booking(
                    session,
                    context,
                    BookingRequest(
                        start=start,
                        values={"name": "C", "email": f"c{made}@example.org", "topic": "t"},
                        consent=True,
                    ),
                    now,
                    plugins=None,
                )
            made += 1
        day += timedelta(days=1)
    with scenario.database.sessions() as session:
        per_staff = dict(
            session.execute(
                sa.select(Booking.staff_id, sa.func.count()).group_by(Booking.staff_id)
            ).all()
        )
    assert sum(per_staff.values()) == 300 and len(per_staff) == 3
    assert max(per_staff.values()) - min(per_staff.values()) <= 1


def test_staff_approve_and_client_cannot(scenario: Any) -> None:
    from bookwise.bookings.services import (
        BookingRequest,
        NotAllowed,
        create_booking,
        find_service,
        transition_booking,
    )
    from bookwise.db import unit_of_work

    now = TEST_NOW
    with unit_of_work(scenario.database.sessions, write=True) as session:
        context = find_service(session, "acme", "review")
        booking = create_booking(
            session,
            context,
            BookingRequest(
                start=tomorrow_at(10), staff="ana", values={"name": "R", "email": "r@example.org"}
            ),
            now,
            plugins=None,
        )
        with pytest.raises(NotAllowed) as refused:
            transition_booking(session, booking, "approve", "client", "client", now, plugins=None)
        assert refused.value.code == "forbidden"
        transition_booking(session, booking, "approve", "staff", "staff:ana", now, plugins=None)
        assert booking.state == "confirmed" and booking.holds_slot
        with pytest.raises(NotAllowed) as refused:
            transition_booking(session, booking, "approve", "staff", "staff:ana", now, plugins=None)
        assert refused.value.code == "invalid_state"
        transition_booking(
            session, booking, "cancel", "admin", "user:1", now, reason="moved", plugins=None
        )
        assert booking.state == "cancelled" and not booking.holds_slot
    # The booking and its history are dated by the services' clock, not the system's.
    with scenario.database.sessions() as session:
        row = session.get(Booking, booking.id)
        assert row is not None and row.created_at == now
        events = session.scalars(
            sa.select(BookingEvent).where(BookingEvent.booking_id == booking.id)
        ).all()
        assert [e.action for e in events] == ["created", "approve", "cancel"]
        assert {e.at for e in events} == {now}


def test_slot_search_reads_a_fixed_number_of_queries(api: Any, scenario_app: Any) -> None:
    """The slots endpoint costs the same few queries however many bookings exist (the rows read
    are bounded by the pool and the window; the number of queries does not grow at all)."""
    engine = scenario_app.extensions["bookwise"].database.engine
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    day = TEST_NOW.astimezone(PARIS).date() + timedelta(days=3)
    url = f"{URL}/consult/slots?from={day}&to={day + timedelta(days=30)}"
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        api.get(url)
        empty = len(statements)
        for hour in range(8, 20):
            api.post(f"{URL}/consult/bookings", json=consult(tomorrow_at(hour, days=5)))
        statements.clear()
        api.get(url)
        assert len(statements) == empty <= 12
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


def test_a_known_e_mail_cannot_rewrite_another_booking(api: Any) -> None:
    """Booking with someone else's address changes nothing of their booking."""
    first = api.post(f"{URL}/consult/bookings", json=consult(tomorrow_at(10))).get_json()
    intruder = consult(tomorrow_at(12))
    intruder["client"] = {
        "name": "Mallory",
        "email": "zoe@example.org",
        "phone": "+33698765432",
        "locale": "en",
        "timezone": "Asia/Tokyo",
    }
    assert api.post(f"{URL}/consult/bookings", json=intruder).status_code == 201
    again = api.get(f"/api/v1/manage/{first['manage_token']}").get_json()
    assert again["client"] == {"name": "Zoé Martin", "email": "zoe@example.org"}
    assert again["timezone"] == "Europe/Paris"


def test_a_group_fills_one_session_before_opening_another(scenario: Any) -> None:
    """Two hosts can run the workshop at the same time: clients join the same one until full."""
    from bookwise.bookings.services import BookingRequest, create_booking, find_service
    from bookwise.calendars.models import StaffMember
    from bookwise.db import unit_of_work

    with unit_of_work(scenario.database.sessions) as session:
        ben = session.scalar(sa.select(StaffMember).where(StaffMember.slug == "ben"))
        ben.tags = ["consultant", "host"]
    start = tomorrow_at(14)
    chosen = []
    for number in range(7):
        with unit_of_work(scenario.database.sessions, write=True) as session:
            context = find_service(session, "acme", "workshop")
            booking = create_booking(
                session,
                context,
                BookingRequest(
                    start=start, values={"name": f"P{number}", "email": f"p{number}@example.org"}
                ),
                TEST_NOW,
                plugins=None,
            )
            chosen.append(booking.staff_id)
    assert len(set(chosen[:5])) == 1, "the first five share one session"
    assert chosen[5] == chosen[6] != chosen[0], "the sixth opens the second session"
