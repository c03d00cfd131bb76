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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from bookwise.bookings.models import Booking, Client, ConsentRecord
from bookwise.calendars.models import StaffMember
from bookwise.errors import N_
from bookwise.notifications.context import answer_text, reference_code
from bookwise.plugins.bookings import plugin_field_types
from bookwise.workflows.models import WorkflowVersion
from bookwise.workflows.services import workflow_of

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


def _bookings(
    session: Session,
    calendar_id: int,
    start: datetime,
    end: datetime,
    staff_id: int | None = None,
) -> list[Booking]:
    query = (
        select(Booking)
        .where(
            Booking.calendar_id == calendar_id, Booking.start_at >= start, Booking.start_at < end
        )
        .options(
            selectinload(Booking.client),
            selectinload(Booking.staff_member),
            selectinload(Booking.workflow_version),
            selectinload(Booking.consent),
        )
        .order_by(Booking.start_at, Booking.id)
    )
    if staff_id is not None:
        query = query.where(Booking.staff_id == staff_id)
    return list(session.scalars(query))


def booking_stats(
    session: Session,
    calendar_id: int,
    first: date,
    last: date,
    zone: str,
    locale: str,
    fallback: str,
    staff_id: int | None = None,
) -> Stats:
    """Counts for the local days ``first`` to ``last`` (inclusive)."""
    tz = ZoneInfo(zone)
    start = datetime.combine(first, datetime.min.time(), tz)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tz)
    bookings = _bookings(session, calendar_id, start, end, staff_id)
    per_day: Counter[date] = Counter()
    per_service: Counter[str] = Counter()
    per_staff: Counter[str] = Counter()
    stats = Stats(total=len(bookings))
    for booking in bookings:
        workflow = workflow_of(booking.workflow_version)
        per_day[booking.start_at.astimezone(tz).date()] += 1
        per_service[workflow.name.get(locale, fallback) or workflow.id] += 1
        per_staff[booking.staff_member.name] += 1
        if booking.state in CANCELLED_STATES:
            stats.cancelled += 1
        elif booking.state == "no_show":
            stats.no_show += 1
        elif workflow.lifecycle.is_final(booking.state) and booking.state == "completed":
            stats.held += 1
    day = first
    while day <= last:
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
    calendar_id: int,
    first: date,
    last: date,
    zone: str,
    locale: str,
    fallback: str,
    include_sensitive: bool,
    staff_id: int | None = None,
    translate: Callable[[str], str] = str,
) -> tuple[list[str], list[list[str]]]:
    """The header and the rows of an export: one row per booking (each participant of a group),
    one column per custom question of the workflows met (sensitive ones only when
    ``include_sensitive``). One Core query with its joins: an export reads thousands of rows, and
    building ORM objects for them costs twice the time (benchmarks/admin.py)."""
    tz = ZoneInfo(zone)
    start = datetime.combine(first, datetime.min.time(), tz)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tz)
    query = (
        select(
            Booking.uid,
            Booking.workflow_version_id,
            Booking.start_at,
            Booking.end_at,
            Booking.state,
            Booking.locale,
            Booking.timezone,
            Booking.source,
            Booking.created_at,
            Booking.answers,
            StaffMember.name,
            Client.name,
            Client.email,
            Client.phone,
            Client.erased_at,
            ConsentRecord.given_at,
        )
        .join(StaffMember, StaffMember.id == Booking.staff_id)
        .join(Client, Client.id == Booking.client_id)
        .outerjoin(ConsentRecord, ConsentRecord.booking_id == Booking.id)
        .where(
            Booking.calendar_id == calendar_id, Booking.start_at >= start, Booking.start_at < end
        )
        .order_by(Booking.start_at, Booking.id)
    )
    if staff_id is not None:
        query = query.where(Booking.staff_id == staff_id)
    records = session.execute(query).all()
    workflows = {
        version.id: workflow_of(version)
        for version in session.scalars(
            select(WorkflowVersion).where(WorkflowVersion.id.in_({record[1] for record in records}))
        )
    }
    questions: dict[str, str] = {}
    for workflow in workflows.values():
        for spec in workflow.custom_fields:
            if spec.sensitive and not include_sensitive:
                continue
            questions.setdefault(spec.id, spec.label.get(locale, fallback) or spec.id)
    header = [translate(label) for _, label in BASE_COLUMNS] + [
        f"{label} ({key})" for key, label in questions.items()
    ]
    specs = {
        version_id: {spec.id: spec for spec in workflow.custom_fields}
        for version_id, workflow in workflows.items()
    }
    names = {
        version_id: workflow.name.get(locale, fallback) or workflow.id
        for version_id, workflow in workflows.items()
    }
    rows = []
    field_types = plugin_field_types(session)
    for (
        uid,
        version_id,
        starts,
        ends,
        state,
        client_locale,
        client_zone,
        source,
        created,
        answers,
        staff_name,
        client_name,
        email,
        phone,
        erased_at,
        consent_at,
    ) in records:
        erased = erased_at is not None
        row = [
            reference_code(uid),
            names[version_id],
            _local(starts, tz),
            _local(ends, tz),
            zone,
            staff_name,
            state,
            "" if erased else client_name,
            "" if erased else email or "",
            "" if erased else phone or "",
            client_locale,
            client_zone,
            source,
            _local(created, tz),
            _local(consent_at, tz) if consent_at else "",
        ]
        asked = specs[version_id]
        for key in questions:
            question = asked.get(key)
            value = answers.get(key) if question is not None else None
            row.append(
                ""
                if value is None or question is None
                else answer_text(question, value, locale, fallback, field_types)
            )
        rows.append(row)
    return header, rows


def _local(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def write_table(header: Sequence[str], rows: Iterable[Sequence[str]], delimiter: str) -> bytes:
    """TSV (``\\t``) or CSV (``,``), UTF-8 with a byte-order mark (spreadsheets then read the
    accents right), every cell neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
