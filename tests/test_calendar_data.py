"""Calendar data files: parsed into plain data, every mistake named with its place."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bookwise.calendars.data import HoursRange, check_calendar_data
from bookwise.documents import parse_document, read_document
from bookwise.errors import errors_only

ROOT = Path(__file__).resolve().parent.parent
KNOWN = {"hr-interview": ("recruiter",), "tutoring": ("tutor",), "patient-visit": ("doctor",)}

BASE = """calendars:
  - slug: clinic
    name: Clinic
    timezone: Europe/Paris
    hours:
      mon: ["09:00-12:00", "14:00-18:00"]
    staff:
      - {id: ann, name: Ann, email: ann@example.org, tags: [doctor]}
    services:
      - workflow: patient-visit
"""


def check(text: str) -> tuple[list, list[str]]:
    specs, problems = check_calendar_data(parse_document(text, "c.yaml"), KNOWN)
    return specs, [str(p) for p in problems]


def test_demo_data_is_clean() -> None:
    specs, problems = check_calendar_data(
        read_document(ROOT / "demo" / "calendars.yaml"),
        {
            "hr-interview": ("recruiter",),
            "patient-visit": ("doctor",),
            "tutoring": ("tutor",),
            "tutoring-group": ("tutor", "group"),
        },
    )
    assert problems == []
    assert [c.slug for c in specs] == ["northwind-hr", "clinique-des-lilas", "bright-minds"]
    assert {c.timezone for c in specs} == {"Europe/Paris", "America/New_York"}


def test_hours_and_time_off_are_parsed() -> None:
    specs, problems = check(
        BASE.replace(
            "tags: [doctor]}",
            "tags: [doctor], hours: {tue: ['08:00-24:00']},\n"
            "         time_off: [{start: 2026-12-24, end: 2026-12-25, reason: Christmas},\n"
            "                    {start: '2026-03-29T01:30', end: '2026-03-29T04:00'}]}",
        )
    )
    assert problems == []
    calendar = specs[0]
    assert calendar.hours == (HoursRange(0, 540, 720), HoursRange(0, 840, 1080))
    ann = calendar.staff[0]
    assert ann.hours == (HoursRange(1, 480, 1440),)
    christmas, night = ann.time_off
    # Whole days in the calendar's zone, the end day included (Paris is UTC+1 in December).
    assert christmas.start == datetime(2026, 12, 23, 23, 0, tzinfo=UTC)
    assert christmas.end == datetime(2026, 12, 25, 23, 0, tzinfo=UTC)
    # A local time across the spring change: 01:30 is +01:00, 04:00 is +02:00.
    assert night.start == datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    assert night.end == datetime(2026, 3, 29, 2, 0, tzinfo=UTC)
    assert calendar.services[0].staff is None  # pooled by tags


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "Europe/Paris",
            "Europe/Pariss",
            "c.yaml:4:15: calendars[0].timezone: unknown time zone 'Europe/Pariss'; did you mean "
            "'Europe/Paris'?",
        ),
        (
            '"09:00-12:00"',
            '"9h-12h"',
            "c.yaml:6:13: calendars[0].hours.mon[0]: '9h-12h' is not a time range; write it like "
            "09:00-12:30",
        ),
        (
            '"14:00-18:00"',
            '"11:00-18:00"',
            "c.yaml:6:28: calendars[0].hours.mon[1]: '11:00-18:00' overlaps another range of mon",
        ),
        (
            '"14:00-18:00"',
            '"18:00-14:00"',
            "c.yaml:6:28: calendars[0].hours.mon[1]: '18:00-14:00' ends before it starts",
        ),
        (
            "mon:",
            "monday:",
            "c.yaml:6:7: calendars[0].hours: unknown key 'monday'; did you mean 'mon'?",
        ),
        (
            "workflow: patient-visit",
            "workflow: patient-visits",
            "c.yaml:10:19: calendars[0].services[0].workflow: no workflow 'patient-visits'; "
            "did you mean 'patient-visit'?",
        ),
        (
            "email: ann@example.org",
            "email: ann-at-example",
            "c.yaml:8:37: calendars[0].staff[0].email: 'ann-at-example' is not an e-mail address",
        ),
        ("    name: Clinic\n", "", "c.yaml:2:5: calendars[0]: missing required key 'name'"),
        (
            "workflow: patient-visit",
            "workflow: patient-visit\n        staff: [bob]",
            "c.yaml:11:17: calendars[0].services[0].staff[0]: "
            "no staff member 'bob' in this calendar",
        ),
        (
            "tags: [doctor]}",
            "tags: [doctor], time_off: [{start: 2026-12-24, end: 2026-12-20}]}",
            "calendars[0].staff[0].time_off[0].end: time off must end after it starts",
        ),
        (
            "tags: [doctor]}",
            "tags: [doctor], time_off: [{start: 2026-02-30, end: 2026-03-02}]}",
            "calendars[0].staff[0].time_off[0].start: '2026-02-30' is not a real date or time",
        ),
        (
            "tags: [doctor]}",
            "tags: [doctor], time_off: [{start: next monday, end: 2026-03-02}]}",
            "'next monday' is not a date or time; "
            "write 2026-12-24 (a whole day) or 2026-12-24T14:00",
        ),
        (
            "    timezone: Europe/Paris\n",
            "    timezone: Europe/Paris\n    booking_page: {embed_origins: [https://x.org/page]}\n",
            "'https://x.org/page' is not a web origin",
        ),
        (
            "    timezone: Europe/Paris\n",
            "    timezone: Europe/Paris\n    locale: zz\n",
            "calendars[0].locale: unknown language 'zz'",
        ),
        (
            "tags: [doctor]}",
            "tags: [doctor], time_off: [{start: '2026-03-29T02:30', end: '2026-03-29T04:00'}]}",
            "'2026-03-29T02:30' does not exist in Europe/Paris: the clocks skip that hour",
        ),
        (
            "tags: [doctor]}",
            "tags: [doctor], time_off: [{start: 2026-12-24, end: 2026-12-24},\n"
            "                           {start: 2026-12-24, end: 2026-12-24}]}",
            "calendars[0].staff[0].time_off[1]: the same time off is listed twice",
        ),
        (
            "slug: clinic",
            "slug: admin",
            "c.yaml:2:11: calendars[0].slug: 'admin' is a reserved address of Bookwise",
        ),
    ],
)
def test_mistakes_are_named(old: str, new: str, expected: str) -> None:
    assert old in BASE
    specs, problems = check(BASE.replace(old, new, 1))
    assert specs == []
    assert any(expected in p for p in problems), problems


def test_duplicates_are_refused() -> None:
    text = BASE + BASE.split("calendars:\n", 1)[1]
    specs, problems = check(text)
    assert specs == []
    assert any("calendar 'clinic' is already defined at calendars[0]" in p for p in problems)
    doubled_staff = BASE.replace(
        "    services:",
        "      - {id: ann, name: Ann B, email: annb@example.org}\n    services:",
    )
    _, problems = check(doubled_staff)
    assert any("staff id 'ann' is already used at staff[0]" in p for p in problems)


def test_an_ambiguous_local_time_is_a_warning() -> None:
    specs, problems = check(
        BASE.replace(
            "tags: [doctor]}",
            "tags: [doctor], time_off: [{start: '2026-10-25T02:30', end: '2026-10-25T05:00'}]}",
        )
    )
    assert specs
    assert any("happens twice in Europe/Paris" in p and "warning:" in p for p in problems)
    assert specs[0].staff[0].time_off[0].start == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_a_calendar_language_the_instance_does_not_offer() -> None:
    specs, problems = check_calendar_data(
        parse_document(
            BASE.replace(
                "    timezone: Europe/Paris\n", "    timezone: Europe/Paris\n    locale: it\n"
            ),
            "c.yaml",
        ),
        KNOWN,
        "en",
        ("en", "fr"),
    )
    assert specs
    assert "warning: calendars[0].locale: language 'it' is not among the instance's locales" in (
        str(problems[0])
    )


def test_empty_pool_is_a_warning() -> None:
    specs, problems = check(BASE.replace("tags: [doctor]", "tags: [nurse]"))
    assert specs and problems
    assert (
        "warning: calendars[0].services[0].workflow: "
        "no staff member of this calendar has the tags doctor" in problems[0]
    )
    assert not errors_only(
        check_calendar_data(
            parse_document(BASE.replace("tags: [doctor]", "tags: [nurse]"), "c.yaml"), KNOWN
        )[1]
    )


def with_plugins(line: str) -> str:
    return BASE.replace("    timezone: Europe/Paris\n", f"    timezone: Europe/Paris\n{line}")


def test_the_plugins_a_calendar_uses() -> None:
    specs, problems = check(with_plugins("    plugins: [jitsi, sms_http]\n"))
    assert problems == []
    assert specs[0].plugins == ("jitsi", "sms_http")
    # Where each name is written, for the loader to name the file and line (it alone knows the
    # instance's plugins).
    assert [(p.file, p.line, p.key) for p in specs[0].plugin_places] == [
        ("c.yaml", 5, "calendars[0].plugins[0]"),
        ("c.yaml", 5, "calendars[0].plugins[1]"),
    ]
    none, problems = check(with_plugins("    plugins: []\n"))
    assert problems == [] and none[0].plugins == ()
    every, problems = check(BASE)
    assert problems == [] and every[0].plugins is None and every[0].plugin_places == ()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("    plugins: [jitsi, jitsi]\n", "c.yaml:5:14: calendars[0].plugins: lists the same item"),
        (
            "    plugins: [jitsi, 42]\n",
            "c.yaml:5:22: calendars[0].plugins[1]: 42 is not a plugin name; write it as under "
            "plugins.enabled in config.yaml, like jitsi",
        ),
        ("    plugins: jitsi\n", "c.yaml:5:14: calendars[0].plugins: expected a list"),
    ],
)
def test_wrong_plugin_lists_are_named_with_their_place(line: str, message: str) -> None:
    specs, problems = check(with_plugins(line))
    assert specs == []
    assert any(p.startswith(message) for p in problems), problems


def test_quiet_hours_of_a_calendar() -> None:
    from bookwise.notifications.quiet import QuietHours

    text = BASE.replace(
        "    timezone: Europe/Paris\n",
        '    timezone: Europe/Paris\n    quiet_hours: {from: "21:00", to: "08:00", email: true}\n',
    )
    (spec,), problems = check(text)
    assert problems == []
    assert spec.quiet_hours == QuietHours(21 * 60, 8 * 60, email=True)
    (spec,), _ = check(BASE)
    assert spec.quiet_hours is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            '{from: "21:00", to: "21:00"}',
            "c.yaml:5:38: calendars[0].quiet_hours.to: quiet_hours from and to",
        ),
        ('{from: "21:00", to: "8:00"}', "'8:00' is not a time of day"),
        ('{from: "21:00"}', "quiet_hours"),
        ('{from: "21:00", to: "08:00", sms: false}', "quiet_hours"),
    ],
)
def test_wrong_quiet_hours_are_named_with_their_place(value: str, expected: str) -> None:
    text = BASE.replace(
        "    timezone: Europe/Paris\n", f"    timezone: Europe/Paris\n    quiet_hours: {value}\n"
    )
    specs, problems = check(text)
    assert specs == []
    assert any(expected in p for p in problems), problems
