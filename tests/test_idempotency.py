"""``Idempotency-Key`` on the API's creating POSTs (bookwise.bookings.idempotency, docs/api.md
"Idempotency"): a retry replays the first 201, another body with the key is 422, a failure keeps
no key, two requests at once make one booking, keys expire by the job and rotate with the keys."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from bookwise.bookings.models import Booking, BookingSeries, IdempotencyKey, WaitlistEntry
from bookwise.crypto import generate_key
from bookwise.database import open_database
from tests.conftest import Loaded, add_workflow_version
from tests.test_api import consult, counts, tomorrow_at
from tests.test_series import SERIES, consult_with
from tests.test_waitlist import book, join_body, school, school_app, session_start  # noqa: F401

pytestmark = pytest.mark.clock

URL = "/api/v1/calendars/acme/services/consult/bookings"
KEY = "7c1e5a0e-3f7b-4c55-9d51-2b8f1f7d9c11"


@pytest.fixture
def api(scenario_app: Any) -> Any:
    return scenario_app.test_client()


def rows(loaded: Loaded, model: Any) -> int:
    with loaded.database.sessions() as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


def post(api: Any, body: dict[str, Any], key: str | None = KEY, url: str = URL) -> Any:
    return api.post(url, json=body, headers={"Idempotency-Key": key} if key is not None else {})


def same_answer(first: Any, second: Any) -> None:
    assert (first.status_code, second.status_code) == (201, 201), second.get_json()
    assert second.get_json() == first.get_json()
    assert second.data == first.data  # the same JSON, byte for byte
    assert second.headers["Location"] == first.headers["Location"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers


def test_a_retry_with_the_same_key_gets_the_first_201_and_books_once(
    api: Any, scenario: Loaded
) -> None:
    body = consult(tomorrow_at(10))
    first = post(api, body)
    second = post(api, body)
    same_answer(first, second)
    assert rows(scenario, Booking) == 1
    # The same JSON written another way (keys in another order) is the same request.
    third = post(api, dict(reversed(list(body.items()))))
    assert third.status_code == 201 and third.get_json() == first.get_json()
    # The stored response holds the manage token and the client's e-mail: never in clear.
    with scenario.database.engine.connect() as connection:
        raw = connection.exec_driver_sql("SELECT response_body FROM idempotency_keys").scalar_one()
    assert "$fernet" in str(raw)
    assert first.get_json()["manage_token"] not in str(raw) and "zoe@example.org" not in str(raw)


def test_the_same_key_with_another_body_is_refused(api: Any, scenario: Loaded) -> None:
    assert post(api, consult(tomorrow_at(10))).status_code == 201
    before = counts(api.application)
    other = post(api, consult(tomorrow_at(11)))
    assert other.status_code == 422
    assert other.get_json()["error"]["code"] == "idempotency_key_reused"
    assert "another request" in other.get_json()["error"]["message"]
    assert counts(api.application) == before
    # A key belongs to its endpoint: another service's POST may use it for its own request.
    visit = post(
        api,
        consult(tomorrow_at(11), answers={"topic": "Knee", "health": "fine"}),
        url="/api/v1/calendars/acme/services/visit/bookings",
    )
    assert visit.status_code != 422, visit.get_json()


def test_a_failed_first_attempt_keeps_no_key(api: Any, scenario: Loaded) -> None:
    start = tomorrow_at(10)
    # Wrong answers (422, refused inside the booking's transaction): the key goes with it.
    wrong = post(api, consult(start, answers={"topic": ""}))
    assert wrong.status_code == 422 and wrong.get_json()["error"]["code"] == "invalid"
    assert rows(scenario, IdempotencyKey) == 0
    # A taken slot (409): the three consultants are booked at 10:00 by others.
    for number in range(3):
        client = {"name": f"C{number}", "email": f"c{number}@example.org"}
        assert post(api, consult(start, client=client), key=None).status_code == 201
    taken = post(api, consult(start))
    assert taken.status_code == 409 and taken.get_json()["error"]["code"] == "slot_taken"
    assert rows(scenario, IdempotencyKey) == 0
    # Nothing was remembered: the same key books another time, then replays that.
    later = post(api, consult(tomorrow_at(11)))
    assert later.status_code == 201
    same_answer(later, post(api, consult(tomorrow_at(11))))
    assert rows(scenario, Booking) == 4


def test_a_series_is_booked_once(api: Any, scenario: Loaded) -> None:
    add_workflow_version(scenario.settings, scenario.database, consult_with(SERIES))
    body = consult(tomorrow_at(10, days=3), recurrence={"frequency": "weekly", "count": 3})
    longest = "k" * 255
    first = post(api, body, key=longest)
    assert first.get_json()["series"]["count"] == 3
    same_answer(first, post(api, body, key=longest))
    assert rows(scenario, BookingSeries) == 1 and rows(scenario, Booking) == 3
    single = post(api, consult(tomorrow_at(10, days=3)), key=longest)
    assert single.get_json()["error"]["code"] == "idempotency_key_reused"


def test_joining_a_waitlist_once(school: Loaded, school_app: Any, now: datetime) -> None:  # noqa: F811
    api = school_app.test_client()
    start = session_start(now)
    book(school, start, now, 1)
    book(school, start, now, 2)
    url = "/api/v1/calendars/school/services/class/waitlist"
    first = post(api, join_body(start), url=url)
    same_answer(first, post(api, join_body(start), url=url))
    assert rows(school, WaitlistEntry) == 1
    other = post(api, join_body(start, 2), url=url)
    assert other.get_json()["error"]["code"] == "idempotency_key_reused"


@pytest.mark.parametrize(
    "key",
    [
        "",
        "k" * 256,
        "a\x00b",
        "tab\there",
        "line\nbreak",
        "del\x7f",
        "caf\u00e9",
        "\ud800",  # a lone surrogate
        "\xed\xa0\x80",  # its UTF-8 bytes as a server reads them (Latin-1)
    ],
)
def test_a_hostile_key_is_400(api: Any, key: str) -> None:
    before = counts(api.application)
    response = api.post(
        URL, json=consult(tomorrow_at(10)), environ_overrides={"HTTP_IDEMPOTENCY_KEY": key}
    )
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_idempotency_key"
    assert "Idempotency-Key" in error["message"]
    assert counts(api.application) == before


def test_two_requests_at_once_with_one_key_make_one_booking(
    api: Any, scenario: Loaded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first request holds its transaction open after booking: the second waits for it (on
    the key's unique index on PostgreSQL, the writer lock on SQLite), then replays its 201.
    Looking the key up before the transaction instead would book twice or answer 409."""
    from bookwise.api import views

    real = views.create_booking
    booked, go = threading.Event(), threading.Event()
    holder: list[threading.Thread] = []

    def held(*args: Any, **kwargs: Any) -> Any:
        booking = real(*args, **kwargs)
        if threading.current_thread() in holder:
            booked.set()
            assert go.wait(timeout=30)
        return booking

    monkeypatch.setattr(views, "create_booking", held)
    body = consult(tomorrow_at(10))
    answers: dict[str, Any] = {}

    def send(name: str) -> None:
        answers[name] = post(api.application.test_client(), body)

    first = threading.Thread(target=send, args=("first",))
    second = threading.Thread(target=send, args=("second",))
    holder.append(first)
    first.start()
    assert booked.wait(timeout=30)
    second.start()
    second.join(timeout=1.0)
    assert second.is_alive() and "second" not in answers  # it waits for the first
    go.set()
    first.join(timeout=30)
    second.join(timeout=30)
    same_answer(answers["first"], answers["second"])
    assert rows(scenario, Booking) == 1 and rows(scenario, IdempotencyKey) == 1


