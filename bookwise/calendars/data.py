"""Calendar data files (``bookwise load FILE``): read and checked into plain data. Pure.

A day's hours are ``"HH:MM-HH:MM"`` ranges in the calendar's time zone; time off is a whole day
(``2026-12-24``, the end day included) or a time (``2026-12-24T14:00``, local unless it carries an
offset).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import localedata

from bookwise.availability.busy import FeedError, minimize
from bookwise.documents import Document, KeyPath, format_path, schema_problems
from bookwise.errors import Problem, did_you_mean, errors_only
from bookwise.notifications.quiet import QuietHours
from bookwise.text import unstorable_text
from bookwise.timezones import local_to_utc, zone_names

# The largest calendar file a data file may name (as for an upload in the back office).
MAX_FEED_FILE = 10_000_000
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# First path segments the application uses itself: a calendar cannot be called so
# (tests/test_reserved_slugs.py derives them from the route map; plugins/ holds the plugins').
RESERVED_SLUGS = frozenset(
    {
        "account",
        "admin",
        "api",
        "embed",
        "favicon.ico",
        "feeds",
        "healthz",
        "readyz",
        "metrics",
        "login",
        "logout",
        "manage",
        "plugins",
        "staff-invitation",
        "static",
    }
)


@dataclass(frozen=True, order=True)
class HoursRange:
    """A working range on a weekday (0 = Monday), in minutes since local midnight."""

    weekday: int
    start_minute: int
    end_minute: int


@dataclass(frozen=True)
class TimeOffSpec:
    start: datetime  # aware, UTC
    end: datetime
    reason: str | None


@dataclass(frozen=True)
class FeedSpec:
    """One of a staff member's own calendars: an address, a file read (and minimized: times
    only) when the data file was checked, or a CalDAV calendar (``url`` with ``account``)."""

    url: str | None
    file: str | None  # the file's name, as people see it
    content: str | None  # the file's times, for ``file``
    # For a CalDAV calendar: the account's name in config.yaml. Not checked here (this checker
    # does not know the configuration): the refresh after a load says when there is none.
    account: str | None = None

    @property
    def kind(self) -> str:
        """The source's kind: "url", "file" or "caldav"."""
        if self.account is not None:
            return "caldav"
        return "url" if self.url is not None else "file"


@dataclass(frozen=True)
class StaffSpec:
    slug: str
    name: str
    email: str
    phone: str | None
    tags: tuple[str, ...]
    bookable: bool
    hours: tuple[HoursRange, ...] | None  # None: the calendar's hours
    time_off: tuple[TimeOffSpec, ...]
    calendar_feeds: tuple[FeedSpec, ...] = ()


@dataclass(frozen=True)
class ServiceSpec:
    workflow: str
    staff: tuple[str, ...] | None  # None: pool by the workflow's tags
    active: bool


@dataclass(frozen=True)
class Place:
    """Where a value is in its file, for what only the loader can check (plugins enabled on
    the instance) to be reported like the checker's problems."""

    file: str
    line: int | None
    column: int | None
    key: str  # the dotted key path, like calendars[0].plugins[1]


@dataclass(frozen=True)
class CalendarSpec:
    slug: str
    name: str
    description: dict[str, str]
    timezone: str
    locale: str
    address: str | None
    phone: str | None
    reply_to: str | None
    published: bool
    search_indexing: bool
    sign_in_required: bool
    show_business_timezone: bool
    embed_origins: tuple[str, ...]
    hours: tuple[HoursRange, ...]
    staff: tuple[StaffSpec, ...]
    services: tuple[ServiceSpec, ...]
    # The non-core plugins the calendar uses (None: every plugin enabled on the instance), and
    # where each name is written.
    plugins: tuple[str, ...] | None = None
    plugin_places: tuple[Place, ...] = ()
    # When text messages wait (the recipient's night); a workflow's own quiet hours win.
    quiet_hours: QuietHours | None = None


def parse_range(text: str) -> tuple[int, int]:
    """``"09:00-12:30"`` -> (540, 750) minutes since midnight."""
    start, end = text.split("-")

    def minutes(value: str) -> int:
        hours, mins = value.split(":")
        return int(hours) * 60 + int(mins)

    return minutes(start), minutes(end)


