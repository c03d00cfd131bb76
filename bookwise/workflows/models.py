"""Stored workflows: every change (file edit, back-office edit, restore) is a new immutable version.

A booking keeps the version it was made under. The current version is the highest number.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bookwise.db import Base, utcnow


class WorkflowRecord(Base):
    """A workflow by its id (``hr-interview``), across all its versions."""

    __tablename__ = "workflows"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    # The file it was loaded from, and the hash of that file's definition when last synced: a
    # back-office edit is not overwritten by a restart unless the file itself changed since.
    source_path: Mapped[str | None] = mapped_column(String(500))
    file_hash: Mapped[str | None] = mapped_column(String(64))
    archived: Mapped[bool] = mapped_column(default=False)
    # The calendar whose admins created it in the back office; None for the instance's files.
    calendar_id: Mapped[int | None] = mapped_column(ForeignKey("calendars.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    versions: Mapped[list[WorkflowVersion]] = relationship(
        back_populates="workflow", order_by="WorkflowVersion.number"
    )

    def __repr__(self) -> str:
        return f"<Workflow {self.slug}>"


class WorkflowVersion(Base):
    """One immutable version of a workflow: the YAML as written and the resolved definition."""

    __tablename__ = "workflow_versions"
    __table_args__ = (UniqueConstraint("workflow_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    source_text: Mapped[str] = mapped_column(Text)
    # Plain JSON, not JSONB: the definition keeps the order its author wrote.
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    origin: Mapped[str] = mapped_column(String(16))  # file, admin, import, restore
    author: Mapped[str | None] = mapped_column(String(320))
    comment: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    workflow: Mapped[WorkflowRecord] = relationship(back_populates="versions")

    def __repr__(self) -> str:
        return f"<WorkflowVersion {self.workflow_id} v{self.number}>"
