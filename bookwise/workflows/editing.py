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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from bookwise.documents import DocumentError, parse_document
from bookwise.errors import Problem
from bookwise.workflows.language import default_notifications
from bookwise.workflows.lifecycle import DEFAULT_LIFECYCLE, Lifecycle
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
    "capacity",
    "sessions",
    "location",
    "staff",
    "fields",
    "consent",
    "states",
    "transitions",
    "notifications",
    "retention",
)
Texts = dict[str, str]


@dataclass
class FieldRow:
    """One entry of ``fields``: a question, or a field set (``include``)."""

    include: str = ""
    id: str = ""
    type: str = "text"
    label: Texts = field(default_factory=dict)
    help: Texts = field(default_factory=dict)
    required: bool = False
    options: list[tuple[str, Texts]] = field(default_factory=list)
    sensitive: bool = False
    # Where the row came from in the workflow's ``fields``: its other keys are kept.
    source: int | None = None
    removed: bool = False  # marked for removal in the editor


@dataclass
class RuleRow:
    """One message rule of ``notifications``."""

    on: str = "confirmed"
    offset: str = ""  # ``before`` of a reminder, ``after`` of a follow-up
    to: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=lambda: ["email"])
    template: str = ""
    source: int | None = None
    removed: bool = False


@dataclass
class StructuredWorkflow:
    """The values of the structured editor."""

    id: str = ""
    name: Texts = field(default_factory=dict)
    description: Texts = field(default_factory=dict)
    duration: str = "30m"
    slot_step: str = ""
    buffer_before: str = ""
    buffer_after: str = ""
    min_notice: str = ""
    max_ahead: str = ""
    cancellation_allowed: bool = True
    cancellation_min_notice: str = ""
    capacity: int = 1
    location_type: str = "in_person"
    location_details: Texts = field(default_factory=dict)
    location_url: str = ""
    staff_tags: list[str] = field(default_factory=list)
    client_chooses: bool = False
    assignment: str = "round_robin"
    fields: list[FieldRow] = field(default_factory=list)
    consent: bool = False
    consent_required: bool = True
    consent_text: Texts = field(default_factory=dict)
    consent_link: str = ""
    rules: list[RuleRow] = field(default_factory=list)


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


def structured(data: Mapping[str, Any], fallback: str) -> StructuredWorkflow:
    """The editor's values for a workflow definition (as written, includes unresolved)."""
    buffer = data.get("buffer") or {}
    window = data.get("booking_window") or {}
    cancellation = data.get("cancellation") or {}
    location = data.get("location") or {}
    staff = data.get("staff") or {}
    consent = data.get("consent")
    rows = []
    for index, spec in enumerate(data.get("fields") or []):
        if "include" in spec:
            rows.append(FieldRow(include=str(spec["include"]), source=index))
            continue
        rows.append(
            FieldRow(
                id=str(spec.get("id", "")),
                type=str(spec.get("type", "text")),
                label=_texts(spec.get("label"), fallback),
                help=_texts(spec.get("help"), fallback),
                required=bool(spec.get("required", False)),
                options=[
                    (str(o.get("value", "")), _texts(o.get("label"), fallback))
                    for o in spec.get("options") or []
                ],
                sensitive=bool(spec.get("sensitive", False)),
                source=index,
            )
        )
    if "notifications" in data:
        rule_data = list(data["notifications"] or [])
        from_file = True
    else:
        rule_data = default_notifications(_lifecycle(data))
        from_file = False
    rules = [
        RuleRow(
            on=str(rule.get("on", "")),
            offset=str(rule.get("before") or rule.get("after") or ""),
            to=_list(rule.get("to")),
            channels=_list(rule.get("channel")) or ["email"],
            template=str(rule.get("template") or ""),
            source=index if from_file else None,
        )
        for index, rule in enumerate(rule_data)
    ]
    return StructuredWorkflow(
        id=str(data.get("id", "")),
        name=_texts(data.get("name"), fallback),
        description=_texts(data.get("description"), fallback),
        duration=str(data.get("duration", "")),
        slot_step=str(data.get("slot_step", "")),
        buffer_before=str(buffer.get("before", "")),
        buffer_after=str(buffer.get("after", "")),
        min_notice=str(window.get("min_notice", "")),
        max_ahead=str(window.get("max_ahead", "")),
        cancellation_allowed=bool(cancellation.get("allowed", True)),
        cancellation_min_notice=str(cancellation.get("min_notice", "")),
        capacity=_places(data.get("capacity", 1)),
        location_type=str(location.get("type", "in_person")),
        location_details=_texts(location.get("details"), fallback),
        location_url=str(location.get("url", "")),
        staff_tags=_list(staff.get("tags")),
        client_chooses=bool(staff.get("client_chooses", False)),
        assignment=str(staff.get("assignment", "round_robin")),
        fields=rows,
        consent=consent is not None,
        consent_required=bool((consent or {}).get("required", True)),
        consent_text=_texts((consent or {}).get("text"), fallback),
        consent_link=_texts((consent or {}).get("link"), fallback).get(fallback, ""),
        rules=rules,
    )


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
    """The events a rule of this workflow can be on: its states, then the timed events."""
    states = list(_lifecycle(data).states)
    return [*states, "rescheduled", "reminder", "follow_up"]


