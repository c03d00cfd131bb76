"""The structured editor is a table of keys (bookwise.workflows.editing.EDITOR_KEYS): the form,
the page, the YAML and the problems' places all read it; plugins' vocabularies reach its menus."""

from __future__ import annotations

import dataclasses
import json
import re
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pytest

from bookwise.documents import load_schema
from bookwise.errors import Problem
from bookwise.hookspecs import hookimpl
from bookwise.plugins import Channel, FieldType
from bookwise.plugins.host import PluginHost
from bookwise.workflows import editing
from bookwise.workflows.editing import (
    EDITOR_KEYS,
    ROW_LISTS,
    EditorKey,
    blank_workflow,
    field_of_problem,
    load_map,
    structured,
    write,
)
from bookwise.workflows.language import (
    ASSIGNMENTS,
    CORE_CHANNELS,
    FIELD_TYPES,
    NON_STATE_EVENTS,
)
from tests.admin.conftest import World
from tests.admin.test_workflows_admin import editor, form_fields

# What the editor's form holds besides the table's keys: the rows' bookkeeping and the history.
MECHANICS = {
    "csrf_token",
    "fields",
    "rules",
    "states",
    "transitions",
    "routes",
    "checks",
    "comment",
}
ROW_MECHANICS = {"source", "remove"}


def input_names(key: EditorKey, locales: tuple[str, ...]) -> set[str]:
    return {f"{key.name}_{code}" for code in locales} if key.kind == "texts" else {key.name}


def test_the_table_covers_every_input_of_the_form(world: World) -> None:
    from bookwise.admin.views.workflows import editor_form

    locales = ("en", "fr")
    with world.app.test_request_context():
        form = editor_form(locales, ["confirmed"], ["email"], ["contact"], True)()
        form.fields.append_entry()
        form.rules.append_entry()
        form.states.append_entry()
        form.transitions.append_entry()
        form.routes.append_entry()
        form.checks.append_entry()
    declared: dict[str | None, set[str]] = {None: set()} | {key: set() for key in ROW_LISTS}
    for key in EDITOR_KEYS:
        declared[key.list_key] |= input_names(key, locales)
    assert set(form._fields) - MECHANICS == declared[None]
    assert set(form.fields[0].form._fields) - ROW_MECHANICS == declared["fields"]
    assert set(form.rules[0].form._fields) - ROW_MECHANICS == declared["notifications"]
    assert set(form.states[0].form._fields) - ROW_MECHANICS == declared["states"]
    assert set(form.transitions[0].form._fields) - ROW_MECHANICS == declared["transitions"]
    assert set(form.routes[0].form._fields) - ROW_MECHANICS == declared["route"]
    assert set(form.checks[0].form._fields) - ROW_MECHANICS == declared["tests"]
    laid_out = [
        key
        for section in {key.section for key in EDITOR_KEYS}
        for _, cells in editing.layout(section)
        for _, keys in cells
        for key in keys
    ]
    assert sorted(laid_out, key=EDITOR_KEYS.index) == list(EDITOR_KEYS)
    assert all(key.kind in editing.KINDS for key in EDITOR_KEYS)


def test_the_page_shows_every_key_of_the_table(world: World) -> None:
    client = world.login("admin")
    page = client.get("/admin/workflows/visit/edit").get_data(as_text=True)
    for key in EDITOR_KEYS:
        first = "en" if key.kind == "texts" else None
        name = f"{key.name}_{first}" if first else key.name
        if key.kind in ("duration", "delay"):
            name += "-amount"  # a number and a unit (bookwise.admin.durations)
        if key.kind == "lines":
            name += "-0-label_en"  # a row per choice, a box per language
        if key.kind == "condition":
            name += "-field"  # the question, the test and the value (bookwise.admin.conditions)
        prefix = f"{ROW_LISTS[key.list_key]}-\\d+-" if key.list_key else ""
        assert re.search(f'name="{prefix}{name}"', page), name


def test_each_key_shows_its_own_problems() -> None:
    for key in EDITOR_KEYS:
        if not key.shows_problems:
            continue
        path = key.path.replace("[]", "[1]")
        name = field_of_problem(Problem("x.yaml", 1, 1, f"{path}: wrong"))
        expected = f"{ROW_LISTS[key.list_key]}-1-{key.name}" if key.list_key else key.name
        assert name == expected


def test_a_steps_problem_names_the_step_and_shows_in_its_row() -> None:
    problem = Problem("x.yaml", 5, 3, "states.requested.initial: only one step starts")
    assert field_of_problem(problem, ["confirmed", "requested"]) == "states-1-initial"
    assert field_of_problem(problem) is None


