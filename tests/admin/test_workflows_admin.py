"""Scenarios without code: the structured editor, the YAML editor, versions, import, export."""

from __future__ import annotations

import io
import re
from typing import Any

from sqlalchemy import func, select

from bookwise.calendars.models import Service
from bookwise.workflows.models import WorkflowRecord, WorkflowVersion
from tests.admin.conftest import World, db, token

LOCALES = ("en", "fr", "de", "es")


def assert_saved(response: Any) -> None:
    """The form was accepted (a redirect); else the test says what the page refused."""
    problems = re.findall(r"invalid-feedback[^>]*>([^<]+)", response.get_data(as_text=True))
    assert response.status_code == 302, problems


def form_fields(html: str) -> dict[str, Any]:
    """Every input, textarea, checked box and selected option of a page's main form, as a
    browser would post it."""
    values: dict[str, Any] = {}

    def add(name: str, value: str) -> None:
        if name in values:
            current = values[name]
            values[name] = [*current, value] if isinstance(current, list) else [current, value]
        else:
            values[name] = value

    for tag in re.findall(r"<input[^>]*>", html):
        name = re.search(r'name="([^"]+)"', tag)
        if not name:
            continue
        kind = re.search(r'type="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        kind_name = kind.group(1) if kind else "text"
        if kind_name in ("checkbox", "radio") and "checked" not in tag:
            continue
        if kind_name in ("submit", "file"):
            continue
        add(
            name.group(1),
            _unescape(value.group(1)) if value else ("y" if kind_name == "checkbox" else ""),
        )
    for name, body in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', html, re.S):
        add(name, _unescape(body.lstrip("\n")))
    for name, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.findall(
            r'<option[^>]*selected[^>]*value="([^"]*)"|<option value="([^"]*)" selected', body
        )
        if chosen:
            for a, b in chosen:
                add(name, _unescape(a or b))
        else:
            first = re.search(r'<option[^>]*value="([^"]*)"', body)
            if first:
                add(name, _unescape(first.group(1)))
    return values


def _unescape(text: str) -> str:
    import html

    return html.unescape(text)


def editor(client: Any, path: str) -> dict[str, Any]:
    response = client.get(path)
    assert response.status_code == 200
    return form_fields(response.get_data(as_text=True))


def legal_consultation(values: dict[str, Any]) -> dict[str, Any]:
    """The issue's scenario: 30 minutes, two questions, consent in French and English, a
    reminder 24 hours before."""
    values.update(
        {
            "id": "legal-consultation",
            "name_en": "Legal consultation",
            "name_fr": "Consultation juridique",
            "duration-amount": "30",  # a number and a unit, as the page asks
            "duration-unit": "m",
            "staff_tags": "consultant",
            "consent": "y",
            "consent_required": "y",
            "consent_text_en": "I agree that my answers are kept for one year.",
            "consent_text_fr": "J'accepte que mes réponses soient conservées un an.",
        }
    )
    return values


def test_a_new_scenario_through_the_structured_editor(world: World) -> None:
    client = world.login("admin")
    values = legal_consultation(editor(client, "/admin/workflows/new?start=blank"))
    # Two questions, added with the editor's button (no JavaScript).
    for _ in range(2):
        values["op"] = "add_field"
        page = client.post("/admin/workflows/new", data=values).get_data(as_text=True)
        values = form_fields(page)
    values.update(
        {
            "fields-0-id": "matter",
            "fields-0-type": "select",
            "fields-0-label_en": "Area of law",
            "fields-0-label_fr": "Domaine du droit",
            "fields-0-required": "y",
            # A row per choice, a box per language; the stored values are made from the words.
            "fields-0-options-0-label_en": "Family",
            "fields-0-options-0-label_fr": "Famille",
            "fields-0-options-1-label_en": "Work",
            "fields-0-options-1-label_fr": "Travail",
            "fields-1-id": "summary",
            "fields-1-type": "textarea",
            "fields-1-label_en": "Your question in a few words",
            "fields-1-label_fr": "Votre question en quelques mots",
            "op": "save",
        }
    )
    # The editor offers the usual messages; keep the 24-hour reminder only.
    for index in range(10):
        if values.get(f"rules-{index}-on") not in (None, "reminder"):
            values[f"rules-{index}-remove"] = "y"
    response = client.post("/admin/workflows/new", data=values)
    assert_saved(response)
    with db(world) as session:
        record = session.scalar(
            select(WorkflowRecord).where(WorkflowRecord.slug == "legal-consultation")
        )
        assert record is not None and record.calendar_id == world.ids["acme"]
        version = record.versions[-1]
        assert version.number == 1 and version.author == "admin@bw.example"
        definition = version.definition
        service = session.scalar(select(Service).where(Service.workflow_id == record.id))
        assert service is not None and not service.active
    assert definition["duration"] == "30m"
    assert [f["id"] for f in definition["fields"]] == ["matter", "summary"]
    assert definition["fields"][0]["options"][1] == {
        "value": "work",
        "label": {"en": "Work", "fr": "Travail"},
    }
    assert definition["consent"]["text"]["fr"].startswith("J'accepte")
    assert definition["notifications"] == [
        {"on": "reminder", "before": "24h", "to": "client", "channel": "email"}
    ]
    # Not bookable until published.
    assert world.app.test_client().get("/acme/legal-consultation").status_code == 404
    published = client.post(
        "/admin/workflows/legal-consultation/offer",
        data={"csrf_token": token(client), "publish": "1"},
    )
    assert published.status_code == 302
    page = world.app.test_client().get("/acme/legal-consultation?lang=fr")
    assert page.status_code == 200 and "Consultation juridique" in page.get_data(as_text=True)


def test_errors_are_shown_beside_their_input_and_nothing_is_saved(world: World) -> None:
    client = world.login("admin")
    values = legal_consultation(editor(client, "/admin/workflows/new?start=blank"))
    values.update({"duration": "half an hour", "id": "Legal Consultation!", "op": "save"})
    response = client.post("/admin/workflows/new", data=values)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    feedback = re.findall(r'id="([a-z_-]+)-error">([^<]+)<', page)
    by_input = dict(feedback)
    assert "duration" in by_input and "id" in by_input, feedback
    assert "Nothing was saved" in page
    with db(world) as session:
        assert session.scalar(select(func.count()).select_from(WorkflowRecord)) == 5


def test_edit_makes_a_new_version_and_keeps_what_the_editor_does_not_show(world: World) -> None:
    client = world.login("admin")
    values = editor(client, "/admin/workflows/review/edit")
    assert (values["duration-amount"], values["duration-unit"]) == ("45", "m")
    values.update({"duration-amount": "1", "duration-unit": "h"})
    values.update({"comment": "Longer reviews", "op": "save"})
    response = client.post("/admin/workflows/review/edit", data=values)
    assert response.status_code == 302
    with db(world) as session:
        record = session.scalar(select(WorkflowRecord).where(WorkflowRecord.slug == "review"))
        assert record is not None
        latest = record.versions[-1]
        assert latest.number == 2 and latest.comment == "Longer reviews"
        assert latest.definition["duration"] == "1h"
        # The states, transitions and comments the form does not show are kept.
        assert "on_hold" in latest.definition["states"]
        assert "# paused by staff" in latest.source_text
    unchanged = client.post("/admin/workflows/review/edit", data={**values, "comment": ""})
    assert unchanged.status_code == 302
    with db(world) as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(WorkflowVersion)
                .join(WorkflowRecord)
                .where(WorkflowRecord.slug == "review")
            )
            == 2
        )


