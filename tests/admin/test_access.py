"""Who may see what: every back-office URL walked as each role.

A user of calendar acme must read nothing of calendar private by any URL (ids in the path,
calendar ids in forms), and every refusal is a 403 recorded in the audit log.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select

from bookwise.accounts.models import CalendarRole
from bookwise.audit.models import AuditEntry
from bookwise.bookings.models import Booking, Client, WaitlistEntry
from bookwise.calendars.models import Service, StaffMember
from bookwise.notifications.models import WebhookEndpoint
from bookwise.notifications.webhooks import create_endpoint
from bookwise.workflows.models import WorkflowVersion
from tests.admin.conftest import NOW, World, token

# What only the private calendar's pages would show.
SECRETS = (
    "Secret Member",
    "Secret trip",
    "secret session",
    "private-client@",
    "Private club",
    "secret-hooks.example",
)


def admin_rules(app: Any) -> list[Any]:
    return sorted(
        (
            r
            for r in app.url_map.iter_rules()
            if r.rule.startswith("/admin") and "static" not in r.endpoint
        ),
        key=lambda r: r.rule,
    )


def _private_waitlist_entry(session: Any, world: World) -> int:
    """A client of the private calendar waiting for a time (made once per world)."""
    found = session.scalar(
        select(WaitlistEntry.id).where(WaitlistEntry.calendar_id == world.ids["private"])
    )
    if found is not None:
        return int(found)
    consult = session.get(Booking, world.ids["private_consult"])
    client = Client(
        calendar_id=world.ids["private"], name="Secret Member", email="private-client@bw.example",
        locale="en", timezone="UTC",
    )  # fmt: skip
    entry = WaitlistEntry(
        calendar_id=world.ids["private"], service_id=consult.service_id, client=client,
        wanted_from=consult.start_at, wanted_until=consult.start_at, answers={}, locale="en",
        timezone="UTC", manage_token="wl-private-entry", created_at=consult.created_at,
    )  # fmt: skip
    session.add(entry)
    session.commit()
    return entry.id


def _private_api_token(session: Any) -> int:
    """An API token of the private calendar's admin (made once per world)."""
    from bookwise.accounts.models import ApiToken
    from bookwise.accounts.tokens import create_token
    from bookwise.calendars.models import Calendar

    private = session.scalar(select(Calendar.id).where(Calendar.slug == "private"))
    found = session.scalar(select(ApiToken.id).where(ApiToken.calendar_id == private))
    if found is not None:
        return int(found)
    token, _secret = create_token(session, "other@bw.example", "private", "read", "p", NOW)
    session.commit()
    return token.id


def _private_endpoint(session: Any, world: World) -> int:
    """A webhook endpoint of the private calendar (made once per world)."""
    found = session.scalar(
        select(WebhookEndpoint.id).where(WebhookEndpoint.calendar_id == world.ids["private"])
    )
    if found is not None:
        return int(found)
    endpoint, _secret = create_endpoint(
        session, world.ids["private"], "https://secret-hooks.example/in", ["booking.created"]
    )
    session.commit()
    return endpoint.id


def private_values(world: World) -> dict[str, Any]:
    """URL values naming the private calendar's objects."""
    with world.app.app_context():
        from bookwise.web import instance

        with instance().database.sessions() as session:
            service_id = session.scalar(
                select(Service.id).where(Service.calendar_id == world.ids["private"])
            )
            role_id = session.scalar(
                select(CalendarRole.id).where(CalendarRole.user_id == world.ids["other"])
            )
            entry_id = _private_waitlist_entry(session, world)
            token_id = _private_api_token(session)
            endpoint_id = _private_endpoint(session, world)
    return {
        "entry_id": entry_id,
        "token_id": token_id,
        "endpoint_id": endpoint_id,
        "booking_id": world.ids["private_consult"],
        "staff_id": world.ids["staff_dan"],
        "service_id": service_id,
        "calendar_id": world.ids["private"],
        "slug": "private-only",
        "number": 1,
        "message_id": world.ids["message_private"],
        "user_id": world.ids["other"],
        "role_id": role_id,
        "time_off_id": world.ids["time_off_dan"],
        "staff": "dan",
        "template": "confirmed",
        "audience": "client",
        "channel": "email",
        "locale": "en",
        "kind": "tsv",
    }


