"""The workflow language as plain, immutable data.

A workflow file is checked by :mod:`bookwise.workflows.loader` (schema, then meaning); this module
turns the checked, include-resolved definition into a :class:`Workflow` with every default
applied. Pure: no Flask, no database.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

from bookwise.availability.assignment import STRATEGIES
from bookwise.durations import parse_duration
from bookwise.notifications.quiet import DEFAULT_DIRECTION, QuietHours
from bookwise.workflows.lifecycle import (
    DEFAULT_LIFECYCLE,
    FOLLOW_UP,
    REMINDER,
    RESCHEDULED,
    Lifecycle,
    one_or_many,
)

# The vocabularies of the language: each is written once, here, and read by the loader's checks,
# the services and the back office's editor; the JSON Schema only checks the shape of a name
# (plugins add names), and a test checks that its descriptions name every core entry.

# The core's field types; enabled plugins add others (``field_type_names``).
FIELD_TYPES = (
    "text",
    "textarea",
    "email",
    "phone",
    "number",
    "date",
    "select",
    "multiselect",
    "checkbox",
    "url",
)
# Field ids that fill the client's contact details, with the type each must have.
CONTACT_FIELDS = {"name": "text", "email": "email", "phone": "phone"}
# The core's assignment strategies, as the engine implements them; plugins add others.
ASSIGNMENTS = tuple(STRATEGIES)
# Events a rule may be on besides entering a state of the workflow.
NON_STATE_EVENTS = (RESCHEDULED, REMINDER, FOLLOW_UP)
# The channels a workflow may name whatever is enabled: the core's, and "sms", which the core
# knows (opt-in, STOP list) and a plugin carries. Messages on a channel no plugin provides are
# skipped, with the reason, when they come due.
CORE_CHANNELS = frozenset({"email", "sms", "webhook", "log"})
# What ``capacity`` counts: the places of each staff member's group, or of the one group per time.
CAPACITY_PER = ("staff", "slot")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
RECIPIENT_KINDS = ("client", "staff", "calendar_admins")
# How often a series may repeat, and the weeks between two occurrences of each (``recurrence``).
FREQUENCIES = {"weekly": 1, "every_2_weeks": 2, "every_3_weeks": 3, "every_4_weeks": 4}
DEFAULT_MAX_OCCURRENCES = 12


def field_type_names(plugin_types: Iterable[str] = ()) -> tuple[str, ...]:
    """Every field type a workflow may use: the core's, then those plugins add, by name."""
    return (*FIELD_TYPES, *sorted(set(plugin_types) - set(FIELD_TYPES)))


def assignment_names(plugin_strategies: Iterable[str] = ()) -> tuple[str, ...]:
    """Every assignment strategy: the core's, then those plugins add, by name."""
    return (*ASSIGNMENTS, *sorted(set(plugin_strategies) - set(ASSIGNMENTS)))


def event_names(states: Iterable[str]) -> tuple[str, ...]:
    """Every event a notification rule of a workflow with these states may be on."""
    return (*states, *NON_STATE_EVENTS)


def channel_names(plugin_channels: Iterable[str] = ()) -> tuple[str, ...]:
    """Every channel a rule may name: the core's and those plugins add, sorted."""
    return tuple(sorted(CORE_CHANNELS | set(plugin_channels)))


DEFAULT_MIN_NOTICE = timedelta(hours=1)
DEFAULT_WAITLIST_HOLD = timedelta(hours=2)
DEFAULT_MAX_AHEAD = timedelta(days=90)
DEFAULT_REMINDER = timedelta(hours=24)
# Longest answer accepted when a field does not say (keeps forms, e-mails and exports sane).
DEFAULT_MAX_LENGTH = {"text": 200, "textarea": 5000, "email": 320, "phone": 40, "url": 2000}


@dataclass(frozen=True)
class Text:
    """A text in several languages: locale -> text. A text written without a language has key ''."""

    values: Mapping[str, str]

    @classmethod
    def of(cls, value: str | Mapping[str, str] | None) -> Text:
        if value is None:
            return cls({})
        if isinstance(value, str):
            return cls({"": value})
        return cls(dict(value))

    def get(self, locale: str | None = None, fallback: str | None = None) -> str:
        """The text for ``locale`` (``fr_CA`` falls back to ``fr``), else ``fallback``, else any."""
        for candidate in (locale, locale.split("_")[0] if locale else None, fallback, "", "en"):
            if candidate is not None and candidate in self.values:
                return self.values[candidate]
        # Any other language, always the same one (JSONB on PostgreSQL does not keep key order).
        return self.values[min(self.values)] if self.values else ""

    @property
    def locales(self) -> set[str]:
        return {key for key in self.values if key}

    def __bool__(self) -> bool:
        return bool(self.values)


