"""Scenario tests written in a workflow file (``tests:``): a business user proves their rules.

Each case sets the scene (``given``: time zone, hours, staff, existing bookings, time off) and
checks one or more things: the times offered on a day (``slots``), the messages a booking gets
and when (``messages``), whether a client may cancel at some moment (``cancel``). The answers
come from the product's own code: the availability engine, the messages' schedule that
``bookwise simulate`` renders, and the cancellation rule the bookings service enforces, so a test
and the product cannot disagree.

:func:`read_cases` turns the schema-checked ``tests`` list into cases and says what is wrong with
it (the loader reports that at file:line); :func:`run_cases` runs them. Pure: no Flask, no
database.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bookwise.availability.engine import (
    ExistingBooking,
    Interval,
    StaffTime,
    find_free_slots,
    workflow_rules,
)
from bookwise.calendars.data import HoursRange, read_hours
from bookwise.documents import KeyPath
from bookwise.durations import parse_duration
from bookwise.errors import did_you_mean
from bookwise.notifications.simulation import message_schedule
from bookwise.timezones import local_instant, local_to_utc, sane, zone_names
from bookwise.workflows.language import RECIPIENT_KINDS, Workflow
from bookwise.workflows.lifecycle import TransitionNotAllowed

# The hours when a case does not give them: Monday to Friday, 09:00 to 17:00.
DEFAULT_HOURS = tuple(HoursRange(day, 9 * 60, 17 * 60) for day in range(5))
DEFAULT_STAFF = "staff"
DEFAULT_TIMEZONE = "UTC"
# ``at`` of a message sent as the booking is made, and of one sent when its event happens.
AT_BOOKING = "booking"
WHEN_IT_HAPPENS = "when it happens"
_MOMENT = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}):(\d{2})$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Member:
    """A staff member of a case: their own hours (else the case's), and their tags (``None``:
    whatever the workflow asks, so a name alone is always in the pool)."""

    id: str
    tags: tuple[str, ...] | None = None
    hours: tuple[HoursRange, ...] | None = None


@dataclass(frozen=True)
class GivenBooking:
    start: datetime  # aware, UTC
    staff: str
    clients: int = 1


@dataclass(frozen=True)
class GivenTimeOff:
    start: datetime
    end: datetime
    staff: str | None  # None: everyone


@dataclass(frozen=True)
class Given:
    timezone: str = DEFAULT_TIMEZONE
    now: datetime | None = None
    hours: tuple[HoursRange, ...] = DEFAULT_HOURS
    staff: tuple[Member, ...] = (Member(DEFAULT_STAFF),)
    bookings: tuple[GivenBooking, ...] = ()
    time_off: tuple[GivenTimeOff, ...] = ()


@dataclass(frozen=True)
class SlotsCheck:
    day: date
    offered: tuple[str, ...] | None = None  # exactly these local starts, in order
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExpectedMessage:
    event: str
    to: str
    channel: str
    at: str  # "booking", "when it happens" or a local "YYYY-MM-DD HH:MM"

    def __str__(self) -> str:
        when = self.at if self.at == WHEN_IT_HAPPENS else f"at {self.at}"
        return f"{self.event} to {self.to} by {self.channel} {when}"


@dataclass(frozen=True)
class CancelCheck:
    at: datetime  # aware, UTC
    expect_allowed: bool


@dataclass(frozen=True)
class ScenarioCase:
    name: str
    index: int  # its place in ``tests``
    given: Given
    book: datetime | None = None
    slots: SlotsCheck | None = None
    messages: tuple[ExpectedMessage, ...] | None = None
    cancel: CancelCheck | None = None


@dataclass(frozen=True)
class CaseResult:
    """A case's outcome: passed, or each failed check as ``expected ..., got ...``."""

    name: str
    index: int
    failures: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.failures

    def messages(self) -> list[str]:
        """What a person reads: ``test 'NAME': expected X, got Y``, one per failed check."""
        return [f"test '{self.name}': {failure}" for failure in self.failures]


def summary(results: Sequence[CaseResult]) -> str:
    """``3 tests passed`` or ``1 of 3 tests failed``."""
    failed = sum(1 for r in results if not r.passed)
    noun = "test" if len(results) == 1 else "tests"
    if failed:
        return f"{failed} of {len(results)} {noun} failed"
    return f"{len(results)} {noun} passed"


