"""Back-office sessions end on the server (issue 15, finding 7): a copied session cookie stops
working after sign-out, a new password or deactivation, and sessions end when idle or old, by the
application's clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bookwise.accounts.models import User
from bookwise.accounts.services import set_user_active
from bookwise.audit.services import Actor
from tests.admin.conftest import NOW, PASSWORD, World, db, post, token, world  # noqa: F401

pytestmark = pytest.mark.clock


def _copy(of: World, client: Any) -> Any:
    """A second browser holding a copy of ``client``'s session cookie (a stolen cookie)."""
    cookie = client.get_cookie("session")
    assert cookie is not None
    thief = of.app.test_client()
    thief.set_cookie("session", cookie.value)
    return thief


def _signed_in(client: Any) -> bool:
    answer = client.get("/admin/")
    return answer.status_code == 200


def _at(of: World, moment: Any) -> None:
    of.app.extensions["bookwise"].clock = lambda: moment


def test_a_copied_cookie_stops_working_after_sign_out(world: World) -> None:  # noqa: F811
    client = world.login("admin")
    thief = _copy(world, client)
    assert _signed_in(thief)  # the copy works while the session lives...
    out = client.post("/logout", data={"csrf_token": token(client)})
    assert out.status_code == 302
    assert not _signed_in(client)
    assert not _signed_in(thief)  # ...and not a moment after
    assert thief.get("/admin/").status_code == 302
    assert _signed_in(world.login("admin"))  # signing in again works


def test_sign_out_ends_the_users_other_sessions(world: World) -> None:  # noqa: F811
    desk, phone = world.login("admin"), world.login("admin")
    desk.post("/logout", data={"csrf_token": token(desk)})
    assert not _signed_in(phone)
    other_user = world.login("viewer")
    assert _signed_in(other_user)  # only that user's sessions end


def test_a_new_password_ends_every_other_copy(world: World) -> None:  # noqa: F811
    client = world.login("admin")
    thief = _copy(world, client)
    new = "a brand new passphrase for ada"
    changed = post(client, "/account/password", {"current": PASSWORD, "new": new, "repeat": new})
    assert changed.status_code == 302
    assert _signed_in(client)  # the browser that changed it goes on
    assert not _signed_in(thief)


def test_deactivating_a_user_ends_their_sessions(world: World) -> None:  # noqa: F811
    client = world.login("viewer")
    with db(world) as session:
        user = session.get(User, world.ids["viewer"])
        set_user_active(session, user, False, Actor("super@bw.example", world.ids["super"]))
        session.commit()
    assert not _signed_in(client)


def test_an_idle_session_ends(world: World) -> None:  # noqa: F811
    idle = timedelta(
        minutes=world.app.extensions["bookwise"].settings.security.session_idle_minutes
    )
    client = world.login("admin")
    _at(world, NOW + idle - timedelta(minutes=1))
    assert _signed_in(client)  # used just in time: the idle time starts again from here
    _at(world, NOW + 2 * idle - timedelta(minutes=2))
    assert _signed_in(client)
    _at(world, NOW + 3 * idle)
    assert not _signed_in(client)


def test_a_session_ends_after_its_longest_life_however_busy(world: World) -> None:  # noqa: F811
    security = world.app.extensions["bookwise"].settings.security
    step = timedelta(minutes=security.session_idle_minutes - 1)
    client = world.login("admin")
    moment = NOW
    while moment + step < NOW + timedelta(hours=security.session_max_hours):
        moment += step
        _at(world, moment)
        assert _signed_in(client), moment
    _at(world, NOW + timedelta(hours=security.session_max_hours, minutes=1))
    assert not _signed_in(client)


def test_signing_in_starts_a_new_session(world: World) -> None:  # noqa: F811
    """No session fixation: what a visitor held before signing in is not their session after."""
    client = world.app.test_client()
    client.get("/login")
    client.set_cookie("session", client.get_cookie("session").value)
    before = client.get_cookie("session").value
    response = client.post(
        "/login",
        data={
            "email": "admin@bw.example",
            "password": PASSWORD,
            "csrf_token": token(client, "/login"),
        },
    )
    assert response.status_code == 302
    after = client.get_cookie("session")
    assert after is not None and after.value != before
    assert after.expires is not None  # a lasting cookie, ended on the server all the same
