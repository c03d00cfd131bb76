"""What a new scenario starts from: the starters shipped with Bookwise, or a short wizard's answers.

A starter is a complete, commented workflow (``bookwise/workflows/starters/<key>.yaml``): a
job interview, a patient visit, a tutoring session, a group class. Each is self-contained (its
fields written out, no field set included) so that it loads on any instance; the back office
opens it in the structured editor, which writes into its text, so its comments stay.

The wizard asks six things (name and kind, time, staff, questions, consent, reminders); its
answers become the structured editor's values (:func:`from_answers`), and
:func:`bookwise.workflows.editing.write` turns those into YAML, like the editor's own. Pure: no
Flask, no database.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bookwise.text import identifier_for
from bookwise.workflows.editing import (
    EDITOR_KEYS,
    LIFECYCLES,
    Row,
    StructuredWorkflow,
    Texts,
    blank_workflow,
    dump_map,
    lifecycle_rows,
    load_map,
    new_row,
)

STARTERS_FOLDER = Path(__file__).parent / "starters"
# The order the chooser offers them.
STARTER_KEYS = ("job-interview", "patient-visit", "tutoring-session", "group-class")

# The wizard's kinds of question (in words on its page) and the field type each one writes.
QUESTION_TYPES = {
    "short_text": "text",
    "long_text": "textarea",
    "choice": "select",
    "yes_no": "checkbox",
    "date": "date",
    "number": "number",
}
MAX_QUESTIONS = 3
# How a client is served when they do not choose: the language's strategy names.
CLIENT_CHOOSES = "client"


@dataclass(frozen=True)
class Starter:
    """A scenario to start from: its key (the file's name), name and description by language,
    and its YAML text."""

    key: str
    name: Texts
    description: Texts
    text: str


def _texts(value: Any) -> Texts:
    """A text of the language as a map of languages (a plain string is every language's)."""
    if isinstance(value, Mapping):
        return {str(code): str(text) for code, text in value.items()}
    return {"": str(value)} if value else {}


def read_starter(path: Path) -> Starter:
    text = path.read_text(encoding="utf-8")
    data = load_map(text)
    return Starter(path.stem, _texts(data.get("name")), _texts(data.get("description")), text)


def starters() -> list[Starter]:
    """The starters shipped in the package, in the chooser's order."""
    return [read_starter(STARTERS_FOLDER / f"{key}.yaml") for key in STARTER_KEYS]


def find_starter(key: str) -> Starter | None:
    """The starter named ``key``, or None (any other text, a path included, names none)."""
    return read_starter(STARTERS_FOLDER / f"{key}.yaml") if key in STARTER_KEYS else None


def with_identifier(starter: Starter, identifier: str) -> str:
    """The starter's text with another ``id`` (its own is taken), comments kept."""
    data = load_map(starter.text)
    data["id"] = identifier
    return dump_map(data)


def free_identifier(wanted: str, taken: Collection[str]) -> str:
    """``wanted``, or ``wanted-2``, ``wanted-3``... the first not ``taken`` (at most 63
    characters)."""
    candidate, number = wanted, 1
    while candidate in taken:
        number += 1
        suffix = f"-{number}"
        candidate = wanted[: 63 - len(suffix)].rstrip("-") + suffix
    return candidate


# --- the wizard -------------------------------------------------------------------------------


@dataclass
class Question:
    """A question of the wizard's step 4: its wording and, for a choice, the choices (each a
    map of languages), in the wizard's words for its type (:data:`QUESTION_TYPES`)."""

    label: Texts
    kind: str = "short_text"
    choices: list[Texts] = field(default_factory=list)
    required: bool = False
    sensitive: bool = False  # health or HR data


@dataclass
class WizardAnswers:
    """The six steps' answers. Durations are in the language's spelling (``30m``, ``30d``;
    empty: the default); ``assignment`` is :data:`CLIENT_CHOOSES` or a strategy's name;
    ``location`` is ``in_person`` (the calendar's address), ``online`` (a meeting made by
    ``meeting_provider``, else the fixed ``meeting_link``) or ``phone``."""

    name: Texts
    identifier: str = ""
    places: int = 1  # 1: one client at a time; more: a group
    approval: bool = False  # requested, then approved by staff
    duration: str = "30m"
    max_ahead: str = ""
    location: str = "in_person"
    meeting_provider: str = ""
    meeting_link: str = ""
    assignment: str = "round_robin"
    questions: list[Question] = field(default_factory=list)
    consent_text: Texts = field(default_factory=dict)
    consent_link: str = ""
    delete_answers_after: str = ""  # empty: kept until erased by hand
    day_before_email: bool = False
    two_hours_sms: bool = False
    follow_up: bool = False


def from_answers(answers: WizardAnswers, locales: Sequence[str]) -> StructuredWorkflow:
    """The structured editor's values for the wizard's answers (``locales``: the calendar's
    languages, the first its default; a choice's value is made from its first wording)."""
    values = blank_workflow(answers.identifier, dict(answers.name))
    values.values.update(
        duration=answers.duration,
        max_ahead=answers.max_ahead,
        capacity=max(answers.places, 1),
        client_chooses=answers.assignment == CLIENT_CHOOSES,
        location_type=answers.location,
        retention_answers=answers.delete_answers_after,
    )
    if answers.location == "online":
        values.values.update(
            location_provider=answers.meeting_provider, location_url=answers.meeting_link
        )
    if answers.assignment != CLIENT_CHOOSES:
        values.values["assignment"] = answers.assignment
    if any(text.strip() for text in answers.consent_text.values()):
        values.values.update(
            consent=True,
            consent_required=True,
            consent_text=dict(answers.consent_text),
            consent_link=_one_text("consent_link", answers.consent_link.strip(), locales),
        )
    if answers.approval:
        values.states, values.transitions = lifecycle_rows(
            LIFECYCLES["lifecycle:approval"], locales[0]
        )
    values.fields = _questions(answers, locales)
    values.rules = _rules(answers)
    return values


def _one_text(name: str, text: str, locales: Sequence[str]) -> Any:
    """The value of the editor's input ``name`` for one text of every language: the text, or
    for an input per language (``texts``) the text in the default language."""
    key = next(key for key in EDITOR_KEYS if key.name == name and key.list_key is None)
    if key.kind == "texts":
        return {locales[0]: text} if text else {}
    return text


def _questions(answers: WizardAnswers, locales: Sequence[str]) -> list[Row]:
    rows = []
    if answers.two_hours_sms:
        # A text message needs the client's mobile number.
        label = {code: text for code, text in _PHONE.items() if code in locales} or _PHONE
        rows.append(new_row("fields", id="phone", type="phone", required=True, label=label))
    taken = {"name", "email", "phone"}
    for question in answers.questions:
        row = new_row(
            "fields",
            type=QUESTION_TYPES[question.kind],
            required=question.required,
            sensitive=question.sensitive,
            label=dict(question.label),
        )
        if question.kind == "choice":
            row.values["options"] = _options(question.choices, locales)
        wording = next((t for t in _ordered(question.label, locales) if t.strip()), "")
        row.values["id"] = identifier_for(wording, taken)
        taken.add(row.values["id"])
        rows.append(row)
    return rows


_PHONE = {
    "en": "Mobile phone",
    "fr": "Téléphone portable",
    "de": "Mobiltelefon",
    "es": "Teléfono móvil",
}


def _ordered(texts: Texts, locales: Sequence[str]) -> list[str]:
    """A text's wordings, the calendar's languages first."""
    return [texts[code] for code in (*locales, *texts) if code in texts]


def _options(choices: Sequence[Texts], locales: Sequence[str]) -> list[tuple[str, Texts]]:
    options: list[tuple[str, Texts]] = []
    taken: set[str] = set()
    for labels in choices:
        wording = next((t for t in _ordered(labels, locales) if t.strip()), "")
        value = identifier_for(wording, taken, prefix="choice")
        taken.add(value)
        options.append((value, {code: text for code, text in labels.items() if text.strip()}))
    return options


def _rules(answers: WizardAnswers) -> list[Row]:
    """The usual messages of the lifecycle, then the reminders and follow-up chosen."""
    both = {"to_client": True, "to_staff": True}
    events = ["confirmed", "rescheduled", "cancelled"]
    if answers.approval:
        events = ["requested", *events]
    rules = [new_row("notifications", on=event, **both) for event in events]
    if answers.approval:
        rules.append(new_row("notifications", on="declined", to_client=True))
    if answers.day_before_email:
        rules.append(new_row("notifications", on="reminder", offset="24h", to_client=True))
    if answers.two_hours_sms:
        rules.append(
            new_row("notifications", on="reminder", offset="2h", to_client=True, channels=["sms"])
        )
    if answers.follow_up:
        rules.append(new_row("notifications", on="follow_up", offset="2h", to_client=True))
    return rules
