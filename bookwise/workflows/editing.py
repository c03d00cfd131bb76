"""Editing a workflow without writing YAML: the structured editor's values, and the YAML they give.

The structured editor covers the common keys (name, timing, staff, fields, consent, message
rules). Its values are written into the workflow's YAML text with ruamel.yaml's round-trip mode,
so everything it does not cover (states, transitions, comments, a field's bounds) is kept as the
author wrote it. The result is checked like a file, by :mod:`bookwise.workflows.loader`; the
problems' key paths map back to the editor's inputs (:func:`field_of_problem`). Pure: no Flask,
no database.
"""

from __future__ import annotations

import copy
import difflib
import io
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from bookwise.documents import DocumentError, check_yaml_bounds, parse_document
from bookwise.durations import parse_duration
from bookwise.errors import N_, Problem
from bookwise.text import identifier_for, slugify
from bookwise.workflows.language import CONDITION_TESTS, default_notifications, event_names
from bookwise.workflows.lifecycle import (
    APPROVAL_STATES,
    APPROVAL_TRANSITIONS,
    DEFAULT_LIFECYCLE,
    DEFAULT_STATES,
    DEFAULT_TRANSITIONS,
    FOLLOW_UP,
    REMINDER,
    Lifecycle,
)
from bookwise.workflows.loader import CheckContext, CheckedWorkflow, check_workflow

# The order keys take in a workflow written by the editor (the reference's order).
KEY_ORDER = (
    "id",
    "name",
    "description",
    "duration",
    "slot_step",
    "buffer",
    "booking_window",
    "cancellation",
    "recurrence",
    "capacity",
    "sessions",
    "waitlist",
    "location",
    "staff",
    "fields",
    "route",
    "consent",
    "states",
    "transitions",
    "notifications",
    "quiet_hours",
    "retention",
    "tests",
)
Texts = dict[str, str]
# The lists of rows the editor shows: the workflow's key -> the inputs' name prefix.
ROW_LISTS = {
    "fields": "fields",
    "notifications": "rules",
    "states": "states",
    "transitions": "transitions",
    "route": "routes",
    "tests": "checks",  # the checks written as rows (the others stay in a text box)
}
# A row's problem on a key no input shows goes to this input of the row.
ROW_ANCHORS = {
    "fields": "label",
    "notifications": "on",
    "states": "label",
    "transitions": "label",
    "route": "condition",
    "tests": "name",
}
# Who may make a move, as the editor offers it.
ROLE_LABELS = (
    ("client", N_("The client")),
    ("staff", N_("Staff")),
    ("admin", N_("The calendar's administrators")),
    ("system", N_("Automatically")),
)
# Maps the editor writes as blocks when it creates them (the others go on one line).
BLOCK_MAPS = frozenset({"location", "consent"})
# The delay of a timed event: its key and the value written when the input is empty.
DELAYS = {REMINDER: ("before", "24h"), FOLLOW_UP: ("after", "2h")}


@dataclass(frozen=True)
class EditorKey:
    """One input of the structured editor and the workflow key it edits.

    ``path`` is the key in the workflow: ``duration``, ``buffer.before`` (at most two levels),
    or a key of each entry of a list, ``fields[].label``, ``notifications[].template``.
    ``kind`` says how the input shows the value and how it is read from and written to the
    YAML (see :data:`KINDS`). ``label`` and ``help`` are catalog ids (marked with ``N_``);
    a ``texts`` key's label names ``%(language)s``.
    """

    name: str  # the input's name (in a row: ``fields-0-<name>``)
    path: str
    kind: str
    label: str
    section: str  # the part of the page: service, time, place, question, field_set, consent, rule
    help: str = ""
    choices: str = ""  # a vocabulary the view offers (see its CHOICES)
    options: tuple[tuple[str, str], ...] = ()  # or fixed choices: (value, label)
    max_length: int | None = None
    minimum: int | None = None
    maximum: int | None = None
    default: Any = None  # the value when the workflow does not write the key
    sparse: bool = False  # the default is written only where the author wrote it
    when: str = ""  # written only when this flag input is on (``!name``: off)
    member: str = ""  # ``member``: the list entry the box stands for
    row: str = ""  # keys sharing a row sit side by side (rows go in the order of their first key)
    cell: str = ""  # CSS classes of the key's column in its row; "": in the previous key's column
    legend: str = ""  # a cell that starts with this key is a fieldset with this legend
    placeholder: str = ""
    rows: int | None = None  # lines of a text area
    also: tuple[str, ...] = ()  # other key paths whose problems show at this input
    shows_problems: bool = True  # False: its problems go to the enclosing map's or row's input
    locked: bool = False  # read-only once the workflow exists
    always: bool = False  # a sparse key written whenever its map is (the map requires it)
    unit: str = ""  # a duration's unit when none is typed: m, h or d

    @property
    def list_key(self) -> str | None:
        """``fields`` or ``notifications`` for a key of each row, else None."""
        head, marker, _ = self.path.partition("[].")
        return head if marker else None

    @property
    def parts(self) -> tuple[str, ...]:
        """The key's path inside the workflow (or inside its row)."""
        return tuple(
            self.path.partition("[].")[2].split(".") if self.list_key else self.path.split(".")
        )

    @property
    def initial(self) -> Any:
        """The value when the workflow does not write the key."""
        if self.default is not None:
            return copy.copy(self.default)
        return copy.copy(KINDS[self.kind])


# Each kind of input, with its value when the key is absent.
KINDS: dict[str, Any] = {
    "text": "",  # a line of text
    "duration": "",  # a duration (30m, 1h30m), written without spaces
    "choice": "",  # one of ``choices`` or ``options``
    "flag": False,  # yes or no
    "number": None,  # a whole number (``minimum``, ``maximum``)
    "places": 1,  # ``capacity``: a number, or the places of ``{places: N, per: ...}``
    "texts": {},  # a text of the language: one input per language
    "tags": [],  # a list of names, typed separated by commas
    "checks": [],  # several of ``choices``: a name or a list in the YAML
    "lines": [],  # a select field's options, one per line: value | label | label...
    "presence": False,  # whether the map at ``path`` is written at all
    "member": False,  # whether ``member`` is in the list at ``path``
    "others": "",  # the list's entries no ``member`` box stands for, separated by commas
    "delay": "",  # ``before`` of a reminder, ``after`` of a follow-up
    "bound": "",  # a number, or a date (``2027-01-31``, ``today``): ``min`` and ``max``
    "scalar": "",  # a value as typed: a number stays a number, ``true``/``false`` for a checkbox
    "settings": {},  # a map of a plugin's settings, typed one ``name: value`` per line
    "sessions": [],  # fixed start times: (weekdays, ``HH:MM``) pairs
    "group": "staff",  # ``capacity.per``: written only in ``{places: N, per: slot}``
    "condition": {},  # ``show_if``: {field, test, value} (``test`` also ``not_answered``)
    "scenarios": "",  # ``tests``: the list as YAML text, kept as written while unchanged
    "day": "",  # a date, ``2027-03-29`` (a date input)
    "clock": "",  # a time of day, ``09:30`` (a time input)
    "times": [],  # times of day, typed separated by commas: ``09:00, 09:30``
    "week": {},  # working hours: weekday -> ``HH:MM-HH:MM`` ranges ({}: the default hours)
    "moments": [],  # local dates and times, ``2027-03-29 09:00``, one per line
}


