"""Issue 16: every key of the workflow language is edited without YAML. The structured editor's
values for the keys that were YAML-only (meeting provider, address, consent link per language,
the lifecycle's steps and actions, retention, fixed sessions, group size per time, a question's
bounds, example text, default, pattern and plugin settings) read from a file and write back
into it, and the result passes the same check as a file. Pure: no app."""

from __future__ import annotations

import pytest

from bookwise.formatting import parse_sessions, sessions_text
from bookwise.workflows.diagram import Move, Step, lifecycle_svg
from bookwise.workflows.editing import (
    LIFECYCLES,
    blank_workflow,
    check_text,
    lifecycle_rows,
    load_map,
    name_steps,
    new_row,
    structured,
    write,
)
from bookwise.workflows.loader import CheckContext

YOGA = """\
id: yoga
name: {en: Yoga, fr: Yoga}
duration: 1h
capacity: 8  # mats in the room
sessions:
  - {days: [mon, wed], at: "18:00"}
fields:
  - {id: age, type: number, label: Age, min: 16, max: 99}
"""


def checked(text: str) -> list[str]:
    _workflow, problems = check_text(text, "yoga.yaml", CheckContext())
    return [p.message for p in problems if p.severity == "error"]


def test_an_unchanged_workflow_is_written_back_unchanged() -> None:
    assert write(structured(load_map(YOGA), "en"), YOGA, "en") == YOGA


def test_the_keys_that_needed_yaml_are_read() -> None:
    source = YOGA.replace(
        "fields:",
        "location:\n  type: online\n  provider: jitsi\n"
        "retention: {delete_answers_after: 180d}\nfields:",
    )
    values = structured(load_map(source), "en")
    assert values["capacity"] == 8 and values["capacity_per"] == "staff"
    assert values["sessions"] == [(["mon", "wed"], "18:00")]
    assert values["location_provider"] == "jitsi"
    assert values["retention_answers"] == "180d"
    assert (values.fields[0]["min"], values.fields[0]["max"]) == ("16", "99")
    assert [row["name"] for row in values.states] == [
        "confirmed",
        "cancelled",
        "completed",
        "no_show",
    ]


def test_the_keys_that_needed_yaml_are_written_and_pass_the_check() -> None:
    values = structured(load_map(YOGA), "en")
    values.values.update(
        capacity_per="slot",
        sessions=[(["mon", "wed"], "18:00"), (["sat"], "10:00")],
        retention_answers="180d",
        retention_client="365d",
        location_type="in_person",
        location_address={"en": "12 Park Road", "fr": "12 rue du Parc"},
        consent=True,
        consent_text={"en": "I agree", "fr": "J'accepte"},
        consent_link={"en": "https://example.org/privacy", "fr": "https://example.org/fr"},
    )
    field = values.fields[0].values
    field.update(min="18", placeholder={"en": "Your age", "fr": "Votre âge"}, default="30")
    text = write(values, YOGA, "en")
    assert checked(text) == [], text
    data = load_map(text)
    assert dict(data["capacity"]) == {"places": 8, "per": "slot"}
    assert [dict(s) for s in data["sessions"]][1] == {"days": ["sat"], "at": "10:00"}
    assert '"18:00"' in text  # quoted: a YAML 1.1 reader takes 18:00 for minutes
    assert dict(data["retention"]) == {
        "delete_answers_after": "180d",
        "delete_client_after": "365d",
    }
    assert dict(data["location"]["address"]) == {"en": "12 Park Road", "fr": "12 rue du Parc"}
    assert dict(data["consent"]["link"])["fr"] == "https://example.org/fr"
    question = data["fields"][0]
    assert (question["min"], question["max"], question["default"]) == (18, 99, 30)
    assert "# mats in the room" in text  # the author's comment stays


def test_a_text_that_looks_like_a_number_stays_what_the_field_needs() -> None:
    values = structured(load_map(YOGA), "en")
    values.fields.append(
        new_row("fields", label={"en": "Code"}, type="text", pattern="[A-Z]{2}[0-9]{4}")
    )
    values.fields.append(new_row("fields", label={"en": "Newsletter"}, type="checkbox"))
    values.fields[2].values["default"] = "true"
    values.fields.append(new_row("fields", label={"en": "Start"}, type="date", min="today"))
    data = load_map(write(values, YOGA, "en"))
    assert data["fields"][1]["pattern"] == "[A-Z]{2}[0-9]{4}"
    assert data["fields"][2]["default"] is True
    assert data["fields"][3]["min"] == "today"