def test_move_and_remove_questions(world: World) -> None:
    client = world.login("admin")
    values = editor(client, "/admin/workflows/visit/edit")
    assert values["fields-0-include"] == "contact"
    assert values["fields-2-id"] == "health"
    values["op"] = "fields:up:2"
    moved = form_fields(
        client.post("/admin/workflows/visit/edit", data=values).get_data(as_text=True)
    )
    assert moved["fields-1-id"] == "health" and moved["fields-2-id"] == "topic"
    moved["fields-2-remove"] = "y"
    moved["op"] = "save"
    assert client.post("/admin/workflows/visit/edit", data=moved).status_code == 302
    with db(world) as session:
        record = session.scalar(select(WorkflowRecord).where(WorkflowRecord.slug == "visit"))
        assert record is not None
        ids = [f.get("id") or f.get("include") for f in record.versions[-1].definition["fields"]]
    assert ids == ["name", "email", "phone", "health"]


def test_the_yaml_editor_refuses_broken_yaml_with_its_line(world: World) -> None:
    client = world.login("admin")
    path = "/admin/workflows/review/yaml"
    original = form_fields(client.get(path).get_data(as_text=True))["text"]
    broken = original.replace("duration: 45m", "duration: [45m")
    response = client.post(path, data={"csrf_token": token(client), "text": broken})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "invalid YAML" in page and 'data-line="' in page
    wrong = original.replace("duration: 45m", "duration: 45 minutes")
    response = client.post(path, data={"csrf_token": token(client), "text": wrong})
    assert response.status_code == 422
    assert "duration" in response.get_data(as_text=True)
    renamed = original.replace("id: review", "id: stolen")
    response = client.post(path, data={"csrf_token": token(client), "text": renamed})
    assert response.status_code == 422
    with db(world) as session:
        assert session.scalar(select(func.count()).select_from(WorkflowVersion)) == 5


