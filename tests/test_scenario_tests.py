"""Scenario tests written in a workflow (``tests:``): each kind passes and fails with its
``expected ..., got ...``; a mistyped case is a problem at its line, never a crash; `bookwise
validate` runs them (the reference scenarios' own included)."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bookwise.documents import parse_document
from bookwise.errors import Problem, errors_only
from bookwise.workflows.language import Workflow
from bookwise.workflows.loader import CheckContext, CheckedWorkflow, check_workflow
from bookwise.workflows.scenario_tests import cancellation_answer, run_cases, summary
from tests.conftest import ROOT

WORKFLOW = """\
id: lesson
name: Lesson
duration: 1h
slot_step: 30m
buffer: {after: 10m}
booking_window: {min_notice: 12h, max_ahead: 21d}
cancellation: {allowed: true, min_notice: 12h}
staff: {tags: [tutor]}
notifications:
  - {on: confirmed, to: [client, staff], channel: email}
  - {on: cancelled, to: client, channel: email}
  - {on: reminder, before: 24h, to: client, channel: [email, sms]}
"""


def check(tests: str, workflow: str = WORKFLOW) -> tuple[CheckedWorkflow | None, list[Problem]]:
    text = workflow + "tests:\n" + textwrap.indent(textwrap.dedent(tests), "  ")
    return check_workflow(parse_document(text, "lesson.yaml"), CheckContext())


def results(tests: str, workflow: str = WORKFLOW) -> list[Any]:
    checked, problems = check(tests, workflow)
    assert checked is not None, [str(p) for p in problems]
    return run_cases(checked.workflow, checked.definition["tests"])


def failures(tests: str) -> list[str]:
    return [message for result in results(tests) for message in result.messages()]


def errors(tests: str) -> list[str]:
    checked, problems = check(tests)
    assert checked is None
    return [str(p) for p in errors_only(problems)]


# --- slots -----------------------------------------------------------------------------------


def test_slots_offered_pass_and_fail_with_the_times() -> None:
    scene = """\
    - name: Mondays
      given: {timezone: Europe/Paris, hours: {mon: ["09:00-11:00"]}}
      slots: {on: 2027-03-29, offered: [%s]}
    """
    assert failures(scene % '"09:00", "09:30", "10:00"') == []
    assert failures(scene % '"09:00", "09:30"') == [
        "test 'Mondays': expected 09:00, 09:30, got 09:00, 09:30, 10:00"
    ]


def test_slots_includes_and_excludes() -> None:
    tests = """\
    - name: Wrong on both sides
      given: {hours: {mon: ["09:00-11:00"]}}
      slots: {on: 2027-03-29, includes: ["09:00", "10:30"], excludes: ["09:30"]}
    """
    assert failures(tests) == [
        "test 'Wrong on both sides': expected 10:30 among the times offered, "
        "got 09:00, 09:30, 10:00",
        "test 'Wrong on both sides': expected 09:30 not offered, got 09:00, 09:30, 10:00",
    ]


def test_the_day_the_clocks_go_forward() -> None:
    tests = """\
    - name: Spring forward
      given: {timezone: Europe/Paris, hours: {sun: ["01:00-05:00"]}}
      slots: {on: 2027-03-28, offered: ["01:00", "01:30", "03:00", "03:30", "04:00"]}
    """
    assert failures(tests) == []


def test_bookings_buffers_time_off_and_tags_shape_the_pool() -> None:
    tests = """\
    - name: Booked, on leave, or not a tutor
      given:
        hours: {mon: ["16:00-18:00"]}
        staff: [leo, maya, {id: sam, tags: [accounting]}]
        bookings: [{start: "2027-03-29 16:00", staff: leo}]
        time_off: [{staff: maya, start: "2027-03-29 17:30", end: "2027-03-29 18:00"}]
      slots: {on: 2027-03-29, offered: ["16:00"]}
    - name: Everyone away that day
      given:
        hours: {mon: ["16:00-18:00"]}
        time_off: [{start: 2027-03-29, end: 2027-03-29}]
      slots: {on: 2027-03-29, offered: []}
    """
    assert failures(tests) == []


def test_now_and_the_booking_window() -> None:
    tests = """\
    - name: Not within 12 hours
      given: {now: "2027-03-28 22:00"}
      slots: {on: 2027-03-29, excludes: ["09:00", "09:30"], includes: ["10:00"]}
    - name: Not beyond 21 days
      given: {now: "2027-03-01 09:00"}
      slots: {on: 2027-03-29, offered: []}
    """
    assert failures(tests) == []


def test_a_full_group_is_not_offered() -> None:
    group = WORKFLOW.replace("duration: 1h\n", "duration: 1h\ncapacity: {places: 3, per: slot}\n")
    tests = """\
    - name: Full
      given: {hours: {mon: ["16:00-17:00"]}, bookings: [{start: "2027-03-29 16:00", clients: 3}]}
      slots: {on: 2027-03-29, offered: []}
    - name: One place left
      given: {hours: {mon: ["16:00-17:00"]}, bookings: [{start: "2027-03-29 16:00", clients: 2}]}
      slots: {on: 2027-03-29, offered: ["16:00"]}
    """
    assert [r.failures for r in results(tests, group)] == [(), ()]


# --- messages --------------------------------------------------------------------------------

MESSAGES = """\
- name: Messages
  given: {timezone: Europe/Paris}
  book: "2027-03-29 09:00"
  messages:
    - {on: confirmed, to: client, channel: email, at: booking}
    - {on: confirmed, to: staff, channel: email, at: booking}
    - {on: cancelled, to: client, channel: email}
    - {on: reminder, to: client, channel: email, at: "%s"}
    - {on: reminder, to: client, channel: sms, at: "2027-03-28 09:00"}
