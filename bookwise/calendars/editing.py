"""Changing calendars, staff, hours, time off and services from the back office.

The rules a calendar data file follows (the JSON Schema's patterns for identifiers, e-mails,
phones and web origins) are the rules here, read from the same schema. Errors are
:class:`~bookwise.errors.InvalidInput` naming each field, worded for translation. Every function
adds an audit entry to the caller's transaction; the caller commits.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bookwise.audit.services import Actor, record
from bookwise.bookings.models import Booking
from bookwise.calendars.data import RESERVED_SLUGS
from bookwise.calendars.models import (
    Calendar,
    Service,
    ServiceStaff,
    StaffMember,
    TimeOff,
    WorkingHours,
)
from bookwise.documents import load_schema
from bookwise.errors import N_, BookwiseError, InvalidInput, Message, NotFound
from bookwise.notifications.context import calendar_values
from bookwise.notifications.models import Notification
from bookwise.notifications.planning import plan_staff_notice, plan_time_off_notice
from bookwise.notifications.quiet import QuietHours, minute_of, stored_quiet_hours
from bookwise.text import slugify, unstorable_text
from bookwise.timezones import parse_zone
from bookwise.workflows.loader import CheckedWorkflow
from bookwise.workflows.models import WorkflowRecord
from bookwise.workflows.services import create_workflow

if TYPE_CHECKING:
    from bookwise.plugins.host import PluginHost

INVITATION_DAYS = 30
# Weekday ranges: (weekday 0-6, start minute, end minute), in the calendar's time zone.
Hours = Sequence[tuple[int, int, int]]


@cache
def _pattern(name: str) -> re.Pattern[str]:
    schema = load_schema("bookwise.calendars", "calendars.schema.json")
    return re.compile(schema["$defs"][name]["pattern"])


def _problem(text: str, **values: object) -> Message:
    return Message(text, values)


def check_email(value: str) -> bool:
    return len(value) <= 320 and bool(_pattern("email").match(value))


def check_phone(value: str) -> bool:
    return bool(_pattern("phone").match(value))


def check_slug(value: str) -> bool:
    return bool(_pattern("slug").match(value))


def check_origin(value: str) -> bool:
    return len(value) <= 200 and bool(_pattern("origin").match(value))


def _audit(
    session: Session,
    actor: str,
    action: str,
    calendar_id: int | None,
    object_type: str,
    object_id: Any,
    details: dict[str, Any] | None = None,
    ip: str | None = None,
) -> None:
    record(
        session,
        action,
        Actor(actor, ip=ip),
        object_type=object_type,
        object_id=object_id,
        calendar_id=calendar_id,
        details=details,
    )


# --- calendars -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CalendarSettings:
    """What the settings form of a calendar holds."""

    name: str
    slug: str
    timezone: str
    default_locale: str
    description: Mapping[str, str]
    address: str = ""
    phone: str = ""
    reply_to: str = ""
    published: bool = True
    search_indexing: bool = True
    sign_in_required: bool = False
    show_business_timezone: bool = False
    embed_origins: tuple[str, ...] = ()
    # The non-core plugins the calendar uses; None: every plugin enabled on the instance.
    plugins: tuple[str, ...] | None = None
    # Whether subscribed feeds (bookwise.calendars.feeds) name each booking's client; off by
    # default, for health and HR calendars.
    feed_client_names: bool = False
    # Quiet hours (``HH:MM``; both empty: none); ``quiet_email``: e-mail waits too.
    quiet_from: str = ""
    quiet_to: str = ""
    quiet_email: bool = False

    @property
    def quiet_hours(self) -> QuietHours | None:
        """The quiet hours the form gives (None: none; the form was checked)."""
        if not (self.quiet_from.strip() and self.quiet_to.strip()):
            return None
        start, end = minute_of(self.quiet_from.strip()), minute_of(self.quiet_to.strip())
        return QuietHours(start, end, self.quiet_email) if start != end else None


def quiet_hours_values(calendar: Calendar) -> dict[str, Any]:
    """The calendar's quiet hours as the settings form shows them."""
    hours = stored_quiet_hours(calendar.quiet_hours)
    if hours is None:
        return {"quiet_from": "", "quiet_to": "", "quiet_email": False}
    spec = hours.to_spec()
    return {"quiet_from": spec["from"], "quiet_to": spec["to"], "quiet_email": hours.email}


