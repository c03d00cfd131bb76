"""YAML documents that remember where each value was written, checked against JSON Schemas.

Every file a person writes (configuration, workflows, field sets, calendar data) is read here, so
that every error can name the file, the line, the column and the key, and say what to do.

YAML 1.2 is used (ruamel.yaml), not 1.1: in 1.1 the key ``on:`` of a notification rule would be
read as the boolean ``true`` and ``no`` (Norwegian) as ``false``. Timestamps are kept as the text
the author wrote; the code that needs a date parses it with the right time zone.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn, cast

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from bookwise.errors import Problem, Severity, did_you_mean

KeyPath = tuple[str | int, ...]


class _Constructor(RoundTripConstructor):
    """Round-trip constructor that leaves timestamps as the text written."""


_Constructor.add_constructor("tag:yaml.org,2002:timestamp", _Constructor.construct_yaml_str)


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.Constructor = _Constructor
    return yaml


@dataclass
class Document:
    """Plain data read from a YAML file, with the 1-based position of every key and item."""

    file: str
    data: Any
    text: str = ""
    positions: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: KeyPath, at_key: bool = False) -> tuple[int | None, int | None]:
        """Line and column of the value at ``path`` (of its key when ``at_key``), or of the
        nearest parent that has a position; the document's first key for the document itself."""
        path = tuple(path)
        if at_key and path in self.key_positions:
            return self.key_positions[path]
        while path:
            if path in self.positions:
                return self.positions[path]
            if path in self.key_positions:
                return self.key_positions[path]
            path = path[:-1]
        # The document itself: its first line that is neither blank nor a comment.
        for number, line in enumerate(self.text.splitlines(), start=1):
            if line.strip() and not line.lstrip().startswith("#"):
                return (number, 1)
        return (1, 1) if self.text else (None, None)

    def problem(
        self, path: KeyPath, message: str, severity: Severity = "error", at_key: bool = False
    ) -> Problem:
        """A problem at ``path``, its message prefixed with the dotted key path."""
        line, column = self.locate(path, at_key)
        where = format_path(path)
        return Problem(
            self.file, line, column, f"{where}: {message}" if where else message, severity
        )

    def unknown_key(self, path: KeyPath, message: str, severity: Severity = "error") -> Problem:
        """A problem with the last key of ``path``: placed at the key, named by its parent."""
        line, column = self.locate(path, at_key=True)
        where = format_path(path[:-1])
        return Problem(
            self.file, line, column, f"{where}: {message}" if where else message, severity
        )


def format_path(path: KeyPath) -> str:
    """``("fields", 2, "type")`` -> ``fields[2].type``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class DocumentError(Exception):
    """The file cannot be read as YAML at all; ``problem`` says where."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(str(problem))


def read_document(path: Path | str, display_name: str | None = None) -> Document:
    """Read a YAML file; raise :class:`DocumentError` for an unreadable or malformed file."""
    name = display_name or str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DocumentError(Problem(name, None, None, "file not found")) from None
    except IsADirectoryError:
        raise DocumentError(Problem(name, None, None, "is a directory, not a file")) from None
    except UnicodeDecodeError as exc:
        raise DocumentError(
            Problem(name, None, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})")
        ) from None
    except OSError as exc:
        raise DocumentError(Problem(name, None, None, f"cannot read: {exc.strerror}")) from None
    return parse_document(text, name)


def parse_document(text: str, name: str) -> Document:
    """Parse YAML ``text`` (shown to people as ``name``) into a :class:`Document`; raise
    :class:`DocumentError` for malformed YAML or YAML beyond the limits of
    :func:`check_yaml_bounds`."""
    try:
        check_yaml_bounds(text, name)
        raw = _yaml().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        problem = exc.problem or exc.context or "malformed YAML"
        if "duplicate key" in str(problem):
            problem = problem.split(" with value")[0].replace("found", "this mapping has a")
            problem += "; each key may appear once"
        elif exc.context and exc.context_mark and exc.context_mark is not mark:
            # Say where the unfinished construct began: the error is often found far below it.
            problem = (
                f"{problem} ({exc.context} started at line {exc.context_mark.line + 1}, "
                f"column {exc.context_mark.column + 1})"
            )
        raise DocumentError(Problem(name, line, column, f"invalid YAML: {problem}")) from None
    except YAMLError as exc:
        raise DocumentError(Problem(name, None, None, f"invalid YAML: {exc}")) from None
    document = Document(file=name, data=None, text=text)
    document.data = _to_plain(raw, (), document, [MAX_VALUES])
    return document


# Anchors and aliases can make a small file stand for billions of values ("billion laughs").
MAX_VALUES = 100_000