def read_hours(
    data: Mapping[str, Sequence[str]],
) -> tuple[tuple[HoursRange, ...], list[tuple[KeyPath, str]]]:
    """A schema-checked ``hours`` map (weekday -> ``"HH:MM-HH:MM"`` ranges) as sorted ranges,
    with what is wrong (where inside the map, message): a range that ends before it starts, or
    overlaps another of its day. Scenario tests of workflows read their hours with it too."""
    out: list[HoursRange] = []
    problems: list[tuple[KeyPath, str]] = []
    for day, ranges in data.items():
        weekday = WEEKDAYS.index(day)
        parsed = []
        for index, text in enumerate(ranges):
            start, end = parse_range(text)
            if start >= end:
                problems.append(((day, index), f"{text!r} ends before it starts"))
                continue
            parsed.append((start, end, index))
        parsed.sort()
        for (_, prev_end, _), (start, _, index) in pairwise(parsed):
            if start < prev_end:
                problems.append(
                    ((day, index), f"{ranges[index]!r} overlaps another range of {day}")
                )
        out.extend(HoursRange(weekday, start, end) for start, end, _ in parsed)
    return tuple(sorted(out)), problems


def format_minute(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def check_calendar_data(
    document: Document,
    known_workflows: Mapping[str, Iterable[str]] | None = None,
    default_locale: str = "en",
    offered_locales: Sequence[str] | None = None,
) -> tuple[list[CalendarSpec], list[Problem]]:
    """Check a calendar data document. ``known_workflows`` maps each workflow id to its staff tags
    (``None`` skips the workflow checks); ``offered_locales`` are the instance's languages.
    Returns the calendars when there is no error."""
    if not isinstance(document.data, dict):
        return [], [document.problem((), "calendar data is a mapping with a `calendars:` list")]
    problems = schema_problems(document, "bookwise.calendars", "calendars.schema.json")
    if problems:
        return [], problems
    checker = _Checker(document, known_workflows, default_locale, offered_locales)
    specs = [
        checker.calendar(c, ("calendars", i)) for i, c in enumerate(document.data["calendars"])
    ]
    seen: dict[str, int] = {}
    for index, spec in enumerate(specs):
        if spec.slug in seen:
            checker.error(
                ("calendars", index, "slug"),
                f"calendar {spec.slug!r} is already defined at calendars[{seen[spec.slug]}]",
            )
        seen.setdefault(spec.slug, index)
    if errors_only(checker.problems):
        return [], checker.problems
    return specs, checker.problems


class _Checker:
    def __init__(
        self,
        document: Document,
        known_workflows: Mapping[str, Iterable[str]] | None,
        default_locale: str,
        offered_locales: Sequence[str] | None,
    ) -> None:
        self.document = document
        self.known_workflows = known_workflows
        self.default_locale = default_locale
        self.offered_locales = offered_locales
        self.problems: list[Problem] = []

    def error(self, path: KeyPath, message: str) -> None:
        self.problems.append(self.document.problem(path, message))

    def warn(self, path: KeyPath, message: str) -> None:
        self.problems.append(self.document.problem(path, message, "warning"))

    def calendar(self, data: dict[str, Any], at: KeyPath) -> CalendarSpec:
        self.name(data["name"], (*at, "name"))
        if data["slug"] in RESERVED_SLUGS:
            self.error(
                (*at, "slug"),
                f"{data['slug']!r} is a reserved address of Bookwise; choose another slug",
            )
        zone_name = data["timezone"]
        zone: ZoneInfo | None = None
        if zone_name not in zone_names():
            self.error(
                (*at, "timezone"),
                f"unknown time zone {zone_name!r}{did_you_mean(zone_name, zone_names())}; "
                "use an IANA name like Europe/Paris or America/New_York",
            )
        else:
            zone = ZoneInfo(zone_name)
        locale = data.get("locale", self.default_locale)
        if not localedata.exists(locale):
            self.error((*at, "locale"), f"unknown language {locale!r}")
        elif self.offered_locales is not None and locale not in self.offered_locales:
            self.warn(
                (*at, "locale"),
                f"language {locale!r} is not among the instance's locales "
                f"({', '.join(self.offered_locales)}); pages will use {self.default_locale!r}",
            )
        description = data.get("description")
        page = data.get("booking_page", {})
        staff = [
            self.staff(s, (*at, "staff", i), zone) for i, s in enumerate(data.get("staff", []))
        ]
        seen: dict[str, int] = {}
        for index, member in enumerate(staff):
            if member.slug in seen:
                self.error(
                    (*at, "staff", index, "id"),
                    f"staff id {member.slug!r} is already used at staff[{seen[member.slug]}]",
                )
            seen.setdefault(member.slug, index)
        services = [
            self.service(s, (*at, "services", i), staff)
            for i, s in enumerate(data.get("services", []))
        ]
        workflows_seen: set[str] = set()
        for index, service in enumerate(services):
            if service.workflow in workflows_seen:
                self.error(
                    (*at, "services", index, "workflow"),
                    f"workflow {service.workflow!r} is offered twice by this calendar",
                )
            workflows_seen.add(service.workflow)
        return CalendarSpec(
            slug=data["slug"],
            name=data["name"],
            description=(
                {"": description} if isinstance(description, str) else dict(description or {})
            ),
            timezone=zone_name,
            locale=locale,
            address=data.get("address"),
            phone=data.get("phone"),
            reply_to=data.get("reply_to"),
            published=page.get("published", True),
            search_indexing=page.get("indexing", True),
            sign_in_required=page.get("sign_in_required", False),
            show_business_timezone=page.get("show_business_timezone", False),
            embed_origins=tuple(page.get("embed_origins", ())),
            hours=self.hours(data.get("hours", {}), (*at, "hours")),
            staff=tuple(staff),
            services=tuple(services),
            plugins=tuple(data["plugins"]) if "plugins" in data else None,
            plugin_places=tuple(
                self.place((*at, "plugins", index)) for index in range(len(data.get("plugins", ())))
            ),
            quiet_hours=self.quiet_hours(data.get("quiet_hours"), (*at, "quiet_hours")),
        )

    def quiet_hours(self, spec: dict[str, Any] | None, at: KeyPath) -> QuietHours | None:
        """``quiet_hours``: a range, not an instant (the schema checked the times' shape)."""
        if not spec:
            return None
        if spec["from"] == spec["to"]:
            self.error(
                (*at, "to"),
                f"quiet_hours from and to are both {spec['to']}: give the time they end, like "
                'from: "21:00", to: "08:00" (a range across midnight is the usual case)',
            )
            return None
        return QuietHours.of(spec)

    def place(self, path: KeyPath) -> Place:
        line, column = self.document.locate(path)
        return Place(self.document.file, line, column, format_path(path))

    def hours(self, data: dict[str, list[str]], at: KeyPath) -> tuple[HoursRange, ...]:
        hours, problems = read_hours(data)
        for where, message in problems:
            self.error((*at, *where), message)
        return hours

    def name(self, name: str, at: KeyPath) -> None:
        """A name goes into e-mail headers and calendar files: no control characters (a line
        break would end the header), no text direction controls, no lone surrogates."""
        problem = unstorable_text(name)
        if problem is not None:
            self.error(at, problem.text % dict(problem.values))

    def staff(self, data: dict[str, Any], at: KeyPath, zone: ZoneInfo | None) -> StaffSpec:
        self.name(data["name"], (*at, "name"))
        time_off: list[TimeOffSpec] = []
        for index, item in enumerate(data.get("time_off", [])):
            spec = self.time_off(item, (*at, "time_off", index), zone)
            if spec is None:
                continue
            if any((spec.start, spec.end) == (o.start, o.end) for o in time_off):
                self.error((*at, "time_off", index), "the same time off is listed twice")
                continue
            time_off.append(spec)
        return StaffSpec(
            slug=data["id"],
            name=data["name"],
            email=data["email"],
            phone=data.get("phone"),
            tags=tuple(data.get("tags", ())),
            bookable=data.get("bookable", True),
            hours=self.hours(data["hours"], (*at, "hours")) if "hours" in data else None,
            time_off=tuple(time_off),
            calendar_feeds=self.calendar_feeds(data.get("calendar_feeds", []), at),
        )

    def calendar_feeds(self, items: list[dict[str, str]], at: KeyPath) -> tuple[FeedSpec, ...]:
        feeds: list[FeedSpec] = []
        for index, item in enumerate(items):
            path = (*at, "calendar_feeds", index)
            if "caldav" in item:
                url = item["caldav"].strip()
                if not url.isprintable():
                    self.error((*path, "caldav"), "the address holds a character no address has")
                    continue
                if any(f.url == url for f in feeds):
                    self.error((*path, "caldav"), "the same calendar address is listed twice")
                    continue
                feeds.append(FeedSpec(url=url, file=None, content=None, account=item["account"]))
                continue
            if "url" in item:
                url = item["url"].strip()
                if not url.isprintable():  # a control character or a lone surrogate
                    self.error((*path, "url"), "the address holds a character no address has")
                    continue
                if url.lower().startswith("webcal://"):
                    url = "https://" + url[len("webcal://") :]
                if any(f.url == url for f in feeds):
                    self.error((*path, "url"), "the same calendar address is listed twice")
                    continue
                feeds.append(FeedSpec(url=url, file=None, content=None))
                continue
            spec = self.feed_file(item["file"], (*path, "file"))
            if spec is not None:
                if any(f.file == spec.file for f in feeds):
                    self.error((*path, "file"), "the same calendar file is listed twice")
                    continue
                feeds.append(spec)
        return tuple(feeds)

    def feed_file(self, name: str, at: KeyPath) -> FeedSpec | None:
        """The file ``name`` (relative to the data file), read and reduced to its times."""
        path = Path(self.document.file).parent / name
        try:
            if path.stat().st_size > MAX_FEED_FILE:
                self.error(at, f"{name} is larger than {MAX_FEED_FILE // 1_000_000} MB")
                return None
            data = path.read_bytes()
        except OSError as exc:
            self.error(at, f"cannot read {name} next to this file: {exc.strerror or exc}")
            return None
        try:
            content = minimize(data)
        except FeedError as exc:
            self.error(at, f"{name}: {exc.message.text % dict(exc.message.values)}")
            return None
        return FeedSpec(url=None, file=Path(name).name, content=content)

    def time_off(
        self, data: dict[str, Any], at: KeyPath, zone: ZoneInfo | None
    ) -> TimeOffSpec | None:
        if zone is None:
            return None  # the time zone error is reported already
        start = self.moment(data["start"], (*at, "start"), zone, end_of_day=False)
        end = self.moment(data["end"], (*at, "end"), zone, end_of_day=True)
        if start is None or end is None:
            return None
        if end <= start:
            self.error((*at, "end"), "time off must end after it starts")
            return None
        return TimeOffSpec(start=start, end=end, reason=data.get("reason"))

    def moment(
        self, text: str, at: KeyPath, zone: ZoneInfo, *, end_of_day: bool
    ) -> datetime | None:
        try:
            if len(text) == 10:
                day = date.fromisoformat(text) + timedelta(days=1 if end_of_day else 0)
                naive = datetime.combine(day, time(0))
            else:
                naive = datetime.fromisoformat(text.replace(" ", "T"))
        except ValueError:
            self.error(at, f"{text!r} is not a real date or time")
            return None
        if naive.tzinfo is not None:
            return naive.astimezone(UTC)
        moment, occurs = local_to_utc(naive, zone)
        if occurs == "never" and len(text) > 10:
            self.error(
                at,
                f"{text!r} does not exist in {zone.key}: the clocks skip that hour; "
                "give a time before or after it, or its UTC offset",
            )
        elif occurs == "twice" and len(text) > 10:
            self.warn(
                at,
                f"{text!r} happens twice in {zone.key} (the clocks go back); the first "
                "is taken; add a UTC offset, like +02:00, to choose",
            )
        return moment

    def service(self, data: dict[str, Any], at: KeyPath, staff: list[StaffSpec]) -> ServiceSpec:
        workflow = data["workflow"]
        known = self.known_workflows
        if known is not None and workflow not in known:
            self.error(
                (*at, "workflow"),
                f"no workflow {workflow!r}{did_you_mean(workflow, known)} "
                f"(known: {', '.join(sorted(known)) or 'none'}); add workflows/{workflow}.yaml",
            )
        slugs = {member.slug for member in staff}
        listed = data.get("staff")
        for index, slug in enumerate(listed or []):
            if slug not in slugs:
                self.error(
                    (*at, "staff", index),
                    f"no staff member {slug!r} in this calendar{did_you_mean(slug, slugs)}",
                )
        if listed is None and known is not None and workflow in known:
            tags = set(known[workflow])
            pool = [m for m in staff if tags <= set(m.tags)]
            if not pool:
                wanted = f"the tags {', '.join(sorted(tags))}" if tags else "no tags"
                self.warn(
                    (*at, "workflow"),
                    f"no staff member of this calendar has {wanted}: nobody can be booked "
                    "for this service; list staff: or tag members",
                )
        return ServiceSpec(
            workflow=workflow,
            staff=tuple(listed) if listed is not None else None,
            active=data.get("active", True),
        )