def settings_of(calendar: Calendar) -> CalendarSettings:
    """The settings ``calendar`` has now, as its settings form holds them."""
    return CalendarSettings(
        name=calendar.name,
        slug=calendar.slug,
        timezone=calendar.timezone,
        default_locale=calendar.default_locale,
        description=dict(calendar.description or {}),
        address=calendar.address or "",
        phone=calendar.phone or "",
        reply_to=calendar.reply_to or "",
        published=calendar.published,
        search_indexing=calendar.search_indexing,
        sign_in_required=calendar.sign_in_required,
        show_business_timezone=calendar.show_business_timezone,
        embed_origins=tuple(calendar.embed_origins or ()),
        plugins=None if calendar.plugins is None else tuple(calendar.plugins),
        feed_client_names=calendar.feed_client_names,
        **quiet_hours_values(calendar),
    )


def parse_origins(text: str) -> tuple[str, ...]:
    """One web origin per line (or separated by spaces or commas), lowercased, without doubles."""
    seen: list[str] = []
    for item in re.split(r"[\s,]+", text.strip()):
        origin = item.strip().rstrip("/").lower()
        if origin and origin not in seen:
            seen.append(origin)
    return tuple(seen)


def _wrong_name(name: str, missing: str) -> Message | None:
    """What is wrong with a name typed in the back office: ``missing`` when it is empty or too
    long; a character that cannot be stored or that would break an e-mail header or a calendar
    file (see :func:`bookwise.text.unstorable_text`)."""
    if not name.strip() or len(name) > 200:
        return _problem(missing)
    return unstorable_text(name)


def _wrong_slug(session: Session, slug: str, calendar_id: int | None) -> Message | None:
    """What is wrong with ``slug`` as a calendar's address: its form, one of the application's
    own pages (bookwise.calendars.data.RESERVED_SLUGS, as `bookwise load` refuses), or another
    calendar's."""
    if not check_slug(slug):
        return _problem(N_("Use lowercase letters, digits and dashes, like city-clinic."))
    if slug in RESERVED_SLUGS:
        return _problem(
            N_("This address is one of Bookwise's own pages; choose another, like city-clinic.")
        )
    taken = session.scalar(
        select(Calendar.id).where(Calendar.slug == slug, Calendar.id != calendar_id)
    )
    if taken is not None:
        return _problem(N_("Another calendar already has this address."))
    return None


def check_settings(
    session: Session,
    values: CalendarSettings,
    locales: Sequence[str],
    calendar_id: int | None,
    allowed_plugins: Collection[str] = frozenset(),
    needed_plugins: Mapping[str, str] | None = None,
) -> None:
    """:class:`InvalidInput` naming every field that cannot be saved. ``allowed_plugins``: the
    plugins the calendar may name (the instance's loaded non-core ones, and those it names
    already, so that a plugin disabled on the instance does not stop other changes);
    ``needed_plugins``: plugin -> the name of a service of the calendar that needs it (see
    :func:`plugins_needed`)."""
    problems: dict[str, Message] = {}
    if bad_name := _wrong_name(
        values.name, N_("Give the calendar a name (200 characters at most).")
    ):
        problems["name"] = bad_name
    if bad_slug := _wrong_slug(session, values.slug, calendar_id):
        problems["slug"] = bad_slug
    if parse_zone(values.timezone) is None:
        problems["timezone"] = _problem(N_("Choose a time zone from the list, like Europe/Paris."))
    if values.default_locale not in locales:
        problems["default_locale"] = _problem(
            N_("Choose one of the languages of this instance: %(locales)s."),
            locales=", ".join(locales),
        )
    if values.phone and not check_phone(values.phone):
        problems["phone"] = _problem(
            N_("Write the number in international format, like +33 1 23 45 67 89.")
        )
    if values.reply_to and not check_email(values.reply_to):
        problems["reply_to"] = _problem(N_("This is not an e-mail address."))
    if len(values.address) > 500:
        problems["address"] = _problem(N_("The address is too long (500 characters at most)."))
    elif wrong_address := unstorable_text(values.address, multiline=True):
        problems["address"] = wrong_address
    wrong = [o for o in values.embed_origins if not check_origin(o)]
    if wrong:
        problems["embed_origins"] = _problem(
            N_("%(origin)s is not a web origin; write it like https://www.example.org (no path)."),
            origin=wrong[0],
        )
    if len(values.embed_origins) > 20:
        problems["embed_origins"] = _problem(N_("At most 20 sites may embed the page."))
    for locale, text in values.description.items():
        if len(text) > 2000:
            problems[f"description_{locale}"] = _problem(
                N_("The description is too long (2,000 characters at most).")
            )
        elif wrong_text := unstorable_text(text, multiline=True):
            problems[f"description_{locale}"] = wrong_text
    problems.update(_quiet_hours_problems(values))
    plugins = _plugins_problem(values.plugins, allowed_plugins) or _needed_problem(
        values.plugins, needed_plugins or {}
    )
    if plugins is not None:
        problems["plugins"] = plugins
    if problems:
        raise InvalidInput(problems)


