"""Every route of the token API against the tokens that must not pass (issue 19): read from the
application's URL map, so that a new route is covered the day it is added. For each route and
method, with acme's objects in the URL:

- no token, an unknown one, a revoked one: 401 ``unauthorized``;
- a write token of another calendar's admin: 404, as for a calendar that does not exist;
- a read token of acme's own admin, for a change: 403 ``forbidden``;

and none of them changes a row (a digest of every table but the audit log, before and after).
Each change is sent with a body that would go through with the right token: the test fails if a
check is missing, not only if the route refuses everything."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import sqlalchemy as sa

from bookwise.accounts.models import ApiToken
from bookwise.accounts.tokens import revoke_token
from bookwise.api.spec import operation_of
from bookwise.bookings.models import Booking
from bookwise.db import unit_of_work
from bookwise.models import metadata
from tests.admin.conftest import NOW, World
from tests.admin.test_api_tokens import make_token

REVIEW = """\
id: review
name: {en: Review changed by a stranger}
duration: 30m
staff: {tags: [consultant]}
notifications: []
"""
# A body that the route would take from acme's admin with a write token (None: no body).
BODIES: dict[str, Any] = {
    "api.cancel_booking_by_token": {"reason": "stranger"},
    "api.transition_by_token": {},
    "api.reschedule_by_token": {"start": "2026-12-02T10:00:00+01:00"},
    "api.add_workflow_version": {"source": REVIEW},
    "api.create_workflow_by_token": {"source": REVIEW.replace("id: review", "id: stranger")},
    "api.validate_workflow": {"source": REVIEW},
    "api.add_time_off_by_token": {
        "start": "2026-12-14T09:00:00+01:00",
        "end": "2026-12-14T12:00:00+01:00",
    },
    "api.remove_time_off_by_token": None,
    "api.set_calendar_hours": {"hours": {"mon": ["10:00-11:00"]}},
    "api.set_staff_hours": {"hours": {"mon": ["10:00-11:00"]}},
    "api.change_calendar": {"name": "Taken over"},
    "api.change_service": {"active": False},
    "api.add_staff_member": {"name": "Mallory", "email": "mallory@evil.example"},
    "api.change_staff_member": {"name": "Mallory"},
    "api.remove_staff_member": None,
    # The public booking POST books for the business with a write token (as staff on the phone).
    "api.book": {
        "start": "2026-12-03T11:00:00+01:00",
        "client": {"name": "Zoé", "email": "zoe@client.example"},
    },
}
# Routes a token of any calendar may use: checking a text saves nothing and reads no calendar.
ANY_CALENDAR = {"api.validate_workflow"}
# Routes that take a token but need none (the public booking POST: without one, a client books).
TOKEN_OPTIONAL = {"api.book"}


def _fingerprint(world: World) -> str:
    digest = hashlib.sha256()
    database = world.app.extensions["bookwise"].database
    with database.engine.connect() as connection:
        for table in metadata.sorted_tables:
            if table.name in ("audit_log", "api_tokens"):  # refusals, and tokens' last use
                continue
            rows = connection.execute(sa.select(table)).all()
            digest.update(table.name.encode() + repr(sorted(map(repr, rows))).encode())
    return digest.hexdigest()


def _routes(world: World) -> list[tuple[str, str, str]]:
    """(endpoint, method, rule) of every route that takes a personal API token."""
    out = []
    for rule in world.app.url_map.iter_rules():
        described = operation_of(world.app.view_functions[rule.endpoint])
        if described is None or not (described.bearer or rule.endpoint in TOKEN_OPTIONAL):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            out.append((rule.endpoint, method, rule.rule))
    return sorted(out)


# The booking each route names: one a move of the lifecycle can still apply to.
BOOKING_OF = {
    "api.cancel_booking_by_token": "acme_review_ana",
    "api.reschedule_by_token": "acme_consult",
}


def _url(world: World, rule: str, endpoint: str) -> str:
    session = world.app.extensions["bookwise"].database.sessions()
    try:
        booking = session.get(Booking, world.ids[BOOKING_OF.get(endpoint, "acme_review_ben")])
        assert booking is not None
        uid = booking.uid
    finally:
        session.close()
    values = {
        "calendar": "acme",
        "staff": "ben",
        "service": "review",
        "uid": uid,
        "slug": "review",  # a workflow of acme alone
        "name": "approve",
        "time_off_id": str(world.ids["time_off_ben"]),
    }
    path = rule
    for name, value in values.items():
        path = path.replace(f"<{name}>", value).replace(f"<int:{name}>", value)
    assert "<" not in path, f"give a value for {path} in tests/admin/test_api_scope.py"
    query = "calendar=acme" if "<calendar>" not in rule else ""
    if endpoint == "api.remove_staff_member":
        query = "bookings=cancel"
    return f"{path}?{query}" if query else path


def _send(world: World, method: str, url: str, endpoint: str, secret: str | None) -> Any:
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    body = BODIES.get(endpoint)
    if method != "GET" and endpoint not in BODIES:
        pytest.fail(f"give {endpoint} a body in BODIES (tests/admin/test_api_scope.py)")
    kwargs = {"json": body} if body is not None and method != "GET" else {}
    return world.app.test_client().open(url, method=method, headers=headers, **kwargs)


@pytest.fixture
def scoped(world: World) -> World:
    """The world, with a time off of Ben's for the routes that name one; without the rate limits
    (tests/test_rate_limits.py), which would refuse these many requests from one address."""
    world.app.extensions["bookwise_limiter"].enabled = False
    with unit_of_work(world.app.extensions["bookwise"].database.sessions, write=True) as session:
        from bookwise.calendars.models import TimeOff

        off = TimeOff(
            staff_id=world.ids["staff_ben"],
            start_at=NOW.replace(day=30),
            end_at=NOW.replace(day=30, hour=12),
            reason="Dentist",
            origin="admin",
        )
        session.add(off)
        session.flush()
        world.ids["time_off_ben"] = off.id
    return world


def test_no_token_that_should_not_pass_does(scoped: World) -> None:
    world = scoped
    routes = _routes(world)
    assert len(routes) >= 28, routes
    stranger = make_token(world, "other", "private", "write")
    reader = make_token(world, "admin", "acme", "read")
    revoked = make_token(world, "admin", "acme", "write")
    with unit_of_work(world.app.extensions["bookwise"].database.sessions, write=True) as session:
        last = session.scalars(sa.select(ApiToken).order_by(ApiToken.id.desc())).first()
        assert last is not None
        revoke_token(session, last.id, NOW)
    before = _fingerprint(world)
    for endpoint, method, rule in routes:
        url = _url(world, rule, endpoint)
        where = f"{method} {url} ({endpoint})"
        tokens: list[tuple[str | None, set[int]]] = [(stranger, {404})]
        if endpoint not in TOKEN_OPTIONAL:
            tokens += [(None, {401}), ("bw_" + "x" * 43, {401}), (revoked, {401})]
        if endpoint in ANY_CALENDAR:
            tokens = [(t, codes) for t, codes in tokens if t != stranger]
        if method != "GET" and endpoint not in ANY_CALENDAR:
            tokens.append((reader, {403}))
        for secret, expected in tokens:
            answer = _send(world, method, url, endpoint, secret)
            assert answer.status_code in expected, (where, answer.status_code, answer.get_json())
            code = {401: "unauthorized", 403: "forbidden", 404: "not_found"}[answer.status_code]
            assert answer.get_json()["error"]["code"] == code, where
        assert _fingerprint(world) == before, f"{where} changed something"


def test_the_bodies_go_through_with_the_right_token(scoped: World) -> None:
    """The same requests with a write token of acme's admin: each change is made (so that the
    refusals above are the tokens', not the bodies')."""
    world = scoped
    admin = make_token(world, "admin", "acme", "write")
    # The removals last (the other routes name what they remove), Ben himself at the very end.
    routes = sorted(
        _routes(world), key=lambda r: (r[1] == "DELETE", r[0] == "api.remove_staff_member", r)
    )
    for endpoint, method, rule in routes:
        url = _url(world, rule, endpoint)
        answer = _send(world, method, url, endpoint, admin)
        assert answer.status_code in (200, 201, 204), (method, url, answer.get_json())
