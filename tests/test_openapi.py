"""The OpenAPI 3.1 description of /api/v1 (bookwise.api.spec), its browsable page, and
schemathesis run against the app from that document."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Blueprint, Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from bookwise.api.spec import Undescribed, document, openapi_path
from tests.conftest import TEST_NOW

PARIS = ZoneInfo("Europe/Paris")
URL = "/api/v1/calendars/acme/services"


@pytest.fixture
def api(scenario_app: Any) -> Any:
    return scenario_app.test_client()


def start_at(hour: int) -> str:
    day = TEST_NOW.astimezone(PARIS).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, tzinfo=PARIS).isoformat()


def test_the_document_describes_every_api_route(api: Any, scenario_app: Any) -> None:
    response = api.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"] == "3.1.0"
    base = scenario_app.extensions["bookwise"].settings.base_url.rstrip("/")
    assert spec["servers"] == [{"url": f"{base}/api/v1"}]
    for rule in scenario_app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            item = spec["paths"][openapi_path(rule.rule)]
            for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
                described = item[method.lower()]
                assert described["summary"] and described["responses"]
    booking = spec["paths"]["/calendars/{calendar}/services/{service}/bookings"]["post"]
    assert booking["requestBody"]["content"]["application/json"]["example"]["start"]
    assert "slot_taken" in booking["responses"]["409"]["description"]
    # Every schema of the document is a valid JSON Schema 2020-12.
    for schema in spec["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_a_route_without_a_description_is_refused() -> None:
    app = Flask(__name__)
    extra = Blueprint("extra", __name__, url_prefix="/api/v1")
    extra.add_url_rule("/hidden", "hidden", lambda: "x")
    app.register_blueprint(extra)
    with pytest.raises(Undescribed, match="/api/v1/hidden"):
        document(app, "https://example.org", "1")


def test_the_document_is_valid_openapi_for_schemathesis(scenario_app: Any) -> None:
    import schemathesis

    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", scenario_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14


@pytest.mark.parametrize(
    ("change", "code", "path"),
    [
        ({"skip_unavailable": "yes"}, "invalid_request", "/skip_unavailable"),
        ({"sms_opt_in": 1}, "invalid_request", "/sms_opt_in"),
        ({"staff": 7}, "invalid_request", "/staff"),
        (
            {"client": {"name": "Z", "email": "z@example.org", "locale": 3}},
            "invalid_request",
            "/client/locale",
        ),
        ({"recurrence": {"count": "six"}}, "invalid_recurrence", "/recurrence/count"),
        ({"recurrence": {"count": 3, "every": 2}}, "invalid_recurrence", "/recurrence/every"),
        ({"replacements": "none"}, "invalid_replacement", "/replacements"),
        ({"start": None}, "invalid_start", "/start"),
    ],
)
def test_the_body_is_validated_with_its_schema(
    api: Any, change: dict[str, Any], code: str, path: str
) -> None:
    body = {
        "start": start_at(10),
        "client": {"name": "Zoé Martin", "email": "zoe@example.org"},
        "answers": {"topic": "Taxes"},
        "consent": True,
    } | change
    response = api.post(f"{URL}/consult/bookings", json=body)
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["error"]
    assert (error["code"], error["path"]) == (code, path)
    assert error["message"]


def test_a_missing_start_names_it(api: Any) -> None:
    response = api.post(f"{URL}/consult/bookings", json={"client": {}})
    error = response.get_json()["error"]
    assert (response.status_code, error["code"], error["path"]) == (400, "invalid_start", "/start")
    assert error["message"] == "start is required"


def test_erase_without_confirm_keeps_its_code(api: Any) -> None:
    booked = api.post(
        f"{URL}/workshop/bookings",
        json={"start": start_at(9), "client": {"name": "P", "email": "p@example.org"}},
    )
    assert booked.status_code == 201, booked.get_json()
    token = booked.get_json()["manage_token"]
    for body in ({}, {"confirm": "yes"}, {"confirm": False}):
        response = api.post(f"/api/v1/manage/{token}/erase", json=body)
        assert (response.status_code, response.get_json()["error"]["code"]) == (
            400,
            "confirm_required",
        )


def test_the_browsable_page_runs_under_the_csp(api: Any) -> None:
    page = api.get("/api/v1/docs")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "<script>" not in html  # every script is a file: the CSP allows no inline one
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "http" not in html  # no CDN: every asset from the instance itself
    for asset in (
        "/api/v1/docs/swagger-ui-bundle.js",
        "/api/v1/docs/swagger-ui.css",
        "/api/v1/docs/LICENSE",
        "/static/api-docs.js",
    ):
        assert asset in html or asset.endswith("LICENSE")
        answer = api.get(asset)
        assert answer.status_code == 200, asset
        answer.close()
    missing = api.get("/api/v1/docs/swagger-editor.js")
    assert (missing.status_code, missing.get_json()["error"]["code"]) == (404, "not_found")


def test_schemathesis_finds_no_server_error_and_no_answer_outside_its_schema(
    scenario_app: Any,
) -> None:
    """Every operation, a bounded number of generated requests each (a fixed clock, the
    scenario's calendars): no 5xx, every status, content type and body as the document says."""
    import schemathesis
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", scenario_app)
    # The rate limits have their own tests (tests/test_rate_limits.py); here they would answer
    # most generated requests with 429 before the view judged them.
    scenario_app.extensions["bookwise_limiter"].enabled = False
    client = scenario_app.test_client()
    tokens = []
    for hour in (9, 10):
        booked = client.post(
            f"{URL}/workshop/bookings",
            json={"start": start_at(hour), "client": {"name": "P", "email": "p@example.org"}},
        )
        assert booked.status_code == 201, booked.get_json()
        tokens.append(booked.get_json()["manage_token"])
    # A write token of acme's admin, for the operations that need one (sometimes left out).
    from bookwise.accounts.services import create_user, grant_role
    from bookwise.accounts.tokens import create_token
    from bookwise.db import unit_of_work

    sessions = scenario_app.extensions["bookwise"].database.sessions
    with unit_of_work(sessions, write=True) as session:
        user = create_user(session, "api@example.org", "a long enough password 42")
        acme_id = session.scalar(sa.text("SELECT id FROM calendars WHERE slug = 'acme'"))
        grant_role(session, user, acme_id, "admin")
        _token, secret = create_token(session, "api@example.org", "acme", "write", "fuzz", TEST_NOW)
    uids = [client.get(f"/api/v1/manage/{t}").get_json()["id"] for t in tokens]
    known = {
        "calendar": st.sampled_from(["acme", "private", "nope"]),
        "service": st.sampled_from(["consult", "workshop", "review", "visit"]),
        "token": st.sampled_from([*tokens, "wl-nothing", "x"]),
        "name": st.sampled_from(["swagger-ui.css", "LICENSE", "nothing", "cancel", "approve"]),
        "uid": st.sampled_from([*uids, "nothing"]),
        "slug": st.sampled_from(["consult", "workshop", "private-only", "nope"]),
        "staff": st.sampled_from(["ana", "ben", "dan", "nobody"]),
    }
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]  # bodies that fit, and not
    # The changes that move or remove what the others name (a calendar's address, a staff
    # member) come last, so that every other operation meets the scenario as it is.
    operations = sorted(
        (r.ok() for r in schema.get_all_operations()),
        key=lambda o: o.method.upper() in ("PATCH", "DELETE"),
    )
    for described, mode in [(o, m) for o in operations for m in modes]:

        @settings(
            max_examples=int(os.environ.get("BOOKWISE_TEST_API_EXAMPLES", "25")),
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=described.as_strategy(mode), data=st.data())
        def run(case: Any, data: Any) -> None:
            # Mostly the scenario's own calendar, services and bookings (else all is 404), and
            # sometimes any text.
            for name in list(case.path_parameters or {}):
                if name in known and data.draw(st.integers(0, 4)):
                    case.path_parameters[name] = data.draw(known[name])
            if case.operation.definition.raw.get("security") and data.draw(st.integers(0, 4)):
                case.headers = {**(case.headers or {}), "Authorization": f"Bearer {secret}"}
            if case.query and "calendar" in case.query and data.draw(st.integers(0, 2)):
                case.query["calendar"] = "acme"
            case.call_and_validate(checks=checks)

        run()


