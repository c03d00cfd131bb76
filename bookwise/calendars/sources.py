"""Staff members' own calendars, read for the times they are busy elsewhere.

A source is the address of a published iCalendar feed, an uploaded .ics file, or a calendar on
a CalDAV server read with a service account of config.yaml
(:class:`~bookwise.calendars.models.CalendarSource`). Refreshing one reads it (the address over
HTTP with bookwise.calendars.fetching's limits, a CalDAV calendar with bookwise.calendars.caldav,
both outside any transaction), expands it over the
calendar's booking window (bookwise.availability.busy) and, in one transaction, replaces the
source's :class:`BusyTime` rows and records how it went. A source that fails keeps the busy times
of its last good read (garbage never frees a staff member's time), retries with a growing delay,
and after a day of failing tells the staff member and the calendar's admins, once.

Only times are kept: the stored copy of a calendar has every title, place, description and
attendee taken out (``minimize``), and busy times carry no summary.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import PurePath

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session, sessionmaker

from bookwise.accounts.models import CalendarRole, User
from bookwise.audit.services import Actor, record
from bookwise.availability.busy import BusyRead, FeedError, busy_intervals, minimize
from bookwise.calendars.caldav import fetch_caldav
from bookwise.calendars.fetching import FetchError, check_address, fetch, label_of
from bookwise.calendars.models import BusyTime, Calendar, CalendarSource, Service, StaffMember
from bookwise.config import FeedSettings
from bookwise.db import unit_of_work
from bookwise.errors import N_, BookwiseError, Message
from bookwise.notifications.models import Notification
from bookwise.workflows.language import DEFAULT_MAX_AHEAD
from bookwise.workflows.services import current_version, workflow_of

log = logging.getLogger(__name__)

# What a failing source shows, in words a staff member can act on; ``detail`` is the specifics.
ERRORS: dict[str, str] = {
    "not_http": N_("This is not a web address: it must start with https:// (%(detail)s)."),
    "private_address": N_(
        "The address points inside this server's own network (%(detail)s), which this "
        "instance does not allow. Use the calendar's public address."
    ),
    "unknown_host": N_(
        "The address's server cannot be found (%(detail)s). Check the address for typos."
    ),
    "unreachable": N_("The address's server could not be reached (%(detail)s)."),
    "timeout": N_("The address did not answer within %(detail)s seconds."),
    "not_found": N_(
        "There is no calendar at this address any more (the server answered %(detail)s): it "
        "may have been unpublished or moved, or the address was copied incompletely."
    ),
    "not_public": N_(
        "This calendar is not public (the server answered %(detail)s): publish it, or copy its "
        'public address (in Outlook, "Publish a calendar"; in Google, the secret address in '
        "iCal format)."
    ),
    "http_status": N_(
        "The calendar's server answered with an error (%(detail)s); it is tried again later."
    ),
    "redirects": N_("The address sends readers elsewhere more than %(detail)s times."),
    "too_large": N_(
        "The calendar is larger than the limit of %(detail)s bytes. Publish a shorter period "
        "or ask the administrator to raise feeds.max_bytes."
    ),
    "not_icalendar": N_(
        "This is not an iCalendar file (%(detail)s). Use the address that ends in .ics "
        '("publish" or "share" in the calendar\'s settings), not the page that shows it.'
    ),
    "too_many_events": N_(
        "The calendar has more than %(detail)s events in the booking window: ask for a "
        "calendar of working appointments only."
    ),
    "caldav_denied": N_(
        "The CalDAV server refused the account %(detail)s: check its user name and password "
        "in config.yaml, and that it may read this calendar."
    ),
    "caldav_account": N_(
        "No CalDAV account named %(detail)s in config.yaml (feeds.caldav_accounts)."
    ),
    "caldav_missing": N_(
        "CalDAV support is not installed on this server: install bookwise[caldav]."
    ),
}

# How long after a failure the next attempt comes: the refresh interval doubled at each failure
# in a row, at most six hours (a server that is down is not hammered; a fixed one recovers).
MAX_BACKOFF = timedelta(hours=6)
# A source failing this long has its staff member and calendar admins told (once).
TELL_AFTER = timedelta(days=1)
# Busy times are kept from a day back (a slot of today still needs them) to the booking window.
LOOK_BACK = timedelta(days=1)
# A re-expansion of an unchanged calendar is needed once its window has slid this far.
RE_EXPAND = timedelta(hours=12)
MAX_FILE_BYTES = 10_000_000
# Addresses read at the same time by one refresh.
READERS = 4


class SourceRefused(BookwiseError):
    """A source cannot be added as given; ``message`` says why, in words."""

    def __init__(self, message: Message) -> None:
        super().__init__(message.text % dict(message.values))
        self.message = message


def problem_of(code: str | None, detail: str | None) -> Message | None:
    """The words for a stored error (None when there is none)."""
    if code is None:
        return None
    text = ERRORS.get(code, N_("The calendar could not be read (%(detail)s)."))
    return Message(text, {"detail": detail or code})


@dataclass(frozen=True)
class RefreshOutcome:
    """One source's refresh, as ``bookwise feeds refresh`` prints it."""

    source_id: int
    calendar: str
    staff: str
    label: str
    outcome: str  # updated, unchanged, failed
    busy: int
    problem: Message | None = None


