"""Templates in the database, text-message opt-outs, and a manual retry of a dead message."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from bookwise.db import utcnow
from bookwise.errors import BookwiseError, NotFound
from bookwise.notifications.models import MessageTemplate, Notification, SmsOptOut
from bookwise.notifications.rendering import read_template_file


def seed_templates(session: Session, folders: Iterable[Path]) -> int:
    """Copy the template files into the database, where the back office edits them.

    A template never edited follows its file (an upgrade that improves a default reaches it); an
    edited one is left alone. Returns how many rows were added or refreshed.
    """
    existing = {
        (t.name, t.audience, t.channel, t.locale): t
        for t in session.scalars(select(MessageTemplate))
    }
    changed = 0
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*/*.yaml")):
            name, locale = path.parent.name, path.stem
            for audience, channels in (read_template_file(path) or {}).items():
                for channel, parts in (channels or {}).items():
                    key = (name, audience, channel, locale)
                    values = {
                        "subject": parts.get("subject"),
                        "body_text": parts.get("text", ""),
                        "body_html": parts.get("html"),
                    }
                    row = existing.get(key)
                    if row is None:
                        row = MessageTemplate(
                            name=name,
                            audience=audience,
                            channel=channel,
                            locale=locale,
                            is_default=True,
                            **values,
                        )
                        session.add(row)
                        existing[key] = row
                        changed += 1
                    elif row.is_default and any(getattr(row, k) != v for k, v in values.items()):
                        for attribute, value in values.items():
                            setattr(row, attribute, value)
                        changed += 1
    return changed


def record_stop(session: Session, phone: str, source: str | None = None) -> SmsOptOut:
    """A number replied STOP: no more text messages to it (also for messages already planned)."""
    existing = session.scalar(select(SmsOptOut).where(SmsOptOut.phone == phone))
    if existing is not None:
        return existing
    row = SmsOptOut(phone=phone, source=source, at=utcnow())
    session.add(row)
    session.flush()
    return row


def retry(session: Session, row_id: int) -> Notification:
    """Send a failed or dead message again, now."""
    row = session.get(Notification, row_id)
    if row is None:
        raise NotFound(f"no message {row_id}")
    if row.state not in ("dead", "failed"):
        raise BookwiseError(
            f"message {row_id} is {row.state}; only failed or dead ones are retried"
        )
    row.state, row.due_at, row.claimed_until = "pending", utcnow(), None
    return row