# --- writing --------------------------------------------------------------------------------


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.width = 4096  # never fold a long text: a diff should show what changed, not wrapping
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.preserve_quotes = True
    return yaml


def load_map(text: str | None) -> CommentedMap:
    """The round-trip map of a workflow's YAML (an empty one for a new workflow)."""
    if not text or not text.strip():
        return CommentedMap()
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


def _sub(target: CommentedMap, key: str, values: Mapping[str, Any], flow: bool = True) -> None:
    """Set the keys of a small map (``buffer``, ``staff``...), dropping the map when empty."""
    current = target.get(key)
    mapping = current if isinstance(current, CommentedMap) else CommentedMap()
    for name, value in values.items():
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], Default):
            _set_default(mapping, name, value[0], value[1].value)
        else:
            _set(mapping, name, value)
    if not mapping:
        target.pop(key, None)
        return
    if current is None and flow:
        mapping.fa.set_flow_style()
    _set(target, key, mapping)


def _duration(value: str) -> str | None:
    return value.strip().replace(" ", "") or None


def _one_or_many(values: Sequence[str]) -> Any:
    if len(values) == 1:
        return values[0]
    seq = CommentedSeq(values)
    seq.fa.set_flow_style()
    return seq


def write(
    values: StructuredWorkflow,
    source_text: str | None,
    fallback: str,
) -> str:
    """The workflow's YAML with the editor's values written in (``source_text``: the version
    being edited, None for a new workflow)."""
    data = load_map(source_text)
    original = copy.deepcopy(data)
    _set(data, "id", values.id.strip())
    _set(data, "name", _text_value(values.name, original.get("name"), fallback))
    _set(
        data, "description", _text_value(values.description, original.get("description"), fallback)
    )
    _set(data, "duration", _duration(values.duration))
    _set(data, "slot_step", _duration(values.slot_step))
    _sub(
        data,
        "buffer",
        {"before": _duration(values.buffer_before), "after": _duration(values.buffer_after)},
    )
    _sub(
        data,
        "booking_window",
        {"min_notice": _duration(values.min_notice), "max_ahead": _duration(values.max_ahead)},
    )
    _sub(
        data,
        "cancellation",
        {
            "allowed": (values.cancellation_allowed, Default(True)),
            "min_notice": _duration(values.cancellation_min_notice)
            if values.cancellation_allowed
            else None,
        },
    )
    if isinstance(data.get("capacity"), CommentedMap):
        # ``{places: N, per: slot}``: the editor sets the places; ``per`` stays as written.
        _set(data["capacity"], "places", values.capacity)
    else:
        _set_default(data, "capacity", values.capacity, 1)
    location = original.get("location") or {}
    _sub(
        data,
        "location",
        {
            "type": values.location_type
            if values.location_type != "in_person" or location
            else None,
            "details": _text_value(values.location_details, location.get("details"), fallback),
            "url": values.location_url.strip() or None,
        },
        flow=False,
    )
    tags = CommentedSeq(values.staff_tags)
    tags.fa.set_flow_style()
    _sub(
        data,
        "staff",
        {
            "tags": tags if values.staff_tags else None,
            "client_chooses": (values.client_chooses, Default(False)),
            "assignment": None if values.client_chooses else values.assignment,
        },
    )
    _set(data, "fields", _fields(values.fields, original.get("fields") or [], fallback))
    if values.consent:
        consent = original.get("consent") or {}
        _sub(
            data,
            "consent",
            {
                "required": bool(values.consent_required),
                "text": _text_value(values.consent_text, consent.get("text"), fallback),
                "link": _link(values.consent_link, consent.get("link"), fallback),
            },
            flow=False,
        )
    else:
        data.pop("consent", None)
    rules = _rules(values.rules, original)
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


def _link(value: str, previous: Any, fallback: str) -> Any:
    """The consent link: a map of languages stays as it is while its default one is unchanged."""
    value = value.strip()
    if isinstance(previous, Mapping) and previous.get(fallback) == value:
        return previous
    return value or None


