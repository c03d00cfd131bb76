"""Reports: a calendar's bookings counted (per day, service, staff member; cancellation and no-show
rates) and exported as TSV or CSV with one column per custom question.

Exports are safe to open in a spreadsheet: a cell that starts like a formula (``=``, ``+``, ``-``,
``@``, a tab or a carriage return) is written with a leading apostrophe, so it is read as text
(OWASP's "CSV injection" advice).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row, Select, select
from sqlalchemy.orm import Session, selectinload

from bookwise.audit.services import Actor, record
from bookwise.bookings.models import Booking, Client, ConsentRecord
from bookwise.calendars.models import StaffMember
from bookwise.errors import N_
from bookwise.notifications.context import answer_text, reference_code
from bookwise.workflows.language import Workflow
from bookwise.workflows.models import WorkflowVersion
from bookwise.workflows.services import workflow_of

if TYPE_CHECKING:
    from bookwise.plugins.api import FieldType

EXPORT_DAYS = 120
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CANCELLED_STATES = ("cancelled", "declined")


def safe_cell(value: Any) -> str:
    """A spreadsheet cell that cannot run as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


@dataclass
class Stats:
    days: list[tuple[date, int]] = field(default_factory=list)
    services: list[tuple[str, int]] = field(default_factory=list)
    staff: list[tuple[str, int]] = field(default_factory=list)
    total: int = 0
    cancelled: int = 0
    no_show: int = 0
    held: int = 0

    @property
    def cancellation_rate(self) -> float | None:
        return self.cancelled / self.total if self.total else None

    @property
    def no_show_rate(self) -> float | None:
        """Among the bookings that were due to take place and are settled (held or missed)."""
        settled = self.held + self.no_show
        return self.no_show / settled if settled else None


@dataclass(frozen=True)
class ReportScope:
    """What a report covers: a calendar's bookings starting on the local days ``first`` to
    ``last`` (inclusive) in ``zone``, of one staff member or all; the names of services in
    ``locale``, else ``fallback`` (the calendar's language)."""

    calendar_id: int
    first: date
    last: date
    zone: str
    locale: str
    fallback: str
    staff_id: int | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    @property
    def window(self) -> tuple[datetime, datetime]:
        """The real-time window of the days: from the first's midnight to the next day's after
        the last."""
        start = datetime.combine(self.first, datetime.min.time(), self.tz)
        end = datetime.combine(self.last + timedelta(days=1), datetime.min.time(), self.tz)
        return start, end

    def in_scope(self, query: Select[Any]) -> Select[Any]:
        """``query`` (of bookings) narrowed to the scope's calendar, days and staff member."""
        start, end = self.window
        query = query.where(
            Booking.calendar_id == self.calendar_id,
            Booking.start_at >= start,
            Booking.start_at < end,
        )
        if self.staff_id is not None:
            query = query.where(Booking.staff_id == self.staff_id)
        return query

    def name_of(self, workflow: Workflow) -> str:
        return workflow.name.get(self.locale, self.fallback) or workflow.id


def _bookings(session: Session, scope: ReportScope) -> list[Booking]:
    query = scope.in_scope(
        select(Booking)
        .options(
            selectinload(Booking.client),
            selectinload(Booking.staff_member),
            selectinload(Booking.workflow_version),
            selectinload(Booking.consent),
        )
        .order_by(Booking.start_at, Booking.id)
    )
    return list(session.scalars(query))


def booking_stats(session: Session, scope: ReportScope) -> Stats:
    """Counts for the days of ``scope``."""
    tz = scope.tz
    bookings = _bookings(session, scope)
    per_day: Counter[date] = Counter()
    per_service: Counter[str] = Counter()
    per_staff: Counter[str] = Counter()
    stats = Stats(total=len(bookings))
    for booking in bookings:
        workflow = workflow_of(booking.workflow_version)
        per_day[booking.start_at.astimezone(tz).date()] += 1
        per_service[scope.name_of(workflow)] += 1
        per_staff[booking.staff_member.name] += 1
        if booking.state in CANCELLED_STATES:
            stats.cancelled += 1
        elif booking.state == "no_show":
            stats.no_show += 1
        elif workflow.lifecycle.is_final(booking.state) and booking.state == "completed":
            stats.held += 1
    day = scope.first
    while day <= scope.last:
        stats.days.append((day, per_day.get(day, 0)))
        day += timedelta(days=1)
    stats.services = sorted(per_service.items(), key=lambda item: (-item[1], item[0]))
    stats.staff = sorted(per_staff.items(), key=lambda item: (-item[1], item[0]))
    return stats


BASE_COLUMNS = (
    ("reference", N_("Reference")),
    ("service", N_("Service")),
    ("start", N_("Start")),
    ("end", N_("End")),
    ("timezone", N_("Time zone")),
    ("staff", N_("Staff")),
    ("state", N_("State")),
    ("client", N_("Client")),
    ("email", N_("E-mail")),
    ("phone", N_("Phone")),
    ("client_locale", N_("Client language")),
    ("client_timezone", N_("Client time zone")),
    ("source", N_("Booked through")),
    ("created", N_("Booked on")),
    ("consent_at", N_("Consent given on")),
)


