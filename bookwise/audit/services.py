"""Writing the audit log."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from bookwise.audit.models import AuditEntry


def record(
    session: Session,
    action: str,
    actor: str,
    *,
    object_type: str | None = None,
    object_id: str | int | None = None,
    calendar_id: int | None = None,
    user_id: int | None = None,
    details: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditEntry:
    """Add an audit entry to the session's transaction, to commit or roll back with the change."""
    entry = AuditEntry(
        action=action,
        actor=actor,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        calendar_id=calendar_id,
        user_id=user_id,
        details=details or {},
        ip=ip,
    )
    session.add(entry)
    return entry