# Every key inside ``tests``: the scenario tests' text area shows their problems.
_TEST_HOURS = tuple(f"hours.{day}" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
SCENARIO_TEST_PATHS = tuple(
    f"tests[].{path}"
    for path in (
        "name",
        "book",
        "given",
        *(f"given.{key}" for key in ("timezone", "now", "hours", "staff", "bookings", "time_off")),
        *(f"given.{hours}" for hours in _TEST_HOURS),
        *(f"given.staff[].{key}" for key in ("id", "tags", "hours")),
        *(f"given.staff[].{hours}" for hours in _TEST_HOURS),
        *(f"given.bookings[].{key}" for key in ("start", "staff", "clients")),
        *(f"given.time_off[].{key}" for key in ("staff", "start", "end")),
        "slots",
        *(f"slots.{key}" for key in ("on", "offered", "includes", "excludes")),
        "messages",
        *(f"messages[].{key}" for key in ("on", "to", "channel", "at")),
        "cancel",
        *(f"cancel.{key}" for key in ("at", "before", "expect")),
    )
)

# The structured editor, one entry per input, in the order of the page. To offer another key,
# add an entry here: its input appears in its section (laid out by ``row`` and ``cell``), its
# value is read from and written to the YAML by its kind, and the loader's problems at its path
# show beside it. A key of a new kind needs the kind in KINDS, ``_read`` and ``_encode`` (and
# the view's ``_unbound_field``); a new section needs its place in the editor's template.
EDITOR_KEYS: tuple[EditorKey, ...] = (
    EditorKey(
        "id",
        "id",
        "text",
        N_("Identifier"),
        "service",
        help=N_(
            "Used in the page's address, like legal-consultation; made from the name when left "
            "empty. It cannot change later."
        ),
        max_length=63,
        locked=True,
    ),
    EditorKey("name", "name", "texts", N_("Name (%(language)s)"), "service", max_length=200),
    EditorKey(
        "description",
        "description",
        "texts",
        N_("Description (%(language)s)"),
        "service",
        max_length=2000,
        rows=2,
    ),
    EditorKey(
        "duration",
        "duration",
        "duration",
        N_("Duration"),
        "time",
        max_length=20,
        row="times",
        cell="col-sm-6",
    ),
    EditorKey(
        "slot_step",
        "slot_step",
        "duration",
        N_("Offer a start time every"),
        "time",
        help=N_("Empty: every duration."),
        max_length=20,
        row="times",
        cell="col-sm-6",
    ),
    EditorKey(
        "buffer_before",
        "buffer.before",
        "duration",
        N_("Free time before"),
        "time",
        max_length=20,
        row="times",
        cell="col-sm-6",
    ),
    EditorKey(
        "buffer_after",
        "buffer.after",
        "duration",
        N_("Free time after"),
        "time",
        max_length=20,
        row="times",
        cell="col-sm-6",
    ),
    EditorKey(
        "min_notice",
        "booking_window.min_notice",
        "duration",
        N_("Book at least this long ahead"),
        "time",
        help=N_("Empty: 1 hour."),
        max_length=20,
        row="window",
        cell="col-sm-6",
    ),
    EditorKey(
        "max_ahead",
        "booking_window.max_ahead",
        "duration",
        N_("Book at most this long ahead"),
        "time",
        help=N_("Empty: 90 days."),
        max_length=20,
        row="window",
        cell="col-sm-6",
    ),
    EditorKey(
        "cancellation_allowed",
        "cancellation.allowed",
        "flag",
        N_("Clients may move or cancel online"),
        "time",
        default=True,
        sparse=True,
        shows_problems=False,
    ),
    EditorKey(
        "cancellation_min_notice",
        "cancellation.min_notice",
        "duration",
        N_("Until this long before the start"),
        "time",
        max_length=20,
        when="cancellation_allowed",
        row="cancellation",
        cell="col-md-4",
    ),
    EditorKey(
        "capacity",
        "capacity",
        "places",
        N_("Places per time"),
        "time",
        sparse=True,
        help=N_("1 for a one-to-one meeting; more for a group."),
        also=("capacity.places",),
        minimum=1,
        maximum=1000,
        row="window",
        cell="col-sm-6",
    ),
    EditorKey(
        "capacity_per",
        "capacity.per",
        "group",
        N_("With more than one place"),
        "time",
        options=(
            ("staff", N_("Each free staff member runs a group")),
            ("slot", N_("One group per time, whoever runs it")),
        ),
        sparse=True,
        shows_problems=False,
        row="group",
        cell="col-md-6 capacity-per",
    ),
    EditorKey(
        "sessions",
        "sessions",
        "sessions",
        N_("Fixed start times (classes)"),
        "time",
        help=N_(
            "One per line, days then time, like: Monday Wednesday 18:00. Empty: a start time "
            "every step above."
        ),
        rows=2,
        max_length=2000,
        also=("sessions[].days", "sessions[].at"),
        row="group",
        cell="col-md-6",
    ),
    EditorKey(
        "recurrence_allowed",
        "recurrence.allowed",
        "flag",
        N_("Clients may book a series (the same time every week or every few weeks)"),
        "time",
        default=False,
        sparse=True,
        also=("recurrence",),
    ),
    EditorKey(
        "recurrence_max",
        "recurrence.max_occurrences",
        "number",
        N_("At most this many occurrences"),
        "time",
        help=N_("2 to 52. Empty: 12."),
        minimum=2,
        maximum=52,
        sparse=True,
        when="recurrence_allowed",
        row="recurrence",
        cell="col-md-4",
    ),
    EditorKey(
        "recurrence_frequencies",
        "recurrence.frequencies",
        "checks",
        N_("Repeating"),
        "time",
        options=(
            ("weekly", N_("Every week")),
            ("every_2_weeks", N_("Every 2 weeks")),
            ("every_3_weeks", N_("Every 3 weeks")),
            ("every_4_weeks", N_("Every 4 weeks")),
        ),
        default=["weekly"],
        sparse=True,
        when="recurrence_allowed",
        row="recurrence",
        cell="col-md-8",
    ),
    EditorKey(
        "waitlist_enabled",
        "waitlist.enabled",
        "flag",
        N_("Clients may join a waitlist when a time is full"),
        "time",
        default=False,
        sparse=True,
        shows_problems=False,
    ),
    EditorKey(
        "waitlist_hold",
        "waitlist.hold",
        "duration",
        N_("Hold a freed place for the first in line for"),
        "time",
        help=N_("Then it goes to the next in line. Empty: 2 hours."),
        max_length=20,
        when="waitlist_enabled",
        row="waitlist",
        cell="col-md-4",
    ),
    EditorKey(
        "location_type",
        "location.type",
        "choice",
        N_("Where"),
        "place",
        options=(
            ("in_person", N_("In person")),
            ("online", N_("Online")),
            ("phone", N_("By phone")),
        ),
        default="in_person",
        sparse=True,
        always=True,
        row="where",
        cell="col-md-4",
    ),
    EditorKey(
        "location_provider",
        "location.provider",
        "choice",
        N_("Meeting link"),
        "place",
        choices="providers",
        row="where",
        cell="col-md-4 place-online",
    ),
    EditorKey(
        "location_url",
        "location.url",
        "text",
        N_("The fixed link"),
        "place",
        help=N_("The same link for every booking, like https://meet.example.org/office."),
        max_length=500,
        row="where",
        cell="col-md-4 place-online",
    ),
    EditorKey(
        "location_address",
        "location.address",
        "texts",
        N_("Address, if not the calendar's (%(language)s)"),
        "place",
        max_length=500,
        cell="place-in-person",
    ),
    EditorKey(
        "location_details",
        "location.details",
        "texts",
        N_("Directions (%(language)s)"),
        "place",
        max_length=500,
    ),
    EditorKey(
        "staff_tags",
        "staff.tags",
        "tags",
        N_("Staff with the tags"),
        "place",
        help=N_("Separated by commas. Empty: every staff member."),
        max_length=200,
        row="staff",
        cell="col-md-4",
    ),
    EditorKey(
        "client_chooses",
        "staff.client_chooses",
        "flag",
        N_("The client chooses the staff member"),
        "place",
        sparse=True,
        shows_problems=False,
        row="staff",
        cell="col-md-4 align-self-center",
    ),
    EditorKey(
        "assignment",
        "staff.assignment",
        "choice",
        N_("Otherwise, assign"),
        "place",
        choices="strategies",
        default="round_robin",
        sparse=True,
        when="!client_chooses",
        row="staff",
        cell="col-md-4",
    ),
    EditorKey(
        "include",
        "fields[].include",
        "choice",
        N_("Field set"),
        "field_set",
        choices="field_sets",
        row="include",
        cell="col-md-6",
    ),
    EditorKey(
        "label",
        "fields[].label",
        "texts",
        N_("Question (%(language)s)"),
        "question",
        max_length=500,
    ),
    EditorKey(
        "type",
        "fields[].type",
        "choice",
        N_("Type"),
        "question",
        choices="field_types",
        default="text",
        row="head",
        cell="col-md-6 form-group",
    ),
    EditorKey(
        "required",
        "fields[].required",
        "flag",
        N_("Required"),
        "question",
        sparse=True,
        row="head",
        cell="col-md-6 form-group align-self-end",
    ),
    EditorKey(
        "help", "fields[].help", "texts", N_("Hint (%(language)s)"), "question", max_length=1000
    ),
    EditorKey(
        "options",
        "fields[].options",
        "lines",
        N_("Choices"),
        "question",
        help=N_("One choice per line; the value stored is made from its first words."),
        also=("fields[].options[].value", "fields[].options[].label"),
    ),
    EditorKey(
        "sensitive",
        "fields[].sensitive",
        "flag",
        N_("Sensitive (health, HR data)"),
        "question",
        sparse=True,
        shows_problems=False,
        row="head",
    ),
    EditorKey(
        "show_if",
        "fields[].show_if",
        "condition",
        N_("Ask only if"),
        "question",
        help=N_("Empty: always asked. For several values, separate them with commas."),
        max_length=500,
        also=tuple(f"fields[].show_if.{part}" for part in ("field", *CONDITION_TESTS)),
    ),
    EditorKey(
        "condition",
        "route[].if",
        "condition",
        N_("When the answer to"),
        "route",
        help=N_("For several values, separate them with commas."),
        max_length=500,
        also=tuple(f"route[].if.{part}" for part in ("field", *CONDITION_TESTS)),
        row="route",
        cell="col-md-8 form-group",
    ),
    EditorKey(
        "tags",
        "route[].staff.tags",
        "tags",
        N_("Send to the staff with the tags"),
        "route",
        help=N_("Separated by commas; a staff member needs them all."),
        max_length=200,
        also=("route[].staff",),
        row="route",
        cell="col-md-4 form-group",
    ),
    EditorKey(
        "placeholder",
        "fields[].placeholder",
        "texts",
        N_("Example shown in the empty box (%(language)s)"),
        "question_more",
        max_length=200,
    ),
    EditorKey(
        "min",
        "fields[].min",
        "bound",
        N_("Smallest value"),
        "question_more",
        help=N_("A number, or a date like 2027-01-31, or today."),
        max_length=40,
        row="bounds",
        cell="col-md-3 col-6 form-group",
    ),
    EditorKey(
        "max",
        "fields[].max",
        "bound",
        N_("Largest value"),
        "question_more",
        max_length=40,
        row="bounds",
        cell="col-md-3 col-6 form-group",
    ),
    EditorKey(
        "min_length",
        "fields[].min_length",
        "number",
        N_("Fewest characters"),
        "question_more",
        minimum=0,
        maximum=100_000,
        row="bounds",
        cell="col-md-3 col-6 form-group",
    ),
    EditorKey(
        "max_length",
        "fields[].max_length",
        "number",
        N_("Most characters"),
        "question_more",
        minimum=1,
        maximum=100_000,
        row="bounds",
        cell="col-md-3 col-6 form-group",
    ),
    EditorKey(
        "default",
        "fields[].default",
        "scalar",
        N_("Filled in at first"),
        "question_more",
        max_length=500,
        row="more",
        cell="col-md-4 form-group",
    ),
    EditorKey(
        "pattern",
        "fields[].pattern",
        "text",
        N_("The answer must match (regular expression)"),
        "question_more",
        help=N_("For people who know them, like [A-Z]{2}[0-9]{6}."),
        max_length=500,
        row="more",
        cell="col-md-4 form-group",
    ),
    EditorKey(
        "id",
        "fields[].id",
        "text",
        N_("Identifier"),
        "question_more",
        help=N_(
            "Made from the question when left empty; the answers are stored under it, so keep "
            "it once clients have answered."
        ),
        max_length=40,
        row="more",
        cell="col-md-4 form-group",
    ),
    EditorKey(
        "settings",
        "fields[].settings",
        "settings",
        N_("Settings of the field type"),
        "question_more",
        help=N_("For a field type added by a plugin: one setting per line, like name: value."),
        rows=2,
        max_length=4000,
    ),
    EditorKey(
        "label",
        "states[].label",
        "texts",
        N_("Step (%(language)s)"),
        "state",
        max_length=200,
    ),
    EditorKey(
        "initial",
        "states[].initial",
        "flag",
        N_("A new booking starts here"),
        "state",
        sparse=True,
        row="state",
        cell="col-md-4 form-group",
    ),
    EditorKey(
        "final",
        "states[].final",
        "flag",
        N_("The booking ends here"),
        "state",
        sparse=True,
        row="state",
        cell="col-md-4 form-group",
    ),
    EditorKey(
        "holds_slot",
        "states[].holds_slot",
        "flag",
        N_("Its time stays taken"),
        "state",
        help=N_("Usually yes, and no for an end."),
        row="state",
        cell="col-md-4 form-group",
    ),
    EditorKey(
        "name",
        "states[].name",
        "text",
        N_("Identifier"),
        "state",
        help=N_("Made from the step's name when left empty; bookings are stored under it."),
        max_length=40,
        row="state_more",
        cell="col-md-4 form-group",
    ),
    EditorKey(
        "label",
        "transitions[].label",
        "texts",
        N_("Action (%(language)s)"),
        "transition",
        max_length=200,
    ),
    EditorKey(
        "from",
        "transitions[].from",
        "checks",
        N_("From the steps"),
        "transition",
        choices="states",
        row="move",
        cell="col-md-4 form-group",
    ),
    EditorKey(
        "to",
        "transitions[].to",
        "choice",
        N_("To the step"),
        "transition",
        choices="states",
        row="move",
        cell="col-md-4 form-group",
    ),
    EditorKey(
        "by",
        "transitions[].by",
        "checks",
        N_("Who may do it"),
        "transition",
        options=ROLE_LABELS,
        default=["staff"],
        row="move",
        cell="col-md-4 form-group",
    ),
    EditorKey(
        "name",
        "transitions[].name",
        "text",
        N_("Identifier"),
        "transition",
        help=N_("Made from the action's name when left empty; cancel is the client's cancel link."),
        max_length=40,
        row="move_more",
        cell="col-md-4 form-group",
    ),
    EditorKey(
        "consent", "consent", "presence", N_("Ask for consent"), "consent", shows_problems=True
    ),
    EditorKey(
        "consent_required",
        "consent.required",
        "flag",
        N_("Consent is required to book"),
        "consent",
        default=True,
        shows_problems=False,
    ),
    EditorKey(
        "consent_text",
        "consent.text",
        "texts",
        N_("Consent text (%(language)s)"),
        "consent",
        max_length=2000,
        rows=2,
    ),
    EditorKey(
        "consent_link",
        "consent.link",
        "texts",
        N_("Link to the privacy notice (%(language)s)"),
        "consent",
        max_length=500,
    ),
    EditorKey(
        "retention_answers",
        "retention.delete_answers_after",
        "duration",
        N_("Erase the answers this long after the appointment"),
        "privacy",
        help=N_("Empty: kept until erased by hand. A year: 365 days."),
        max_length=20,
        unit="d",
        row="retention",
        cell="col-md-6",
    ),
    EditorKey(
        "retention_client",
        "retention.delete_client_after",
        "duration",
        N_("Erase the client's name and contact details this long after"),
        "privacy",
        help=N_("Empty: kept until erased by hand."),
        max_length=20,
        unit="d",
        row="retention",
        cell="col-md-6",
    ),
    EditorKey(
        "quiet_from",
        "quiet_hours.from",
        "clock",
        N_("Quiet hours from"),
        "quiet",
        help=N_(
            "Text messages due between these times, on the recipient's clock, wait until the "
            "end. Empty: the calendar's quiet hours."
        ),
        max_length=5,
        row="quiet",
        cell="col-md-4 form-group",
    ),
    EditorKey(
        "quiet_to",
        "quiet_hours.to",
        "clock",
        N_("Quiet hours until"),
        "quiet",
        max_length=5,
        row="quiet",
        cell="col-md-4 form-group",
    ),
    EditorKey(
        "quiet_email",
        "quiet_hours.email",
        "flag",
        N_("E-mail waits too"),
        "quiet",
        sparse=True,
        row="quiet",
        cell="col-md-4 form-group",
    ),
    EditorKey(
        "on",
        "notifications[].on",
        "choice",
        N_("When"),
        "rule",
        choices="events",
        default="confirmed",
        row="event",
        cell="col-md-4 form-group",
    ),
    EditorKey(
        "offset",
        "notifications[].before",
        "delay",
        N_("How long before or after"),
        "rule",
        help=N_("For reminders and follow-ups."),
        max_length=20,
        placeholder="24h",
        also=("notifications[].after",),
        row="event",
        # Shown for reminders and follow-ups only (admin.css: .rule-offset).
        cell="col-md-3 form-group rule-offset",
    ),
    EditorKey(
        "to_client",
        "notifications[].to",
        "member",
        N_("The client"),
        "rule",
        member="client",
        shows_problems=False,
        row="who",
        cell="col-md-6 form-group",
        legend=N_("To"),
    ),
    EditorKey(
        "to_staff",
        "notifications[].to",
        "member",
        N_("The staff member"),
        "rule",
        member="staff",
        shows_problems=False,
        row="who",
    ),
    EditorKey(
        "to_admins",
        "notifications[].to",
        "member",
        N_("The calendar's administrators"),
        "rule",
        member="calendar_admins",
        shows_problems=False,
        row="who",
    ),
    EditorKey(
        "to_other",
        "notifications[].to",
        "others",
        N_("Other addresses"),
        "rule",
        help=N_("E-mail addresses, separated by commas."),
        max_length=400,
        shows_problems=False,
        row="who",
    ),
    EditorKey(
        "channels",
        "notifications[].channel",
        "checks",
        N_("Through"),
        "rule",
        choices="channels",
        default=["email"],
        row="who",
        cell="col-md-6 form-group channels",
    ),
    EditorKey(
        "template",
        "notifications[].template",
        "text",
        N_("Other wording (optional)"),
        "rule",
        help=N_("The name of a message template; leave empty for the usual message."),
        max_length=64,
        row="event",
        cell="col-md-5 form-group",
    ),
    EditorKey(
        "quiet",
        "notifications[].quiet_hours",
        "choice",
        N_("During quiet hours"),
        "rule",
        options=(
            ("after", N_("Wait until they end")),
            ("before", N_("Send before they begin (the evening before)")),
            ("ignore", N_("Send at once (urgent)")),
        ),
        default="after",
        sparse=True,
        row="quiet",
        cell="col-md-6 form-group",
    ),
    # A check as a row: its name, what it checks (the times offered on a day, or whether a
    # booking can be cancelled some time before it starts), and a small scene. The cases these
    # rows cannot say stay in the text box below (``tests`` itself).
    EditorKey(
        "name",
        "tests[].name",
        "text",
        N_("Name of the check"),
        "check",
        placeholder="Mornings are offered",
        max_length=200,
        row="check_head",
        cell="col-md-7 form-group",
    ),
    EditorKey(
        "what",
        "tests[].slots",
        "choice",
        N_("What to check"),
        "check",
        options=(
            ("slots", N_("Times offered on a day")),
            ("cancel", N_("A cancellation")),
        ),
        default="slots",
        also=("tests[].cancel",),
        row="check_head",
        cell="col-md-5 form-group",
    ),
    EditorKey(
        "day",
        "tests[].slots.on",
        "day",
        N_("Day"),
        "check",
        help=N_("For a cancellation: the day of the booking."),
        max_length=40,
        also=("tests[].book",),
        row="check_when",
        cell="col-md-4 form-group",
    ),
    EditorKey(
        "time",
        "tests[].book",
        "clock",
        N_("Time of the booking"),
        "check",
        max_length=40,
        shows_problems=False,  # the booking's day and time: its problems show at the day
        row="check_when",
        cell="col-md-3 form-group check-cancel",
    ),
    EditorKey(
        "before",
        "tests[].cancel.before",
        "duration",
        N_("The client cancels this long before"),
        "check",
        max_length=40,
        unit="h",
        also=("tests[].cancel.at",),
        row="check_when",
        cell="col-md-5 form-group check-cancel",
    ),
    EditorKey(
        "match",
        "tests[].slots.includes",
        "choice",
        N_("The times offered are"),
        "check",
        options=(
            ("offered", N_("exactly these")),
            ("includes", N_("among them: at least these")),
            ("excludes", N_("not these")),
        ),
        default="offered",
        shows_problems=False,  # its problems show at the times
        row="check_expect",
        cell="col-md-4 form-group check-slots",
    ),
    EditorKey(
        "offered",
        "tests[].slots.offered",
        "times",
        N_("Times"),
        "check",
        help=N_("Like 09:00, 09:30 (a 24-hour clock). Empty with “exactly these”: none."),
        max_length=3000,
        also=("tests[].slots.includes", "tests[].slots.excludes"),
        row="check_expect",
        cell="col-md-8 form-group check-slots",
    ),
    EditorKey(
        "expect",
        "tests[].cancel.expect",
        "choice",
        N_("The cancellation is"),
        "check",
        options=(("refused", N_("refused")), ("allowed", N_("allowed"))),
        default="refused",
        row="check_expect",
        cell="col-md-4 form-group check-cancel",
    ),
    EditorKey(
        "timezone",
        "tests[].given.timezone",
        "choice",
        N_("Time zone"),
        "check_scene",
        choices="timezones",
        default="UTC",
        row="check_scene",
        cell="col-md-4 form-group",
    ),
    EditorKey(
        "hours",
        "tests[].given.hours",
        "week",
        N_("Working hours"),
        "check_scene",
        help=N_(
            "One line per group of days, like Monday-Friday 09:00-17:00. Empty: Monday to "
            "Friday, 09:00-17:00."
        ),
        max_length=2000,
        rows=2,
        also=tuple(f"tests[].given.{hours}" for hours in _TEST_HOURS),
        row="check_scene",
        cell="col-md-8 form-group",
    ),
    EditorKey(
        "bookings",
        "tests[].given.bookings",
        "moments",
        N_("Bookings already made"),
        "check_scene",
        help=N_("One per line, like 2027-03-29 09:00."),
        max_length=5000,
        rows=2,
        also=("tests[].given.bookings[].start", "tests[].given"),
        row="check_scene_more",
        cell="col-md-12 form-group",
    ),
    EditorKey(
        "tests",
        "tests",
        "scenarios",
        N_("Advanced: checks written as in the file"),
        "checks",
        help=N_(
            'Cases that prove the rules, written as in the file (docs/workflows.md, "Scenario '
            'tests"): the times offered on a day, the messages of a booking, whether a '
            "cancellation is allowed. They run on every save; a workflow whose checks fail "
            "cannot be published."
        ),
        rows=12,
        max_length=100_000,
        also=SCENARIO_TEST_PATHS,
    ),
)


def keys_of(list_key: str | None) -> tuple[EditorKey, ...]:
    """The editor's keys of the workflow itself (None), or of each row of a list."""
    return tuple(key for key in EDITOR_KEYS if key.list_key == list_key)


def keys_in(section: str) -> tuple[EditorKey, ...]:
    return tuple(key for key in EDITOR_KEYS if key.section == section)


Cell = tuple[str, list[EditorKey]]


def layout(section: str) -> list[tuple[str, list[Cell]]]:
    """A section's keys as the page sets them out: rows (the keys sharing ``row``, in the order
    of the row's first key; a key without ``row`` on its own), each a list of cells (a key
    without ``cell`` goes in the cell before it)."""
    rows: dict[str, list[EditorKey]] = {}
    for index, key in enumerate(keys_in(section)):
        rows.setdefault(key.row or f"#{index}", []).append(key)
    out: list[tuple[str, list[Cell]]] = []
    for name, members in rows.items():
        cells: list[Cell] = []
        for key in members:
            if cells and not key.cell:
                cells[-1][1].append(key)
            else:
                cells.append((key.cell, [key]))
        out.append(("" if name.startswith("#") else name, cells))
    return out


@dataclass
class Row:
    """One entry of ``fields`` (a question, or a field set with ``include``) or of
    ``notifications`` (a message rule): its inputs' values, by name."""

    values: dict[str, Any] = field(default_factory=dict)
    # Where the row came from in the workflow's list: its other keys are kept.
    source: int | None = None
    removed: bool = False  # marked for removal in the editor

    def __getitem__(self, name: str) -> Any:
        return self.values[name]


def new_row(list_key: str, source: int | None = None, **values: Any) -> Row:
    """A row of ``list_key`` with every input at its default, then ``values``."""
    return Row({key.name: key.initial for key in keys_of(list_key)} | values, source)


@dataclass
class StructuredWorkflow:
    """The values of the structured editor: its inputs' values by name, and its rows."""

    values: dict[str, Any] = field(default_factory=dict)
    fields: list[Row] = field(default_factory=list)
    rules: list[Row] = field(default_factory=list)
    states: list[Row] = field(default_factory=list)  # the lifecycle's steps
    transitions: list[Row] = field(default_factory=list)  # and the moves between them
    routes: list[Row] = field(default_factory=list)  # who serves, by answer (``route``)
    checks: list[Row] = field(default_factory=list)  # ``tests`` the rows can say

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def rows(self, list_key: str) -> list[Row]:
        """The rows of ``fields``, ``notifications``, ``states`` or ``transitions``."""
        rows: list[Row] = getattr(self, ROW_LISTS[list_key])
        return rows


# --- reading --------------------------------------------------------------------------------


def _texts(value: Any, fallback: str) -> Texts:
    """A text of the language (a string or a map) as a map; a plain string goes to ``fallback``."""
    if value is None:
        return {}
    if isinstance(value, str):
        return {fallback: value}
    return {str(k): str(v) for k, v in dict(value).items()}


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def _lookup(where: Mapping[str, Any], parts: Sequence[str]) -> Any:
    value: Any = where
    for part in parts:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _members(key: EditorKey) -> set[str]:
    """The list entries the ``member`` boxes of ``key``'s path stand for."""
    return {k.member for k in EDITOR_KEYS if k.path == key.path and k.kind == "member"}


def _read(key: EditorKey, where: Mapping[str, Any], fallback: str) -> Any:
    """The input's value for the workflow (or row) ``where``, as written."""
    value = _lookup(where, key.parts)
    if key.kind == "delay":
        alternatives = [_lookup(where, (path.rpartition(".")[2],)) for path in key.also]
        value = value or next((v for v in alternatives if v), None)
    if key.kind == "presence":
        return value is not None
    if value is None:
        return key.initial
    readers: dict[str, Callable[[], Any]] = {
        "flag": lambda: bool(value),
        "number": lambda: _number(value, key.initial),
        "places": lambda: _places(value),
        "texts": lambda: _texts(value, fallback),
        "bound": lambda: _scalar_text(value),
        "scalar": lambda: _scalar_text(value),
        "settings": lambda: dict(value) if isinstance(value, Mapping) else {},
        "sessions": lambda: _sessions(value),
        "scenarios": lambda: scenarios_text(advanced_checks(value)),
        "condition": lambda: _condition(value),
        "tags": lambda: _list(value),
        "checks": lambda: _list(value) or key.initial,
        "member": lambda: key.member in _list(value),
        "others": lambda: ", ".join(v for v in _list(value) if v not in _members(key)),
        "lines": lambda: [
            (str(o.get("value", "")), _texts(o.get("label"), fallback)) for o in value or []
        ],
    }
    reader = readers.get(key.kind)
    return reader() if reader is not None else str(value)


def _scalar_text(value: Any) -> str:
    """A number, a date or a yes/no as the editor shows it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _sessions(value: Any) -> list[tuple[list[str], str]]:
    """``sessions`` as (weekdays, ``HH:MM``) pairs, as written."""
    out = []
    for entry in value if isinstance(value, list) else []:
        if isinstance(entry, Mapping):
            out.append((_list(entry.get("days")), str(entry.get("at") or "")))
    return out


def _condition(value: Any) -> dict[str, str]:
    """``show_if`` as the editor shows it: the field, the test, the value as text."""
    if not isinstance(value, Mapping) or "field" not in value:
        return {}
    test = next((key for key in value if key != "field"), "")
    given = value.get(test)
    if test == "answered":
        return {"field": str(value["field"]), "test": "answered" if given else "not_answered"}
    text = ", ".join(_scalar_text(v) for v in given) if isinstance(given, list) else given
    return {"field": str(value["field"]), "test": test, "value": _scalar_text(text)}


def _number(value: Any, default: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def structured(data: Mapping[str, Any], fallback: str) -> StructuredWorkflow:
    """The editor's values for a workflow definition (as written, includes unresolved)."""
    rows = []
    for index, spec in enumerate(data.get("fields") or []):
        if "include" in spec:
            rows.append(new_row("fields", index, include=str(spec["include"])))
        else:
            rows.append(_read_row("fields", spec, fallback, index))
    if "notifications" in data:
        rule_data = list(data["notifications"] or [])
        from_file = True
    else:
        rule_data = default_notifications(_lifecycle(data))
        from_file = False
    rules = [
        _read_row("notifications", rule, fallback, index if from_file else None)
        for index, rule in enumerate(rule_data)
    ]
    values = {key.name: _read(key, data, fallback) for key in keys_of(None)}
    states, transitions = _lifecycle_rows(data, fallback)
    routes = [
        _read_row("route", spec, fallback, index)
        for index, spec in enumerate(data.get("route") or [])
        if isinstance(spec, Mapping)
    ]
    checks = [
        Row(found, index)
        for index, spec in enumerate(data.get("tests") or [])
        if (found := check_row_values(spec)) is not None
    ]
    return StructuredWorkflow(values, rows, rules, states, transitions, routes, checks)


def _lifecycle_rows(data: Mapping[str, Any], fallback: str) -> tuple[list[Row], list[Row]]:
    """The lifecycle's steps and moves as rows: as the workflow writes them, or the default
    lifecycle's (not written while unchanged)."""
    written = isinstance(data.get("states"), Mapping)
    state_specs = dict(data["states"]) if written else DEFAULT_STATES
    move_specs = list(data.get("transitions") or []) if written else DEFAULT_TRANSITIONS
    states = [
        _read_row(
            "states", {**dict(spec or {}), "name": name}, fallback, index if written else None
        )
        for index, (name, spec) in enumerate(state_specs.items())
    ]
    for row, spec in zip(states, state_specs.values(), strict=True):
        if not isinstance(spec, Mapping) or "holds_slot" not in spec:
            row.values["holds_slot"] = not row.values["final"]
    moves = [
        _read_row("transitions", spec, fallback, index if written else None)
        for index, spec in enumerate(move_specs)
        if isinstance(spec, Mapping)
    ]
    return states, moves


# The lifecycles the editor offers to start from, by the button that applies them.
LIFECYCLES: dict[str, Mapping[str, Any]] = {
    "lifecycle:direct": {"states": DEFAULT_STATES, "transitions": DEFAULT_TRANSITIONS},
    "lifecycle:approval": {"states": APPROVAL_STATES, "transitions": APPROVAL_TRANSITIONS},
}


def lifecycle_rows(definition: Mapping[str, Any], fallback: str) -> tuple[list[Row], list[Row]]:
    """New rows (written as new) for one of :data:`LIFECYCLES`."""
    states, moves = _lifecycle_rows(definition, fallback)
    for row in (*states, *moves):
        row.source = None
    return states, moves


def states_of(data: Mapping[str, Any]) -> list[str]:
    """The names of the workflow's steps (the default lifecycle's when it writes none)."""
    return list(_lifecycle(data).states)


def _read_row(list_key: str, spec: Mapping[str, Any], fallback: str, source: int | None) -> Row:
    return Row({key.name: _read(key, spec, fallback) for key in keys_of(list_key)}, source)


def _places(capacity: Any) -> int:
    """The places of ``capacity``, written as a number or as ``{places: N, per: ...}``."""
    if isinstance(capacity, Mapping):
        capacity = capacity.get("places", 1)
    try:
        return int(capacity)
    except (TypeError, ValueError):
        return 1


def _lifecycle(data: Mapping[str, Any]) -> Lifecycle:
    if "states" not in data:
        return DEFAULT_LIFECYCLE
    try:
        return Lifecycle.from_definition(data["states"], data.get("transitions") or [])
    except (KeyError, TypeError, AttributeError):
        return DEFAULT_LIFECYCLE


def events_of(data: Mapping[str, Any]) -> list[str]:
    """The events a rule of this workflow can be on: its states, then the other events."""
    return list(event_names(_lifecycle(data).states))


# --- writing --------------------------------------------------------------------------------


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.width = 4096  # never fold a long text: a diff should show what changed, not wrapping
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.preserve_quotes = True
    return yaml


def load_map(text: str | None) -> CommentedMap:
    """The round-trip map of a workflow's YAML (an empty one for a new workflow);
    :class:`~bookwise.documents.DocumentError` for YAML beyond the limits every file is held to
    (:func:`~bookwise.documents.check_yaml_bounds`)."""
    if not text or not text.strip():
        return CommentedMap()
    check_yaml_bounds(text, "workflow.yaml")
    loaded = _yaml().load(text)
    return loaded if isinstance(loaded, CommentedMap) else CommentedMap()


def dump_map(data: CommentedMap) -> str:
    out = io.StringIO()
    _yaml().dump(data, out)
    return out.getvalue()


def _flow(mapping: Mapping[str, Any]) -> CommentedMap:
    """A short map written on one line, like ``{en: Name, fr: Nom}``."""
    out = CommentedMap(mapping)
    out.fa.set_flow_style()
    return out


def _text_value(texts: Texts, previous: Any, fallback: str) -> Any:
    """A text as the language writes it: unchanged when it did not change; a plain string when
    it is one text in the default language that was written so; else a map of languages."""
    cleaned = {k: v.strip() for k, v in texts.items() if v and v.strip()}
    if not cleaned:
        return None
    if isinstance(previous, str) and cleaned == {fallback: previous}:
        return previous
    if isinstance(previous, Mapping) and dict(previous) == cleaned:
        return previous
    if isinstance(previous, Mapping) and not isinstance(previous, CommentedMap):
        return _flow(cleaned)
    if isinstance(previous, CommentedMap):
        updated = CommentedMap()
        for key, value in cleaned.items():
            updated[key] = value
        if previous.fa.flow_style():
            updated.fa.set_flow_style()
        return updated
    return _flow(cleaned)


def _set(target: CommentedMap, key: str, value: Any) -> None:
    """Set ``key`` (in the reference's order when it is new), or remove it when ``value`` is
    None; an unchanged value is left untouched (its comments and style stay)."""
    if value is None or value in ("", []):
        target.pop(key, None)
        return
    if key in target:
        if target[key] != value or type(target[key]) is not type(value):
            target[key] = value
        return
    _place(target, key, value)


def _place(target: CommentedMap, key: str, value: Any) -> None:
    """Insert a new key where the reference's order puts it."""
    position = len(target)
    if key in KEY_ORDER:
        rank = KEY_ORDER.index(key)
        for index, existing in enumerate(target):
            if existing in KEY_ORDER and KEY_ORDER.index(existing) > rank:
                position = index
                break
    target.insert(position, key, value)


class Default:
    """A value equal to the language's default: written only where the author wrote it."""

    def __init__(self, value: Any) -> None:
        self.value = value


def _set_default(target: CommentedMap, key: str, value: Any, default: Any) -> None:
    if value == default:
        if key in target and target[key] != default:
            target[key] = default
        return
    _set(target, key, value)


def _put(target: CommentedMap, key: str, value: Any) -> None:
    """Set ``key`` to an encoded value (see :func:`_encode`)."""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], Default):
        _set_default(target, key, value[0], value[1].value)
    else:
        _set(target, key, value)