def test_every_example_fits_its_schema(api: Any) -> None:
    """The examples of the document (bodies and answers) are checked against their own schemas:
    they cannot drift from what the API takes and gives."""
    spec = api.get("/api/v1/openapi.json").get_json()
    found = 0
    for path, item in spec["paths"].items():
        for method, described in item.items():
            medias = [
                (f"{method} {path} body", m)
                for m in described.get("requestBody", {}).get("content", {}).values()
            ] + [
                (f"{method} {path} {status}", m)
                for status, answer in described["responses"].items()
                for m in answer.get("content", {}).values()
            ]
            for where, media in medias:
                if "example" in media:
                    found += 1
                    # The references (#/components/schemas/...) resolve in the schema's root.
                    schema = media["schema"] | {"components": spec["components"]}
                    errors = list(Draft202012Validator(schema).iter_errors(media["example"]))
                    assert not errors, (where, errors[0].message)
    assert found >= 7


def test_a_single_bookings_cancel_refuses_series_keys_of_the_wrong_type(api: Any) -> None:
    """A deliberate change: the series' keys of a cancel body were ignored for a single booking
    whatever their type; the body's schema now refuses a wrong one (nothing is cancelled)."""
    booked = api.post(
        f"{URL}/workshop/bookings",
        json={"start": start_at(9), "client": {"name": "P", "email": "p@example.org"}},
    )
    token = booked.get_json()["manage_token"]
    for body, path in (({"rest": "yes"}, "/rest"), ({"reason": 3}, "/reason")):
        response = api.post(f"/api/v1/manage/{token}/cancel", json=body)
        error = response.get_json()["error"]
        assert (response.status_code, error["code"], error["path"]) == (
            400,
            "invalid_request",
            path,
        )
    assert api.get(f"/api/v1/manage/{token}").get_json()["status"] == "confirmed"
    assert api.post(f"/api/v1/manage/{token}/cancel", json={"reason": "ill"}).status_code == 200