def booking_horizon(session: Session, calendar_id: int) -> timedelta:
    """How far ahead the calendar's services can be booked: the longest ``max_ahead`` of the
    workflows it offers (busy times further out would never matter)."""
    services = session.scalars(
        select(Service).where(Service.calendar_id == calendar_id, Service.active.is_(True))
    ).all()
    horizons = [
        workflow_of(current_version(session, service.workflow.slug)).max_ahead
        for service in services
    ]
    return max(horizons, default=DEFAULT_MAX_AHEAD)


def _read(text: bytes | str, timezone: str, now: datetime, horizon: timedelta) -> BusyRead:
    return busy_intervals(text, now - LOOK_BACK, now + horizon, timezone=timezone)


def _replace_busy(session: Session, source: CalendarSource, read: BusyRead) -> None:
    session.execute(delete(BusyTime).where(BusyTime.source_id == source.id))
    if read.intervals:
        session.execute(
            insert(BusyTime),
            [
                {
                    "staff_id": source.staff_id,
                    "source_id": source.id,
                    "start_at": start,
                    "end_at": end,
                    "source": "feed",
                }
                for start, end in read.intervals
            ],
        )
    source.busy_count = len(read.intervals)


def add_url_source(
    session: Session, member: StaffMember, url: str, *, actor: Actor, now: datetime
) -> CalendarSource:
    """Add the calendar address ``url`` to ``member``'s sources (read at the next refresh, or
    at once by the caller); :class:`SourceRefused` when it is no web address or already there."""
    source = _add_address_source(session, member, "url", _new_address(member, url), None, now)
    _audit(session, "staff.calendar_added", actor, member, {"source": source.label})
    return source


def _new_address(member: StaffMember, url: str) -> str:
    """``url`` as stored (stripped, webcal:// read as https://); :class:`SourceRefused` when it
    is no web address or already one of ``member``'s calendars."""
    try:
        url = check_address(url)
    except FetchError as exc:
        raise SourceRefused(problem_of(exc.code, exc.detail) or Message(exc.code)) from None
    if any(s.url == url for s in member.sources):
        raise SourceRefused(Message(N_("This address is already one of this person's calendars.")))
    return url