# --- reading -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Vocabulary:
    """What a workflow's messages may be: its events, recipients, channels its rules use."""

    events: frozenset[str]
    channels: frozenset[str]
    recipients: frozenset[str] = frozenset(RECIPIENT_KINDS)

    @classmethod
    def of(cls, workflow: Workflow) -> Vocabulary:
        return cls(
            events=frozenset(workflow.events),
            channels=frozenset(c for rule in workflow.notifications for c in rule.channels),
            recipients=frozenset(RECIPIENT_KINDS)
            | {r for n in workflow.notifications for r in n.to},
        )


class _Reader:
    """Reads the cases; collects (key path, message) problems, never raises."""

    def __init__(self, vocabulary: Vocabulary | None) -> None:
        self.vocabulary = vocabulary
        self.problems: list[tuple[KeyPath, str]] = []

    def error(self, path: KeyPath, message: str) -> None:
        self.problems.append((path, message))

    def case(self, spec: Mapping[str, Any], index: int) -> ScenarioCase | None:
        at: KeyPath = ("tests", index)
        before = len(self.problems)
        given = self.given(spec.get("given") or {}, (*at, "given"))
        zone = ZoneInfo(given.timezone)
        book = None
        if "book" in spec:
            book = self.moment(spec["book"], (*at, "book"), zone)
        checks = [key for key in ("slots", "messages", "cancel") if key in spec]
        if not checks:
            self.error(at, "a test checks something: add slots:, messages: or cancel:")
        for key in ("messages", "cancel"):
            if key in spec and "book" not in spec:
                self.error(
                    (*at, key),
                    f'{key}: is about a booking: say when it is, like book: "2027-03-29 09:00"',
                )
        slots = self.slots(spec["slots"], (*at, "slots")) if "slots" in spec else None
        messages = None
        if "messages" in spec:
            messages = tuple(
                self.message(m, (*at, "messages", i), zone) for i, m in enumerate(spec["messages"])
            )
        cancel = None
        if "cancel" in spec and book is not None:
            cancel = self.cancel(spec["cancel"], (*at, "cancel"), zone, book)
        if len(self.problems) > before:
            return None
        return ScenarioCase(
            name=str(spec["name"]),
            index=index,
            given=given,
            book=book,
            slots=slots,
            messages=messages,
            cancel=cancel,
        )

    def given(self, spec: Mapping[str, Any], at: KeyPath) -> Given:
        name = spec.get("timezone", DEFAULT_TIMEZONE)
        if name not in zone_names():
            self.error(
                (*at, "timezone"),
                f"unknown time zone {name!r}{did_you_mean(name, zone_names())}; "
                "use an IANA name like Europe/Paris or America/New_York",
            )
            name = DEFAULT_TIMEZONE
        zone = ZoneInfo(name)
        now = self.moment(spec["now"], (*at, "now"), zone) if "now" in spec else None
        hours = self.hours(spec["hours"], (*at, "hours")) if "hours" in spec else DEFAULT_HOURS
        staff = self.staff(spec.get("staff"), (*at, "staff"))
        ids = [member.id for member in staff]
        bookings = []
        for index, item in enumerate(spec.get("bookings", [])):
            where = (*at, "bookings", index)
            start = self.moment(item["start"], (*where, "start"), zone)
            member = self.member(item.get("staff"), ids, (*where, "staff"))
            if start is not None and member is not None:
                bookings.append(GivenBooking(start, member, int(item.get("clients", 1))))
        time_off = []
        for index, item in enumerate(spec.get("time_off", [])):
            where = (*at, "time_off", index)
            start = self.moment(item["start"], (*where, "start"), zone, day_end=False)
            end = self.moment(item["end"], (*where, "end"), zone, day_end=True)
            who = None
            if "staff" in item:
                who = self.member(item["staff"], ids, (*where, "staff"))
            if start is not None and end is not None:
                if end <= start:
                    self.error((*where, "end"), "time off must end after it starts")
                else:
                    time_off.append(GivenTimeOff(start, end, who))
        return Given(name, now, hours, staff, tuple(bookings), tuple(time_off))

    def hours(self, spec: Mapping[str, Sequence[str]], at: KeyPath) -> tuple[HoursRange, ...]:
        hours, problems = read_hours(spec)
        for where, message in problems:
            self.error((*at, *where), message)
        return hours

    def staff(self, spec: Sequence[Any] | None, at: KeyPath) -> tuple[Member, ...]:
        if spec is None:
            return (Member(DEFAULT_STAFF),)
        members: list[Member] = []
        for index, item in enumerate(spec):
            where: KeyPath = (*at, index)
            if isinstance(item, str):
                member = Member(item)
            else:
                where = (*where, "id")
                hours = None
                if "hours" in item:
                    hours = self.hours(item["hours"], (*at, index, "hours"))
                tags = tuple(item["tags"]) if "tags" in item else None
                member = Member(str(item["id"]), tags, hours)
            if any(m.id == member.id for m in members):
                self.error(where, f"the staff member {member.id!r} is listed twice")
                continue
            members.append(member)
        return tuple(members)

    def member(self, name: str | None, ids: list[str], at: KeyPath) -> str | None:
        """A staff member named in a booking or time off: one of the case's (default: the
        first)."""
        if name is None:
            return ids[0] if ids else None
        if name not in ids:
            self.error(
                at,
                f"no staff member {name!r} in this test{did_you_mean(name, ids)} "
                f"(given staff: {', '.join(ids) or 'none'}); add it under given: staff:",
            )
            return None
        return name

    def moment(
        self, text: str, at: KeyPath, zone: ZoneInfo, *, day_end: bool | None = None
    ) -> datetime | None:
        """A local ``YYYY-MM-DD HH:MM`` (or, with ``day_end``, a whole day: its start, or the
        start of the next day) as a UTC instant."""
        text = str(text).strip()
        try:
            if day_end is not None and _DAY.match(text):
                day = date.fromisoformat(text) + timedelta(days=1 if day_end else 0)
                naive = datetime.combine(day, time(0))
            else:
                found = _MOMENT.match(text)
                if not found:
                    raise ValueError(text)
                day = date.fromisoformat(found[1])
                naive = datetime.combine(day, time(int(found[2]), int(found[3])))
        except ValueError:
            whole = " (or a whole day, 2027-03-29)" if day_end is not None else ""
            self.error(
                at,
                f'{text!r} is not a real date and time; write it like "2027-03-29 09:00"'
                f"{whole}, in the test's time zone",
            )
            return None
        if not sane(naive):
            self.error(at, f"{text!r} is too far in the past or the future")
            return None
        moment, occurs = local_to_utc(naive, zone)
        if occurs == "never":
            self.error(
                at,
                f"{text!r} does not exist in {zone.key}: the clocks skip that hour; "
                "give a time before or after it",
            )
            return None
        return moment

    def day(self, text: str, at: KeyPath) -> date | None:
        try:
            day = date.fromisoformat(str(text)) if _DAY.match(str(text)) else None
        except ValueError:
            day = None
        if day is None or not sane(datetime.combine(day, time(0))):
            self.error(at, f"{text!r} is not a real date; write it like 2027-03-29")
        return day

    def slots(self, spec: Mapping[str, Any], at: KeyPath) -> SlotsCheck | None:
        day = self.day(spec["on"], (*at, "on"))
        if "offered" in spec and ("includes" in spec or "excludes" in spec):
            self.error(
                (*at, "offered"),
                "offered: lists exactly the times offered; use it alone, or use "
                "includes: and excludes: instead",
            )
        if not any(key in spec for key in ("offered", "includes", "excludes")):
            self.error(at, "say which times: offered: (exactly these), includes: or excludes:")
        if day is None:
            return None
        return SlotsCheck(
            day=day,
            offered=tuple(spec["offered"]) if "offered" in spec else None,
            includes=tuple(spec.get("includes", ())),
            excludes=tuple(spec.get("excludes", ())),
        )

    def message(self, spec: Mapping[str, Any], at: KeyPath, zone: ZoneInfo) -> ExpectedMessage:
        vocabulary = self.vocabulary
        if vocabulary is not None:
            for key, known, what in (
                ("on", vocabulary.events, "event"),
                ("to", vocabulary.recipients, "recipient"),
                ("channel", vocabulary.channels, "channel"),
            ):
                value = spec[key]
                if value not in known:
                    self.error(
                        (*at, key),
                        f"this workflow has no {what} {value!r}{did_you_mean(value, known)} "
                        f"(its {what}s: {', '.join(sorted(known)) or 'none'})",
                    )
        written = str(spec.get("at", WHEN_IT_HAPPENS)).strip()
        if written in (AT_BOOKING, WHEN_IT_HAPPENS):
            when = written
        else:
            moment = self.moment(written, (*at, "at"), zone)
            when = _local(moment, zone) if moment is not None else written
        return ExpectedMessage(str(spec["on"]), str(spec["to"]), str(spec["channel"]), when)

    def cancel(
        self, spec: Mapping[str, Any], at: KeyPath, zone: ZoneInfo, book: datetime
    ) -> CancelCheck | None:
        if ("at" in spec) == ("before" in spec):
            self.error(
                at,
                'say when the client cancels: at: "2027-03-28 23:00", or before: 10h '
                "(before the start)",
            )
            return None
        if "at" in spec:
            moment = self.moment(spec["at"], (*at, "at"), zone)
        else:
            moment = book - parse_duration(spec["before"])
        if moment is None:
            return None
        return CancelCheck(moment, spec["expect"] == "allowed")


