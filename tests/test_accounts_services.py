"""The account services the back office's user pages call, without an app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from bookwise.accounts.models import CalendarRole, User
from bookwise.accounts.services import (
    CannotDeactivateSelf,
    NoSuchStaffMember,
    create_user,
    revoke_role,
    set_calendar_role,
    set_user_active,
)
from bookwise.audit.models import AuditEntry
from bookwise.audit.services import Actor
from bookwise.calendars.models import Calendar, StaffMember
from tests.conftest import Loaded

PASSWORD = "a long enough password"


@pytest.fixture
def session(demo: Loaded) -> Iterator[Session]:
    with demo.database.sessions() as session:
        yield session


@pytest.fixture
def admin(session: Session) -> Actor:
    """A superadmin signed in to the back office, as the audit log names them."""
    user = create_user(session, "super@bw.example", PASSWORD, superadmin=True)
    return Actor(user.email, user_id=user.id, ip="192.0.2.7")


def _calendar_id(session: Session) -> int:
    calendar_id = session.scalar(sa.select(Calendar.id).where(Calendar.slug == "northwind-hr"))
    assert calendar_id is not None
    return calendar_id


def _entries(session: Session, action: str) -> list[AuditEntry]:
    return list(session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action)))


def test_the_staff_role_is_tied_to_the_named_staff_member(session: Session) -> None:
    user = create_user(session, "cleo@bw.example", PASSWORD)
    calendar_id = _calendar_id(session)
    role = set_calendar_role(
        session, user, calendar_id, "staff", staff_slug="sara", actor="super@bw.example"
    )
    sara = session.scalar(sa.select(StaffMember.id).where(StaffMember.slug == "sara"))
    assert (role.role, role.staff_id) == ("staff", sara)
    # Another role in the same calendar replaces it, tied to no staff member.
    again = set_calendar_role(session, user, calendar_id, "viewer", actor="super@bw.example")
    assert again.id == role.id and (again.role, again.staff_id) == ("viewer", None)
    assert [e.details for e in _entries(session, "user.role")] == [
        {"role": "staff"},
        {"role": "viewer"},
    ]


def test_a_staff_role_naming_no_staff_member_changes_nothing(session: Session) -> None:
    user = create_user(session, "cleo@bw.example", PASSWORD)
    with pytest.raises(NoSuchStaffMember) as refused:
        set_calendar_role(
            session, user, _calendar_id(session), "staff", staff_slug="nobody", actor="super"
        )
    assert refused.value.slug == "nobody"
    assert (
        session.scalars(sa.select(CalendarRole).where(CalendarRole.user_id == user.id)).all() == []
    )
    assert _entries(session, "user.role") == []


def test_revoking_a_role_records_the_role_it_was(session: Session, admin: Actor) -> None:
    user = create_user(session, "cleo@bw.example", PASSWORD)
    calendar_id = _calendar_id(session)
    role = set_calendar_role(session, user, calendar_id, "admin", actor="super")
    session.flush()
    revoke_role(session, role, admin)
    session.flush()
    assert session.get(CalendarRole, role.id) is None
    (entry,) = _entries(session, "user.role_removed")
    assert (entry.object_type, entry.object_id, entry.calendar_id) == (
        "user",
        str(user.id),
        calendar_id,
    )
    assert (entry.actor, entry.user_id, entry.ip, entry.details) == (
        admin.name,
        admin.user_id,
        admin.ip,
        {"role": "admin"},
    )


def test_deactivating_lifts_the_lockout_and_is_recorded(session: Session, admin: Actor) -> None:
    user = create_user(session, "cleo@bw.example", PASSWORD)
    user.failed_logins = 3
    set_user_active(session, user, False, admin)
    assert (user.active, user.failed_logins, user.locked_until) == (False, 0, None)
    set_user_active(session, user, True, admin)
    assert user.active
    session.flush()
    assert [e.action for e in session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id))][
        -2:
    ] == ["user.deactivated", "user.activated"]


def test_nobody_deactivates_themselves(session: Session) -> None:
    user = create_user(session, "cleo@bw.example", PASSWORD)
    session.flush()
    with pytest.raises(CannotDeactivateSelf):
        set_user_active(session, user, False, Actor(user.email, user_id=user.id))
    assert session.get(User, user.id).active  # type: ignore[union-attr]
    assert _entries(session, "user.deactivated") == []