def test_history_diff_and_restore(world: World) -> None:
    client = world.login("admin")
    path = "/admin/workflows/review/yaml"
    text = form_fields(client.get(path).get_data(as_text=True))["text"]
    changed = text.replace("duration: 45m", "duration: 50m")
    assert (
        client.post(
            path, data={"csrf_token": token(client), "text": changed, "comment": "50"}
        ).status_code
        == 302
    )
    history = client.get("/admin/workflows/review/versions").get_data(as_text=True)
    assert "v2" in history and "50" in history
    diff = client.get("/admin/workflows/review/versions/2").get_data(as_text=True)
    assert '<span class="del">' in diff and "-duration: 45m" in diff
    assert '<span class="add">' in diff and "+duration: 50m" in diff
    restored = client.post(
        "/admin/workflows/review/versions/1/restore", data={"csrf_token": token(client)}
    )
    assert restored.status_code == 302
    with db(world) as session:
        record = session.scalar(select(WorkflowRecord).where(WorkflowRecord.slug == "review"))
        assert record is not None
        latest = record.versions[-1]
        assert latest.number == 3 and latest.origin == "restore"
        assert latest.source_text == record.versions[0].source_text


def test_export_and_import(world: World) -> None:
    client = world.login("admin")
    exported = client.get("/admin/workflows/review/export")
    assert exported.status_code == 200
    assert 'filename="review.yaml"' in exported.headers["Content-Disposition"]
    text = exported.get_data(as_text=True).replace("duration: 45m", "duration: 40m")
    response = client.post(
        "/admin/workflows/import",
        data={"csrf_token": token(client), "file": (io.BytesIO(text.encode()), "review.yaml")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    fresh = text.replace("id: review", "id: review-copy")
    response = client.post(
        "/admin/workflows/import", data={"csrf_token": token(client), "text": fresh}
    )
    assert response.status_code == 302
    bad = client.post(
        "/admin/workflows/import",
        data={"csrf_token": token(client), "text": "id: x\nname: X\nduration: soon\n"},
    )
    assert bad.status_code == 422
    with db(world) as session:
        review = session.scalar(select(WorkflowRecord).where(WorkflowRecord.slug == "review"))
        copy = session.scalar(select(WorkflowRecord).where(WorkflowRecord.slug == "review-copy"))
        assert review is not None and review.versions[-1].origin == "import"
        assert copy is not None and copy.calendar_id == world.ids["acme"]
        assert session.scalar(select(WorkflowRecord).where(WorkflowRecord.slug == "x")) is None


def test_a_workflow_shared_with_another_calendar_is_read_only_for_one_calendars_admin(
    world: World,
) -> None:
    # consult is offered by acme and by private: acme's admin may not change private's service.
    client = world.login("admin")
    page = client.get("/admin/workflows/consult/").get_data(as_text=True)
    assert "Only the administrators of every calendar" in page
    assert client.get("/admin/workflows/consult/edit").status_code == 403
    assert (
        client.post(
            "/admin/workflows/consult/versions/1/restore", data={"csrf_token": token(client)}
        ).status_code
        == 403
    )
    superadmin = world.login("super")
    assert superadmin.get("/admin/workflows/consult/edit").status_code == 200


def test_preview_of_the_public_form(world: World) -> None:
    client = world.login("admin")
    page = client.get("/admin/workflows/visit/preview?preview_lang=fr").get_data(as_text=True)
    assert "Note de santé" in page and 'name="field_health"' in page
    values = editor(client, "/admin/workflows/visit/edit")
    values.update({"name_fr": "Visite à domicile", "op": "preview"})
    preview = client.post("/admin/workflows/visit/edit?preview_lang=fr", data=values)
    assert preview.status_code == 200
    assert "Visite à domicile" in preview.get_data(as_text=True)
    with db(world) as session:  # a preview saves nothing
        record = session.scalar(select(WorkflowRecord).where(WorkflowRecord.slug == "visit"))
        assert record is not None and len(record.versions) == 1


def test_one_list_of_assignment_strategies(world: World) -> None:
    """The workflow language, the engine and the editor name the same core strategies, and the
    editor offers those that plugins add."""
    from bookwise.admin.views.workflows import STRATEGY_LABELS, STRATEGY_ORDER, editor_form
    from bookwise.availability.assignment import STRATEGIES
    from bookwise.workflows.language import ASSIGNMENTS

    assert set(STRATEGIES) == set(ASSIGNMENTS) == set(STRATEGY_LABELS) == set(STRATEGY_ORDER)
    with world.app.test_request_context():
        form_class = editor_form(("en",), [], ["email"], [], True, plugin_strategies=["fair_share"])
        choices = [choice.value for choice in form_class.assignment.kwargs["choices"]]
    assert choices == [*STRATEGY_ORDER, "fair_share"]


def test_channels_are_offered_in_words(world: World) -> None:
    """The message rules name channels as a business user does, the core's and common ones
    first; a plugin's channel by its label, or its name when it has none."""
    from bookwise.admin.views.workflows import _channel_choices

    with world.app.test_request_context():
        choices = [
            (value, str(label))
            for value, label in _channel_choices(["webhook", "pager", "email", "sms", "log"])
        ]
    assert choices == [
        ("email", "E-mail"),
        ("sms", "Text message (SMS)"),
        ("webhook", "Another system (webhook)"),
        ("log", "Log file only (for testing)"),
        ("pager", "pager"),
    ]
    client = world.login("admin")
    page = client.get("/admin/workflows/new?start=blank&lang=fr").get_data(as_text=True)
    assert ">E-mail</" in page or ">E-mail<" in page
    assert ">Un autre système (webhook)<" in page


def test_durations_are_a_number_and_a_unit(world: World) -> None:
    """Issue 16: durations were typed as 30m and 24h; the editor asks for a number and a unit,
    and the file keeps its own spelling of an unchanged duration."""
    from bookwise.admin.durations import split_duration

    assert split_duration("90m") == ("90", "m")
    assert split_duration("1h30m") == ("90", "m")
    assert split_duration("24h") == ("24", "h")
    assert split_duration("48h") == ("2", "d")
    assert split_duration("30d") == ("30", "d")
    assert split_duration("half an hour") is None

    client = world.login("admin")
    page = client.get("/admin/workflows/review/edit").get_data(as_text=True)
    assert re.search(r'<input type="number"[^>]*name="duration-amount"', page)
    assert re.search(r'<select name="duration-unit"[^>]*aria-label="Unit"', page)
    values = form_fields(page)
    # A comma is not a whole number: refused beside the input, nothing saved.
    values.update({"duration-amount": "1,5", "duration-unit": "h", "op": "save"})
    refused = client.post("/admin/workflows/review/edit", data=values)
    assert refused.status_code == 422
    assert 'id="duration-error"' in refused.get_data(as_text=True)
    values.update({"duration-amount": "2", "duration-unit": "h"})
    assert client.post("/admin/workflows/review/edit", data=values).status_code == 302
    with db(world) as session:
        record = session.scalars(
            select(WorkflowRecord).where(WorkflowRecord.slug == "review")
        ).one()
        assert record.versions[-1].definition["duration"] == "2h"


def test_identifiers_are_made_from_the_words_typed(world: World) -> None:
    """Issue 16: a question without an identifier was refused ("missing required key 'id'");
    the editor now makes one from the question's words, and a scenario's from its name."""
    from bookwise.text import identifier_for

    assert identifier_for("Area of law", set()) == "area_of_law"
    assert identifier_for("Área del derecho?", {"area_del_derecho"}) == "area_del_derecho_2"
    assert identifier_for("2nd opinion", set()) == "question_2nd_opinion"
    assert identifier_for("ما سبب الزيارة؟", set()) == "question"
    assert len(identifier_for("x" * 80, set())) == 40

    client = world.login("admin")
    values = legal_consultation(editor(client, "/admin/workflows/new?start=blank"))
    values["id"] = ""
    for _ in range(2):
        values["op"] = "add_field"
        page = client.post("/admin/workflows/new", data=values).get_data(as_text=True)
        values = form_fields(page)
    values.update(
        {
            "fields-0-label_en": "Area of law",
            "fields-0-label_fr": "Domaine du droit",
            "fields-1-label_en": "",
            "fields-1-label_fr": "Domaine du droit",  # the same words: another identifier
            "op": "save",
        }
    )
    response = client.post("/admin/workflows/new", data=values)
    assert_saved(response)
    with db(world) as session:
        record = session.scalars(
            select(WorkflowRecord).where(WorkflowRecord.slug == "legal-consultation")
        ).one()
        fields = record.versions[-1].definition["fields"]
    assert [f["id"] for f in fields] == ["area_of_law", "domaine_du_droit"]