def read_cases(
    specs: Sequence[Mapping[str, Any]], vocabulary: Vocabulary | None = None
) -> tuple[list[ScenarioCase], list[tuple[KeyPath, str]]]:
    """The cases of a schema-checked ``tests`` list, and what is wrong with it: (key path,
    message) pairs. ``vocabulary``: the workflow's events, recipients and channels (``None``
    skips those checks)."""
    reader = _Reader(vocabulary)
    cases = []
    seen: dict[str, int] = {}
    for index, spec in enumerate(specs):
        name = str(spec["name"])
        if name in seen:
            reader.error(
                ("tests", index, "name"),
                f"another test is already named {name!r} (tests[{seen[name]}]); give each "
                "test its own name",
            )
        seen.setdefault(name, index)
        case = reader.case(spec, index)
        if case is not None:
            cases.append(case)
    return cases, reader.problems


# --- running -------------------------------------------------------------------------------------


def run_cases(workflow: Workflow, specs: Sequence[Mapping[str, Any]]) -> list[CaseResult]:
    """Run the ``tests`` of a checked workflow: one result per case, in order. A case the loader
    would refuse (it cannot be read) fails with the reason."""
    cases, problems = read_cases(specs, Vocabulary.of(workflow))
    by_index = {case.index: case for case in cases}
    results = []
    for index, spec in enumerate(specs):
        name = str(spec.get("name", f"tests[{index}]"))
        case = by_index.get(index)
        if case is None:
            reasons = [m for path, m in problems if path[:2] == ("tests", index)]
            results.append(CaseResult(name, index, (f"cannot run: {'; '.join(reasons)}",)))
            continue
        try:
            failures = tuple(_run(workflow, case))
        except (ValueError, OverflowError) as exc:  # a scene the engine cannot search
            failures = (f"cannot run: {exc}",)
        results.append(CaseResult(name, index, failures))
    return results


