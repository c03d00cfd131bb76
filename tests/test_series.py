"""Series of bookings (issue 18): the ``recurrence`` key, the occurrences' starts, the booking
service (the whole series checked before anything is written), the API and the manage link."""

from __future__ import annotations

import json
import re
import shutil
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.serving import make_server

from bookwise.bookings.ics import CalendarEvent, SeriesRule, build_ics
from bookwise.bookings.models import Booking, BookingEvent, BookingSeries
from bookwise.bookings.recurrence import (
    SeriesRequest,
    SeriesRequestError,
    check_series_request,
    continuous_staff,
    occurrence_starts,
)
from bookwise.bookings.series import (
    cancel_occurrences,
    create_series,
    find_series_by_manage_token,
    series_manage_token,
)
from bookwise.bookings.services import BookingRequest, find_service
from bookwise.config import load_settings
from bookwise.database import open_database
from bookwise.db import unit_of_work
from bookwise.documents import parse_document
from bookwise.errors import errors_only
from bookwise.models import metadata
from bookwise.notifications.delivery import Dispatcher
from bookwise.notifications.models import Notification
from bookwise.notifications.templates import SHIPPED_TEMPLATES, template_names
from bookwise.workflows.language import FREQUENCIES, Recurrence, Workflow
from bookwise.workflows.loader import CheckContext, check_workflow, read_field_sets
from tests.conftest import (
    SCENARIO,
    TEST_NOW,
    Inbox,
    Loaded,
    add_workflow_version,
    base_config,
    write_config,
)

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


# --- the booking service and the API (a real database) ---------------------------------------

URL = "/api/v1/calendars/acme/services"
CONSULT = (ROOT / "tests" / "data" / "scenario" / "workflows" / "consult.yaml").read_text()


def consult_with(
    extra: str, staff: str = "staff: {tags: [consultant], assignment: round_robin}"
) -> str:
    text = CONSULT.replace("staff: {tags: [consultant], assignment: round_robin}", staff)
    return text + extra


SERIES = "recurrence: {allowed: true, max_occurrences: 12, frequencies: [weekly, every_2_weeks]}\n"


def in_days(days: int, hour: int = 10) -> datetime:
    day = TEST_NOW.astimezone(PARIS).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, 0, tzinfo=PARIS)


def body(start: datetime, count: int = 4, **more: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "start": start.isoformat(),
        "client": {"name": "Zoé Martin", "email": "zoe@example.org", "locale": "fr"},
        "answers": {"topic": "Maths"},
        "consent": True,
        "recurrence": {"frequency": "weekly", "count": count},
    }
    data.update(more)
    return data


def counts(app: Any) -> dict[str, int]:
    engine = app.extensions["bookwise"].database.engine
    with engine.connect() as connection:
        return {
            t.name: connection.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in metadata.sorted_tables
        }


@pytest.fixture
def series_app(scenario: Loaded, scenario_app: Any) -> Any:
    add_workflow_version(scenario.settings, scenario.database, consult_with(SERIES))
    return scenario_app


def single(api: Any, start: datetime, staff: str | None = None) -> dict[str, Any]:
    data = {
        "start": start.isoformat(),
        "client": {"name": "Other", "email": "other@example.org"},
        "answers": {"topic": "x"},
        "consent": True,
    }
    if staff:
        data["staff"] = staff
    response = api.post(f"{URL}/consult/bookings", json=data)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_a_weekly_series_is_booked_in_one_go(series_app: Any) -> None:
    api = series_app.test_client()
    listed = {s["id"]: s for s in api.get(URL).get_json()["services"]}
    assert listed["consult"]["recurrence"] == {
        "max_occurrences": 12,
        "frequencies": ["weekly", "every_2_weeks"],
    }
    assert listed["workshop"]["recurrence"] is None
    response = api.post(f"{URL}/consult/bookings", json=body(in_days(3), 4))
    assert response.status_code == 201, response.get_json()
    series = response.get_json()["series"]
    starts = [datetime.fromisoformat(o["start"]) for o in series["occurrences"]]
    assert starts == [in_days(3 + 7 * k) for k in range(4)]
    assert {o["state"] for o in series["occurrences"]} == {"confirmed"}
    # One tutor for the whole course.
    assert len({o["staff"] for o in series["occurrences"]}) == 1
    assert response.headers["Location"].endswith(f"/manage/{series['manage_token']}")
    again = api.get(f"/api/v1/manage/{series['manage_token']}").get_json()["series"]
    assert again["occurrences"] == series["occurrences"]
    # Each occurrence's own link still works.
    engine = series_app.extensions["bookwise"].database.engine
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(Booking.uid, Booking.manage_token).where(Booking.series_id.is_not(None))
        ).all()
    assert len(rows) == 4
    own = api.get(f"/api/v1/manage/{rows[0].uid}-{rows[0].manage_token}")
    assert own.status_code == 200 and own.get_json()["status"] == "confirmed"
    listed = {o["manage_token"] for o in series["occurrences"]}
    assert listed == {f"{row.uid}-{row.manage_token}" for row in rows}


