"""Hostile input, generated (Hypothesis), at the public booking form and the JSON API.

Arbitrary unicode (lone surrogates and control characters included), huge strings, wrong JSON
types, deep nesting, odd dates, offsets and time zones, numbers out of range, invalid UTF-8, bodies
of the wrong type. The property, for every request: never a 5xx; a well-formed answer (the API
answers JSON, and an error carries ``{"error": {"code": ...}}``; the pages answer HTML or a
redirect); and nothing half-written: a refused request changes no row, and every booking in the
database is whole (its client, its history).

The budget is bounded and the examples fixed (``derandomize``), so the suite stays
deterministic: ``BOOKWISE_FUZZ_EXAMPLES`` (default 60) examples per target and backend. For a
longer hunt: ``BOOKWISE_FUZZ_EXAMPLES=2000 .venv/bin/pytest tests/test_fuzz.py`` (with
``BOOKWISE_FUZZ_SEED=<n>`` for other examples than the fixed ones).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, seed, settings
from hypothesis import strategies as st

from bookwise.clock import clock_from
from bookwise.config import load_settings
from bookwise.database import open_database
from tests.conftest import (
    _SESSION_SCHEMAS,
    BACKENDS,
    POSTGRES_URL,
    TEST_NOW,
    Seeds,
    _postgres_schema,
    _scenario_config,
    _seed_scenario,
    _with_search_path,
    write_config,
)
from tests.test_public import form_values

EXAMPLES = int(os.environ.get("BOOKWISE_FUZZ_EXAMPLES", "60"))
SEED = os.environ.get("BOOKWISE_FUZZ_SEED")
BUDGET = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=SEED is None,
    database=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PARIS = ZoneInfo("Europe/Paris")
ORIGIN = {"Origin": "http://localhost"}  # the public form takes posts from its own pages only
API = "/api/v1/calendars/acme/services"
WRITTEN = ("bookings", "clients", "consents", "booking_history", "outbox")

pytestmark = [pytest.mark.timeout(300)]


def _seeded(test: Any) -> Any:
    return seed(int(SEED))(test) if SEED is not None else test


# --- the instance -------------------------------------------------------------------------------


@dataclass
class Target:
    app: Any
    client: Any
    token: str  # the manage token of a booking made through the API
    slots: list[str]  # free start times of the consult service
    form_token: str  # the public booking form's token

    def counts(self) -> dict[str, int]:
        engine = self.app.extensions["bookwise"].database.engine
        with engine.connect() as connection:
            return {
                table: connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
                for table in WRITTEN
            }

    def broken_bookings(self) -> int:
        """Bookings without their client or without any history (half-written)."""
        engine = self.app.extensions["bookwise"].database.engine
        with engine.connect() as connection:
            return connection.execute(
                sa.text(
                    "SELECT count(*) FROM bookings b WHERE NOT EXISTS "
                    "(SELECT 1 FROM booking_history h WHERE h.booking_id = b.id) "
                    "OR NOT EXISTS (SELECT 1 FROM clients c WHERE c.id = b.client_id)"
                )
            ).scalar_one()


def _fuzz_config(folder: Any, url: str) -> dict[str, Any]:
    # No rate limits: Hypothesis asks far more often than a person may.
    return _scenario_config(folder, url) | {"security": {"rate_limits": {"enabled": False}}}


@pytest.fixture(scope="module", params=BACKENDS)
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, seeds: Seeds
) -> Iterator[Target]:
    from bookwise.app import create_app

    folder = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    if request.param == "sqlite":
        shutil.copyfile(request.getfixturevalue("sqlite_template"), folder / "bookwise.db")
        url = f"sqlite:///{folder / 'bookwise.db'}"
    else:
        schema = _postgres_schema(request.getfixturevalue("postgres_admin"))
        _SESSION_SCHEMAS.append(schema)
        url = _with_search_path(POSTGRES_URL, schema)
    settings_ = load_settings(
        write_config(folder / "config.yaml", _fuzz_config(folder, url)), environ={}
    )
    database = open_database(settings_)
    seeds.restore("scenario", database, _scenario_config, _seed_scenario)
    database.engine.dispose()
    made = seeds.folder / f"scenario-{request.param}" / "instance"
    if made.is_dir():  # the seed's key (answers are encrypted with it)
        shutil.copytree(made, folder / "instance", dirs_exist_ok=True)
    app = create_app(settings_, clock=clock_from(TEST_NOW))
    app.config.update(TESTING=True)
    client = app.test_client()
    yield _prepare(app, client)
    app.extensions["bookwise"].database.engine.dispose()


def _prepare(app: Any, client: Any) -> Target:
    first = TEST_NOW.astimezone(PARIS).date() + timedelta(days=3)
    last = first + timedelta(days=14)
    found = client.get(f"{API}/consult/slots?from={first}&to={last}&tz=Europe/Paris")
    assert found.status_code == 200, found.get_data(as_text=True)
    slots = [s["start"] for s in found.get_json()["slots"]]
    assert len(slots) > 3
    booked = client.post(
        f"{API}/consult/bookings",
        json={
            "start": slots[0],
            "client": {"name": "Fuzz Target", "email": "fuzz@client.example"},
            "answers": {"topic": "Taxes"},
            "consent": True,
        },
    )
    assert booked.status_code == 201, booked.get_data(as_text=True)
    page = client.get(f"/acme/consult/book?start={quote(slots[1])}&tz=Europe/Paris")
    assert page.status_code == 200, page.get_data(as_text=True)[:300]
    form_token = form_values(page.get_data(as_text=True))["form_token"]
    return Target(app, client, booked.get_json()["manage_token"], slots[1:], form_token)


# --- strategies ---------------------------------------------------------------------------------

# Any code point, lone surrogates and control characters among them.
characters = st.one_of(
    st.characters(),
    st.characters(categories=["Cs"]),
    st.characters(categories=["Cc", "Cf", "Zl", "Zp"]),
)
text = st.one_of(
    st.text(characters, max_size=40),
    st.sampled_from(["", " ", "\x00", "null", "true", "0", "-1", "../../etc/passwd", "%00"]),
    st.text(characters, max_size=40),
    st.builds(
        lambda c, n: c * n,
        st.sampled_from(["x", "é", "\u202e", "😀"]),
        st.sampled_from([300, 3000, 5000, 12000, 70000]),  # the last beyond the 64 KiB bound
    ),
)
numbers = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, text)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(characters, max_size=8), inner, max_size=4),
    ),
    max_leaves=10,
)
zones = st.one_of(
    st.sampled_from(
        [
            "Europe/Paris",
            "UTC",
            "Z",
            "Etc/GMT+12",
            "Etc/GMT-14",
            "Pacific/Kiritimati",
            "Asia/Kathmandu",
            "America/St_Johns",
            "Europe/../../etc/passwd",
            "/etc/localtime",
            "Mars/Olympus_Mons",
            "posixrules",
            "+01:00",
        ]
    ),
    st.timezone_keys(),
    text,
)
odd_moments = st.sampled_from(
    [
        "9999-12-31T23:59:59+14:00",
        "0001-01-01T00:00:00-23:59",
        "2026-02-30T10:00:00+01:00",
        "2026-12-10T10:00:00+25:00",
        "2026-12-10T10:00:00",
        "2026-12-10T25:61:00Z",
        "2026-12-10T10:00:00.123456789+01:00",
        "+002026-12-10T10:00:00Z",
        "2026-W50-4T10:00Z",
        "2026-12-10 10:00+01:00",
        "1e309",
        "NaN",
        "",
    ]
)
moments = st.one_of(
    odd_moments,
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.dates().map(lambda d: d.isoformat()),
    text,
)

# Days near the suite's instant, so that the slot search itself runs now and then.
near_days = st.integers(min_value=-3, max_value=120).map(
    lambda n: (TEST_NOW.date() + timedelta(days=n)).isoformat()
)


def raw_bodies() -> st.SearchStrategy[tuple[bytes, str]]:
    """Bodies that are no JSON object: invalid UTF-8, deep nesting, other types."""
    deep = st.integers(min_value=100, max_value=200_000).map(lambda n: ("[" * n + "]" * n).encode())
    bodies = st.one_of(
        st.binary(max_size=200),
        deep,
        st.just(b'{"start": "\xed\xa0\x80"}'),
        st.just(b'{"a":' * 5000 + b"1" + b"}" * 5000),
        st.just(b"x" * 70_000),
    )
    types = st.sampled_from(
        [
            "application/json",
            "text/plain",
            "application/x-www-form-urlencoded",
            "",
            "application/json; charset=latin-1",
        ]
    )
    return st.tuples(bodies, types)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(strategy, json_values)


booking_bodies = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "start": maybe(moments),
            "client": maybe(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "name": maybe(text),
                        "email": maybe(st.one_of(text, st.emails())),
                        "phone": maybe(text),
                        "timezone": maybe(zones),
                        "locale": maybe(st.one_of(st.sampled_from(["fr", "en", "xx"]), text)),
                    },
                )
            ),
            "answers": maybe(st.fixed_dictionaries({}, optional={"topic": maybe(text)})),
            "consent": json_values,
            "sms_opt_in": json_values,
            "staff": maybe(st.sampled_from(["ana", "ben", "dan", "nobody"])),
        },
    ),
    json_values,
)


def _quoted(value: str) -> str:
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


def _form(values: dict[str, str]) -> bytes:
    """A form body as a browser would send it, lone surrogates as their (invalid) UTF-8 bytes."""
    return "&".join(f"{_quoted(k)}={_quoted(v)}" for k, v in values.items()).encode("ascii")


# --- the properties ---------------------------------------------------------------------------


def check_api(response: Any, what: str) -> None:
    body = response.get_data(as_text=True)
    # --hypothesis-show-statistics tells how the answers spread (how deep the examples went).
    answer = response.get_json(silent=True)
    error = answer.get("error") if isinstance(answer, dict) else None
    event(f"{response.status_code} {error.get('code') if isinstance(error, dict) else ''}")
    assert response.status_code < 500, f"{what}: {response.status_code}\n{body[:800]}"
    assert response.mimetype == "application/json", f"{what}: {response.mimetype}\n{body[:300]}"
    data = json.loads(body)
    if response.status_code >= 400:
        error = data.get("error") if isinstance(data, dict) else None
        assert isinstance(error, dict) and isinstance(error.get("code"), str), f"{what}: {body}"
        assert isinstance(error.get("message"), str), f"{what}: {body}"


def check_page(response: Any, what: str) -> None:
    body = response.get_data(as_text=True)
    event(str(response.status_code))
    assert response.status_code < 500, f"{what}: {response.status_code}\n{body[:800]}"
    if 300 <= response.status_code < 400:
        assert response.headers.get("Location"), what
    else:
        assert response.mimetype == "text/html", f"{what}: {response.mimetype}"
        assert "Traceback" not in body and "</html>" in body, f"{what}: {body[:300]}"


def check_nothing_half_written(target: Target, before: dict[str, int], response: Any) -> None:
    if response.status_code >= 400:
        assert target.counts() == before, f"a refused request wrote rows: {response.status_code}"
    assert target.broken_bookings() == 0


# --- the targets --------------------------------------------------------------------------------


def _valid_booking(slot: str) -> dict[str, Any]:
    return {
        "start": slot,
        "client": {"name": "Zoé Fuzz", "email": "zoe@fuzz.example", "timezone": "Europe/Paris"},
        "answers": {"topic": "Taxes"},
        "consent": True,
    }


@BUDGET
@_seeded
@given(data=st.data(), service=st.sampled_from(["consult", "workshop", "review"]))
def test_api_booking_takes_any_json(target: Target, data: st.DataObject, service: str) -> None:
    if data.draw(st.booleans(), label="from a valid body"):
        # A valid booking with one part or two made hostile: the checks past the first ones.
        body: Any = _valid_booking(data.draw(st.sampled_from(target.slots), label="slot"))
        for _ in range(data.draw(st.integers(1, 2), label="changes")):
            where = data.draw(st.sampled_from(["", "client", "answers"]), label="where")
            part = body if not where or not isinstance(body.get(where), dict) else body[where]
            key = data.draw(
                st.sampled_from(
                    {
                        "": ["start", "client", "answers", "consent", "sms_opt_in", "staff"],
                        "client": ["name", "email", "phone", "timezone", "locale"],
                        "answers": ["topic", "name", "email"],
                    }[where]
                ),
                label="key",
            )
            part[key] = data.draw(maybe(st.one_of(text, moments, zones)), label="value")
    else:
        body = data.draw(booking_bodies, label="body")
    before = target.counts()
    response = target.client.post(f"{API}/{service}/bookings", json=body)
    check_api(response, f"POST bookings {body!r:.300}")
    check_nothing_half_written(target, before, response)


@BUDGET
@_seeded
@given(raw=raw_bodies())
def test_api_booking_takes_any_bytes(target: Target, raw: tuple[bytes, str]) -> None:
    before = target.counts()
    body, content_type = raw
    response = target.client.post(f"{API}/consult/bookings", data=body, content_type=content_type)
    check_api(response, f"POST bookings raw {body[:100]!r} as {content_type!r}")
    check_nothing_half_written(target, before, response)


def tokens(target_token: str) -> st.SearchStrategy[str]:
    return st.one_of(
        st.just(target_token),
        text.map(lambda t: target_token + t),
        text.map(lambda t: target_token[: len(target_token) // 2] + t),
        text,
    )


@BUDGET
@_seeded
@given(data=st.data())
def test_api_manage_takes_any_token_and_body(target: Target, data: st.DataObject) -> None:
    token = data.draw(tokens(target.token), label="token")
    action = data.draw(st.sampled_from(["", "/cancel", "/reschedule"]), label="action")
    path = f"/api/v1/manage/{_quoted(token)}{action}"
    before = target.counts()
    if not action:
        response = target.client.get(path)
    elif data.draw(st.booleans(), label="raw"):
        body, content_type = data.draw(raw_bodies(), label="raw body")
        response = target.client.post(path, data=body, content_type=content_type)
    else:
        body = data.draw(
            st.one_of(
                st.fixed_dictionaries(
                    {}, optional={"start": maybe(moments), "reason": maybe(text)}
                ),
                json_values,
            ),
            label="body",
        )
        # A valid move or cancellation is no hostile input: keep the booking for the others.
        if isinstance(body, dict) and action == "/cancel" and token == target.token:
            body["reason"] = 5
        response = target.client.post(path, json=body)
    check_api(response, f"manage {path[:200]}")
    check_nothing_half_written(target, before, response)


def _window(first: int, days: int) -> dict[str, str]:
    start = TEST_NOW.date() + timedelta(days=first)
    return {"from": start.isoformat(), "to": (start + timedelta(days=days)).isoformat()}


# A window the search runs on (near the suite's instant, up to a little beyond the 93 days).
windows = st.builds(_window, st.integers(-3, 60), st.integers(0, 95))
hostile_windows = st.fixed_dictionaries(
    {},
    optional={
        "from": st.one_of(near_days, moments, st.dates().map(str)),
        "to": st.one_of(near_days, moments, st.dates().map(str)),
    },
)


@BUDGET
@_seeded
@given(data=st.data())
def test_api_slots_take_any_query(target: Target, data: st.DataObject) -> None:
    hostile = data.draw(st.sampled_from(["none", "window", "service", "all"]), label="hostile")
    query = data.draw(hostile_windows if hostile in ("window", "all") else windows, label="days")
    query |= data.draw(
        st.fixed_dictionaries(
            {},
            optional={
                "tz": st.one_of(st.just("Europe/Paris"), zones),
                "staff": st.one_of(st.sampled_from(["ana", "ben", "dan"]), text),
            },
        ),
        label="tz, staff",
    )
    real = st.sampled_from(["consult", "review", "workshop"])
    service = data.draw(text if hostile in ("service", "all") else real, label="service")
    encoded = "&".join(f"{k}={_quoted(v)}" for k, v in query.items())
    response = target.client.get(f"{API}/{_quoted(service)}/slots?{encoded}")
    check_api(response, f"slots {service!r:.50} {encoded[:300]}")


FORM_FIELDS = (
    "start",
    "tz",
    "staff",
    "taken",
    "field_name",
    "field_email",
    "field_phone",
    "field_topic",
    "consent",
    "sms_opt_in",
)


@BUDGET
@_seeded
@given(data=st.data())
def test_the_public_form_takes_any_answers(target: Target, data: st.DataObject) -> None:
    values: dict[str, str] = {}
    valid = {
        "start": data.draw(st.sampled_from(target.slots), label="slot"),
        "tz": "Europe/Paris",
        "field_name": "Zoé Fuzz",
        "field_email": "zoe@fuzz.example",
        "field_topic": "Taxes",
        "consent": "y",
    }
    from_valid = data.draw(st.booleans(), label="from a valid form")
    for name in FORM_FIELDS:
        if from_valid and name in valid and data.draw(st.booleans(), label=f"keep {name}"):
            values[name] = valid[name]
        elif data.draw(st.booleans(), label=f"has {name}"):
            choices = [text]
            if name in ("start", "taken"):
                choices = [st.sampled_from(target.slots), moments]
            elif name == "tz":
                choices = [zones]
            elif name == "field_email":
                choices = [st.emails(), text]
            values[name] = data.draw(st.one_of(*choices), label=name)
    values["form_token"] = data.draw(
        st.one_of(st.just(target.form_token), text), label="form_token"
    )
    before = target.counts()
    response = target.client.post(
        "/acme/consult/book",
        data=_form(values),
        content_type="application/x-www-form-urlencoded",
        headers=ORIGIN,
    )
    check_page(response, f"public form {values!r:.400}")
    check_nothing_half_written(target, before, response)


def test_the_budget_is_bounded() -> None:
    """The suite runs a fixed, small number of examples unless asked for more."""
    assert BUDGET.max_examples == EXAMPLES
    assert BUDGET.deadline is None
    assert BUDGET.derandomize or SEED is not None