"""


def test_messages_pass_and_fail_with_both_lists() -> None:
    assert failures(MESSAGES % "2027-03-28 09:00") == []
    (failure,) = failures(MESSAGES % "2027-03-28 08:00")
    assert failure == (
        "test 'Messages': expected confirmed to client by email at booking; confirmed to staff "
        "by email at booking; cancelled to client by email when it happens; reminder to client "
        "by email at 2027-03-28 08:00; reminder to client by sms at 2027-03-28 09:00, got "
        "confirmed to client by email at booking; confirmed to staff by email at booking; "
        "cancelled to client by email when it happens; reminder to client by email at "
        "2027-03-28 09:00; reminder to client by sms at 2027-03-28 09:00"
    )


def test_a_reminder_across_the_clock_change_counts_real_hours() -> None:
    tests = """\
    - name: Sunday morning in Paris
      given: {timezone: Europe/Paris, hours: {sun: ["09:00-12:00"]}}
      book: "2027-03-28 10:00"
      messages:
        - {on: confirmed, to: client, channel: email, at: booking}
        - {on: confirmed, to: staff, channel: email, at: booking}
        - {on: cancelled, to: client, channel: email}
        - {on: reminder, to: client, channel: email, at: "2027-03-27 09:00"}
        - {on: reminder, to: client, channel: sms, at: "2027-03-27 09:00"}
    """
    assert failures(tests) == []


def test_a_booking_that_cannot_be_made_fails_first() -> None:
    tests = """\
    - name: Saturday
      book: "2027-03-27 10:00"
      cancel: {before: 1h, expect: refused}
    """
    assert failures(tests) == [
        "test 'Saturday': expected 2027-03-27 10:00 to be free to book, got not offered "
        "(offered that day: none)"
    ]


# --- cancellation ----------------------------------------------------------------------------


def test_cancel_allowed_and_refused() -> None:
    tests = """\
    - name: Early enough
      book: "2027-03-29 09:00"
      cancel: {before: 13h, expect: allowed}
    - name: Too late
      book: "2027-03-29 09:00"
      cancel: {at: "2027-03-28 23:00", expect: allowed}
    """
    assert failures(tests) == [
        "test 'Too late': expected cancelling at 2027-03-28 23:00 allowed, got refused "
        "(too late: clients may cancel until 2027-03-28 21:00)"
    ]


def test_cancel_follows_the_workflow_and_its_lifecycle() -> None:
    closed = WORKFLOW.replace("allowed: true, min_notice: 12h", "allowed: false")
    workflow = Workflow.from_definition(
        check(
            """\
            - name: x
              slots: {on: 2027-03-29, includes: ["09:00"]}
            """,
            closed,
        )[0].definition  # type: ignore[union-attr]
    )
    start = datetime(2027, 3, 29, 9, tzinfo=UTC)
    allowed, why = cancellation_answer(
        workflow, start, datetime(2027, 3, 1, tzinfo=UTC), ZoneInfo("UTC")
    )
    assert (allowed, why) == (False, "clients may not cancel online (cancellation: allowed: false)")


def test_the_service_asks_the_same_rule() -> None:
    """bookings.services.client_may_change and the tests share Workflow.client_may_change_at."""
    import inspect

    from bookwise.bookings import services

    assert "client_may_change_at" in inspect.getsource(services.client_may_change)
    assert "workflow.change_deadline" in inspect.getsource(services.change_deadline)


# --- mistakes are problems with their line -----------------------------------------------------


def test_mistakes_in_a_case_name_their_line() -> None:
    tests = """\
    - name: Bad
      given:
        timezone: Europe/Pariss
        staff: [ana]
        bookings: [{start: "2027-02-30 09:00", staff: bob}]
      book: "2027-03-28 02:30"
      messages:
        - {on: confirmd, to: client, channel: telegram}
    """
    found = errors(tests)
    assert any(
        ":17:" in p and "unknown time zone 'Europe/Pariss'; did you mean 'Europe/Paris'" in p
        for p in found
    ), found
    assert any("'2027-02-30 09:00' is not a real date and time" in p for p in found), found
    assert any("no staff member 'bob' in this test" in p for p in found), found
    assert any(
        "this workflow has no event 'confirmd'; did you mean 'confirmed'" in p for p in found
    )
    assert any("this workflow has no channel 'telegram'" in p for p in found), found


def test_a_time_the_clocks_skip_is_refused() -> None:
    tests = """\
    - name: Gap
      given: {timezone: Europe/Paris, hours: {sun: ["01:00-05:00"]}}
      book: "2027-03-28 02:30"
      cancel: {before: 1h, expect: refused}
    """
    (problem,) = errors(tests)
    assert "'2027-03-28 02:30' does not exist in Europe/Paris: the clocks skip that hour" in problem


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("{name: x}", "a test checks something"),
        ("{name: x, cancel: {before: 1h, expect: refused}}", "say when it is, like book:"),
        ("{name: x, slots: {on: 2027-03-29}}", "say which times"),
        ('{name: x, slots: {on: 2027-03-29, offered: [], includes: ["09:00"]}}', "use it alone"),
        ('{name: x, slots: {on: "29/03/2027", offered: []}}', "is not a date"),
        ('{name: x, slots: {on: 2027-03-29, offered: ["9h"]}}', "is not a time of day"),
        (
            '{name: x, book: "2027-03-29 09:00", cancel: {expect: maybe, at: "2027-03-29 08:00"}}',
            "is not one of: allowed, refused",
        ),
        ('{name: x, book: "2027-03-29 09:00", cancel: {expect: refused}}', "say when the client"),
        ("{name: x, slotz: {}}", "unknown key 'slotz'"),
        (
            '{name: x, given: {hours: {mon: ["12:00-09:00"]}}, slots: {on: 2027-03-29, '
            "offered: []}}",
            "ends before it starts",
        ),
        (
            "{name: x, given: {staff: [ana, ana]}, slots: {on: 2027-03-29, offered: []}}",
            "listed twice",
        ),
        ("{name: x, slots: {on: 9999-03-29, offered: []}}", "is not a real date"),
    ],
)
def test_each_mistake_is_a_problem_not_a_crash(case: str, message: str) -> None:
    found = errors(f"- {case}\n")
    assert any(message in p for p in found), found


def test_huge_lists_are_refused_by_the_schema() -> None:
    many = "".join(
        f"- {{name: case {i}, slots: {{on: 2027-03-29, offered: []}}}}\n" for i in range(101)
    )
    assert any("tests" in p and "at most 100" in p for p in errors(many))
    bookings = ", ".join('{start: "2027-03-29 09:00"}' for _ in range(201))
    found = errors(
        f"- {{name: x, given: {{bookings: [{bookings}]}}, "
        "slots: {on: 2027-03-29, offered: []}}\n"
    )
    assert found


def test_two_cases_with_one_name() -> None:
    tests = """\
    - {name: Same, slots: {on: 2027-03-29, includes: ["09:00"]}}
    - {name: Same, slots: {on: 2027-03-29, includes: ["09:00"]}}
    """
    assert any("another test is already named 'Same'" in p for p in errors(tests))


def test_summary() -> None:
    passing = results("- {name: a, slots: {on: 2027-03-29, includes: ['09:00']}}\n")
    assert summary(passing) == "1 test passed"
    mixed = results(
        "- {name: a, slots: {on: 2027-03-29, includes: ['09:00']}}\n"
        "- {name: b, slots: {on: 2027-03-29, includes: ['08:00']}}\n"
    )
    assert summary(mixed) == "1 of 2 tests failed"


# --- bookwise validate -------------------------------------------------------------------------


def test_validate_prints_a_failing_case_at_its_line_and_exits_1(
    bookwise_cli: Any, config_file: Path, tmp_path: Path
) -> None:
    path = tmp_path / "lesson.yaml"
    path.write_text(WORKFLOW + "tests:\n" + textwrap.indent(MESSAGES % "2027-03-28 08:00", "  "))
    result = bookwise_cli("validate", "--config", str(config_file), str(path))
    assert result.exit_code == 1
    line = WORKFLOW.count("\n") + 2
    (printed,) = [row for row in result.stderr.splitlines() if "test '" in row]
    assert printed.startswith(f"{path}:{line}: test 'Messages': expected confirmed to client")
    assert printed.endswith(
        ", got confirmed to client by email at booking; confirmed to staff by "
        "email at booking; cancelled to client by email when it happens; "
        "reminder to client by email at 2027-03-28 09:00; reminder to client "
        "by sms at 2027-03-28 09:00"
    )
    path.write_text(WORKFLOW + "tests:\n" + textwrap.indent(MESSAGES % "2027-03-28 09:00", "  "))
    passed = bookwise_cli("validate", "--config", str(config_file), str(path))
    assert passed.exit_code == 0, passed.stderr
    assert passed.stdout.strip().endswith("1 test passed)")


def test_the_reference_scenarios_pass_their_own_tests(bookwise_cli: Any, config_file: Path) -> None:
    result = bookwise_cli("validate", "--config", str(config_file), str(ROOT / "workflows"))
    assert result.exit_code == 0, result.stderr
    for name in ("hr-interview", "patient-visit", "tutoring", "tutoring-group"):
        (line,) = [row for row in result.stdout.splitlines() if f"workflows/{name}.yaml: ok" in row]
        count = int(line.rsplit(", ", 1)[1].split()[0])
        assert count >= 3 and line.endswith("tests passed)"), line