def test_a_series_with_one_taken_occurrence_writes_nothing(series_app: Any) -> None:
    api = series_app.test_client()
    taken = in_days(3 + 14)
    for _ in range(3):  # every consultant is busy at the third occurrence
        single(api, taken)
    before = counts(series_app)
    response = api.post(f"{URL}/consult/bookings", json=body(in_days(3), 4))
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "series_conflict"
    assert [datetime.fromisoformat(s) for s in error["unavailable"]] == [taken]
    assert [o["free"] for o in error["occurrences"]] == [True, True, False, True]
    assert "Nothing was booked" in error["message"]
    assert counts(series_app) == before
    # The client accepts the series without it.
    response = api.post(f"{URL}/consult/bookings", json=body(in_days(3), 4, skip_unavailable=True))
    assert response.status_code == 201, response.get_json()
    states = [o["state"] for o in response.get_json()["series"]["occurrences"]]
    assert states == ["confirmed", "confirmed", "skipped", "confirmed"]


def test_the_series_prefers_one_staff_member_free_every_time(series_app: Any) -> None:
    api = series_app.test_client()
    single(api, in_days(10), None)  # takes someone at the 2nd occurrence
    single(api, in_days(17), None)  # and someone else at the 3rd
    series = api.post(f"{URL}/consult/bookings", json=body(in_days(3), 4)).get_json()["series"]
    staff = {o["staff"] for o in series["occurrences"]}
    assert len(staff) == 1


@pytest.mark.parametrize(
    ("recurrence", "status", "code"),
    [
        ({"frequency": "every_3_weeks", "count": 3}, 422, "invalid_frequency"),
        ({"frequency": "weekly", "count": 13}, 422, "invalid_count"),
        ({"frequency": "weekly", "count": 1}, 422, "invalid_count"),
        ({"frequency": "weekly", "count": "4"}, 400, "invalid_recurrence"),
        ("weekly", 400, "invalid_recurrence"),
        ({"frequency": "weekly", "count": 4, "until": "x"}, 400, "invalid_recurrence"),
    ],
)
def test_bad_series_requests_are_clear_errors(
    series_app: Any, recurrence: Any, status: int, code: str
) -> None:
    api = series_app.test_client()
    before = counts(series_app)
    response = api.post(f"{URL}/consult/bookings", json=body(in_days(3), recurrence=recurrence))
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code
    assert counts(series_app) == before


def test_a_service_without_recurrence_refuses_a_series(scenario_app: Any) -> None:
    api = scenario_app.test_client()
    response = api.post(f"{URL}/consult/bookings", json=body(in_days(3)))
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "series_not_allowed"


def test_cancel_one_occurrence_then_the_rest(series_app: Any) -> None:
    api = series_app.test_client()
    series = api.post(f"{URL}/consult/bookings", json=body(in_days(3), 5)).get_json()["series"]
    token = series["manage_token"]
    second = series["occurrences"][1]["start"]
    response = api.post(f"/api/v1/manage/{token}/cancel", json={"occurrence": second})
    assert response.status_code == 200, response.get_json()
    states = [o["state"] for o in response.get_json()["series"]["occurrences"]]
    assert states == ["confirmed", "cancelled", "confirmed", "confirmed", "confirmed"]
    third = series["occurrences"][3]["start"]
    response = api.post(f"/api/v1/manage/{token}/cancel", json={"from": third})
    states = [o["state"] for o in response.get_json()["series"]["occurrences"]]
    assert states == ["confirmed", "cancelled", "confirmed", "cancelled", "cancelled"]
    response = api.post(f"/api/v1/manage/{token}/cancel", json={"rest": True})
    states = [o["state"] for o in response.get_json()["series"]["occurrences"]]
    assert states == ["cancelled"] * 5
    response = api.post(f"/api/v1/manage/{token}/cancel", json={"rest": True})
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "nothing_to_cancel"
    bad = api.post(f"/api/v1/manage/{token}/cancel", json={"occurrence": "2020-01-01T10:00Z"})
    assert bad.status_code == 404
    both = api.post(f"/api/v1/manage/{token}/cancel", json={"rest": True, "from": second})
    assert both.status_code == 400
    engine = series_app.extensions["bookwise"].database.engine
    with engine.connect() as connection:
        assert connection.execute(sa.select(BookingSeries.sequence)).scalar_one() == 3


def test_a_tampered_series_token_finds_nothing(series_app: Any) -> None:
    api = series_app.test_client()
    series = api.post(f"{URL}/consult/bookings", json=body(in_days(3), 2)).get_json()["series"]
    token = series["manage_token"]
    wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert api.get(f"/api/v1/manage/{wrong}").status_code == 404
    assert api.post(f"/api/v1/manage/{wrong}/cancel", json={"rest": True}).status_code == 404
    assert api.get(f"/manage/{wrong}").status_code == 404
    assert api.get(f"/manage/{wrong}/booking.ics").status_code == 404
    page = api.get(f"/manage/{token}")
    assert page.status_code == 200
    assert "no-store" in page.headers["Cache-Control"]
    assert api.get(f"/api/v1/manage/{token}").headers["Cache-Control"].count("no-store") == 1


# --- concurrency: a series racing single bookings, over real HTTP -----------------------------

CHOOSES = "staff: {tags: [consultant], client_chooses: true}"