def _add_address_source(
    session: Session,
    member: StaffMember,
    kind: str,
    url: str,
    account: str | None,
    now: datetime,
) -> CalendarSource:
    """A new source read from ``url`` (a plain address, or a CalDAV calendar with ``account``),
    due at once."""
    source = CalendarSource(
        staff_member=member,
        kind=kind,
        url=url,
        account=account,
        label=label_of(url),
        origin="admin",
        failures=0,
        busy_count=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(source)
    session.flush()
    return source


def add_caldav_source(
    session: Session,
    member: StaffMember,
    url: str,
    account: str,
    *,
    actor: Actor,
    now: datetime,
    settings: FeedSettings,
) -> CalendarSource:
    """Add the calendar collection at ``url`` on a CalDAV server, read with the configured
    service account ``account``, to ``member``'s sources (read at the next refresh, or at once
    by the caller); :class:`SourceRefused` when it is no web address, the account is not in
    config.yaml, or the calendar is already there."""
    url = _new_address(member, url)
    if account not in settings.caldav_accounts:
        raise SourceRefused(Message(ERRORS["caldav_account"], {"detail": repr(account)}))
    source = _add_address_source(session, member, "caldav", url, account, now)
    _audit(
        session,
        "staff.calendar_added",
        actor,
        member,
        {"source": source.label, "caldav_account": account},
    )
    return source


def add_file_source(
    session: Session,
    member: StaffMember,
    name: str,
    data: bytes,
    *,
    actor: Actor,
    now: datetime,
    origin: str = "admin",
) -> CalendarSource:
    """Add an uploaded .ics file to ``member``'s sources and read its busy times at once;
    :class:`SourceRefused` (nothing written) when it is too large or not a calendar."""
    label = PurePath(name.replace("\\", "/")).name[:200] or "calendar.ics"
    if len(data) > MAX_FILE_BYTES:
        raise SourceRefused(Message(ERRORS["too_large"], {"detail": str(MAX_FILE_BYTES)}))
    calendar = member.calendar
    try:
        content = minimize(data)
        read = _read(content, calendar.timezone, now, booking_horizon(session, calendar.id))
    except FeedError as exc:
        raise SourceRefused(problem_of(exc.code, _detail(exc)) or exc.message) from None
    source = CalendarSource(
        staff_member=member,
        kind="file",
        label=label,
        origin=origin,
        content=content,
        failures=0,
        busy_count=0,
        last_attempt_at=now,
        last_success_at=now,
        expanded_until=now + booking_horizon(session, calendar.id),
        created_at=now,
    )
    session.add(source)
    session.flush()
    _replace_busy(session, source, read)
    _audit(
        session,
        "staff.calendar_added",
        actor,
        member,
        {"source": label, "busy": len(read.intervals)},
    )
    return source


def remove_source(session: Session, source: CalendarSource, *, actor: Actor) -> None:
    """Remove a source and the busy times read from it (its times are free again)."""
    member = source.staff_member
    session.execute(delete(BusyTime).where(BusyTime.source_id == source.id))
    _audit(session, "staff.calendar_removed", actor, member, {"source": source.label})
    session.delete(source)


def _audit(
    session: Session, action: str, actor: Actor, member: StaffMember, details: dict[str, object]
) -> None:
    record(
        session,
        action,
        actor,
        object_type="staff",
        object_id=member.slug,
        calendar_id=member.calendar_id,
        details=details,
    )


def _detail(exc: FeedError) -> str:
    return str(exc.message.values.get("detail", exc.code))


def _backoff(settings: FeedSettings, failures: int) -> timedelta:
    step: timedelta = timedelta(minutes=settings.refresh_minutes) * (2 ** min(failures, 10))
    return min(step, MAX_BACKOFF)


@dataclass(frozen=True)
class _Target:
    id: int
    kind: str
    url: str | None
    account: str | None
    etag: str | None
    last_modified: str | None
    content: str | None
    expanded_until: datetime | None
    timezone: str
    calendar: str
    calendar_id: int
    staff: str
    label: str


def _targets(
    session: Session, *, now: datetime, calendar: str | None, force: bool, ids: list[int] | None
) -> list[_Target]:
    query = (
        select(CalendarSource, StaffMember, Calendar)
        .join(StaffMember, CalendarSource.staff_id == StaffMember.id)
        .join(Calendar, StaffMember.calendar_id == Calendar.id)
        .where(StaffMember.removed_at.is_(None))
        .order_by(CalendarSource.id)
    )
    if calendar is not None:
        query = query.where(Calendar.slug == calendar)
    if ids is not None:
        query = query.where(CalendarSource.id.in_(ids))
    targets = []
    for source, member, cal in session.execute(query):
        if source.kind == "file":
            # A file never changes: it is read again only as the booking window slides.
            due = source.last_success_at is None or source.last_success_at <= now - RE_EXPAND
        else:
            due = source.next_attempt_at is None or source.next_attempt_at <= now
        if not (force or due):
            continue
        targets.append(
            _Target(
                source.id,
                source.kind,
                source.url,
                source.account,
                source.etag,
                source.last_modified,
                source.content,
                source.expanded_until,
                cal.timezone,
                cal.slug,
                cal.id,
                member.slug,
                source.label,
            )
        )
    return targets


def refresh_sources(
    sessions: sessionmaker[Session],
    settings: FeedSettings,
    now: datetime,
    *,
    calendar: str | None = None,
    force: bool = False,
    ids: list[int] | None = None,
) -> list[RefreshOutcome]:
    """Refresh the sources that are due (every one with ``force``), of one ``calendar`` or all;
    then tell people about the sources that have failed for a day. One outcome per source."""
    with sessions() as session:
        targets = _targets(session, now=now, calendar=calendar, force=force, ids=ids)
        horizons = {t.calendar_id: booking_horizon(session, t.calendar_id) for t in targets}
    # A few addresses at once: one slow server does not hold the others up.
    with ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="calendar-feed") as pool:
        outcomes = list(
            pool.map(
                lambda t: refresh_one(sessions, t, settings, now, horizons[t.calendar_id]),
                targets,
            )
        )
    with unit_of_work(sessions, write=True) as session:
        tell_about_failures(session, now)
    return outcomes