@dataclass(frozen=True)
class Option:
    value: str | int
    label: Text


# The tests ``show_if`` may make on another field's answer.
CONDITION_TESTS = ("equals", "not_equals", "in", "not_in", "lt", "lte", "gt", "gte", "answered")
ORDERED_TESTS = ("lt", "lte", "gt", "gte")


@dataclass(frozen=True)
class Condition:
    """``show_if``: the field is asked when the answer to ``field`` passes ``test``."""

    field: str
    test: str
    value: Any

    def holds(self, answer: Any) -> bool:
        """Whether an answer (a checked value: a string, a number, a date, a list) passes."""
        blank = answer in (None, "", [])
        if self.test == "answered":
            return bool(self.value) != blank
        if blank:
            return self.test in ("not_equals", "not_in")
        given = [str(a) for a in answer] if isinstance(answer, list | tuple) else [str(answer)]
        if self.test in ("equals", "not_equals"):
            found = _same(answer, self.value) or str(self.value) in given
            return found if self.test == "equals" else not found
        if self.test in ("in", "not_in"):
            found = any(str(v) in given for v in self.value)
            return found if self.test == "in" else not found
        return _compare(answer, self.test, self.value)


def _same(answer: Any, value: Any) -> bool:
    if isinstance(answer, bool) or isinstance(value, bool):
        return answer is value or answer == value
    return False


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _compare(answer: Any, test: str, value: Any) -> bool:
    try:
        if isinstance(answer, date) or isinstance(value, date):
            # A date answer may come as its ISO text (answers are checked, then kept as text).
            left: Any = answer if isinstance(answer, date) else date.fromisoformat(str(answer))
            right: Any = value if isinstance(value, date) else date.fromisoformat(str(value))
        elif isinstance(answer, str) and _ISO_DATE.fullmatch(answer):
            left, right = date.fromisoformat(answer), date.fromisoformat(str(value))
        else:
            left, right = float(answer), float(value)
    except (TypeError, ValueError):
        return False
    results: dict[str, bool] = {
        "lt": left < right,
        "lte": left <= right,
        "gt": left > right,
        "gte": left >= right,
    }
    return results[test]


def shown_fields(fields: Iterable[Field], answers: Mapping[str, Any]) -> set[str]:
    """The ids of the fields asked, given the answers: a field with ``show_if`` is asked when
    the field it tests is asked and its answer passes (the loader refuses circles)."""
    by_id = {f.id: f for f in fields}
    memo: dict[str, bool] = {}

    def shown(fid: str, seen: frozenset[str]) -> bool:
        if fid in memo:
            return memo[fid]
        spec = by_id.get(fid)
        condition = spec.show_if if spec else None
        if condition is None:
            result = spec is not None
        elif condition.field in seen:
            result = False  # a circle: never asked (the loader refuses such a workflow)
        else:
            result = shown(condition.field, seen | {fid}) and condition.holds(
                answers.get(condition.field)
            )
        memo[fid] = result
        return result

    return {fid for fid in by_id if shown(fid, frozenset())}


@dataclass(frozen=True)
class Route:
    """A rule of ``route``: when ``condition`` holds, the staff having all ``tags`` serve."""

    condition: Condition
    tags: tuple[str, ...]


