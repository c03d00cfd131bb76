"""One row per scheduled job: its lease (who runs it, until when), its next due instant, and
how its last run went. A row is written the first time a process knows the job."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bookwise.db import Base


class ScheduledJob(Base):
    """A job's shared state. ``lease_holder``/``lease_until`` are set while a run of a
    ``once`` job is under way; a run is claimed by one conditional UPDATE (due, lease free or
    expired) whose row count says whether this process won it."""

    __tablename__ = "scheduled_jobs"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    next_run_at: Mapped[datetime]
    lease_holder: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None]
    last_started_at: Mapped[datetime | None]
    last_finished_at: Mapped[datetime | None]
    last_outcome: Mapped[str | None] = mapped_column(String(16))  # ok, failed
    last_error: Mapped[str | None] = mapped_column(Text)
    last_summary: Mapped[str | None] = mapped_column(String(500))
    last_duration_ms: Mapped[int | None] = mapped_column(Integer)
