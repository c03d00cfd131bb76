"""Issue 16 in the back office: choices as rows with a box per language, the lifecycle's steps
and its diagram, the keys that needed YAML, an error summary that links to each input, and
buttons that bring the page back to the row they changed."""

from __future__ import annotations

import re
from urllib.parse import quote

from sqlalchemy import func, select

from bookwise.workflows.models import WorkflowRecord, WorkflowVersion
from tests.admin.conftest import World, db
from tests.admin.test_workflows_admin import assert_saved, editor, form_fields, legal_consultation

NEW = "/admin/workflows/new"


def new_scenario(client: object) -> dict[str, object]:
    values = legal_consultation(editor(client, NEW + "?start=blank"))
    values["op"] = "add_field"
    page = client.post(NEW, data=values).get_data(as_text=True)  # type: ignore[attr-defined]
    return form_fields(page)


def summary_links(page: str) -> dict[str, str]:
    """The error summary's links: the input each points at -> what it names."""
    summary = page.split('id="problems"', 1)[1].split("</div>", 1)[0]
    return dict(re.findall(r'<a href="#([^"]+)" class="alert-link">([^<]+)</a>', summary))


def saved_definition(world: World, slug: str) -> dict[str, object]:
    with db(world) as session:
        record = session.scalars(select(WorkflowRecord).where(WorkflowRecord.slug == slug)).one()
        return dict(record.versions[-1].definition)


def test_choices_are_rows_with_a_box_per_language(world: World) -> None:
    client = world.login("admin")
    values = new_scenario(client)
    # Two empty rows wait under a new question: room for choices without a script.
    assert {"fields-0-options-0-label_en", "fields-0-options-1-label_fr"} <= set(values)
    assert "fields-0-options-2-label_en" not in values
    values.update(
        {
            "fields-0-type": "select",
            "fields-0-label_en": "Area of law",
            "fields-0-label_fr": "Domaine du droit",
            "fields-0-options-0-label_en": "Family law",
            "fields-0-options-0-label_fr": "Droit de la famille",
            "fields-0-options-1-label_en": "Work",
            "fields-0-options-1-label_fr": "Travail",
            "op": "preview",
        }
    )
    page = client.post(NEW, data=values).get_data(as_text=True)
    again = form_fields(page)
    # The values are made from the words, kept in hidden inputs, and two new empty rows follow.
    assert again["fields-0-options-0-value"] == "family_law"
    assert again["fields-0-options-1-label_fr"] == "Travail"
    assert again["fields-0-options-3-label_en"] == ""
    again["fields-0-options-0-label_en"] = "Family"  # new words, same stored value
    again["op"] = "save"
    assert client.post(NEW, data=again).status_code == 302
    options = saved_definition(world, "legal-consultation")["fields"][0]["options"]  # type: ignore[index]
    assert options == [
        {"value": "family_law", "label": {"en": "Family", "fr": "Droit de la famille"}},
        {"value": "work", "label": {"en": "Work", "fr": "Travail"}},
    ]


def test_the_lifecycle_is_drawn_and_changed_without_yaml(world: World) -> None:
    client = world.login("admin")
    values = new_scenario(client)
    page = client.post(NEW, data={**values, "op": "lifecycle:approval"}).get_data(as_text=True)
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="lifecycle"' in page
    assert "Requested (waiting for approval) → Approve (Staff) → Confirmed" in page
    values = form_fields(page)
    assert [values[f"states-{i}-name"] for i in range(6)][:2] == ["requested", "confirmed"]
    values.update({"states-0-label_en": "Awaiting approval", "fields-0-label_en": "Topic"})
    values["op"] = "save"
    response = client.post(NEW, data=values)
    assert_saved(response)
    definition = saved_definition(world, "legal-consultation")
    assert definition["states"]["requested"] == {  # type: ignore[index]
        "initial": True,
        "label": {"en": "Awaiting approval"},
    }
    assert [t["name"] for t in definition["transitions"]][:2] == ["approve", "decline"]  # type: ignore[attr-defined]


def test_a_steps_problem_shows_in_its_row_and_in_the_summary(world: World) -> None:
    client = world.login("admin")
    values = new_scenario(client)
    values.update({"fields-0-label_en": "Topic", "states-1-initial": "y", "op": "save"})
    response = client.post(NEW, data=values)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    links = summary_links(page)
    assert links and all(re.search(f'id="{target}"', page) for target in links), links
    assert any(target.startswith("states-") for target in links), links


def test_the_error_summary_links_to_each_input(world: World) -> None:
    client = world.login("admin")
    values = new_scenario(client)
    values.update(
        {
            "duration-amount": "0",
            "fields-0-label_en": "Topic",
            "fields-0-settings": "this is not a setting",
            "sessions": "Someday at noon",
            "op": "save",
        }
    )
    response = client.post(NEW, data=values)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    targets = summary_links(page)
    assert {"fields-0-settings", "sessions"} <= set(targets), targets
    assert targets["fields-0-settings"].startswith("Question 1 ·")
    assert "Line 1: write the days, then the time" in page
    with db(world) as session:
        assert (
            session.scalar(
                select(WorkflowRecord).where(WorkflowRecord.slug == "legal-consultation")
            )
            is None
        )


