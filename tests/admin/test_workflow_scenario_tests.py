"""Checks before publishing (a workflow's ``tests:``) in the back office: the structured editor
shows the common ones as rows (the times offered on a day, a cancellation) and the others in a
text box, keeps them as written, runs them on save and shows each result in its row; a failing
one does not stop a draft but stops publishing."""

from __future__ import annotations

import html
import re
from urllib.parse import quote

from sqlalchemy import func, select

from bookwise.errors import Problem
from bookwise.workflows.editing import (
    check_places,
    field_of_problem,
    load_map,
    new_row,
    structured,
    write,
)
from bookwise.workflows.models import WorkflowRecord, WorkflowVersion
from tests.admin.conftest import World, db, token
from tests.admin.test_workflow_editor_more import HOSTILE
from tests.admin.test_workflows_admin import assert_saved, editor, form_fields

CHECKS = """
# Proven before publishing (a comment the editor keeps).
tests:
  - name: Mornings are offered
    given: {timezone: Europe/Paris, hours: {mon: ["09:00-12:00"]}}
    slots: {on: 2027-03-29, includes: ["09:00"]}
  - name: Nothing on Sundays
    slots: {on: 2027-03-28, offered: %s}
"""


def with_checks(world: World, offered: str = "[]") -> str:
    """Save the review scenario with two checks through the YAML editor; its text."""
    client = world.login("admin")
    path = "/admin/workflows/review/yaml"
    original = str(form_fields(client.get(path).get_data(as_text=True))["text"])
    text = original.rstrip("\n") + "\n" + CHECKS % offered
    response = client.post(path, data={"csrf_token": token(client), "text": text, "op": "save"})
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    return text


def latest_source(world: World) -> str:
    with db(world) as session:
        record = session.scalars(
            select(WorkflowRecord).where(WorkflowRecord.slug == "review")
        ).one()
        return str(record.versions[-1].source_text)


def test_checks_survive_a_save_of_the_structured_form_untouched(world: World) -> None:
    written = with_checks(world)
    client = world.login("admin")
    values = editor(client, "/admin/workflows/review/edit")
    # Both checks are rows: what they check, in words; nothing is left for the text box.
    assert values["checks-0-name"] == "Mornings are offered"
    assert values["checks-0-timezone"] == "Europe/Paris"
    assert values["checks-0-hours"].strip() == "Monday 09:00-12:00"
    assert (values["checks-0-match"], values["checks-0-offered"]) == ("includes", "09:00")
    assert (values["checks-1-name"], values["checks-1-day"]) == ("Nothing on Sundays", "2027-03-28")
    assert values["tests"].strip() == ""
    values.update({"duration-amount": "1", "duration-unit": "h", "op": "save"})
    assert_saved(client.post("/admin/workflows/review/edit", data=values))
    saved = latest_source(world)
    assert "duration: 1h" in saved
    assert (
        saved.split("# Proven before publishing", 1)[1]
        == written.split("# Proven before publishing", 1)[1]
    )


def test_the_editor_runs_the_checks_on_save_and_shows_each_result(world: World) -> None:
    with_checks(world)
    client = world.login("admin")
    values = editor(client, "/admin/workflows/review/edit")
    values["checks-1-offered"] = "10:00"
    preview = client.post("/admin/workflows/review/edit", data={**values, "op": "preview"})
    page = html.unescape(preview.get_data(as_text=True))
    assert row_results(page) == {0: "Passed", 1: "Failed: expected 10:00, got none"}
    # Saved all the same (a draft), with the failure said on the next page.
    response = client.post("/admin/workflows/review/edit", data={**values, "op": "save"})
    assert_saved(response)
    after = html.unescape(client.get(response.headers["Location"]).get_data(as_text=True))
    assert "Checks before publishing: 1 of 2 failed" in after
    assert "test 'Nothing on Sundays': expected 10:00, got none" in after
    assert 'offered: ["10:00"]' in latest_source(world)


