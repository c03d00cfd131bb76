"""Bookings, the clients who make them, their consent and the history of each booking."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bookwise.crypto import EncryptedJSON
from bookwise.db import Base, utcnow

if TYPE_CHECKING:
    from bookwise.calendars.models import Calendar, Service, StaffMember
    from bookwise.workflows.models import WorkflowVersion


class Client(Base):
    """A person who books, per calendar (a clinic's patients are not a school's pupils)."""

    __tablename__ = "clients"
    __table_args__ = (Index("ix_clients_calendar_email", "calendar_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("calendars.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(40))
    locale: Mapped[str | None] = mapped_column(String(16))
    timezone: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set when retention or an erasure request removed the personal data.
    erased_at: Mapped[datetime | None]


class Booking(Base):
    """One client's booking of one time with one staff member.

    A group slot (capacity > 1) is several bookings of the same service, staff and start, so that
    each participant has their own answers, consent, state, manage link and messages.
    ``blocked_from``/``blocked_until`` are the times the staff member is taken, buffers included.
    """

    __tablename__ = "bookings"
    __table_args__ = (
        CheckConstraint("start_at < end_at", name="range"),
        CheckConstraint("blocked_from <= start_at AND end_at <= blocked_until", name="blocked"),
        Index("ix_bookings_staff_time", "staff_id", "blocked_from", "blocked_until"),
        Index("ix_bookings_service_start", "service_id", "start_at"),
        Index("ix_bookings_calendar_start", "calendar_id", "start_at"),
        Index("ix_bookings_slot_key", "slot_key"),
        CheckConstraint("capacity >= 1", name="capacity"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(40), unique=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("calendars.id", ondelete="CASCADE"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="RESTRICT"))
    workflow_version_id: Mapped[int] = mapped_column(
        ForeignKey("workflow_versions.id", ondelete="RESTRICT")
    )
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_members.id", ondelete="RESTRICT"))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="RESTRICT"))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    blocked_from: Mapped[datetime]
    blocked_until: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(40))
    holds_slot: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bookings that may share their staff member's time: the participants of one group session
    # share a key; a one-to-one booking has a key of its own. The database refuses two bookings
    # holding their slot whose blocked times overlap with different keys (see migration 0002),
    # and more bookings on one key than ``capacity``.
    slot_key: Mapped[str] = mapped_column(String(120))
    capacity: Mapped[int] = mapped_column(Integer, default=1)
    # Encrypted at rest as a whole (bookwise.crypto); the code reads and writes a plain dict.
    answers: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON, default=dict)
    locale: Mapped[str] = mapped_column(String(16))
    timezone: Mapped[str] = mapped_column(String(64))
    manage_token: Mapped[str] = mapped_column(String(64), unique=True)
    # Calendar invitations: the same UID, a SEQUENCE raised by every change.
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    meeting_url: Mapped[str | None] = mapped_column(String(500))
    # The plugin that made the link, and its id for the meeting (to delete it on cancellation).
    meeting_provider: Mapped[str | None] = mapped_column(String(64))
    meeting_id: Mapped[str | None] = mapped_column(String(500))
    # The client agreed, on this booking, to receive text messages about it.
    sms_opt_in: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(16), default="public")  # public, api, admin
    # Set when the answers were removed (the workflow's retention or an erasure request); the
    # booking stays, without them, so that reports keep their counts.
    answers_erased_at: Mapped[datetime | None]
    # The series this booking is an occurrence of (a weekly course), if any.
    series_id: Mapped[int | None] = mapped_column(
        ForeignKey("booking_series.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    calendar: Mapped[Calendar] = relationship()
    service: Mapped[Service] = relationship()
    workflow_version: Mapped[WorkflowVersion] = relationship()
    staff_member: Mapped[StaffMember] = relationship()
    client: Mapped[Client] = relationship()
    consent: Mapped[ConsentRecord | None] = relationship(
        back_populates="booking", cascade="all, delete-orphan"
    )
    history: Mapped[list[BookingEvent]] = relationship(
        back_populates="booking", order_by="BookingEvent.id", cascade="all, delete-orphan"
    )


class BookingSeries(Base):
    """A client's recurring bookings (a weekly course): one rule, one manage link, one calendar
    invitation (an RRULE with the occurrences left out as EXDATEs). Each occurrence is a
    :class:`Booking` with this ``series_id``; an occurrence moved to another time stays in the
    series (an RDATE)."""

    __tablename__ = "booking_series"
    __table_args__ = (CheckConstraint("count >= 1", name="count"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(40), unique=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("calendars.id", ondelete="CASCADE"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="RESTRICT"))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="RESTRICT"))
    frequency: Mapped[str] = mapped_column(String(32))  # weekly, every_2_weeks, ...
    count: Mapped[int] = mapped_column(Integer)  # occurrences the rule asked for
    first_start: Mapped[datetime]
    locale: Mapped[str] = mapped_column(String(16))
    timezone: Mapped[str] = mapped_column(String(64))
    manage_token: Mapped[str] = mapped_column(String(64), unique=True)
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    calendar: Mapped[Calendar] = relationship()
    service: Mapped[Service] = relationship()
    client: Mapped[Client] = relationship()
    occurrences: Mapped[list[Booking]] = relationship(order_by="Booking.start_at")


class WaitlistEntry(Base):
    """A client waiting for a full time (``wanted_from == wanted_until``) or any time of a day
    (the day's bounds) of a service. When a cancellation frees a place, the first entry in line
    that wants it is ``offered`` it, held until ``offer_expires_at``; then ``booked``, or
    ``expired`` and the place goes to the next. ``freed_booking_id`` names the place: the
    database allows one live offer per freed place (``uq_waitlist_offer``)."""

    __tablename__ = "waitlist_entries"
    __table_args__ = (
        CheckConstraint("wanted_from <= wanted_until", name="wanted"),
        Index("ix_waitlist_service_wanted", "service_id", "state", "wanted_from"),
        Index(
            "uq_waitlist_offer",
            "freed_booking_id",
            unique=True,
            sqlite_where=text("state = 'offered'"),
            postgresql_where=text("state = 'offered'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("calendars.id", ondelete="CASCADE"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="RESTRICT"))
    wanted_from: Mapped[datetime]
    wanted_until: Mapped[datetime]
    # waiting, offered, expired (an offer not taken in time), booked, left
    state: Mapped[str] = mapped_column(String(16), default="waiting")
    answers: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON, default=dict)
    locale: Mapped[str] = mapped_column(String(16))
    timezone: Mapped[str] = mapped_column(String(64))
    manage_token: Mapped[str] = mapped_column(String(64), unique=True)
    # The place offered: the cancelled booking that freed it, its start and staff member.
    freed_booking_id: Mapped[int | None] = mapped_column(
        ForeignKey("bookings.id", ondelete="SET NULL")
    )
    offered_start: Mapped[datetime | None]
    offered_staff_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_members.id", ondelete="SET NULL")
    )
    offered_at: Mapped[datetime | None]
    offer_expires_at: Mapped[datetime | None] = mapped_column(index=True)
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    calendar: Mapped[Calendar] = relationship()
    service: Mapped[Service] = relationship()
    client: Mapped[Client] = relationship()


class ConsentRecord(Base):
    """Consent as given: the exact text shown, its hash, the language and the time."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(
        ForeignKey("bookings.id", ondelete="CASCADE"), unique=True
    )
    text: Mapped[str] = mapped_column(Text)
    text_hash: Mapped[str] = mapped_column(String(64))
    link: Mapped[str | None] = mapped_column(String(500))
    locale: Mapped[str] = mapped_column(String(16))
    given_at: Mapped[datetime]
    # Set when the client withdrew this consent; what they had agreed to, and when, stays.
    withdrawn_at: Mapped[datetime | None]

    booking: Mapped[Booking] = relationship(back_populates="consent")


