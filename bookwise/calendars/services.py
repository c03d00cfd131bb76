"""Calendars in the database: loading calendar data files, and the staff pool of a service."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, selectinload

from bookwise.audit.services import record
from bookwise.calendars.data import (
    CalendarSpec,
    FeedSpec,
    HoursRange,
    ServiceSpec,
    StaffSpec,
    TimeOffSpec,
)
from bookwise.calendars.export import calendars_yaml
from bookwise.calendars.fetching import label_of
from bookwise.calendars.models import (
    BusyTime,
    Calendar,
    CalendarSource,
    Service,
    ServiceStaff,
    StaffMember,
    TimeOff,
    WorkingHours,
)
from bookwise.errors import NotFound, Problem, ProblemsError, did_you_mean
from bookwise.notifications.quiet import stored_quiet_hours
from bookwise.workflows.models import WorkflowRecord
from bookwise.workflows.services import current_version, workflow_of


@dataclass
class LoadReport:
    """What loading a calendar data file changed, by kind of thing."""

    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str, created: bool) -> None:
        target = self.created if created else self.updated
        target[kind] = target.get(kind, 0) + 1

    def count_removed(self, kind: str) -> None:
        self.removed[kind] = self.removed.get(kind, 0) + 1

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.removed)

    def summary(self) -> str:
        if not self.changed:
            return "nothing changed"
        parts = [f"{n} {kind} created" for kind, n in sorted(self.created.items())]
        parts += [f"{n} {kind} updated" for kind, n in sorted(self.updated.items())]
        parts += [f"{n} {kind} no longer in the file" for kind, n in sorted(self.removed.items())]
        return ", ".join(parts)


def _assign(obj: Any, values: dict[str, Any]) -> bool:
    """Set the attributes that differ; report whether any did (so that a reload changes nothing)."""
    changed = False
    for name, value in values.items():
        if getattr(obj, name) != value:
            setattr(obj, name, value)
            changed = True
    return changed


def load_calendars(
    session: Session,
    specs: Sequence[CalendarSpec],
    actor: str,
    *,
    plugin_names: frozenset[str] | None = None,
) -> LoadReport:
    """Create or update calendars, staff, hours, time off and services from checked data.

    Idempotent: loading the same data twice changes nothing the second time. The file manages
    what it loaded (``origin = "file"``): its time off is replaced by the file's, and staff or
    services it no longer lists are made not bookable or inactive (never deleted: bookings may
    refer to them). What the back office added is left alone. The caller commits.

    ``plugin_names`` are the instance's loaded non-core plugins: a calendar naming another is
    refused with :class:`ProblemsError` before anything is written (None: not checked).
    """
    if plugin_names is not None:
        problems = unknown_plugin_problems(specs, plugin_names)
        if problems:
            raise ProblemsError(problems)
    report = LoadReport()
    workflows = {
        w.slug: w
        for w in session.scalars(
            select(WorkflowRecord).where(
                WorkflowRecord.slug.in_({s.workflow for c in specs for s in c.services})
            )
        )
    }
    for spec in specs:
        calendar, created = _load_calendar(session, spec, actor, report)
        members = _load_calendar_staff(session, calendar, created, spec, report)
        _load_services(session, calendar, created, spec, workflows, members, report)
    session.flush()
    return report


def unknown_plugin_problems(
    specs: Iterable[CalendarSpec], plugin_names: Collection[str]
) -> list[Problem]:
    """A problem, at its place in the file, for each plugin a calendar names that is not among
    ``plugin_names`` (the plugins loaded on the instance, the core's left out)."""
    enabled = ", ".join(sorted(plugin_names)) or "none"
    problems = []
    for spec in specs:
        places = dict(enumerate(spec.plugin_places))
        for index, name in enumerate(spec.plugins or ()):
            if name in plugin_names:
                continue
            message = (
                f"calendar {spec.slug}: plugin {name!r} is not enabled on this instance "
                f"(enabled: {enabled}); enable it under plugins.enabled in config.yaml or "
                "remove it"
            )
            place = places.get(index)
            if place is None:  # data made in code, not read from a file
                problems.append(Problem("calendar data", None, None, message))
            else:
                problems.append(
                    Problem(place.file, place.line, place.column, f"{place.key}: {message}")
                )
    return problems


def _load_calendar(
    session: Session, spec: CalendarSpec, actor: str, report: LoadReport
) -> tuple[Calendar, bool]:
    """The calendar of ``spec`` with its settings and hours, and whether it was created."""
    calendar = session.scalar(
        select(Calendar)
        .where(Calendar.slug == spec.slug)
        .options(selectinload(Calendar.staff), selectinload(Calendar.services))
    )
    created = calendar is None
    if calendar is None:
        calendar = Calendar(slug=spec.slug)
        session.add(calendar)
    changed = _assign(
        calendar,
        {
            "name": spec.name,
            "description": spec.description,
            "timezone": spec.timezone,
            "default_locale": spec.locale,
            "address": spec.address,
            "phone": spec.phone,
            "reply_to": spec.reply_to,
            "published": spec.published,
            "search_indexing": spec.search_indexing,
            "sign_in_required": spec.sign_in_required,
            "show_business_timezone": spec.show_business_timezone,
            "embed_origins": list(spec.embed_origins),
            "plugins": list(spec.plugins) if spec.plugins is not None else None,
            "quiet_hours": spec.quiet_hours.to_spec() if spec.quiet_hours else None,
        },
    )
    session.flush()
    if _sync_hours(session, calendar.id, None, spec.hours):
        changed = True
    if created or changed:
        report.count("calendars", created)
        record(
            session,
            "calendar.created" if created else "calendar.updated",
            actor,
            object_type="calendar",
            object_id=spec.slug,
            calendar_id=calendar.id,
        )
    return calendar, created


def _load_calendar_staff(
    session: Session, calendar: Calendar, created: bool, spec: CalendarSpec, report: LoadReport
) -> dict[str, StaffMember]:
    """The calendar's staff by slug, those of the file loaded; those the file loaded before and
    no longer lists are made not bookable."""
    members = {m.slug: m for m in calendar.staff} if not created else {}
    for staff_spec in spec.staff:
        members[staff_spec.slug] = _load_staff(
            session, calendar, members.get(staff_spec.slug), staff_spec, report
        )
    listed_staff = {s.slug for s in spec.staff}
    for slug, member in members.items():
        if member.origin == "file" and slug not in listed_staff and member.bookable:
            member.bookable = False
            report.count_removed("staff")
    return members


def _load_services(
    session: Session,
    calendar: Calendar,
    created: bool,
    spec: CalendarSpec,
    workflows: Mapping[str, WorkflowRecord],
    members: Mapping[str, StaffMember],
    report: LoadReport,
) -> None:
    """The calendar's services of the file; those the file loaded before and no longer lists are
    made inactive."""
    existing = {s.workflow_id: s for s in calendar.services} if not created else {}
    for service_spec in spec.services:
        workflow = workflows.get(service_spec.workflow)
        if workflow is None:
            raise NotFound(f"no workflow {service_spec.workflow!r}: load the workflows first")
        service = existing.get(workflow.id)
        service_created = service is None
        if service is None:
            service = Service(calendar_id=calendar.id, workflow_id=workflow.id)
            session.add(service)
        if _load_service(session, service, service_spec, members) or service_created:
            report.count("services", service_created)
    listed_workflows = {workflows[s.workflow].id for s in spec.services}
    for service in existing.values():
        unlisted = service.origin == "file" and service.workflow_id not in listed_workflows
        if unlisted and service.active:
            service.active = False
            report.count_removed("services")


def _load_service(
    session: Session,
    service: Service,
    spec: ServiceSpec,
    members: Mapping[str, StaffMember],
) -> bool:
    """Give ``service`` the settings and staff pool of ``spec``; whether anything changed."""
    changed = _assign(
        service,
        {"active": spec.active, "pool_by_tags": spec.staff is None, "origin": "file"},
    )
    session.flush()
    if spec.staff is not None:
        wanted = [members[slug].id for slug in spec.staff]
        current = [link.staff_id for link in service.staff_links]
        if wanted != current:
            service.staff_links.clear()
            session.flush()
            service.staff_links.extend(
                ServiceStaff(staff_id=staff_id, position=position)
                for position, staff_id in enumerate(wanted)
            )
            changed = True
    elif service.staff_links:
        service.staff_links.clear()
        changed = True
    return changed


def _load_staff(
    session: Session,
    calendar: Calendar,
    member: StaffMember | None,
    spec: StaffSpec,
    report: LoadReport,
) -> StaffMember:
    created = member is None
    if member is None:
        member = StaffMember(calendar_id=calendar.id, slug=spec.slug)
        session.add(member)
    changed = _assign(
        member,
        {
            "name": spec.name,
            "email": spec.email,
            "phone": spec.phone,
            "tags": list(spec.tags),
            "bookable": spec.bookable,
            "uses_calendar_hours": spec.hours is None,
            "origin": "file",
        },
    )
    session.flush()
    if _sync_hours(session, calendar.id, member.id, spec.hours or ()):
        changed = True
    known = {(t.start_at, t.end_at): t for t in member.time_off} if not created else {}
    for off in spec.time_off:
        existing = known.pop((off.start, off.end), None)
        if existing is None:
            session.add(
                TimeOff(staff_id=member.id, start_at=off.start, end_at=off.end, reason=off.reason)
            )
            report.count("time off", True)
        elif _assign(existing, {"reason": off.reason, "origin": "file"}):
            report.count("time off", False)
    # The file's time off that the file no longer lists: moved or removed there.
    for stale in known.values():
        if stale.origin == "file":
            session.delete(stale)
            report.count_removed("time off")
    _sync_sources(session, member, spec.calendar_feeds, report)
    if created or changed:
        report.count("staff", created)
    return member


def _sync_sources(
    session: Session, member: StaffMember, feeds: Sequence[FeedSpec], report: LoadReport
) -> None:
    """Make the member's file-managed calendar sources those of ``feeds``: new ones are read by
    the next refresh (their times are not known yet), a changed file is read again, the ones
    the file no longer lists are removed with their busy times. Sources added in the back
    office are left alone."""
    existing = {_source_key(s.kind, s.url, s.label, s.account): s for s in member.sources}
    wanted = set()
    for feed in feeds:
        key = _source_key(feed.kind, feed.url, feed.file or "", feed.account)
        wanted.add(key)
        source = existing.get(key)
        if source is None:
            source = CalendarSource(
                kind=feed.kind,
                url=feed.url,
                account=feed.account,
                label=label_of(feed.url) if feed.url is not None else (feed.file or ""),
                origin="file",
                content=feed.content,
                failures=0,
                busy_count=0,
            )
            member.sources.append(source)
            report.count("calendar feed", True)
        elif feed.content is not None and source.content != feed.content:
            source.content = feed.content
            source.last_success_at = None  # read again at the next refresh
            report.count("calendar feed", False)
    for key, source in existing.items():
        if source.origin == "file" and key not in wanted:
            session.execute(delete(BusyTime).where(BusyTime.source_id == source.id))
            member.sources.remove(source)
            report.count_removed("calendar feed")


def _source_key(
    kind: str, url: str | None, label: str, account: str | None
) -> tuple[str, str | None, str | None]:
    """What makes a source the same in the file and the database: a CalDAV calendar read with
    another account is another source (it is read again, with the other account)."""
    if kind == "file":
        return (kind, label, None)
    return (kind, url, account)


def _sync_hours(
    session: Session, calendar_id: int, staff_id: int | None, ranges: Iterable[HoursRange]
) -> bool:
    """Make the stored weekly hours equal ``ranges``; report whether anything changed."""
    rows = list(
        session.scalars(
            select(WorkingHours).where(
                WorkingHours.calendar_id == calendar_id,
                WorkingHours.staff_id.is_(None)
                if staff_id is None
                else WorkingHours.staff_id == staff_id,
            )
        )
    )
    current = sorted(HoursRange(r.weekday, r.start_minute, r.end_minute) for r in rows)
    wanted = sorted(ranges)
    if current == wanted:
        return False
    for row in rows:
        session.delete(row)
    session.flush()
    session.add_all(
        WorkingHours(
            calendar_id=calendar_id,
            staff_id=staff_id,
            weekday=r.weekday,
            start_minute=r.start_minute,
            end_minute=r.end_minute,
        )
        for r in wanted
    )
    return True


def get_calendar(session: Session, slug: str) -> Calendar:
    """The calendar ``slug``, or :class:`NotFound`."""
    calendar = session.scalar(select(Calendar).where(Calendar.slug == slug))
    if calendar is None:
        raise NotFound(f"no calendar {slug!r}")
    return calendar


def service_pool(session: Session, service: Service) -> list[StaffMember]:
    """The staff members who can take bookings of ``service``, in priority order.

    Listed members when the service lists them; otherwise every member of the calendar whose tags
    include all the tags of the workflow's current version. Members who are not bookable, or who
    have not accepted their invitation, are left out.
    """
    if service.pool_by_tags:
        workflow = workflow_of(current_version(session, service.workflow.slug))
        tags = set(workflow.staff.tags)
        members = session.scalars(
            select(StaffMember)
            .where(StaffMember.calendar_id == service.calendar_id)
            .order_by(StaffMember.id)
        )
        candidates = [m for m in members if tags <= set(m.tags)]
    else:
        candidates = [link.staff_member for link in service.staff_links]
    return [m for m in candidates if m.bookable and m.invitation == "accepted"]


# --- export (bookwise export calendars, the back office's download) ----------------------------


def calendar_specs(session: Session, slugs: Sequence[str] | None = None) -> list[CalendarSpec]:
    """What the database holds for the calendars ``slugs`` (all, in the order they were made,
    when None), as the specs a calendar data file would give: see
    :mod:`bookwise.calendars.export`. Staff removed in the back office are left out (their
    bookings keep them); time off is kept whole, past included, so that loading the export
    where it came from removes nothing. :class:`NotFound` names an unknown slug."""
    query = select(Calendar).options(
        selectinload(Calendar.staff).selectinload(StaffMember.hours),
        selectinload(Calendar.staff).selectinload(StaffMember.time_off),
        selectinload(Calendar.staff).selectinload(StaffMember.sources),
        selectinload(Calendar.services).selectinload(Service.staff_links),
        selectinload(Calendar.services).selectinload(Service.workflow),
        selectinload(Calendar.hours),
    )
    if slugs is None:
        calendars = list(session.scalars(query.order_by(Calendar.id)))
    else:
        found = {c.slug: c for c in session.scalars(query.where(Calendar.slug.in_(set(slugs))))}
        for slug in slugs:
            if slug not in found:
                known = session.scalars(select(Calendar.slug)).all()
                raise NotFound(
                    f"no calendar {slug!r}{did_you_mean(slug, known)} "
                    f"(calendars: {', '.join(sorted(known)) or 'none'})"
                )
        calendars = [found[slug] for slug in dict.fromkeys(slugs)]
    return [_calendar_spec(calendar) for calendar in calendars]


def _calendar_spec(calendar: Calendar) -> CalendarSpec:
    members = [m for m in calendar.staff if m.removed_at is None]
    present = {m.id: m.slug for m in members}
    return CalendarSpec(
        slug=calendar.slug,
        name=calendar.name,
        description=dict(calendar.description or {}),
        timezone=calendar.timezone,
        locale=calendar.default_locale,
        address=calendar.address,
        phone=calendar.phone,
        reply_to=calendar.reply_to,
        quiet_hours=stored_quiet_hours(calendar.quiet_hours),
        published=calendar.published,
        search_indexing=calendar.search_indexing,
        sign_in_required=calendar.sign_in_required,
        show_business_timezone=calendar.show_business_timezone,
        embed_origins=tuple(calendar.embed_origins or ()),
        hours=tuple(_ranges(calendar.hours)),
        staff=tuple(_staff_spec(member) for member in members),
        services=tuple(
            ServiceSpec(
                workflow=service.workflow.slug,
                staff=None
                if service.pool_by_tags
                else tuple(
                    present[link.staff_id]
                    for link in service.staff_links
                    if link.staff_id in present
                ),
                active=service.active,
            )
            for service in calendar.services
        ),
        plugins=tuple(calendar.plugins) if calendar.plugins is not None else None,
    )


def _ranges(rows: Iterable[WorkingHours]) -> list[HoursRange]:
    return sorted(HoursRange(r.weekday, r.start_minute, r.end_minute) for r in rows)


def _staff_spec(member: StaffMember) -> StaffSpec:
    return StaffSpec(
        slug=member.slug,
        name=member.name,
        email=member.email,
        phone=member.phone,
        tags=tuple(member.tags or ()),
        bookable=member.bookable,
        hours=None if member.uses_calendar_hours else tuple(_ranges(member.hours)),
        time_off=tuple(
            TimeOffSpec(start=off.start_at, end=off.end_at, reason=off.reason)
            for off in member.time_off
        ),
        calendar_feeds=tuple(
            FeedSpec(
                url=source.url,
                file=source.label if source.kind == "file" else None,
                content=None,
                account=source.account if source.kind == "caldav" else None,
            )
            for source in member.sources
        ),
    )


def export_calendars(
    session: Session,
    slugs: Sequence[str] | None,
    *,
    instance: str,
    now: datetime,
    feed_addresses: bool = False,
) -> str:
    """The calendar data file of the calendars ``slugs`` (all when None), exported from
    ``instance`` (its address) at ``now``; addresses of staff calendars only with
    ``feed_addresses`` (they may hold a secret). :class:`NotFound` names an unknown slug."""
    return calendars_yaml(
        calendar_specs(session, slugs),
        instance=instance,
        exported_at=now,
        feed_addresses=feed_addresses,
    )