def test_checks_that_cannot_be_read_are_refused_beside_their_box(world: World) -> None:
    client = world.login("admin")
    values = editor(client, "/admin/workflows/review/edit")
    values.update({"tests": "- name: [unclosed", "op": "save"})
    response = client.post("/admin/workflows/review/edit", data=values)
    assert response.status_code == 422
    assert "These checks cannot be read" in html.unescape(response.get_data(as_text=True))
    values.update({"tests": "- {name: Typo, slots: {on: 2027-02-30, offered: []}}"})
    response = client.post("/admin/workflows/review/edit", data=values)
    assert response.status_code == 422
    assert "is not a real date" in html.unescape(response.get_data(as_text=True))


def test_a_failing_check_stops_publishing(world: World) -> None:
    with_checks(world, '["10:00"]')
    client = world.login("admin")
    response = client.post(
        "/admin/workflows/review/publish",
        data={
            "csrf_token": token(client),
            "calendar": [world.ids["acme"]],
            "staff": [world.ids["staff_ana"]],
            "op": "publish",
        },
    )
    assert response.status_code == 422
    page = html.unescape(response.get_data(as_text=True))
    assert "The checks before publishing fail" in page
    assert "test 'Nothing on Sundays': expected 10:00, got none" in page


def row_results(page: str) -> dict[int, str]:
    """Each check row's result as the page says it (rows without one left out)."""
    out = {}
    for index, body in re.findall(
        r'id="check-row-(\d+)"(.*?)</fieldset>\s*(?=<fieldset|<div)', page, re.S
    ):
        found = re.search(r'class="[^"]*check-result[^"]*"[^>]*>(.*?)</(?:p|ul)>', body, re.S)
        if found:
            out[int(index)] = " ".join(re.sub(r"<[^>]+>", " ", found[1]).split())
    return out


# --- rows <-> YAML, pure ---------------------------------------------------------------------

SOURCE = """\
id: review
name: Review
duration: 30m
cancellation: {allowed: true, min_notice: 24h}
tests:
  # The morning is offered in Paris.
  - name: Mornings are offered
    given: {timezone: Europe/Paris, hours: {mon: ["09:00-12:00"]}}
    slots: {on: 2027-03-29, includes: ["09:00"]}  # kept
  - name: Messages of a Monday booking
    book: "2027-03-29 09:00"
    messages: []
  - name: A late cancellation is refused
    book: "2027-03-29 09:00"
    cancel: {before: 10h, expect: refused}
"""


def test_rows_yaml_rows_round_trip() -> None:
    values = structured(load_map(SOURCE), "en")
    assert [(row.source, row["what"], row["name"]) for row in values.checks] == [
        (0, "slots", "Mornings are offered"),
        (2, "cancel", "A late cancellation is refused"),
    ]
    late = values.checks[1].values
    assert (late["day"], late["time"], late["before"], late["expect"]) == (
        "2027-03-29",
        "09:00",
        "10h",
        "refused",
    )
    # The case no row can say stays in the text box, as written.
    assert values["tests"].startswith("- name: Messages of a Monday booking")
    # Unchanged: the same text, comments and all.
    assert write(values, SOURCE, "en") == SOURCE
    # Changed and added: written where they were, then the new one; the text box untouched.
    values.checks[0].values.update(match="offered", offered=["09:00", "09:30"])
    values.checks.append(
        new_row(
            "tests",
            name="Tuesdays are busy",
            day="2027-03-30",
            offered=["10:00"],
            hours={"tue": ["09:00-11:00"]},
            bookings=["2027-03-30 09:00"],
        )
    )
    text = write(values, SOURCE, "en")
    assert (
        "  - name: Mornings are offered\n"
        '    given: {timezone: Europe/Paris, hours: {mon: ["09:00-12:00"]}}\n'
        '    slots: {on: 2027-03-29, offered: ["09:00", "09:30"]}' in text
    )
    assert "  # The morning is offered in Paris." in text
    assert text.index("Messages of a Monday") < text.index("A late cancellation")
    assert text.endswith(
        "  - name: Tuesdays are busy\n"
        "    given:\n"
        '      hours: {tue: ["09:00-11:00"]}\n'
        "      bookings:\n"
        '        - {start: "2027-03-30 09:00"}\n'
        '    slots: {on: 2027-03-30, offered: ["10:00"]}\n'
    )
    again = structured(load_map(text), "en")
    assert [row.values for row in again.checks] == [row.values for row in values.checks]
    assert again["tests"] == values["tests"]
    assert check_places(again, text) == [("row", 0), ("advanced", 0), ("row", 1), ("row", 2)]