def _sub(target: CommentedMap, key: str, values: Mapping[str, Any], flow: bool = True) -> None:
    """Set the keys of a small map (``buffer``, ``staff``...), dropping the map when empty."""
    current = target.get(key)
    mapping = current if isinstance(current, CommentedMap) else CommentedMap()
    for name, value in values.items():
        _put(mapping, name, value)
    if not mapping:
        target.pop(key, None)
        return
    if current is None and flow:
        mapping.fa.set_flow_style()
    _set(target, key, mapping)


def _duration(value: str) -> str | None:
    return value.strip().replace(" ", "") or None


def _same_spelling(before: Any, value: str | None) -> Any:
    """``value``, or the duration as the file wrote it when it is the same length of time (the
    editor gives ``90m`` for a file's ``1h30m``: no change, no diff)."""
    if value and isinstance(before, str):
        try:
            if parse_duration(before) == parse_duration(value):
                return before
        except ValueError:
            pass
    return value


def _one_or_many(values: Sequence[str]) -> Any:
    if len(values) == 1:
        return values[0]
    seq = CommentedSeq(values)
    seq.fa.set_flow_style()
    return seq


def _applies(key: EditorKey, values: Mapping[str, Any]) -> bool:
    """Whether the key is written at all (its ``when`` input is on, or off for ``!name``)."""
    if not key.when:
        return True
    name = key.when.removeprefix("!")
    return bool(values.get(name)) != key.when.startswith("!")


