"""A calendar's outbound webhooks (issue 19): booking events go through the outbox to a real HTTP
receiver on loopback, signed the Standard Webhooks way; the reference library verifies them."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from bookwise.bookings.models import Booking
from bookwise.bookings.services import BookingRequest, cancel_booking, create_booking, find_service
from bookwise.calendars.models import Calendar
from bookwise.crypto import is_sealed, rotate_answers
from bookwise.db import begin_write, unit_of_work
from bookwise.notifications.models import Notification, WebhookEndpoint
from bookwise.notifications.webhooks import (
    CHANNEL,
    WebhookProblem,
    check_url,
    create_endpoint,
    delete_endpoint,
    new_secret,
    plan_test,
    rotate,
)
from bookwise.testing import Receiver, http_receiver
from tests.conftest import TEST_NOW, Loaded
from tests.test_notifications import book, dispatcher, start_in

pytestmark = pytest.mark.clock


class AtInstant(Webhook):
    """The reference library's verification, its 5-minute window counted from ``now`` (the
    test's fixed instant) instead of the wall clock."""

    def __init__(self, secret: str, now: datetime) -> None:
        super().__init__(secret)
        self.now = now

    def _Webhook__verify_timestamp(self, header: str) -> datetime:
        try:
            stamp = datetime.fromtimestamp(float(header), tz=UTC)
        except ValueError:
            raise WebhookVerificationError("Invalid Signature Headers") from None
        if stamp < self.now - timedelta(minutes=5):
            raise WebhookVerificationError("Message timestamp too old")
        if stamp > self.now + timedelta(minutes=5):
            raise WebhookVerificationError("Message timestamp too new")
        return stamp


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with http_receiver() as receiver:
        receiver.status = 204
        receiver.answer = b""
        yield receiver


def endpoint(
    loaded: Loaded, url: str, calendar: str = "acme", events: tuple[str, ...] = ()
) -> tuple[int, str]:
    with unit_of_work(loaded.database.sessions, write=True) as session:
        calendar_id = session.scalar(sa.select(Calendar.id).where(Calendar.slug == calendar))
        assert calendar_id is not None
        made, secret = create_endpoint(
            session,
            calendar_id,
            url + "/hook",
            events or ("booking.created", "booking.cancelled"),
            "CRM",
        )
        return made.id, secret


def received(receiver: Receiver) -> list[tuple[dict[str, str], bytes]]:
    return [({k.lower(): v for k, v in r.headers.items()}, r.body) for r in receiver.requests]


def hook_rows(loaded: Loaded) -> list[Notification]:
    with loaded.database.sessions() as session:
        return list(
            session.scalars(
                sa.select(Notification)
                .where(Notification.channel == CHANNEL)
                .order_by(Notification.id)
            )
        )


def cancel(loaded: Loaded, uid: str) -> None:
    with unit_of_work(loaded.database.sessions, write=True) as session:
        booking = session.scalar(sa.select(Booking).where(Booking.uid == uid))
        assert booking is not None
        cancel_booking(session, booking, TEST_NOW, reason="ill", plugins=None)


def test_created_and_cancelled_arrive_signed(mailing: Loaded, hook: Receiver) -> None:
    _, secret = endpoint(mailing, hook.url)
    uid = book(mailing, start_in())
    cancel(mailing, uid)
    dispatcher(mailing).drain()
    deliveries = received(hook)
    assert len(deliveries) == 2
    verifier = AtInstant(secret, TEST_NOW)
    created, cancelled = (verifier.verify(body, headers) for headers, body in deliveries)
    assert created["type"] == "booking.created" and cancelled["type"] == "booking.cancelled"
    data = created["data"]
    assert data["id"] == uid and data["calendar"] == "acme" and data["status"] == "confirmed"
    assert data["client"] == {"name": "Zoé Martin", "email": "zoe@example.org"}
    # The sensitive answer stays home; the others go; the client's manage token too.
    assert data["answers"].get("topic") == "Taxes" and "health" not in data["answers"]
    assert "asthma" not in deliveries[0][1].decode() and "manage_token" not in data
    assert cancelled["data"]["status"] == "cancelled"
    headers = deliveries[0][0]
    assert headers["webhook-timestamp"] == str(int(TEST_NOW.timestamp()))
    assert all(
        r.state == "sent" and r.provider_message_id == "http-204" for r in hook_rows(mailing)
    )


def test_the_same_id_on_a_retry_after_a_500(mailing: Loaded, hook: Receiver) -> None:
    _, secret = endpoint(mailing, hook.url)
    book(mailing, start_in())
    hook.status = 500
    dispatcher(mailing).drain()
    (row,) = hook_rows(mailing)
    assert row.state == "failed" and "answered 500" in (row.last_error or "")
    hook.status = 204
    later = TEST_NOW + timedelta(minutes=2)
    dispatcher(mailing, later).drain()
    first, second = received(hook)
    assert first[0]["webhook-id"] == second[0]["webhook-id"] == row.message_uid
    assert int(second[0]["webhook-timestamp"]) == int(later.timestamp())
    AtInstant(secret, later).verify(second[1], second[0])
    (row,) = hook_rows(mailing)
    assert row.state == "sent" and row.attempts == 2


