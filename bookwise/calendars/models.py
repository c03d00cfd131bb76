"""Calendars (a business), their staff, hours, time off and the services they offer."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bookwise.db import Base, utcnow

if TYPE_CHECKING:
    from bookwise.workflows.models import WorkflowRecord


class Calendar(Base):
    """A booking calendar: one business, with its own time zone, hours, staff and page."""

    __tablename__ = "calendars"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[dict[str, str]] = mapped_column(default=dict)
    timezone: Mapped[str] = mapped_column(String(64))
    default_locale: Mapped[str] = mapped_column(String(16), default="en")
    address: Mapped[str | None] = mapped_column(String(500))
    phone: Mapped[str | None] = mapped_column(String(40))
    reply_to: Mapped[str | None] = mapped_column(String(320))
    # Booking page settings (Microsoft Bookings' "Booking page" tab).
    published: Mapped[bool] = mapped_column(Boolean, default=True)
    search_indexing: Mapped[bool] = mapped_column(Boolean, default=True)
    sign_in_required: Mapped[bool] = mapped_column(Boolean, default=False)
    show_business_timezone: Mapped[bool] = mapped_column(Boolean, default=False)
    embed_origins: Mapped[list[str]] = mapped_column(default=list)
    # Whether the calendar's subscribed feeds (FeedLink) show each booking's client by name;
    # off, an event says only the service ("Patient visit"), for health and HR calendars.
    feed_client_names: Mapped[bool] = mapped_column(Boolean, default=False)
    # The non-core plugins this calendar uses, by name; None: every plugin enabled on the
    # instance (the default, so that enabling a plugin reaches the calendars that did not choose).
    plugins: Mapped[list[str] | None] = mapped_column(
        JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
    )
    # Quiet hours of the calendar (``{"from": "21:00", "to": "08:00", "email": false}``, local
    # to each recipient): text messages due inside them wait for their end. NULL: none, unless
    # the workflow sets its own.
    quiet_hours: Mapped[dict[str, Any] | None] = mapped_column(
        JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
    )
    # Raised by the database (triggers, migration 0022) in the transaction that changes the
    # calendar's working hours: the slot cache's entries name the version they were found at
    # (bookwise.availability.cache). Never written by the code.
    slots_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    staff: Mapped[list[StaffMember]] = relationship(
        back_populates="calendar", order_by="StaffMember.id", cascade="all, delete-orphan"
    )
    services: Mapped[list[Service]] = relationship(
        back_populates="calendar", order_by="Service.id", cascade="all, delete-orphan"
    )
    hours: Mapped[list[WorkingHours]] = relationship(
        primaryjoin="and_(WorkingHours.calendar_id == Calendar.id, WorkingHours.staff_id == None)",
        order_by="(WorkingHours.weekday, WorkingHours.start_minute)",
        viewonly=True,
    )

    def uses_plugin(self, name: str) -> bool:
        """Whether the non-core plugin ``name`` works for this calendar: its bookings' events,
        checks, meeting links and messages. (Core plugins are always used: callers check
        ``PluginInfo.core`` first.)"""
        return self.plugins is None or name in self.plugins

    def __repr__(self) -> str:
        return f"<Calendar {self.slug}>"


class StaffMember(Base):
    """A person who can be booked. Their e-mail can be any address (no account needed)."""

    __tablename__ = "staff_members"
    __table_args__ = (UniqueConstraint("calendar_id", "slug"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("calendars.id", ondelete="CASCADE"))
    slug: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(40))
    tags: Mapped[list[str]] = mapped_column(default=list)
    bookable: Mapped[bool] = mapped_column(Boolean, default=True)
    # pending until the member accepts the invitation e-mail; declined members get no bookings.
    invitation: Mapped[str] = mapped_column(String(16), default="accepted")
    uses_calendar_hours: Mapped[bool] = mapped_column(Boolean, default=True)
    # "file" when a calendar data file manages it, "admin" when added in the back office.
    origin: Mapped[str] = mapped_column(String(16), default="file")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Removed in the back office: kept for the history of their bookings, never bookable again.
    removed_at: Mapped[datetime | None]
    # Raised by the database (triggers, migration 0022) in the transaction of a change of the
    # member's time longer than a month (a long leave); shorter ones count per day
    # (SlotVersion). See Calendar's.
    slots_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    calendar: Mapped[Calendar] = relationship(back_populates="staff")
    hours: Mapped[list[WorkingHours]] = relationship(
        back_populates="staff_member",
        order_by="(WorkingHours.weekday, WorkingHours.start_minute)",
        cascade="all, delete-orphan",
    )
    time_off: Mapped[list[TimeOff]] = relationship(
        back_populates="staff_member", order_by="TimeOff.start_at", cascade="all, delete-orphan"
    )
    sources: Mapped[list[CalendarSource]] = relationship(
        back_populates="staff_member", order_by="CalendarSource.id", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"<StaffMember {self.slug}>"


class WorkingHours(Base):
    """One working range on a weekday, in the calendar's time zone, for the calendar or a member.

    Minutes since midnight, so that 24:00 can close a day.
    """

    __tablename__ = "working_hours"
    __table_args__ = (
        CheckConstraint("weekday >= 0 AND weekday <= 6", name="weekday"),
        CheckConstraint(
            "start_minute >= 0 AND start_minute < end_minute AND end_minute <= 1440", name="range"
        ),
        Index("ix_working_hours_owner", "calendar_id", "staff_id", "weekday"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("calendars.id", ondelete="CASCADE"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_members.id", ondelete="CASCADE"))
    weekday: Mapped[int] = mapped_column(Integer)
    start_minute: Mapped[int] = mapped_column(Integer)
    end_minute: Mapped[int] = mapped_column(Integer)

    staff_member: Mapped[StaffMember | None] = relationship(back_populates="hours")


class TimeOff(Base):
    """A period a staff member cannot be booked (holiday, training, sick leave)."""

    __tablename__ = "time_off"
    __table_args__ = (
        UniqueConstraint("staff_id", "start_at", "end_at"),
        CheckConstraint("start_at < end_at", name="range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_members.id", ondelete="CASCADE"))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    reason: Mapped[str | None] = mapped_column(String(500))
    origin: Mapped[str] = mapped_column(String(16), default="file")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    staff_member: Mapped[StaffMember] = relationship(back_populates="time_off")


class CalendarSource(Base):
    """One of a staff member's own calendars, read for the times they are busy elsewhere: the
    address of a published iCalendar feed (Outlook, Google, Apple, Nextcloud), an uploaded .ics
    file, or a calendar collection on a CalDAV server read with a configured account. Only times
    are kept: ``content`` is the last good read with every title, description, place and
    attendee taken out (bookwise.availability.busy.minimize)."""

    __tablename__ = "calendar_sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_members.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # "url", "file" or "caldav"
    url: Mapped[str | None] = mapped_column(String(2000))
    # For "caldav": the name of the service account in config.yaml (feeds.caldav_accounts) it is
    # read with. Only the name: the password stays in the server's environment.
    account: Mapped[str | None] = mapped_column(String(64))
    # What people see: the file's name, or the address's host and path without its secret part.
    label: Mapped[str] = mapped_column(String(200))
    # "file" when a calendar data file lists it, "admin" when added in the back office.
    origin: Mapped[str] = mapped_column(String(16), default="admin")
    content: Mapped[str | None] = mapped_column(Text)
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    last_attempt_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None]
    # Since when every attempt failed (None while it works); the people told once a day passed.
    failing_since: Mapped[datetime | None]
    failure_notified_at: Mapped[datetime | None]
    failures: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(40))
    error_detail: Mapped[str | None] = mapped_column(String(500))
    busy_count: Mapped[int] = mapped_column(Integer, default=0)
    # The end of the window its busy times were expanded for (recurring events reach further).
    expanded_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    staff_member: Mapped[StaffMember] = relationship(back_populates="sources")

    def __repr__(self) -> str:
        return f"<CalendarSource {self.id} {self.label}>"


class BusyTime(Base):
    """A period a staff member is busy elsewhere (read from one of their calendar sources)."""

    __tablename__ = "busy_times"
    __table_args__ = (
        CheckConstraint("start_at < end_at", name="range"),
        Index("ix_busy_times_staff_time", "staff_id", "start_at", "end_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_members.id", ondelete="CASCADE"))
    source_id: Mapped[int | None] = mapped_column(
        ForeignKey("calendar_sources.id", ondelete="CASCADE"), index=True
    )
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(200), default="manual")
    summary: Mapped[str | None] = mapped_column(String(500))


class FeedLink(Base):
    """A private address a calendar client subscribes to (bookwise.calendars.feeds): one staff
    member's bookings, or, without ``staff_id``, all of a calendar's. Only the token's SHA-256 is
    kept; replacing or revoking the link ends the old address at once."""

    __tablename__ = "feed_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("calendars.id", ondelete="CASCADE"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_members.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    calendar: Mapped[Calendar] = relationship()
    staff_member: Mapped[StaffMember | None] = relationship()


class Service(Base):
    """A workflow offered by a calendar, with its staff pool.

    The pool is either listed (``ServiceStaff`` rows, in priority order) or, when ``pool_by_tags``
    is set, every staff member of the calendar whose tags include all the workflow's tags.
    """

    __tablename__ = "services"
    __table_args__ = (UniqueConstraint("calendar_id", "workflow_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("calendars.id", ondelete="CASCADE"))
    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflows.id", ondelete="RESTRICT"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    pool_by_tags: Mapped[bool] = mapped_column(Boolean, default=True)
    origin: Mapped[str] = mapped_column(String(16), default="file")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    calendar: Mapped[Calendar] = relationship(back_populates="services")
    workflow: Mapped[WorkflowRecord] = relationship()
    staff_links: Mapped[list[ServiceStaff]] = relationship(
        order_by="ServiceStaff.position", cascade="all, delete-orphan"
    )


class AssignmentTurn(Base):
    """A staff member's last turn in a service's rotation: the service's turn number (1, 2,
    3...) when they were last given one of its bookings by the assignment strategy. The
    rotation gives the next booking to the free member whose turn is the oldest (never: 0), in
    pool order among equals, so every process continues the same rotation. One row per member
    and service: a booking writes only its own member's row, so bookings for different staff
    never wait for each other (bookwise.bookings.services)."""

    __tablename__ = "assignment_turns"

    service_id: Mapped[int] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), primary_key=True
    )
    staff_id: Mapped[int] = mapped_column(
        ForeignKey("staff_members.id", ondelete="CASCADE"), primary_key=True
    )
    turn: Mapped[int] = mapped_column(Integer)


class SlotVersion(Base):
    """How many times something that takes a staff member's time changed in a block of six hours
    (UTC, counted from 1970: ``block = epoch seconds // BLOCK_SECONDS``): their bookings, time
    off, busy times, held waitlist offers. Written only by the database's triggers (migration
    0022), in the transaction of the change; the slot cache names its days after these
    (bookwise.availability.cache). No row: never changed."""

    __tablename__ = "slot_versions"

    BLOCK_SECONDS = 6 * 3600

    staff_id: Mapped[int] = mapped_column(
        ForeignKey("staff_members.id", ondelete="CASCADE"), primary_key=True
    )
    block: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(Integer)


class ServiceStaff(Base):
    """A listed member of a service's pool; ``position`` orders the ``priority`` assignment."""

    __tablename__ = "service_staff"
    __table_args__ = (UniqueConstraint("service_id", "staff_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_members.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)

    staff_member: Mapped[StaffMember] = relationship()


__all__ = [
    "AssignmentTurn",
    "BusyTime",
    "Calendar",
    "CalendarSource",
    "FeedLink",
    "Service",
    "ServiceStaff",
    "SlotVersion",
    "StaffMember",
    "TimeOff",
    "WorkingHours",
]
