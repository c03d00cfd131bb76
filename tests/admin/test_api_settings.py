"""A calendar's settings, services and staff through personal API tokens (issue 19): the back
office's own checks and audit, a token's role and scope, nothing half-saved. The back office's
world (tests/admin/conftest.py): acme's admin, viewer and Ana (staff)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

from bookwise.audit.models import AuditEntry
from bookwise.bookings.models import Booking
from bookwise.calendars.models import Calendar, StaffMember
from bookwise.notifications.models import Notification
from tests.admin.conftest import World, db
from tests.admin.test_api_tokens import make_token

CALENDAR = "/api/v1/calendars/acme"


def bearer(world: World, who: str, scope: str = "write") -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(world, who, scope=scope)}"}


def audit_actions(world: World) -> list[str]:
    session = db(world)
    try:
        return list(session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.id)))
    finally:
        session.close()


def test_calendar_settings_read_and_changed(world: World) -> None:
    client = world.app.test_client()
    admin = bearer(world, "admin")
    settings = client.get(CALENDAR, headers=admin).get_json()
    assert (settings["id"], settings["name"], settings["timezone"]) == (
        "acme",
        "Acme Advice",
        "Europe/Paris",
    )
    assert {s["id"] for s in settings["services"]} >= {"consult", "review", "visit"}
    assert client.get(CALENDAR, headers=bearer(world, "viewer", "read")).status_code == 200
    # A staff member's token does not read the calendar's settings.
    assert client.get(CALENDAR, headers=bearer(world, "ana")).status_code == 403

    changed = client.patch(
        CALENDAR,
        headers=admin,
        json={
            "name": "Acme Clinic",
            "quiet_hours": {"from": "21:00", "to": "08:00"},
            "description": {"fr": "Conseils"},
            "embed_origins": ["https://www.acme.example/"],
        },
    )
    assert changed.status_code == 200, changed.get_json()
    body = changed.get_json()
    assert body["changed"] == ["description", "embed_origins", "name", "quiet_hours"]
    assert body["quiet_hours"] == {"from": "21:00", "to": "08:00", "email": False}
    assert body["embed_origins"] == ["https://www.acme.example"]
    assert body["reply_to"] == "desk@acme.example"  # what was not sent stays
    assert "calendar.updated" in audit_actions(world)
    again = client.patch(CALENDAR, headers=admin, json={"name": "Acme Clinic"})
    assert again.get_json()["changed"] == []
    off = client.patch(CALENDAR, headers=admin, json={"quiet_hours": None})
    assert off.get_json()["quiet_hours"] is None


def test_refused_settings_name_each_field_and_change_nothing(world: World) -> None:
    client = world.app.test_client()
    admin = bearer(world, "admin")
    refused = client.patch(
        CALENDAR,
        headers=admin,
        json={
            "name": "Renamed",
            "timezone": "Mars/Olympus",
            "phone": "call me",
            "quiet_hours": {"from": "21:00", "to": "21:00"},
            "id": "private",
        },
    )
    assert refused.status_code == 422
    error = refused.get_json()["error"]
    assert (error["code"], set(error["fields"])) == (
        "invalid",
        {"timezone", "phone", "quiet_hours", "id"},
    )
    assert "like Europe/Paris" in error["fields"]["timezone"]
    unknown_language = client.patch(CALENDAR, headers=admin, json={"description": {"xx": "?"}})
    assert list(unknown_language.get_json()["error"]["fields"]) == ["description"]
    # A value of the wrong type: 400 with the path of the field, before any rule.
    wrong_type = client.patch(CALENDAR, headers=admin, json={"published": "yes"})
    assert (wrong_type.status_code, wrong_type.get_json()["error"]["path"]) == (400, "/published")
    assert client.patch(CALENDAR, headers=admin, json={"colour": "red"}).status_code == 400
    session = db(world)
    try:
        calendar = session.scalar(sa.select(Calendar).where(Calendar.slug == "acme"))
        assert calendar is not None and calendar.name == "Acme Advice"
    finally:
        session.close()
    # A read token, a viewer's write token, another calendar: refused.
    assert (
        client.patch(CALENDAR, headers=bearer(world, "admin", "read"), json={}).status_code == 403
    )
    assert client.patch(CALENDAR, headers=bearer(world, "viewer"), json={}).status_code == 403
    other = {"Authorization": f"Bearer {make_token(world, 'other', 'private', 'write')}"}
    assert client.patch(CALENDAR, headers=other, json={}).status_code == 404


def test_a_new_address_moves_the_calendar(world: World) -> None:
    client = world.app.test_client()
    admin = bearer(world, "admin")
    moved = client.patch(CALENDAR, headers=admin, json={"id": "Acme-Advice"})
    assert (moved.status_code, moved.get_json()["id"]) == (200, "acme-advice")
    assert client.get(CALENDAR, headers=admin).status_code == 404
    assert client.get(CALENDAR + "-advice", headers=admin).status_code == 200


def test_publishing_withdrawing_and_the_pool_of_a_service(world: World) -> None:
    client = world.app.test_client()
    admin = bearer(world, "admin")
    url = f"{CALENDAR}/services/visit/settings"
    service = client.get(url, headers=admin).get_json()
    assert (service["active"], service["pool_by_tags"], service["tags"]) == (
        True,
        True,
        ["consultant"],
    )
    assert set(service["staff"]) == {"ana", "ben", "cleo"}
    withdrawn = client.patch(url, headers=admin, json={"active": False})
    assert withdrawn.get_json()["active"] is False
    public = client.get(f"{CALENDAR}/services").get_json()["services"]
    assert "visit" not in {s["id"] for s in public}
    listed = client.patch(url, headers=admin, json={"active": True, "staff": ["cleo", "ana"]})
    assert listed.status_code == 200, listed.get_json()
    assert (listed.get_json()["pool_by_tags"], listed.get_json()["staff"]) == (
        False,
        ["cleo", "ana"],
    )
    assert "visit" in {s["id"] for s in client.get(f"{CALENDAR}/services").get_json()["services"]}
    unknown = client.patch(url, headers=admin, json={"staff": ["dan"]})  # private's member
    assert (unknown.status_code, list(unknown.get_json()["error"]["fields"])) == (422, ["staff"])
    empty = client.patch(url, headers=admin, json={"staff": []})
    assert empty.status_code == 422
    assert client.get(url, headers=admin).get_json()["staff"] == ["cleo", "ana"]
    assert client.get(f"{CALENDAR}/services/nothing/settings", headers=admin).status_code == 404
    assert client.patch(url, headers=bearer(world, "ana"), json={}).status_code == 403
    assert client.get(url, headers=bearer(world, "viewer", "read")).status_code == 200
    assert audit_actions(world).count("service.updated") == 2


FAILING = """\
id: first-aid
name: {en: First aid}
duration: 30m
staff: {tags: [consultant]}
notifications: []
tests:
  - name: A wrong expectation
    given: {timezone: Europe/Paris, hours: {mon: ["09:00-10:00"]}}
    slots: {on: 2027-03-29, offered: ["11:00"]}
