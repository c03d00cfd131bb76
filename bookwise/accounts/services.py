"""Users: creation, passwords, sign-in with throttling, roles per calendar."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash
from zxcvbn import zxcvbn

from bookwise.accounts.models import CALENDAR_ROLES, CalendarRole, User
from bookwise.audit.services import Actor, record
from bookwise.calendars.models import StaffMember
from bookwise.db import is_busy, utcnow
from bookwise.errors import BookwiseError

MIN_PASSWORD_LENGTH = 10
# zxcvbn's score, 0 to 4: below 3, a password is one of the common ones (or close to one), a
# keyboard row, a date or a sequence, whatever its length ("password12").
MIN_PASSWORD_SCORE = 3
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
# How long a sign-in waits for the other sign-ins of the same account (PostgreSQL).
SIGN_IN_LOCK_TIMEOUT_MS = 5000
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class AccountError(BookwiseError):
    """A user cannot be created or changed as asked."""


class WeakPassword(AccountError):
    """The password is too short (``too_short``) or too easy to guess; ``feedback`` is zxcvbn's
    advice then (English sentences, for the command line)."""

    def __init__(self, message: str, feedback: Sequence[str] = (), *, too_short: bool) -> None:
        super().__init__(" ".join([message, *feedback]))
        self.feedback = list(feedback)
        self.too_short = too_short


class NoSuchStaffMember(AccountError):
    """The staff role names a staff member the calendar does not have."""

    def __init__(self, slug: str) -> None:
        super().__init__(f"no staff member {slug!r} in this calendar")
        self.slug = slug


class CannotDeactivateSelf(AccountError):
    """A user tried to deactivate their own account (they would lock themselves out)."""


class SignInFailed(BookwiseError):
    """Wrong e-mail or password, or the account is locked for a while (the same answer)."""


class SignInBusy(BookwiseError):
    """Other sign-ins of the same account held it too long: nothing was checked; try again."""

    retry_after = 2  # seconds, for Retry-After


def hash_password(password: str) -> str:
    """A salted scrypt hash (werkzeug's default KDF)."""
    return generate_password_hash(password, method="scrypt")


def check_password_strength(password: str, user_inputs: Sequence[str] = ()) -> None:
    """:class:`WeakPassword` when the password is under 10 characters or easy to guess (a
    common password, a word with digits, something like ``user_inputs``: the e-mail, the name)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(
            f"the password must have at least {MIN_PASSWORD_LENGTH} characters", too_short=True
        )
    # zxcvbn's time grows with the length; 100 characters are more than any common password.
    verdict = zxcvbn(password[:100], user_inputs=[i for i in user_inputs if i])
    if verdict["score"] < MIN_PASSWORD_SCORE:
        advice = verdict["feedback"]
        raise WeakPassword(
            "the password is too easy to guess.",
            [t for t in [advice["warning"], *advice["suggestions"]] if t],
            too_short=False,
        )


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise AccountError(f"{email!r} is not an e-mail address")
    return email


def has_superadmin(session: Session) -> bool:
    return session.scalar(select(User.id).where(User.is_superadmin).limit(1)) is not None


def find_user(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


def create_user(
    session: Session,
    email: str,
    password: str,
    *,
    name: str = "",
    superadmin: bool = False,
    actor: str = "cli",
) -> User:
    """Create a user; :class:`AccountError` when the e-mail is taken, :class:`WeakPassword` when
    the password is too short or too easy to guess."""
    email = normalise_email(email)
    check_password_strength(password, [email, name])
    if find_user(session, email) is not None:
        raise AccountError(f"a user with the e-mail {email} already exists")
    user = User(
        email=email, name=name, password_hash=hash_password(password), is_superadmin=superadmin
    )
    session.add(user)
    session.flush()
    record(
        session,
        "user.created",
        actor,
        object_type="user",
        object_id=user.id,
        details={"email": email, "superadmin": superadmin},
    )
    return user


def grant_role(
    session: Session, user: User, calendar_id: int, role: str, actor: Actor | str = "cli"
) -> CalendarRole:
    """Give ``user`` ``role`` in a calendar (replacing the role they had there)."""
    if role not in CALENDAR_ROLES:
        raise AccountError(f"unknown role {role!r}; roles are {', '.join(CALENDAR_ROLES)}")
    existing = session.scalar(
        select(CalendarRole).where(
            CalendarRole.user_id == user.id, CalendarRole.calendar_id == calendar_id
        )
    )
    if existing is None:
        existing = CalendarRole(user_id=user.id, calendar_id=calendar_id, role=role)
        session.add(existing)
    else:
        existing.role = role
    session.flush()
    record(
        session,
        "user.role",
        actor,
        object_type="user",
        object_id=user.id,
        calendar_id=calendar_id,
        details={"role": role},
    )
    return existing


def set_calendar_role(
    session: Session,
    user: User,
    calendar_id: int,
    role: str,
    *,
    staff_slug: str = "",
    actor: Actor | str,
) -> CalendarRole:
    """Give ``user`` ``role`` in a calendar, as the back office's role form does: the staff role
    is tied to the staff member ``staff_slug`` of that calendar (:class:`NoSuchStaffMember` when
    there is none, and nothing changes), any other role to no staff member."""
    staff_id = None
    if role == "staff":
        staff_id = session.scalar(
            select(StaffMember.id).where(
                StaffMember.calendar_id == calendar_id, StaffMember.slug == staff_slug
            )
        )
        if staff_id is None:
            raise NoSuchStaffMember(staff_slug)
    granted = grant_role(session, user, calendar_id, role, actor)
    granted.staff_id = staff_id
    return granted


def revoke_role(session: Session, role: CalendarRole, actor: Actor | str) -> None:
    """Take a user's role in a calendar away (recorded with the role they had)."""
    record(
        session,
        "user.role_removed",
        actor,
        object_type="user",
        object_id=role.user_id,
        calendar_id=role.calendar_id,
        details={"role": role.role},
    )
    session.delete(role)


def set_user_active(session: Session, user: User, active: bool, actor: Actor) -> None:
    """Let ``user`` sign in again, or not any more; either way the lockout after failed
    sign-ins is lifted. :class:`CannotDeactivateSelf` when ``actor`` is ``user``."""
    if user.id == actor.user_id:
        raise CannotDeactivateSelf("you cannot deactivate yourself")
    user.active = active
    user.locked_until = None
    user.failed_logins = 0
    if not active:
        end_sessions(user)
    record(
        session,
        "user.activated" if active else "user.deactivated",
        actor,
        object_type="user",
        object_id=user.id,
    )


def change_password(session: Session, user: User, current: str, new: str) -> None:
    """Replace the user's password after checking the current one; :class:`AccountError` when
    it is wrong, :class:`WeakPassword` when the new one is too short or too easy to guess.
    Other sessions of the user end (see ``get_id``)."""
    if not check_password_hash(user.password_hash, current):
        raise AccountError("the current password is not right")
    check_password_strength(new, [user.email, user.name])
    if new == current:
        raise AccountError("the new password must differ from the current one")
    user.password_hash = hash_password(new)
    end_sessions(user)
    record(session, "user.password", user.email, object_type="user", object_id=user.id)


def end_sessions(user: User) -> None:
    """End every session of ``user``, on every device, copied cookies included: each session
    carries the version it was opened under (see :meth:`User.get_id`), and this raises it."""
    user.session_version = (user.session_version or 0) + 1


def authenticate(session: Session, email: str, password: str, now: datetime | None = None) -> User:
    """The user with this e-mail and password, or :class:`SignInFailed`.

    After ``MAX_FAILED_LOGINS`` wrong passwords the account is locked for ``LOCKOUT``. A locked
    account answers exactly like a wrong password, after checking the password all the same, so
    neither the words nor the time tell a locked address from an unknown one (the lock is in the
    audit log, ``user.locked``). The caller begins the transaction as a writer
    (:func:`bookwise.db.begin_write`) and commits it, failed or not: attempts on one account then
    wait for each other (``FOR UPDATE`` on PostgreSQL, the write lock on SQLite) and none of them
    is checked against a stale counter. :class:`SignInBusy` when the account could not be had in
    time.
    """
    now = now or utcnow()
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SET LOCAL lock_timeout = {int(SIGN_IN_LOCK_TIMEOUT_MS)}"))
    try:
        user = session.scalar(
            select(User)
            .where(func.lower(User.email) == email.strip().lower())
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    except OperationalError as exc:
        if is_busy(exc):
            raise SignInBusy("the account is busy; try again in a moment") from None
        raise
    if user is None:
        # Spend the same time as a real check, so timing does not reveal which e-mails exist.
        check_password_hash(_dummy_hash(), password)
        raise SignInFailed("wrong e-mail or password")
    right = check_password_hash(user.password_hash, password)
    if user.locked_until is not None and user.locked_until > now:
        raise SignInFailed("wrong e-mail or password")
    if not right or not user.active:
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until = now + LOCKOUT
            user.failed_logins = 0
            record(session, "user.locked", user.email, object_type="user", object_id=user.id)
        raise SignInFailed("wrong e-mail or password")
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    return user


@cache
def _dummy_hash() -> str:
    return hash_password("not a real password, only for constant timing")
