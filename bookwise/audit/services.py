"""Writing the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from bookwise.audit.models import AuditEntry


@dataclass(frozen=True)
class Actor:
    """Who made a change: the name the log shows, and, for a person signed in to the back office,
    their user id and the address the request came from. A plain name (``"cli"``,
    ``"system"``, a client's e-mail) is the same as ``Actor(name)``."""

    name: str
    user_id: int | None = None
    ip: str | None = None


def record(
    session: Session,
    action: str,
    actor: Actor | str,
    *,
    object_type: str | None = None,
    object_id: str | int | None = None,
    calendar_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add an audit entry to the session's transaction, to commit or roll back with the change."""
    who = actor if isinstance(actor, Actor) else Actor(actor)
    entry = AuditEntry(
        action=action,
        actor=who.name,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        calendar_id=calendar_id,
        user_id=who.user_id,
        details=details or {},
        ip=who.ip,
    )
    session.add(entry)
    return entry
