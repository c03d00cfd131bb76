"""Reading and checking workflow files and field sets: first the schema, then the meaning.

Every problem names the file, the line, the column and the key, and says what to do. Pure: no
Flask, no database; the caller says which templates, channels and locales exist.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from babel import localedata

from bookwise.documents import (
    Document,
    DocumentError,
    KeyPath,
    format_path,
    read_document,
    schema_messages,
    schema_problems,
)
from bookwise.durations import parse_duration
from bookwise.errors import Problem, did_you_mean, errors_only
from bookwise.workflows.language import (
    CONTACT_FIELDS,
    FIELD_TYPES,
    NON_STATE_EVENTS,
    ORDERED_TESTS,
    RECIPIENT_KINDS,
    WEEKDAYS,
    Workflow,
    assignment_names,
    event_names,
    field_type_names,
)
from bookwise.workflows.lifecycle import (
    DEFAULT_STATES,
    FOLLOW_UP,
    REMINDER,
    one_or_many,
)
from bookwise.workflows.scenario_tests import Vocabulary, read_cases

SCHEMA = "workflow.schema.json"
SCHEMA_PACKAGE = "bookwise.workflows"


@dataclass(frozen=True)
class FieldSet:
    """A reusable list of fields from ``forms/NAME.yaml``."""

    name: str
    document: Document
    fields: list[dict[str, Any]]


@dataclass(frozen=True)
class CheckContext:
    """What exists around a workflow: field sets, and (when known) templates, channels, locales.

    ``None`` for templates or channels skips that check (for example before plugins are loaded).
    """

    field_sets: Mapping[str, FieldSet] = field(default_factory=dict)
    # Field sets that exist but have errors: name -> file, to point the author at the real problem.
    broken_field_sets: Mapping[str, str] = field(default_factory=dict)
    known_templates: frozenset[str] | None = None
    known_channels: frozenset[str] | None = None
    locales: tuple[str, ...] | None = None
    # What enabled plugins add: field types (name -> JSON Schema of the field's ``settings``),
    # assignment strategies, and meeting providers (``None``: not known, not checked).
    field_types: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    assignments: frozenset[str] = frozenset()
    meeting_providers: frozenset[str] | None = None
    # Some enabled plugin failed to load: a field type or strategy it would add is unknown, and
    # that is a warning (Bookwise runs without the plugin), not an error.
    plugins_failed: bool = False


@dataclass(frozen=True)
class CheckedWorkflow:
    """A workflow file that passed every check."""

    workflow: Workflow
    definition: dict[str, Any]
    source_text: str
    file: str
    content_hash: str
    id_position: tuple[int | None, int | None] = (None, None)


def content_hash(definition: Mapping[str, Any]) -> str:
    """Hash of a resolved definition: equal definitions, equal hashes, whatever the formatting."""
    canonical = json.dumps(definition, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def display_path(path: Path) -> str:
    """A path as people should read it in messages: relative to the current folder when inside."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def yaml_files(directory: Path) -> list[Path]:
    """The ``*.yaml`` and ``*.yml`` files of a folder, sorted, hidden files left out."""
    if not directory.is_dir():
        return []
    return sorted(
        p
        for p in directory.iterdir()
        if p.suffix in (".yaml", ".yml") and not p.name.startswith(".") and p.is_file()
    )


# --- field sets ---------------------------------------------------------------------------------


def check_field_set(
    document: Document, name: str, context: CheckContext | None = None
) -> tuple[FieldSet | None, list[Problem]]:
    """Check one field set file; return it when it has no error. ``context`` gives what plugins
    add (field types)."""
    if not isinstance(document.data, dict):
        return None, [document.problem((), "a field set is a mapping with a `fields:` list")]
    problems = schema_problems(document, SCHEMA_PACKAGE, SCHEMA, "#/$defs/field_set")
    if not problems:
        checker = _Checker(document, context or CheckContext())
        checker.check_fields(
            [(f, ("fields", i), None) for i, f in enumerate(document.data["fields"])]
        )
        checker.check_texts(document.data)
        problems = checker.problems
    if errors_only(problems):
        return None, problems
    return FieldSet(name=name, document=document, fields=document.data["fields"]), problems


def read_field_sets(
    forms_dir: Path, context: CheckContext | None = None
) -> tuple[dict[str, FieldSet], list[Problem]]:
    """Every field set of ``forms_dir``, by name, and the problems of the broken ones."""
    sets: dict[str, FieldSet] = {}
    problems: list[Problem] = []
    for path in yaml_files(forms_dir):
        try:
            document = read_document(path, display_path(path))
        except DocumentError as exc:
            problems.append(exc.problem)
            continue
        field_set, found = check_field_set(document, path.stem, context)
        problems.extend(found)
        if field_set is not None:
            sets[field_set.name] = field_set
    return sets, problems