# --- limits every YAML file is held to -----------------------------------------------------
#
# YAML is read in two steps: ruamel's parser turns the text into a flat stream of events (it
# keeps no recursion and does no work per alias), then the composer builds the tree, recursing
# once per level and merging ``<<`` keys. A file 10,000 levels deep broke the composer's
# recursion (a 500 after 13 s); 3,000 chained merge keys (47 KB) cost it 44 s of CPU. So the
# event stream is read first, and a file beyond these limits is refused before it is composed.
# Documented in docs/workflows.md ("Limits").

#: Characters in one YAML file (the largest shipped file is under 5,000).
MAX_YAML_CHARACTERS = 1_000_000
#: Lists and mappings inside each other (a workflow needs about 5).
MAX_YAML_DEPTH = 64
#: Aliases (``*name``) in one file.
MAX_YAML_ALIASES = 1_000
#: Merge keys (``<<: *name``) in one file.
MAX_YAML_MERGE_KEYS = 100
# The standard tags a file may write (``!!str 10``); any other, like ``!!python/object/apply``,
# which some YAML loaders would turn into running code, is refused.
_CORE_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}"
    for name in (
        "str",
        "int",
        "float",
        "bool",
        "null",
        "map",
        "seq",
        "timestamp",
        "binary",
        "omap",
        "pairs",
        "set",
        "merge",
    )
)


def check_yaml_bounds(text: str, name: str) -> None:
    """Refuse, with :class:`DocumentError` naming the file and the line, YAML ``text`` that is
    longer than :data:`MAX_YAML_CHARACTERS`, nested deeper than :data:`MAX_YAML_DEPTH`, with
    more than :data:`MAX_YAML_ALIASES` aliases or :data:`MAX_YAML_MERGE_KEYS` merge keys, that
    would stand for more than :data:`MAX_VALUES` values once its aliases are expanded, or that
    uses a tag other than YAML's standard ones (``!!python/...``).

    Only ruamel's event stream is read (no tree is built), so the check itself is linear.
    Malformed YAML raises ruamel's own errors, as loading it would."""
    if len(text) > MAX_YAML_CHARACTERS:
        raise _bound_error(
            name,
            text.count("\n", 0, MAX_YAML_CHARACTERS) + 1,
            f"the file is longer than {MAX_YAML_CHARACTERS} characters; split it into "
            "several files",
        )
    _check_flow_nesting(text, name)
    bounds = _Bounds(name)
    for event in _yaml().parse(text):
        bounds.see(event)


def _check_flow_nesting(text: str, name: str) -> None:
    """Refuse more than :data:`MAX_YAML_DEPTH` brackets opened on one line (``[[[[``): ruamel's
    scanner takes time growing with the square of that number before it gives the first event
    (a second for 10,000), so the event stream cannot be what refuses it."""
    for number, line in enumerate(text.split("\n"), start=1):
        if line.count("[") + line.count("{") > MAX_YAML_DEPTH and (
            _deepest_flow(line) > MAX_YAML_DEPTH
        ):
            raise _bound_error(
                name,
                number,
                f"lists and mappings nested more than {MAX_YAML_DEPTH} levels deep; "
                "write it flatter",
            )


def _deepest_flow(line: str) -> int:
    """How many brackets are open at most on ``line``, not counting those in quoted text, in a
    comment or in a plain text (``title: a [b]``): outside brackets, a bracket or a quote opens
    something only where a value starts (after ``:``, ``-``, ``?`` or at the start of the line),
    inside brackets also after ``[``, ``{`` and ``,``."""
    depth = deepest = index = 0
    last = ""  # the last character before ``index`` that is not a space
    while index < len(line):
        character = line[index]
        starts = last in ("", ":", "-", "?") or (depth > 0 and last in "[{,")
        if character in "\"'" and starts:
            end = _closing_quote(line, index)
            if end < 0:  # the quoted text goes on below: the rest of the line is text
                break
            index = end
        elif character == "#" and (index == 0 or line[index - 1] in " \t"):
            break
        elif character in "[{" and (depth > 0 or starts):
            depth += 1
            deepest = max(deepest, depth)
        elif character in "]}" and depth > 0:
            depth -= 1
        if character not in " \t":
            last = character
        index += 1
    return deepest


def _closing_quote(line: str, start: int) -> int:
    """Where the quoted text opened at ``start`` ends on ``line`` (-1: not on this line)."""
    quote, index = line[start], start + 1
    while index < len(line):
        if quote == '"' and line[index] == "\\":
            index += 2
            continue
        if line[index] == quote:
            if quote == "'" and line[index + 1 : index + 2] == "'":
                index += 2
                continue
            return index
        index += 1
    return -1


def _bound_error(name: str, line: int, message: str) -> DocumentError:
    return DocumentError(Problem(name, line, 1, message))


