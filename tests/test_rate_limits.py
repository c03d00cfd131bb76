"""Rate limits (issue 15, finding 8): one client address, account or e-mail address cannot sign
in, book or change bookings without end. Beyond a limit: 429 with Retry-After, nothing written.

The limits here are counted per day, so that no test depends on how fast this machine runs it;
the counts live in memory or, to be shared by several processes, in the Redis server on loopback.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bookwise.bookings.models import Booking
from bookwise.clock import Clock
from bookwise.config import load_settings
from bookwise.errors import ConfigError
from tests.admin.conftest import PASSWORD, token, world  # noqa: F401 (a fixture)
from tests.conftest import Loaded, _scenario_config, write_config
from tests.test_api import URL, consult, tomorrow_at

pytestmark = pytest.mark.clock

REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture
def make_app(scenario: Loaded, tmp_path: Path, database_url: str, clock: Clock) -> Iterator[Any]:
    """Apps of the scenario's instance with the given ``security`` settings."""
    from bookwise.app import create_app

    apps: list[Any] = []

    def make(**security: Any) -> Any:
        values = _scenario_config(tmp_path, database_url) | {"security": security}
        name = f"limits-{uuid.uuid4().hex[:8]}.yaml"
        settings = load_settings(write_config(tmp_path / name, values), environ={})
        app = create_app(settings, clock=clock)
        app.config.update(TESTING=True)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["bookwise"].database.engine.dispose()


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def _bookings(scenario: Loaded) -> int:
    with scenario.database.sessions() as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(Booking)) or 0)


def _book(client: Any, hour: int, minute: int = 0, **headers: str) -> Any:
    body = consult(tomorrow_at(hour, minute))
    body["client"]["email"] = f"c{hour}{minute}@example.org"
    return client.post(f"{URL}/consult/bookings", json=body, headers=headers)


def test_bookings_from_one_address_are_limited(make_app: Any, scenario: Loaded) -> None:
    app = make_app(behind_proxies=1, rate_limits={"booking_per_address": "3 per day"})
    client = app.test_client()
    before = _bookings(scenario)
    for minute in (0, 30):
        made = _book(client, 10, minute, **_from("203.0.113.7"))
        assert made.status_code == 201
        # Only a refusal says when to come back (a 503's own Retry-After stays its own).
        assert "Retry-After" not in made.headers
    assert _book(client, 11, **_from("203.0.113.7")).status_code == 201
    refused = _book(client, 11, 30, **_from("203.0.113.7"))
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert 0 < int(refused.headers["Retry-After"]) <= 86400
    assert _bookings(scenario) == before + 3  # the refused one wrote nothing
    # Another address is not held back by the first one's count.
    assert _book(client, 12, **_from("198.51.100.9")).status_code == 201


def test_the_public_form_and_the_api_share_the_count(make_app: Any) -> None:
    app = make_app(rate_limits={"booking_per_address": "1 per day"})
    client = app.test_client()
    assert _book(client, 10).status_code == 201
    start = tomorrow_at(14).isoformat()
    page = client.post(f"/acme/consult/book?start={start}", data={"start": start})
    assert page.status_code == 429
    assert "Too many attempts" in page.get_data(as_text=True)
    assert page.headers["Retry-After"]


def test_only_bookings_made_count_against_an_email_address(make_app: Any) -> None:
    """A stranger's refused attempts must not use up the real client's allowance."""
    app = make_app(rate_limits={"booking_per_email": "2 per day"})
    client = app.test_client()
    body = consult(tomorrow_at(10))
    assert client.post(f"{URL}/consult/bookings", json=body).status_code == 201
    for _ in range(3):  # a time that is not offered: refused, not counted
        refused = client.post(f"{URL}/consult/bookings", json=consult(tomorrow_at(3)))
        assert refused.status_code in (409, 422), refused.get_json()
    assert client.post(f"{URL}/consult/bookings", json=consult(tomorrow_at(11))).status_code == 201
    third = client.post(f"{URL}/consult/bookings", json=consult(tomorrow_at(12)))
    assert third.status_code == 429
    # The address is compared as people write it: capitals do not make it another one.
    shouted = consult(tomorrow_at(13))
    shouted["client"]["email"] = shouted["client"]["email"].upper()
    assert client.post(f"{URL}/consult/bookings", json=shouted).status_code == 429