class BookingEvent(Base):
    """One entry of a booking's history: created, a transition, a reschedule, a reassignment."""

    __tablename__ = "booking_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(
        ForeignKey("bookings.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    action: Mapped[str] = mapped_column(String(40))
    from_state: Mapped[str | None] = mapped_column(String(40))
    to_state: Mapped[str | None] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(120))  # client, system, user:<id>, staff:<id>
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)

    booking: Mapped[Booking] = relationship(back_populates="history")


class IdempotencyKey(Base):
    """A client's ``Idempotency-Key`` and the response of the creation it made
    (:mod:`bookwise.bookings.idempotency`, docs/api.md "Idempotency").

    The row is inserted in the creation's own write transaction, before the booking, and its
    response stored before the commit: a committed row always holds a response, and a creation
    that failed left no row. ``scope`` is the endpoint (``POST /api/v1/calendars/acme/...``);
    ``token_id`` will name the API token that sent the key (NULL: the public API). The response
    body holds the client's manage token and personal data: encrypted like the answers."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("scope", "key", name="uq_idempotency_keys_scope_key"),
        Index("ix_idempotency_keys_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(512))
    key: Mapped[str] = mapped_column(String(255))
    token_id: Mapped[int | None] = mapped_column(Integer)
    request_hash: Mapped[str] = mapped_column(String(64))  # SHA-256, hex
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_headers: Mapped[dict[str, str] | None]
    response_body: Mapped[Any] = mapped_column(EncryptedJSON, nullable=True)
    created_at: Mapped[datetime]
