"""Issue 17, conditional questions: a field with ``show_if`` is asked only when another field's
answer fits; otherwise it is not required and not stored. The checker refuses a test on an
unknown field, a circle, and a test that does not fit the field's type. Pure: no app."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from bookwise.bookings.answers import InvalidAnswers, check_answers
from bookwise.workflows.editing import check_text, load_map, structured, write
from bookwise.workflows.language import Condition, Workflow, shown_fields
from bookwise.workflows.loader import CheckContext

VISIT = """\
id: visit
name: Visit
duration: 30m
fields:
  - id: visit_type
    type: select
    label: Visit
    required: true
    options:
      - {value: first_visit, label: {en: First visit, fr: Première visite}}
      - {value: follow_up, label: {en: Follow-up, fr: Suivi}}
  - {id: age, type: number, label: Age}
  - {id: referral, type: text, label: Referred by, required: true,
     show_if: {field: visit_type, equals: first_visit}}
  - {id: guardian, type: text, label: Guardian, required: true, show_if: {field: age, lt: 18}}
  - {id: guardian_phone, type: text, label: Phone,
     show_if: {field: guardian, answered: true}}
"""
TODAY = date(2027, 3, 1)


def workflow(text: str = VISIT) -> Workflow:
    checked, problems = check_text(text, "visit.yaml", CheckContext())
    assert checked is not None and not problems, problems
    return checked.workflow


def answers(**values: Any) -> dict[str, Any]:
    return {"name": "Zoé", "email": "zoe@example.org", **values}


@pytest.mark.parametrize(
    ("test", "value", "answer", "holds"),
    [
        ("equals", "first_visit", "first_visit", True),
        ("equals", "first_visit", "follow_up", False),
        ("equals", "a", ["a", "b"], True),  # a multiselect's answers
        ("not_equals", "a", "", True),
        ("in", ["a", "b"], "b", True),
        ("not_in", ["a", "b"], "c", True),
        ("lt", 18, 17, True),
        ("lt", 18, 18, False),
        ("gte", 18, 18.0, True),
        ("lt", "2027-01-01", date(2026, 12, 31), True),
        ("gt", 3, "", False),
        ("answered", True, "x", True),
        ("answered", False, "", True),
        ("equals", True, True, True),
        ("equals", True, False, False),
    ],
)
def test_a_condition_holds_as_said(test: str, value: Any, answer: Any, holds: bool) -> None:
    assert Condition("q", test, value).holds(answer) is holds


def test_only_the_questions_that_apply_are_asked() -> None:
    fields = workflow().fields
    asked = shown_fields(fields, {"visit_type": "follow_up", "age": 40})
    assert {"referral", "guardian", "guardian_phone"}.isdisjoint(asked)
    asked = shown_fields(fields, {"visit_type": "first_visit", "age": 12, "guardian": "Ana"})
    assert {"referral", "guardian", "guardian_phone"} <= asked
    # A chain: the guardian's phone is asked only if the guardian is (and answered).
    assert "guardian_phone" not in shown_fields(fields, {"age": 40, "guardian": "Ana"})


def test_a_question_not_asked_is_not_required_and_not_stored() -> None:
    clean = check_answers(
        workflow(),
        answers(visit_type="follow_up", age="40", referral="Dr Who", guardian="Ana"),
        None,
        TODAY,
    )
    assert clean.answers == {"visit_type": "follow_up", "age": 40}


def test_a_question_asked_is_required_as_written() -> None:
    with pytest.raises(InvalidAnswers) as refused:
        check_answers(workflow(), answers(visit_type="first_visit", age="12"), None, TODAY)
    assert list(refused.value.problems) == ["referral", "guardian"]  # in the form's order


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("show_if: {field: visit_typ, equals: first_visit}", "did you mean 'visit_type'"),
        ("show_if: {field: visit_type, equals: first}", "'first' is not a choice of 'visit_type'"),
        ("show_if: {field: visit_type, lt: 3}", "lt only tests number and date fields"),
        ("show_if: {field: age, gt: many}", "needs a number"),
        ("show_if: {field: extra, answered: true}", "depends on itself through extra -> extra"),
        ("show_if: {field: age, lt: 3, gt: 1}", "exactly one test"),
        ("show_if: {field: age}", "exactly one test"),
    ],
)
def test_the_checker_refuses_a_condition_that_cannot_work(line: str, expected: str) -> None:
    text = VISIT + f"  - {{id: extra, type: text, label: Extra, {line}}}\n"
    _checked, problems = check_text(text, "visit.yaml", CheckContext())
    messages = [f"{p.line}: {p.message}" for p in problems]
    assert any(expected in m and m.startswith("18:") for m in messages), messages


def test_a_circle_is_refused_at_each_of_its_questions() -> None:
    text = VISIT.replace(
        "show_if: {field: age, lt: 18}", "show_if: {field: guardian_phone, answered: true}"
    )
    _checked, problems = check_text(text, "visit.yaml", CheckContext())
    circles = [p.message for p in problems if "depends on itself" in p.message]
    assert len(circles) == 2, problems


def test_the_name_and_email_are_always_asked() -> None:
    text = VISIT + "  - {id: email, type: email, label: E-mail, show_if: {field: age, gt: 1}}\n"
    _checked, problems = check_text(text, "visit.yaml", CheckContext())
    assert any("always asked" in p.message for p in problems), problems


def test_the_editor_reads_and_writes_a_condition_and_takes_a_choice_by_its_words() -> None:
    values = structured(load_map(VISIT), "en")
    assert values.fields[2]["show_if"] == {
        "field": "visit_type",
        "test": "equals",
        "value": "first_visit",
    }
    assert values.fields[4]["show_if"] == {"field": "guardian", "test": "answered"}
    assert load_map(write(values, VISIT, "en")) == load_map(VISIT)  # unchanged
    values.fields[2].values["show_if"] = {
        "field": "visit_type",
        "test": "in",
        "value": "Première visite, Follow-up",
    }
    values.fields[3].values["show_if"] = {"field": "guardian", "test": "not_answered"}
    values.fields[1].values["show_if"] = {}
    data = load_map(write(values, VISIT, "en"))
    assert dict(data["fields"][2]["show_if"]) == {
        "field": "visit_type",
        "in": ["first_visit", "follow_up"],
    }
    assert dict(data["fields"][3]["show_if"]) == {"field": "guardian", "answered": False}


@pytest.mark.parametrize(
    ("answer", "held"),
    [("2012-05-01", True), ("2001-01-01", False), (date(2012, 1, 1), True), ("not a date", False)],
)
def test_a_date_condition_holds_on_the_answer_as_kept(answer: Any, held: bool) -> None:
    # Answers reach the condition as the checked text the booking keeps ("2012-05-01"), or as a
    # date: both compare as dates, so the server asks what the page shows.
    assert Condition("born", "gt", "2010-01-01").holds(answer) is held
