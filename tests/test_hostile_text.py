"""Characters that cannot be stored or that break what reads them back (issue 15, findings 2 and
10): a lone surrogate, control characters, text direction controls. Refused with a field error
where they are typed, with nothing written, on SQLite and PostgreSQL alike. The back office's
names: tests/admin/test_hostile_names.py."""

from __future__ import annotations

from typing import Any

import pytest

from bookwise.bookings.models import Booking
from bookwise.text import CONTROL, UNSTORABLE, unstorable_text
from tests.test_api import URL, consult, counts, tomorrow_at
from tests.test_public import ORIGIN, consult_answers, count, open_form

pytestmark = pytest.mark.clock

SURROGATE = "\udfff"


# --- the shared check ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        f"Zo{SURROGATE}",
        "Acme\r\nBcc: x",
        "Ana\x1b[31m",
        "Ben\x07",
        "Cléo\u202egnp.exe",
        "Dan\u2066x\u2069",
        "Eli\u2028Bcc: x",
        "tab\there",
    ],
)
def test_a_name_refuses_what_cannot_be_stored_or_shown(text: str) -> None:
    assert unstorable_text(text) is not None


@pytest.mark.parametrize("text", ["Zoé Martin", "محمد علي", "李小龙", "O'Brien-Smith"])
def test_ordinary_names_pass(text: str) -> None:
    assert unstorable_text(text) is None


def test_free_text_keeps_line_breaks_and_tabs_but_no_other_control() -> None:
    assert unstorable_text("line one\r\nline\ttwo \u202e", multiline=True) is None
    refused = unstorable_text("bell\x07", multiline=True)
    assert refused is not None and refused.text == CONTROL
    surrogate = unstorable_text(f"a\nb{SURROGATE}", multiline=True)
    assert surrogate is not None and surrogate.text == UNSTORABLE


# --- the API -------------------------------------------------------------------------------------


@pytest.fixture
def api(scenario_app: Any) -> Any:
    return scenario_app.test_client()


def test_the_api_refuses_a_lone_surrogate_in_an_answer(api: Any, scenario_app: Any) -> None:
    before = counts(scenario_app)
    response = api.post(
        f"{URL}/consult/bookings",
        json=consult(tomorrow_at(11), answers={"topic": f"Taxes {SURROGATE}"}),
    )
    assert response.status_code == 422, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == "invalid"
    assert "cannot be stored" in error["fields"]["topic"]
    assert counts(scenario_app) == before


@pytest.mark.parametrize("name", [f"Zoé{SURROGATE}", "Zoé\x1b", "Zoé\u202e", "Zoé\x85\x00\x07"])
def test_the_api_refuses_a_hostile_client_name(api: Any, scenario_app: Any, name: str) -> None:
    before = counts(scenario_app)
    body = consult(tomorrow_at(11))
    body["client"]["name"] = name
    response = api.post(f"{URL}/consult/bookings", json=body)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert set(response.get_json()["error"]["fields"]) == {"name"}
    assert counts(scenario_app) == before


def test_line_breaks_in_a_one_line_answer_become_spaces(api: Any, scenario_app: Any) -> None:
    # A one-line answer (the name among them) has every run of white space made one space
    # (bookwise.bookings.answers._text): a line break cannot reach an e-mail header.
    body = consult(tomorrow_at(11))
    body["client"]["name"] = "Zoé\r\nBcc: x@evil.example"
    response = api.post(f"{URL}/consult/bookings", json=body)
    assert response.status_code == 201
    assert response.get_json()["client"]["name"] == "Zoé Bcc: x@evil.example"


def test_the_api_error_is_translated(api: Any, scenario_app: Any) -> None:
    body = consult(tomorrow_at(11))
    body["client"]["name"] = f"Zoé{SURROGATE}"
    response = api.post(f"{URL}/consult/bookings", json=body, headers={"Accept-Language": "fr"})
    assert response.status_code == 422
    assert "ne peut pas être enregistré" in response.get_json()["error"]["fields"]["name"]


# --- the public form -----------------------------------------------------------------------------


@pytest.fixture
def web(scenario_app: Any) -> Any:
    return scenario_app.test_client()


@pytest.mark.parametrize(
    ("field", "value"),
    [("field_name", "Zoé\x1b[2J"), ("field_name", "Zoé\u202eexe"), ("field_topic", "Tax\x07")],
)
def test_the_form_refuses_control_characters(
    web: Any, scenario_app: Any, field: str, value: str
) -> None:
    url, page = open_form(web)
    response = web.post(url, data=consult_answers(page, **{field: value}), headers=ORIGIN)
    assert response.status_code == 422
    assert f'id="{field}-error">This text contains an invisible control character' in (
        response.get_data(as_text=True)
    )
    assert count(scenario_app, Booking) == 0


def test_the_form_never_fails_on_bytes_that_are_not_utf8(web: Any, scenario_app: Any) -> None:
    # The encoded surrogate a client may send: not UTF-8, read as a replacement character.
    url, page = open_form(web)
    answers = consult_answers(page)
    answers.pop("field_name")
    body = "&".join(f"{k}={v}" for k, v in answers.items() if "&" not in v and "=" not in v)
    response = web.post(
        url,
        data=f"field_name=Zo%ED%BF%BF&{body}",
        content_type="application/x-www-form-urlencoded",
        headers=ORIGIN,
    )
    assert response.status_code < 500
