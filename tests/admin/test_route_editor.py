"""The structured editor's "Who serves, by answer" (``route``): a row per rule, its condition
chosen like "Ask only if" and the tags to send to; saving writes the rules, a file's rules come
back unchanged, and a rule's problem shows in its row."""

from __future__ import annotations

from sqlalchemy import select

from bookwise.errors import Problem
from bookwise.workflows.editing import field_of_problem, load_map, structured, write
from bookwise.workflows.models import WorkflowRecord
from tests.admin.conftest import World, db
from tests.admin.test_workflows_admin import assert_saved, editor

SOURCE = """\
id: legal
name: Legal advice
duration: 30m
fields:
  - id: topic
    type: select
    label: Topic
    options:
      - {value: tax, label: {en: Tax law, fr: Droit fiscal}}
      - {value: family, label: Family law}
route:
  - {if: {field: topic, equals: tax}, staff: {tags: [tax]}}  # the tax team
  - {if: {field: topic, in: [family]}, staff: {tags: [family, senior]}}
"""


def test_the_rules_are_read_and_written_back_unchanged() -> None:
    values = structured(load_map(SOURCE), "en")
    assert [row.values for row in values.routes] == [
        {"condition": {"field": "topic", "test": "equals", "value": "tax"}, "tags": ["tax"]},
        {
            "condition": {"field": "topic", "test": "in", "value": "family"},
            "tags": ["family", "senior"],
        },
    ]
    assert write(values, SOURCE, "en") == SOURCE


def test_a_rule_is_added_changed_and_removed() -> None:
    values = structured(load_map(SOURCE), "en")
    values.routes[0].values["tags"] = ["tax", "senior"]
    values.routes[1].removed = True
    # A choice named by its words is written as its value.
    values.routes.append(
        type(values.routes[0])(
            {
                "condition": {"field": "topic", "test": "not_equals", "value": "Droit fiscal"},
                "tags": ["general"],
            }
        )
    )
    written = load_map(write(values, SOURCE, "en"))
    assert [dict(rule["if"]) for rule in written["route"]] == [
        {"field": "topic", "equals": "tax"},
        {"field": "topic", "not_equals": "tax"},
    ]
    assert [list(rule["staff"]["tags"]) for rule in written["route"]] == [
        ["tax", "senior"],
        ["general"],
    ]
    for row in values.routes:
        row.removed = True
    assert "route" not in load_map(write(values, SOURCE, "en"))


def test_a_rules_problem_shows_in_its_row() -> None:
    problem = Problem("legal.yaml", 12, 5, "route[1].if.field: route tests the field 'x'")
    assert field_of_problem(problem) == "routes-1-condition"
    problem = Problem("legal.yaml", 12, 5, "route[0].staff.tags[0]: 'A B' is not a tag")
    assert field_of_problem(problem) == "routes-0-tags"
    problem = Problem("legal.yaml", 12, 5, "route[0]: unknown key 'then'")
    assert field_of_problem(problem) == "routes-0-condition"


def test_the_editor_saves_a_rule(world: World) -> None:
    client = world.login("admin")
    values = editor(client, "/admin/workflows/visit/edit")
    # An empty rule waits to be filled in; left empty, it writes nothing.
    assert values["routes-0-condition-field"] == ""
    page = client.get("/admin/workflows/visit/edit").get_data(as_text=True)
    assert "Who serves, by answer" in page
    assert '<option value="topic">Topic (topic)</option>' in page
    assert '<option value="email"' not in page.split("routes-0-condition-field", 1)[1][:2000]
    values.update(
        {
            "routes-0-condition-field": "topic",
            "routes-0-condition-test": "equals",
            "routes-0-condition-value": "taxes",
            "routes-0-tags": "Tax, senior",
            "comment": "Route tax questions",
            "op": "save",
        }
    )
    assert_saved(client.post("/admin/workflows/visit/edit", data=values))
    with db(world) as session:
        record = session.scalars(select(WorkflowRecord).where(WorkflowRecord.slug == "visit")).one()
        latest = record.versions[-1]
        assert latest.definition["route"] == [
            {"if": {"field": "topic", "equals": "taxes"}, "staff": {"tags": ["tax", "senior"]}}
        ]
        assert "route:\n  - {if: {field: topic, equals: taxes}, staff: {tags: [tax, senior]}}" in (
            latest.source_text
        )


def test_a_wrong_rule_is_refused_beside_its_row(world: World) -> None:
    client = world.login("admin")
    values = editor(client, "/admin/workflows/visit/edit")
    values.update(
        {
            "routes-0-condition-field": "topic",
            "routes-0-condition-test": "lt",
            "routes-0-condition-value": "3",
            "routes-0-tags": "tax",
            "op": "save",
        }
    )
    response = client.post("/admin/workflows/visit/edit", data=values)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "lt only tests number and date fields" in page
    assert 'href="#routes-0-condition"' in page
