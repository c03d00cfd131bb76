"""Quiet hours in the structured editor: the workflow's range (from, to, "e-mail waits too")
and each message's choice, read from a file, written back unchanged, and written when set. Pure."""

from __future__ import annotations

from bookwise.workflows.editing import check_text, load_map, structured, write
from bookwise.workflows.loader import CheckContext

VISIT = """\
id: visit
name: {en: Visit}
duration: 30m
fields:
  - {id: phone, type: phone, label: Phone}
notifications:
  - {on: reminder, before: 24h, to: client, channel: sms}
"""


def errors(text: str) -> list[str]:
    _workflow, problems = check_text(text, "visit.yaml", CheckContext())
    return [p.message for p in problems if p.severity == "error"]


def test_quiet_hours_are_read_and_written_back_unchanged() -> None:
    source = VISIT.replace(
        "notifications:",
        'quiet_hours: {from: "21:00", to: "08:00", email: true}\nnotifications:',
    ).replace("channel: sms}", "channel: sms, quiet_hours: before}")
    values = structured(load_map(source), "en")
    assert (values["quiet_from"], values["quiet_to"], values["quiet_email"]) == (
        "21:00",
        "08:00",
        True,
    )
    assert values.rules[0]["quiet"] == "before"
    assert write(values, source, "en") == source


def test_a_workflow_without_them_stays_without_them() -> None:
    values = structured(load_map(VISIT), "en")
    assert values["quiet_from"] == "" and values.rules[0]["quiet"] == "after"
    assert write(values, VISIT, "en") == VISIT


def test_quiet_hours_set_in_the_editor_reach_the_yaml_and_pass_the_check() -> None:
    values = structured(load_map(VISIT), "en")
    values.values.update(quiet_from="21:00", quiet_to="08:00")
    values.rules[0].values.update(quiet="ignore")
    text = write(values, VISIT, "en")
    assert errors(text) == [], text
    data = load_map(text)
    assert dict(data["quiet_hours"]) == {"from": "21:00", "to": "08:00"}
    assert '"21:00"' in text  # quoted: a YAML 1.1 reader takes 21:00 for minutes
    assert data["notifications"][0]["quiet_hours"] == "ignore"


def test_the_same_time_twice_is_pointed_out_at_the_input() -> None:
    values = structured(load_map(VISIT), "en")
    values.values.update(quiet_from="21:00", quiet_to="21:00")
    text = write(values, VISIT, "en")
    assert any("quiet_hours from and to are both 21:00" in e for e in errors(text))