@dataclass
class _Bounds:
    """What :func:`check_yaml_bounds` has seen so far of a file's events."""

    name: str
    depth: int = 0
    aliases: int = 0
    merges: int = 0
    values: int = 0
    # Each open list or mapping: its anchor, the values seen before it, whether it is a mapping
    # and (for a mapping) whether its next node is a key.
    open: list[tuple[str | None, int, bool]] = field(default_factory=list)
    expect_key: list[bool] = field(default_factory=list)
    # Each anchor already closed: the values it stands for.
    sizes: dict[str, int] = field(default_factory=dict)

    def see(self, event: Any) -> None:
        line = event.start_mark.line + 1
        kind = type(event).__name__
        self._tag(getattr(event, "tag", None), line)
        in_mapping = bool(self.open) and self.open[-1][2]
        is_key = in_mapping and self.expect_key[-1]
        if in_mapping and kind != "MappingEndEvent":
            self.expect_key[-1] = not self.expect_key[-1]
        if kind == "AliasEvent":
            self._alias(event.anchor, line)
        elif kind == "ScalarEvent":
            self.values += 1
            if is_key and event.value == "<<" and event.style is None:
                self.merges += 1
                if self.merges > MAX_YAML_MERGE_KEYS:
                    self._refuse(
                        line,
                        f"more than {MAX_YAML_MERGE_KEYS} merge keys (<<); write the keys out, "
                        "or split the file",
                    )
            if event.anchor is not None:
                self.sizes[event.anchor] = 1
        elif kind in ("MappingStartEvent", "SequenceStartEvent"):
            self.values += 1
            self.depth += 1
            if self.depth > MAX_YAML_DEPTH:
                self._refuse(
                    line,
                    f"lists and mappings nested more than {MAX_YAML_DEPTH} levels deep; "
                    "write it flatter",
                )
            self.open.append((event.anchor, self.values, kind == "MappingStartEvent"))
            self.expect_key.append(True)
        elif kind in ("MappingEndEvent", "SequenceEndEvent"):
            self.depth -= 1
            anchor, start, _ = self.open.pop()
            self.expect_key.pop()
            if anchor is not None:
                self.sizes[anchor] = self.values - start + 1
        if self.values > MAX_VALUES:
            self._refuse(
                line,
                f"more than {MAX_VALUES} values once its aliases are expanded; repeat less, "
                "or split the file",
            )

    def _tag(self, tag: str | None, line: int) -> None:
        if tag is None or tag in _CORE_TAGS:
            return
        shown = "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:") else tag
        self._refuse(
            line,
            f"the tag {shown} is not allowed (a tag can make some programs run code); "
            "write plain values",
        )

    def _alias(self, anchor: str, line: int) -> None:
        self.aliases += 1
        if self.aliases > MAX_YAML_ALIASES:
            self._refuse(
                line,
                f"more than {MAX_YAML_ALIASES} aliases (*name); repeat less, or split the file",
            )
        if anchor not in self.sizes and any(a == anchor for a, _, _ in self.open):
            self._refuse(line, f"the alias *{anchor} is inside its own anchor; remove it")
        self.values += self.sizes.get(anchor, 1)

    def _refuse(self, line: int, message: str) -> NoReturn:
        raise _bound_error(self.name, line, message)


def _to_plain(node: Any, path: KeyPath, document: Document, budget: list[int]) -> Any:
    """ruamel's round-trip types -> dict, list, str, int, float, bool, None; records where each
    key and value was written. Refuses non-finite numbers and documents of more than
    ``MAX_VALUES`` values."""
    budget[0] -= 1
    if budget[0] < 0:
        raise DocumentError(
            document.problem(
                (),
                f"more than {MAX_VALUES} values (are aliases repeating "
                "large parts?); split the file or repeat less",
            )
        )
    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for key, value in node.items():
            skey = str(key) if not isinstance(key, str) else key
            child = (*path, skey)
            try:
                line, column = node.lc.key(key)
                document.key_positions[child] = (line + 1, column + 1)
                line, column = node.lc.value(key)
                document.positions[child] = (line + 1, column + 1)
            except (KeyError, TypeError, AttributeError):
                pass
            out[skey] = _to_plain(value, child, document, budget)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for index, value in enumerate(node):
            child = (*path, index)
            try:
                line, column = node.lc.item(index)
                document.positions[child] = (line + 1, column + 1)
            except (KeyError, TypeError, AttributeError, IndexError):
                pass
            items.append(_to_plain(value, child, document, budget))
        return items
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        if not math.isfinite(node):
            raise DocumentError(document.problem(path, f"{node} is not a usable number"))
        return float(node)
    if isinstance(node, str):
        return str(node)
    return str(node)


# --- JSON Schema checks ---------------------------------------------------------------------


