"""Personal API tokens and the first endpoint they open (issue 19): ``GET /api/v1/bookings``
with cursor pagination; 401 without a valid token, 404 for another calendar (nothing tells that
it exists), a staff member's token sees their own bookings; tokens created, listed and revoked
with ``bookwise tokens``. The back office's world (tests/admin/conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from bookwise.accounts.models import ApiToken
from bookwise.accounts.tokens import create_token, revoke_token
from bookwise.audit.models import AuditEntry
from bookwise.db import unit_of_work
from tests.admin.conftest import NOW, World

URL = "/api/v1/bookings"


def make_token(world: World, who: str, calendar: str = "acme", scope: str = "read") -> str:
    sessions = world.app.extensions["bookwise"].database.sessions
    with unit_of_work(sessions, write=True) as session:
        _token, secret = create_token(session, f"{who}@bw.example", calendar, scope, "test", NOW)
    return secret


def get(world: World, secret: str | None, **query: Any) -> Any:
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    return world.app.test_client().get(URL, query_string=query, headers=headers)


def test_without_a_valid_token_the_answer_is_401(world: World) -> None:
    for headers in ({}, {"Authorization": "Bearer bw_nope"}, {"Authorization": "Basic eDp5"}):
        answer = world.app.test_client().get(
            URL, query_string={"calendar": "acme"}, headers=headers
        )
        assert answer.status_code == 401
        assert answer.get_json()["error"]["code"] == "unauthorized"


def test_a_calendars_bookings_page_by_page(world: World) -> None:
    secret = make_token(world, "admin")
    first = get(world, secret, calendar="acme", limit=3, **{"from": "2026-11-25"})
    assert first.status_code == 200, first.get_json()
    page = first.get_json()
    assert page["calendar"] == "acme" and len(page["bookings"]) == 3
    assert page["next_cursor"]
    rest = get(
        world,
        secret,
        calendar="acme",
        limit=3,
        cursor=page["next_cursor"],
        **{"from": "2026-11-25"},
    )
    more = rest.get_json()
    assert more["next_cursor"] is None
    seen = [b["id"] for b in page["bookings"] + more["bookings"]]
    assert len(seen) == len(set(seen)) == 4  # the acme bookings of the world, each once
    starts = [b["start"] for b in page["bookings"] + more["bookings"]]
    assert starts == sorted(starts)
    everything = get(world, secret, calendar="acme", **{"from": "2026-11-25"}).get_json()
    assert [b["id"] for b in everything["bookings"]] == seen


def test_another_calendar_is_not_found_and_a_revoked_token_fails_at_once(world: World) -> None:
    secret = make_token(world, "admin")
    hidden = get(world, secret, calendar="private")
    assert hidden.status_code == 404
    nowhere = get(world, secret, calendar="nowhere")
    assert nowhere.status_code == 404
    assert hidden.get_json()["error"] == nowhere.get_json()["error"]
    assert get(world, make_token(world, "other", "private"), calendar="private").status_code == 200
    sessions = world.app.extensions["bookwise"].database.sessions
    with unit_of_work(sessions, write=True) as session:
        token = session.scalars(sa.select(ApiToken).order_by(ApiToken.id)).first()
        assert token is not None
        revoke_token(session, token.id, NOW)
    assert get(world, secret, calendar="acme").status_code == 401


def test_a_staff_members_token_sees_their_own_bookings(world: World) -> None:
    mine = get(world, make_token(world, "ana"), calendar="acme", **{"from": "2026-11-25"})
    assert mine.status_code == 200
    assert {b["staff"] for b in mine.get_json()["bookings"]} == {"ana"}


@pytest.mark.parametrize(
    "query",
    [
        {"cursor": "not-a-cursor"},
        {"cursor": "eyJzIjogIjIwMjYifQ"},
        {"limit": "0"},
        {"limit": "many"},
        {"from": "2026-13-01"},
        {"from": "2026-12-10", "to": "2026-12-01"},
        {"from": "2026-01-01", "to": "2027-12-31"},
    ],
)
def test_bad_queries_are_400(world: World, query: dict[str, str]) -> None:
    answer = get(world, make_token(world, "admin"), calendar="acme", **query)
    assert answer.status_code == 400, answer.get_json()


def test_tokens_from_the_command_line(world: World, bookwise_cli: Any) -> None:
    config = str(world.app.extensions["bookwise"].settings.source)
    made = bookwise_cli(
        "--config", config, "tokens", "create", "--user", "viewer@bw.example", "--calendar",
        "acme", "--scope", "read", "--name", "HR system",
    )  # fmt: skip
    assert made.exit_code == 0, made.stderr
    secret = made.stdout.strip().splitlines()[-1]
    assert secret.startswith("bw_")
    assert get(world, secret, calendar="acme").status_code == 200
    listed = bookwise_cli("--config", config, "tokens", "list")
    assert "viewer@bw.example" in listed.stdout and "HR system" in listed.stdout
    assert secret not in listed.stdout
    token_id = listed.stdout.split("\t", 1)[0]
    assert bookwise_cli("--config", config, "tokens", "revoke", token_id).exit_code == 0
    assert get(world, secret, calendar="acme").status_code == 401
    refused = bookwise_cli(
        "--config", config, "tokens", "create", "--user", "ana@bw.example", "--calendar", "private"
    )
    assert refused.exit_code == 1
    assert "has no role in the calendar 'private'" in refused.stderr


def test_tokens_in_the_back_office(world: World) -> None:
    import re

    from bookwise.calendars.models import Calendar
    from tests.admin.conftest import token as csrf_of

    with world.app.extensions["bookwise"].database.sessions() as session:
        acme = session.get(Calendar, world.ids["acme"])
        assert acme is not None
        name, slug, zone = acme.name, acme.slug, acme.timezone
    client = world.login("viewer")
    page = client.get("/admin/tokens/")
    assert page.status_code == 200
    # The page names its calendar and its id in the API, links the API's browsable reference
    # and says what each scope allows.
    text = page.get_data(as_text=True)
    assert f"Tokens for the calendar {name} (in the API: <code>{slug}</code>)." in text
    assert 'href="/api/v1/docs"' in text and "docs/api.md" not in text
    assert "it can do only what you can do here" in text
    assert "Read only: bookings, staff, hours, settings, scenarios and reports" in text
    assert (
        "Read and change what you may change in this calendar: bookings, staff, hours,"
        " time off, settings, scenarios"
    ) in text
    made = client.post(
        "/admin/tokens/",
        data={"name": "Reports", "scope": "write", "csrf_token": csrf_of(client, "/admin/tokens/")},
    )
    assert made.status_code == 200
    shown = re.search(r'class="api-token-secret"[^>]*>(bw_[^<]+)<', made.get_data(as_text=True))
    assert shown is not None
    secret = shown.group(1)
    # Shown once: not on the next visit; listed by its prefix, with its last use.
    again = client.get("/admin/tokens/").get_data(as_text=True)
    assert secret not in again and secret[:9] in again and "never" in again
    # Its times are in the calendar's zone, said above the table; revoking says it is final.
    assert f"Times in {zone}." in again and "Revoke (cannot be undone)" in again
    assert get(world, secret, calendar="acme").status_code == 200
    assert (
        "never" not in client.get("/admin/tokens/").get_data(as_text=True).split("Reports")[1][:400]
    )
    # A viewer's write token still only reads (the user's role is the limit).
    with world.app.extensions["bookwise"].database.sessions() as session:
        row = session.scalars(sa.select(ApiToken).where(ApiToken.name == "Reports")).one()
    # Another calendar's admin cannot revoke it; the acme admin can.
    other = world.login("other")
    form = {"csrf_token": csrf_of(other, "/admin/tokens/")}
    assert other.post(f"/admin/tokens/{row.id}/revoke", data=form).status_code == 403
    admin = world.login("admin")
    assert "viewer@bw.example" in admin.get("/admin/tokens/").get_data(as_text=True)
    revoked = admin.post(
        f"/admin/tokens/{row.id}/revoke", data={"csrf_token": csrf_of(admin, "/admin/tokens/")}
    )
    assert revoked.status_code == 302
    assert get(world, secret, calendar="acme").status_code == 401


def test_one_booking_and_a_cancellation_by_a_write_token(world: World) -> None:
    from bookwise.bookings.models import Booking

    with world.app.extensions["bookwise"].database.sessions() as session:
        acme = session.get(Booking, world.ids["acme_consult"])
        private = session.get(Booking, world.ids["private_consult"])
        assert acme is not None and private is not None
        acme_uid, private_uid = acme.uid, private.uid
    client = world.app.test_client()
    reader = {"Authorization": f"Bearer {make_token(world, 'admin')}"}
    writer = {"Authorization": f"Bearer {make_token(world, 'admin', scope='write')}"}
    viewer_writer = {"Authorization": f"Bearer {make_token(world, 'viewer', scope='write')}"}
    shown = client.get(f"/api/v1/bookings/{acme_uid}", headers=reader)
    assert (shown.status_code, shown.get_json()["id"]) == (200, acme_uid)
    assert client.get(f"/api/v1/bookings/{private_uid}", headers=reader).status_code == 404
    assert client.get(f"/api/v1/bookings/{acme_uid}").status_code == 401
    # Reading is not writing: a read token, and a viewer's write token, are refused (403).
    for headers in (reader, viewer_writer):
        refused = client.post(f"/api/v1/bookings/{acme_uid}/cancel", headers=headers, json={})
        assert refused.status_code == 403
        assert refused.get_json()["error"]["code"] == "forbidden"
    assert client.get(f"/api/v1/bookings/{acme_uid}", headers=reader).get_json()["status"] != (
        "cancelled"
    )
    done = client.post(
        f"/api/v1/bookings/{acme_uid}/cancel", headers=writer, json={"reason": "Closed"}
    )
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["status"] == "cancelled"
    other = client.post(f"/api/v1/bookings/{private_uid}/cancel", headers=writer, json={})
    assert other.status_code == 404


@pytest.mark.parametrize("kind", ["tsv", "csv", "json"])
def test_the_report_of_120_days(world: World, kind: str) -> None:
    admin = {"Authorization": f"Bearer {make_token(world, 'admin')}"}
    answer = world.app.test_client().get(
        "/api/v1/reports/bookings",
        query_string={"calendar": "acme", "format": kind, "from": "2026-11-25"},
        headers=admin,
    )
    assert answer.status_code == 200
    if kind == "json":
        report = answer.get_json()
        assert len(report["rows"]) == 4 and report["columns"]
        # Each row's reference is the reference of a booking the API lists.
        listed = get(world, make_token(world, "admin"), calendar="acme", **{"from": "2026-11-25"})
        assert {row[0] for row in report["rows"]} == {
            b["reference"] for b in listed.get_json()["bookings"]
        }
    else:
        lines = answer.get_data(as_text=True).strip().splitlines()
        assert len(lines) == 1 + 4
        assert ("\t" if kind == "tsv" else ",") in lines[0]
    # The viewer's report leaves the sensitive answers out, as the back office's does.
    viewer = {"Authorization": f"Bearer {make_token(world, 'viewer')}"}
    theirs = world.app.test_client().get(
        "/api/v1/reports/bookings",
        query_string={"calendar": "acme", "format": "json", "from": "2026-11-25"},
        headers=viewer,
    )
    full = world.app.test_client().get(
        "/api/v1/reports/bookings",
        query_string={"calendar": "acme", "format": "json", "from": "2026-11-25"},
        headers=admin,
    )
    assert len(theirs.get_json()["columns"]) < len(full.get_json()["columns"])
    with world.app.extensions["bookwise"].database.sessions() as session:
        audited = session.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == "report.exported")
        ).all()
    assert audited and "API token" in audited[-1].actor


def _uid(world: World, key: str) -> str:
    from bookwise.bookings.models import Booking

    with world.app.extensions["bookwise"].database.sessions() as session:
        booking = session.get(Booking, world.ids[key])
        assert booking is not None
        return booking.uid


def test_approving_and_moving_for_the_business(world: World) -> None:
    client = world.app.test_client()
    writer = {"Authorization": f"Bearer {make_token(world, 'admin', scope='write')}"}
    review = _uid(world, "acme_review_ana")
    assert client.get(f"/api/v1/bookings/{review}", headers=writer).get_json()["status"] == (
        "requested"
    )
    approved = client.post(f"/api/v1/bookings/{review}/transitions/approve", headers=writer)
    assert approved.status_code == 200, approved.get_json()
    assert approved.get_json()["status"] == "confirmed"
    again = client.post(f"/api/v1/bookings/{review}/transitions/approve", headers=writer)
    assert (again.status_code, again.get_json()["error"]["code"]) == (409, "invalid_state")
    assert "'confirmed'; possible now: cancel" in again.get_json()["error"]["message"]
    unknown = client.post(f"/api/v1/bookings/{review}/transitions/teleport", headers=writer)
    assert (unknown.status_code, unknown.get_json()["error"]["code"]) == (404, "unknown_transition")
    consult = _uid(world, "acme_consult")
    later = "2026-11-30T10:00:00+01:00"
    moved = client.post(
        f"/api/v1/bookings/{consult}/reschedule", headers=writer, json={"start": later}
    )
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json()["start"].startswith("2026-11-30T10:00")
    nowhere = client.post(
        f"/api/v1/bookings/{consult}/reschedule",
        headers=writer,
        json={"start": "2026-11-30T03:00:00+01:00"},
    )
    assert nowhere.status_code in (409, 422)
    bad = client.post(f"/api/v1/bookings/{consult}/reschedule", headers=writer, json={"start": 5})
    assert bad.status_code == 400


def test_workflows_read_validated_and_versioned(world: World) -> None:
    from tests.admin.conftest import PRIVATE_ONLY

    client = world.app.test_client()
    admin = {"Authorization": f"Bearer {make_token(world, 'admin', scope='write')}"}
    listed = client.get("/api/v1/workflows", query_string={"calendar": "acme"}, headers=admin)
    assert listed.status_code == 200
    ids = {w["id"]: w for w in listed.get_json()["workflows"]}
    assert {"consult", "review", "visit"} <= set(ids) and "private-only" not in ids
    assert ids["consult"]["shared"] is True  # private offers it too
    yaml = client.get("/api/v1/workflows/consult", query_string={"format": "yaml"}, headers=admin)
    assert yaml.mimetype == "application/yaml" and "id: consult" in yaml.get_data(as_text=True)
    shown = client.get("/api/v1/workflows/consult", headers=admin).get_json()
    assert shown["definition"]["id"] == "consult" and shown["version"] >= 1
    assert client.get("/api/v1/workflows/private-only", headers=admin).status_code == 404
    # Checking a text saves nothing, and says where each problem is.
    good = client.post("/api/v1/workflows/validate", json={"source": PRIVATE_ONLY}, headers=admin)
    assert good.get_json()["valid"] is True
    broken = PRIVATE_ONLY.replace("duration: 30m", "duration: thirty")
    bad = client.post("/api/v1/workflows/validate", json={"source": broken}, headers=admin)
    report = bad.get_json()
    assert report["valid"] is False
    assert any(p["line"] == 3 and "duration" in p["message"] for p in report["problems"])
    # A new version: not of a workflow shared with another calendar (beyond the token's scope).
    shared = client.post(
        "/api/v1/workflows/consult/versions", json={"source": shown["source"]}, headers=admin
    )
    assert shared.status_code == 403
    # The private calendar's admin versions its own workflow.
    other = {"Authorization": f"Bearer {make_token(world, 'other', 'private', 'write')}"}
    renamed = PRIVATE_ONLY.replace("Members' secret session", "Members' session")
    url = "/api/v1/workflows/private-only/versions"
    made = client.post(url, json={"source": renamed, "comment": "by the API"}, headers=other)
    assert made.status_code == 201, made.get_json()
    assert client.post(url, json={"source": renamed}, headers=other).status_code == 200
    refused = client.post(url, json={"source": broken}, headers=other)
    assert refused.status_code == 422
    assert refused.get_json()["error"]["problems"]
    # Read tokens, viewers and staff do not write; staff do not read workflows.
    viewer = {"Authorization": f"Bearer {make_token(world, 'viewer', scope='write')}"}
    assert client.get("/api/v1/workflows/consult", headers=viewer).status_code == 200
    ana = {"Authorization": f"Bearer {make_token(world, 'ana', scope='write')}"}
    assert client.get("/api/v1/workflows/consult", headers=ana).status_code == 403


def test_a_token_in_use_is_written_down_once_a_minute_not_on_every_read(world: World) -> None:
    secret = make_token(world, "admin")
    engine = world.app.extensions["bookwise"].database.engine
    writes: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE API_TOKENS"):
            writes.append(statement)

    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        for _ in range(5):
            assert get(world, secret, calendar="acme").status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    updates = [w for w in writes if "api_tokens" in w.lower()]
    assert len(updates) == 1  # the first use; the next four within the minute write nothing


def test_booking_for_a_client_with_a_write_token(world: World) -> None:
    from bookwise.bookings.models import Booking, BookingEvent

    url = "/api/v1/calendars/acme/services/consult/bookings"
    body = {
        "start": "2026-12-01T11:00:00+01:00",
        "client": {"name": "Phone Caller", "email": "caller@example.org"},
        "answers": {"topic": "Taxes"},
        "consent": True,
    }
    client = world.app.test_client()
    reader = {"Authorization": f"Bearer {make_token(world, 'admin')}"}
    assert client.post(url, json=body, headers=reader).status_code == 403
    other = {"Authorization": f"Bearer {make_token(world, 'other', 'private', 'write')}"}
    assert client.post(url, json=body, headers=other).status_code == 404
    writer = {
        "Authorization": f"Bearer {make_token(world, 'admin', scope='write')}",
        "Idempotency-Key": "call-42",
    }
    made = client.post(url, json=body, headers=writer)
    assert made.status_code == 201, made.get_json()
    again = client.post(url, json=body, headers=writer)
    assert (again.status_code, again.headers.get("Idempotent-Replayed")) == (201, "true")
    assert again.get_json()["id"] == made.get_json()["id"]
    with world.app.extensions["bookwise"].database.sessions() as session:
        booking = session.scalars(
            sa.select(Booking).where(Booking.uid == made.get_json()["id"])
        ).one()
        actors = session.scalars(
            sa.select(BookingEvent.actor).where(BookingEvent.booking_id == booking.id)
        ).all()
    assert booking.source == "api"
    assert f"user:{world.ids['admin']}" in actors  # as the back office names its users
    # The same key without the token is the public's: judged on its own.
    public = client.post(url, json=body, headers={"Idempotency-Key": "call-42"})
    assert public.headers.get("Idempotent-Replayed") is None


def test_staff_and_their_time_off(world: World) -> None:
    client = world.app.test_client()
    admin = {"Authorization": f"Bearer {make_token(world, 'admin', scope='write')}"}
    staff = client.get("/api/v1/calendars/acme/staff", headers=admin).get_json()["staff"]
    assert {"ana", "ben", "cleo"} <= {m["id"] for m in staff}
    assert client.get("/api/v1/calendars/private/staff", headers=admin).status_code == 404
    url = "/api/v1/calendars/acme/staff/ben/time-off"
    made = client.post(
        url,
        headers=admin,
        json={"start": "2026-12-14T00:00:00+01:00", "end": "2026-12-15T00:00:00+01:00",
              "reason": "Training"},
    )  # fmt: skip
    assert made.status_code == 201, made.get_json()
    time_off = made.get_json()["time_off"]
    listed = client.get(url, headers=admin, query_string={"from": "2026-12-01"}).get_json()
    assert [t["reason"] for t in listed["time_off"] if t["id"] == time_off["id"]] == ["Training"]
    # The same period twice, or an end before its start: 422 naming the field.
    twice = client.post(
        url, headers=admin, json={"start": time_off["start"], "end": time_off["end"]}
    )
    assert (twice.status_code, list(twice.get_json()["error"]["fields"])) == (422, ["start"])
    backwards = client.post(
        url, headers=admin, json={"start": time_off["end"], "end": time_off["start"]}
    )
    assert backwards.get_json()["error"]["fields"].keys() >= {"end"}
    # Ana (staff) reads Ben's time off without its reason, and may not change it; her own, yes.
    ana = {"Authorization": f"Bearer {make_token(world, 'ana', scope='write')}"}
    seen = client.get(url, headers=ana, query_string={"from": "2026-12-01"}).get_json()
    assert {t["reason"] for t in seen["time_off"]} == {None}
    assert (
        client.post(
            url, headers=ana, json={"start": time_off["start"], "end": time_off["end"]}
        ).status_code
        == 403
    )
    own = client.post(
        "/api/v1/calendars/acme/staff/ana/time-off",
        headers=ana,
        json={"start": "2026-12-16T09:00:00+01:00", "end": "2026-12-16T12:00:00+01:00"},
    )
    assert own.status_code == 201
    gone = client.delete(f"{url}/{time_off['id']}", headers=admin)
    assert gone.status_code == 204
    assert client.delete(f"{url}/{time_off['id']}", headers=admin).status_code == 404


def test_working_hours(world: World) -> None:
    client = world.app.test_client()
    admin = {"Authorization": f"Bearer {make_token(world, 'admin', scope='write')}"}
    url = "/api/v1/calendars/acme/hours"
    before = client.get(url, headers=admin).get_json()
    assert set(before["hours"]) == {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
    week = {"mon": ["09:00-12:00", "13:00-17:30"], "tue": ["08:00-12:00"]}
    put = client.put(url, headers=admin, json={"hours": week})
    assert put.status_code == 200, put.get_json()
    assert put.get_json()["hours"]["mon"] == ["09:00-12:00", "13:00-17:30"]
    assert put.get_json()["hours"]["wed"] == []
    overlap = client.put(
        url, headers=admin, json={"hours": {"mon": ["09:00-12:00", "11:00-13:00"]}}
    )
    assert (overlap.status_code, list(overlap.get_json()["error"]["fields"])) == (422, ["mon"])
    garbage = client.put(url, headers=admin, json={"hours": {"mon": ["nine to five"]}})
    assert garbage.status_code == 422
    unknown_day = client.put(url, headers=admin, json={"hours": {"funday": []}})
    error = unknown_day.get_json()["error"]
    assert (unknown_day.status_code, error["path"]) == (400, "/hours/funday")
    assert error["message"].startswith("unknown key 'funday'; the keys known here: fri, mon")
    not_text = client.put(url, headers=admin, json={"hours": {"mon": [9]}})
    assert not_text.get_json()["error"]["path"] == "/hours/mon/0"
    unsent = client.put(url, headers=admin, data='{"hours": {}}')  # no Content-Type
    assert unsent.status_code == 415
    viewer = {"Authorization": f"Bearer {make_token(world, 'viewer', scope='write')}"}
    assert client.put(url, headers=viewer, json={"hours": week}).status_code == 403
    # Ana sets her own hours, then gives them up for the calendar's.
    ana = {"Authorization": f"Bearer {make_token(world, 'ana', scope='write')}"}
    mine = "/api/v1/calendars/acme/staff/ana/hours"
    own = client.put(mine, headers=ana, json={"hours": {"fri": ["10:00-14:00"]}})
    assert own.status_code == 200 and own.get_json()["own_hours"] is True
    assert (
        client.put(
            "/api/v1/calendars/acme/staff/ben/hours", headers=ana, json={"hours": {}}
        ).status_code
        == 403
    )
    back = client.put(mine, headers=ana, json={"hours": {}})
    assert back.get_json()["own_hours"] is False
    assert back.get_json()["hours"]["mon"] == ["09:00-12:00", "13:00-17:30"]


def test_a_page_of_bookings_costs_the_same_statements_whatever_its_length(world: World) -> None:
    """No query per booking (its client, staff member, consent): a page of 4 bookings runs as
    many SQL statements as a page of 1."""
    engine = world.app.extensions["bookwise"].database.engine
    secret = make_token(world, "admin")
    counted: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        counted.append(statement)

    def statements(limit: int) -> int:
        get(world, secret, calendar="acme", limit=limit)  # the token's last use is written once
        counted.clear()
        answer = get(world, secret, calendar="acme", limit=limit, **{"from": "2026-11-25"})
        assert len(answer.get_json()["bookings"]) == limit
        return len(counted)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        assert statements(1) == statements(4)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
