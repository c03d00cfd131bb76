"""A calendar's outbound webhooks, signed the Standard Webhooks way (www.standardwebhooks.com).

Each booking event (the lines of the booking's history) adds, in the same transaction, one outbox
row per active endpoint of the booking's calendar that wants it (channel ``calendar-webhook``,
recipient the endpoint's id, the body kept in the row's payload). The outbox's
:class:`~bookwise.notifications.delivery.Dispatcher` delivers it with its retries and backoff;
:class:`CalendarWebhookChannel` signs each attempt:

- ``webhook-id``: the row's ``message_uid``, the same on every attempt;
- ``webhook-timestamp``: the attempt's time, in seconds;
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` with the
  secret's decoded bytes; during a rotation's overlap one per valid secret, space-separated.

The instance's own webhook (``plugins.webhook`` in config.yaml, channel ``webhook``) is another
thing: it carries the workflows' notification rules.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets as random
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bookwise.bookings.models import Booking
from bookwise.db import utcnow
from bookwise.notifications.channels import Channel, ChannelError, OutgoingMessage, post
from bookwise.notifications.models import Notification, WebhookEndpoint
from bookwise.text import unstorable_text
from bookwise.workflows.services import workflow_of

CHANNEL = "calendar-webhook"
TEST_EVENT = "webhook.test"
SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 32
# How long the previous secret still signs after a rotation, unless the admin says otherwise.
ROTATION_OVERLAP = timedelta(hours=24)
MAX_OVERLAP = timedelta(days=7)

# The booking events an endpoint may want: the history's ``created``, ``rescheduled`` and
# ``reassigned``, and the entry into each state of the shipped lifecycles (a workflow's own state
# ``x`` is ``booking.x``, offered to endpoints that list it).
EVENTS = (
    "booking.created",
    "booking.confirmed",
    "booking.rescheduled",
    "booking.reassigned",
    "booking.cancelled",
    "booking.declined",
    "booking.completed",
    "booking.no_show",
)

HOSTS_WITHOUT_TLS = ("127.0.0.1", "localhost", "::1")


class WebhookProblem(ValueError):
    """An endpoint's setting refused; ``code`` names why (the admin words it)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def check_url(url: str) -> str:
    """``url`` stripped, or :class:`WebhookProblem`: https only (http only to 127.0.0.1 or
    localhost, for tests and development), no user or password, printable ASCII."""
    url = (url or "").strip()
    if not url:
        raise WebhookProblem("url_missing")
    if len(url) > 2000:
        raise WebhookProblem("url_too_long")
    # Printable ASCII only: spaces, control characters, lone surrogates and the replacement
    # character of undecodable bytes are refused (a host or path in another script is written
    # in its ASCII form: punycode, percent-encoding).
    if any(not 33 <= ord(c) < 127 for c in url):
        raise WebhookProblem("url_characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a port out of range
    except ValueError:
        raise WebhookProblem("url_invalid") from None
    if parts.scheme not in ("https", "http") or not host:
        raise WebhookProblem("url_scheme")
    if parts.username is not None or parts.password is not None:
        raise WebhookProblem("url_credentials")
    if parts.scheme == "http" and host not in HOSTS_WITHOUT_TLS:
        raise WebhookProblem("url_scheme")
    return url


# --- secrets and signatures ----------------------------------------------------------------------


def new_secret() -> str:
    """A new secret in the Standard Webhooks form: ``whsec_`` and base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(random.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The bytes a secret stands for (the base64 after ``whsec_``)."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def valid_secrets(stored: dict[str, Any], now: datetime) -> list[str]:
    """The secrets that sign at ``now``: the current one, and the previous one during its
    overlap after a rotation."""
    found = [stored["current"]] if stored.get("current") else []
    until = stored.get("previous_until")
    if stored.get("previous") and until and now < datetime.fromisoformat(until):
        found.append(stored["previous"])
    return found


def rotate(endpoint: WebhookEndpoint, now: datetime, overlap: timedelta = ROTATION_OVERLAP) -> str:
    """Give ``endpoint`` a new secret, the current one still signing for ``overlap``; the new."""
    if overlap < timedelta(0) or overlap > MAX_OVERLAP:
        raise WebhookProblem("overlap")
    fresh = new_secret()
    previous = (endpoint.secrets or {}).get("current")
    endpoint.secrets = {
        "current": fresh,
        "previous": previous if overlap else None,
        "previous_until": (now + overlap).isoformat() if previous and overlap else None,
    }
    return fresh


def check_events(events: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(events))
    if not chosen:
        raise WebhookProblem("events_missing")
    if any(not isinstance(e, str) or not e.startswith("booking.") for e in chosen):
        raise WebhookProblem("events_unknown")
    return chosen


def create_endpoint(
    session: Session,
    calendar_id: int,
    url: str,
    events: Iterable[str],
    description: str = "",
    active: bool = True,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint of the calendar and its secret (to show once)."""
    if unstorable_text(description, multiline=True) is not None:
        raise WebhookProblem("description_characters")
    secret = new_secret()
    endpoint = WebhookEndpoint(
        calendar_id=calendar_id,
        url=check_url(url),
        events=check_events(events),
        description=description.strip()[:500],
        active=active,
        secrets={"current": secret, "previous": None, "previous_until": None},
    )
    session.add(endpoint)
    session.flush()
    session.info.get(_WITHOUT_ENDPOINTS, {}).pop(calendar_id, None)
    return endpoint, secret


# --- planning ------------------------------------------------------------------------------


def event_type(action: str, from_state: str | None, state: str) -> str | None:
    """The webhook event of a history line: ``booking.created``, ``booking.rescheduled``,
    ``booking.reassigned``, or ``booking.<state entered>``; None for a line that is not one
    (an erasure, a consent withdrawn without a change of state)."""
    if action in ("created", "rescheduled", "reassigned"):
        return f"booking.{action}"
    if from_state is not None and from_state != state:
        return f"booking.{state}"
    return None


def booking_data(booking: Booking) -> dict[str, Any]:
    """The booking as an endpoint receives it: the API's fields, without the manage token (a
    client's key to the booking) and without the answers marked sensitive (docs/privacy.md)."""
    zone = booking.timezone
    from zoneinfo import ZoneInfo

    local = ZoneInfo(zone)
    workflow = workflow_of(booking.workflow_version)
    answers = {} if booking.answers_erased_at else dict(booking.answers or {})
    shown = {
        spec.id: answers[spec.id]
        for spec in workflow.custom_fields
        if not spec.sensitive and spec.id in answers
    }
    return {
        "id": booking.uid,
        "status": booking.state,
        "calendar": booking.calendar.slug,
        "service": workflow.id,
        "start": booking.start_at.astimezone(local).isoformat(),
        "end": booking.end_at.astimezone(local).isoformat(),
        "timezone": zone,
        "staff": booking.staff_member.slug,
        "client": {"name": booking.client.name, "email": booking.client.email},
        "meeting_url": booking.meeting_url or workflow.location.url or None,
        "answers": shown,
        "sequence": booking.sequence,
    }


# In a session's ``info``: the calendars known, in its current transaction, to have no active
# endpoint (by calendar id, with that transaction), so that planning a booking's events reads
# no endpoint for them.
_WITHOUT_ENDPOINTS = "bookwise.calendars_without_webhooks"


def note_without_endpoints(session: Session, calendar_id: int) -> None:
    """Remember, until the session's transaction ends, that the calendar ``calendar_id`` has no
    active endpoint (the caller read it so in this transaction)."""
    session.info.setdefault(_WITHOUT_ENDPOINTS, {})[calendar_id] = session.get_transaction()


def _known_without_endpoints(session: Session, calendar_id: int) -> bool:
    noted = session.info.get(_WITHOUT_ENDPOINTS, {}).get(calendar_id)
    return noted is not None and noted is session.get_transaction()


def plan_webhooks(session: Session, booking: Booking, event: str | None, at: datetime) -> int:
    """Add one outbox row per active endpoint of the booking's calendar that wants ``event``
    (in the caller's transaction); how many."""
    if event is None or _known_without_endpoints(session, booking.calendar_id):
        return 0
    endpoints = session.scalars(
        select(WebhookEndpoint).where(
            WebhookEndpoint.calendar_id == booking.calendar_id,
            WebhookEndpoint.active.is_(True),
        )
    ).all()
    wanting = [e for e in endpoints if event in (e.events or [])]
    if not wanting:
        return 0
    body = {"type": event, "timestamp": at.isoformat(), "data": booking_data(booking)}
    for endpoint in wanting:
        session.add(
            _row(
                f"{booking.uid}:hook:{endpoint.id}:{event}#{booking.sequence}",
                endpoint,
                event,
                body,
                at,
                booking.id,
            )
        )
    return len(wanting)


def plan_test(session: Session, endpoint: WebhookEndpoint, at: datetime) -> Notification:
    """A test event for ``endpoint``, delivered like any other."""
    body = {
        "type": TEST_EVENT,
        "timestamp": at.isoformat(),
        "data": {"endpoint": endpoint.id, "calendar_id": endpoint.calendar_id},
    }
    key = f"hook:{endpoint.id}:test:{random.token_hex(8)}"
    row = _row(key, endpoint, TEST_EVENT, body, at, None)
    session.add(row)
    session.flush()
    return row


def _row(
    key: str,
    endpoint: WebhookEndpoint,
    event: str,
    body: dict[str, Any],
    at: datetime,
    booking_id: int | None,
) -> Notification:
    return Notification(
        idempotency_key=key[:200],
        booking_id=booking_id,
        calendar_id=endpoint.calendar_id,
        event=event,
        rule_key=None,
        channel=CHANNEL,
        recipient_kind="endpoint",
        recipient=str(endpoint.id),
        template="",
        locale="en",
        timezone="UTC",
        due_at=at,
        state="pending",
        payload={"body": body},
    )


def delete_endpoint(session: Session, endpoint: WebhookEndpoint) -> int:
    """Delete ``endpoint``; its rows not yet sent are skipped now, with the reason (an endpoint
    added later may get the same id: it never gets what was meant for this one). How many."""
    rows = session.scalars(
        select(Notification).where(
            Notification.channel == CHANNEL,
            Notification.recipient == str(endpoint.id),
            Notification.state.in_(("pending", "failed")),
        )
    ).all()
    for row in rows:
        row.state, row.last_error = "skipped", "the webhook endpoint was deleted"
    session.delete(endpoint)
    return len(rows)


def deliveries(session: Session, endpoint_id: int, limit: int = 50) -> list[Notification]:
    """The endpoint's recent deliveries, newest first."""
    return list(
        session.scalars(
            select(Notification)
            .where(Notification.channel == CHANNEL, Notification.recipient == str(endpoint_id))
            .order_by(Notification.id.desc())
            .limit(limit)
        )
    )


def not_deliverable(session: Session, row: Notification) -> str | None:
    """Why the row's endpoint gets nothing now (deleted, paused), or None."""
    endpoint = _endpoint(session, row.recipient)
    if endpoint is None or endpoint.calendar_id != row.calendar_id:
        return "the webhook endpoint was deleted"
    if not endpoint.active:
        return "the webhook endpoint is paused"
    return None


def _endpoint(session: Session, recipient: str) -> WebhookEndpoint | None:
    if not recipient.isdigit():
        return None
    return session.get(WebhookEndpoint, int(recipient))


# --- delivering ----------------------------------------------------------------------------


class CalendarWebhookChannel(Channel):
    """Posts a calendar's webhook row to its endpoint, signed with its valid secrets. Part of
    the core, always there (the Dispatcher adds it): the endpoints are the calendars' own."""

    name = CHANNEL

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Callable[[], datetime] = utcnow,
        timeout: float = 10,
    ) -> None:
        self.sessions, self.clock, self.timeout = sessions, clock, timeout

    def send(self, message: OutgoingMessage) -> str:
        with self.sessions() as session:
            endpoint = _endpoint(session, message.recipient)
            if endpoint is None:
                raise ChannelError("the webhook endpoint was deleted", temporary=False)
            url, stored = endpoint.url, dict(endpoint.secrets or {})
        body = json.dumps(
            message.data.get("body", {}), ensure_ascii=False, separators=(",", ":")
        ).encode("utf-8")
        now = self.clock()
        timestamp = int(now.timestamp())
        signatures = " ".join(
            signature(secret, message.message_uid, timestamp, body)
            for secret in valid_secrets(stored, now)
        )
        headers = {
            "Content-Type": "application/json",
            "webhook-id": message.message_uid,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signatures,
        }
        answer = post(url, body, headers, self.timeout, "the endpoint")
        return f"http-{answer.status}"