def test_a_problem_of_a_case_shows_in_its_row_or_at_the_text_box() -> None:
    values = structured(load_map(SOURCE), "en")
    places = check_places(values, SOURCE)
    problem = Problem("r.yaml", 9, 5, "tests[0].slots.includes[0]: '9h' is not a time of day")
    assert field_of_problem(problem, checks=places) == "checks-0-offered"
    problem = Problem("r.yaml", 9, 5, "tests[2].book: '2027-02-30 09:00' is not a real date")
    assert field_of_problem(problem, checks=places) == "checks-1-day"
    problem = Problem("r.yaml", 9, 5, "tests[2].given.hours.mon[0]: '10:00-09:00' ends before")
    assert field_of_problem(problem, checks=places) == "checks-1-hours"
    problem = Problem("r.yaml", 9, 5, "tests[1].messages[0].on: no event 'x'")
    assert field_of_problem(problem, checks=places) == "tests"


# --- in the editor ---------------------------------------------------------------------------


def test_a_check_row_written_without_yaml_fails_then_passes(world: World) -> None:
    client = world.login("admin")
    values = editor(client, "/admin/workflows/review/edit")
    assert values["checks-0-name"] == ""  # an empty row waits to be filled in
    values.update(
        {
            "checks-0-name": "Monday morning",
            "checks-0-what": "slots",
            "checks-0-day": "2027-03-29",
            "checks-0-match": "offered",
            "checks-0-offered": "9:00",
            "checks-0-timezone": "Europe/Paris",
            "checks-0-hours": "Monday 09:00-10:00",
            "op": "save",
        }
    )
    response = client.post("/admin/workflows/review/edit", data=values)
    assert_saved(response)
    assert "Checks before publishing: 1 of 1 failed" in html.unescape(
        client.get(response.headers["Location"]).get_data(as_text=True)
    )
    page = html.unescape(client.get("/admin/workflows/review/edit").get_data(as_text=True))
    failed = row_results(page)[0]
    assert failed.startswith("Failed: expected 09:00, got ")
    saved = latest_source(world)
    assert (
        "tests:\n  - name: Monday morning\n"
        '    given: {timezone: Europe/Paris, hours: {mon: ["09:00-10:00"]}}\n'
        '    slots: {on: 2027-03-29, offered: ["09:00"]}\n'
    ) in saved
    got = failed.split("got ", 1)[1]
    values = form_fields(page)
    values.update({"checks-0-offered": got, "op": "save"})
    assert_saved(client.post("/admin/workflows/review/edit", data=values))
    page = html.unescape(client.get("/admin/workflows/review/edit").get_data(as_text=True))
    assert row_results(page) == {0: "Passed"}


def test_a_cancellation_row(world: World) -> None:
    client = world.login("admin")
    values = editor(client, "/admin/workflows/review/edit")
    values.update(
        {
            "checks-0-name": "A late cancellation is refused",
            "checks-0-what": "cancel",
            "checks-0-day": "2027-03-29",
            "checks-0-time": "09:00",
            "checks-0-before-amount": "2",
            "checks-0-before-unit": "h",
            "checks-0-expect": "refused",
            "op": "preview",
        }
    )
    page = html.unescape(
        client.post("/admin/workflows/review/edit", data=values).get_data(as_text=True)
    )
    assert "No problem found" in page
    assert 'book: "2027-03-29 09:00"\n    cancel: {before: 2h, expect: refused}' in page
    assert 0 in row_results(page)