def _run(workflow: Workflow, case: ScenarioCase) -> Iterable[str]:
    zone = ZoneInfo(case.given.timezone)
    if case.slots is not None:
        yield from _check_slots(workflow, case, zone, case.slots)
    if case.book is None:
        return
    day = case.book.astimezone(zone).date()
    offered = _offered(workflow, case.given, zone, day)
    if case.book not in offered:
        free = ", ".join(_clock(s, zone) for s in offered) or "none"
        yield (
            f"expected {_local(case.book, zone)} to be free to book, got not offered "
            f"(offered that day: {free})"
        )
        return
    if case.messages is not None:
        expected = [str(m) for m in case.messages]
        got = [str(m) for m in scheduled_messages(workflow, case.book, zone)]
        if expected != got:
            yield f"expected {_listing(expected)}, got {_listing(got)}"
    if case.cancel is not None:
        allowed, why = cancellation_answer(workflow, case.book, case.cancel.at, zone)
        if allowed != case.cancel.expect_allowed:
            expected_word = "allowed" if case.cancel.expect_allowed else "refused"
            got_word = "allowed" if allowed else "refused"
            yield (
                f"expected cancelling at {_local(case.cancel.at, zone)} {expected_word}, "
                f"got {got_word} ({why})"
            )


def scheduled_messages(
    workflow: Workflow, start: datetime, zone: ZoneInfo
) -> list[ExpectedMessage]:
    """The messages of a booking at ``start`` as a test writes them."""
    out = []
    for message in message_schedule(workflow, start, zone.key):
        sent = message.sent_at  # held for quiet hours: when it is sent
        if sent is not None:
            when = _local(sent, zone)
        elif message.at_booking:
            when = AT_BOOKING
        else:
            when = WHEN_IT_HAPPENS
        out.append(ExpectedMessage(message.event, message.recipient, message.channel, when))
    return out