def test_the_approval_lifecycle_and_a_step_of_ones_own() -> None:
    values = structured(load_map(YOGA), "en")
    values.states, values.transitions = lifecycle_rows(LIFECYCLES["lifecycle:approval"], "en")
    values.states[0].values["label"] = {"en": "Awaiting approval", "fr": "En attente"}
    values.states.insert(2, new_row("states", label={"en": "Deposit paid"}, holds_slot=True))
    values.transitions.append(
        new_row("transitions", label={"en": "Deposit received"}, to="deposit_paid")
    )
    values.transitions[-1].values["from"] = ["confirmed"]
    values.transitions.append(
        new_row("transitions", label={"en": "Finish"}, to="completed", by=["staff"])
    )
    values.transitions[-1].values["from"] = ["deposit_paid"]
    text = write(values, YOGA, "en")
    assert checked(text) == [], text
    data = load_map(text)
    assert list(data["states"]) == [
        "requested",
        "confirmed",
        "deposit_paid",
        "declined",
        "cancelled",
        "completed",
        "no_show",
    ]
    assert dict(data["states"]["requested"]) == {
        "initial": True,
        "label": {"en": "Awaiting approval", "fr": "En attente"},
    }
    assert data["transitions"][5]["name"] == "deposit_received"
    # Read back: the rows come from the file, in its order.
    again = structured(data, "en")
    assert [row["name"] for row in again.states][2] == "deposit_paid"
    assert again.transitions[0]["by"] == ["staff"]


def test_the_default_lifecycle_is_not_written_while_unchanged() -> None:
    values = blank_workflow("talk", {"en": "Talk"})
    assert "states" not in write(values, None, "en")
    values.states[2].values["label"] = {"en": "Held"}
    written = load_map(write(values, None, "en"))
    assert dict(written["states"]["completed"]) == {"final": True, "label": {"en": "Held"}}
    assert len(written["transitions"]) == 3


def test_a_steps_name_is_made_once_and_kept() -> None:
    values = blank_workflow("talk", {"en": "Talk"})
    values.states.append(new_row("states", label={"en": "Awaiting payment"}))
    values.transitions.append(new_row("transitions", label={"fr": "Payé"}))
    name_steps(values, "en")
    assert values.states[-1]["name"] == "awaiting_payment"
    assert values.transitions[-1]["name"] == "paye"
    values.states[-1].values["label"] = {"en": "Waiting for the deposit"}
    name_steps(values, "en")
    assert values.states[-1]["name"] == "awaiting_payment"  # bookings are stored under it


def test_a_step_that_leads_nowhere_is_pointed_out_by_its_name() -> None:
    values = blank_workflow("talk", {"en": "Talk"})
    values.states.append(new_row("states", label={"en": "Limbo"}, holds_slot=True))
    _workflow, problems = check_text(write(values, None, "en"), "talk.yaml", CheckContext())
    assert [p.message.partition(":")[0] for p in problems] == ["states.limbo", "states.limbo"]


@pytest.mark.parametrize("locale", ["en", "fr", "de", "es"])
def test_fixed_sessions_in_words_in_each_language(locale: str) -> None:
    sessions = [(["mon", "wed"], "18:00"), (["sat"], "09:30")]
    text = sessions_text(sessions, locale)
    assert parse_sessions(text, (locale,)) == sessions


def test_fixed_sessions_typed_loosely_or_wrongly() -> None:
    assert parse_sessions("lundi et mercredi à 18h30\n\nSat 9:05", ("fr", "en")) == [
        (["mon", "wed"], "18:30"),
        (["sat"], "09:05"),
    ]
    assert parse_sessions("Monday 18:00\nsomeday 10:00", ("en",)) == (2, "someday")
    assert parse_sessions("Monday", ("en",)) == (1, "Monday")


def test_the_diagram_draws_every_step_and_move_and_escapes_words() -> None:
    steps = [
        Step("requested", "Awaiting <approval>", initial=True),
        Step("confirmed", "Confirmed"),
        Step("cancelled", "Cancelled", final=True),
    ]
    moves = [
        Move("Approve", ("requested",), "confirmed"),
        Move("Cancel", ("requested", "confirmed"), "cancelled"),
    ]
    svg = lifecycle_svg(steps, moves, title="Steps & moves")
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<rect") == 3 and svg.count('class="move"') == 3
    assert "Awaiting &lt;approval&gt;" in svg and "Steps &amp; moves" in svg
    assert "<approval>" not in svg
