"""Personal API tokens (issue 19): created for a user, a calendar and a scope (``read`` or
``write``), shown once, kept as a SHA-256 of the secret, revocable, with the time of last use.

A token is sent as ``Authorization: Bearer bw_...``. It acts as its user within its calendar,
and never beyond what the user may do there: a ``write`` token of a calendar's viewer only
reads. :func:`authenticate` finds the token of a secret (comparing digests, so the time it
takes says nothing of the secret) and refuses a revoked one or one whose user is deactivated
or has lost their role in the calendar.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bookwise.accounts.models import ApiToken, CalendarRole, User
from bookwise.calendars.models import Calendar
from bookwise.errors import NotFound

PREFIX = "bw_"
SCOPES = ("read", "write")
# last_used_at is written at most this often per token (a busy integration must not turn every
# read into a write).
TOUCH_EVERY = timedelta(minutes=1)


class TokenError(ValueError):
    """A token that cannot be created as asked (unknown user or calendar, no role, scope)."""


@dataclass(frozen=True)
class TokenAccess:
    """What a request's token allows: its calendar, and whether it may write (its scope, and
    its user's role there)."""

    token_id: int
    user_id: int
    actor: str  # how the booking history names who acted
    calendar_id: int
    role: str  # the user's role in the calendar (admin for a superadmin)
    scope: str
    staff_id: int | None = None  # a staff member's own bookings only (role staff)
    last_used_at: datetime | None = None

    @property
    def may_write(self) -> bool:
        return self.scope == "write" and self.role in ("admin", "staff")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


def role_of(session: Session, user: User, calendar_id: int) -> tuple[str, int | None] | None:
    """The user's role in the calendar and, for staff, their staff member (admin for a
    superadmin; None: no role)."""
    if user.is_superadmin:
        return "admin", None
    found = session.execute(
        select(CalendarRole.role, CalendarRole.staff_id).where(
            CalendarRole.user_id == user.id, CalendarRole.calendar_id == calendar_id
        )
    ).first()
    return (found[0], found[1]) if found is not None else None


def create_token(
    session: Session, email: str, calendar_slug: str, scope: str, name: str, now: datetime
) -> tuple[ApiToken, str]:
    """A new token (and its secret, to show once) for the user of ``email`` in the calendar of
    ``calendar_slug``; :class:`TokenError` when the user, the calendar or their role there is
    missing, or the scope is not read or write."""
    if scope not in SCOPES:
        raise TokenError(f"the scope must be read or write, not {scope!r}")
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or not user.active:
        raise TokenError(f"no active user has the e-mail address {email!r}")
    calendar = session.scalar(select(Calendar).where(Calendar.slug == calendar_slug))
    if calendar is None:
        raise TokenError(f"there is no calendar {calendar_slug!r}")
    if role_of(session, user, calendar.id) is None:
        raise TokenError(f"{user.email} has no role in the calendar {calendar.slug!r}")
    secret = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        calendar_id=calendar.id,
        name=name.strip()[:200],
        scope=scope,
        secret_hash=digest(secret),
        prefix=secret[: len(PREFIX) + 6],
        created_at=now,
    )
    session.add(token)
    session.flush()
    return token, secret


def authenticate(session: Session, secret: str) -> TokenAccess:
    """The access a token's secret gives; :class:`NotFound` for an unknown, revoked or
    powerless token (the caller answers 401). Reads only: see :func:`touch`."""
    if not secret.startswith(PREFIX) or len(secret) > 200 or not secret.isascii():
        raise NotFound("no such token")
    token = session.scalar(select(ApiToken).where(ApiToken.secret_hash == digest(secret)))
    if token is None or token.revoked_at is not None or not token.user.active:
        raise NotFound("no such token")
    found = role_of(session, token.user, token.calendar_id)
    if found is None:
        raise NotFound("no such token")
    role, staff_id = found
    return TokenAccess(
        token_id=token.id,
        user_id=token.user_id,
        actor=f"user:{token.user_id}",
        calendar_id=token.calendar_id,
        role=role,
        scope=token.scope,
        staff_id=staff_id if role == "staff" else None,
        last_used_at=token.last_used_at,
    )


def needs_touch(access: TokenAccess, now: datetime) -> bool:
    """Whether the token's last use is worth writing down (at most once a minute)."""
    return access.last_used_at is None or now - access.last_used_at >= TOUCH_EVERY


def touch(session: Session, token_id: int, now: datetime) -> None:
    """Record the token's use at ``now`` (a write of its own, once a minute at most)."""
    token = session.get(ApiToken, token_id)
    if token is not None:
        token.last_used_at = now


def revoke_token(session: Session, token_id: int, now: datetime) -> ApiToken:
    """Revoke a token (refused from the next request on); revoking twice changes nothing."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound("no such token")
    if token.revoked_at is None:
        token.revoked_at = now
    session.flush()
    return token


def tokens_of(session: Session, user_id: int | None = None) -> list[ApiToken]:
    """Tokens, newest first (a user's, or every one)."""
    query = select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    if user_id is not None:
        query = query.where(ApiToken.user_id == user_id)
    return list(session.scalars(query))