def broken_field_sets(forms_dir: Path, sets: Mapping[str, FieldSet]) -> dict[str, str]:
    """The field set files of ``forms_dir`` that could not be read: name -> file."""
    return {p.stem: display_path(p) for p in yaml_files(forms_dir) if p.stem not in sets}


# --- workflows ----------------------------------------------------------------------------------


def check_workflow(
    document: Document, context: CheckContext, expected_id: str | None = None
) -> tuple[CheckedWorkflow | None, list[Problem]]:
    """Check a workflow document: schema, then meaning. Returns the workflow when it has no error
    (warnings may come with it)."""
    if not isinstance(document.data, dict):
        what = "empty" if document.data is None else "not a mapping"
        return None, [
            document.problem(
                (),
                f"a workflow is a mapping of keys (id, name, duration, ...); this file is {what}",
            )
        ]
    problems = schema_problems(document, SCHEMA_PACKAGE, SCHEMA)
    if problems:
        return None, problems
    checker = _Checker(document, context)
    definition = checker.check_workflow(expected_id)
    if errors_only(checker.problems) or definition is None:
        return None, checker.problems
    workflow = Workflow.from_definition(definition)
    return (
        CheckedWorkflow(
            workflow=workflow,
            definition=definition,
            source_text=document.text,
            file=document.file,
            content_hash=content_hash(definition),
            id_position=document.locate(("id",)),
        ),
        checker.problems,
    )


def check_workflow_file(
    path: Path, context: CheckContext
) -> tuple[CheckedWorkflow | None, list[Problem]]:
    """Read and check one workflow file."""
    try:
        document = read_document(path, display_path(path))
    except DocumentError as exc:
        return None, [exc.problem]
    return check_workflow(document, context, expected_id=path.stem)


def check_workflow_files(
    paths: list[Path], context: CheckContext
) -> tuple[dict[str, CheckedWorkflow], list[Problem]]:
    """Check several workflow files together; two files may not share an id."""
    workflows: dict[str, CheckedWorkflow] = {}
    problems: list[Problem] = []
    for path in paths:
        checked, found = check_workflow_file(path, context)
        problems.extend(found)
        if checked is not None:
            clash = register(workflows, checked)
            if clash is not None:
                problems.append(clash)
    return workflows, problems


def register(workflows: dict[str, CheckedWorkflow], checked: CheckedWorkflow) -> Problem | None:
    """Add ``checked`` to ``workflows`` by id, or say why not: the id is another file's."""
    other = workflows.get(checked.workflow.id)
    if other is not None:
        line, column = checked.id_position
        return Problem(
            checked.file,
            line,
            column,
            f"id: {checked.workflow.id!r} is already the id of {other.file}; "
            "each workflow needs its own id",
        )
    workflows[checked.workflow.id] = checked
    return None


