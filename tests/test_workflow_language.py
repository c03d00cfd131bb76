"""The workflow language: the reference scenarios, defaults, includes, the lifecycle."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bookwise.documents import parse_document
from bookwise.errors import errors_only
from bookwise.notifications.templates import SHIPPED_TEMPLATES, template_names
from bookwise.workflows.language import Text, Workflow
from bookwise.workflows.lifecycle import DEFAULT_LIFECYCLE, TransitionNotAllowed
from bookwise.workflows.loader import (
    CheckContext,
    check_workflow,
    check_workflow_files,
    read_field_sets,
    yaml_files,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def context() -> CheckContext:
    field_sets, problems = read_field_sets(ROOT / "forms")
    assert problems == []
    return CheckContext(
        field_sets=field_sets,
        known_templates=template_names([SHIPPED_TEMPLATES]),
        known_channels=frozenset({"email", "sms", "webhook", "log"}),
        locales=("en", "fr", "de", "es"),
    )


def check(text: str, context: CheckContext) -> tuple[Workflow | None, list[str]]:
    checked, problems = check_workflow(parse_document(text, "w.yaml"), context)
    return (checked.workflow if checked else None), [str(p) for p in problems]


def test_reference_scenarios_are_clean(context: CheckContext) -> None:
    workflows, problems = check_workflow_files(yaml_files(ROOT / "workflows"), context)
    assert [str(p) for p in problems] == []
    assert {"hr-interview", "patient-visit", "tutoring", "tutoring-group"} <= set(workflows)


def test_reference_scenarios_use_the_language(context: CheckContext) -> None:
    workflows, _ = check_workflow_files(yaml_files(ROOT / "workflows"), context)
    hr = workflows["hr-interview"].workflow
    assert hr.lifecycle.initial == "requested"
    assert hr.lifecycle.find("requested", "approve", "staff").target == "confirmed"
    assert hr.location.type == "online" and hr.location.provider == "jitsi"
    assert hr.staff.tags == ("recruiter",) and hr.staff.assignment == "round_robin"
    assert hr.consent is not None and hr.consent.required
    assert "CV" in hr.consent.text.get("en") and "CV" in hr.consent.text.get("fr")
    assert hr.buffer_before == timedelta(minutes=10) and hr.buffer_after == timedelta(minutes=15)

    visit = workflows["patient-visit"].workflow
    assert {r.before for r in visit.notifications if r.on == "reminder"} == {
        timedelta(hours=48),
        timedelta(hours=2),
    }
    assert visit.retention.delete_answers_after == timedelta(days=365)
    assert all(f.sensitive for f in visit.fields if f.id in ("reason", "date_of_birth"))
    assert [f.id for f in visit.fields][:3] == ["name", "email", "phone"]

    tutoring = workflows["tutoring"].workflow
    assert tutoring.staff.client_chooses and tutoring.capacity == 1
    group = workflows["tutoring-group"].workflow
    assert group.is_group and group.capacity == 6


def test_a_minimal_workflow_is_five_lines(context: CheckContext) -> None:
    workflow, problems = check("id: quick-call\nname: Quick call\nduration: 15m\n", context)
    assert problems == []
    assert workflow is not None
    assert workflow.slot_step == timedelta(minutes=15)
    assert workflow.min_notice == timedelta(hours=1)
    assert workflow.max_ahead == timedelta(days=90)
    assert workflow.capacity == 1
    assert workflow.lifecycle is DEFAULT_LIFECYCLE
    assert workflow.cancellation_allowed
    # name and e-mail are always asked, with the platform's own labels.
    assert [(f.id, f.required, f.implicit) for f in workflow.fields] == [
        ("name", True, True),
        ("email", True, True),
    ]
    events = {(r.on, r.to) for r in workflow.notifications}
    assert ("confirmed", ("client", "staff")) in events
    assert ("reminder", ("client",)) in events
    assert all(r.template for r in workflow.notifications)


def test_notifications_can_be_switched_off(context: CheckContext) -> None:
    workflow, _ = check("id: q\nname: Q\nduration: 15m\nnotifications: []\n", context)
    assert workflow is not None and workflow.notifications == ()


def test_includes_are_expanded_in_order(context: CheckContext) -> None:
    workflow, problems = check(
        "id: q\nname: Q\nduration: 15m\nfields:\n"
        "  - {id: topic, type: text, label: Topic}\n  - include: contact\n",
        context,
    )
    assert problems == []
    assert workflow is not None
    assert [f.id for f in workflow.fields] == ["topic", "name", "email", "phone"]
    assert not any(f.implicit for f in workflow.fields)


def test_hash_ignores_formatting(context: CheckContext) -> None:
    a, _ = check_workflow(parse_document("id: q\nname: Q\nduration: 15m\n", "a.yaml"), context)
    b, _ = check_workflow(
        parse_document("# comment\nduration: 15m\nname: 'Q'\nid: q\n", "b.yaml"), context
    )
    assert a is not None and b is not None
    assert a.content_hash == b.content_hash


def test_rule_keys_are_stable_and_distinct(context: CheckContext) -> None:
    workflow, _ = check(
        "id: q\nname: Q\nduration: 15m\nnotifications:\n"
        "  - {on: reminder, before: 24h, to: client}\n"
        "  - {on: reminder, before: 2h, to: client}\n",
        context,
    )
    assert workflow is not None
    keys = [r.key for r in workflow.notifications]
    assert len(set(keys)) == 2
    again, _ = check(
        "id: q\nname: Other name\nduration: 30m\nnotifications:\n"
        "  - {on: reminder, before: 24h, to: client}\n",
        context,
    )
    assert again is not None and again.notifications[0].key == keys[0]


@pytest.mark.parametrize(
    ("extra", "warning"),
    [
        ("staff: {client_chooses: true, assignment: priority}\n", "assignment is only used"),
        ("name: {en: Q, it: Q}\n", "language 'it' is not among the instance's locales"),
        (
            "fields: [{id: phone_number, type: phone, label: Tel}]\n"
            "notifications: [{on: confirmed, to: client, channel: sms}]\n",
            "sms to the client needs their phone number",
        ),
        ("cancellation: {allowed: false, min_notice: 1h}\n", "min_notice has no effect"),
    ],
)
def test_warnings_do_not_stop_a_workflow(extra: str, warning: str, context: CheckContext) -> None:
    base = "id: q\nduration: 15m\n" + ("" if extra.startswith("name:") else "name: Q\n")
    workflow, problems = check(base + extra, context)
    assert workflow is not None
    assert any(warning in p and "warning:" in p for p in problems), problems


def test_custom_lifecycle_warnings(context: CheckContext) -> None:
    text = (
        "id: q\nname: Q\nduration: 15m\n"
        "states:\n  requested: {initial: true}\n  confirmed: {}\n  archived: {final: true}\n"
        "  limbo: {}\n"
        "transitions:\n  - {name: approve, from: requested, to: confirmed, by: staff}\n"
    )
    workflow, problems = check(text, context)
    assert workflow is not None
    joined = "\n".join(problems)
    assert "no transition leads to state 'archived'" in joined
    assert "no transition leaves state 'confirmed'" in joined
    assert "no transition named 'cancel' is allowed by client" in joined


def test_lifecycle_refuses_what_is_not_allowed() -> None:
    lifecycle = DEFAULT_LIFECYCLE
    assert lifecycle.find("confirmed", "cancel", "client").target == "cancelled"
    with pytest.raises(TransitionNotAllowed) as caught:
        lifecycle.find("confirmed", "no_show", "client")
    assert caught.value.code == "forbidden"
    with pytest.raises(TransitionNotAllowed) as caught:
        lifecycle.find("cancelled", "cancel", "client")
    assert caught.value.code == "invalid_state"
    with pytest.raises(TransitionNotAllowed) as caught:
        lifecycle.find("confirmed", "approve", "staff")
    assert caught.value.code == "unknown_transition"
    # Calendar admins may do what staff may.
    assert lifecycle.find("confirmed", "no_show", "admin").target == "no_show"
    assert lifecycle.holds_slot("confirmed") and not lifecycle.holds_slot("cancelled")


def test_text_falls_back_sensibly() -> None:
    text = Text.of({"en": "Interview", "fr": "Entretien"})
    assert text.get("fr") == "Entretien"
    assert text.get("fr_CA") == "Entretien"
    assert text.get("de", fallback="fr") == "Entretien"
    assert text.get("de") == "Interview"
    assert Text.of("Same for all").get("es") == "Same for all"
    assert Text.of(None).get("en") == ""


def test_field_set_errors_are_reported(tmp_path: Path) -> None:
    forms = tmp_path / "forms"
    forms.mkdir()
    (forms / "broken.yaml").write_text("fields:\n  - {id: x, type: colour, label: X}\n")
    (forms / "good.yaml").write_text("fields:\n  - {id: x, type: text, label: X}\n")
    sets, problems = read_field_sets(forms)
    assert list(sets) == ["good"]
    assert len(problems) == 1
    assert problems[0].file.endswith("forms/broken.yaml")
    assert (problems[0].line, problems[0].column) == (2, 19)
    assert "unknown field type 'colour'" in problems[0].message
    assert errors_only(problems)


# --- group capacity and class sessions ----------------------------------------------------------

CLASS = """id: class
name: Class
duration: 1h30m
capacity: {places: 6, per: slot}
sessions:
  - {days: [mon, wed], at: "18:00"}
  - {days: [sat], at: "10:00"}