def test_buttons_bring_the_page_back_to_the_row_they_changed(world: World) -> None:
    client = world.login("admin")
    values = new_scenario(client)
    page = client.post(NEW, data={**values, "op": "add_field"}).get_data(as_text=True)
    assert 'value="add_field" formaction="/admin/workflows/new#field-row-2"' in page
    assert 'value="fields:down:0" formaction="/admin/workflows/new#field-row-1"' in page
    assert 'value="fields:up:1" formaction="/admin/workflows/new#field-row-0"' in page
    assert 'id="field-row-1"' in page


def test_the_keys_that_needed_yaml_are_in_the_editor(world: World) -> None:
    client = world.login("admin")
    values = new_scenario(client)
    values.update(
        {
            "fields-0-label_en": "Age",
            "fields-0-type": "number",
            "fields-0-min": "18",
            "fields-0-max": "120",
            "fields-0-placeholder_en": "In years",
            "consent": "y",
            "consent_link_en": "https://example.org/privacy",
            "consent_link_fr": "https://example.org/fr/vie-privee",
            "retention_answers-amount": "180",
            "retention_answers-unit": "d",
            "capacity": "6",
            "capacity_per": "slot",
            "sessions": "lundi, mercredi 18:00\nSaturday 10:00",
            "location_address_en": "12 Park Road",
            "op": "save",
        }
    )
    response = client.post(NEW + "?lang=fr", data=values)
    assert_saved(response)
    definition = saved_definition(world, "legal-consultation")
    question = definition["fields"][0]  # type: ignore[index]
    assert (question["min"], question["max"]) == (18, 120)
    assert question["placeholder"] == {"en": "In years"}
    assert definition["consent"]["link"]["fr"] == "https://example.org/fr/vie-privee"  # type: ignore[index]
    assert definition["retention"] == {"delete_answers_after": "180d"}
    assert definition["capacity"] == {"places": 6, "per": "slot"}
    assert definition["sessions"] == [
        {"days": ["mon", "wed"], "at": "18:00"},
        {"days": ["sat"], "at": "10:00"},
    ]
    assert definition["location"] == {"type": "in_person", "address": {"en": "12 Park Road"}}
    # And back in the editor, in words.
    page = client.get("/admin/workflows/legal-consultation/edit?lang=en").get_data(as_text=True)
    assert "Monday, Wednesday 18:00\nSaturday 10:00" in page


def test_a_provider_of_a_plugin_not_enabled_here_is_kept(world: World) -> None:
    client = world.login("admin")
    values = new_scenario(client)
    values.update(
        {
            "fields-0-label_en": "Topic",
            "location_type": "online",
            "location_provider": "elsewhere_meet",
            "op": "preview",
        }
    )
    page = client.post(NEW, data=values).get_data(as_text=True)
    assert '<option selected value="elsewhere_meet">elsewhere_meet</option>' in page or (
        'value="elsewhere_meet" selected' in page
    )


def test_identifiers_stay_once_bookings_use_them(world: World) -> None:
    """The answers and states of bookings are stored under the questions' and steps'
    identifiers: once a booking uses the scenario, those of existing rows cannot change (a new
    question still gets its own)."""
    client = world.login("super")
    page = client.get("/admin/workflows/consult/edit").get_data(as_text=True)
    assert re.search(r'<input[^>]*id="fields-\d+-id"[^>]*readonly', page), "not shown fixed"
    assert "Kept as it is: bookings already use it." in page
    values = form_fields(page)
    index = next(i for i in range(20) if values.get(f"fields-{i}-id") == "topic")
    values[f"fields-{index}-id"] = "subject"
    values.update({"comment": "rename attempt", "op": "save"})
    assert client.post("/admin/workflows/consult/edit", data=values).status_code == 302
    fields = saved_definition(world, "consult")["fields"]  # type: ignore[index]
    ids = [f.get("id") for f in fields]  # type: ignore[union-attr]
    assert "topic" in ids and "subject" not in ids


HOSTILE = [
    "%ED%A0%80",  # a lone surrogate, as a browser would percent-encode its bytes
    quote("x" * 70_000),
    quote("\u202eevil\u0000\u0007"),
    quote("{{ 9**9**9 }}{% for x in range(10**9) %}{% endfor %}"),
    quote("-5"),
    quote("Monday 25:99\nsettings: [a"),
]


def test_hostile_bytes_in_every_input_never_break_the_editor(world: World) -> None:
    """Every input of the structured editor (the new ones included) takes hostile bytes: never a
    5xx, and a refused save writes no version."""
    client = world.login("admin")
    values = new_scenario(client)
    values.update({"fields-0-label_en": "Topic", "fields-0-type": "select"})
    names = sorted(name for name, value in values.items() if isinstance(value, str))
    with db(world) as session:
        before = session.scalar(select(func.count()).select_from(WorkflowVersion))
    for index, name in enumerate(names):
        if name in ("csrf_token", "op"):
            continue
        payload = HOSTILE[index % len(HOSTILE)]
        fields = {**values, "op": "save" if index % 2 else "preview"}
        body = "&".join(
            f"{quote(k)}={payload if k == name else quote(str(v))}"
            for k, v in fields.items()
            if isinstance(v, str)
        )
        response = client.post(NEW, data=body, content_type="application/x-www-form-urlencoded")
        assert response.status_code < 500, (name, payload[:40], response.status_code)
        if response.status_code != 302:
            with db(world) as session:
                count = session.scalar(select(func.count()).select_from(WorkflowVersion))
            assert count == before, name
        else:
            before += 1
            # A save that went through (a harmless payload): start again from a new scenario.
            values = new_scenario(client)
            values.update({"fields-0-label_en": "Topic", "fields-0-type": "select"})