# --- the meaning ------------------------------------------------------------------------------

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class _Checker:
    """The checks a schema cannot express. Collects problems; never raises."""

    def __init__(self, document: Document, context: CheckContext) -> None:
        self.document = document
        self.context = context
        self.problems: list[Problem] = []

    def error(self, path: KeyPath, message: str, at_key: bool = False) -> None:
        """An error at the value of ``path`` (or at its key, when the key itself is wrong)."""
        self.problems.append(self.document.problem(path, message, at_key=at_key))

    def warn(self, path: KeyPath, message: str) -> None:
        self.problems.append(self.document.problem(path, message, "warning"))

    # The whole workflow ------------------------------------------------------------------

    def check_workflow(self, expected_id: str | None) -> dict[str, Any] | None:
        data: dict[str, Any] = self.document.data
        if expected_id is not None and data["id"] != expected_id:
            self.warn(
                ("id",),
                f"the id {data['id']!r} differs from the file name {expected_id!r}; "
                "keep them equal so the file is easy to find",
            )
        resolved_fields = self.resolve_fields(data.get("fields", []))
        self.check_fields(resolved_fields)
        self.check_routes(data.get("route", []), resolved_fields)
        self.check_times(data)
        self.check_groups(data)
        self.check_sessions(data)
        self.check_quiet_hours(data.get("quiet_hours"))
        self.check_recurrence(data.get("recurrence"))
        self.check_location(data.get("location"))
        self.check_staff(data.get("staff", {}))
        states = self.check_lifecycle(data)
        self.check_notifications(data, states, {spec["id"] for spec, _, _ in resolved_fields})
        self.check_scenario_tests(data, states)
        self.check_texts(data)
        definition = dict(data)
        if "fields" in data:
            definition["fields"] = [spec for spec, _, _ in resolved_fields]
        return definition

    # Fields ------------------------------------------------------------------------------

    def resolve_fields(
        self, entries: list[dict[str, Any]]
    ) -> list[tuple[dict[str, Any], KeyPath, str | None]]:
        """Expand includes: (field spec, where it is written here, field set it came from)."""
        out: list[tuple[dict[str, Any], KeyPath, str | None]] = []
        for index, entry in enumerate(entries):
            if "include" not in entry:
                out.append((entry, ("fields", index), None))
                continue
            name = entry["include"]
            field_set = self.context.field_sets.get(name)
            if name in self.context.broken_field_sets:
                self.error(
                    ("fields", index, "include"),
                    f"the field set {name!r} has errors; see "
                    f"{self.context.broken_field_sets[name]}",
                )
                continue
            if field_set is None:
                known = ", ".join(sorted(self.context.field_sets)) or "none"
                self.error(
                    ("fields", index, "include"),
                    f"no field set {name!r} in the forms folder"
                    f"{did_you_mean(name, self.context.field_sets)} (known: {known})",
                )
                continue
            out.extend((spec, ("fields", index, "include"), name) for spec in field_set.fields)
        return out

    def check_fields(self, fields: list[tuple[dict[str, Any], KeyPath, str | None]]) -> None:
        seen: dict[str, KeyPath] = {}
        for spec, path, origin in fields:
            fid = spec["id"]
            where = f"field {fid!r} of field set {origin!r}" if origin else f"field id {fid!r}"
            if fid in seen:
                line, _ = self.document.locate(seen[fid])
                self.error(
                    path if origin else (*path, "id"),
                    f"{where} is already used (line {line}); each field needs its own id",
                )
                continue
            seen[fid] = path
            self.check_field(spec, path, origin)
        self.check_conditions(fields)

    def check_conditions(self, fields: list[tuple[dict[str, Any], KeyPath, str | None]]) -> None:
        """``show_if``: on a field that exists (not itself, not in a circle), with a test that
        fits its type (numbers and dates are ordered; a list's values are among its options)."""
        by_id = {spec["id"]: spec for spec, _path, _origin in fields}
        for spec, path, origin in fields:
            condition = spec.get("show_if")
            if not condition:
                continue
            at: KeyPath = path if origin else (*path, "show_if")
            fid, target = spec["id"], condition["field"]
            test = next(key for key in condition if key != "field")
            value = condition[test]
            if fid in CONTACT_FIELDS and fid != "phone":
                self.error(at, f"the field {fid!r} is always asked: it cannot have show_if")
            elif target not in by_id:
                known = ", ".join(sorted(by_id))
                self.error(
                    (*at, "field") if not origin else at,
                    f"show_if tests the field {target!r}, which this workflow does not ask"
                    f"{did_you_mean(target, by_id)} (fields: {known})",
                )
            elif target == fid or _in_circle(fid, by_id):
                self.error(
                    at,
                    f"show_if of {fid!r} depends on itself through "
                    f"{' -> '.join(_circle_path(fid, by_id))}; a question cannot wait for its "
                    "own answer",
                )
            else:
                problem = _test_problem(by_id[target], test, value)
                if problem:
                    self.error((*at, test) if not origin else at, f"show_if: {problem}")

    def check_routes(
        self,
        rules: list[dict[str, Any]],
        fields: list[tuple[dict[str, Any], KeyPath, str | None]],
    ) -> None:
        """``route``: each rule tests a field the workflow asks (not the name or e-mail), in a
        way that fits its type, as ``show_if`` does; a rule that repeats an earlier one's test
        never applies."""
        by_id = {spec["id"]: spec for spec, _path, _origin in fields}
        seen: dict[str, int] = {}
        for index, rule in enumerate(rules):
            at: KeyPath = ("route", index, "if")
            condition = rule["if"]
            target = condition["field"]
            test = next(key for key in condition if key != "field")
            if target in ("name", "email"):
                self.error(
                    (*at, "field"),
                    f"route cannot test the client's {target!r}: every client gives one; "
                    "route on a question of the form",
                )
            elif target not in by_id:
                known = ", ".join(sorted(by_id))
                self.error(
                    (*at, "field"),
                    f"route tests the field {target!r}, which this workflow does not ask"
                    f"{did_you_mean(target, by_id)} (fields: {known})",
                )
            else:
                problem = _test_problem(by_id[target], test, condition[test])
                if problem:
                    self.error((*at, test), f"route: {problem}")
            same = json.dumps(condition, sort_keys=True, default=str)
            if same in seen:
                self.warn(
                    at,
                    f"this rule tests the same as rule {seen[same] + 1} of route, which comes "
                    "first: it never applies; remove it or change its test",
                )
            seen.setdefault(same, index)

    def check_field(self, spec: dict[str, Any], path: KeyPath, origin: str | None) -> None:
        # Problems inside an included set are reported at the include line of this file.
        def at(key: str) -> KeyPath:
            return path if origin else (*path, key)

        prefix = f"field {spec['id']!r} of field set {origin!r}: " if origin else ""
        ftype = spec["type"]
        if not self.check_field_type(spec, at, prefix):
            return
        expected = CONTACT_FIELDS.get(spec["id"])
        if expected and ftype != expected:
            self.error(
                at("type"),
                f"{prefix}the field {spec['id']!r} holds the client's contact details and must "
                f"have type {expected}, not {ftype}",
            )
        if "options" in spec and ftype not in ("select", "multiselect"):
            self.error(
                at("options"),
                f"{prefix}options only apply to select and multiselect fields",
                at_key=True,
            )
        values = [o["value"] for o in spec.get("options", [])]
        for value in {v for v in values if values.count(v) > 1}:
            self.error(at("options"), f"{prefix}the option value {value!r} appears twice")
        for bound in ("min", "max"):
            if bound in spec:
                self.check_bound(spec, bound, at(bound), prefix)
        if (
            isinstance(spec.get("min"), int | float)
            and isinstance(spec.get("max"), int | float)
            and spec["min"] > spec["max"]
        ):
            self.error(
                at("min"), f"{prefix}min ({spec['min']}) is greater than max ({spec['max']})"
            )
        for key in ("min_length", "max_length", "pattern"):
            if key in spec and ftype not in ("text", "textarea"):
                self.error(
                    at(key), f"{prefix}{key} only applies to text and textarea fields", at_key=True
                )
        if spec.get("min_length", 0) > spec.get("max_length", 10**9):
            self.error(at("min_length"), f"{prefix}min_length is greater than max_length")
        if "pattern" in spec:
            try:
                re.compile(spec["pattern"])
            except re.error as exc:
                self.error(at("pattern"), f"{prefix}invalid regular expression: {exc}")
        if "default" in spec:
            self.check_default(spec, at("default"), prefix)

    def check_bound(self, spec: dict[str, Any], bound: str, path: KeyPath, prefix: str) -> None:
        value, ftype = spec[bound], spec["type"]
        if ftype == "number":
            if not isinstance(value, int | float):
                self.error(path, f"{prefix}{bound} of a number field must be a number")
        elif ftype == "date":
            if value != "today" and not _is_date(value):
                self.error(path, f"{prefix}{bound} of a date field must be YYYY-MM-DD or today")
        else:
            self.error(path, f"{prefix}{bound} only applies to number and date fields", at_key=True)

    def check_default(self, spec: dict[str, Any], path: KeyPath, prefix: str) -> None:
        value, ftype = spec["default"], spec["type"]
        options = [o["value"] for o in spec.get("options", [])]
        ok = {
            "checkbox": isinstance(value, bool),
            "number": isinstance(value, int | float) and not isinstance(value, bool),
            "select": value in options,
            "multiselect": isinstance(value, list) and all(v in options for v in value),
            "date": isinstance(value, str) and (value == "today" or _is_date(value)),
        }.get(ftype, isinstance(value, str))
        if not ok:
            self.error(path, f"{prefix}default {value!r} does not fit a {ftype} field")

    # Times -------------------------------------------------------------------------------

    def check_times(self, data: dict[str, Any]) -> None:
        duration = parse_duration(data["duration"])
        if not duration:
            self.error(("duration",), "a booking must last longer than 0m")
        if "slot_step" in data and not parse_duration(data["slot_step"]):
            self.error(("slot_step",), "slot_step must be longer than 0m")
        if duration > parse_duration("1d"):
            self.warn(("duration",), "a booking longer than a day rarely fits working hours")
        window = data.get("booking_window", {})
        min_notice = parse_duration(window.get("min_notice", "1h"))
        max_ahead = parse_duration(window.get("max_ahead", "90d"))
        if min_notice >= max_ahead:
            path = ("booking_window", "min_notice" if "min_notice" in window else "max_ahead")
            self.error(
                path,
                f"min_notice ({window.get('min_notice', '1h')}) must be shorter than max_ahead "
                f"({window.get('max_ahead', '90d')}), or no time can ever be booked",
            )
        cancellation = data.get("cancellation", {})
        if "min_notice" in cancellation and cancellation.get("allowed") is False:
            self.warn(
                ("cancellation", "min_notice"),
                "min_notice has no effect when clients may not cancel (allowed: false)",
            )
        waitlist = data.get("waitlist", {})
        if "hold" in waitlist and not parse_duration(waitlist["hold"]):
            self.error(("waitlist", "hold"), "hold must be longer than 0m")
        elif "hold" in waitlist and not waitlist.get("enabled", False):
            self.warn(
                ("waitlist", "hold"),
                "hold has no effect without a waitlist; add enabled: true",
            )
        retention = data.get("retention", {})
        for key in ("delete_answers_after", "delete_client_after"):
            if key in retention and not parse_duration(retention[key]):
                self.error(("retention", key), f"{key} must be longer than 0m")

    def check_groups(self, data: dict[str, Any]) -> None:
        capacity = data.get("capacity")
        if not isinstance(capacity, dict) or capacity.get("per") != "slot":
            return
        if data.get("staff", {}).get("client_chooses"):
            self.error(
                ("staff", "client_chooses"),
                "with capacity per: slot there is one group at a time, whoever teaches it, so "
                "the client cannot choose the staff member; remove client_chooses, or make it "
                "capacity per: staff (each staff member runs a group of their own)",
            )

    def check_sessions(self, data: dict[str, Any]) -> None:
        """Weekdays that exist, each session once, and what the sessions make pointless."""
        if "sessions" not in data:
            return
        if "slot_step" in data:
            self.warn(
                ("slot_step",),
                "slot_step has no effect: starts are the sessions' times; remove slot_step",
            )
        duration = parse_duration(data["duration"])
        seen: dict[tuple[int, int], KeyPath] = {}
        for index, spec in enumerate(data["sessions"]):
            hours, minutes = (int(part) for part in spec["at"].split(":"))
            minute = hours * 60 + minutes
            for position, day in enumerate(spec["days"]):
                where: KeyPath = ("sessions", index, "days", position)
                if day not in WEEKDAYS:
                    self.error(
                        where,
                        f"{day!r} is not a weekday (mon, tue, wed, thu, fri, sat or sun)"
                        f"{did_you_mean(day.lower(), WEEKDAYS)}",
                    )
                    continue
                weekday = WEEKDAYS.index(day)
                if (weekday, minute) in seen:
                    line, _ = self.document.locate(seen[(weekday, minute)])
                    self.error(
                        where,
                        f"the session on {day} at {spec['at']} is already listed (line {line}); "
                        "list each session once",
                    )
                    continue
                for (other_day, other), other_path in seen.items():
                    if other_day == weekday and abs(other - minute) < duration.total_seconds() / 60:
                        line, _ = self.document.locate(other_path)
                        self.warn(
                            where,
                            f"the session on {day} at {spec['at']} overlaps the one at "
                            f"{other // 60:02d}:{other % 60:02d} (line {line}), as each lasts "
                            f"{data['duration']}: a staff member can teach only one of them",
                        )
                        break
                seen[(weekday, minute)] = where

    def check_quiet_hours(self, spec: dict[str, Any] | None) -> None:
        """``quiet_hours``: a range, not an instant."""
        if spec and spec["from"] == spec["to"]:
            self.error(
                ("quiet_hours", "to"),
                f"quiet_hours from and to are both {spec['to']}: give the time they end, like "
                'from: "21:00", to: "08:00" (a range across midnight is the usual case)',
            )

    def check_recurrence(self, recurrence: dict[str, Any] | None) -> None:
        """Each frequency once; settings that a forbidden recurrence makes pointless."""
        if not recurrence:
            return
        frequencies = recurrence.get("frequencies")
        if isinstance(frequencies, list):
            seen: dict[str, int] = {}
            for index, name in enumerate(frequencies):
                if name in seen:
                    line, _ = self.document.locate(("recurrence", "frequencies", seen[name]))
                    self.error(
                        ("recurrence", "frequencies", index),
                        f"{name} is already listed (line {line}); list each frequency once",
                    )
                seen.setdefault(name, index)
        if recurrence.get("allowed") is not True:
            for key in ("max_occurrences", "frequencies"):
                if key in recurrence:
                    self.warn(
                        ("recurrence", key),
                        f"{key} has no effect unless clients may book a series; "
                        "write allowed: true",
                    )

    def check_location(self, location: dict[str, Any] | None) -> None:
        if not location:
            return
        kind = location["type"]
        if kind == "online" and not (location.get("provider") or location.get("url")):
            self.error(
                ("location", "type"),
                "an online location needs a provider (for example jitsi) or a fixed url",
            )
        for key in ("provider", "url"):
            if key in location and kind != "online":
                self.error(("location", key), f"{key} only applies to type: online", at_key=True)
        providers = self.context.meeting_providers
        provider = location.get("provider")
        if kind == "online" and provider and providers is not None and provider not in providers:
            fallback = "the fixed url" if location.get("url") else "no link"
            self.warn(
                ("location", "provider"),
                f"no meeting provider {provider!r} is enabled{did_you_mean(provider, providers)}; "
                f"bookings get {fallback} until its plugin is enabled in config.yaml "
                f"(enabled: {', '.join(sorted(providers)) or 'none'})",
            )

    def check_field_type(
        self, spec: dict[str, Any], at: Callable[[str], KeyPath], prefix: str
    ) -> bool:
        """A core type, or one an enabled plugin adds (with its ``settings`` checked)."""
        ftype = spec["type"]
        plugin_types = self.context.field_types
        if ftype in FIELD_TYPES:
            if "settings" in spec:
                self.error(
                    at("settings"),
                    f"{prefix}settings only apply to field types added by plugins",
                    at_key=True,
                )
            return True
        if ftype not in plugin_types:
            known = list(field_type_names(plugin_types))
            message = (
                f"{prefix}unknown field type {ftype!r}{did_you_mean(ftype, known)} "
                f"(available: {', '.join(known)}); plugins may add others"
            )
            if self.context.plugins_failed:
                self.warn(
                    at("type"),
                    f"{message}; a plugin that failed to load may be the one adding it "
                    "(see `bookwise plugins`): until it works, the field is asked as text",
                )
            else:
                self.error(at("type"), message)
            return False
        base = at("settings") if "settings" in spec else at("type")
        for line in schema_messages(plugin_types[ftype], spec.get("settings", {})):
            self.error(base, f"{prefix}settings of the {ftype} field: {line}")
        return True

    def check_staff(self, staff: dict[str, Any]) -> None:
        assignment = staff.get("assignment")
        known = list(assignment_names(self.context.assignments))
        if assignment is not None and assignment not in known:
            message = (
                f"unknown assignment strategy {assignment!r}{did_you_mean(assignment, known)} "
                f"(available: {', '.join(known)}); plugins may add others"
            )
            if self.context.plugins_failed:
                self.warn(
                    ("staff", "assignment"),
                    f"{message}; a plugin that failed to load may be the one adding it "
                    "(see `bookwise plugins`): until it works, round_robin assigns",
                )
            else:
                self.error(("staff", "assignment"), message)
        if staff.get("client_chooses") and "assignment" in staff:
            self.warn(
                ("staff", "assignment"),
                "assignment is only used when the client does not choose the staff member",
            )

    # Lifecycle ---------------------------------------------------------------------------

    def check_lifecycle(self, data: dict[str, Any]) -> set[str]:
        """The states and transitions: one initial state, moves between known states, every
        state reachable and left (or final), and a way for clients to cancel when they may."""
        if "states" not in data:
            if "transitions" in data:
                self.error(
                    ("transitions",),
                    "transitions need states: declare the states, or remove transitions to use "
                    "the default lifecycle",
                    at_key=True,
                )
            return set(DEFAULT_STATES)
        states: dict[str, Any] = {k: v or {} for k, v in data["states"].items()}
        initial = self.check_initial_state(states)
        transitions = data.get("transitions")
        if not transitions:
            self.error(
                ("states",),
                "states need transitions: list the moves between them under transitions:",
                at_key=True,
            )
            return set(states)
        outgoing = self.check_transitions(states, transitions)
        if initial:
            self.check_reachable(states, initial[0], outgoing)
        for name, opts in states.items():
            if not opts.get("final") and not outgoing[name]:
                self.warn(
                    ("states", name),
                    f"no transition leaves state {name!r}; mark it final: true if "
                    "bookings end there",
                )
        self.check_client_may_cancel(data, transitions)
        return set(states)

    def check_initial_state(self, states: dict[str, Any]) -> list[str]:
        """The states marked initial (exactly one is right; none final as well)."""
        initial = [name for name, opts in states.items() if opts.get("initial")]
        if not initial:
            self.error(
                ("states",),
                "no initial state: mark the state a new booking starts in with initial: true",
                at_key=True,
            )
        for name in initial[1:]:
            self.error(
                ("states", name, "initial"),
                f"only one state can be initial, and {initial[0]!r} already is",
            )
        for name, opts in states.items():
            if opts.get("initial") and opts.get("final"):
                self.error(("states", name), f"state {name!r} cannot be both initial and final")
        return initial

    def check_transitions(
        self, states: dict[str, Any], transitions: list[dict[str, Any]]
    ) -> dict[str, set[str]]:
        """Each move between known states, out of no final state, named once per source state;
        returns the states each state leads to."""
        outgoing: dict[str, set[str]] = {name: set() for name in states}
        seen: set[tuple[str, str]] = set()
        for index, move in enumerate(transitions):
            for source in one_or_many(move["from"]):
                if source not in states:
                    self.error(
                        ("transitions", index, "from"),
                        f"unknown state {source!r}{did_you_mean(source, states)}",
                    )
                    continue
                if states[source].get("final"):
                    self.error(
                        ("transitions", index, "from"),
                        f"state {source!r} is final: no transition can leave it",
                    )
                if (move["name"], source) in seen:
                    self.error(
                        ("transitions", index, "name"),
                        f"two transitions named {move['name']!r} leave {source!r}",
                    )
                seen.add((move["name"], source))
                outgoing[source].add(move["to"])
            if move["to"] not in states:
                self.error(
                    ("transitions", index, "to"),
                    f"unknown state {move['to']!r}{did_you_mean(move['to'], states)}",
                )
        return outgoing

    def check_reachable(
        self, states: dict[str, Any], initial: str, outgoing: dict[str, set[str]]
    ) -> None:
        """Warn of states no booking can reach from the initial one."""
        reachable, frontier = {initial}, [initial]
        while frontier:
            for target in outgoing.get(frontier.pop(), ()):
                if target in states and target not in reachable:
                    reachable.add(target)
                    frontier.append(target)
        for name in states:
            if name not in reachable:
                self.warn(
                    ("states", name),
                    f"no transition leads to state {name!r}; no booking can reach it",
                )

    def check_client_may_cancel(
        self, data: dict[str, Any], transitions: list[dict[str, Any]]
    ) -> None:
        """Clients allowed to cancel need a ``cancel`` transition they may make."""
        cancellation = data.get("cancellation", {})
        if cancellation.get("allowed", True) and not any(
            m["name"] == "cancel" and "client" in one_or_many(m.get("by", "staff"))
            for m in transitions
        ):
            self.warn(
                ("transitions",),
                "clients may cancel (cancellation.allowed) but no transition named "
                "'cancel' is allowed by client; add one or set cancellation.allowed: false",
            )

    # Notifications -----------------------------------------------------------------------

    def check_notifications(
        self, data: dict[str, Any], states: set[str], field_ids: set[str]
    ) -> None:
        events = set(event_names(states))
        others = ", ".join(NON_STATE_EVENTS[:-1]) + f" and {NON_STATE_EVENTS[-1]}"
        for index, rule in enumerate(data.get("notifications", [])):
            at = ("notifications", index)
            event = rule["on"]
            if event not in events:
                self.error(
                    (*at, "on"),
                    f"unknown event {event!r}{did_you_mean(event, events)}; events are the "
                    f"states ({', '.join(sorted(states))}), {others}",
                )
            if event == REMINDER and "before" not in rule:
                self.error(at, "a reminder needs before: (like before: 24h)")
            if event == FOLLOW_UP and "after" not in rule:
                self.error(at, "a follow_up needs after: (like after: 2h)")
            if "before" in rule and event != REMINDER:
                self.error((*at, "before"), "before only applies to on: reminder", at_key=True)
            if "after" in rule and event != FOLLOW_UP:
                self.error((*at, "after"), "after only applies to on: follow_up", at_key=True)
            for key in ("before", "after"):
                if key in rule and not parse_duration(rule[key]):
                    self.error((*at, key), f"{key} must be longer than 0m")
            template = rule.get("template", event)
            known = self.context.known_templates
            if known is not None and template not in known:
                hint = "" if "template" in rule else " (the default is the event name)"
                self.error(
                    (*at, "template") if "template" in rule else (*at, "on"),
                    f"no template named {template!r}{hint}{did_you_mean(template, known)}; "
                    "add it in the templates folder or the back office",
                )
            channels = one_or_many(rule.get("channel", "email"))
            known_channels = self.context.known_channels
            for channel in channels:
                if known_channels is not None and channel not in known_channels:
                    self.error(
                        (*at, "channel"),
                        f"unknown channel {channel!r}{did_you_mean(channel, known_channels)} "
                        f"(available: {', '.join(sorted(known_channels))})",
                    )
            recipients = one_or_many(rule["to"])
            if "sms" in channels and "client" in recipients and "phone" not in field_ids:
                self.warn(
                    (*at, "channel"),
                    "sms to the client needs their phone number: add a phone field "
                    "(for example include: contact)",
                )

    # Scenario tests ----------------------------------------------------------------------

    def check_scenario_tests(self, data: dict[str, Any], states: set[str]) -> None:
        """``tests``: times that exist, staff the case gives, and messages on events, to
        recipients and channels the workflow has (running them is :mod:`validation`'s)."""
        if not data.get("tests"):
            return
        rules = data.get("notifications")
        channels = (
            {c for rule in rules for c in one_or_many(rule.get("channel", "email"))}
            if rules is not None
            else {"email"}
        )
        recipients = {r for rule in rules or () for r in one_or_many(rule["to"])}
        vocabulary = Vocabulary(
            events=frozenset(event_names(states)),
            channels=frozenset(channels),
            recipients=frozenset(RECIPIENT_KINDS) | recipients,
        )
        _cases, problems = read_cases(data["tests"], vocabulary)
        for path, message in problems:
            self.error(path, message)

    # Texts -------------------------------------------------------------------------------

    def check_texts(self, data: dict[str, Any]) -> None:
        configured = self.context.locales
        unconfigured: set[str] = set()
        for path, text in _texts(data):
            if not isinstance(text, dict):
                continue
            for locale in text:
                if not localedata.exists(locale):
                    self.error((*path, locale), f"unknown language {locale!r}", at_key=True)
                elif (
                    configured is not None
                    and locale not in configured
                    and locale.split("_")[0] not in configured
                    and locale not in unconfigured
                ):
                    unconfigured.add(locale)
                    self.warn(
                        (*path, locale),
                        f"language {locale!r} is not among the instance's locales "
                        f"({', '.join(configured)}); its texts will not be shown",
                    )
        consent = data.get("consent")
        if consent and "link" in consent:
            links = consent["link"] if isinstance(consent["link"], dict) else {"": consent["link"]}
            for locale, link in links.items():
                where = ("consent", "link", locale) if locale else ("consent", "link")
                if not re.match(r"^(https?://|mailto:)\S+$", link):
                    self.error(
                        where, f"{link!r} is not an address; write https://... or mailto:..."
                    )
                elif len(link) > 500:
                    self.error(where, "the link is longer than 500 characters")