def export_rows(
    session: Session,
    scope: ReportScope,
    *,
    include_sensitive: bool,
    translate: Callable[[str], str] = str,
    field_types: Mapping[str, FieldType] | None = None,
) -> tuple[list[str], list[list[str]]]:
    """The header and the rows of an export: one row per booking (each participant of a group),
    one column per custom question of the workflows met (sensitive ones only when
    ``include_sensitive``); answers of a plugin's field type (``field_types``, by name) are
    written as the plugin writes them. One Core query with its joins: an export reads
    thousands of rows, and building ORM objects for them costs twice the time
    (benchmarks/admin.py)."""
    records = session.execute(scope.in_scope(_EXPORT_QUERY)).all()
    workflows = {
        version.id: workflow_of(version)
        for version in session.scalars(
            select(WorkflowVersion).where(
                WorkflowVersion.id.in_({record.version_id for record in records})
            )
        )
    }
    questions = _questions(workflows.values(), scope, include_sensitive)
    header = [translate(label) for _, label in BASE_COLUMNS] + [
        f"{label} ({key})" for key, label in questions.items()
    ]
    writer = _RowWriter(scope, workflows, list(questions), field_types or {})
    return header, [writer.row(record) for record in records]


# One row per booking with what the export shows of it, its client and its consent.
_EXPORT_QUERY = (
    select(
        Booking.uid,
        Booking.workflow_version_id.label("version_id"),
        Booking.start_at,
        Booking.end_at,
        Booking.state,
        Booking.locale,
        Booking.timezone,
        Booking.source,
        Booking.created_at,
        Booking.answers,
        StaffMember.name.label("staff_name"),
        Client.name.label("client_name"),
        Client.email,
        Client.phone,
        Client.erased_at,
        ConsentRecord.given_at.label("consent_at"),
    )
    .join(StaffMember, StaffMember.id == Booking.staff_id)
    .join(Client, Client.id == Booking.client_id)
    .outerjoin(ConsentRecord, ConsentRecord.booking_id == Booking.id)
    .order_by(Booking.start_at, Booking.id)
)


def _questions(
    workflows: Iterable[Workflow], scope: ReportScope, include_sensitive: bool
) -> dict[str, str]:
    """The custom questions of ``workflows`` the export shows, by id, with their label."""
    questions: dict[str, str] = {}
    for workflow in workflows:
        for spec in workflow.custom_fields:
            if spec.sensitive and not include_sensitive:
                continue
            questions.setdefault(spec.id, spec.label.get(scope.locale, scope.fallback) or spec.id)
    return questions


class _RowWriter:
    """Writes one exported booking as cells, in the header's order."""

    def __init__(
        self,
        scope: ReportScope,
        workflows: Mapping[int, Workflow],
        questions: list[str],
        field_types: Mapping[str, Any],
    ) -> None:
        self.scope = scope
        self.tz = scope.tz
        self.questions = questions
        self.field_types = field_types
        self.names = {version_id: scope.name_of(w) for version_id, w in workflows.items()}
        self.specs = {
            version_id: {spec.id: spec for spec in workflow.custom_fields}
            for version_id, workflow in workflows.items()
        }

    def row(self, record: Row[Any]) -> list[str]:
        tz = self.tz
        erased = record.erased_at is not None
        return [
            reference_code(record.uid),
            self.names[record.version_id],
            _local(record.start_at, tz),
            _local(record.end_at, tz),
            self.scope.zone,
            record.staff_name,
            record.state,
            "" if erased else record.client_name,
            "" if erased else record.email or "",
            "" if erased else record.phone or "",
            record.locale,
            record.timezone,
            record.source,
            _local(record.created_at, tz),
            _local(record.consent_at, tz) if record.consent_at else "",
            *self._answers(record.version_id, record.answers),
        ]

    def _answers(self, version_id: int, answers: Mapping[str, Any]) -> list[str]:
        """The answers to the export's questions, empty where the workflow did not ask one."""
        asked = self.specs[version_id]
        scope = self.scope
        cells = []
        for key in self.questions:
            question = asked.get(key)
            value = answers.get(key) if question is not None else None
            cells.append(
                ""
                if value is None or question is None
                else answer_text(question, value, scope.locale, scope.fallback, self.field_types)
            )
        return cells


def _local(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def record_export(
    session: Session,
    actor: Actor | str,
    scope: ReportScope,
    calendar_slug: str,
    *,
    rows: int,
    kind: str,
    sensitive: bool,
) -> str:
    """Put an export of ``scope`` in the audit log (the back office's and the API's alike), in
    the caller's transaction; the file's name."""
    record(
        session,
        "report.exported",
        actor,
        object_type="calendar",
        object_id=calendar_slug,
        calendar_id=scope.calendar_id,
        details={
            "from": scope.first.isoformat(),
            "to": scope.last.isoformat(),
            "rows": rows,
            "format": kind,
            "sensitive": sensitive,
        },
    )
    return f"{calendar_slug}-bookings-{scope.first.isoformat()}-{scope.last.isoformat()}.{kind}"


def write_table(header: Sequence[str], rows: Iterable[Sequence[str]], delimiter: str) -> bytes:
    """TSV (``\\t``) or CSV (``,``), UTF-8 with a byte-order mark (spreadsheets then read the
    accents right), every cell neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