def refresh_one(
    sessions: sessionmaker[Session],
    target: _Target,
    settings: FeedSettings,
    now: datetime,
    horizon: timedelta,
) -> RefreshOutcome:
    """Read one source (the network outside any transaction), then record the result."""
    fetched_body: bytes | None = None
    etag, last_modified = target.etag, target.last_modified
    outcome = "updated"
    try:
        if target.kind == "url":
            assert target.url is not None
            fetched = fetch(target.url, settings, etag=etag, last_modified=last_modified)
            fetched_body, etag, last_modified = fetched.body, fetched.etag, fetched.last_modified
        elif target.kind == "caldav":
            # No ETag for a search: read again each time (the server does the filtering).
            assert target.url is not None
            fetched_body = fetch_caldav(
                target.url, target.account, settings, now - LOOK_BACK, now + horizon
            ).encode("utf-8")
        content = minimize(fetched_body) if fetched_body is not None else target.content
        if fetched_body is None and target.kind == "url":
            outcome = "unchanged"  # 304: the calendar did not change (its window may have)
        if content is None:  # 304 for a calendar never read: read it whole next time
            etag = last_modified = None
            raise FetchError("http_status", "304")
        window_moved = target.expanded_until is None or (
            target.expanded_until < now + horizon - RE_EXPAND
        )
        read = (
            _read(content, target.timezone, now, horizon)
            if fetched_body is not None or window_moved
            else None
        )
    except (FetchError, FeedError) as exc:
        code = exc.code
        detail = exc.detail if isinstance(exc, FetchError) else _detail(exc)
        return _record_failure(sessions, target, settings, now, code, detail)
    with unit_of_work(sessions, write=True) as session:
        source = session.scalar(
            select(CalendarSource).where(CalendarSource.id == target.id).with_for_update()
        )
        if source is None:  # removed meanwhile
            return RefreshOutcome(target.id, target.calendar, target.staff, target.label, "gone", 0)
        if read is not None:
            _replace_busy(session, source, read)
            source.expanded_until = now + horizon
        if fetched_body is not None:
            source.content = content
        source.etag, source.last_modified = etag, last_modified
        source.last_attempt_at = source.last_success_at = now
        source.next_attempt_at = now + timedelta(minutes=settings.refresh_minutes)
        source.failures = 0
        source.failing_since = source.failure_notified_at = None
        source.error_code = source.error_detail = None
        busy = source.busy_count
    return RefreshOutcome(target.id, target.calendar, target.staff, target.label, outcome, busy)


def _record_failure(
    sessions: sessionmaker[Session],
    target: _Target,
    settings: FeedSettings,
    now: datetime,
    code: str,
    detail: str,
) -> RefreshOutcome:
    log.info("calendar source %s (%s) failed: %s %s", target.id, target.label, code, detail)
    with unit_of_work(sessions, write=True) as session:
        source = session.scalar(
            select(CalendarSource).where(CalendarSource.id == target.id).with_for_update()
        )
        if source is None:
            return RefreshOutcome(target.id, target.calendar, target.staff, target.label, "gone", 0)
        source.failures += 1
        source.last_attempt_at = now
        source.failing_since = source.failing_since or now
        source.error_code, source.error_detail = code, detail[:500]
        source.next_attempt_at = now + _backoff(settings, source.failures - 1)
        busy = source.busy_count
    return RefreshOutcome(
        target.id,
        target.calendar,
        target.staff,
        target.label,
        "failed",
        busy,
        problem_of(code, detail),
    )


def tell_about_failures(session: Session, now: datetime) -> int:
    """E-mail the staff member and the calendar's admins about each source failing for a day
    (once per failing spell); the number of sources told about."""
    sources = session.scalars(
        select(CalendarSource).where(
            CalendarSource.failing_since <= now - TELL_AFTER,
            CalendarSource.failure_notified_at.is_(None),
        )
    ).all()
    for source in sources:
        member = source.staff_member
        if member.removed_at is not None:
            continue
        for email in _people_to_tell(session, member):
            _plan_failure_notice(session, source, member, email, now)
        source.failure_notified_at = now
    return len(sources)