def _post_json(url: str, data: dict[str, Any], number: int) -> tuple[int, str]:
    headers = {"Content-Type": "application/json", "X-Forwarded-For": f"10.0.1.{number + 1}"}
    request = urllib.request.Request(url, data=json.dumps(data).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
            return response.status, "created"
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())["error"]["code"]


@pytest.fixture
def served(scenario: Loaded, clock: Any) -> Any:
    from bookwise.app import create_app

    add_workflow_version(scenario.settings, scenario.database, consult_with(SERIES, CHOOSES))
    settings = scenario.settings
    settings = replace(settings, security=replace(settings.security, behind_proxies=1))
    app = create_app(settings, clock=clock)
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join()
    app.extensions["bookwise"].database.engine.dispose()


def test_a_series_racing_single_bookings_never_double_books(served: str, scenario: Loaded) -> None:
    racers = 16
    first, contested = in_days(4), in_days(4 + 14)
    barrier = threading.Barrier(racers)
    results: list[tuple[str, int, str]] = []
    lock = threading.Lock()

    def racer(number: int) -> None:
        client = {"name": f"R{number}", "email": f"r{number}@example.org"}
        if number % 2:
            data = body(first, 4, staff="ana", client=client)
            kind = "series"
        else:
            data = {"start": contested.isoformat(), "staff": "ana", "client": client}
            data |= {"answers": {"topic": "x"}, "consent": True}
            kind = "single"
        barrier.wait()
        outcome = _post_json(f"{served}{URL}/consult/bookings", data, number)
        with lock:
            results.append((kind, *outcome))

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == racers
    statuses = Counter((kind, status, code) for kind, status, code in results)
    assert all(status in (201, 409, 503) for _, status, _ in results), statuses
    assert sum(n for (_, status, _), n in statuses.items() if status == 201) >= 1
    with scenario.database.sessions() as session:
        rows = session.execute(
            sa.select(Booking.start_at, sa.func.count())
            .where(Booking.holds_slot)
            .group_by(Booking.start_at)
        ).all()
    assert rows and all(count == 1 for _, count in rows), rows


# --- messages: one confirmation for the series, one invitation, reminders per occurrence -------

MESSAGES = """notifications:
  - {on: confirmed, to: [client, staff], channel: email}
  - {on: cancelled, to: [client, staff], channel: email}
  - {on: reminder, before: 24h, to: client, channel: email}
"""


@pytest.fixture
def mailing(inbox: Inbox, tmp_path: Path, database_url: str) -> Iterator[Loaded]:
    """The scenario with ``consult`` taking weekly series, e-mail to the loopback SMTP server."""
    workflows = tmp_path / "workflows"
    shutil.copytree(SCENARIO / "workflows", workflows)
    text = consult_with(SERIES, CHOOSES).replace("notifications: []\n", MESSAGES)
    (workflows / "consult.yaml").write_text(text, encoding="utf-8")
    values = base_config(tmp_path, database_url) | {
        "workflows": str(workflows),
        "mail": {"host": "127.0.0.1", "port": inbox.port, "sender": "Acme <b@acme.example>"},
        "plugins": {"enabled": []},
        "base_url": "https://book.acme.example",
    }
    settings = load_settings(write_config(tmp_path / "mailing.yaml", values), environ={})
    database = open_database(settings)
    from bookwise import instance

    instance.load_calendar_files(settings, database, [SCENARIO / "calendars.yaml"])
    yield Loaded(settings, database)
    database.engine.dispose()


def book_series(loaded: Loaded, start: datetime, count: int, now: datetime) -> str:
    with unit_of_work(loaded.database.sessions, write=True) as session:
        context = find_service(session, "acme", "consult")
        request = BookingRequest(
            start=start,
            staff="ana",
            locale="en",
            values={"name": "Zoé Martin", "email": "zoe@example.org", "topic": "Maths"},
            consent=True,
        )
        series = create_series(
            session, context, request, SeriesRequest("weekly", count), now, plugins=None
        )
        return series_manage_token(series)


def ics_of(message: Any) -> icalendar.Event:
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            calendar = icalendar.Calendar.from_ical(part.get_payload(decode=True))
            return calendar.walk("VEVENT")[0]
    raise AssertionError(f"no calendar file in {message['Subject']!r}")


