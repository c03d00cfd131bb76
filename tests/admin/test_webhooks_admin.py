"""The calendar's webhook endpoints in the back office: added by its admins, the secret shown
once, hostile addresses refused in words, rotation, pausing, a test event and the delivery log."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from bookwise.notifications.delivery import Dispatcher
from bookwise.notifications.models import Notification, WebhookEndpoint
from bookwise.testing import Receiver, http_receiver
from tests.admin.conftest import NOW, World, db, fetch, post, token

SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]{40,}")


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with http_receiver() as receiver:
        receiver.status = 204
        receiver.answer = b""
        yield receiver


def add(client: object, url: str, **more: object) -> object:
    data = {"url": url, "events": ["booking.created", "booking.cancelled"], "active": "y"}
    data.update(more)
    return post(client, "/admin/webhooks/new", data)


def only_endpoint(world: World) -> WebhookEndpoint:
    with db(world) as session:
        (found,) = session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.calendar_id == world.ids["acme"])
        ).all()
        session.expunge_all()
        return found


def test_an_admin_adds_an_endpoint_and_sees_its_secret_once(world: World) -> None:
    client = world.login("admin")
    page = add(client, "https://crm.example.org/in", description="Our CRM").get_data(as_text=True)
    shown = SECRET.findall(page)
    assert len(shown) == 1 and "not shown again" in page
    endpoint = only_endpoint(world)
    assert endpoint.url == "https://crm.example.org/in" and endpoint.active
    assert endpoint.events == ["booking.created", "booking.cancelled"]
    assert endpoint.secrets["current"] == shown[0]
    again = client.get(f"/admin/webhooks/{endpoint.id}/").get_data(as_text=True)
    assert not SECRET.search(again) and "https://crm.example.org/in" in again
    assert "https://crm.example.org/in" in client.get("/admin/webhooks/").get_data(as_text=True)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://crm.example.org/in", "must start with https://"),
        ("https://user:pw@crm.example.org/in", "must not hold a user name or password"),
        ("https://crm.example.org/caf\u00e9", "only printable ASCII"),
        ("javascript:alert(1)", "must start with https://"),
        ("", "This field is required"),
    ],
)
def test_hostile_addresses_are_refused_in_words(world: World, url: str, words: str) -> None:
    client = world.login("admin")
    response = add(client, url)
    assert response.status_code == 200
    assert words in response.get_data(as_text=True)
    with db(world) as session:
        assert session.scalars(select(WebhookEndpoint)).all() == []


def test_an_escaped_lone_surrogate_stays_escaped(world: World) -> None:
    client = world.login("admin")
    # The UTF-8-like bytes of a lone surrogate (U+D800), percent-escaped: no character is made
    # of them, the address keeps the escape (plain ASCII), nothing fails.
    body = (
        f"csrf_token={token(client)}&events=booking.created&active=y"
        "&url=https%3A%2F%2Fcrm.example.org%2F%ED%A0%80"
    ).encode()
    response = client.post(
        "/admin/webhooks/new", data=body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    assert only_endpoint(world).url == "https://crm.example.org/%ED%A0%80"


def test_no_event_chosen_is_refused(world: World) -> None:
    client = world.login("admin")
    response = add(client, "https://crm.example.org/in", events=[])
    assert "Choose at least one event." in response.get_data(as_text=True)


def test_rotate_pause_test_event_and_the_log(world: World, hook: Receiver) -> None:
    client = world.login("admin")
    add(client, hook.url + "/in")
    endpoint = only_endpoint(world)
    first = endpoint.secrets["current"]
    page = post(client, f"/admin/webhooks/{endpoint.id}/rotate", {"overlap": "12"})
    (new,) = SECRET.findall(page.get_data(as_text=True))
    stored = fetch(world, WebhookEndpoint, endpoint.id).secrets
    assert stored["current"] == new and stored["previous"] == first and new != first
    refused = post(client, f"/admin/webhooks/{endpoint.id}/rotate", {"overlap": "999"})
    assert "0 to 168 hours" in refused.get_data(as_text=True)
    post(client, f"/admin/webhooks/{endpoint.id}/test")
    Dispatcher(
        world.app.extensions["bookwise"].settings,
        world.app.extensions["bookwise"].database,
        clock=lambda: NOW,
    ).drain()
    (delivery,) = hook.requests
    headers = {k.lower(): v for k, v in delivery.headers.items()}
    assert len(headers["webhook-signature"].split(" ")) == 2
    log = client.get(f"/admin/webhooks/{endpoint.id}/").get_data(as_text=True)
    assert "webhook.test" in log and "Delivered" in log and "http-204" in log
    # Paused: the form without ``active``.
    post(
        client,
        f"/admin/webhooks/{endpoint.id}/edit",
        {"url": hook.url + "/in", "events": ["booking.created"], "description": "paused"},
    )
    paused = fetch(world, WebhookEndpoint, endpoint.id)
    assert not paused.active and paused.events == ["booking.created"]
    post(client, f"/admin/webhooks/{endpoint.id}/delete")
    with db(world) as session:
        assert session.get(WebhookEndpoint, endpoint.id) is None
        rows = session.scalars(select(Notification).where(Notification.event == "webhook.test"))
        assert [r.state for r in rows] == ["sent"]


def test_a_viewer_may_not_open_the_webhooks(world: World) -> None:
    client = world.login("viewer")
    assert client.get("/admin/webhooks/").status_code == 403