def cancellation_answer(
    workflow: Workflow, start: datetime, moment: datetime, zone: ZoneInfo
) -> tuple[bool, str]:
    """Whether a client may cancel online, at ``moment``, a new booking that starts at
    ``start`` (the workflow's ``cancellation`` rule, and a ``cancel`` move clients may make
    from the state a booking starts in), with the reason in plain words."""
    lifecycle = workflow.lifecycle
    try:
        lifecycle.find(lifecycle.initial, "cancel", "client")
    except TransitionNotAllowed:
        return False, "clients have no cancel action on a new booking"
    if not workflow.cancellation_allowed:
        return False, "clients may not cancel online (cancellation: allowed: false)"
    deadline = _local(workflow.change_deadline(start), zone)
    if not workflow.client_may_change_at(start, moment):
        return False, f"too late: clients may cancel until {deadline}"
    return True, f"clients may cancel until {deadline}"


def _check_slots(
    workflow: Workflow, case: ScenarioCase, zone: ZoneInfo, check: SlotsCheck
) -> Iterable[str]:
    got = [_clock(s, zone) for s in _offered(workflow, case.given, zone, check.day)]
    shown = ", ".join(got) or "none"
    if check.offered is not None and list(check.offered) != got:
        yield f"expected {', '.join(check.offered) or 'none'}, got {shown}"
    missing = [t for t in check.includes if t not in got]
    if missing:
        yield f"expected {', '.join(missing)} among the times offered, got {shown}"
    present = [t for t in check.excludes if t in got]
    if present:
        yield f"expected {', '.join(present)} not offered, got {shown}"


def _offered(workflow: Workflow, given: Given, zone: ZoneInfo, day: date) -> list[datetime]:
    """The starts the engine offers on the local ``day``, for the scene ``given``."""
    day_start = datetime.fromtimestamp(local_instant(day, 0, zone), UTC)
    day_end = datetime.fromtimestamp(local_instant(day + timedelta(days=1), 0, zone), UTC)
    # By default the whole day is bookable: "now" is its start less the notice asked.
    now = given.now if given.now is not None else day_start - workflow.min_notice
    rules = workflow_rules(workflow, given.timezone, service_id=1)
    wanted = set(workflow.staff.tags)
    pool: list[StaffTime] = []
    elsewhere: dict[datetime, int] = {}
    for position, member in enumerate(given.staff):
        bookings = tuple(
            ExistingBooking(
                start=b.start,
                end=b.start + workflow.duration,
                blocked_from=b.start - workflow.buffer_before,
                blocked_until=b.start + workflow.duration + workflow.buffer_after,
                service_id=1,
            )
            for b in given.bookings
            if b.staff == member.id
            for _ in range(b.clients)
        )
        if member.tags is not None and not wanted <= set(member.tags):
            for b in given.bookings:
                if b.staff == member.id:
                    elsewhere[b.start] = elsewhere.get(b.start, 0) + b.clients
            continue
        unavailable = tuple(
            Interval(t.start, t.end) for t in given.time_off if t.staff in (None, member.id)
        )
        hours = member.hours if member.hours is not None else given.hours
        pool.append(StaffTime(position, hours, unavailable, bookings))
    slots = find_free_slots(
        rules, pool, day_start, day_end, now, elsewhere if rules.per_slot else None
    )
    return [slot.start for slot in slots]


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _clock(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%H:%M")


def _listing(items: Sequence[str]) -> str:
    return "; ".join(items) if items else "no message"


__all__ = [
    "CaseResult",
    "ScenarioCase",
    "Vocabulary",
    "cancellation_answer",
    "read_cases",
    "run_cases",
    "scheduled_messages",
    "summary",
]