def test_one_confirmation_lists_the_series_with_one_invitation(
    mailing: Loaded, inbox: Inbox, now: datetime
) -> None:
    first = in_days(3, 18)
    token = book_series(mailing, first, 4, now)
    with mailing.database.sessions() as session:
        reminders = session.scalar(
            sa.select(sa.func.count())
            .select_from(Notification)
            .where(Notification.event == "reminder")
        )
    assert reminders == 4  # one before each occurrence
    Dispatcher(mailing.settings, mailing.database, clock=lambda: now).drain()
    (confirmation,) = inbox.to("zoe@example.org")
    (staff,) = inbox.to("ana@acme.example")
    text = str(
        next(p for p in confirmation.walk() if p.get_content_type() == "text/plain").get_content()
    )
    assert "Every session of the series (4)" in text
    assert text.count("\n- ") >= 4
    assert f"/manage/{token}" in text
    event = ics_of(confirmation)
    assert event["UID"] == f"{token.split('-')[0]}@bookwise"
    rule = event["RRULE"]
    assert rule["FREQ"] == ["WEEKLY"] and rule["INTERVAL"] == [1] and rule["COUNT"] == [4]
    assert "EXDATE" not in event
    first_sequence = int(event["SEQUENCE"])
    assert "Every session of the series (4)" in str(staff.get_body(("plain",)).get_content())

    # Cancelling one occurrence: the series' event again, the occurrence as an EXDATE, a higher
    # SEQUENCE.
    inbox.messages.clear()
    second = in_days(10, 18)
    with unit_of_work(mailing.database.sessions, write=True) as session:
        series = find_series_by_manage_token(session, token)
        cancel_occurrences(session, series, now, occurrence=second, plugins=None)
    Dispatcher(mailing.settings, mailing.database, clock=lambda: now).drain()
    (cancelled,) = inbox.to("zoe@example.org")
    event = ics_of(cancelled)
    assert event["UID"] == f"{token.split('-')[0]}@bookwise"
    assert int(event["SEQUENCE"]) > first_sequence
    exdates = [d.dt for d in event["EXDATE"].dts]
    assert exdates == [second]


# --- the public pages, without JavaScript --------------------------------------------------------

ORIGIN = {"Origin": "http://localhost"}


def hidden_inputs(html: str) -> dict[str, str]:
    values = {}
    for tag in re.findall(r"<input[^>]*>", html):
        attributes = dict(re.findall(r'(\w+)="([^"]*)"', tag))
        if attributes.get("type") == "hidden" and "name" in attributes:
            values[attributes["name"]] = unescape(attributes.get("value", ""))
    return values


def test_the_booking_form_books_a_series_without_the_times_not_free(series_app: Any) -> None:
    web = series_app.test_client()
    first = in_days(3)
    for _ in range(3):  # the second occurrence is taken by everyone
        single(series_app.test_client(), in_days(10))
    url = f"/acme/consult/book?start={first.isoformat().replace('+', '%2B')}&tz=Europe/Paris"
    page = web.get(url).get_data(as_text=True)
    assert 'name="repeat"' in page and 'name="repeat_count"' in page and "Every week" in page
    answers = hidden_inputs(page) | {
        "field_name": "Zoé Martin",
        "field_email": "zoe@example.org",
        "field_topic": "Maths",
        "consent": "y",
        "repeat": "weekly",
        "repeat_count": "3",
    }
    before = counts(series_app)
    shown = web.post(url.split("?", maxsplit=1)[0], data=answers, headers=ORIGIN)
    assert shown.status_code == 200
    html = shown.get_data(as_text=True)
    assert html.count('class="occurrence free"') == 2
    assert html.count('class="occurrence not-free"') == 1
    # The time not free may be replaced (by a time that week) or left out, the default.
    assert "Book the series (2 times, and the replacements picked)" in html
    assert '<select name="replacement"' in html and '<option value="">Leave it out' in html
    assert counts(series_app) == before  # nothing written before the client decides
    again = hidden_inputs(html)
    assert again["series_checked"] == "1" and again["series_skip"]
    booked = web.post(url.split("?", maxsplit=1)[0], data=answers | again, headers=ORIGIN)
    assert booked.status_code == 302, booked.get_data(as_text=True)[:3000]
    manage = web.get(booked.headers["Location"], follow_redirects=True)
    text = manage.get_data(as_text=True)
    assert "Your series is booked" in text
    assert text.count("Cancel this one") == 2
    assert "Not booked (not free)" in text
    # Cancel one occurrence from the manage page.
    token = re.search(r"/manage/([\w-]+)/cancel", text).group(1)
    values = hidden_inputs(text)
    occurrence = re.search(r'name="occurrence" value="([^"]+)"', text).group(1)
    done = web.post(
        f"/manage/{token}/cancel",
        data={"form_token": values["form_token"], "occurrence": occurrence},
        headers=ORIGIN,
        follow_redirects=True,
    )
    assert "This occurrence has been cancelled" in done.get_data(as_text=True)
    assert done.get_data(as_text=True).count("Cancel this one") == 1
    ics = web.get(f"/manage/{token}/booking.ics")
    event = icalendar.Calendar.from_ical(ics.data).walk("VEVENT")[0]
    assert event["RRULE"]["COUNT"] == [3]
    assert len(event["EXDATE"].dts) == 2


def test_a_wrong_repeat_count_is_said_on_the_form(series_app: Any) -> None:
    web = series_app.test_client()
    url = f"/acme/consult/book?start={in_days(3).isoformat().replace('+', '%2B')}&tz=Europe/Paris"
    page = web.get(url).get_data(as_text=True)
    data = hidden_inputs(page) | {
        "field_name": "Zoé",
        "field_email": "zoe@example.org",
        "field_topic": "Maths",
        "consent": "y",
        "repeat": "weekly",
        "repeat_count": "40",
    }
    response = web.post(url.split("?", maxsplit=1)[0], data=data, headers=ORIGIN)
    assert response.status_code == 422
    assert "Choose how many times, from 2 to 12." in response.get_data(as_text=True)


