"""The documentation cannot drift from the code it describes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from bookwise.documents import Document, load_schema
from bookwise.errors import errors_only
from bookwise.notifications.templates import SHIPPED_TEMPLATES, template_names
from bookwise.workflows.loader import CheckContext, check_workflow, read_field_sets
from bookwise.workflows.reference import DOC, updated_document
from bookwise.workflows.sources import CORE_CHANNELS

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = load_schema("bookwise.workflows", "workflow.schema.json")
DEFS = SCHEMA["$defs"]


def test_workflow_reference_is_up_to_date() -> None:
    current = DOC.read_text(encoding="utf-8")
    assert updated_document(current) == current, (
        "docs/workflows.md differs from the schema: run "
        "`.venv/bin/python -m bookwise.workflows.reference`"
    )


def _properties(schema: dict, path: str = "") -> list[tuple[str, dict]]:
    found = []
    for key, spec in schema.get("properties", {}).items():
        found.append((f"{path}{key}", spec))
        found.extend(_properties(spec, f"{path}{key}."))
    return found


@pytest.mark.parametrize("name", ["<top>", *[n for n in DEFS if "properties" in DEFS[n]]])
def test_every_key_is_described(name: str) -> None:
    schema = SCHEMA if name == "<top>" else DEFS[name]
    missing = [key for key, spec in _properties(schema) if not spec.get("description")]
    assert missing == []


@pytest.fixture(scope="module")
def context() -> CheckContext:
    field_sets, _ = read_field_sets(ROOT / "forms")
    return CheckContext(
        field_sets=field_sets,
        known_templates=template_names([SHIPPED_TEMPLATES]),
        known_channels=CORE_CHANNELS,
    )


LIFECYCLE = {
    "states": {"requested": {"initial": True}, "confirmed": {}, "cancelled": {"final": True}},
    "transitions": [
        {"name": "approve", "from": "requested", "to": "confirmed", "by": "staff"},
        {
            "name": "cancel",
            "from": ["requested", "confirmed"],
            "to": "cancelled",
            "by": ["client", "staff"],
        },
    ],
}


TOPIC = {
    "id": "topic",
    "type": "select",
    "label": "Topic",
    "options": [{"value": v, "label": v} for v in ("tax", "family", "divorce")],
}


def _examples() -> list[tuple[str, dict[str, Any]]]:
    """Every example of the schema, placed in a minimal workflow that gives it its context."""
    base = {"id": "example", "name": "Example", "duration": "30m"}
    cases = []
    for key, spec in SCHEMA["properties"].items():
        for example in spec.get("examples", []):
            extra = LIFECYCLE if key in ("states", "transitions") else {}
            if key == "route":  # a route tests the workflow's questions
                extra = {"fields": [TOPIC]}
            cases.append((key, {**base, **extra, key: example}))
    for example in DEFS["field"]["examples"]:
        cases.append(("field", {**base, "fields": [example]}))
    for example in DEFS["option"]["examples"]:
        field = {"id": "choice", "type": "select", "label": "Choice", "options": [example]}
        cases.append(("option", {**base, "fields": [field]}))
    for example in DEFS["include"]["examples"]:
        cases.append(("include", {**base, "fields": [example]}))
    for example in DEFS["state"]["examples"]:
        states = dict(
            LIFECYCLE["states"],
            requested=example if example.get("initial") else {"initial": True},
            cancelled=example if example.get("final") else {"final": True},
        )
        cases.append(("state", {**base, **LIFECYCLE, "states": states}))
    for example in DEFS["transition"]["examples"]:
        others = [t for t in LIFECYCLE["transitions"] if t["name"] != example["name"]]
        cases.append(("transition", {**base, **LIFECYCLE, "transitions": [*others, example]}))
    for example in DEFS["notification"]["examples"]:
        cases.append(
            (
                "notification",
                {**base, "fields": [{"include": "contact"}], "notifications": [example]},
            )
        )
    return cases


def test_every_top_level_key_has_an_example() -> None:
    assert [k for k, s in SCHEMA["properties"].items() if not s.get("examples")] == []


@pytest.mark.parametrize(
    ("key", "workflow"), _examples(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_example_is_a_valid_workflow(
    key: str, workflow: dict[str, Any], context: CheckContext
) -> None:
    """Examples pass the schema and the meaning checks (fixed addresses are kept as written)."""
    checked, problems = check_workflow(Document(f"example of {key}", workflow), context)
    assert errors_only(problems) == [], [str(p) for p in problems]
    assert checked is not None


def test_links_between_docs_resolve() -> None:
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).is_file(), f"{page.name} links to missing {target}"
