"""The outbox (one row per message to send) and the message templates."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from bookwise.crypto import EncryptedJSON
from bookwise.db import Base, utcnow
from bookwise.tracing import current_request_id

OUTBOX_STATES = ("pending", "sending", "sent", "failed", "dead", "skipped", "withdrawn")


def new_message_uid() -> str:
    """A new outbox row's ``message_uid``: random, unique across instances and databases."""
    return uuid.uuid4().hex


class Notification(Base):
    """A message to send, written in the same transaction as the change that caused it.

    ``idempotency_key`` (booking, rule, occurrence) is unique: planning the same message twice is
    impossible. Workers claim due rows with a lease (``claimed_until``) that expires if they die.

    ``message_uid`` names the message itself, the same on every attempt: the e-mail's Message-ID
    and the webhook's ``webhook-id`` are made from it, so that a receiver drops the copy a worker
    that died before recording the result sends again (docs/notifications.md, Delivery).
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    # Unique and made here: the sentinel that lets a flush insert many rows in one statement
    # (SQLAlchemy "insertmanyvalues" with RETURNING; SQLite numbers rows in no promised order).
    message_uid: Mapped[str] = mapped_column(
        String(40), unique=True, default=new_message_uid, insert_sentinel=True
    )
    booking_id: Mapped[int | None] = mapped_column(
        ForeignKey("bookings.id", ondelete="CASCADE"), index=True
    )
    calendar_id: Mapped[int | None] = mapped_column(ForeignKey("calendars.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(40))
    rule_key: Mapped[str | None] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(40))
    recipient_kind: Mapped[str] = mapped_column(String(20))  # client, staff, calendar_admins, ...
    recipient: Mapped[str] = mapped_column(String(320))
    template: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(16))
    timezone: Mapped[str] = mapped_column(String(64))
    due_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(120))
    claimed_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    provider_message_id: Mapped[str | None] = mapped_column(String(500))
    last_error: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The request (or scheduled job run) that planned it: its X-Request-ID (bookwise.tracing).
    request_id: Mapped[str | None] = mapped_column(String(64), default=current_request_id)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SmsOptOut(Base):
    """A phone number that replied STOP: it gets no more text messages."""

    __tablename__ = "sms_opt_outs"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(40), unique=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    source: Mapped[str | None] = mapped_column(String(120))


class MessageTemplate(Base):
    """A message template per (name, audience, channel, locale), seeded from the shipped files
    and editable in the back office. ``is_default`` rows are still the shipped text.

    Rows without a calendar are the instance's wording (edited by a superadmin); a calendar's
    admins edit their own copy (``calendar_id`` set), which wins for that calendar's messages.
    """

    __tablename__ = "message_templates"
    __table_args__ = (
        Index(
            "uq_message_templates_instance",
            "name",
            "audience",
            "channel",
            "locale",
            unique=True,
            sqlite_where=text("calendar_id IS NULL"),
            postgresql_where=text("calendar_id IS NULL"),
        ),
        Index(
            "uq_message_templates_calendar",
            "calendar_id",
            "name",
            "audience",
            "channel",
            "locale",
            unique=True,
            sqlite_where=text("calendar_id IS NOT NULL"),
            postgresql_where=text("calendar_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int | None] = mapped_column(ForeignKey("calendars.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    audience: Mapped[str] = mapped_column(String(20), default="client")
    channel: Mapped[str] = mapped_column(String(40))
    locale: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str | None] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    is_default: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(320))


class MessageTemplateVersion(Base):
    """One immutable version of a template's wording, for the instance (``calendar_id`` None) or
    one calendar's copy: numbered 1, 2, 3... per (calendar, name, audience, channel, locale).

    ``action`` says how the wording came to be: ``saved`` (edited), ``reset`` (back to the
    default), ``restored`` (an earlier version again), or ``default`` (version 1, the wording a
    first save replaced: there is always something to go back to). Kept when the template's row
    is reset or deleted; a calendar's versions go with the calendar.
    """

    __tablename__ = "message_template_versions"
    __table_args__ = (
        Index(
            "uq_message_template_versions_instance",
            "name",
            "audience",
            "channel",
            "locale",
            "number",
            unique=True,
            sqlite_where=text("calendar_id IS NULL"),
            postgresql_where=text("calendar_id IS NULL"),
        ),
        Index(
            "uq_message_template_versions_calendar",
            "calendar_id",
            "name",
            "audience",
            "channel",
            "locale",
            "number",
            unique=True,
            sqlite_where=text("calendar_id IS NOT NULL"),
            postgresql_where=text("calendar_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int | None] = mapped_column(ForeignKey("calendars.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    audience: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(40))
    locale: Mapped[str] = mapped_column(String(16))
    number: Mapped[int] = mapped_column(Integer)
    subject: Mapped[str | None] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(16))  # default, saved, reset, restored
    author: Mapped[str | None] = mapped_column(String(320))
    comment: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<MessageTemplateVersion {self.name}/{self.audience}/{self.channel} v{self.number}>"


class WebhookEndpoint(Base):
    """A calendar's outbound webhook (docs/api.md, Webhooks): where its booking events go.

    ``events`` lists the event types it wants (``booking.created``...); a paused endpoint
    (``active`` false) gets nothing. ``secrets`` is encrypted at rest (bookwise.crypto) and holds
    ``{"current": "whsec_...", "previous": "whsec_..." | None, "previous_until": ISO time}``:
    after a rotation the previous secret still signs deliveries until ``previous_until``.
    """

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int] = mapped_column(
        ForeignKey("calendars.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(500), default="")
    events: Mapped[list[str]] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(default=True)
    secrets: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