"""


def test_a_workflow_created_by_token_is_published_once_its_checks_pass(world: World) -> None:
    client = world.app.test_client()
    admin = bearer(world, "admin")
    url = "/api/v1/workflows?calendar=acme"
    made = client.post(url, headers=admin, json={"source": FAILING})
    assert made.status_code == 201, made.get_json()
    assert made.get_json() == {"id": "first-aid", "version": 1, "created": True}
    assert client.post(url, headers=admin, json={"source": FAILING}).status_code == 409
    settings = f"{CALENDAR}/services/first-aid/settings"
    assert client.get(settings, headers=admin).get_json()["active"] is False
    refused = client.patch(settings, headers=admin, json={"active": True})
    assert (refused.status_code, refused.get_json()["error"]["code"]) == (422, "checks_failed")
    fixed = FAILING.replace('offered: ["11:00"]', 'offered: ["09:00", "09:30"]')
    saved = client.post(
        "/api/v1/workflows/first-aid/versions", headers=admin, json={"source": fixed}
    )
    assert saved.status_code == 201, saved.get_json()
    published = client.patch(settings, headers=admin, json={"active": True})
    assert published.status_code == 200, published.get_json()
    broken = client.post(url, headers=admin, json={"source": "id: x\nduration: forever\n"})
    assert (broken.status_code, broken.get_json()["error"]["code"]) == (422, "invalid_workflow")
    assert broken.get_json()["error"]["problems"][0]["line"] is not None
    viewer = bearer(world, "viewer")
    assert client.post(url, headers=viewer, json={"source": FAILING}).status_code == 403


def _outbox_to(world: World, address: str) -> list[str]:
    session = db(world)
    try:
        return list(
            session.scalars(
                sa.select(Notification.template).where(Notification.recipient == address)
            )
        )
    finally:
        session.close()


def test_staff_added_changed_and_read(world: World) -> None:
    client = world.app.test_client()
    admin = bearer(world, "admin")
    url = f"{CALENDAR}/staff"
    added = client.post(
        url,
        headers=admin,
        json={"name": "Dora Dias", "email": "dora@acme.example", "tags": ["Host"]},
    )
    assert added.status_code == 201, added.get_json()
    member = added.get_json()
    assert (member["id"], member["invitation"], member["tags"]) == (
        "dora-dias",
        "pending",
        ["host"],
    )
    assert _outbox_to(world, "dora@acme.example") == ["staff-invitation"]
    refused = client.post(url, headers=admin, json={"name": " ", "email": "not an address"})
    assert (refused.status_code, set(refused.get_json()["error"]["fields"])) == (
        422,
        {"name", "email"},
    )
    missing = client.post(url, headers=admin, json={"name": "No Mail"})
    assert (missing.status_code, missing.get_json()["error"]["path"]) == (400, "/email")
    changed = client.patch(f"{url}/dora-dias", headers=admin, json={"phone": "+33 1 23 45 67 89"})
    assert changed.get_json()["changed"] == ["phone"]
    moved = client.patch(f"{url}/dora-dias", headers=admin, json={"email": "dora@new.example"})
    assert moved.get_json()["invitation"] == "pending"
    assert _outbox_to(world, "dora@new.example") == ["staff-invitation"]
    bad_phone = client.patch(f"{url}/dora-dias", headers=admin, json={"phone": "soon"})
    assert list(bad_phone.get_json()["error"]["fields"]) == ["phone"]
    # Ana reads her own address, not Ben's; she adds nobody.
    ana = bearer(world, "ana")
    assert client.get(f"{url}/ana", headers=ana).get_json()["email"] == "ana@acme.example"
    assert client.get(f"{url}/ben", headers=ana).get_json()["email"] is None
    assert (
        client.post(url, headers=ana, json={"name": "X", "email": "x@x.example"}).status_code == 403
    )
    assert client.get(f"{url}/nobody", headers=admin).status_code == 404


def _future_bookings(world: World, slug: str) -> set[str]:
    session = db(world)
    try:
        return set(
            session.scalars(
                sa.select(Booking.uid)
                .join(StaffMember, Booking.staff_id == StaffMember.id)
                .where(StaffMember.slug == slug, Booking.state.in_(("confirmed", "requested")))
            )
        )
    finally:
        session.close()


def test_removing_a_member_gives_or_cancels_their_bookings(world: World) -> None:
    client = world.app.test_client()
    admin = bearer(world, "admin")
    cleo = _future_bookings(world, "cleo")
    assert cleo
    # Ana and Ben are away that day: nobody can take Cléo's visit, and nothing changes.
    for member in ("ana", "ben"):
        away = client.post(
            f"{CALENDAR}/staff/{member}/time-off",
            headers=admin,
            json={"start": "2026-11-28T00:00:00+01:00", "end": "2026-11-29T00:00:00+01:00"},
        )
        assert away.status_code == 201, away.get_json()
    stuck = client.delete(f"{CALENDAR}/staff/cleo", headers=admin)
    assert stuck.status_code == 409, stuck.get_json()
    assert set(stuck.get_json()["error"]["bookings"]) == cleo
    assert _future_bookings(world, "cleo") == cleo
    assert client.delete(f"{CALENDAR}/staff/cleo?bookings=later", headers=admin).status_code == 400
    removed = client.delete(
        f"{CALENDAR}/staff/cleo?bookings=reassign_or_cancel&reason=Closed", headers=admin
    )
    assert removed.status_code == 200, removed.get_json()
    assert removed.get_json()["reassigned"] == []
    assert set(removed.get_json()["cancelled"]) == cleo
    assert client.get(f"{CALENDAR}/staff/cleo", headers=admin).status_code == 404
    assert "staff.removed" in audit_actions(world)


LONE = "a\ud800b"  # a lone surrogate: JSON can carry it (as \ud800), no database can store it


@pytest.mark.parametrize(
    ("path", "method", "body", "field"),
    [
        ("", "patch", {"name": LONE}, "name"),
        ("", "patch", {"address": LONE}, "address"),
        ("", "patch", {"description": {"en": LONE}}, "description"),
        ("", "patch", {"embed_origins": [LONE]}, "embed_origins"),
        ("/staff", "post", {"name": "Dora", "email": "d@x.example", "tags": [LONE]}, "tags"),
        ("/staff/ben", "patch", {"phone": LONE}, "phone"),
        (
            "/staff/ben/time-off",
            "post",
            {"start": "2026-12-14T09:00:00+01:00", "end": "2026-12-14T10:00:00+01:00",
             "reason": LONE},
            "reason",
        ),
    ],
)  # fmt: skip
def test_a_text_that_cannot_be_stored_is_refused_by_name(
    world: World, path: str, method: str, body: dict[str, Any], field: str
) -> None:
    client = world.app.test_client()
    headers = {**bearer(world, "admin"), "Content-Type": "application/json"}
    # json.dumps writes the surrogate as the escape \ud800, as a hostile client would send it.
    answer = getattr(client, method)(CALENDAR + path, headers=headers, data=json.dumps(body))
    assert answer.status_code == 422, answer.get_data(as_text=True)[:300]
    assert list(answer.get_json()["error"]["fields"]) == [field]
    assert client.get(CALENDAR, headers=headers).get_json()["name"] == "Acme Advice"


def test_parallel_changes_give_no_server_error(world: World) -> None:
    """Eight clients add a member of the same name at once: each answer is a success or a clear
    refusal, never a 500, and no id is doubled."""
    from concurrent.futures import ThreadPoolExecutor

    headers = bearer(world, "admin")

    def add(number: int) -> Any:
        body = {"name": "Eve Twin", "email": f"eve{number}@acme.example"}
        return world.app.test_client().post(f"{CALENDAR}/staff", headers=headers, json=body)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(add, range(8)))
    assert {a.status_code for a in answers} <= {201, 409}, [a.get_json() for a in answers]
    made = [a.get_json()["id"] for a in answers if a.status_code == 201]
    assert made and len(made) == len(set(made))
    session = db(world)
    try:
        slugs = list(
            session.scalars(sa.select(StaffMember.slug).where(StaffMember.name == "Eve Twin"))
        )
    finally:
        session.close()
    assert sorted(slugs) == sorted(made)


def test_a_tokens_answers_never_carry_a_clients_manage_link(world: World) -> None:
    """A manage link is the client's key (it cancels, moves, erases): read by a token's user, it
    would let a read token change bookings. Token answers leave it out, at any depth."""
    client = world.app.test_client()
    reader = bearer(world, "admin", "read")
    page = client.get("/api/v1/bookings?calendar=acme&from=2026-11-25", headers=reader)
    booking = page.get_json()["bookings"][0]
    assert booking["id"] and "manage_token" not in booking and "manage_url" not in booking
    one = client.get(f"/api/v1/bookings/{booking['id']}", headers=reader).get_json()
    assert "manage_token" not in str(one) and "/manage/" not in str(one)
    writer = bearer(world, "admin")
    made = client.post(
        f"{CALENDAR}/services/review/bookings",
        headers=writer,
        json={
            "start": "2026-12-03T11:00:00+01:00",
            "client": {"name": "Zoé", "email": "zoe@client.example"},
        },
    )
    assert made.status_code == 201, made.get_json()
    assert "manage_token" not in str(made.get_json())
    assert made.headers["Location"].endswith(f"/api/v1/bookings/{made.get_json()['id']}")


def test_what_is_wrong_with_a_body_is_said_where_it_is(world: World) -> None:
    client = world.app.test_client()
    admin = {**bearer(world, "admin"), "Content-Type": "application/json"}
    null = client.patch(CALENDAR, headers=admin, data="null")
    assert (null.status_code, null.get_json()["error"]["code"]) == (400, "invalid_request")
    broken = client.patch(CALENDAR, headers=admin, data='{"name": "A",}')
    assert broken.get_json()["error"]["code"] == "malformed_json"
    assert "line 1 column 14" in broken.get_json()["error"]["message"]
    typo = client.patch(CALENDAR, headers=admin, json={"nmae": "A"}).get_json()["error"]
    assert (typo["path"], typo["message"][:20]) == ("/nmae", "unknown key 'nmae'; ")
    late = client.patch(CALENDAR, headers=admin, json={"quiet_hours": {"from": "25:00", "to": "8"}})
    assert "a time of day like 21:00" in late.get_json()["error"]["message"]
    unsent = client.patch(CALENDAR, headers=bearer(world, "admin"), data='{"name": "A"}')
    assert unsent.status_code == 415


def test_an_integrators_mistakes_are_answered_with_what_to_do(world: World) -> None:
    client = world.app.test_client()
    admin = bearer(world, "admin")
    # No token: 401 with how to send one (RFC 6750).
    bare = client.get(CALENDAR)
    assert (bare.status_code, bare.headers["WWW-Authenticate"]) == (401, 'Bearer realm="bookwise"')
    # A status no booking can have: 400 naming those it can, not an empty page.
    typo = client.get("/api/v1/bookings?calendar=acme&status=confirmd", headers=admin)
    assert typo.status_code == 400
    assert "confirmed" in typo.get_json()["error"]["message"]
    assert (
        client.get("/api/v1/bookings?calendar=acme&status=cancelled", headers=admin).status_code
        == 200
    )
    # An action the workflow does not have: 404 listing its actions; one not possible now: 409.
    uid = client.get("/api/v1/bookings?calendar=acme", headers=admin).get_json()["bookings"][0][
        "id"
    ]
    unknown = client.post(f"/api/v1/bookings/{uid}/transitions/frobnicate", headers=admin)
    assert (unknown.status_code, unknown.get_json()["error"]["code"]) == (404, "unknown_transition")
    assert "cancel" in unknown.get_json()["error"]["message"]
    # Two members of one calendar with one address: refused, naming the field.
    twin = client.post(
        f"{CALENDAR}/staff", headers=admin, json={"name": "Ana Two", "email": "ANA@acme.example"}
    )
    assert (twin.status_code, list(twin.get_json()["error"]["fields"])) == (422, ["email"])
    # A member invited and not yet answering is bookable, but takes no booking yet.
    new = client.post(
        f"{CALENDAR}/staff", headers=admin, json={"name": "Ivo", "email": "i@x.example"}
    )
    assert (new.get_json()["bookable"], new.get_json()["takes_bookings"]) == (True, False)
    listed = client.get(f"{CALENDAR}/staff", headers=admin).get_json()["staff"]
    assert {m["id"]: m["takes_bookings"] for m in listed}["ana"] is True
    # A phone is cleared with null.
    client.patch(f"{CALENDAR}/staff/ivo", headers=admin, json={"phone": "+33 1 23 45 67 89"})
    cleared = client.patch(f"{CALENDAR}/staff/ivo", headers=admin, json={"phone": None})
    assert (cleared.get_json()["phone"], cleared.get_json()["changed"]) == (None, ["phone"])
    # The languages a description may be given in.
    assert client.get(CALENDAR, headers=admin).get_json()["locales"][0] == "en"
