"""Cross-origin calls to the public API (bookwise.api.cors): a calendar's own websites (its
``embed_origins``) may call it from the browser, on the calendar's URLs and on its clients'
manage links; any other origin gets no CORS header, and nothing is ever allowed with ``*``."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from bookwise.calendars.models import Calendar
from tests.test_api import URL, consult, tomorrow_at

pytestmark = pytest.mark.clock
SITE = "https://www.acme.example"


@pytest.fixture
def api(scenario_app: Any) -> Any:
    engine = scenario_app.extensions["bookwise"].database.engine
    with engine.begin() as connection:
        connection.execute(
            sa.update(Calendar).where(Calendar.slug == "acme").values(embed_origins=[SITE])
        )
    return scenario_app.test_client()


def test_a_listed_site_reads_the_answers_and_books(api: Any) -> None:
    listed = api.get(f"{URL}", headers={"Origin": SITE})
    assert listed.headers["Access-Control-Allow-Origin"] == SITE
    assert "Origin" in listed.headers["Vary"]
    booked = api.post(
        f"{URL}/consult/bookings", json=consult(tomorrow_at(10)), headers={"Origin": SITE}
    )
    assert booked.status_code == 201
    assert booked.headers["Access-Control-Allow-Origin"] == SITE
    assert "Location" in booked.headers["Access-Control-Expose-Headers"]
    # The client's manage link: the calendar of the booking it opens.
    token = booked.get_json()["manage_token"]
    shown = api.get(f"/api/v1/manage/{token}", headers={"Origin": SITE})
    assert shown.headers["Access-Control-Allow-Origin"] == SITE
    # A refusal is readable too (the script must be able to say why).
    wrong = api.post(
        f"{URL}/consult/bookings",
        json=consult(tomorrow_at(11), answers={}),
        headers={"Origin": SITE},
    )
    assert wrong.status_code == 422
    assert wrong.headers["Access-Control-Allow-Origin"] == SITE


def test_a_preflight_names_what_the_api_takes(api: Any) -> None:
    answer = api.options(
        f"{URL}/consult/bookings",
        headers={
            "Origin": SITE,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Content-Type, Idempotency-Key",
        },
    )
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == SITE
    assert "POST" in answer.headers["Access-Control-Allow-Methods"]
    assert "Idempotency-Key" in answer.headers["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in answer.headers


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "https://www.acme.example.evil.example",
        "http://www.acme.example",  # not the scheme listed
        "null",
        "*",
    ],
)
def test_any_other_origin_gets_no_cors_header(api: Any, origin: str) -> None:
    answer = api.get(f"{URL}", headers={"Origin": origin})
    assert answer.status_code == 200
    assert "Access-Control-Allow-Origin" not in answer.headers
    preflight = api.options(
        f"{URL}/consult/bookings",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
    )
    assert "Access-Control-Allow-Origin" not in preflight.headers


def test_unknown_calendars_and_tokens_allow_nothing(api: Any) -> None:
    for path in ("/api/v1/calendars/nowhere/services", "/api/v1/manage/" + "a" * 32 + "-x"):
        answer = api.get(path, headers={"Origin": SITE})
        assert answer.status_code == 404
        assert "Access-Control-Allow-Origin" not in answer.headers
