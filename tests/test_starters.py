"""What a new scenario starts from (bookwise.workflows.starters): the shipped starters, and the
wizard's answers turned into the structured editor's values."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bookwise.notifications.templates import SHIPPED_TEMPLATES, template_names
from bookwise.workflows.editing import check_text, load_map, structured, write
from bookwise.workflows.language import CORE_CHANNELS
from bookwise.workflows.loader import CheckContext
from bookwise.workflows.starters import (
    STARTER_KEYS,
    Question,
    WizardAnswers,
    find_starter,
    free_identifier,
    from_answers,
    starters,
    with_identifier,
)

LOCALES = ("en", "fr", "de", "es")


@pytest.fixture(scope="module")
def context() -> CheckContext:
    """The instance's defaults: the shipped templates, the core's channels, no field set."""
    return CheckContext(
        known_templates=template_names([SHIPPED_TEMPLATES]),
        known_channels=CORE_CHANNELS,
        locales=LOCALES,
    )


def test_four_starters_are_shipped_in_the_chooser_order() -> None:
    shipped = starters()
    assert [s.key for s in shipped] == list(STARTER_KEYS)
    assert len(shipped) == 4
    for starter in shipped:
        assert {"en", "fr"} <= set(starter.name) and {"en", "fr"} <= set(starter.description)
        assert "include:" not in starter.text  # no field set the instance may lack
        assert starter.text.lstrip().startswith("#")  # explained for a business user


@pytest.mark.parametrize("key", STARTER_KEYS)
def test_each_starter_checks_clean(key: str, context: CheckContext) -> None:
    starter = find_starter(key)
    assert starter is not None
    checked, problems = check_text(starter.text, f"{key}.yaml", context, expected_id=key)
    assert [str(p) for p in problems] == []
    assert checked is not None and checked.workflow.id == key


@pytest.mark.parametrize("key", STARTER_KEYS)
def test_the_editor_keeps_a_starter_and_its_comments(key: str, context: CheckContext) -> None:
    starter = find_starter(key)
    assert starter is not None
    text = with_identifier(starter, f"{key}-2")
    written = write(structured(load_map(text), "en"), text, "en")
    assert written == text
    assert "# Starter:" in written and f"id: {key}-2" in written
    _checked, problems = check_text(written, "copy.yaml", context)
    assert problems == []


def test_only_a_known_key_names_a_starter() -> None:
    for key in ("", "../workflows/tutoring", "tutoring-session.yaml", "TUTORING-SESSION"):
        assert find_starter(key) is None


def test_a_taken_identifier_gets_a_number() -> None:
    assert free_identifier("consult", set()) == "consult"
    assert free_identifier("consult", {"consult", "consult-2"}) == "consult-3"
    long = "a" * 63
    assert free_identifier(long, {long}) == "a" * 61 + "-2"


def legal_consultation() -> WizardAnswers:
    """30 minutes, two questions (one a choice with French labels), consent in en and fr, a
    reminder 24 hours before."""
    return WizardAnswers(
        name={"en": "Legal consultation", "fr": "Consultation juridique"},
        identifier="legal-consultation",
        duration="30m",
        questions=[
            Question(
                {"en": "Area of law", "fr": "Domaine du droit"},
                "choice",
                [{"en": "Family", "fr": "Famille"}, {"en": "Work", "fr": "Travail"}],
                required=True,
            ),
            Question({"en": "Your question in a few words", "fr": "Votre question"}, "long_text"),
        ],
        consent_text={"en": "I agree.", "fr": "J'accepte."},
        day_before_email=True,
    )


def test_the_wizards_answers_give_a_clean_scenario_with_exactly_those_keys(
    context: CheckContext,
) -> None:
    answers = legal_consultation()
    text = write(from_answers(answers, LOCALES), None, "en")
    checked, problems = check_text(text, "legal-consultation.yaml", context)
    assert problems == []
    assert checked is not None
    data = checked.definition
    # The usual assignment (in turn) is the language's default: not written.
    assert set(data) == {"id", "name", "duration", "fields", "consent"}
    assert data["duration"] == "30m"
    assert data["fields"] == [
        {
            "id": "area_of_law",
            "type": "select",
            "required": True,
            "label": {"en": "Area of law", "fr": "Domaine du droit"},
            "options": [
                {"value": "family", "label": {"en": "Family", "fr": "Famille"}},
                {"value": "work", "label": {"en": "Work", "fr": "Travail"}},
            ],
        },
        {
            "id": "your_question_in_a_few_words",
            "type": "textarea",
            "label": {"en": "Your question in a few words", "fr": "Votre question"},
        },
    ]
    assert data["consent"] == {"required": True, "text": {"en": "I agree.", "fr": "J'accepte."}}
    # The usual messages are the language's defaults, the 24-hour reminder among them.
    reminders = [r for r in checked.workflow.notifications if r.on == "reminder"]
    assert [(r.before, r.to, r.channels) for r in reminders] == [
        (timedelta(hours=24), ("client",), ("email",))
    ]


def test_approval_a_group_text_messages_and_a_follow_up(context: CheckContext) -> None:
    answers = legal_consultation()
    answers.approval, answers.places, answers.assignment = True, 6, "client"
    answers.day_before_email, answers.two_hours_sms, answers.follow_up = False, True, True
    text = write(from_answers(answers, LOCALES), None, "en")
    checked, problems = check_text(text, "legal-consultation.yaml", context)
    assert problems == []
    assert checked is not None
    data = checked.definition
    assert data["capacity"] == 6 and data["staff"] == {"client_chooses": True}
    assert data["states"]["requested"] == {"initial": True}
    assert data["fields"][0]["id"] == "phone"  # a text message needs the mobile number
    rules = {
        (r["on"], r.get("before") or r.get("after"), str(r["channel"]))
        for r in data["notifications"]
    }
    assert ("reminder", "2h", "sms") in rules and ("follow_up", "2h", "email") in rules
    assert ("requested", None, "email") in rules and ("declined", None, "email") in rules
    assert not any(on == "reminder" and offset == "24h" for on, offset, _ in rules)


def test_a_sensitive_question_a_retention_and_an_online_place(context: CheckContext) -> None:
    answers = legal_consultation()
    answers.questions[1].sensitive = True
    answers.delete_answers_after = "365d"
    answers.location, answers.meeting_link = "online", "https://meet.example.org/office"
    text = write(from_answers(answers, LOCALES), None, "en")
    checked, problems = check_text(text, "legal-consultation.yaml", context)
    assert problems == []
    assert checked is not None
    data = checked.definition
    assert [f.get("sensitive") for f in data["fields"]] == [None, True]
    assert data["retention"] == {"delete_answers_after": "365d"}
    assert data["location"] == {"type": "online", "url": "https://meet.example.org/office"}


def test_in_person_is_the_default_and_not_written(context: CheckContext) -> None:
    answers = legal_consultation()
    answers.meeting_link = "https://meet.example.org/office"  # only an online place has one
    text = write(from_answers(answers, LOCALES), None, "en")
    assert "location" not in load_map(text) and "retention" not in load_map(text)
    answers.location = "phone"
    assert load_map(write(from_answers(answers, LOCALES), None, "en"))["location"] == {
        "type": "phone"
    }