"""


def test_capacity_and_sessions_are_read(context: CheckContext) -> None:
    from bookwise.workflows.language import SessionTime

    workflow, problems = check(CLASS, context)
    assert problems == [] and workflow is not None
    assert workflow.capacity == 6 and workflow.one_group_per_slot and workflow.is_group
    assert workflow.sessions == (
        SessionTime(0, 18 * 60),
        SessionTime(2, 18 * 60),
        SessionTime(5, 10 * 60),
    )
    plain, _ = check("id: lab\nname: Lab\nduration: 1h\ncapacity: 4\n", context)
    assert plain is not None
    assert plain.capacity == 4 and plain.capacity_per == "staff" and plain.sessions == ()
    group = check_workflow_files(yaml_files(ROOT / "workflows"), context)[0]["tutoring-group"]
    assert group.workflow.one_group_per_slot and group.workflow.sessions


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (
            CLASS.replace("[mon, wed]", "[mon, wednesday]"),
            "w.yaml:6:18: sessions[0].days[1]",
            "'wednesday' is not a weekday (mon, tue, wed, thu, fri, sat or sun); "
            "did you mean 'wed'?",
        ),
        (
            CLASS.replace('"10:00"', '"25:00"'),
            "w.yaml:7:23: sessions[1].at",
            "'25:00' is not a time of day; write it like \"18:00\"",
        ),
        (
            CLASS.replace('"10:00"', '"10h"'),
            "w.yaml:7:23: sessions[1].at",
            "'10h' is not a time of day",
        ),
        (
            CLASS.replace("[sat]", "[sat, sat]"),
            "w.yaml:7:18: sessions[1].days[1]",
            "the session on sat at 10:00 is already listed (line 7); list each session once",
        ),
        (
            CLASS.replace("per: slot", "per: room"),
            "w.yaml:4:28: capacity.per",
            "'room' is not one of: staff, slot",
        ),
        (
            CLASS.replace("places: 6, ", ""),
            "w.yaml:4:11: capacity",
            "missing required key 'places'",
        ),
        (
            CLASS.replace("places: 6", "places: 0"),
            "w.yaml:4:20: capacity.places",
            "places must be a whole number of clients, at least 1, got 0",
        ),
        (
            CLASS + "staff: {client_chooses: true}\n",
            "w.yaml:8:25: staff.client_chooses",
            "with capacity per: slot there is one group at a time",
        ),
        (
            CLASS.replace("sessions:\n", "sessions: []\n").split("  - ")[0],
            "w.yaml:5:11: sessions",
            "needs at least 1 item(s)",
        ),
    ],
)
def test_capacity_and_session_errors(
    context: CheckContext, text: str, where: str, message: str
) -> None:
    workflow, problems = check(text, context)
    assert workflow is None
    assert any(p.startswith(where + ": ") and message in p for p in problems), problems


def test_session_warnings(context: CheckContext) -> None:
    text = (
        CLASS.replace("duration: 1h30m\n", "duration: 1h30m\nslot_step: 30m\n")
        .replace("[sat]", "[mon]")
        .replace('"10:00"', '"19:00"')
    )
    workflow, problems = check(text, context)
    assert workflow is not None, problems
    assert problems == [
        "w.yaml:4:12: warning: slot_step: slot_step has no effect: starts are the sessions' "
        "times; remove slot_step",
        "w.yaml:8:13: warning: sessions[1].days[0]: the session on mon at 19:00 overlaps the "
        "one at 18:00 (line 7), as each lasts 1h30m: a staff member can teach only one of them",
    ]
