"""A new scenario starts from something: a shipped starter, a blank one, or the guided wizard."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

import bookwise
from bookwise.calendars.models import Service
from bookwise.workflows.models import WorkflowRecord
from bookwise.workflows.starters import STARTER_KEYS
from tests.admin.conftest import World, db, token
from tests.admin.test_calendar_plugins_admin import jitsi  # noqa: F401 (a fixture)
from tests.admin.test_workflows_admin import assert_saved, editor, form_fields

WIZARD = "/admin/workflows/new/guided"


def count_workflows(world: World) -> int:
    with db(world) as session:
        return int(session.scalar(select(func.count()).select_from(WorkflowRecord)) or 0)


def test_the_chooser_offers_the_four_starters_a_blank_one_and_the_wizard(world: World) -> None:
    client = world.login("admin")
    listing = client.get("/admin/workflows/").get_data(as_text=True)
    assert 'href="/admin/workflows/new"' in listing
    page = client.get("/admin/workflows/new").get_data(as_text=True)
    for key in STARTER_KEYS:
        assert f'href="/admin/workflows/new?start={key}"' in page
    assert page.count(">Use this<") == 4
    assert "Job interview" in page and "Group class" in page
    assert 'href="/admin/workflows/new?start=blank"' in page and f'href="{WIZARD}"' in page
    assert client.get("/admin/workflows/new?start=../secrets").status_code == 404


@pytest.mark.parametrize("key", STARTER_KEYS)
def test_each_starter_opens_in_the_editor_and_saves(world: World, key: str) -> None:
    client = world.login("admin")
    path = f"/admin/workflows/new?start={key}"
    values = editor(client, path)
    assert values["id"] == key and values["name_fr"]
    values["op"] = "save"
    response = client.post(path, data=values)
    assert_saved(response)
    with db(world) as session:
        record = session.scalars(select(WorkflowRecord).where(WorkflowRecord.slug == key)).one()
        text = record.versions[-1].source_text
        service = session.scalars(select(Service).where(Service.workflow_id == record.id)).one()
        assert not service.active
    assert "# Starter:" in text  # the starter's comments survive the editor
    # A second one gets another identifier.
    assert editor(client, path)["id"] == f"{key}-2"


def wizard_answers(client: Any, world: World) -> dict[str, Any]:
    """The issue's answers: 30 minutes, two questions (one a choice with French labels),
    consent in English and French, a reminder 24 hours before; ana and ben serve, in turn."""
    values = form_fields(client.get(WIZARD).get_data(as_text=True))
    values.update(
        {
            "name_en": "Legal consultation",
            "name_fr": "Consultation juridique",
            "duration-amount": "30",
            "duration-unit": "m",
            "staff": [str(world.ids["staff_ana"]), str(world.ids["staff_ben"])],
            "assignment": "round_robin",
            "questions-0-label_en": "Area of law",
            "questions-0-label_fr": "Domaine du droit",
            "questions-0-kind": "choice",
            "questions-0-required": "y",
            "questions-0-choices_en": "Family\nWork",
            "questions-0-choices_fr": "Famille\nTravail",
            "questions-1-label_en": "Your question in a few words",
            "questions-1-kind": "long_text",
            "consent": "ask",
            "consent_text_en": "I agree that my answers are kept for one year.",
            "consent_text_fr": "J'accepte que mes réponses soient conservées un an.",
            "day_before_email": "y",
        }
    )
    return values


def test_the_wizard_creates_the_scenario_with_its_staff(world: World) -> None:
    client = world.login("admin")
    page = client.get(WIZARD).get_data(as_text=True)
    assert page.count("<legend") >= 6 and "1. Who books" in page and "6. Reminders" in page
    # What a hidden input holds (places for one client at a time, a link for in person) is
    # ignored, its mistakes too.
    values = {**wizard_answers(client, world), "places": "1", "meeting_link": "x" * 600}
    response = client.post(WIZARD, data=values)
    assert_saved(response)
    assert response.headers["Location"].endswith("/admin/workflows/legal-consultation/edit")
    opened = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "not yet" in opened or "cannot book it yet" in opened
    with db(world) as session:
        record = session.scalars(
            select(WorkflowRecord).where(WorkflowRecord.slug == "legal-consultation")
        ).one()
        version = record.versions[-1]
        assert version.number == 1 and version.author == "admin@bw.example"
        definition = version.definition
        service = session.scalars(select(Service).where(Service.workflow_id == record.id)).one()
        assert not service.active and not service.pool_by_tags
        staff = {link.staff_id for link in service.staff_links}
    assert staff == {world.ids["staff_ana"], world.ids["staff_ben"]}
    assert definition["duration"] == "30m"
    assert definition["fields"][0]["options"] == [
        {"value": "family", "label": {"en": "Family", "fr": "Famille"}},
        {"value": "work", "label": {"en": "Work", "fr": "Travail"}},
    ]
    assert definition["fields"][1]["type"] == "textarea"
    assert definition["consent"]["text"]["fr"].startswith("J'accepte")
    # The 24-hour reminder by e-mail: the language's default rules, written or not.
    rules = definition.get("notifications")
    assert (
        rules is None
        or {"on": "reminder", "before": "24h", "to": "client", "channel": "email"} in rules
    )
    assert "location" not in definition  # in person, at the calendar's address: the default
    assert "retention" not in definition and "sensitive" not in definition["fields"][0]


def created(world: World, response: Any) -> dict[str, Any]:
    """The definition of the scenario the wizard created (its response a redirect)."""
    assert response.status_code == 302, re.findall(
        r'id="([^"]+)-error">([^<]+)<', response.get_data(as_text=True)
    )
    slug = response.headers["Location"].split("/")[-2]
    with db(world) as session:
        record = session.scalars(select(WorkflowRecord).where(WorkflowRecord.slug == slug)).one()
        return dict(record.versions[-1].definition)


def test_a_sensitive_question_the_answers_erased_and_a_fixed_meeting_link(world: World) -> None:
    client = world.login("admin")
    page = client.get(WIZARD).get_data(as_text=True)
    assert "5. Consent and privacy" in page and "at the calendar's address" in page
    assert 'name="meeting_provider"' not in page  # no provider enabled: a fixed link
    values = wizard_answers(client, world)
    values.update(
        {
            "questions-1-sensitive": "y",
            "delete_answers_after-amount": "365",
            "delete_answers_after-unit": "d",
            "location": "online",
            "meeting_link": "https://meet.example.org/office",
        }
    )
    definition = created(world, client.post(WIZARD, data=values))
    assert "sensitive" not in definition["fields"][0]
    assert definition["fields"][1]["sensitive"] is True
    assert definition["retention"] == {"delete_answers_after": "365d"}
    assert definition["location"] == {"type": "online", "url": "https://meet.example.org/office"}


@pytest.mark.usefixtures("jitsi")
def test_an_online_meeting_made_by_the_enabled_provider(world: World) -> None:
    client = world.login("admin")
    page = client.get(WIZARD).get_data(as_text=True)
    assert re.search(r'<option selected value="jitsi">|<option value="jitsi" selected', page)
    values = wizard_answers(client, world)
    assert values["meeting_provider"] == "jitsi"  # offered first
    values["location"] = "online"
    definition = created(world, client.post(WIZARD, data=values))
    assert definition["location"] == {"type": "online", "provider": "jitsi"}


def test_a_name_the_calendar_has_already_is_refused(world: World) -> None:
    client = world.login("admin")
    created(world, client.post(WIZARD, data=wizard_answers(client, world)))
    before = count_workflows(world)
    values = {**wizard_answers(client, world), "name_en": "Another one"}
    values["name_fr"] = "consultation juridique "  # the French name, typed again
    response = client.post(WIZARD, data=values)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    message = (
        "A scenario called “Consultation juridique” exists already; give this one another "
        "name, or open that one."
    )
    assert f'id="name_fr-error">{message}' in page
    assert "name_en-error" not in page
    assert count_workflows(world) == before


def test_a_language_short_of_choices_is_named_beside_its_box(world: World) -> None:
    client = world.login("admin")
    values = wizard_answers(client, world)
    values["questions-0-choices_en"] = "Family\nWork\nTaxes"
    response = client.post(WIZARD, data=values)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    message = "French has 2 choices, English has 3: give as many in each language."
    assert f'id="questions-0-choices_fr-error">{message}' in page
    assert "questions-0-choices_en-error" not in page


def test_other_languages_are_a_tick_away_unless_they_have_words(world: World) -> None:
    client = world.login("admin")

    def ticked(page: str) -> set[str]:
        return set(re.findall(r'id="show-lang-(\w+)" checked', page))

    page = client.get(WIZARD).get_data(as_text=True)
    assert 'class="workflow-page"' in page and 'class="col-md-6 lang-de"' in page
    assert ticked(page) == {"en"} and 'id="show-lang-fr"' in page
    values = {**wizard_answers(client, world), "duration-amount": "0"}
    values["questions-1-label_de"] = "Ihre Frage"
    page = client.post(WIZARD, data=values).get_data(as_text=True)
    assert ticked(page) == {"en", "fr", "de"}  # French and German have words


def test_places_and_choices_show_only_when_they_apply(world: World) -> None:
    """With CSS: admin.css hides them unless a group or a choice is chosen."""
    css = (Path(bookwise.__file__).parent / "static" / "admin.css").read_text(encoding="utf-8")
    assert '.wizard-who:not(:has(input[name="group"][value="group"]:checked)) .wizard-places' in css
    assert '[value="choice"]:checked)) .wizard-choices' in css
    page = world.login("admin").get(WIZARD).get_data(as_text=True)
    assert '<div class="wizard-places">' in page and page.count("wizard-choices") == 3


@pytest.mark.parametrize(
    ("change", "input_id", "message"),
    [
        ({"name_en": "", "name_fr": ""}, "name_en", "Give the scenario a name."),
        ({"duration-amount": "0"}, "duration", "Give a whole number above zero."),
        (
            {"questions-0-choices_en": "", "questions-0-choices_fr": ""},
            "questions-0-choices_en",
            "Give at least two choices, one per line.",
        ),
        ({"consent_text_en": "x" * 5000}, "consent_text_en", "Field cannot be longer than 2000"),
        ({"questions-1-label_en": "x" * 5000}, "questions-1-label_en", "Field cannot be longer"),
        ({"location": "online"}, "meeting_link", "Type the link of the online meetings."),
        (
            {"location": "online", "meeting_link": "meet.example.org/office"},
            "meeting_link",
            "Give the meeting&#39;s whole address, starting with https://.",
        ),
        (
            {"delete_answers_after-amount": "0"},
            "delete_answers_after",
            "Give a whole number above zero.",
        ),
    ],
)
def test_bad_answers_are_refused_beside_their_input(
    world: World, change: dict[str, str], input_id: str, message: str
) -> None:
    client = world.login("admin")
    before = count_workflows(world)
    response = client.post(WIZARD, data={**wizard_answers(client, world), **change})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert re.search(f'id="{re.escape(input_id)}-error">{re.escape(message)}', page), re.findall(
        r'id="([^"]+)-error">([^<]+)<', page
    )
    assert f'<a href="#{input_id}">' in page  # the summary at the top links to the input
    assert f'aria-describedby="{input_id}-error"' in page or f"{input_id}-error" in page
    assert count_workflows(world) == before


def test_a_lone_surrogate_is_refused_beside_its_input(world: World) -> None:
    """A browser cannot send one (werkzeug keeps undecodable bytes escaped), so the form is
    given it directly, as a request would hand it over."""
    from bookwise.admin.views import workflow_starters

    client = world.login("admin")
    values = wizard_answers(client, world)
    values["name_fr"] = "Consultation \ud800"
    with world.app.test_request_context():
        form_class = workflow_starters.wizard_form(("en", "fr"), [], [], sms=False)
        form = form_class(formdata=MultiDict(values), meta={"csrf": False})
        form.validate()
        workflow_starters._refuse_unstorable(form)
    assert form.name_fr.errors == [
        "This text contains a character that cannot be stored; type it again without it."
    ]
    # Sent as bytes, it never reaches the database as a surrogate, and never fails.
    raw = "&".join(
        f"{k}={v}"
        for k, v in {**values, "staff": "", "name_fr": "Caf%ED%A0%80"}.items()
        if isinstance(v, str) and "&" not in v and "=" not in v and "\n" not in v
    )
    response = client.post(WIZARD, data=raw, content_type="application/x-www-form-urlencoded")
    assert response.status_code < 500


def test_only_an_admin_of_the_calendar_may_start_a_scenario(world: World) -> None:
    before = count_workflows(world)
    for who in ("viewer", "ana"):
        client = world.login(who)
        assert client.get("/admin/workflows/new").status_code == 403
        assert client.get(WIZARD).status_code == 403
        refused = client.post(
            WIZARD, data={"csrf_token": token(client, "/admin/"), "name_en": "Sneaky"}
        )
        assert refused.status_code == 403
    assert count_workflows(world) == before