def _encode(
    key: EditorKey, values: Mapping[str, Any], previous: Mapping[str, Any], fallback: str
) -> Any:
    """The YAML value of the input (None: no key; ``(value, Default(d))``: a sparse default).
    ``previous``: the map the key was in, as the version being edited wrote it."""
    value = values.get(key.name, key.initial)
    before = previous.get(key.parts[-1]) if isinstance(previous, Mapping) else None
    if not _applies(key, values):
        return None
    encoders: dict[str, Callable[[], Any]] = {
        "text": lambda: str(value or "").strip() or None,
        "clock": lambda: _clock_value(str(value or "").strip(), before),
        "duration": lambda: _same_spelling(before, _duration(str(value or ""))),
        "choice": lambda: value or None,
        "flag": lambda: bool(value),
        "number": lambda: value,
        "places": lambda: value,
        "texts": lambda: _text_value(value, before, fallback),
        "bound": lambda: _typed(str(value or ""), before),
        "scalar": lambda: _typed(str(value or ""), before, values.get("type") == "checkbox"),
        "settings": lambda: _settings(value, before),
        "sessions": lambda: _sessions_value(value, before),
        "scenarios": lambda: _scenarios_value(str(value or ""), before),
        "condition": lambda: _condition_value(value, before),
        "tags": lambda: _flow_seq(value) if value else None,
        "checks": lambda: _one_or_many(value) if value else None,
        "member": lambda: _recipients(key, values),
        "others": lambda: _recipients(key, values),
    }
    encoded = encoders[key.kind]()
    if key.sparse:
        return (encoded, Default(key.initial))
    return encoded


