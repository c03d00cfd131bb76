"""The reference of the workflow language, written from its JSON Schema (docs/workflows.md).

``python -m bookwise.workflows.reference`` rewrites the generated part of docs/workflows.md; a
test fails when the file and the schema disagree, so the two cannot drift.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from bookwise.documents import load_schema

START = "<!-- reference:start (generated from workflow.schema.json; do not edit by hand) -->"
END = "<!-- reference:end -->"
DOC = Path(__file__).resolve().parent.parent.parent / "docs" / "workflows.md"

# Definitions documented in their own section, in this order.
SECTIONS = [
    ("field", "A field"),
    ("option", "An option"),
    ("condition", "A condition (show_if, route)"),
    ("route", "A route rule"),
    ("include", "An include"),
    ("state", "A state"),
    ("transition", "A transition"),
    ("notification", "A notification rule"),
    ("session", "A session"),
    ("scenario_test", "A scenario test"),
    ("test_given", "The scene of a test (given)"),
    ("test_booking", "A booking of the scene"),
    ("test_time_off", "Time off of the scene"),
    ("test_slots", "The times offered (slots)"),
    ("test_message", "An expected message"),
    ("test_cancel", "A cancellation (cancel)"),
    ("field_set", "A field set file (forms/NAME.yaml)"),
]


def _yaml(value: Any) -> str:
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.width = 100
    out = io.StringIO()
    yaml.dump(value, out)
    return out.getvalue().rstrip()


def _kind(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    """A short description of what a value may be."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return {
            "duration": "duration (`45m`, `24h`, `30d`, `1h30m`)",
            "text": "text, or map of language to text",
            "name": "name (`lowercase_with_underscores`)",
            "names": "name or list of names",
            "field_or_include": "field or include",
            # The plain values of scenario tests (``tests``).
            "test_moment": 'local date and time (`"2027-03-29 09:00"`)',
            "test_day": "date (`2027-03-29`)",
            "test_clock": 'local time (`"09:30"`)',
            "test_day_or_moment": 'date (`2027-03-29`) or local time (`"2027-03-29 14:00"`)',
            "test_hours": 'hours by weekday (`{mon: ["09:00-12:00"]}`)',
            "test_range": 'time range (`"09:00-12:30"`)',
            "test_staff": "name, or `{id, tags, hours}`",
            "test_staff_id": "staff name of the test",
            "quiet_hours": 'object (`{from: "21:00", to: "08:00"}`)',
        }.get(name, f"[{name}](#{name.replace('_', '-')})")
    if "enum" in schema:
        return "one of " + ", ".join(f"`{v}`" for v in schema["enum"])
    if "anyOf" in schema:
        return " or ".join(_kind(option, defs) for option in schema["anyOf"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array":
        return f"list of {_kind(schema.get('items', {}), defs)}"
    if (
        kind == "object"
        and "additionalProperties" in schema
        and isinstance(schema["additionalProperties"], dict)
    ):
        return f"map of name to {_kind(schema['additionalProperties'], defs)}"
    return str(kind or "any value")


def _table(properties: dict[str, Any], required: list[str], defs: dict[str, Any]) -> list[str]:
    lines = ["| key | value | required | meaning |", "|---|---|---|---|"]
    for key, spec in properties.items():
        description = spec.get("description", "").replace("|", "\\|").replace("\n", " ")
        lines.append(
            f"| `{key}` | {_kind(spec, defs)} | {'yes' if key in required else ''} | "
            f"{description} |"
        )
    return lines


def render() -> str:
    """The generated reference, in Markdown."""
    schema = load_schema("bookwise.workflows", "workflow.schema.json")
    defs = schema["$defs"]
    out = [START, "", "## Reference", "", schema["description"], ""]
    out += ["### Top-level keys", ""]
    out += _table(schema["properties"], schema["required"], defs)
    out.append("")
    for key, spec in schema["properties"].items():
        out += [f"### `{key}`", "", spec["description"], ""]
        target = spec
        if "$ref" in spec and spec["$ref"].rsplit("/", 1)[-1] not in ("text", "duration"):
            target = defs[spec["$ref"].rsplit("/", 1)[-1]]
        kinds = target.get("type")
        if "properties" in target and (kinds == "object" or "object" in (kinds or ())):
            out += _table(target["properties"], target.get("required", []), defs)
            out.append("")
        for example in spec.get("examples", []):
            out += ["```yaml", _yaml({key: example}), "```", ""]
    for name, title in SECTIONS:
        definition = defs[name]
        anchor = name.replace("_", "-")
        out += [f'<a id="{anchor}"></a>', "", f"### {title}", "", definition["description"], ""]
        properties = definition.get("properties", {})
        out += _table(properties, definition.get("required", []), defs)
        out.append("")
        for example in definition.get("examples", []):
            out += ["```yaml", _yaml(example), "```", ""]
    out += [END]
    return "\n".join(out)


def updated_document(current: str) -> str:
    """``current`` with its generated part replaced by :func:`render`."""
    if START not in current or END not in current:
        raise ValueError(f"{DOC} has lost its reference markers")
    before = current.split(START, maxsplit=1)[0]
    after = current.split(END, 1)[1]
    return before + render() + after


def main() -> int:
    DOC.write_text(updated_document(DOC.read_text(encoding="utf-8")), encoding="utf-8")
    sys.stdout.write(f"wrote {DOC}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