# --- the series' calendar file (pure) ---------------------------------------------------------


def test_the_series_event_has_its_rule_exdates_and_rdates() -> None:
    first = datetime(2027, 3, 16, 18, 0, tzinfo=PARIS)
    starts = occurrence_starts(first, "every_2_weeks", 4, "Europe/Paris")
    moved = datetime(2027, 4, 15, 17, 0, tzinfo=PARIS)
    event = CalendarEvent(
        uid="abc@bookwise",
        sequence=3,
        start=first,
        end=first + timedelta(hours=1),
        timezone="Europe/Paris",
        summary="Tutoring",
        stamp=datetime(2027, 3, 1, tzinfo=UTC),
        repeat=SeriesRule(
            weeks=2,
            count=4,
            exdates=(starts[1], starts[2]),
            rdates=(moved,),
            last_end=starts[-1] + timedelta(hours=1),
        ),
    )
    data = build_ics(event, "REQUEST")
    text = data.decode()
    assert "RRULE:FREQ=WEEKLY;COUNT=4;INTERVAL=2" in text or (
        "RRULE:FREQ=WEEKLY;INTERVAL=2;COUNT=4" in text
    )
    vevent = icalendar.Calendar.from_ical(data).walk("VEVENT")[0]
    assert [d.dt for d in vevent["EXDATE"].dts] == [starts[1], starts[2]]
    # The EXDATEs keep the local 18:00, after the clocks changed (UTC+2), in the event's zone.
    assert "EXDATE;TZID=Europe/Paris:20270330T180000,20270413T180000" in text
    assert [d.dt for d in vevent["RDATE"].dts] == [moved]
    assert int(vevent["SEQUENCE"]) == 3


def test_cancelling_the_rest_tells_the_client_once(
    mailing: Loaded, inbox: Inbox, now: datetime
) -> None:
    token = book_series(mailing, in_days(3, 18), 3, now)
    Dispatcher(mailing.settings, mailing.database, clock=lambda: now).drain()
    inbox.messages.clear()
    with unit_of_work(mailing.database.sessions, write=True) as session:
        series = find_series_by_manage_token(session, token)
        cancelled = cancel_occurrences(session, series, now, rest_from=now, plugins=None)
        assert len(cancelled) == 3
    Dispatcher(mailing.settings, mailing.database, clock=lambda: now).drain()
    (message,) = inbox.to("zoe@example.org")
    assert len(inbox.to("ana@acme.example")) == 1  # the staff member too, once
    text = str(message.get_body(("plain",)).get_content())
    assert "All of these sessions of the series are cancelled:" in text
    assert text.count("\n- ") == 3
    event = ics_of(message)
    assert event["STATUS"] == "CANCELLED"
    with mailing.database.sessions() as session:
        reminders = session.scalars(
            sa.select(Notification.state).where(Notification.event == "reminder")
        ).all()
    assert set(reminders) == {"withdrawn"}


def test_the_whole_series_is_checked_with_one_search(series_app: Any, now: datetime) -> None:
    """The staff's hours are read once for a 12-occurrence series, not once per occurrence."""
    database = series_app.extensions["bookwise"].database
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    sa.event.listen(database.engine, "before_cursor_execute", record)
    try:
        with unit_of_work(database.sessions, write=True) as session:
            context = find_service(session, "acme", "consult")
            request = BookingRequest(
                start=in_days(3),
                values={"name": "Zoé", "email": "zoe@example.org", "topic": "Maths"},
                consent=True,
            )
            series = create_series(
                session, context, request, SeriesRequest("weekly", 12), now, plugins=None
            )
            assert len(series.occurrences) == 12
    finally:
        sa.event.remove(database.engine, "before_cursor_execute", record)
    hours_reads = [s for s in statements if "FROM working_hours" in s]
    assert len(hours_reads) == 1, hours_reads


# --- a series awaiting approval: one request, one approval (or decline), for the whole series -

APPROVAL = """states:
  requested: {initial: true}
  confirmed: {}
  declined: {final: true}
  cancelled: {final: true}
transitions:
  - {name: approve, from: requested, to: confirmed, by: staff}
  - {name: decline, from: requested, to: declined, by: staff}
  - {name: cancel, from: [requested, confirmed], to: cancelled, by: [client, staff]}
"""
APPROVAL_MESSAGES = """notifications:
  - {on: requested, to: [client, staff], channel: email}
  - {on: confirmed, to: [client, staff], channel: email}
  - {on: declined, to: client, channel: email}
  - {on: reminder, before: 24h, to: client, channel: email}
"""


@pytest.fixture
def approving(mailing: Loaded) -> Loaded:
    """``mailing``, with ``consult`` requested first, then approved or declined by staff."""
    text = consult_with(SERIES + APPROVAL, CHOOSES).replace(
        "notifications: []\n", APPROVAL_MESSAGES
    )
    add_workflow_version(mailing.settings, mailing.database, text)
    return mailing


def plain_text(message: Any) -> str:
    return str(message.get_body(("plain",)).get_content())