def test_a_tampered_body_or_an_old_timestamp_fails(mailing: Loaded, hook: Receiver) -> None:
    _, secret = endpoint(mailing, hook.url)
    book(mailing, start_in())
    dispatcher(mailing).drain()
    ((headers, body),) = received(hook)
    tampered = body.replace(b'"confirmed"', b'"cancelled"')
    assert tampered != body
    with pytest.raises(WebhookVerificationError, match="signature"):
        AtInstant(secret, TEST_NOW).verify(tampered, headers)
    with pytest.raises(WebhookVerificationError, match="too old"):
        AtInstant(secret, TEST_NOW + timedelta(minutes=6)).verify(body, headers)
    with pytest.raises(WebhookVerificationError, match="signature"):
        AtInstant(new_secret(), TEST_NOW).verify(body, headers)


def test_rotation_signs_with_both_then_only_the_new(mailing: Loaded, hook: Receiver) -> None:
    endpoint_id, old = endpoint(mailing, hook.url, events=("booking.created",))
    with unit_of_work(mailing.database.sessions, write=True) as session:
        found = session.get(WebhookEndpoint, endpoint_id)
        assert found is not None
        new = rotate(found, TEST_NOW, timedelta(hours=24))
    book(mailing, start_in(days=3))
    dispatcher(mailing).drain()
    ((headers, body),) = received(hook)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        AtInstant(secret, TEST_NOW).verify(body, headers)
    # After the overlap: only the new secret signs.
    later = TEST_NOW + timedelta(hours=25)
    book(mailing, start_in(days=4), now=later)
    dispatcher(mailing, later).drain()
    headers, body = received(hook)[1]
    assert len(headers["webhook-signature"].split(" ")) == 1
    AtInstant(new, later).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        AtInstant(old, later).verify(body, headers)


def documented_recipe(at: datetime) -> Any:
    """The 10-line verification of docs/api.md (Webhooks), run as written, its clock at ``at``."""
    text = (Path(__file__).parent.parent / "docs" / "api.md").read_text(encoding="utf-8")
    code = text.split("or without it (raw body bytes, as received):\n\n```python\n")[1]
    namespace: dict[str, Any] = {}
    exec(code.split("```")[0], namespace)  # our own documentation's code
    namespace["time"] = SimpleNamespace(time=at.timestamp)
    return namespace["verify"]


def test_the_documented_recipe_verifies_too(mailing: Loaded, hook: Receiver) -> None:
    _, secret = endpoint(mailing, hook.url)
    book(mailing, start_in())
    dispatcher(mailing).drain()
    ((headers, body),) = received(hook)
    assert documented_recipe(TEST_NOW)(secret, headers, body)
    assert not documented_recipe(TEST_NOW)(secret, headers, body + b" ")
    assert not documented_recipe(TEST_NOW + timedelta(minutes=6))(secret, headers, body)
    assert not documented_recipe(TEST_NOW)(new_secret(), headers, body)


def test_a_paused_or_deleted_endpoint_gets_nothing(mailing: Loaded, hook: Receiver) -> None:
    paused_id, _ = endpoint(mailing, hook.url)
    deleted_id, _ = endpoint(mailing, hook.url)
    book(mailing, start_in())  # planned for both, then one is paused and one deleted
    with unit_of_work(mailing.database.sessions, write=True) as session:
        paused = session.get(WebhookEndpoint, paused_id)
        assert paused is not None
        paused.active = False
        session.delete(session.get(WebhookEndpoint, deleted_id))
    book(mailing, start_in(days=4))  # planned for none
    dispatcher(mailing).drain()
    assert received(hook) == []
    reasons = {r.recipient: (r.state, r.last_error) for r in hook_rows(mailing)}
    assert reasons == {
        str(paused_id): ("skipped", "the webhook endpoint is paused"),
        str(deleted_id): ("skipped", "the webhook endpoint was deleted"),
    }


def test_a_deleted_endpoints_rows_never_reach_the_next_one(mailing: Loaded, hook: Receiver) -> None:
    first_id, _ = endpoint(mailing, hook.url)
    book(mailing, start_in())
    with unit_of_work(mailing.database.sessions, write=True) as session:
        found = session.get(WebhookEndpoint, first_id)
        assert found is not None
        assert delete_endpoint(session, found) == 1
    endpoint(mailing, hook.url)  # on SQLite, it may well get the same id
    dispatcher(mailing).drain()
    assert received(hook) == []
    ((state, reason),) = [(r.state, r.last_error) for r in hook_rows(mailing)]
    assert state == "skipped" and reason == "the webhook endpoint was deleted"