def _clock_value(text: str, previous: Any) -> Any:
    """A time of day as the YAML writes it: quoted (a YAML 1.1 reader takes 21:00 for a number
    of minutes), or as the file wrote it when unchanged."""
    if not text:
        return None
    return previous if str(previous) == text else DoubleQuotedScalarString(text)


_INTEGER = re.compile(r"^-?\d{1,15}$")
_DECIMAL = re.compile(r"^-?\d{1,15}\.\d{1,15}$")


def _typed(text: str, previous: Any, boolean: bool = False) -> Any:
    """A value typed in a box, as the YAML writes it: ``5`` a number, ``2027-01-31`` a text (the
    checker reads dates itself), ``true``/``false`` a yes/no for a checkbox; unchanged when it
    is the value the file wrote."""
    text = text.strip()
    if not text:
        return None
    if previous is not None and _scalar_text(previous) == text:
        return previous
    if boolean and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if _INTEGER.match(text):
        return int(text)
    if _DECIMAL.match(text):
        return float(text)
    return text


def _settings(value: Any, previous: Any) -> Any:
    """A plugin field's settings (a map), unchanged while equal to the file's."""
    if not value:
        return None
    if isinstance(previous, Mapping) and dict(previous) == dict(value):
        return previous
    out = CommentedMap(value)
    out.fa.set_flow_style()
    return out


def _condition_value(value: Any, previous: Any) -> Any:
    """``show_if`` written from the editor's three boxes (None: always asked); unchanged while
    it says the same as the file."""
    if not isinstance(value, Mapping) or not value.get("field") or not value.get("test"):
        return None
    test, text = str(value["test"]), str(value.get("value") or "")
    if test in ("answered", "not_answered"):
        written: Any = test == "answered"
        test = "answered"
    elif test in ("in", "not_in"):
        written = [_typed(part, None) for part in text.split(",") if part.strip()]
    else:
        written = _typed(text, None) if text.strip() else ""
    out = _flow({"field": str(value["field"]), test: written})
    if isinstance(previous, Mapping) and dict(previous) == dict(out):
        return previous
    return out


def _sessions_value(value: Any, previous: Any) -> Any:
    """Fixed start times, one ``{days: [...], at: "HH:MM"}`` each; unchanged while the same."""
    if not value:
        return None
    if isinstance(previous, list) and _sessions(previous) == [(list(d), a) for d, a in value]:
        return previous
    out = CommentedSeq()
    for days, at in value:
        # Quoted: a YAML 1.1 reader takes 18:00 for a number of minutes.
        out.append(_flow({"days": _flow_seq(list(days)), "at": DoubleQuotedScalarString(at)}))
    return out


def scenarios_text(value: Any) -> str:
    """The ``tests`` list as the editor's text area shows it: the YAML the file writes."""
    if not isinstance(value, list) or not value:
        return ""
    out = io.StringIO()
    _yaml().dump(value, out)
    return textwrap.dedent(out.getvalue())


def parse_scenarios(text: str) -> list[Any] | str:
    """The text area's ``tests``: a list (``[]`` for an empty box), or what is wrong with it
    (the loader checks the cases themselves)."""
    if not text.strip():
        return []
    try:
        plain = parse_document(text, "tests").data  # bounded; dates kept as written
    except DocumentError:
        return "not readable as YAML: write one case per '- name: ...' entry"
    if not isinstance(plain, list):
        return "the checks are a list: start each case with '- name: ...'"
    try:
        loaded = _yaml().load(text)  # the round-trip form keeps the author's layout
    except (YAMLError, ValueError):  # a date that does not exist: the loader says where
        return list(plain)
    return loaded if isinstance(loaded, list) else list(plain)


def _scenarios_value(text: str, previous: Any) -> Any:
    """``tests`` from the text area; the file's own list (comments, layout) while the text says
    the same."""
    parsed = parse_scenarios(text)
    if isinstance(parsed, str) or not parsed:
        return None
    if isinstance(previous, list) and _plain(previous) == _plain(parsed):
        return previous
    return parsed