def test_keys_expire_by_the_job(
    api: Any, scenario: Loaded, now: datetime, bookwise_cli: Any
) -> None:
    from bookwise.scheduling.core import core_jobs

    job = next(j for j in core_jobs(scenario.settings) if j.name == "purge-idempotency-keys")
    assert job.once
    assert scenario.settings.api.idempotency_hours == 24
    assert post(api, consult(tomorrow_at(10))).status_code == 201
    config = scenario.settings.source

    def run(at: datetime) -> str:
        result = bookwise_cli("jobs", "run", job.name, "--config", config, "--at", at.isoformat())
        assert result.exit_code == 0, result.stderr
        return str(result.stdout)

    assert "purged" not in run(now + timedelta(hours=23, minutes=30))
    assert rows(scenario, IdempotencyKey) == 1
    assert (
        run(now + timedelta(hours=24, minutes=30)).strip().endswith(": 1 idempotency key(s) purged")
    )
    assert rows(scenario, IdempotencyKey) == 0
    # The key is new again: it may name another request.
    assert post(api, consult(tomorrow_at(11))).status_code == 201


def test_rotating_the_keys_encrypts_the_stored_responses_again(
    api: Any, scenario: Loaded, bookwise_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = post(api, consult(tomorrow_at(10)))
    assert first.status_code == 201
    new_key = generate_key()
    old_keys = ",".join(scenario.settings.encryption_keys)
    monkeypatch.setenv("BOOKWISE_ENCRYPTION_KEYS", f"{new_key},{old_keys}")
    result = bookwise_cli("--config", scenario.settings.source, "keys", "rotate")
    assert result.exit_code == 0, result.stderr
    assert "1 stored API response(s)" in result.stdout

    from bookwise.config import load_settings

    settings = load_settings(
        scenario.settings.source, environ={"BOOKWISE_ENCRYPTION_KEYS": new_key}
    )
    database = open_database(settings)
    try:
        with database.sessions() as session:
            stored = session.scalars(sa.select(IdempotencyKey)).one()
            assert stored.response_body == first.get_json()
            assert stored.response_headers == {"Location": first.headers["Location"]}
    finally:
        database.engine.dispose()
