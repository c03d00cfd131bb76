"""People who sign in: users, and their role in each calendar."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bookwise.db import Base, utcnow

CALENDAR_ROLES = ("admin", "viewer", "staff")


class User(Base):
    """A back-office user. ``is_superadmin`` manages calendars and users of the whole instance."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    is_superadmin: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    locale: Mapped[str | None] = mapped_column(String(16))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    # Written into each session cookie and checked on every request: raising it (sign-out,
    # a new password, an admin ending the sessions) ends every copy of the older cookies.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    roles: Mapped[list[CalendarRole]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    # The four members Flask-Login asks of a user object.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        """The id kept in the session cookie, with a fingerprint of the password hash and of
        ``session_version``: a new password, signing out or an admin ending the user's sessions
        makes every cookie issued before useless, copies included."""
        return f"{self.id}.{self.session_fingerprint}"

    @property
    def session_fingerprint(self) -> str:
        material = f"{self.password_hash}\n{self.session_version or 0}"
        return hashlib.sha256(material.encode("utf-8")).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"<User {self.email}>"


class CalendarRole(Base):
    """A user's role in one calendar: admin, viewer (read only) or staff (their own bookings)."""

    __tablename__ = "calendar_roles"
    __table_args__ = (
        UniqueConstraint("user_id", "calendar_id"),
        CheckConstraint("role IN ('admin', 'viewer', 'staff')", name="role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    calendar_id: Mapped[int] = mapped_column(ForeignKey("calendars.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    staff_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_members.id", ondelete="SET NULL")
    )

    user: Mapped[User] = relationship(back_populates="roles")


class ApiToken(Base):
    """A personal API token: it acts as its user, within one calendar and for reading only or
    for reading and writing (never beyond the user's own role there). Only a SHA-256 of the
    secret is kept (the secret has 256 random bits: a slow hash would add nothing); ``prefix``
    (its first characters) tells tokens apart in lists. Revoked: refused at once, kept for the
    record."""

    __tablename__ = "api_tokens"
    __table_args__ = (CheckConstraint("scope IN ('read', 'write')", name="scope"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("calendars.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200), default="")
    scope: Mapped[str] = mapped_column(String(8))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()