def _plain(value: Any) -> Any:
    """A YAML value as plain lists, maps and scalars (to compare two spellings)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# --- checks as rows ---------------------------------------------------------------------------

WEEKDAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CHECK_KEYS = ("name", "given", "book", "slots", "cancel")  # a case's keys, in the file's order
CHECK_MATCHES = ("offered", "includes", "excludes")
_BOOK = re.compile(r"^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2})$")
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CLOCK = re.compile(r"^(\d{1,2})[:h.](\d{2})(?::\d{2})?$")


def _strings(value: Any) -> list[str] | None:
    """A list of plain values as texts; None when ``value`` is not a list of scalars."""
    if not isinstance(value, list) or any(isinstance(v, Mapping | list) for v in value):
        return None
    return [str(v) for v in value]


def check_row_values(spec: Any) -> dict[str, Any] | None:
    """A case of ``tests`` as a check row's values, when the row says all of it: the times
    offered on a day (exactly, at least, or not), or a cancellation some time before a booking,
    in a scene of a time zone, working hours and bookings already made. None for any other case
    (messages, staff, time off, ``now``...): it stays in the text box, as written."""
    if not isinstance(spec, Mapping) or not set(spec) <= set(CHECK_KEYS):
        return None
    if not isinstance(spec.get("name"), str):
        return None
    given = spec.get("given") if spec.get("given") is not None else {}
    if not isinstance(given, Mapping) or not set(given) <= {"timezone", "hours", "bookings"}:
        return None
    hours: dict[str, list[str]] = {}
    for day, ranges in (given.get("hours") or {}).items() if "hours" in given else ():
        texts = _strings(ranges)
        if str(day) not in WEEKDAY_KEYS or texts is None:
            return None
        hours[str(day)] = texts
    if "hours" in given and (not isinstance(given["hours"], Mapping) or not hours):
        return None  # ``hours: {}`` (closed all week) is not the empty box (the default hours)
    bookings = []
    for booking in given.get("bookings") or []:
        if not isinstance(booking, Mapping) or set(booking) != {"start"}:
            return None
        bookings.append(str(booking["start"]))
    values = new_row("tests").values | {
        "name": spec["name"],
        "timezone": str(given.get("timezone", "UTC")),
        "hours": hours,
        "bookings": bookings,
    }
    slots, cancel = spec.get("slots"), spec.get("cancel")
    if slots is not None and "book" not in spec and cancel is None:
        matches = [m for m in CHECK_MATCHES if isinstance(slots, Mapping) and m in slots]
        if not isinstance(slots, Mapping) or set(slots) != {"on", *matches} or len(matches) != 1:
            return None
        times = _strings(slots[matches[0]])
        if times is None or isinstance(slots["on"], Mapping | list):
            return None
        return (
            values
            | {"what": "slots", "day": str(slots["on"]), "match": matches[0]}
            | {"offered": times}
        )
    booked = _BOOK.match(str(spec.get("book", "")))
    if (
        slots is None
        and booked
        and isinstance(cancel, Mapping)
        and set(cancel) == {"before", "expect"}
        and cancel["expect"] in ("allowed", "refused")
        and isinstance(cancel["before"], str)
    ):
        return values | {
            "what": "cancel",
            "day": booked[1],
            "time": booked[2],
            "before": str(cancel["before"]),
            "expect": str(cancel["expect"]),
        }
    return None


def advanced_checks(value: Any) -> Any:
    """The cases of ``tests`` no row can say (the file's own list when none can)."""
    if not isinstance(value, list):
        return value
    rest = [spec for spec in value if check_row_values(spec) is None]
    if len(rest) == len(value):
        return value
    return CommentedSeq(rest)


def _loose(value: Any) -> Any:
    """A YAML value with its scalars as texts (a date and the same date quoted compare equal)."""
    if isinstance(value, Mapping):
        return {str(k): _loose(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_loose(v) for v in value]
    return None if value is None else str(value)


def _kept(before: Any, value: Any) -> Any:
    """``value``, or the file's own spelling of it (quotes, flow style, comments) when it says
    the same."""
    if before is not None and _loose(before) == _loose(value):
        return before
    return value


def _clock_text(text: str) -> str:
    """``9:30``, ``09h30`` or a time input's ``09:30:00`` as ``09:30``; anything else as typed
    (the check says what is wrong with it)."""
    found = _CLOCK.match(text.strip())
    return f"{int(found[1]):02d}:{found[2]}" if found else text.strip()


def _day_value(text: str) -> Any:
    """A day as the files write it: a bare date (``2027-03-29``); anything else as typed."""
    text = text.strip()
    try:
        return date.fromisoformat(text) if _ISO_DAY.match(text) else text
    except ValueError:
        return text  # 2027-02-30: the check says it is not a real date


def _check_given(values: Mapping[str, Any], before: Any) -> Any:
    """The scene: ``{timezone: ..., hours: {...}, bookings: [...]}``, each key only when it
    says something (the time zone when not UTC, or when the file wrote it)."""
    before_map = before if isinstance(before, Mapping) else {}
    given = CommentedMap()
    zone = str(values.get("timezone") or "UTC")
    if zone != "UTC" or "timezone" in before_map:
        given["timezone"] = zone
    hours = values.get("hours") or {}
    if hours:
        given["hours"] = _flow(
            {
                day: _flow_seq([DoubleQuotedScalarString(r) for r in hours[day]])
                for day in WEEKDAY_KEYS
                if hours.get(day)
            }
        )
    bookings = [str(b).strip() for b in values.get("bookings") or [] if str(b).strip()]
    if bookings:
        # A list of one-key maps in a block: in a flow list they would lose their braces.
        given["bookings"] = CommentedSeq(
            _flow({"start": DoubleQuotedScalarString(b)}) for b in bookings
        )
    if before is not None and _loose(before) == _loose(given):
        return before
    if not given:
        return None
    for key in given:
        given[key] = _kept(before_map.get(key), given[key])
    if "bookings" not in given:
        given.fa.set_flow_style()
    return given


def _check_entry(values: Mapping[str, Any], base: Any) -> CommentedMap:
    """A case of ``tests`` from a check row; the case it came from (``base``) keeps what did not
    change, its comments and layout."""
    before = base if isinstance(base, CommentedMap) else CommentedMap()
    entry = copy.deepcopy(before)
    name = str(values.get("name") or "").strip()
    parts: dict[str, Any] = {"name": _kept(before.get("name"), name) if name else None}
    parts["given"] = _check_given(values, before.get("given"))
    day = str(values.get("day") or "").strip()
    if values.get("what") == "cancel":
        at = f"{day} {_clock_text(str(values.get('time') or ''))}".strip()
        parts["book"] = _kept(before.get("book"), DoubleQuotedScalarString(at))
        delay = _duration(str(values.get("before") or "")) or ""
        cancel = _flow({"before": delay, "expect": str(values.get("expect") or "refused")})
        parts["cancel"] = _kept(before.get("cancel"), cancel)
        parts["slots"] = None
    else:
        match = str(values.get("match") or "offered")
        match = match if match in CHECK_MATCHES else "offered"
        times = [DoubleQuotedScalarString(_clock_text(t)) for t in values.get("offered") or []]
        slots = _flow({"on": _day_value(day), match: _flow_seq(times)})
        parts.update(slots=_kept(before.get("slots"), slots), book=None, cancel=None)
    for key in CHECK_KEYS:
        value = parts[key]
        if value is None:
            entry.pop(key, None)
        elif key not in entry:
            position = sum(1 for k in entry if k in CHECK_KEYS[: CHECK_KEYS.index(key)])
            entry.insert(position, key, value)
        elif entry[key] is not value and _loose(entry[key]) != _loose(value):
            entry[key] = value
    return entry


def _says_something(values: Mapping[str, Any]) -> bool:
    """A check row someone filled in (a new page's empty row writes nothing)."""
    return any(
        values.get(name) for name in ("name", "day", "time", "before", "offered", "hours")
    ) or bool(values.get("bookings"))


def check_places(values: StructuredWorkflow, source_text: str | None) -> list[tuple[str, int]]:
    """Where each case of the ``tests`` :func:`write` gives comes from, in order: ``("row",
    i)`` (``values.checks[i]``) or ``("advanced", j)`` (the text box's ``j``-th case). The cases
    keep the file's order: rows take the places of the file's row cases, the text box's cases
    the others; what is new goes at the end."""
    try:
        previous = load_map(source_text).get("tests")
    except DocumentError:
        previous = None
    return _check_order(values, previous if isinstance(previous, list) else [])


def _advanced(values: StructuredWorkflow) -> list[Any]:
    parsed = parse_scenarios(str(values.values.get("tests") or ""))
    return parsed if isinstance(parsed, list) else []


def _check_order(values: StructuredWorkflow, previous: Sequence[Any]) -> list[tuple[str, int]]:
    rows = [
        i for i, row in enumerate(values.checks) if not row.removed and _says_something(row.values)
    ]
    advanced = list(range(len(_advanced(values))))
    out: list[tuple[str, int]] = []
    for spec in previous:
        pool, kind = (rows, "row") if check_row_values(spec) is not None else (advanced, "advanced")
        if pool:
            out.append((kind, pool.pop(0)))
    return out + [("row", i) for i in rows] + [("advanced", j) for j in advanced]


def _tests(values: StructuredWorkflow, previous: Any) -> Any:
    """``tests``: the check rows and the text box's cases, in :func:`check_places`' order; the
    file's own list (comments and all) while nothing changed."""
    before = list(previous) if isinstance(previous, list) else []
    advanced = _advanced(values)
    old_advanced = [spec for spec in before if check_row_values(spec) is None]
    if _plain(advanced) == _plain(old_advanced):
        advanced = old_advanced
    out = []
    for kind, index in _check_order(values, before):
        if kind == "advanced":
            out.append(advanced[index])
            continue
        row = values.checks[index]
        base = _base(row, before)
        base = base if check_row_values(base) is not None else None
        entry = _check_entry(row.values, base)
        out.append(base if base is not None and _loose(entry) == _loose(base) else entry)
    if not out:
        return None
    if len(out) == len(before) and all(a is b for a, b in zip(out, before, strict=True)):
        return previous
    if not isinstance(previous, CommentedSeq):
        return CommentedSeq(out)
    seq = copy.deepcopy(previous)  # the comments between the cases stay at their places
    del seq[len(out) :]
    for index, spec in enumerate(out):
        if index >= len(seq):
            seq.append(spec)
        elif spec is not before[index]:
            seq[index] = spec
    return seq


def _flow_seq(values: Sequence[str]) -> CommentedSeq:
    seq = CommentedSeq(values)
    seq.fa.set_flow_style()
    return seq


def _recipients(key: EditorKey, values: Mapping[str, Any]) -> Any:
    """A list shown as boxes (``member``) and a text of the others (``others``)."""
    chosen = []
    for other in EDITOR_KEYS:
        if other.path != key.path:
            continue
        if other.kind == "member" and values.get(other.name):
            chosen.append(other.member)
        elif other.kind == "others":
            chosen += [a.strip() for a in str(values.get(other.name) or "").split(",")]
    chosen = [c for c in chosen if c]
    return _one_or_many(chosen) if chosen else None


def _write_keys(
    target: CommentedMap,
    previous: Mapping[str, Any],
    keys: Sequence[EditorKey],
    values: Mapping[str, Any],
    fallback: str,
) -> None:
    """Write the inputs' values into ``target`` (the workflow, or one row), key by key; the
    keys of a map (``buffer.before``) go in together, a ``presence`` input deciding whether the
    map is written at all."""
    groups: dict[str, list[EditorKey]] = {}
    for key in keys:
        groups.setdefault(key.parts[0], []).append(key)
    for head, members in groups.items():
        present = next((k for k in members if k.kind == "presence"), None)
        if present is not None and not values.get(present.name):
            target.pop(head, None)
            continue
        inner = [k for k in members if len(k.parts) == 2 and k.kind != "group"]
        for key in members:
            if len(key.parts) == 1 and key.kind != "presence":
                _write_key(target, previous, key, values, fallback)
        if inner:
            parent = previous.get(head) if isinstance(previous, Mapping) else None
            written: dict[str, Any] = {}
            for key in inner:
                if key.parts[1] not in written:
                    written[key.parts[1]] = _encode(key, values, parent or {}, fallback)
            if any(_is_written(value) for value in written.values()):
                for key in inner:
                    if key.always and isinstance(written[key.parts[1]], tuple):
                        written[key.parts[1]] = written[key.parts[1]][0]
            _sub(target, head, written, flow=head not in BLOCK_MAPS)


def _is_written(encoded: Any) -> bool:
    """Whether an encoded value puts a key in the YAML (a sparse default does not)."""
    if isinstance(encoded, tuple) and len(encoded) == 2 and isinstance(encoded[1], Default):
        return bool(encoded[0] != encoded[1].value)
    return encoded not in (None, "", [])


def _write_key(
    target: CommentedMap,
    previous: Mapping[str, Any],
    key: EditorKey,
    values: Mapping[str, Any],
    fallback: str,
) -> None:
    name = key.parts[0]
    if key.kind == "places":
        _write_capacity(target, key, values)
    elif key.kind == "delay":
        _write_delay(target, key, values)
    elif key.kind == "lines":
        _write_options(target, previous, key, values, fallback)
    elif key.kind == "scenarios":
        return  # written with the check rows (:func:`_tests`)
    elif key.kind in ("member", "others") and any(
        k.path == key.path for k in EDITOR_KEYS[: EDITOR_KEYS.index(key)]
    ):
        return  # the list was written with the first input that shows it
    else:
        _put(target, name, _encode(key, values, previous, fallback))


def _write_capacity(target: CommentedMap, key: EditorKey, values: Mapping[str, Any]) -> None:
    """``capacity``: a number (one group per free staff member), or ``{places: N, per: slot}``
    (one group per time); a map the file wrote stays a map, its other keys kept."""
    places = values.get(key.name) or 1
    group = next(
        (k for k in EDITOR_KEYS if k.kind == "group" and k.path.startswith(key.path)), None
    )
    per = str(values.get(group.name) or "staff") if group else "staff"
    current = target.get(key.parts[0])
    if isinstance(current, CommentedMap):
        _set(current, "places", places)
        _set_default(current, "per", per, "staff")
    elif per == "slot":
        _set(target, key.parts[0], _flow({"places": places, "per": per}))
    else:
        _set_default(target, key.parts[0], places, 1)


def _write_delay(target: CommentedMap, key: EditorKey, values: Mapping[str, Any]) -> None:
    """``before`` of a reminder or ``after`` of a follow-up; neither on other events."""
    before = None
    for path in (key.path, *key.also):
        before = target.pop(path.rpartition(".")[2], None) or before
    event = str(values.get("on") or "")
    if event in DELAYS:
        name, default = DELAYS[event]
        written = _same_spelling(before, _duration(str(values.get(key.name) or "")))
        _set(target, name, written or default)


def _write_options(
    target: CommentedMap,
    previous: Mapping[str, Any],
    key: EditorKey,
    values: Mapping[str, Any],
    fallback: str,
) -> None:
    """A select field's options (labels kept as written while unchanged); none on other types."""
    name = key.parts[0]
    if values.get("type") not in ("select", "multiselect"):
        target.pop(name, None)
        return
    old = {str(o.get("value")): o for o in (previous or {}).get(name) or []}
    options = CommentedSeq()
    for value, labels in values.get(key.name) or []:
        previous_label = old[value].get("label") if value in old else None
        options.append(
            _flow({"value": value, "label": _text_value(labels, previous_label, fallback) or value})
        )
    _set(target, name, options if options else None)


def write(
    values: StructuredWorkflow,
    source_text: str | None,
    fallback: str,
) -> str:
    """The workflow's YAML with the editor's values written in (``source_text``: the version
    being edited, None for a new workflow)."""
    data = load_map(source_text)
    original = copy.deepcopy(data)
    _name_what_is_unnamed(values, fallback)
    _write_keys(data, original, keys_of(None), values.values, fallback)
    _set(data, "fields", _fields(values.fields, original.get("fields") or [], fallback))
    _set(data, "route", _routes(values.routes, original.get("route") or [], fallback))
    _set(data, "tests", _tests(values, original.get("tests")))
    _write_lifecycle(data, original, values, fallback)
    rules = _rules(values.rules, original, fallback)
    if rules is not None and not rules:
        # No rule at all means "send nothing": written out, or the defaults would apply.
        if not isinstance(data.get("notifications"), list) or data["notifications"]:
            empty = CommentedSeq()
            empty.fa.set_flow_style()
            data.pop("notifications", None)
            _place(data, "notifications", empty)
    else:
        _set(data, "notifications", rules)
    return dump_map(data)


def _base(row: Row, previous: Sequence[Any]) -> Any:
    """The entry the row came from in the version being edited, if any."""
    return previous[row.source] if row.source is not None and row.source < len(previous) else None


def _wording(texts: Any, fallback: str) -> str:
    """The text of a ``texts`` input in the default language, else the first one given."""
    if not isinstance(texts, Mapping):
        return str(texts or "").strip()
    for code in (fallback, *texts):
        text = texts.get(code)
        if isinstance(text, str) and text.strip():
            return text.strip()
    return ""


def _name_what_is_unnamed(values: StructuredWorkflow, fallback: str) -> None:
    """Identifiers a person left empty, made from the words they typed: a new scenario's from its
    name (``legal-consultation``), a question's from its wording (``area_of_law``). One typed
    stays as typed; an existing question keeps its own (answers are stored under it)."""
    if not str(values.values.get("id") or "").strip():
        made = slugify(_wording(values.values.get("name"), fallback))[:63].strip("-")
        if made:
            values.values["id"] = made
    name_steps(values, fallback)
    rows = [row for row in values.fields if not row.removed and not row.values.get("include")]
    taken = {str(row.values.get("id") or "").strip() for row in rows} - {""}
    for row in rows:
        row.values["options"] = _valued_options(row.values.get("options") or [], fallback)
    for route in values.routes:
        _choice_values_in_condition(route, rows, "condition")
    for row in rows:
        _choice_values_in_condition(row, rows)
        if str(row.values.get("id") or "").strip():
            continue
        wording = _wording(row.values.get("label"), fallback)
        if wording:  # no words either: the check asks for them
            row.values["id"] = identifier_for(wording, taken)
            taken.add(row.values["id"])


def keep_names(values: StructuredWorkflow, source_text: str | None) -> None:
    """Once bookings use a workflow, the identifiers they store answers and states under stay
    as the version being edited wrote them: a question's ``id`` and a step's name, for every
    row that came from that version (new rows are named freely)."""
    previous = load_map(source_text)
    fields = list(previous.get("fields") or [])
    states = (
        list(previous.get("states") or {}) if isinstance(previous.get("states"), Mapping) else []
    )
    for row in values.fields:
        base = _base(row, fields)
        if isinstance(base, Mapping) and "id" in base:
            row.values["id"] = str(base["id"])
    for row in values.states:
        if row.source is not None and row.source < len(states):
            row.values["name"] = str(states[row.source])


def name_steps(values: StructuredWorkflow, fallback: str) -> None:
    """The lifecycle's steps and actions left unnamed, named from their words (``Awaiting
    approval`` -> ``awaiting_approval``); a name given stays (bookings are stored under it)."""
    for rows, prefix in ((values.states, "step"), (values.transitions, "action")):
        live = [row for row in rows if not row.removed]
        taken = {str(row.values.get("name") or "").strip() for row in live} - {""}
        for row in live:
            if str(row.values.get("name") or "").strip():
                continue
            wording = _wording(row.values.get("label"), fallback)
            if wording:
                row.values["name"] = identifier_for(wording, taken, prefix=prefix)
                taken.add(row.values["name"])


# The order of a question's, a step's and an action's keys when the editor writes a new one.
FIELD_ORDER = ("id", "type", "label", "help", "placeholder", "required", "options")
STATE_ORDER = ("initial", "final", "holds_slot", "label")
TRANSITION_ORDER = ("name", "from", "to", "by", "label")


def _in_order(entry: CommentedMap, order: Sequence[str]) -> CommentedMap:
    out = CommentedMap((key, entry[key]) for key in order if key in entry)
    for key in entry:
        if key not in out:
            out[key] = entry[key]
    out.fa.set_flow_style()
    return out


def _write_lifecycle(
    data: CommentedMap, original: Mapping[str, Any], values: StructuredWorkflow, fallback: str
) -> None:
    """``states`` and ``transitions`` from the rows; neither written while a workflow without
    them keeps the default lifecycle."""
    before = original.get("states")
    before_states = list(before.items()) if isinstance(before, Mapping) else []
    states = CommentedMap()
    state_keys = [k for k in keys_of("states") if k.name not in ("name", "holds_slot")]
    for row in values.states:
        if row.removed:
            continue
        base = (
            before_states[row.source][1]
            if row.source is not None and row.source < len(before_states)
            else None
        )
        entry = copy.deepcopy(base) if isinstance(base, CommentedMap) else CommentedMap()
        _write_keys(entry, base or {}, state_keys, row.values, fallback)
        held, usual = bool(row.values.get("holds_slot")), not row.values.get("final")
        if held != usual or (isinstance(base, Mapping) and "holds_slot" in base):
            _set(entry, "holds_slot", held)
        else:
            entry.pop("holds_slot", None)
        states[str(row.values.get("name") or "").strip()] = (
            entry if isinstance(base, CommentedMap) else _in_order(entry, STATE_ORDER)
        )
    previous_moves = list(original.get("transitions") or [])
    moves = CommentedSeq()
    for row in values.transitions:
        if row.removed:
            continue
        base = _base(row, previous_moves)
        entry = copy.deepcopy(base) if isinstance(base, CommentedMap) else CommentedMap()
        _write_keys(entry, base or {}, keys_of("transitions"), row.values, fallback)
        moves.append(
            entry if isinstance(base, CommentedMap) else _in_order(entry, TRANSITION_ORDER)
        )
    if "states" not in original and (
        (not states and not moves) or _is_default_lifecycle(states, moves)
    ):
        return  # no steps at all in the form (a page that shows none): the default applies
    _set(data, "states", states)
    _set(data, "transitions", moves)


def _is_default_lifecycle(states: Mapping[str, Any], moves: Sequence[Any]) -> bool:
    try:
        return Lifecycle.from_definition(states, moves) == DEFAULT_LIFECYCLE
    except (KeyError, TypeError, AttributeError):
        return False


def _choice_values_in_condition(row: Row, rows: Sequence[Row], key: str = "show_if") -> None:
    """A ``show_if`` (or a route's condition, ``key``) on a list question may name its choices
    by their words ("First visit"): they are written as the choices' stored values
    (``first_visit``)."""
    condition = row.values.get(key)
    if not isinstance(condition, Mapping) or not condition.get("value"):
        return
    target = next((r for r in rows if r.values.get("id") == condition.get("field")), None)
    options = (target.values.get("options") or []) if target else []
    if not options:
        return
    by_words = {
        str(words).strip().casefold(): value
        for value, labels in options
        for words in (value, *labels.values())
    }
    parts = [part.strip() for part in str(condition["value"]).split(",")]
    resolved = [str(by_words.get(part.casefold(), part)) for part in parts if part]
    row.values[key] = {**condition, "value": ", ".join(resolved)}


def _valued_options(options: Sequence[tuple[str, Texts]], fallback: str) -> list[tuple[str, Texts]]:
    """A choice's stored value, made from its words when none is written (``Tax law`` ->
    ``tax_law``); one written stays, so answers already given keep their meaning."""
    taken = {str(value) for value, _ in options if str(value).strip()}
    out = []
    for written, labels in options:
        value = written
        if not str(written).strip():
            value = identifier_for(_wording(labels, fallback), taken, prefix="choice")
            taken.add(value)
        out.append((value, labels))
    return out


def _fields(rows: Sequence[Row], previous: Sequence[Any], fallback: str) -> CommentedSeq | None:
    out = CommentedSeq()
    keys = [key for key in keys_of("fields") if key.name != "include"]
    for row in rows:
        if row.values.get("include"):
            out.append(_flow({"include": str(row["include"]).strip()}))
            continue
        base = _base(row, previous)
        item = (
            copy.deepcopy(base)
            if isinstance(base, CommentedMap) and "include" not in base
            else CommentedMap()
        )
        _write_keys(item, base or {}, keys, row.values, fallback)
        if base is None:
            item = _in_order(item, FIELD_ORDER)
            if len(item) > 3:
                item.fa.set_block_style()
        out.append(item)
    return out if out else None


def _routes(rows: Sequence[Row], previous: Sequence[Any], fallback: str) -> CommentedSeq | None:
    """``route``: a rule per row, ``{if: {...}, staff: {tags: [...]}}`` on one line (a rule the
    file wrote keeps its other keys and style); a row left empty writes nothing."""
    out = CommentedSeq()
    for row in rows:
        if row.removed or not (row.values.get("condition") or row.values.get("tags")):
            continue
        base = _base(row, previous)
        entry = copy.deepcopy(base) if isinstance(base, CommentedMap) else CommentedMap()
        _write_keys(entry, base or {}, keys_of("route"), row.values, fallback)
        if base is None:
            entry = _in_order(entry, ("if", "staff"))
        out.append(entry)
    return out if out else None


def _rules(rows: Sequence[Row], original: Mapping[str, Any], fallback: str) -> CommentedSeq | None:
    previous = list(original.get("notifications") or [])
    out = CommentedSeq()
    plain = []
    for row in rows:
        base = _base(row, previous)
        rule = copy.deepcopy(base) if isinstance(base, CommentedMap) else CommentedMap()
        _write_keys(rule, base or {}, keys_of("notifications"), row.values, fallback)
        if base is None:
            rule.fa.set_flow_style()
        out.append(rule)
        plain.append(_plain_rule(rule))
    if "notifications" not in original:
        # A workflow that relies on the default rules keeps doing so while they are unchanged.
        defaults = [_plain_rule(r) for r in default_notifications(_lifecycle(original))]
        if plain == defaults:
            return None
    return out


def _plain_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    def listed(value: Any) -> list[str]:
        return _list(value)

    return {
        "on": rule.get("on"),
        "offset": rule.get("before") or rule.get("after"),
        "to": sorted(listed(rule.get("to"))),
        "channel": sorted(listed(rule.get("channel")) or ["email"]),
        "template": rule.get("template"),
    }


# --- checking -------------------------------------------------------------------------------


def check_text(
    text: str, name: str, context: CheckContext, expected_id: str | None = None
) -> tuple[CheckedWorkflow | None, list[Problem]]:
    """Check a workflow's YAML as if it were a file called ``name``."""
    try:
        document = parse_document(text, name)
    except DocumentError as exc:
        return None, [exc.problem]
    return check_workflow(document, context, expected_id)


_PATH = re.compile(r"^((?:[a-z_]+|\[\d+\])(?:\.[a-z_]+|\[\d+\])*): ")


def problem_path(problem: Problem) -> tuple[str | int, ...]:
    """The key path a problem's message starts with (``fields[2].label``), as a tuple."""
    match = _PATH.match(problem.message)
    if not match:
        return ()
    parts: list[str | int] = []
    for token in re.findall(r"[a-z_]+|\[\d+\]", match.group(1)):
        parts.append(int(token[1:-1]) if token.startswith("[") else token)
    return tuple(parts)


def problem_text(problem: Problem) -> str:
    """The message without its key path (the editor shows it beside the input)."""
    return _PATH.sub("", problem.message, count=1)


def _problem_inputs() -> dict[str, str]:
    """Key path (``buffer.before``, ``fields[].label``) -> the input that shows its problems."""
    inputs: dict[str, str] = {}
    for key in EDITOR_KEYS:
        if key.shows_problems:
            for path in (key.path, *key.also):
                inputs.setdefault(path, key.name)
    return inputs


PROBLEM_INPUTS = _problem_inputs()
# A check row's key paths inside a case (``slots.offered``) -> the input that shows them.
CHECK_PROBLEM_INPUTS = {
    path.removeprefix("tests[]."): key.name
    for key in keys_of("tests")
    if key.shows_problems
    for path in (key.path, *key.also)
}


def _check_input(rest: Sequence[str | int]) -> str:
    """The check row's input for a key path inside a case (``slots.offered[2]``): the input
    of the longest part of it a row key shows, else the row's name."""
    words: list[str] = []
    for part in rest:
        if isinstance(part, int):
            if words:
                words[-1] += "[]"
        else:
            words.append(part)
    for depth in range(len(words), 0, -1):
        path = ".".join(words[:depth])
        name = CHECK_PROBLEM_INPUTS.get(path) or CHECK_PROBLEM_INPUTS.get(path.removesuffix("[]"))
        if name is not None:
            return name
    return ROW_ANCHORS["tests"]


def field_of_problem(
    problem: Problem, steps: Sequence[str] = (), checks: Sequence[tuple[str, int]] = ()
) -> str | None:
    """The structured editor's input a problem belongs to, by the editor's naming: ``duration``,
    ``fields-2-label``, ``rules-1-offset``, ``states-1-initial``; None when no input shows that
    key. ``steps``: the names of the lifecycle's steps, in the order of their rows (a step's
    problem names the step, ``states.requested.initial``). ``checks``: where each case of
    ``tests`` comes from (:func:`check_places`; none: case ``i`` is row ``i``): a problem of a
    case of the text box shows at the box."""
    path = problem_path(problem)
    if not path:
        return None
    head = str(path[0])
    if head == "tests" and len(path) >= 2 and isinstance(path[1], int):
        kind, index = checks[path[1]] if path[1] < len(checks) else ("row", path[1])
        if kind != "row":
            return "tests"
        return f"{ROW_LISTS[head]}-{index}-{_check_input(path[2:])}"
    if head == "states" and len(path) >= 2 and path[1] in steps:
        path = (head, list(steps).index(str(path[1])), *path[2:])
    if head in ROW_LISTS and len(path) >= 2 and isinstance(path[1], int):
        key = f"{head}[].{path[2]}" if len(path) >= 3 else ""
        return f"{ROW_LISTS[head]}-{path[1]}-{PROBLEM_INPUTS.get(key, ROW_ANCHORS[head])}"
    for depth in (2, 1):
        if len(path) >= depth:
            name = PROBLEM_INPUTS.get(".".join(str(part) for part in path[:depth]))
            if name is not None:
                return name
    return None


def diff(old: str, new: str, old_name: str, new_name: str) -> list[tuple[str, str]]:
    """A line diff of two versions: (kind, line), kind one of ``add``, ``del``, ``hunk``,
    ``same``."""
    lines = []
    for line in difflib.unified_diff(
        old.splitlines(), new.splitlines(), old_name, new_name, lineterm="", n=3
    ):
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("@@"):
            lines.append(("hunk", line))
        elif line.startswith("+"):
            lines.append(("add", line))
        elif line.startswith("-"):
            lines.append(("del", line))
        else:
            lines.append(("same", line))
    return lines


def blank_workflow(identifier: str, name: Texts) -> StructuredWorkflow:
    """A new scenario: 30 minutes, the client's name and e-mail asked (the platform adds them),
    the usual messages."""
    values = {key.name: key.initial for key in keys_of(None)}
    values.update(id=identifier, name=name, duration="30m")
    both = {"to_client": True, "to_staff": True}
    states, transitions = lifecycle_rows(LIFECYCLES["lifecycle:direct"], "en")
    return StructuredWorkflow(
        values,
        states=states,
        transitions=transitions,
        rules=[
            new_row("notifications", on="confirmed", **both),
            new_row("notifications", on="rescheduled", **both),
            new_row("notifications", on="cancelled", **both),
            new_row("notifications", on="reminder", offset="24h", to_client=True),
        ],
    )