def _texts(data: dict[str, Any]) -> Iterator[tuple[KeyPath, Any]]:
    """Every human text of a workflow, with its key path."""
    for key in ("name", "description"):
        if key in data:
            yield (key,), data[key]
    for key in ("address", "details"):
        if key in data.get("location", {}):
            yield ("location", key), data["location"][key]
    for index, spec in enumerate(data.get("fields", [])):
        for key in ("label", "help", "placeholder"):
            if key in spec:
                yield ("fields", index, key), spec[key]
        for o_index, option in enumerate(spec.get("options", [])):
            yield ("fields", index, "options", o_index, "label"), option["label"]
    for key in ("text", "link"):
        if key in data.get("consent", {}):
            yield ("consent", key), data["consent"][key]
    for name, opts in (data.get("states") or {}).items():
        if opts and "label" in opts:
            yield ("states", name, "label"), opts["label"]
    for index, move in enumerate(data.get("transitions", [])):
        if "label" in move:
            yield ("transitions", index, "label"), move["label"]


def _circle_path(start: str, by_id: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The fields ``start``'s show_if leads through, until one comes back or the chain ends."""
    path, current = [start], start
    while True:
        condition = (by_id.get(current) or {}).get("show_if") or {}
        following = condition.get("field")
        if following is None or following not in by_id:
            return path
        current = str(following)
        path.append(current)
        if current in path[:-1]:
            return path


def _in_circle(start: str, by_id: Mapping[str, Mapping[str, Any]]) -> bool:
    path = _circle_path(start, by_id)
    return len(path) > 1 and path[-1] in path[:-1] and path[-1] == start


def _test_problem(target: Mapping[str, Any], test: str, value: Any) -> str:
    """What is wrong with testing ``target``'s answer this way ("" when it fits)."""
    ftype = target["type"]
    options = [o["value"] for o in target.get("options", [])]
    values = value if isinstance(value, list) else [value]
    if test in ORDERED_TESTS:
        if ftype == "number":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            return "" if ok else f"{test} on the number field {target['id']!r} needs a number"
        if ftype == "date":
            ok = isinstance(value, str) and _is_date(value)
            return "" if ok else f"{test} on the date field {target['id']!r} needs YYYY-MM-DD"
        return f"{test} only tests number and date fields; {target['id']!r} is a {ftype} field"
    if test == "answered":
        return ""
    if ftype in ("select", "multiselect"):
        unknown = [v for v in values if v not in options]
        if unknown:
            return (
                f"{unknown[0]!r} is not a choice of {target['id']!r}"
                f"{did_you_mean(str(unknown[0]), [str(o) for o in options])} (choices: "
                f"{', '.join(str(o) for o in options)})"
            )
    elif ftype == "checkbox" and test in ("equals", "not_equals") and not isinstance(value, bool):
        return f"the checkbox {target['id']!r} is tested with true or false"
    return ""


def _is_date(value: Any) -> bool:
    if not isinstance(value, str) or not _DATE.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


__all__ = [
    "CheckContext",
    "CheckedWorkflow",
    "FieldSet",
    "check_field_set",
    "check_workflow",
    "check_workflow_file",
    "check_workflow_files",
    "content_hash",
    "display_path",
    "format_path",
    "read_field_sets",
    "yaml_files",
]