# URL values that do not name an object of a calendar: such pages act on the current calendar.
NEUTRAL = {"template", "audience", "channel", "locale", "kind", "number"}


def urls(world: World, values: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(method, path, whether the path names another calendar's object)."""
    out = []
    for rule in admin_rules(world.app):
        path = rule.rule
        for name in rule.arguments:
            path = re.sub(rf"<(?:[a-z]+:)?{name}>", str(values[name]), path)
        foreign = bool(set(rule.arguments) - NEUTRAL)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            out.append((method, path, foreign))
    return out


def denied(world: World) -> int:
    with world.app.app_context():
        from bookwise.web import instance

        with instance().database.sessions() as session:
            return (
                session.scalar(
                    select(func.count())
                    .select_from(AuditEntry)
                    .where(AuditEntry.action == "access.denied")
                )
                or 0
            )


def private_state(world: World) -> tuple[Any, ...]:
    with world.app.app_context():
        from bookwise.web import instance

        with instance().database.sessions() as session:
            booking = session.get(Booking, world.ids["private_consult"])
            dan = session.get(StaffMember, world.ids["staff_dan"])
            versions = session.scalar(
                select(func.count())
                .select_from(WorkflowVersion)
                .where(WorkflowVersion.workflow_id == world.ids["private_only"])
            )
            assert booking is not None and dan is not None
            return (
                booking.state,
                booking.staff_id,
                booking.start_at,
                dan.name,
                dan.bookable,
                versions,
            )


@pytest.mark.parametrize("who", ["viewer", "ana", "admin"])
def test_no_url_reads_or_changes_another_calendar(world: World, who: str) -> None:
    client = world.login(who)
    csrf = token(client)
    before = private_state(world)
    refused = 0
    for method, path, foreign in urls(world, private_values(world)):
        if method == "GET":
            response = client.get(path)
        else:
            response = client.post(
                path,
                data={
                    "csrf_token": csrf,
                    "calendar_id": world.ids["private"],
                    "transition": "cancel",
                    "staff_id": world.ids["staff_dan"],
                    "name": "Hacked",
                    "email": "hacked@bw.example",
                    "text": "id: private-only\nname: Hacked\nduration: 10m\n",
                    "mode": "cancel",
                },
            )
        body = response.get_data(as_text=True)
        assert response.status_code < 500, (method, path, body[:300])
        leaked = [s for s in SECRETS if s in body]
        assert not leaked, (method, path, response.status_code, leaked)
        if response.status_code == 403:
            refused += 1
        if foreign:
            assert response.status_code in (403, 404), (method, path, response.status_code)
    assert refused > 10
    assert private_state(world) == before
    assert denied(world) >= refused


def test_a_forged_calendar_switch_is_refused_and_recorded(world: World) -> None:
    client = world.login("viewer")
    before = denied(world)
    response = client.post(
        "/admin/switch",
        data={"csrf_token": token(client), "calendar_id": world.ids["private"], "next": "/admin/"},
    )
    assert response.status_code == 403
    assert denied(world) == before + 1
    assert "Private club" not in client.get("/admin/").get_data(as_text=True)


def test_switching_to_ones_own_calendar(world: World) -> None:
    client = world.login("super")
    response = client.post(
        "/admin/switch",
        data={"csrf_token": token(client), "calendar_id": world.ids["private"], "next": "/admin/"},
    )
    assert response.status_code == 302
    assert "Private club" in client.get("/admin/").get_data(as_text=True)


OWN_GETS = {
    # path: {role: expected status}
    "/admin/": {"viewer": 200, "ana": 200, "admin": 200},
    "/admin/bookings/": {"viewer": 200, "ana": 200, "admin": 200},
    "/admin/bookings/grid": {"viewer": 200, "ana": 200, "admin": 200},
    "/admin/bookings/new": {"viewer": 403, "ana": 403, "admin": 200},
    "/admin/staff/": {"viewer": 200, "ana": 302, "admin": 200},
    "/admin/staff/new": {"viewer": 403, "ana": 403, "admin": 200},
    "/admin/services/": {"viewer": 200, "ana": 403, "admin": 200},
    "/admin/workflows/": {"viewer": 200, "ana": 403, "admin": 200},
    "/admin/workflows/new": {"viewer": 403, "ana": 403, "admin": 200},
    "/admin/workflows/review/": {"viewer": 200, "ana": 403, "admin": 200},
    "/admin/workflows/review/edit": {"viewer": 403, "ana": 403, "admin": 200},
    "/admin/workflows/review/yaml": {"viewer": 403, "ana": 403, "admin": 200},
    "/admin/workflows/review/versions": {"viewer": 200, "ana": 403, "admin": 200},
    "/admin/reports/": {"viewer": 200, "ana": 403, "admin": 200},
    "/admin/reports/export.tsv": {"viewer": 200, "ana": 403, "admin": 200},
    "/admin/templates/": {"viewer": 403, "ana": 403, "admin": 200},
    "/admin/outbox/": {"viewer": 403, "ana": 403, "admin": 200},
    "/admin/audit/": {"viewer": 403, "ana": 403, "admin": 200},
    "/admin/users/": {"viewer": 403, "ana": 403, "admin": 403},
    "/admin/calendars/": {"viewer": 200, "ana": 200, "admin": 200},
    "/admin/calendars/new": {"viewer": 403, "ana": 403, "admin": 403},
    "/admin/templates/?scope=instance": {"viewer": 403, "ana": 403, "admin": 403},
    "/admin/audit/?scope=instance": {"viewer": 403, "ana": 403, "admin": 200},
}


@pytest.mark.parametrize("who", ["viewer", "ana", "admin"])
def test_each_role_in_its_own_calendar(world: World, who: str) -> None:
    client = world.login(who)
    for path, expected in OWN_GETS.items():
        response = client.get(path)
        assert response.status_code == expected[who], (who, path, response.status_code)


def test_a_staff_member_sees_only_their_own_bookings(world: World) -> None:
    client = world.login("ana")
    listing = client.get("/admin/bookings/").get_data(as_text=True)
    assert f"/admin/bookings/{world.ids['acme_review_ana']}" in listing
    assert f"/admin/bookings/{world.ids['acme_review_ben']}" not in listing
    assert client.get(f"/admin/bookings/{world.ids['acme_review_ana']}").status_code == 200
    assert client.get(f"/admin/bookings/{world.ids['acme_review_ben']}").status_code == 403
    own = client.get("/admin/staff/")
    assert own.headers["Location"].endswith(f"/admin/staff/{world.ids['staff_ana']}/")
    assert client.get(f"/admin/staff/{world.ids['staff_ben']}/").status_code == 403


def test_a_staff_member_posting_to_an_admin_form_is_refused_and_recorded(world: World) -> None:
    client = world.login("ana")
    before = denied(world)
    response = client.post(
        f"/admin/staff/{world.ids['staff_ana']}/",
        data={"csrf_token": token(client), "name": "Ana Boss", "email": "ana@acme.example"},
    )
    assert response.status_code == 403
    assert denied(world) == before + 1
    with world.app.app_context():
        from bookwise.web import instance

        with instance().database.sessions() as session:
            assert session.get(StaffMember, world.ids["staff_ana"]).name == "Ana"  # type: ignore[union-attr]


def test_signed_out_visitors_are_sent_to_sign_in(world: World) -> None:
    client = world.app.test_client()
    for rule in admin_rules(world.app):
        if rule.arguments or "GET" not in (rule.methods or ()):
            continue
        response = client.get(rule.rule)
        assert response.status_code == 302, rule.rule
        assert "/login?next=" in response.headers["Location"]


def test_posts_without_the_csrf_token_are_refused(world: World) -> None:
    client = world.login("admin")
    response = client.post(
        f"/admin/bookings/{world.ids['acme_review_ana']}/move", data={"transition": "approve"}
    )
    assert response.status_code in (400, 403, 422)
    with world.app.app_context():
        from bookwise.web import instance

        with instance().database.sessions() as session:
            assert session.get(Booking, world.ids["acme_review_ana"]).state == "requested"  # type: ignore[union-attr]
