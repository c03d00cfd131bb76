"""Series of bookings (issue 18): the ``recurrence`` key, the occurrences' starts, the booking
service (the whole series checked before anything is written), the API and the manage link."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bookwise.bookings.recurrence import (
    SeriesRequest,
    SeriesRequestError,
    check_series_request,
    continuous_staff,
    occurrence_starts,
)
from bookwise.documents import parse_document
from bookwise.errors import errors_only
from bookwise.notifications.templates import SHIPPED_TEMPLATES, template_names
from bookwise.workflows.language import FREQUENCIES, Recurrence, Workflow
from bookwise.workflows.loader import CheckContext, check_workflow, read_field_sets

ROOT = Path(__file__).resolve().parent.parent
PARIS = ZoneInfo("Europe/Paris")

# --- the language ---------------------------------------------------------------------------


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


BASE = "id: w\nname: W\nduration: 1h\n"


def test_recurrence_is_read_with_its_defaults(context: CheckContext) -> None:
    workflow, problems = check(BASE, context)
    assert workflow is not None and not problems
    assert workflow.recurrence == Recurrence(allowed=False)
    workflow, problems = check(BASE + "recurrence: {allowed: true}\n", context)
    assert workflow is not None and not problems
    assert workflow.recurrence == Recurrence(True, 12, ("weekly",))
    text = "recurrence: {allowed: true, max_occurrences: 6, frequencies: every_2_weeks}\n"
    workflow, _ = check(BASE + text, context)
    assert workflow is not None
    assert workflow.recurrence == Recurrence(True, 6, ("every_2_weeks",))


def test_the_tutoring_scenario_offers_a_weekly_course(context: CheckContext) -> None:
    checked, problems = check_workflow(
        parse_document((ROOT / "workflows" / "tutoring.yaml").read_text(), "tutoring.yaml"),
        context,
    )
    assert checked is not None and not errors_only(problems)
    assert checked.workflow.recurrence.allowed
    assert "weekly" in checked.workflow.recurrence.frequencies


@pytest.mark.parametrize(
    ("extra", "where", "message"),
    [
        (
            "recurrence:\n  allowed: true\n  max_occurrences: 60\n",
            "w.yaml:6:20",
            "max_occurrences must be a whole number from 2 to 52, got 60",
        ),
        (
            "recurrence:\n  allowed: true\n  max_occurrences: 1\n",
            "w.yaml:6:20",
            "from 2 to 52, got 1",
        ),
        (
            "recurrence:\n  allowed: true\n  frequencies: [weekly, monthly]\n",
            "w.yaml:6:16",
            "frequencies must be weekly, every_2_weeks, every_3_weeks or every_4_weeks",
        ),
        (
            "recurrence:\n  allowed: true\n  frequencies: [weekly, weekly]\n",
            "w.yaml:6:25",
            "weekly is already listed (line 6); list each frequency once",
        ),
        ("recurrence: yes\n", "w.yaml:4:13", "recurrence must be a mapping"),
        ("recurrence: {allowed: true, every: 2}\n", "w.yaml:4:29", "unknown key 'every'"),
    ],
)
def test_recurrence_errors_name_the_line_and_key(
    extra: str, where: str, message: str, context: CheckContext
) -> None:
    workflow, problems = check(BASE + extra, context)
    assert workflow is None
    assert any(p.startswith(where) and message in p for p in problems), problems


def test_settings_of_a_forbidden_recurrence_are_a_warning(context: CheckContext) -> None:
    workflow, problems = check(BASE + "recurrence: {allowed: false, max_occurrences: 4}\n", context)
    assert workflow is not None
    assert any("warning" in p and "max_occurrences has no effect" in p for p in problems)


# --- the occurrences' starts (pure) ----------------------------------------------------------


def test_a_weekly_1800_in_paris_stays_1800_across_the_clock_change() -> None:
    first = datetime(2027, 3, 16, 18, 0, tzinfo=PARIS)  # the clocks go forward on 28 March
    starts = occurrence_starts(first, "weekly", 4, "Europe/Paris")
    local = [s.astimezone(PARIS) for s in starts]
    assert [(d.date(), d.hour, d.minute) for d in local] == [
        (date(2027, 3, 16), 18, 0),
        (date(2027, 3, 23), 18, 0),
        (date(2027, 3, 30), 18, 0),
        (date(2027, 4, 6), 18, 0),
    ]
    assert starts[2] - starts[1] == timedelta(hours=167)
    assert all(s.tzinfo == UTC for s in starts)


def test_every_two_weeks_and_the_clocks_going_back() -> None:
    first = datetime(2027, 10, 19, 9, 30, tzinfo=PARIS)  # back on 31 October
    starts = occurrence_starts(first, "every_2_weeks", 3, "Europe/Paris")
    assert [s.astimezone(PARIS).strftime("%m-%d %H:%M") for s in starts] == [
        "10-19 09:30",
        "11-02 09:30",
        "11-16 09:30",
    ]
    assert starts[1] - starts[0] == timedelta(days=14, hours=1)


def test_a_skipped_wall_time_is_the_moment_the_clocks_jump() -> None:
    first = datetime(2027, 3, 21, 2, 30, tzinfo=PARIS)  # 02:30 does not exist on 28 March
    starts = occurrence_starts(first, "weekly", 2, "Europe/Paris")
    assert starts[1].astimezone(PARIS).strftime("%m-%d %H:%M") == "03-28 03:00"


def test_a_naive_first_start_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        occurrence_starts(datetime(2027, 3, 16, 18, 0), "weekly", 2, "Europe/Paris")


ZONES = ["Europe/Paris", "America/New_York", "Australia/Sydney", "UTC", "Asia/Kolkata"]


@settings(max_examples=200, deadline=None)
@given(
    day=st.dates(min_value=date(2025, 1, 1), max_value=date(2035, 12, 31)),
    minute=st.integers(min_value=6 * 60, max_value=22 * 60).map(lambda m: m - m % 15),
    zone=st.sampled_from(ZONES),
    frequency=st.sampled_from(sorted(FREQUENCIES)),
    count=st.integers(min_value=1, max_value=52),
)
def test_occurrences_keep_the_weekday_and_the_wall_time(
    day: date, minute: int, zone: str, frequency: str, count: int
) -> None:
    tz = ZoneInfo(zone)
    first = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=tz)
    starts = occurrence_starts(first, frequency, count, zone)
    assert len(starts) == count and starts == sorted(set(starts))
    weeks = FREQUENCIES[frequency]
    for index, start in enumerate(starts):
        local = start.astimezone(tz)
        assert local.date() == day + timedelta(weeks=weeks * index)
        # The wall time is kept (no DST transition happens between 06:00 and 22:00 here).
        assert (local.hour, local.minute) == (minute // 60, minute % 60)
        # Real time between two occurrences is the weeks, give or take the clock change.
        if index:
            gap = start - starts[index - 1]
            assert abs(gap - timedelta(weeks=weeks)) <= timedelta(hours=1)


def test_the_workflow_decides_which_series_may_be_asked() -> None:
    recurrence = Recurrence(True, 6, ("weekly",))
    check_series_request(recurrence, SeriesRequest("weekly", 6))
    for request, code in [
        (SeriesRequest("every_2_weeks", 3), "invalid_frequency"),
        (SeriesRequest("weekly", 7), "invalid_count"),
        (SeriesRequest("weekly", 1), "invalid_count"),
    ]:
        with pytest.raises(SeriesRequestError) as caught:
            check_series_request(recurrence, request)
        assert caught.value.code == code
    with pytest.raises(SeriesRequestError) as caught:
        check_series_request(Recurrence(), SeriesRequest("weekly", 2))
    assert caught.value.code == "series_not_allowed"


def test_continuity_prefers_one_staff_member_free_for_every_occurrence() -> None:
    a, b, c = (datetime(2027, 3, d, 9, tzinfo=UTC) for d in (1, 8, 15))
    free = {a: [1, 2, 3], b: [2, 3], c: [3, 2]}
    assert continuous_staff(free, [a, b, c], [1, 2, 3]) == 2
    assert continuous_staff(free, [a, b, c], [3, 2, 1]) == 3
    assert continuous_staff({a: [1], b: [2]}, [a, b], [1, 2]) is None
    assert continuous_staff(free, [], [1, 2, 3]) is None