def move_the_series(loaded: Loaded, token: str, name: str, now: datetime) -> list[str]:
    from bookwise.bookings.series import move_occurrences, series_moves_from

    with unit_of_work(loaded.database.sessions, write=True) as session:
        series = find_series_by_manage_token(session, token)
        pending = series_moves_from(series, series.occurrences[0], now)
        moved = move_occurrences(
            session, pending, name, "staff", "user:1", now, "Fully booked", plugins=None
        )
        return [b.state for b in moved]


def outbox(loaded: Loaded, event: str) -> Counter[str]:
    with loaded.database.sessions() as session:
        rows = session.scalars(sa.select(Notification).where(Notification.event == event)).all()
        return Counter(f"{row.recipient_kind}:{row.state}" for row in rows)


def test_a_series_awaiting_approval_is_requested_and_approved_in_one_message(
    approving: Loaded, inbox: Inbox, now: datetime
) -> None:
    token = book_series(approving, in_days(3, 18), 3, now)
    Dispatcher(approving.settings, approving.database, clock=lambda: now).drain()
    (request,) = inbox.to("zoe@example.org")
    assert "Request received" in request["Subject"]
    assert "Every session of the series (3)" in plain_text(request)
    (to_approve,) = inbox.to("ana@acme.example")
    assert "Approval needed" in to_approve["Subject"]
    assert ics_of(request)["STATUS"] == "TENTATIVE"

    inbox.messages.clear()
    assert move_the_series(approving, token, "approve", now) == ["confirmed"] * 3
    Dispatcher(approving.settings, approving.database, clock=lambda: now).drain()
    (confirmed,) = inbox.to("zoe@example.org")
    text = plain_text(confirmed)
    assert "Confirmed" in confirmed["Subject"]
    assert "Every session of the series (3)" in text and text.count("\n- ") == 3
    event = ics_of(confirmed)
    assert event["STATUS"] == "CONFIRMED" and event["RRULE"]["COUNT"] == [3]
    (approved,) = inbox.to("ana@acme.example")
    assert "Approved" in approved["Subject"]
    assert outbox(approving, "confirmed") == {
        "client:sent": 1,
        "staff:sent": 1,
        "client:withdrawn": 2,
        "staff:withdrawn": 2,
    }


def test_declining_a_series_tells_the_client_once_naming_every_date(
    approving: Loaded, inbox: Inbox, now: datetime
) -> None:
    token = book_series(approving, in_days(3, 18), 4, now)
    Dispatcher(approving.settings, approving.database, clock=lambda: now).drain()
    inbox.messages.clear()
    assert move_the_series(approving, token, "decline", now) == ["declined"] * 4
    Dispatcher(approving.settings, approving.database, clock=lambda: now).drain()
    (declined,) = inbox.to("zoe@example.org")
    text = plain_text(declined)
    assert "This applies to every session of the series you asked for:" in text
    assert text.count("\n- ") == 4
    assert "Reason: Fully booked" in text
    assert ics_of(declined)["STATUS"] == "CANCELLED"
    assert inbox.to("ana@acme.example") == []  # no rule tells staff of a decline
    with approving.database.sessions() as session:
        reminders = session.scalars(
            sa.select(Notification.state).where(Notification.event == "reminder")
        ).all()
    assert set(reminders) == {"withdrawn"}
    # Nothing is left to approve: a second move is refused, nothing changes.
    from bookwise.bookings.services import NotAllowed

    with pytest.raises(NotAllowed):
        move_the_series(approving, token, "approve", now)


def test_an_occurrence_links_to_its_series(series_app: Any) -> None:
    api = series_app.test_client()
    series = api.post(f"{URL}/consult/bookings", json=body(in_days(3), 4)).get_json()["series"]
    second = series["occurrences"][1]["manage_token"]
    own = api.get(f"/api/v1/manage/{second}").get_json()
    assert own["series"] == {
        "id": series["id"],
        "frequency": "weekly",
        "occurrence": 2,
        "of": 4,
        "manage_token": series["manage_token"],
        "manage_url": series["manage_url"],
    }
    page = api.get(f"/manage/{second}?lang=en").get_data(as_text=True)
    assert "Occurrence 2 of 4 of a weekly series" in page
    assert f'href="/manage/{series["manage_token"]}?lang=en"' in page
    french = api.get(f"/manage/{second}?lang=fr").get_data(as_text=True)
    assert "Séance 2 sur 4 d&#39;une série hebdomadaire" in french
    single_booking = single(api, in_days(5))
    assert single_booking["series"] is None
    page = api.get(f"/manage/{single_booking['manage_token']}").get_data(as_text=True)
    assert "See the whole series" not in page


# --- a replacement for an occurrence that is not free -------------------------------------------


