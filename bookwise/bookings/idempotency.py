"""``Idempotency-Key`` on the API's creating POSTs (docs/api.md, "Idempotency"): a retried
request with the same key gets the first one's response again instead of a second booking.

The design, and why it is safe with many web processes at once:

- The key's row (:class:`~bookwise.bookings.models.IdempotencyKey`, unique on ``scope`` and
  ``key``) is inserted by :func:`claim` in the SAME write transaction as the booking, before the
  booking is made, and :func:`remember` stores the response in it before the commit.
- A concurrent request with the same key therefore waits: on PostgreSQL its insert blocks on the
  unique index until the first transaction ends (``ON CONFLICT DO NOTHING`` then finds the
  committed row), on SQLite it waits for the writer lock (``BEGIN IMMEDIATE``). It then reads
  the first one's row and replays its response: one booking, the same answer twice.
- When the creation fails (a taken slot, wrong answers), its transaction rolls back with the key:
  only successful creations are remembered, and a retry may succeed later.
- The same key with another request (another body, or another endpoint's path in the hash) is
  :class:`KeyReused` (422 ``idempotency_key_reused``).
- Keys are kept ``api.idempotency_hours`` (24 by default): :func:`purge_expired` (the scheduled
  job ``purge-idempotency-keys``) deletes older ones, after which the key is new again.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from bookwise.bookings.models import IdempotencyKey
from bookwise.db import unit_of_work
from bookwise.errors import BookwiseError

MAX_KEY_LENGTH = 255
_KEY = re.compile(r"[\x20-\x7e]+")
# The response headers worth replaying (the body and status are kept whole).
KEPT_HEADERS = ("Location",)


class InvalidKey(BookwiseError):
    """An ``Idempotency-Key`` that is not 1 to 255 printable ASCII characters."""


class KeyReused(BookwiseError):
    """The key was already used with another request (another body) on this endpoint."""


def check_key(value: str) -> str:
    """``value`` when it is a usable key, else :class:`InvalidKey` saying why."""
    if not value:
        raise InvalidKey("the Idempotency-Key header is empty: give 1 to 255 characters")
    if len(value) > MAX_KEY_LENGTH:
        raise InvalidKey(
            f"the Idempotency-Key is {len(value)} characters long: give at most {MAX_KEY_LENGTH}"
        )
    if not _KEY.fullmatch(value):
        raise InvalidKey(
            "the Idempotency-Key must be printable ASCII (letters, digits, punctuation, "
            "spaces): a UUID is a good choice"
        )
    return value


def request_hash(method: str, path: str, body: Any) -> str:
    """The SHA-256 (hex) of a request: its method, path and body as canonical JSON (keys sorted,
    no spaces, ASCII escapes), so that the same JSON written another way is the same request."""
    text = json.dumps(
        [method.upper(), path, body], sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )
    return hashlib.sha256(text.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class IdempotentRequest:
    """A request that came with a key: where (``scope``: method and path, later the token),
    the key, and the request's hash."""

    scope: str
    key: str
    hash: str
    token_id: int | None = None


@dataclass(frozen=True)
class StoredResponse:
    """The response a key's first request got, to replay."""

    status: int
    headers: dict[str, str]
    body: Any


def claim(session: Session, asked: IdempotentRequest, now: datetime) -> StoredResponse | None:
    """Take the key for this transaction (None: go on and create, then :func:`remember`), or
    the response of the request that took it first (replay it); :class:`KeyReused` when that
    request was another one. Call it first in the creation's write transaction: a concurrent
    request with the same key waits here until this transaction ends."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    inserted = session.execute(
        insert(IdempotencyKey)
        .values(
            scope=asked.scope,
            key=asked.key,
            token_id=asked.token_id,
            request_hash=asked.hash,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["scope", "key"])
        .returning(IdempotencyKey.id)
    ).scalar_one_or_none()
    if inserted is not None:  # ours: no row came back when the key was taken
        return None
    row = session.execute(
        select(
            IdempotencyKey.request_hash,
            IdempotencyKey.response_status,
            IdempotencyKey.response_headers,
            IdempotencyKey.response_body,
        ).where(IdempotencyKey.scope == asked.scope, IdempotencyKey.key == asked.key)
    ).one()
    if row.request_hash != asked.hash:
        raise KeyReused(
            "this Idempotency-Key was already used with another request on this endpoint: "
            "use a new key for a new request"
        )
    if row.response_status is None:  # pragma: no cover - a committed row always has one
        raise RuntimeError("an idempotency key was committed without its response")
    return StoredResponse(row.response_status, dict(row.response_headers or {}), row.response_body)


def remember(
    session: Session,
    asked: IdempotentRequest,
    status: int,
    headers: dict[str, str],
    body: Any,
) -> None:
    """Store the response of the creation in the key taken by :func:`claim`, before the commit
    (the body encrypted: it holds the client's manage token and personal data)."""
    kept = {name: value for name, value in headers.items() if name in KEPT_HEADERS}
    session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.scope == asked.scope, IdempotencyKey.key == asked.key)
        .values(response_status=status, response_headers=kept, response_body=body)
    )


def purge_expired(factory: sessionmaker[Session], now: datetime, hours: int) -> int:
    """Delete the keys older than ``hours`` (one statement: safe in several processes at once);
    how many were deleted."""
    with unit_of_work(factory, write=True) as session:
        result = session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.created_at < now - timedelta(hours=hours))
        )
    return int(getattr(result, "rowcount", 0) or 0)