def test_a_calendar_never_gets_another_calendars_events(mailing: Loaded, hook: Receiver) -> None:
    endpoint(mailing, hook.url, calendar="private")
    book(mailing, start_in())  # acme's
    dispatcher(mailing).drain()
    assert received(hook) == [] and hook_rows(mailing) == []


def test_a_test_event_is_delivered_and_logged(mailing: Loaded, hook: Receiver) -> None:
    endpoint_id, secret = endpoint(mailing, hook.url)
    with unit_of_work(mailing.database.sessions, write=True) as session:
        found = session.get(WebhookEndpoint, endpoint_id)
        assert found is not None
        plan_test(session, found, TEST_NOW)
    dispatcher(mailing).drain()
    ((headers, body),) = received(hook)
    assert AtInstant(secret, TEST_NOW).verify(body, headers)["type"] == "webhook.test"


def test_the_secret_is_encrypted_and_rotated_with_the_keys(mailing: Loaded, hook: Receiver) -> None:
    endpoint_id, secret = endpoint(mailing, hook.url)
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) >= 24
    raw = sa.table("webhook_endpoints", sa.column("id"), sa.column("secrets", sa.JSON))
    with mailing.database.engine.connect() as connection:
        stored = connection.execute(sa.select(raw.c.secrets)).scalar_one()
    assert is_sealed(stored) and secret not in json.dumps(stored)
    report = rotate_answers(mailing.database.engine)
    assert report.webhook_endpoints == 1
    with mailing.database.sessions() as session:
        found = session.get(WebhookEndpoint, endpoint_id)
        assert found is not None and found.secrets["current"] == secret


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://example.org/hook", "url_scheme"),
        ("ftp://example.org/hook", "url_scheme"),
        ("https://user:pass@example.org/hook", "url_credentials"),
        ("https://example.org/\ud800", "url_characters"),
        ("https://example.org/a b", "url_characters"),
        ("https://exämple.org/", "url_characters"),
        ("https://example.org/x\ufffd", "url_characters"),
        ("https://example.org:99999/", "url_invalid"),
        ("https:///nohost", "url_scheme"),
        ("", "url_missing"),
    ],
)
def test_hostile_urls_are_refused(url: str, code: str) -> None:
    with pytest.raises(WebhookProblem) as refused:
        check_url(url)
    assert refused.value.code == code


def test_a_description_that_cannot_be_stored_is_refused(mailing: Loaded) -> None:
    with (
        unit_of_work(mailing.database.sessions, write=True) as session,
        pytest.raises(WebhookProblem, match="description_characters"),
    ):
        create_endpoint(session, 1, "https://hooks.example.org/", ["booking.created"], "a\ud800")


def test_loopback_http_and_https_are_taken() -> None:
    assert check_url(" http://127.0.0.1:8000/x ") == "http://127.0.0.1:8000/x"
    assert check_url("http://localhost/x") == "http://localhost/x"
    assert check_url("https://hooks.example.org/in?x=1") == "https://hooks.example.org/in?x=1"


# --- a booking reads no endpoint of a calendar known to have none, in that transaction only -


def test_an_endpoint_made_after_a_session_looked_is_heard_in_its_next_transaction(
    mailing: Loaded, hook: Receiver
) -> None:
    """find_service notes that the calendar has no endpoint, for its transaction: a later
    transaction of the same session (a cancel after the booking's commit) reads them again."""
    with mailing.database.sessions() as session:
        begin_write(session)
        context = find_service(session, "acme", "visit")
        booking = create_booking(session, context, visit_request(), TEST_NOW, plugins=None)
        session.commit()
        assert hook_rows(mailing) == []
        endpoint(mailing, hook.url)  # another session, committed
        begin_write(session)
        cancel_booking(session, booking, TEST_NOW, reason="ill", plugins=None)
        session.commit()
    assert [row.event for row in hook_rows(mailing)] == ["booking.cancelled"]


def test_an_endpoint_made_in_the_booking_transaction_is_heard(mailing: Loaded) -> None:
    with unit_of_work(mailing.database.sessions, write=True) as session:
        context = find_service(session, "acme", "visit")
        create_endpoint(
            session, context.calendar.id, "https://crm.example/hook", ("booking.created",)
        )
        create_booking(session, context, visit_request(), TEST_NOW, plugins=None)
    assert [row.event for row in hook_rows(mailing)] == ["booking.created"]


def visit_request() -> BookingRequest:
    return BookingRequest(
        start=start_in(),
        staff="ana",
        values={"name": "Zoé Martin", "email": "zoe@example.org", "topic": "Taxes"},
    )
