"""The documentation cannot drift from the code it describes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bookwise.documents import Document, load_schema, schema_problems
from bookwise.workflows.reference import DOC, updated_document

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = load_schema("bookwise.workflows", "workflow.schema.json")


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


@pytest.mark.parametrize(
    "name",
    ["<top>", *[n for n in SCHEMA["$defs"] if "properties" in SCHEMA["$defs"][n]]],
)
def test_every_key_is_described(name: str) -> None:
    schema = SCHEMA if name == "<top>" else SCHEMA["$defs"][name]
    missing = [key for key, spec in _properties(schema) if not spec.get("description")]
    assert missing == []


@pytest.mark.parametrize("key", list(SCHEMA["properties"]))
def test_every_top_level_key_has_a_valid_example(key: str) -> None:
    examples = SCHEMA["properties"][key].get("examples", [])
    assert examples, f"{key} has no example"
    for example in examples:
        data = {"id": "example", "name": "Example", "duration": "30m", key: example}
        problems = schema_problems(
            Document("example", data), "bookwise.workflows", "workflow.schema.json"
        )
        assert problems == [], [str(p) for p in problems]


def test_links_between_docs_resolve() -> None:
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).is_file(), f"{page.name} links to missing {target}"
