"""HTTP hardening (issue 15): deeply nested JSON, JSON-only API bodies, caching and HSTS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bookwise.accounts.services import WeakPassword, check_password_strength, create_user
from bookwise.clock import Clock
from bookwise.config import load_settings
from tests.admin.conftest import PASSWORD, World, post, world  # noqa: F401 (a fixture)
from tests.conftest import Loaded, _scenario_config, write_config
from tests.test_api import URL, consult, tomorrow_at

pytestmark = pytest.mark.clock

DEEP = b"[" * 30000  # under 64 KiB, far deeper than the JSON parser's recursion allows


@pytest.fixture
def api(scenario_app: Any) -> Any:
    return scenario_app.test_client()


def _book(api: Any) -> str:
    created = api.post(f"{URL}/consult/bookings", json=consult(tomorrow_at(10)))
    assert created.status_code == 201, created.get_json()
    token: str = created.get_json()["manage_token"]
    return token


def test_deeply_nested_json_is_refused_not_a_crash(api: Any) -> None:
    token = _book(api)
    for path in (f"{URL}/consult/bookings", f"/api/v1/manage/{token}/cancel"):
        response = api.post(path, data=DEEP, content_type="application/json")
        assert response.status_code == 400, (path, response.data[:200])
        assert response.get_json()["error"]["code"] == "malformed_json"
    assert api.get(f"/api/v1/manage/{token}").get_json()["status"] == "confirmed"


def test_a_form_body_is_refused_on_every_api_post(api: Any) -> None:
    token = _book(api)
    for path in (
        f"/api/v1/manage/{token}/cancel",
        f"/api/v1/manage/{token}/reschedule",
        f"{URL}/consult/bookings",
    ):
        response = api.post(path, data={"reason": "no longer needed"})
        assert response.status_code == 415, (path, response.data[:200])
        assert response.get_json()["error"]["code"] == "unsupported_media_type"
    # The cancel's body may be left out, but not sent as a form: empty, or with no length given.
    cancel = f"/api/v1/manage/{token}/cancel"
    form = "application/x-www-form-urlencoded"
    for response in (
        api.post(cancel, content_type=form),
        api.post(cancel, data=b"", content_type=form, headers={"Transfer-Encoding": "chunked"}),
        api.post(cancel, content_type="text/plain"),
    ):
        assert response.status_code == 415, response.data[:200]
        assert response.get_json()["error"]["code"] == "unsupported_media_type"
    assert api.get(f"/api/v1/manage/{token}").get_json()["status"] == "confirmed"
    assert api.post(cancel).get_json()["status"] == "cancelled"  # no body at all is fine


def test_a_clients_booking_is_never_cached(api: Any) -> None:
    token = _book(api)
    assert api.get(f"/api/v1/manage/{token}").headers["Cache-Control"] == "no-store"
    assert api.get(f"/manage/{token}").headers["Cache-Control"] == "no-store"
    assert "no-store" not in api.get(f"{URL}").headers.get("Cache-Control", "")


def test_the_back_office_is_never_cached(world: World) -> None:  # noqa: F811
    assert world.app.test_client().get("/admin/").headers["Cache-Control"] == "no-store"
    page = world.login("super").get("/admin/")
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("base_url", "hsts"),
    [("https://book.example.org", "max-age=31536000"), ("http://localhost:5000", None)],
)
def test_hsts_only_behind_https(
    scenario: Loaded,
    tmp_path: Path,
    database_url: str,
    clock: Clock,
    base_url: str,
    hsts: str | None,
) -> None:
    from bookwise.app import create_app

    values = _scenario_config(tmp_path, database_url) | {"base_url": base_url}
    settings = load_settings(write_config(tmp_path / "hsts.yaml", values), environ={})
    app = create_app(settings, clock=clock)
    try:
        client = app.test_client()
        for path in ("/", URL, "/admin/", "/api/v1/manage/unknown"):
            assert client.get(path).headers.get("Strict-Transport-Security") == hsts, path
    finally:
        app.extensions["bookwise"].database.engine.dispose()


@pytest.mark.parametrize("password", ["password12", "qwertyuiop", "1234567890", "ana@bw.example"])
def test_common_passwords_are_refused_whatever_their_length(password: str) -> None:
    with pytest.raises(WeakPassword, match="too easy to guess") as refused:
        check_password_strength(password, ["ana@bw.example"])
    assert refused.value.feedback and not refused.value.too_short
    check_password_strength("a long enough password")


def test_no_user_gets_a_common_password(scenario: Loaded) -> None:
    with scenario.database.sessions() as session, pytest.raises(WeakPassword):
        create_user(session, "zoe@bw.example", "password12")


def test_the_password_page_says_why_in_the_users_language(world: World) -> None:  # noqa: F811
    client = world.login("admin")
    weak = {"current": PASSWORD, "new": "password12", "repeat": "password12"}
    refused = post(client, "/account/password?lang=fr", weak)
    assert refused.status_code == 422
    assert "trop facile à deviner" in refused.get_data(as_text=True)


def test_a_doubled_slash_in_the_api_is_a_json_404(api: Any) -> None:
    """Found by tests/test_fuzz.py: the router used to merge "//" with an HTML redirect."""
    response = api.get("/api/v1/calendars/acme/services/consult//slots")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