def test_replacements_are_checked_against_the_series_rule() -> None:
    from bookwise.bookings.recurrence import Replacement, check_replacements

    starts = occurrence_starts(datetime(2027, 3, 16, 18, tzinfo=PARIS), "weekly", 3, "Europe/Paris")
    hour = timedelta(hours=1)
    moved = datetime(2027, 3, 25, 9, tzinfo=PARIS)  # the second (23 March), two days later
    booked = check_replacements(starts, [Replacement(starts[1], moved)], hour, "Europe/Paris")
    assert booked == [starts[0], moved, starts[2]]
    for replacements, message in [
        ([Replacement(starts[1] + hour, moved)], "is not an occurrence of this series"),
        ([Replacement(starts[1], moved), Replacement(starts[1], moved + hour)], "replaced twice"),
        ([Replacement(starts[1], starts[1] + timedelta(days=4))], "4 days from the occurrence"),
        ([Replacement(starts[1], datetime(2027, 3, 24, 9))], "naive time"),
        (  # two days long, three days later, and three days earlier: they overlap
            [
                Replacement(starts[1], starts[1] + timedelta(days=3)),
                Replacement(starts[2], starts[2] - timedelta(days=3)),
            ],
            "overlaps another time",
        ),
    ]:
        with pytest.raises(SeriesRequestError, match=message) as caught:
            check_replacements(starts, replacements, timedelta(days=2), "Europe/Paris")
        assert caught.value.code == "invalid_replacement"


def expand(event: icalendar.Event) -> list[datetime]:
    """The occurrences an RFC 5545 reader makes of an event: its RRULE from DTSTART, the
    RDATEs added, the EXDATEs taken away (dateutil's rruleset, as calendar programs do)."""
    from dateutil.rrule import rruleset, rrulestr

    start = event["DTSTART"].dt
    rules = rruleset()
    rules.rrule(rrulestr(event["RRULE"].to_ical().decode(), dtstart=start))
    for name, add in (("RDATE", rules.rdate), ("EXDATE", rules.exdate)):
        values = event.get(name, [])
        for value in values if isinstance(values, list) else [values]:
            for moment in value.dts:
                add(moment.dt)
    return [moment.astimezone(UTC) for moment in rules]


def test_a_taken_occurrence_is_replaced_by_another_time_that_week(series_app: Any) -> None:
    api = series_app.test_client()
    taken, instead = in_days(17), in_days(18, 11)
    for _ in range(3):  # every consultant is busy at the third occurrence
        single(api, taken)
    replacement = {"replaces": taken.isoformat(), "start": instead.isoformat()}
    response = api.post(
        f"{URL}/consult/bookings", json=body(in_days(3), 4, replacements=[replacement])
    )
    assert response.status_code == 201, response.get_json()
    series = response.get_json()["series"]
    listed = [(datetime.fromisoformat(o["start"]), o["state"]) for o in series["occurrences"]]
    assert listed == [
        (in_days(3), "confirmed"),
        (in_days(10), "confirmed"),
        (taken, "moved"),
        (instead, "confirmed"),
        (in_days(24), "confirmed"),
    ]
    assert len({o["staff"] for o in series["occurrences"] if "staff" in o}) == 1
    # The invitation: the rule, the occurrence replaced as an EXDATE, the replacement an RDATE;
    # read as a calendar program reads it, it holds exactly the times booked.
    ics = api.get(f"/manage/{series['manage_token']}/booking.ics")
    event = icalendar.Calendar.from_ical(ics.data).walk("VEVENT")[0]
    assert event["RRULE"]["COUNT"] == [4]
    assert expand(event) == [in_days(3), in_days(10), instead, in_days(24)]
    assert "RDATE;TZID=Europe/Paris:" in ics.get_data(as_text=True)
    # The replacement's history says what it replaces.
    engine = series_app.extensions["bookwise"].database.engine
    with engine.connect() as connection:
        details = connection.execute(
            sa.select(BookingEvent.details)
            .join(Booking, Booking.id == BookingEvent.booking_id)
            .where(Booking.series_id.is_not(None), Booking.start_at == instead)
        ).scalar_one()
    assert datetime.fromisoformat(details["replaces"]) == taken


def test_a_replacement_not_free_is_a_conflict_naming_it(series_app: Any) -> None:
    api = series_app.test_client()
    taken, instead = in_days(17), in_days(18, 11)
    for start in (taken, instead):
        for _ in range(3):
            single(api, start)
    before = counts(series_app)
    replacement = {"replaces": taken.isoformat(), "start": instead.isoformat()}
    response = api.post(
        f"{URL}/consult/bookings", json=body(in_days(3), 4, replacements=[replacement])
    )
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "series_conflict"
    assert [datetime.fromisoformat(s) for s in error["unavailable"]] == [instead]
    (told,) = error["replacements"]
    assert datetime.fromisoformat(told["start"]) == instead and told["free"] is False
    assert counts(series_app) == before
    # A replacement in the past (the first occurrence's, the day before) is not free either.
    early = {"replaces": in_days(1).isoformat(), "start": in_days(-1).isoformat()}
    response = api.post(f"{URL}/consult/bookings", json=body(in_days(1), 3, replacements=[early]))
    assert response.status_code == 409
    unavailable = response.get_json()["error"]["unavailable"]
    assert [datetime.fromisoformat(s) for s in unavailable] == [in_days(-1)]
    assert counts(series_app) == before