def test_a_bad_time_in_a_row_shows_in_the_row_and_in_the_summary(world: World) -> None:
    client = world.login("admin")
    values = editor(client, "/admin/workflows/review/edit")
    values.update(
        {
            "checks-0-name": "Mornings",
            "checks-0-day": "2027-03-29",
            "checks-0-offered": "09:00, 25:99",
            "op": "save",
        }
    )
    response = client.post("/admin/workflows/review/edit", data=values)
    assert response.status_code == 422
    page = html.unescape(response.get_data(as_text=True))
    assert re.search(r'href="#checks-0-offered" class="alert-link">Check 1 · Times</a>', page)
    row = page.split('id="check-row-0"', 1)[1].split("</fieldset>", 1)[0]
    assert "'25:99' is not a time of day" in row
    values.update({"checks-0-offered": "09:00", "checks-0-hours": "Mondy 09:00-12:00"})
    response = client.post("/admin/workflows/review/edit", data=values)
    assert response.status_code == 422
    assert "not understood: mondy" in html.unescape(response.get_data(as_text=True))


def test_a_failing_row_blocks_publishing_and_says_why(world: World) -> None:
    client = world.login("admin")
    values = editor(client, "/admin/workflows/review/edit")
    values.update(
        {
            "checks-0-name": "Nothing on Sundays",
            "checks-0-day": "2027-03-28",
            "checks-0-offered": "10:00",
            "op": "save",
        }
    )
    assert_saved(client.post("/admin/workflows/review/edit", data=values))
    response = client.post(
        "/admin/workflows/review/publish",
        data={
            "csrf_token": token(client),
            "calendar": [world.ids["acme"]],
            "staff": [world.ids["staff_ana"]],
            "op": "publish",
        },
    )
    assert response.status_code == 422
    page = html.unescape(response.get_data(as_text=True))
    assert "test 'Nothing on Sundays': expected 10:00, got none" in page


CHECK_INPUTS = ("name", "what", "day", "time", "before-amount", "before-unit", "match")
CHECK_INPUTS += ("offered", "expect", "timezone", "hours", "bookings")


def test_hostile_bytes_in_every_check_input_never_break_the_editor(world: World) -> None:
    client = world.login("admin")
    values = editor(client, "/admin/workflows/review/edit")
    assert {f"checks-0-{name}" for name in CHECK_INPUTS} <= set(values)
    with db(world) as session:
        before = session.scalar(select(func.count()).select_from(WorkflowVersion))
    for index, (name, payload) in enumerate(
        (name, payload) for name in CHECK_INPUTS for payload in HOSTILE
    ):
        fields = {
            **values,
            "checks-0-name": "Mornings",
            "checks-0-day": "2027-03-29",
            "op": "save" if index % 2 else "preview",
        }
        body = "&".join(
            f"{quote(k)}={payload if k == f'checks-0-{name}' else quote(str(v))}"
            for k, v in fields.items()
            if isinstance(v, str)
        )
        response = client.post(
            "/admin/workflows/review/edit",
            data=body,
            content_type="application/x-www-form-urlencoded",
        )
        assert response.status_code < 500, (name, payload[:40], response.status_code)
        with db(world) as session:
            count = session.scalar(select(func.count()).select_from(WorkflowVersion))
        if response.status_code == 302:
            before = count  # a harmless payload (a name, a menu's value kept): saved
        else:
            assert count == before, (name, payload[:40])


def test_the_live_preview_lists_the_checks_results(world: World) -> None:
    client = world.login("admin")
    values = editor(client, "/admin/workflows/review/edit")
    values.update(
        {
            "checks-0-name": "Nothing on Sundays",
            "checks-0-day": "2027-03-28",
            "checks-0-offered": "10:00",
            "slug": "review",
        }
    )
    response = client.post("/admin/workflows/draft-preview", data=values)
    assert response.status_code == 200
    fragment = html.unescape(response.get_data(as_text=True))
    checks = fragment.split("live-checks-title", 1)[1]
    assert "Failed: test 'Nothing on Sundays': expected 10:00, got none" in checks