def _fields(
    rows: Sequence[FieldRow], previous: Sequence[Any], fallback: str
) -> CommentedSeq | None:
    out = CommentedSeq()
    for row in rows:
        if row.include:
            out.append(_flow({"include": row.include.strip()}))
            continue
        base = (
            previous[row.source] if row.source is not None and row.source < len(previous) else None
        )
        item = (
            copy.deepcopy(base)
            if isinstance(base, CommentedMap) and "include" not in base
            else CommentedMap()
        )
        _set(item, "id", row.id.strip())
        _set(item, "type", row.type)
        _set_default(item, "required", row.required, False)
        _set(item, "label", _text_value(row.label, (base or {}).get("label"), fallback))
        _set(item, "help", _text_value(row.help, (base or {}).get("help"), fallback))
        if row.type in ("select", "multiselect"):
            old = {str(o.get("value")): o for o in (base or {}).get("options") or []}
            options = CommentedSeq()
            for value, labels in row.options:
                previous_label = old.get(value, {}).get("label") if value in old else None
                options.append(
                    _flow(
                        {
                            "value": value,
                            "label": _text_value(labels, previous_label, fallback) or value,
                        }
                    )
                )
            _set(item, "options", options if options else None)
        else:
            item.pop("options", None)
        _set_default(item, "sensitive", row.sensitive, False)
        if not item.fa.flow_style() and len(item) <= 3 and base is None:
            item.fa.set_flow_style()
        out.append(item)
    return out if out else None


def _rules(rows: Sequence[RuleRow], original: Mapping[str, Any]) -> CommentedSeq | None:
    previous = list(original.get("notifications") or [])
    out = CommentedSeq()
    plain = []
    for row in rows:
        rule = CommentedMap()
        base = (
            previous[row.source] if row.source is not None and row.source < len(previous) else None
        )
        if isinstance(base, CommentedMap):
            rule = copy.deepcopy(base)
        _set(rule, "on", row.on)
        for key in ("before", "after"):
            rule.pop(key, None)
        if row.on == "reminder":
            _set(rule, "before", _duration(row.offset) or "24h")
        elif row.on == "follow_up":
            _set(rule, "after", _duration(row.offset) or "2h")
        _set(rule, "to", _one_or_many([t.strip() for t in row.to if t.strip()]) if row.to else None)
        _set(rule, "channel", _one_or_many(row.channels) if row.channels else None)
        _set(rule, "template", row.template.strip() or None)
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


def field_of_problem(problem: Problem) -> str | None:
    """The structured editor's input a problem belongs to, by the editor's naming: ``duration``,
    ``fields-2-label``, ``rules-1-offset``; None when no input shows that key."""
    path = problem_path(problem)
    if not path:
        return None
    head = path[0]
    simple = {
        "id": "id",
        "name": "name",
        "description": "description",
        "duration": "duration",
        "slot_step": "slot_step",
        "capacity": "capacity",
    }
    if head in simple:
        return simple[str(head)]
    nested = {
        ("buffer", "before"): "buffer_before",
        ("buffer", "after"): "buffer_after",
        ("booking_window", "min_notice"): "min_notice",
        ("booking_window", "max_ahead"): "max_ahead",
        ("cancellation", "min_notice"): "cancellation_min_notice",
        ("staff", "tags"): "staff_tags",
        ("staff", "assignment"): "assignment",
        ("location", "url"): "location_url",
        ("location", "details"): "location_details",
        ("location", "type"): "location_type",
        ("consent", "text"): "consent_text",
        ("consent", "link"): "consent_link",
    }
    if len(path) >= 2 and (head, path[1]) in nested:
        return nested[(str(head), str(path[1]))]
    if head == "fields" and len(path) >= 2 and isinstance(path[1], int):
        key = path[2] if len(path) >= 3 else "id"
        key = {"include": "include", "value": "options"}.get(str(key), str(key))
        if key not in ("id", "type", "label", "help", "options", "include", "required"):
            key = "id"
        return f"fields-{path[1]}-{key}"
    if head == "notifications" and len(path) >= 2 and isinstance(path[1], int):
        key = str(path[2]) if len(path) >= 3 else "on"
        key = {"before": "offset", "after": "offset", "channel": "channels"}.get(key, key)
        if key not in ("on", "offset", "to", "channels", "template"):
            key = "on"
        return f"rules-{path[1]}-{key}"
    if head in ("buffer", "booking_window", "cancellation", "staff", "location", "consent"):
        return str(head)
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
    return StructuredWorkflow(
        id=identifier,
        name=name,
        rules=[
            RuleRow(on="confirmed", to=["client", "staff"]),
            RuleRow(on="rescheduled", to=["client", "staff"]),
            RuleRow(on="cancelled", to=["client", "staff"]),
            RuleRow(on="reminder", offset="24h", to=["client"]),
        ],
    )