@pytest.mark.parametrize(
    ("replacements", "status", "code"),
    [
        ([{"replaces": "2020-01-01T10:00:00+01:00", "start": "x"}], 400, "invalid_start"),
        ([{"start": "2020-01-01T10:00:00+01:00"}], 400, "invalid_replacement"),
        ({"replaces": "a", "start": "b"}, 400, "invalid_replacement"),
        ([[]], 400, "invalid_replacement"),
        ([{"replaces": in_days(3, 11).isoformat(), "start": in_days(4).isoformat()}], 422, "i"),
        ([{"replaces": in_days(10).isoformat(), "start": in_days(15).isoformat()}], 422, "i"),
        ([{"replaces": in_days(10).isoformat(), "start": in_days(3).isoformat()}], 422, "i"),
    ],
)
def test_bad_replacements_are_clear_errors(
    series_app: Any, replacements: Any, status: int, code: str
) -> None:
    api = series_app.test_client()
    before = counts(series_app)
    response = api.post(
        f"{URL}/consult/bookings", json=body(in_days(3), 4, replacements=replacements)
    )
    assert response.status_code == status, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == ("invalid_replacement" if code == "i" else code)
    if status == 422:
        assert error["problem"]  # what is wrong with it, besides the sentence for people
    assert counts(series_app) == before
    alone = api.post(f"{URL}/consult/bookings", json=single_body(replacements=[]))
    assert alone.status_code == 400


def single_body(**more: Any) -> dict[str, Any]:
    data = body(in_days(3), 2, **more)
    del data["recurrence"]
    return data


def preview_three_weeks(web: Any) -> tuple[str, dict[str, str], str]:
    """The booking form answered for three weekly sessions from ``in_days(3)`` and sent once:
    its path, the answers, and the page showing the occurrences."""
    url = f"/acme/consult/book?start={in_days(3).isoformat().replace('+', '%2B')}&tz=Europe/Paris"
    answers = hidden_inputs(web.get(url).get_data(as_text=True)) | {
        "field_name": "Zoé Martin",
        "field_email": "zoe@example.org",
        "field_topic": "Maths",
        "consent": "y",
        "repeat": "weekly",
        "repeat_count": "3",
    }
    path = url.split("?", maxsplit=1)[0]
    return path, answers, web.post(path, data=answers, headers=ORIGIN).get_data(as_text=True)


def test_the_booking_form_books_a_replacement_picked_for_a_time_not_free(series_app: Any) -> None:
    web = series_app.test_client()
    for _ in range(3):  # the second occurrence is taken by everyone
        single(series_app.test_client(), in_days(10))
    path, answers, html = preview_three_weeks(web)
    choices = re.findall(r'<option value="([^"]+/[^"]+)"', html)
    replaced = {datetime.fromisoformat(c.split("/")[0]) for c in choices}
    instead = [datetime.fromisoformat(c.split("/")[1]) for c in choices]
    assert replaced == {in_days(10)}  # offered for the one time not free only
    assert {abs((s.astimezone(PARIS).date() - in_days(10).date()).days) for s in instead} <= {
        0,
        1,
        2,
        3,
    }
    assert in_days(10) not in instead and in_days(3) not in instead and in_days(17) not in instead
    assert "Instead of" in html and "<optgroup" in html
    checked = answers | hidden_inputs(html)
    # A tampered choice is said on the form; nothing is booked.
    before = counts(series_app)
    bad = web.post(path, data=checked | {"replacement": "tomorrow/noon"}, headers=ORIGIN)
    assert bad.status_code == 422
    assert "Choose a replacement from the list." in bad.get_data(as_text=True)
    # The pick is taken by someone else before the client sends the form: shown again, 409.
    picked = next(c for c in choices if datetime.fromisoformat(c.split("/")[1]) > in_days(10))
    taken_start = datetime.fromisoformat(picked.split("/")[1])
    assert counts(series_app) == before
    for _ in range(3):
        single(series_app.test_client(), taken_start)
    before = counts(series_app)
    lost = web.post(path, data=checked | {"replacement": picked}, headers=ORIGIN)
    assert lost.status_code == 409
    assert "Some of these times were just taken" in lost.get_data(as_text=True)
    assert counts(series_app) == before
    # Another pick, booked.
    again = lost.get_data(as_text=True)
    choice = next(
        c
        for c in re.findall(r'<option value="([^"]+/[^"]+)"', again)
        if datetime.fromisoformat(c.split("/")[1]) != taken_start
    )
    booked = web.post(path, data=checked | {"replacement": choice}, headers=ORIGIN)
    assert booked.status_code == 302, booked.get_data(as_text=True)[:2000]
    page = web.get(booked.headers["Location"], follow_redirects=True).get_data(as_text=True)
    assert "Replaced by another time" in page
    assert page.count("Cancel this one") == 3
    starts = re.findall(r'data-start="([^"]+)"', page)
    assert choice.split("/")[1] in [datetime.fromisoformat(s).isoformat() for s in starts]


def test_a_time_taken_after_the_preview_is_never_left_out_silently(series_app: Any) -> None:
    web = series_app.test_client()
    for _ in range(3):
        single(series_app.test_client(), in_days(10))
    path, answers, html = preview_three_weeks(web)
    for _ in range(3):  # the third is taken too, after the client saw it free
        single(series_app.test_client(), in_days(17))
    before = counts(series_app)
    response = web.post(path, data=answers | hidden_inputs(html), headers=ORIGIN)
    assert response.status_code == 409
    assert response.get_data(as_text=True).count('class="occurrence not-free"') == 2
    assert counts(series_app) == before