def test_a_clients_data_and_its_erasure_fit_their_closed_schemas(api: Any) -> None:
    """The privacy answers are described key by key (additionalProperties: false): a key added
    to the export or the erasure report without its description fails here."""
    spec = api.get("/api/v1/openapi.json").get_json()

    def schema_of(path: str, method: str) -> dict[str, Any]:
        answer = spec["paths"][path][method]["responses"]["200"]["content"]["application/json"]
        return answer["schema"] | {"components": spec["components"]}

    booked = api.post(
        f"{URL}/workshop/bookings",
        json={"start": start_at(9), "client": {"name": "P", "email": "p@example.org"}},
    )
    token = booked.get_json()["manage_token"]
    data = api.get(f"/api/v1/manage/{token}/data").get_json()
    assert data["bookings"] and data["bookings"][0]["history"]
    errors = list(Draft202012Validator(schema_of("/manage/{token}/data", "get")).iter_errors(data))
    assert not errors, errors[0]
    erased = api.post(f"/api/v1/manage/{token}/erase", json={"confirm": True}).get_json()
    schema = schema_of("/manage/{token}/erase", "post")
    assert not list(Draft202012Validator(schema).iter_errors(erased))
    assert not Draft202012Validator(schema).is_valid({"erased": {**erased["erased"], "new": 1}})