def route_tags(workflow: Workflow, answers: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The tags of the first rule of ``route`` whose condition holds for ``answers`` (checked
    values, by field id), or None: no rule holds, the whole pool serves. A question not asked
    (its ``show_if`` does not hold) has no answer: only ``answered: false`` holds on it."""
    if not workflow.route:
        return None
    asked = shown_fields(workflow.fields, answers)
    for rule in workflow.route:
        condition = rule.condition
        if condition.field not in asked:
            holds = condition.test == "answered" and not condition.value
        else:
            holds = condition.holds(answers.get(condition.field))
        if holds:
            return rule.tags
    return None


@dataclass(frozen=True)
class Field:
    id: str
    type: str
    label: Text
    required: bool = False
    help: Text = field(default_factory=lambda: Text({}))
    placeholder: Text = field(default_factory=lambda: Text({}))
    options: tuple[Option, ...] = ()
    min: float | str | None = None
    max: float | str | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    default: Any = None
    sensitive: bool = False
    # A plugin field type's own settings (checked against its schema by the loader).
    settings: Mapping[str, Any] = field(default_factory=dict)
    show_if: Condition | None = None
    # Added by Bookwise (``name`` and ``email`` when the workflow does not ask them itself);
    # their label is then the platform's own, translated by the catalogs.
    implicit: bool = False

    @property
    def is_contact(self) -> bool:
        return self.id in CONTACT_FIELDS


@dataclass(frozen=True)
class Location:
    type: Literal["in_person", "online", "phone"] = "in_person"
    address: Text = field(default_factory=lambda: Text({}))
    provider: str | None = None
    url: str | None = None
    details: Text = field(default_factory=lambda: Text({}))


@dataclass(frozen=True)
class StaffPolicy:
    tags: tuple[str, ...] = ()
    client_chooses: bool = False
    assignment: str = "round_robin"


@dataclass(frozen=True)
class Consent:
    text: Text
    required: bool = True
    link: Text = field(default_factory=lambda: Text({}))


@dataclass(frozen=True)
class NotificationRule:
    on: str
    to: tuple[str, ...]
    channels: tuple[str, ...] = ("email",)
    template: str = ""
    before: timedelta | None = None
    after: timedelta | None = None
    # A message due inside quiet hours: ``after`` (sent when they end), ``before`` (sent as
    # they begin) or ``ignore`` (never held). Not part of ``key``: it says when, not which.
    quiet_hours: str = DEFAULT_DIRECTION

    @property
    def key(self) -> str:
        """A stable name for this rule: the same rule in a later version keeps its key, so a
        message planned under one version is not planned again under the next."""
        spec = [self.on, self.to, self.channels, self.template, str(self.before), str(self.after)]
        return hashlib.sha256(json.dumps(spec).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SessionTime:
    """A fixed start of a class: a weekday (0 = Monday) and a local time (minutes since
    midnight), in the calendar's time zone."""

    weekday: int
    minute: int


@dataclass(frozen=True)
class Recurrence:
    """``recurrence``: whether a client may book a series, how long, and how often."""

    allowed: bool = False
    max_occurrences: int = DEFAULT_MAX_OCCURRENCES
    frequencies: tuple[str, ...] = ("weekly",)


@dataclass(frozen=True)
class Retention:
    delete_answers_after: timedelta | None = None
    delete_client_after: timedelta | None = None


@dataclass(frozen=True)
class Workflow:
    """A booking scenario with every default applied."""

    id: str
    name: Text
    description: Text
    duration: timedelta
    slot_step: timedelta
    buffer_before: timedelta
    buffer_after: timedelta
    min_notice: timedelta
    max_ahead: timedelta
    cancellation_allowed: bool
    cancellation_min_notice: timedelta
    capacity: int
    location: Location
    staff: StaffPolicy
    fields: tuple[Field, ...]
    consent: Consent | None
    lifecycle: Lifecycle
    notifications: tuple[NotificationRule, ...]
    retention: Retention
    # ``staff``: each staff member free at a time runs their own group of ``capacity``;
    # ``slot``: one group of ``capacity`` per time, whoever teaches it.
    capacity_per: str = "staff"
    # Fixed starts; empty: a start every ``slot_step``.
    sessions: tuple[SessionTime, ...] = ()
    # Who serves, by answer (the first rule that holds); empty: the whole pool.
    route: tuple[Route, ...] = ()
    # When text messages wait (the recipient's night); None: the calendar's, if any.
    quiet_hours: QuietHours | None = None
    # Series (a weekly course): not allowed unless the workflow says so.
    recurrence: Recurrence = field(default_factory=Recurrence)
    # ``waitlist``: clients may wait for a full time or day; a freed place is held ``hold``.
    waitlist_enabled: bool = False
    waitlist_hold: timedelta = DEFAULT_WAITLIST_HOLD

    @property
    def is_group(self) -> bool:
        return self.capacity > 1

    @property
    def one_group_per_slot(self) -> bool:
        return self.capacity_per == "slot"

    def change_deadline(self, start: datetime) -> datetime:
        """Until when a client may move or cancel, online, a booking that starts at ``start``."""
        return start - self.cancellation_min_notice

    def client_may_change_at(self, start: datetime, now: datetime) -> bool:
        """The ``cancellation`` rule: whether a client may, at ``now``, move or cancel online a
        booking that starts at ``start`` (the bookings service and scenario tests both ask)."""
        return self.cancellation_allowed and now < self.change_deadline(start)

    @property
    def events(self) -> set[str]:
        """Every event a notification rule may name."""
        return set(event_names(self.lifecycle.states))

    def field(self, field_id: str) -> Field | None:
        return next((f for f in self.fields if f.id == field_id), None)

    @property
    def texts_client(self) -> bool:
        """Whether a rule sends text messages to the client (then the form asks their consent)."""
        return any("sms" in rule.channels and "client" in rule.to for rule in self.notifications)

    @property
    def routing_fields(self) -> tuple[str, ...]:
        """The ids of the fields ``route`` tests, in the order of the form."""
        tested = {rule.condition.field for rule in self.route}
        return tuple(f.id for f in self.fields if f.id in tested)

    @property
    def custom_fields(self) -> tuple[Field, ...]:
        """The questions beyond the client's contact details."""
        return tuple(f for f in self.fields if not f.is_contact)

    @classmethod
    def from_definition(cls, definition: Mapping[str, Any]) -> Workflow:
        """Build from a checked definition whose ``include`` entries are already resolved."""
        d = definition
        buffer = d.get("buffer", {})
        window = d.get("booking_window", {})
        cancellation = d.get("cancellation", {})
        duration = parse_duration(d["duration"])
        capacity = d.get("capacity", 1)
        if not isinstance(capacity, Mapping):
            capacity = {"places": capacity}
        if "states" in d:
            lifecycle = Lifecycle.from_definition(d["states"], d.get("transitions", []))
        else:
            lifecycle = DEFAULT_LIFECYCLE
        fields = tuple(_field(f) for f in d.get("fields", []))
        return cls(
            id=d["id"],
            name=Text.of(d["name"]),
            description=Text.of(d.get("description")),
            duration=duration,
            slot_step=parse_duration(d["slot_step"]) if "slot_step" in d else duration,
            buffer_before=_duration(buffer.get("before")),
            buffer_after=_duration(buffer.get("after")),
            min_notice=_duration(window.get("min_notice"), DEFAULT_MIN_NOTICE),
            max_ahead=_duration(window.get("max_ahead"), DEFAULT_MAX_AHEAD),
            cancellation_allowed=bool(cancellation.get("allowed", True)),
            cancellation_min_notice=_duration(cancellation.get("min_notice")),
            capacity=int(capacity["places"]),
            capacity_per=str(capacity.get("per", "staff")),
            sessions=session_times(d.get("sessions", [])),
            route=tuple(_route(r) for r in d.get("route", [])),
            quiet_hours=QuietHours.of(d.get("quiet_hours")),
            recurrence=_recurrence(d.get("recurrence")),
            waitlist_enabled=bool(d.get("waitlist", {}).get("enabled", False)),
            waitlist_hold=_duration(d.get("waitlist", {}).get("hold"), DEFAULT_WAITLIST_HOLD),
            location=_location(d.get("location")),
            staff=_staff(d.get("staff", {})),
            fields=_with_contact_fields(fields),
            consent=_consent(d.get("consent")),
            lifecycle=lifecycle,
            notifications=tuple(
                _rule(r)
                for r in (
                    d["notifications"] if "notifications" in d else default_notifications(lifecycle)
                )
            ),
            retention=Retention(
                delete_answers_after=_optional_duration(
                    d.get("retention", {}).get("delete_answers_after")
                ),
                delete_client_after=_optional_duration(
                    d.get("retention", {}).get("delete_client_after")
                ),
            ),
        )


def default_notifications(lifecycle: Lifecycle) -> list[dict[str, Any]]:
    """The message rules of a workflow that has no ``notifications`` key."""
    states = lifecycle.states
    rules: list[dict[str, Any]] = []
    if "requested" in states:
        rules.append({"on": "requested", "to": ["client", "staff"]})
    if "confirmed" in states:
        rules.append({"on": "confirmed", "to": ["client", "staff"]})
    rules.append({"on": RESCHEDULED, "to": ["client", "staff"]})
    for event in ("declined", "cancelled"):
        if event in states:
            rules.append({"on": event, "to": ["client", "staff"]})
    rules.append({"on": REMINDER, "before": "24h", "to": "client"})
    return rules


def session_times(specs: list[Mapping[str, Any]]) -> tuple[SessionTime, ...]:
    """The ``sessions`` of a checked definition, sorted, each weekday and time once."""
    times = set()
    for spec in specs:
        hours, minutes = (int(part) for part in str(spec["at"]).split(":"))
        for day in spec["days"]:
            times.add(SessionTime(WEEKDAYS.index(day), hours * 60 + minutes))
    return tuple(sorted(times, key=lambda t: (t.weekday, t.minute)))


def _recurrence(spec: Mapping[str, Any] | None) -> Recurrence:
    if spec is None:
        return Recurrence()
    return Recurrence(
        allowed=bool(spec.get("allowed", False)),
        max_occurrences=int(spec.get("max_occurrences", DEFAULT_MAX_OCCURRENCES)),
        frequencies=one_or_many(spec.get("frequencies", "weekly")),
    )


def _duration(value: str | None, default: timedelta = timedelta(0)) -> timedelta:
    return parse_duration(value) if value is not None else default


def _optional_duration(value: str | None) -> timedelta | None:
    return parse_duration(value) if value is not None else None


def _field(spec: Mapping[str, Any]) -> Field:
    return Field(
        id=spec["id"],
        type=spec["type"],
        label=Text.of(spec["label"]),
        required=bool(spec.get("required", spec["id"] in ("name", "email"))),
        help=Text.of(spec.get("help")),
        placeholder=Text.of(spec.get("placeholder")),
        options=tuple(Option(o["value"], Text.of(o["label"])) for o in spec.get("options", [])),
        min=spec.get("min"),
        max=spec.get("max"),
        min_length=spec.get("min_length"),
        max_length=spec.get("max_length", DEFAULT_MAX_LENGTH.get(spec["type"])),
        pattern=spec.get("pattern"),
        default=spec.get("default"),
        sensitive=bool(spec.get("sensitive", False)),
        settings=dict(spec.get("settings") or {}),
        show_if=condition_of(spec.get("show_if")),
    )


def condition_of(spec: Mapping[str, Any] | None) -> Condition | None:
    """A ``show_if`` map as a :class:`Condition` (None when absent)."""
    if not spec:
        return None
    test = next(key for key in spec if key != "field")
    return Condition(str(spec["field"]), test, spec[test])


def _route(spec: Mapping[str, Any]) -> Route:
    test = next(key for key in spec["if"] if key != "field")
    condition = Condition(str(spec["if"]["field"]), test, spec["if"][test])
    return Route(condition, tuple(spec["staff"]["tags"]))


def _with_contact_fields(fields: tuple[Field, ...]) -> tuple[Field, ...]:
    """Ask the client's name and e-mail first when the workflow does not ask them itself."""
    present = {f.id for f in fields}
    implicit = tuple(
        Field(id=fid, type=ftype, label=Text({}), required=True, implicit=True)
        for fid, ftype in (("name", "text"), ("email", "email"))
        if fid not in present
    )
    return implicit + fields


def _location(spec: Mapping[str, Any] | None) -> Location:
    if not spec:
        return Location()
    return Location(
        type=spec["type"],
        address=Text.of(spec.get("address")),
        provider=spec.get("provider"),
        url=spec.get("url"),
        details=Text.of(spec.get("details")),
    )


def _staff(spec: Mapping[str, Any]) -> StaffPolicy:
    return StaffPolicy(
        tags=tuple(spec.get("tags", ())),
        client_chooses=bool(spec.get("client_chooses", False)),
        assignment=spec.get("assignment", "round_robin"),
    )


def _consent(spec: Mapping[str, Any] | None) -> Consent | None:
    if not spec:
        return None
    return Consent(
        text=Text.of(spec["text"]),
        required=bool(spec.get("required", True)),
        link=Text.of(spec.get("link")),
    )


def _rule(spec: Mapping[str, Any]) -> NotificationRule:
    return NotificationRule(
        on=spec["on"],
        to=one_or_many(spec["to"]),
        channels=one_or_many(spec.get("channel", "email")),
        template=spec.get("template", spec["on"]),
        before=_optional_duration(spec.get("before")),
        after=_optional_duration(spec.get("after")),
        quiet_hours=spec.get("quiet_hours", DEFAULT_DIRECTION),
    )