def _people_to_tell(session: Session, member: StaffMember) -> list[str]:
    admins = session.scalars(
        select(User.email)
        .join(CalendarRole, CalendarRole.user_id == User.id)
        .where(
            CalendarRole.calendar_id == member.calendar_id,
            CalendarRole.role == "admin",
            User.active.is_(True),
        )
    ).all()
    seen: dict[str, None] = {}
    for email in [member.email, *admins]:
        if email and email.lower() not in {e.lower() for e in seen}:
            seen[email] = None
    return list(seen)


def _plan_failure_notice(
    session: Session, source: CalendarSource, member: StaffMember, email: str, now: datetime
) -> None:
    calendar = member.calendar
    assert source.failing_since is not None
    session.add(
        Notification(
            idempotency_key=f"calendar-feed-failing:{source.id}:{source.failing_since.isoformat()}"
            f":{email.lower()}",
            booking_id=None,
            calendar_id=calendar.id,
            event="calendar-feed-failing",
            rule_key=None,
            channel="email",
            recipient_kind="staff",
            recipient=email,
            template="calendar-feed-failing",
            locale=calendar.default_locale,
            timezone=calendar.timezone,
            due_at=now,
            payload={"source_id": source.id, "staff_id": member.id},
        )
    )


@dataclass(frozen=True)
class SourceStatus:
    """One source as ``bookwise feeds status`` and the back office show it."""

    id: int
    calendar: str
    staff: str
    staff_id: int
    staff_name: str
    kind: str
    label: str
    last_success_at: datetime | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    failing_since: datetime | None
    busy: int
    problem: Message | None
    account: str | None = None  # the CalDAV account of a "caldav" source

    @property
    def failing(self) -> bool:
        return self.problem is not None


def source_statuses(
    session: Session, *, calendar: str | None = None, staff_id: int | None = None
) -> list[SourceStatus]:
    """The sources of every calendar (or one, or one staff member), by calendar and staff."""
    query = (
        select(CalendarSource, StaffMember, Calendar)
        .join(StaffMember, CalendarSource.staff_id == StaffMember.id)
        .join(Calendar, StaffMember.calendar_id == Calendar.id)
        .where(StaffMember.removed_at.is_(None))
        .order_by(Calendar.slug, StaffMember.slug, CalendarSource.id)
    )
    if calendar is not None:
        query = query.where(Calendar.slug == calendar)
    if staff_id is not None:
        query = query.where(StaffMember.id == staff_id)
    return [
        SourceStatus(
            id=source.id,
            calendar=cal.slug,
            staff=member.slug,
            staff_id=member.id,
            staff_name=member.name,
            kind=source.kind,
            label=source.label,
            last_success_at=source.last_success_at,
            last_attempt_at=source.last_attempt_at,
            next_attempt_at=source.next_attempt_at,
            failing_since=source.failing_since,
            busy=source.busy_count,
            problem=source_problem(source),
            account=source.account,
        )
        for source, member, cal in session.execute(query)
    ]


def source_problem(source: CalendarSource) -> Message | None:
    """What is wrong with ``source`` now, in words (None when its last read worked)."""
    return problem_of(source.error_code, source.error_detail)


def in_words(problem: Message, gettext: Callable[..., str]) -> str:
    """``problem`` in the reader's language, its ``detail`` too when it is one of the parser's
    fixed phrases ("it looks like a web page"); a status or a host stays as it is."""
    values = dict(problem.values)
    if isinstance(values.get("detail"), str):
        values["detail"] = gettext(values["detail"])
    return Message(problem.text, values).translate(gettext)


def translate_problem(source: CalendarSource, gettext: Callable[..., str]) -> str:
    """The source's problem in the reader's language ("" when there is none)."""
    problem = source_problem(source)
    return in_words(problem, gettext) if problem is not None else ""


__all__ = [
    "ERRORS",
    "RefreshOutcome",
    "SourceRefused",
    "SourceStatus",
    "add_caldav_source",
    "add_file_source",
    "add_url_source",
    "booking_horizon",
    "in_words",
    "problem_of",
    "refresh_one",
    "refresh_sources",
    "remove_source",
    "source_problem",
    "source_statuses",
    "tell_about_failures",
    "translate_problem",
]
