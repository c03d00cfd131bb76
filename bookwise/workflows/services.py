"""Stored workflow versions: syncing files into the database, reading the current version."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bookwise.audit.services import record
from bookwise.errors import NotFound
from bookwise.workflows.language import Workflow
from bookwise.workflows.loader import CheckedWorkflow, content_hash
from bookwise.workflows.models import WorkflowRecord, WorkflowVersion

if TYPE_CHECKING:
    pass


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    new_versions: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.new_versions)

    def summary(self) -> str:
        return (
            f"workflows: {len(self.created)} new, {len(self.new_versions)} new version(s), "
            f"{len(self.unchanged)} unchanged"
        )


def sync_workflow_files(
    session: Session, checked: Mapping[str, CheckedWorkflow], actor: str = "system"
) -> SyncReport:
    """Store each checked workflow file, adding a version only where the file changed.

    A file that has not changed since it was last synced adds nothing, even if the back office has
    edited the workflow since: a restart never overwrites a back-office edit.
    """
    report = SyncReport()
    existing = {
        r.slug: r
        for r in session.scalars(
            select(WorkflowRecord).where(WorkflowRecord.slug.in_(list(checked)))
        )
    }
    for slug, item in sorted(checked.items()):
        record_ = existing.get(slug)
        if record_ is None:
            record_ = WorkflowRecord(slug=slug, source_path=item.file, file_hash=item.content_hash)
            session.add(record_)
            session.flush()
            _add_file_version(session, record_, item, actor)
            report.created.append(slug)
        elif record_.file_hash != item.content_hash:
            latest = latest_version(session, record_.id)
            record_.file_hash = item.content_hash
            record_.source_path = item.file
            if latest is not None and latest.content_hash == item.content_hash:
                report.unchanged.append(slug)  # the file now says what the database already had
                continue
            _add_file_version(session, record_, item, actor)
            report.new_versions.append(slug)
        else:
            report.unchanged.append(slug)
    return report


def _add_file_version(
    session: Session, workflow: WorkflowRecord, item: CheckedWorkflow, actor: str
) -> WorkflowVersion:
    return add_version(
        session,
        workflow,
        source_text=item.source_text,
        definition=item.definition,
        origin="file",
        author=actor,
    )


def add_version(
    session: Session,
    workflow: WorkflowRecord,
    *,
    source_text: str,
    definition: dict[str, Any],
    origin: str,
    author: str | None,
    comment: str | None = None,
) -> WorkflowVersion:
    """Append a new immutable version to ``workflow`` (numbered after the highest one)."""
    number = (
        session.scalar(
            select(func.max(WorkflowVersion.number)).where(
                WorkflowVersion.workflow_id == workflow.id
            )
        )
        or 0
    ) + 1
    version = WorkflowVersion(
        workflow_id=workflow.id,
        number=number,
        source_text=source_text,
        definition=definition,
        content_hash=content_hash(definition),
        origin=origin,
        author=author,
        comment=comment,
    )
    session.add(version)
    session.flush()
    record(
        session,
        "workflow.version",
        author or "system",
        object_type="workflow",
        object_id=workflow.slug,
        details={"version": number, "origin": origin},
    )
    return version


def latest_version(session: Session, workflow_id: int) -> WorkflowVersion | None:
    return session.scalar(
        select(WorkflowVersion)
        .where(WorkflowVersion.workflow_id == workflow_id)
        .order_by(WorkflowVersion.number.desc())
        .limit(1)
    )


def current_version(session: Session, slug: str) -> WorkflowVersion:
    """The version in force for the workflow ``slug``; :class:`NotFound` when there is none."""
    version = session.scalar(
        select(WorkflowVersion)
        .join(WorkflowRecord)
        .where(WorkflowRecord.slug == slug)
        .order_by(WorkflowVersion.number.desc())
        .limit(1)
    )
    if version is None:
        raise NotFound(f"no workflow {slug!r}")
    return version


_BUILT: dict[tuple[int, str], Workflow] = {}


def workflow_of(version: WorkflowVersion) -> Workflow:
    """The :class:`Workflow` of a stored version, built once per version and process.

    Versions are immutable, so (id, content hash) identifies the result for good.
    """
    key = (version.id, version.content_hash)
    built = _BUILT.get(key)
    if built is None:
        if len(_BUILT) > 1024:
            _BUILT.clear()
        built = _BUILT[key] = Workflow.from_definition(version.definition)
    return built


def workflow_tags(session: Session) -> dict[str, tuple[str, ...]]:
    """Each workflow in use (not archived) with the staff tags of its current version, in one
    query."""
    latest = (
        select(WorkflowVersion.workflow_id, func.max(WorkflowVersion.number).label("number"))
        .group_by(WorkflowVersion.workflow_id)
        .subquery()
    )
    versions = session.execute(
        select(WorkflowRecord.slug, WorkflowVersion)
        .join(WorkflowVersion, WorkflowVersion.workflow_id == WorkflowRecord.id)
        .join(
            latest,
            (latest.c.workflow_id == WorkflowVersion.workflow_id)
            & (latest.c.number == WorkflowVersion.number),
        )
        .where(WorkflowRecord.archived.is_(False))
    )
    return {slug: workflow_of(version).staff.tags for slug, version in versions}


# --- the back office ------------------------------------------------------------------------


def calendars_of_workflow(session: Session, record: WorkflowRecord) -> set[int]:
    """The calendars a workflow concerns: the one that owns it and those that offer it."""
    from bookwise.calendars.models import Service

    offering = set(
        session.scalars(select(Service.calendar_id).where(Service.workflow_id == record.id))
    )
    return offering | ({record.calendar_id} if record.calendar_id is not None else set())


def workflows_of_calendars(
    session: Session, calendar_ids: list[int] | None
) -> list[WorkflowRecord]:
    """Workflows offered by or owned by these calendars (every workflow for ``None``)."""
    from bookwise.calendars.models import Service

    query = select(WorkflowRecord).order_by(WorkflowRecord.slug)
    if calendar_ids is not None:
        offered = select(Service.workflow_id).where(Service.calendar_id.in_(calendar_ids))
        query = query.where(
            WorkflowRecord.id.in_(offered) | WorkflowRecord.calendar_id.in_(calendar_ids)
        )
    return list(session.scalars(query))


def save_version(
    session: Session,
    record: WorkflowRecord,
    checked: CheckedWorkflow,
    *,
    origin: str,
    author: str,
    comment: str | None = None,
) -> WorkflowVersion | None:
    """A new version of ``record`` from a checked text, or None when it says what the current
    version already says (saving twice adds nothing)."""
    if checked.workflow.id != record.slug:
        raise ValueError("the text's id is not the workflow's")
    latest = latest_version(session, record.id)
    if (
        latest is not None
        and latest.content_hash == checked.content_hash
        and latest.source_text == checked.source_text
    ):
        return None
    return add_version(
        session,
        record,
        source_text=checked.source_text,
        definition=checked.definition,
        origin=origin,
        author=author,
        comment=comment,
    )


def create_workflow(
    session: Session, checked: CheckedWorkflow, calendar_id: int, *, origin: str, author: str
) -> WorkflowRecord:
    """A new workflow owned by a calendar, with its first version."""
    record = WorkflowRecord(slug=checked.workflow.id, calendar_id=calendar_id)
    session.add(record)
    session.flush()
    add_version(
        session,
        record,
        source_text=checked.source_text,
        definition=checked.definition,
        origin=origin,
        author=author,
    )
    return record


def find_workflow(session: Session, slug: str) -> WorkflowRecord:
    record = session.scalar(select(WorkflowRecord).where(WorkflowRecord.slug == slug))
    if record is None:
        raise NotFound(f"no workflow {slug!r}")
    return record


def find_version(session: Session, record: WorkflowRecord, number: int) -> WorkflowVersion:
    version = session.scalar(
        select(WorkflowVersion).where(
            WorkflowVersion.workflow_id == record.id, WorkflowVersion.number == number
        )
    )
    if version is None:
        raise NotFound(f"no version {number} of {record.slug}")
    return version


def in_use(session: Session, record: WorkflowRecord) -> bool:
    """Whether bookings use some version of the workflow (the identifiers their answers and
    states are stored under must then stay)."""
    from bookwise.bookings.models import Booking

    found = session.scalar(
        select(Booking.id)
        .join(WorkflowVersion, Booking.workflow_version_id == WorkflowVersion.id)
        .where(WorkflowVersion.workflow_id == record.id)
        .limit(1)
    )
    return found is not None