@cache
def load_schema(package: str, name: str) -> dict[str, Any]:
    """A JSON Schema shipped inside the package ``package``."""
    text = resources.files(package).joinpath(name).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return schema


@cache
def _validator(package: str, name: str, definition: str | None) -> Draft202012Validator:
    schema = load_schema(package, name)
    if definition is not None:
        schema = {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": definition}
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def schema_problems(
    document: Document,
    package: str,
    schema_name: str,
    definition: str | None = None,
    severity: Severity = "error",
) -> list[Problem]:
    """Every place where ``document`` breaks the schema, each with a message a person can act on.

    ``definition`` (like ``#/$defs/field_set``) checks against one definition of the schema.
    """
    validator = _validator(package, schema_name, definition)
    problems: list[Problem] = []
    seen: set[tuple[KeyPath, str]] = set()
    for error in validator.iter_errors(document.data):
        for path, message in _explain(error):
            if (path, message) not in seen:
                seen.add((path, message))
                if message.startswith("unknown key"):
                    problems.append(document.unknown_key(path, message, severity))
                else:
                    problems.append(document.problem(path, message, severity))
    return problems


def schema_messages(schema: Mapping[str, Any], data: Any, prefix: KeyPath = ()) -> list[str]:
    """Where ``data`` breaks ``schema`` (a schema given as data, like a plugin's settings schema),
    as ``path: message`` lines, the path starting with ``prefix``."""
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    messages: list[str] = []
    for error in validator.iter_errors(data):
        for path, message in _explain(error):
            where = format_path(prefix + path)
            line = f"{where}: {message}" if where else message
            if line not in messages:
                messages.append(line)
    return messages


def _explain(error: ValidationError) -> Iterator[tuple[KeyPath, str]]:
    """Turn one jsonschema error into (where, message) pairs worded for the author of the file."""
    path: KeyPath = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    validator = str(error.validator)
    if validator == "additionalProperties" and isinstance(error.instance, Mapping):
        yield from _unknown_keys(path, error.instance, schema)
    elif custom := schema.get("x-error"):
        yield path, str(custom).format(value=error.instance)
    elif validator in ("anyOf", "oneOf") and error.context:
        yield from _explain(best_match(error.context))
    elif validator in _MESSAGES:
        yield path, _MESSAGES[validator](error)
    else:
        yield path, error.message


def _unknown_keys(
    path: KeyPath, instance: Mapping[Any, Any], schema: Mapping[str, Any]
) -> Iterator[tuple[KeyPath, str]]:
    """One problem per key the schema does not allow, with the likely intended key or the list
    of allowed ones."""
    properties = schema.get("properties", {})
    allowed = sorted(properties)
    for key in instance:
        if key in properties:
            continue
        hint = did_you_mean(str(key), allowed)
        if not hint and allowed:
            hint = f"; allowed keys are {', '.join(allowed)}"
        yield (*path, key), f"unknown key {key!r}{hint}"


def _missing_key(error: ValidationError) -> str:
    missing = error.message.split("'")[1] if "'" in error.message else error.message
    return f"missing required key {missing!r}"


def _too_short(error: ValidationError) -> str:
    minimum = int(cast(int, error.validator_value))
    return "must not be empty" if minimum <= 1 else f"needs at least {minimum} characters"


def _not_one_of(error: ValidationError) -> str:
    options = ", ".join(str(v) for v in cast(list[Any], error.validator_value))
    return f"{_show(error.instance)} is not one of: {options}"


# What each JSON Schema keyword's failure means, in the words of the file's author.
_MESSAGES: dict[str, Callable[[ValidationError], str]] = {
    "required": _missing_key,
    "type": lambda e: f"expected {_type_name(e.validator_value)}, got {_show(e.instance)}",
    "enum": _not_one_of,
    "minimum": lambda e: f"must be at least {e.validator_value}, got {_show(e.instance)}",
    "maximum": lambda e: f"must be at most {e.validator_value}, got {_show(e.instance)}",
    "minItems": lambda e: f"needs at least {e.validator_value} item(s)",
    "minLength": _too_short,
    "uniqueItems": lambda _e: "lists the same item twice",
    "pattern": lambda e: f"{_show(e.instance)} does not have the expected form",
    "minProperties": lambda _e: "must not be empty",
    "propertyNames": lambda e: f"key {_show(e.instance)} is not allowed here",
}


_TYPE_NAMES = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping (key: value)",
    "array": "a list",
    "null": "nothing",
}


def _type_name(value: Any) -> str:
    if isinstance(value, list):
        return " or ".join(_TYPE_NAMES.get(v, str(v)) for v in value)
    return _TYPE_NAMES.get(value, str(value))


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return f"text {value!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)