def test_changes_to_bookings_are_limited(make_app: Any) -> None:
    app = make_app(
        rate_limits={"manage_per_address": "2 per day", "booking_per_address": "9 per day"}
    )
    client = app.test_client()
    tokens = [_book(client, hour).get_json()["manage_token"] for hour in (10, 11, 12)]
    assert client.post(f"/api/v1/manage/{tokens[0]}/cancel").status_code == 200
    assert client.post(f"/api/v1/manage/{tokens[1]}/cancel").status_code == 200
    refused = client.post(f"/api/v1/manage/{tokens[2]}/cancel")
    assert refused.status_code == 429
    assert client.get(f"/api/v1/manage/{tokens[2]}").get_json()["status"] == "confirmed"
    # Reading one's booking is not limited; the public manage page's form is, with the API.
    assert client.get(f"/manage/{tokens[2]}").status_code == 200
    assert client.post(f"/manage/{tokens[2]}/cancel", data={}).status_code == 429


def _sign_in(client: Any, email: str, password: str, address: str) -> Any:
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": token(client, "/login")},
        headers=_from(address),
    )


def test_sign_in_attempts_per_address(make_app: Any, world: Any) -> None:  # noqa: F811
    app = make_app(behind_proxies=1, rate_limits={"sign_in_per_address": "3 per day"})
    client = app.test_client()
    for _ in range(3):
        assert _sign_in(client, "nobody@bw.example", "guess", "203.0.113.7").status_code == 401
    refused = _sign_in(client, "admin@bw.example", PASSWORD, "203.0.113.7")
    assert refused.status_code == 429  # even the right password waits
    assert refused.headers["Retry-After"]
    assert _sign_in(client, "admin@bw.example", PASSWORD, "198.51.100.9").status_code == 302


@pytest.mark.parametrize("email", ["admin@bw.example", "nobody@bw.example"])
def test_sign_in_attempts_per_account_say_nothing_of_who_exists(
    make_app: Any,
    world: Any,  # noqa: F811
    email: str,
) -> None:
    """Spread over many addresses, attempts on one account are still counted; an address with
    an account and one without are answered alike."""
    app = make_app(behind_proxies=1, rate_limits={"sign_in_per_account": "2 per day"})
    client = app.test_client()
    answers = [_sign_in(client, email, "guess", f"203.0.113.{n}").status_code for n in range(4)]
    assert answers == [401, 401, 429, 429]
    other = "viewer@bw.example"
    assert _sign_in(client, other, PASSWORD, "203.0.113.99").status_code == 302


def test_counts_are_shared_by_processes_through_redis(make_app: Any) -> None:
    """Two web processes of one instance (two apps here) share one count in Redis."""
    limits = {"storage": REDIS, "booking_per_address": "2 per day"}
    first, second = make_app(rate_limits=limits), make_app(rate_limits=limits)
    assert _book(first.test_client(), 10).status_code == 201
    assert _book(second.test_client(), 11).status_code == 201
    assert _book(first.test_client(), 12).status_code == 429
    assert _book(second.test_client(), 13).status_code == 429


def test_a_redis_that_does_not_answer_does_not_stop_bookings(make_app: Any) -> None:
    app = make_app(
        rate_limits={"storage": "redis://127.0.0.1:9/0", "booking_per_address": "1 per day"}
    )
    client = app.test_client()
    assert _book(client, 10).status_code == 201  # counted in memory meanwhile
    assert _book(client, 11).status_code == 429


@pytest.mark.parametrize(
    ("limits", "words"),
    [
        ({"booking_per_address": "lots"}, "security.rate_limits.booking_per_address: 'lots'"),
        ({"storage": "mongodb://x"}, "security.rate_limits.storage"),
    ],
)
def test_a_limit_that_cannot_be_read_stops_the_start(
    tmp_path: Path, limits: dict[str, str], words: str
) -> None:
    values = _scenario_config(tmp_path, "sqlite://") | {"security": {"rate_limits": limits}}
    with pytest.raises(ConfigError, match=words.replace(".", r"\.")):
        load_settings(write_config(tmp_path / "bad.yaml", values), environ={})


def test_reads_of_the_api_are_limited_apart_from_bookings(make_app: Any) -> None:
    app = make_app(rate_limits={"api_read_per_address": "3 per day"})
    client = app.test_client()
    for _ in range(3):
        assert client.get(f"{URL}").status_code == 200
    refused = client.get(f"{URL}/consult/slots")
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) > 0
    # Booking is counted apart: reading did not use it up.
    assert _book(client, 10).status_code == 201


def test_changes_with_api_tokens_are_limited(make_app: Any) -> None:
    app = make_app(rate_limits={"api_write_per_address": "2 per day"})
    client = app.test_client()
    for _ in range(2):  # refused for want of a token, but counted: a guesser is slowed too
        assert client.post("/api/v1/workflows/validate", json={"source": "x"}).status_code == 401
    refused = client.post("/api/v1/workflows/validate", json={"source": "x"})
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert client.get(f"{URL}").status_code == 200  # reads are counted apart