_CLOCK = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")


def _quiet_hours_problems(values: CalendarSettings) -> dict[str, Message]:
    """The quiet hours' fields that cannot be saved: both times or neither, each a time of
    day, and not the same."""
    problems: dict[str, Message] = {}
    given = {"quiet_from": values.quiet_from.strip(), "quiet_to": values.quiet_to.strip()}
    if not any(given.values()):
        return problems
    for name, text in given.items():
        if not text:
            problems[name] = _problem(N_("Give both times of the quiet hours, or neither."))
        elif not _CLOCK.fullmatch(text):
            problems[name] = _problem(N_("Write a time of day, like 21:00."))
    if not problems and given["quiet_from"] == given["quiet_to"]:
        problems["quiet_to"] = _problem(
            N_("The quiet hours end when they begin: give the time they end, like 08:00.")
        )
    return problems


def _plugins_problem(chosen: Sequence[str] | None, allowed: Collection[str]) -> Message | None:
    unknown = [name for name in chosen or () if name not in allowed]
    if unknown:
        return _problem(
            N_("%(plugin)s is not a plugin enabled on this Bookwise; choose among those listed."),
            plugin=unknown[0],
        )
    if chosen is not None and len(set(chosen)) != len(chosen):
        return _problem(N_("Each plugin may be chosen once."))
    return None


def _needed_problem(chosen: Sequence[str] | None, needed: Mapping[str, str]) -> Message | None:
    missing = [name for name in needed if chosen is not None and name not in chosen]
    if missing:
        return _problem(
            N_(
                "The service %(service)s makes its video links with %(plugin)s: tick "
                "%(plugin)s, or give the service another place first."
            ),
            service=needed[missing[0]],
            plugin=missing[0],
        )
    return None


def plugins_needed(
    session: Session, calendar: Calendar, owner_of: Callable[[str], str | None]
) -> dict[str, str]:
    """The optional plugins the services of ``calendar`` need, each with the name of the first
    service that needs it: the plugin of an online meeting provider (``owner_of(provider)``:
    its optional plugin, or None for none)."""
    from bookwise.workflows.services import current_version, workflow_of

    needed: dict[str, str] = {}
    for service in calendar.services:
        workflow = workflow_of(current_version(session, service.workflow.slug))
        provider = workflow.location.provider if workflow.location.type == "online" else None
        owner = owner_of(provider) if provider else None
        if owner is not None:
            needed.setdefault(owner, workflow.name.get(calendar.default_locale))
    return needed


def _apply_settings(calendar: Calendar, values: CalendarSettings) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    fields = {
        "name": values.name.strip(),
        "slug": values.slug,
        "timezone": values.timezone,
        "default_locale": values.default_locale,
        "description": {k: v.strip() for k, v in values.description.items() if v.strip()},
        "address": values.address.strip() or None,
        "phone": values.phone.strip() or None,
        "reply_to": values.reply_to.strip() or None,
        "published": values.published,
        "search_indexing": values.search_indexing,
        "sign_in_required": values.sign_in_required,
        "show_business_timezone": values.show_business_timezone,
        "embed_origins": list(values.embed_origins),
        "plugins": list(values.plugins) if values.plugins is not None else None,
        "feed_client_names": values.feed_client_names,
        "quiet_hours": values.quiet_hours.to_spec() if values.quiet_hours else None,
    }
    for name, value in fields.items():
        if getattr(calendar, name) != value:
            changes[name] = value
            setattr(calendar, name, value)
    return changes