def schema_paths() -> set[str]:
    """Every key the workflow language has, as the table writes paths: ``buffer.before``,
    ``fields[].label`` (a list's entries, or a map's values like ``states``)."""
    schema = load_schema("bookwise.workflows", "workflow.schema.json")
    defs = schema["$defs"]
    paths: set[str] = set()

    def resolve(node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            node = defs[node["$ref"].rsplit("/", 1)[1]]
        return node

    def walk(node: Any, prefix: str) -> None:
        node = resolve(node)
        if not isinstance(node, dict):
            return
        for branch in (*node.get("oneOf", ()), *node.get("anyOf", ())):
            walk(branch, prefix)
        for name, sub in node.get("properties", {}).items():
            path = f"{prefix}.{name}" if prefix else name
            paths.add(path)
            walk(sub, path)
        items = node.get("items")
        if isinstance(items, dict):
            walk(items, f"{prefix}[]")
        more = node.get("additionalProperties")
        if isinstance(more, dict) and prefix:
            walk(more, f"{prefix}[]")

    walk(schema, "")
    return paths


def test_every_key_of_the_workflow_language_has_an_input() -> None:
    """A key added to the schema without an entry in the editor's table fails here: nothing of
    the language may need the YAML editor."""
    edited = {path for key in EDITOR_KEYS for path in (key.path, *key.also)}
    within = {path.rsplit(".", 1)[0] for path in edited if "." in path}
    within |= {path.removesuffix("[]") for path in within}
    missing = sorted(p for p in schema_paths() if p not in edited and p not in within)
    assert not missing, f"keys with no input in EDITOR_KEYS: {missing}"


def test_the_meeting_provider_and_a_placeholder_are_read_and_written() -> None:
    source = (
        "id: call\nname: Call\nduration: 30m\n"
        "location:\n  type: online\n  provider: jitsi\n"
        "fields:\n  - {id: topic, type: text, label: Topic, placeholder: {en: Your topic}}\n"
    )
    values = structured(load_map(source), "en")
    assert values["location_provider"] == "jitsi"
    assert values.fields[0]["placeholder"] == {"en": "Your topic"}
    values.values["location_provider"] = "fakemeet"
    values.fields[0].values["placeholder"] = {"en": "Your topic", "fr": "Votre sujet"}
    written = load_map(write(values, source, "en"))
    assert written["location"]["provider"] == "fakemeet"
    assert dict(written["fields"][0]["placeholder"]) == {"en": "Your topic", "fr": "Votre sujet"}
    problem = Problem("call.yaml", 5, 3, "location.provider: no such provider")
    assert field_of_problem(problem) == "location_provider"


def test_the_meeting_provider_and_a_placeholder_reach_the_yaml(world: World) -> None:
    client = world.login("admin")
    values = editor(client, "/admin/workflows/visit/edit")
    assert "location_provider" in values and "fields-1-placeholder_fr" in values  # 0: include
    values.update(
        {
            "location_type": "online",
            "location_url": "https://meet.example/room",
            "location_provider": "jitsi",
            "fields-1-placeholder_en": "Anything we should know",
            "op": "preview",
        }
    )
    page = client.post("/admin/workflows/visit/edit", data=values).get_data(as_text=True)
    text = page.split("The YAML this gives", 1)[1]
    assert "provider: jitsi" in text and "Anything we should know" in text
    again = form_fields(page)
    assert again["location_provider"] == "jitsi"
    assert again["fields-1-placeholder_en"] == "Anything we should know"


def test_a_new_scenario_starts_from_the_tables_defaults() -> None:
    values = blank_workflow("x", {"en": "X"})
    assert values["capacity"] == 1 and values["assignment"] == "round_robin"
    assert [rule["on"] for rule in values.rules] == [
        "confirmed",
        "rescheduled",
        "cancelled",
        "reminder",
    ]


# --- one source for each vocabulary ---------------------------------------------------------


def test_the_schema_describes_every_core_name() -> None:
    """The schema checks only the shape of a name (plugins add names); its descriptions name
    the core's, from the same lists as the loader and the editor."""
    schema = load_schema("bookwise.workflows", "workflow.schema.json")
    defs = schema["$defs"]
    described = {
        "field types": (json.dumps(defs["field"]["properties"]["type"]), FIELD_TYPES),
        "strategies": (json.dumps(schema["properties"]["staff"]), ASSIGNMENTS),
        "events": (json.dumps(defs["notification"]["properties"]["on"]), NON_STATE_EVENTS),
        "channels": (json.dumps(defs["notification"]["properties"]["channel"]), CORE_CHANNELS),
    }
    for what, (text, names) in described.items():
        missing = [name for name in names if f"`{name}`" not in text]
        assert not missing, f"the schema does not describe the {what} {missing}"


class Stars(FieldType):
    name = "stars"
    label = "Stars (1 to 5)"


class PigeonChannel(Channel):
    name = "pigeon"

    def send(self, message: Any) -> str:
        return "sent"


def fair_share(context: Any) -> int:
    return int(context.free[0])


class Vocabulary:
    BOOKWISE_API = "1.0"

    @hookimpl
    def bookwise_register_field_types(self) -> list[FieldType]:
        return [Stars()]

    @hookimpl
    def bookwise_register_channels(self) -> list[type[Channel]]:
        return [PigeonChannel]

    @hookimpl
    def bookwise_register_assignment_strategies(self) -> dict[str, Any]:
        return {"fair_share": fair_share}


def test_a_plugins_field_type_channel_and_strategy_are_in_the_editors_menus(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_load = EntryPoint.load
    monkeypatch.setattr(
        EntryPoint,
        "load",
        lambda self: Vocabulary() if self.name == "vocabulary" else real_load(self),
    )
    bookwise = world.app.extensions["bookwise"]
    settings = dataclasses.replace(bookwise.settings, plugins={"enabled": ["vocabulary"]})
    host = PluginHost(settings, bookwise.database.sessions)
    core = [e for e in entry_points(group="bookwise.plugins") if e.dist.name == "bookwise"]
    host.load([*core, EntryPoint("vocabulary", f"{__name__}:Vocabulary", "bookwise.plugins")])
    assert host.plugins["vocabulary"].state == "loaded", host.plugins["vocabulary"].problems
    monkeypatch.setattr(bookwise.database, "plugins", host)

    page = world.login("admin").get("/admin/workflows/visit/edit").get_data(as_text=True)
    assert '<option value="stars">Stars (1 to 5)</option>' in page
    assert 'value="pigeon"' in page
    assert '<option value="fair_share">fair_share</option>' in page
