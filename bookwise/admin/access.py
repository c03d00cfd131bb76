"""Who may see and do what in the back office.

A user has a role per calendar: ``admin`` (everything in that calendar), ``viewer`` (reads
everything, changes nothing) or ``staff`` (their own bookings and time off). A superadmin is
admin of every calendar and also manages calendars and users. Every view asks this module; a
refusal is recorded in the audit log (who tried what on which calendar) and answered with 403.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn

from flask import abort, g, request, session
from flask_login import current_user
from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.orm import Session

from bookwise.accounts.models import CalendarRole, User
from bookwise.audit.services import Actor, record
from bookwise.calendars.models import Calendar
from bookwise.web import instance

# read: any role (a staff member then sees only their own bookings and time off); view: the
# calendar's settings and configuration (viewers and admins); staff: act on bookings; admin: all.
Need = Literal["read", "view", "staff", "admin"]
CURRENT_CALENDAR = "admin_calendar"


@dataclass(frozen=True)
class Access:
    """The signed-in user's rights, read once per request."""

    user_id: int
    email: str
    superadmin: bool
    roles: Mapping[int, str] = field(default_factory=dict)
    staff_ids: Mapping[int, int | None] = field(default_factory=dict)

    @property
    def actor(self) -> str:
        return self.email

    @property
    def booking_actor(self) -> str:
        """How the booking history names this user."""
        return f"user:{self.user_id}"

    def role(self, calendar_id: int | None) -> str | None:
        """The user's role in a calendar (``admin`` for a superadmin; ``None``: no role)."""
        if calendar_id is None:
            return None
        if self.superadmin:
            return "admin"
        return self.roles.get(calendar_id)

    def allows(self, calendar_id: int | None, need: Need) -> bool:
        """Whether the user's role in the calendar gives ``need`` (see :data:`Need`)."""
        role = self.role(calendar_id)
        if role is None:
            return False
        if need == "read":
            return True
        if need == "view":
            return role in ("viewer", "admin")
        if need == "staff":
            return role in ("staff", "admin")
        return role == "admin"

    def staff_id(self, calendar_id: int) -> int | None:
        """The staff member a ``staff`` user is in that calendar (None for other roles)."""
        if self.role(calendar_id) != "staff":
            return None
        return self.staff_ids.get(calendar_id)

    def calendar_ids(self, need: Need = "read") -> list[int] | None:
        """The calendars where the user has ``need``; ``None`` means every calendar."""
        if self.superadmin:
            return None
        return sorted(c for c in self.roles if self.allows(c, need))

    def has_any(self, need: Need = "read") -> bool:
        return self.superadmin or bool(self.calendar_ids(need))


def read_access(session: Session, user: User) -> Access:
    rows = session.execute(
        select(CalendarRole.calendar_id, CalendarRole.role, CalendarRole.staff_id).where(
            CalendarRole.user_id == user.id
        )
    ).all()
    return Access(
        user_id=user.id,
        email=user.email,
        superadmin=user.is_superadmin,
        roles={calendar_id: role for calendar_id, role, _ in rows},
        staff_ids={calendar_id: staff_id for calendar_id, _, staff_id in rows},
    )


def current_access() -> Access | None:
    """The signed-in user's :class:`Access`, or None for a visitor."""
    if not current_user.is_authenticated:
        return None
    if "admin_access" not in g:
        from bookwise.web import db_session

        g.admin_access = read_access(db_session(), current_user._get_current_object())
    access: Access = g.admin_access
    return access


def require_access() -> Access:
    access = current_access()
    if access is None:
        abort(401)
    return access


def visible_calendars(session: Session, access: Access, need: Need = "read") -> list[Calendar]:
    """The calendars the user may see (or act in, with ``need``), by name."""
    query = select(Calendar).order_by(Calendar.name, Calendar.id)
    ids = access.calendar_ids(need)
    if ids is not None:
        query = query.where(Calendar.id.in_(ids))
    return list(session.scalars(query))


def current_calendar(session: Session, access: Access) -> Calendar | None:
    """The calendar the back office shows (the header's switcher): the one chosen last, else the
    first the user may see. ``None`` when they may see none."""
    chosen = session_calendar_id()
    if chosen is not None and access.allows(chosen, "read"):
        calendar = session.get(Calendar, chosen)
        if calendar is not None:
            return calendar
    calendars = visible_calendars(session, access)
    return calendars[0] if calendars else None


def session_calendar_id() -> int | None:
    value = session.get(CURRENT_CALENDAR)
    return value if isinstance(value, int) else None


def choose_calendar(calendar_id: int) -> None:
    session[CURRENT_CALENDAR] = calendar_id


def deny(
    access: Access | None,
    what: str,
    calendar_id: int | None = None,
    details: Mapping[str, Any] | None = None,
) -> NoReturn:
    """Record the refusal in the audit log (in its own transaction) and answer 403."""
    database = instance().database
    with database.sessions() as audit_session:
        record(
            audit_session,
            "access.denied",
            Actor(
                access.actor if access else "anonymous",
                user_id=access.user_id if access else None,
                ip=request.remote_addr,
            ),
            calendar_id=calendar_id if _calendar_exists(audit_session, calendar_id) else None,
            details={
                "what": what,
                "method": request.method,
                "path": request.path[:300],
                **({"calendar": calendar_id} if calendar_id is not None else {}),
                **(details or {}),
            },
        )
        audit_session.commit()
    abort(403)


def _calendar_exists(session: Session, calendar_id: int | None) -> bool:
    return calendar_id is not None and session.get(Calendar, calendar_id) is not None


def check(access: Access, calendar_id: int | None, need: Need, what: str) -> None:
    """403 (recorded) unless the user has ``need`` in the calendar."""
    if not access.allows(calendar_id, need):
        deny(access, what, calendar_id)


def check_superadmin(access: Access, what: str) -> None:
    if not access.superadmin:
        deny(access, what)


def bookings_visible(access: Access, calendar_id: int) -> ColumnElement[bool]:
    """The bookings of a calendar the user may see: all of them, or a staff member's own."""
    from bookwise.bookings.models import Booking

    clause = Booking.calendar_id == calendar_id
    if access.role(calendar_id) == "staff":
        clause = and_(clause, Booking.staff_id == (access.staff_id(calendar_id) or -1))
    return clause


def may_see_booking(access: Access, calendar_id: int, staff_id: int) -> bool:
    role = access.role(calendar_id)
    if role == "staff":
        return access.staff_id(calendar_id) == staff_id
    return role is not None