def create_calendar(
    session: Session,
    values: CalendarSettings,
    locales: Sequence[str],
    actor: str,
    ip: str | None,
    offered_plugins: Collection[str] = frozenset(),
) -> Calendar:
    """A new calendar with ``values``, open Monday to Friday. ``offered_plugins``: the
    instance's loaded non-core plugins, which ``values.plugins`` may name."""
    check_settings(session, values, locales, None, offered_plugins)
    calendar = Calendar(slug=values.slug, name=values.name, timezone=values.timezone)
    _apply_settings(calendar, values)
    session.add(calendar)
    session.flush()
    for weekday in range(5):  # a new calendar opens Monday to Friday, 09:00-17:00
        session.add(
            WorkingHours(
                calendar_id=calendar.id, weekday=weekday, start_minute=540, end_minute=1020
            )
        )
    _audit(session, actor, "calendar.created", calendar.id, "calendar", calendar.slug, ip=ip)
    return calendar


def update_calendar(
    session: Session,
    calendar: Calendar,
    values: CalendarSettings,
    locales: Sequence[str],
    actor: str,
    ip: str | None,
    offered_plugins: Collection[str] = frozenset(),
    needed_plugins: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Save the settings; the changed fields (for the audit log and the message).

    ``offered_plugins`` are the instance's loaded non-core plugins: ``values.plugins`` may name
    them and those the calendar names already. A change of plugins is audited with the choice
    before and after.
    """
    before = None if calendar.plugins is None else list(calendar.plugins)
    allowed = {*offered_plugins, *(calendar.plugins or ())}
    check_settings(session, values, locales, calendar.id, allowed, needed_plugins)
    changes = _apply_settings(calendar, values)
    if changes:
        details: dict[str, Any] = {"changed": sorted(changes)}
        if "plugins" in changes:
            details["plugins"] = {"from": before, "to": changes["plugins"]}
        _audit(
            session,
            actor,
            "calendar.updated",
            calendar.id,
            "calendar",
            calendar.slug,
            details,
            ip,
        )
    return changes


def check_hours(hours: Hours) -> dict[str, Message]:
    """Ranges that end before they start or overlap another of the same day."""
    problems: dict[str, Message] = {}
    by_day: dict[int, list[tuple[int, int]]] = {}
    for weekday, start, end in hours:
        if not (0 <= start < end <= 1440):
            problems[f"day_{weekday}"] = _problem(N_("A range ends before it starts."))
            continue
        by_day.setdefault(weekday, []).append((start, end))
    for weekday, ranges in by_day.items():
        ranges.sort()
        for (_, previous_end), (start, _) in pairwise(ranges):
            if start < previous_end:
                problems[f"day_{weekday}"] = _problem(N_("Two ranges of this day overlap."))
    return problems


def parse_hours_text(text: str) -> list[tuple[int, int]]:
    """``"09:00-12:00, 13:00-17:30"`` -> minute ranges; :class:`ValueError` when unreadable."""
    ranges = []
    for part in re.split(r"[,;\s]+", text.strip()):
        if not part:
            continue
        if not _pattern("range").match(part):
            raise ValueError(part)
        start, end = part.split("-")
        ranges.append((_minutes(start), _minutes(end)))
    return ranges


def _minutes(value: str) -> int:
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def format_hours(ranges: Iterable[tuple[int, int]]) -> str:
    return ", ".join(f"{_clock(s)}-{_clock(e)}" for s, e in ranges)


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def set_hours(
    session: Session,
    calendar: Calendar,
    member: StaffMember | None,
    hours: Hours,
    actor: str,
    ip: str | None,
) -> None:
    """Replace the working hours of the calendar (``member`` None) or of one staff member."""
    problems = check_hours(hours)
    if problems:
        raise InvalidInput(problems)
    staff_id = member.id if member is not None else None
    existing = session.scalars(
        select(WorkingHours).where(
            WorkingHours.calendar_id == calendar.id,
            WorkingHours.staff_id.is_(None)
            if staff_id is None
            else WorkingHours.staff_id == staff_id,
        )
    ).all()
    for row in existing:
        session.delete(row)
    session.flush()
    for weekday, start, end in sorted(hours):
        session.add(
            WorkingHours(
                calendar_id=calendar.id,
                staff_id=staff_id,
                weekday=weekday,
                start_minute=start,
                end_minute=end,
            )
        )
    if member is not None:
        member.uses_calendar_hours = not hours
    _audit(
        session,
        actor,
        "hours.updated",
        calendar.id,
        "staff" if member else "calendar",
        member.slug if member else calendar.slug,
        {"ranges": len(hours)},
        ip,
    )


def clone_calendar(
    session: Session,
    source: Calendar,
    slug: str,
    name: str,
    locales: Sequence[str],
    actor: str,
    ip: str | None,
) -> Calendar:
    """A new calendar with the settings, hours, staff (and their hours) and services of
    ``source`` (Microsoft Bookings' "clone a calendar"); bookings and time off stay behind."""
    # A clone is prepared before it is opened to clients: unpublished.
    values = replace(settings_of(source), name=name, slug=slug, published=False)
    check_settings(session, values, locales, None, source.plugins or ())
    clone = Calendar(slug=slug, name=name, timezone=source.timezone)
    _apply_settings(clone, values)
    session.add(clone)
    session.flush()
    for hours in source.hours:
        session.add(
            WorkingHours(
                calendar_id=clone.id,
                weekday=hours.weekday,
                start_minute=hours.start_minute,
                end_minute=hours.end_minute,
            )
        )
    members: dict[int, StaffMember] = {}
    for member in source.staff:
        if member.removed_at is not None:
            continue
        copy = StaffMember(
            calendar_id=clone.id,
            slug=member.slug,
            name=member.name,
            email=member.email,
            phone=member.phone,
            tags=list(member.tags),
            bookable=member.bookable,
            invitation=member.invitation,
            uses_calendar_hours=member.uses_calendar_hours,
            origin="admin",
            user_id=member.user_id,
        )
        session.add(copy)
        session.flush()
        members[member.id] = copy
        for hours in member.hours:
            session.add(
                WorkingHours(
                    calendar_id=clone.id,
                    staff_id=copy.id,
                    weekday=hours.weekday,
                    start_minute=hours.start_minute,
                    end_minute=hours.end_minute,
                )
            )
    for service in source.services:
        copy_service = Service(
            calendar_id=clone.id,
            workflow_id=service.workflow_id,
            active=service.active,
            pool_by_tags=service.pool_by_tags,
            origin="admin",
        )
        session.add(copy_service)
        session.flush()
        for link in service.staff_links:
            if link.staff_id in members:
                session.add(
                    ServiceStaff(
                        service_id=copy_service.id,
                        staff_id=members[link.staff_id].id,
                        position=link.position,
                    )
                )
    _audit(
        session,
        actor,
        "calendar.cloned",
        clone.id,
        "calendar",
        clone.slug,
        {"from": source.slug},
        ip,
    )
    return clone


# --- staff ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffValues:
    name: str
    email: str
    phone: str = ""
    tags: tuple[str, ...] = ()
    bookable: bool = True


def parse_tags(text: str) -> tuple[str, ...]:
    tags: list[str] = []
    for item in re.split(r"[\s,]+", text.strip().lower()):
        if item and item not in tags:
            tags.append(item)
    return tuple(tags)


def check_staff(values: StaffValues) -> None:
    problems: dict[str, Message] = {}
    if wrong := _wrong_name(values.name, N_("Give the name (200 characters at most).")):
        problems["name"] = wrong
    if not check_email(values.email.strip()):
        problems["email"] = _problem(N_("This is not an e-mail address."))
    if values.phone and not check_phone(values.phone.strip()):
        problems["phone"] = _problem(
            N_("Write the number in international format, like +33 1 23 45 67 89.")
        )
    bad = [t for t in values.tags if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", t) or len(t) > 40]
    if bad:
        problems["tags"] = _problem(
            N_("%(tag)s is not a tag; use lowercase letters, digits, dashes and underscores."),
            tag=bad[0],
        )
    if problems:
        raise InvalidInput(problems)


def _check_email_free(
    session: Session, calendar_id: int, email: str, member_id: int | None = None
) -> None:
    """:class:`InvalidInput` when another member of the calendar (not removed) has ``email``
    (in any case): their invitations, messages and sign-in would be mixed up."""
    taken = session.scalar(
        select(StaffMember.id).where(
            StaffMember.calendar_id == calendar_id,
            func.lower(StaffMember.email) == email.strip().lower(),
            StaffMember.removed_at.is_(None),
            StaffMember.id != (member_id or 0),
        )
    )
    if taken is not None:
        raise InvalidInput(
            {"email": _problem(N_("Another staff member of this calendar has this address."))}
        )


def _unique_slug(session: Session, calendar_id: int, name: str) -> str:
    base = slugify(name) or "staff"
    taken = set(
        session.scalars(select(StaffMember.slug).where(StaffMember.calendar_id == calendar_id))
    )
    slug, number = base, 2
    while slug in taken:
        slug = f"{base[:56]}-{number}"
        number += 1
    return slug


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="bookwise-staff-invitation")


def invitation_token(secret: str, member: StaffMember) -> str:
    """A link token naming the member and their e-mail: a changed address voids old links."""
    return _serializer(secret).dumps({"staff": member.id, "email": member.email})


def add_staff(
    session: Session,
    calendar: Calendar,
    values: StaffValues,
    *,
    secret: str,
    base_url: str,
    now: datetime,
    actor: str,
    ip: str | None,
) -> StaffMember:
    """Add a staff member, pending until they accept the invitation e-mailed to them."""
    check_staff(values)
    _check_email_free(session, calendar.id, values.email)
    for attempt in range(5):
        member = StaffMember(
            calendar_id=calendar.id,
            slug=_unique_slug(session, calendar.id, values.name),
            name=values.name.strip(),
            email=values.email.strip(),
            phone=values.phone.strip() or None,
            tags=list(values.tags),
            bookable=values.bookable,
            invitation="pending",
            origin="admin",
        )
        try:
            with session.begin_nested():
                session.add(member)
        except IntegrityError:  # a namesake added at the same moment took the id: the next one
            if attempt == 4:
                raise
        else:
            break
    plan_invitation(session, member, secret=secret, base_url=base_url, now=now)
    _audit(
        session,
        actor,
        "staff.added",
        calendar.id,
        "staff",
        member.slug,
        {"email": member.email},
        ip,
    )
    return member


def plan_invitation(
    session: Session, member: StaffMember, *, secret: str, base_url: str, now: datetime
) -> Notification:
    """The invitation e-mail, with its accept and decline links, in the outbox."""
    token = invitation_token(secret, member)
    return plan_staff_notice(
        session,
        member,
        "staff-invitation",
        # Each invitation is its own message (a member may be invited again).
        f"{member.id}:{secrets.token_hex(8)}",
        now,
        {
            "staff_id": member.id,
            "calendar": calendar_values(member.calendar),
            "staff": {"name": member.name, "email": member.email},
            "invitation": {
                "accept_url": f"{base_url}/staff-invitation/{token}/accept",
                "decline_url": f"{base_url}/staff-invitation/{token}/decline",
            },
        },
    )


def invite_again(
    session: Session,
    member: StaffMember,
    *,
    secret: str,
    base_url: str,
    now: datetime,
    actor: Actor,
) -> Notification:
    """Send ``member`` their invitation again (pending again unless they have accepted it);
    audited as staff.invited."""
    if member.invitation != "accepted":
        member.invitation = "pending"
    notice = plan_invitation(session, member, secret=secret, base_url=base_url, now=now)
    record(
        session,
        "staff.invited",
        actor,
        object_type="staff",
        object_id=member.slug,
        calendar_id=member.calendar_id,
    )
    return notice


def find_invitation(session: Session, secret: str, token: str) -> StaffMember:
    """The staff member of an invitation link; :class:`NotFound` when the link is wrong, too old
    or was sent to an address the member no longer has."""
    try:
        data = _serializer(secret).loads(token, max_age=INVITATION_DAYS * 86400)
    except BadSignature:
        raise NotFound("no such invitation") from None
    member = session.get(StaffMember, data.get("staff")) if isinstance(data, dict) else None
    if member is None or member.email != data.get("email") or member.removed_at is not None:
        raise NotFound("no such invitation")
    return member


def answer_invitation(session: Session, member: StaffMember, accept: bool) -> None:
    member.invitation = "accepted" if accept else "declined"
    _audit(
        session,
        member.email,
        "staff.invitation_" + ("accepted" if accept else "declined"),
        member.calendar_id,
        "staff",
        member.slug,
    )


def update_staff(
    session: Session,
    member: StaffMember,
    values: StaffValues,
    *,
    secret: str,
    base_url: str,
    now: datetime,
    actor: str,
    ip: str | None,
) -> dict[str, Any]:
    """Save a member's details. A new e-mail address is invited again (the person behind it has
    not agreed to be booked)."""
    check_staff(values)
    _check_email_free(session, member.calendar_id, values.email, member.id)
    wanted = {
        "name": values.name.strip(),
        "email": values.email.strip(),
        "phone": values.phone.strip() or None,
        "tags": list(values.tags),
        "bookable": values.bookable,
    }
    changes = {k: v for k, v in wanted.items() if getattr(member, k) != v}
    for name, value in changes.items():
        setattr(member, name, value)
    if "email" in changes:
        member.invitation = "pending"
        session.flush()
        plan_invitation(session, member, secret=secret, base_url=base_url, now=now)
    if changes:
        _audit(
            session,
            actor,
            "staff.updated",
            member.calendar_id,
            "staff",
            member.slug,
            {"changed": sorted(changes)},
            ip,
        )
    return changes


def add_time_off(
    session: Session,
    member: StaffMember,
    start: datetime,
    end: datetime,
    reason: str,
    *,
    now: datetime,
    actor: str,
    ip: str | None,
) -> tuple[TimeOff, list[Booking]]:
    """Record time off and tell the member (the time-off e-mail, with its reason). Returns the
    bookings that already fall in it: they are not moved by themselves."""
    problems: dict[str, Message] = {}
    if end <= start:
        problems["end"] = _problem(N_("The end must come after the start."))
    if len(reason) > 500:
        problems["reason"] = _problem(N_("The reason is too long (500 characters at most)."))
    duplicate = session.scalar(
        select(TimeOff.id).where(
            TimeOff.staff_id == member.id, TimeOff.start_at == start, TimeOff.end_at == end
        )
    )
    if duplicate is not None:
        problems["start"] = _problem(N_("This time off is already recorded."))
    if problems:
        raise InvalidInput(problems)
    time_off = TimeOff(
        staff_id=member.id,
        start_at=start,
        end_at=end,
        reason=reason.strip() or None,
        origin="admin",
    )
    session.add(time_off)
    session.flush()
    plan_time_off_notice(session, time_off, now)
    clashes = list(
        session.scalars(
            select(Booking)
            .where(
                Booking.staff_id == member.id,
                Booking.holds_slot,
                Booking.start_at < end,
                Booking.end_at > start,
            )
            .order_by(Booking.start_at)
        )
    )
    _audit(
        session,
        actor,
        "time_off.added",
        member.calendar_id,
        "staff",
        member.slug,
        {"start": start.isoformat(), "end": end.isoformat()},
        ip,
    )
    return time_off, clashes


def remove_time_off(session: Session, time_off: TimeOff, actor: str, ip: str | None) -> None:
    member = time_off.staff_member
    _audit(
        session,
        actor,
        "time_off.removed",
        member.calendar_id,
        "staff",
        member.slug,
        {"start": time_off.start_at.isoformat(), "end": time_off.end_at.isoformat()},
        ip,
    )
    session.delete(time_off)


def future_bookings(session: Session, member: StaffMember, now: datetime) -> list[Booking]:
    return list(
        session.scalars(
            select(Booking)
            .where(Booking.staff_id == member.id, Booking.holds_slot, Booking.start_at > now)
            .order_by(Booking.start_at)
        )
    )


# --- services ------------------------------------------------------------------------------


def offer_workflow(
    session: Session, calendar: Calendar, workflow: WorkflowRecord, actor: str, ip: str | None
) -> Service:
    """Offer a workflow in a calendar (inactive until published), pool chosen by tags."""
    existing = session.scalar(
        select(Service).where(
            Service.calendar_id == calendar.id, Service.workflow_id == workflow.id
        )
    )
    if existing is not None:
        return existing
    service = Service(
        calendar_id=calendar.id,
        workflow_id=workflow.id,
        active=False,
        pool_by_tags=True,
        origin="admin",
    )
    session.add(service)
    session.flush()
    _audit(session, actor, "service.added", calendar.id, "service", workflow.slug, ip=ip)
    return service


def update_service(
    session: Session,
    service: Service,
    *,
    active: bool,
    pool_by_tags: bool,
    staff_ids: Sequence[int],
    actor: str,
    ip: str | None,
) -> None:
    """Publish or withdraw a service and set its pool: by tags, or these members in this order."""
    members = {
        m.id
        for m in session.scalars(
            select(StaffMember).where(
                StaffMember.calendar_id == service.calendar_id, StaffMember.removed_at.is_(None)
            )
        )
    }
    unknown = [s for s in staff_ids if s not in members]
    if unknown:
        raise NotFound(f"no staff member {unknown[0]} in this calendar")
    if not pool_by_tags and not staff_ids:
        raise InvalidInput(
            {"staff": _problem(N_("Choose at least one staff member, or the pool by tags."))}
        )
    service.active = active
    service.pool_by_tags = pool_by_tags
    for link in list(service.staff_links):
        session.delete(link)
    session.flush()
    if not pool_by_tags:
        for position, staff_id in enumerate(dict.fromkeys(staff_ids)):
            session.add(ServiceStaff(service_id=service.id, staff_id=staff_id, position=position))
    _audit(
        session,
        actor,
        "service.updated",
        service.calendar_id,
        "service",
        service.workflow.slug,
        {"active": active, "pool_by_tags": pool_by_tags, "staff": list(staff_ids)},
        ip,
    )


# --- removing a staff member ------------------------------------------------------------------

REMOVAL_MODES = ("reassign", "cancel", "reassign_or_cancel")


class CannotReassign(BookwiseError):
    """No one else is free for these bookings: the admin must choose what to do with them."""

    def __init__(self, bookings: list[Booking]) -> None:
        self.bookings = bookings
        super().__init__(f"{len(bookings)} booking(s) cannot be given to anyone else")


@dataclass
class Removal:
    reassigned: list[Booking] = field(default_factory=list)
    cancelled: list[Booking] = field(default_factory=list)


def remove_staff(
    session: Session,
    member: StaffMember,
    mode: str,
    *,
    now: datetime,
    actor: Actor,
    booking_actor: str,
    reason: str | None,
    plugins: PluginHost | None,
) -> Removal:
    """Take a member out of the calendar without orphaning a booking: their future bookings are
    given to someone free (``reassign``), cancelled with notice to the client (``cancel``), or
    given where possible and cancelled otherwise (``reassign_or_cancel``). With ``reassign``,
    :class:`CannotReassign` lists the bookings no one can take, and nothing changes."""
    from bookwise.bookings.services import BookingError, reassign_to_anyone, transition_booking

    if mode not in REMOVAL_MODES:
        raise InvalidInput({"mode": _problem(N_("Choose what happens to their bookings."))})
    result = Removal()
    stuck: list[Booking] = []
    for booking in future_bookings(session, member, now):
        if mode != "cancel":
            try:
                with session.begin_nested():
                    reassign_to_anyone(
                        session,
                        booking,
                        now,
                        booking_actor,
                        excluded=member.id,
                        plugins=plugins,
                    )
            except BookingError:
                if mode == "reassign":
                    stuck.append(booking)
                    continue
            else:
                result.reassigned.append(booking)
                continue
        try:
            with session.begin_nested():
                transition_booking(
                    session,
                    booking,
                    "cancel",
                    "admin",
                    booking_actor,
                    now,
                    reason=reason,
                    plugins=plugins,
                )
        except BookingError:
            stuck.append(booking)
        else:
            result.cancelled.append(booking)
    if stuck:
        raise CannotReassign(stuck)
    member.bookable = False
    member.removed_at = now
    for link in session.scalars(select(ServiceStaff).where(ServiceStaff.staff_id == member.id)):
        session.delete(link)
    _audit(
        session,
        actor.name,
        "staff.removed",
        member.calendar_id,
        "staff",
        member.slug,
        {
            "mode": mode,
            "reassigned": [b.id for b in result.reassigned],
            "cancelled": [b.id for b in result.cancelled],
        },
        actor.ip,
    )
    return result


def create_calendar_workflow(
    session: Session, checked: CheckedWorkflow, calendar: Calendar, *, origin: str, actor: Actor
) -> WorkflowRecord:
    """A new workflow owned by ``calendar``, with its first version, offered there (not yet
    published); audited as created."""
    created = create_workflow(session, checked, calendar.id, origin=origin, author=actor.name)
    offer_workflow(session, calendar, created, actor.name, actor.ip)
    record(
        session,
        "workflow.created",
        actor,
        object_type="workflow",
        object_id=created.slug,
        calendar_id=calendar.id,
    )
    return created


def offer_in_calendar(
    session: Session, calendar: Calendar, workflow: WorkflowRecord, *, actor: Actor, publish: bool
) -> Service:
    """Offer ``workflow`` in ``calendar`` (added unpublished if it is not there yet); with
    ``publish``, clients can book it from now on (audited as published)."""
    service = offer_workflow(session, calendar, workflow, actor.name, actor.ip)
    if publish:
        service.active = True
        record(
            session,
            "service.published",
            actor,
            object_type="service",
            object_id=workflow.slug,
            calendar_id=calendar.id,
        )
    return service
