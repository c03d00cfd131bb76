"""Issue 17, routing: ``route`` sends a booking to the staff an answer calls for (the first rule
that holds narrows the pool to the members with all its tags; none: the whole pool). The checker
refuses a rule on an unknown field, on the name or e-mail, or with a test that does not fit the
field; slots, the booking path (public, API, staff on behalf), the public page and the API follow
the routing. The demo's candidate interview routes by position: developers to the recruiters
tagged ``tech`` (Amélie, Tom), support and sales to those tagged ``business`` (Tom, Sara)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from bookwise.availability.services import (
    PoolMember,
    SlotSearch,
    routed_pool,
    service_availability,
)
from bookwise.bookings.answers import InvalidAnswers
from bookwise.bookings.models import Booking
from bookwise.bookings.services import (
    BookingError,
    BookingRequest,
    NotASlot,
    SlotTaken,
    create_booking,
    find_service,
    routing_answers,
    routing_questions,
)
from bookwise.calendars.models import StaffMember, TimeOff
from bookwise.db import unit_of_work
from bookwise.workflows.editing import check_text
from bookwise.workflows.language import Workflow, route_tags
from bookwise.workflows.loader import CheckContext

PARIS = ZoneInfo("Europe/Paris")

pytestmark = pytest.mark.clock

LEGAL = """\
id: legal
name: Legal advice
duration: 30m
fields:
  - id: topic
    type: select
    label: Topic
    required: true
    options:
      - {value: tax, label: Tax}
      - {value: family, label: Family}
      - {value: work, label: Work}
  - {id: urgent, type: checkbox, label: Urgent}
  - {id: amount, type: number, label: Amount at stake}
  - {id: employer, type: text, label: Employer, show_if: {field: topic, equals: work}}
route:
  - {if: {field: topic, equals: tax}, staff: {tags: [tax]}}
  - {if: {field: amount, gte: 10000}, staff: {tags: [senior]}}
  - {if: {field: employer, answered: false}, staff: {tags: [general]}}
"""
TODAY = date(2027, 3, 1)


def check(text: str) -> tuple[Workflow | None, list[str]]:
    checked, problems = check_text(text, "legal.yaml", CheckContext())
    return (checked.workflow if checked else None), [str(p) for p in problems]


def legal() -> Workflow:
    workflow, problems = check(LEGAL)
    assert workflow is not None and not problems, problems
    return workflow


# --- the language ---------------------------------------------------------------------------


def test_the_first_rule_that_holds_gives_the_tags() -> None:
    workflow = legal()
    assert workflow.routing_fields == ("topic", "amount", "employer")
    assert [r.tags for r in workflow.route] == [("tax",), ("senior",), ("general",)]
    assert route_tags(workflow, {"topic": "tax", "amount": 50_000}) == ("tax",)
    assert route_tags(workflow, {"topic": "family", "amount": 50_000}) == ("senior",)
    # employer is not asked unless the topic is work: "answered: false" holds on it.
    assert route_tags(workflow, {"topic": "family", "amount": 10}) == ("general",)
    assert route_tags(workflow, {"topic": "work", "employer": "Acme"}) is None
    assert route_tags(workflow, {"topic": "work", "employer": ""}) == ("general",)


def test_a_workflow_without_route_never_narrows() -> None:
    workflow, _ = check(LEGAL.split("route:", maxsplit=1)[0])
    assert workflow is not None and workflow.route == () and workflow.routing_fields == ()
    assert route_tags(workflow, {"topic": "tax"}) is None


def test_routed_pool_keeps_the_members_with_every_tag() -> None:
    workflow = legal()
    ann = PoolMember(1, "ann", "Ann", ("lawyer", "tax"))
    bob = PoolMember(2, "bob", "Bob", ("lawyer",))
    cy = PoolMember(3, "cy", "Cy", ("senior", "tax"))
    assert routed_pool([ann, bob, cy], workflow, {"topic": "tax"}) == ([ann, cy], [bob])
    assert routed_pool([ann, bob, cy], workflow, None) == ([ann, bob, cy], [])
    assert routed_pool([ann, bob], workflow, {"topic": "family", "amount": 20_000}) == (
        [],
        [ann, bob],
    )


def test_the_routing_questions_come_with_those_they_depend_on() -> None:
    workflow = legal()
    assert [f.id for f in routing_questions(workflow)] == ["topic", "amount", "employer"]
    answers = routing_answers(workflow, {"topic": "work", "amount": "12", "x": "y"}, TODAY)
    assert answers == {"topic": "work", "amount": 12, "phone": None}
    with pytest.raises(InvalidAnswers) as refused:
        routing_answers(workflow, {"topic": "astrology"}, TODAY)
    assert set(refused.value.problems) == {"topic"}
    with pytest.raises(InvalidAnswers) as missing:
        routing_answers(workflow, {}, TODAY)
    assert set(missing.value.problems) == {"topic"}


# --- the checker: file:line, key, what to do -------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            "{if: {field: topik, equals: tax}, staff: {tags: [tax]}}",
            "legal.yaml:17:18: route[0].if.field: route tests the field 'topik', which "
            "this workflow does not ask; did you mean 'topic'?",
        ),
        (
            "{if: {field: topic, equals: taxes}, staff: {tags: [tax]}}",
            "legal.yaml:17:33: route[0].if.equals: route: 'taxes' is not a choice of "
            "'topic'; did you mean 'tax'?",
        ),
        (
            "{if: {field: topic, lt: 3}, staff: {tags: [tax]}}",
            "route[0].if.lt: route: lt only tests number and date fields; 'topic' is a select",
        ),
        (
            "{if: {field: amount, gt: lots}, staff: {tags: [tax]}}",
            "route[0].if.gt: route: gt on the number field 'amount' needs a number",
        ),
        (
            "{if: {field: urgent, equals: yes please}, staff: {tags: [tax]}}",
            "route[0].if.equals: route: the checkbox 'urgent' is tested with true or false",
        ),
        (
            "{if: {field: email, answered: true}, staff: {tags: [tax]}}",
            "route[0].if.field: route cannot test the client's 'email'",
        ),
        ("{if: {field: topic, equals: tax}}", "route[0]: a route rule needs if (a condition)"),
        (
            "{if: {field: topic}, staff: {tags: [tax]}}",
            "route[0].if: a condition needs a field and exactly one test",
        ),
        (
            "{if: {field: topic, equals: tax}, staff: {tags: [Tax Team]}}",
            "route[0].staff.tags[0]: 'Tax Team' is not a tag",
        ),
        (
            "{if: {field: topic, equals: tax}, staff: {tags: [tax]}, then: x}",
            "route[0]: unknown key 'then'; allowed keys are if, staff",
        ),
    ],
)
def test_a_wrong_rule_is_named_at_its_line(rule: str, expected: str) -> None:
    text = LEGAL.split("route:", maxsplit=1)[0] + f"route:\n  - {rule}\n"
    workflow, problems = check(text)
    assert workflow is None
    assert any(expected in problem for problem in problems), problems


def test_a_rule_repeating_an_earlier_test_is_a_warning() -> None:
    text = LEGAL + "  - {if: {field: topic, equals: tax}, staff: {tags: [general]}}\n"
    workflow, problems = check(text)
    assert workflow is not None
    assert problems == [
        "legal.yaml:20:10: warning: route[3].if: this rule tests the same as rule 1 of route, "
        "which comes first: it never applies; remove it or change its test"
    ]


def test_route_is_a_list() -> None:
    _, problems = check(LEGAL.split("route:", maxsplit=1)[0] + "route: {topic: tax}\n")
    assert any("route: route is a list of rules" in p for p in problems), problems


def test_the_demo_interview_routes_by_position(app: Any) -> None:
    from bookwise.workflows.services import current_version, workflow_of

    with app.extensions["bookwise"].database.sessions() as session:
        workflow = workflow_of(current_version(session, "hr-interview"))
    assert workflow.routing_fields == ("position",)
    assert route_tags(workflow, {"position": "dev"}) == ("tech",)
    assert route_tags(workflow, {"position": "sales"}) == ("business",)


# --- the pool, the slots, the booking path ---------------------------------------------------


def _staff(session: Any) -> dict[str, int]:
    return dict(session.execute(sa.select(StaffMember.slug, StaffMember.id)).all())


def _window(now: datetime) -> tuple[datetime, datetime]:
    return now + timedelta(days=2), now + timedelta(days=9)


def _starts(
    session: Any, now: datetime, answers: dict[str, Any] | None
) -> dict[datetime, set[str]]:
    context = find_service(session, "northwind-hr", "hr-interview")
    found = service_availability(
        session,
        context.calendar,
        context.service,
        context.workflow,
        *_window(now),
        now,
        SlotSearch(answers=answers),
    )
    return {slot.start: {found.slug_of(s) for s in slot.staff} for slot in found.slots}


def _amelie_away(app: Any, now: datetime) -> None:
    """Amélie off for the window: a time only Sara is free at is not one for a developer."""
    with unit_of_work(app.extensions["bookwise"].database.sessions, write=True) as session:
        start, end = _window(now)
        session.add(
            TimeOff(
                staff_id=_staff(session)["amelie"],
                start_at=start - timedelta(days=1),
                end_at=end + timedelta(days=1),
            )
        )


def test_the_answers_narrow_the_slots(app: Any, now: datetime) -> None:
    with app.extensions["bookwise"].database.sessions() as session:
        everyone = _starts(session, now, None)
        dev = _starts(session, now, {"position": "dev"})
        sales = _starts(session, now, {"position": "sales"})
    assert set().union(*everyone.values()) == {"amelie", "tom", "sara"}
    assert set().union(*dev.values()) <= {"amelie", "tom"} and dev
    assert set().union(*sales.values()) <= {"tom", "sara"} and sales
    assert set(dev) <= set(everyone) and set(sales) <= set(everyone)


def _only_for_sara(app: Any, now: datetime) -> datetime:
    _amelie_away(app, now)
    with app.extensions["bookwise"].database.sessions() as session:
        everyone = _starts(session, now, None)
        dev = _starts(session, now, {"position": "dev"})
    only = sorted(start for start, staff in everyone.items() if start not in dev)
    assert only, "no time is Sara's alone"
    # Prefer a day a developer can book too (Tom works Mondays, Wednesdays and Thursdays): the
    # tests look at that day's page for a developer. Which days the window holds depends on
    # the instant the suite stands at.
    dev_days = {start.astimezone(PARIS).date() for start in dev}
    only.sort(key=lambda start: start.astimezone(PARIS).date() not in dev_days)
    assert everyone[only[0]] == {"sara"}
    return only[0]


def _bookings(app: Any) -> int:
    with app.extensions["bookwise"].database.sessions() as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(Booking)) or 0)


def _request(start: datetime, position: str, **extra: Any) -> BookingRequest:
    values = {
        "name": "Ada Lovelace",
        "email": "ada@example.org",
        "position": position,
        "cv_url": "https://example.org/ada",
    }
    return BookingRequest(start=start, values=values, consent=True, **extra)


@pytest.mark.parametrize("by_staff", [False, True])
def test_a_booking_goes_only_to_a_routed_staff_member(
    app: Any, now: datetime, by_staff: bool
) -> None:
    start = _only_for_sara(app, now)
    before = _bookings(app)
    sessions = app.extensions["bookwise"].database.sessions
    with pytest.raises((NotASlot, SlotTaken)), unit_of_work(sessions, write=True) as session:
        context = find_service(session, "northwind-hr", "hr-interview")
        create_booking(
            session, context, _request(start, "dev", by_staff=by_staff), now, plugins=None
        )
    assert _bookings(app) == before  # nothing written
    with unit_of_work(sessions, write=True) as session:
        context = find_service(session, "northwind-hr", "hr-interview")
        booking = create_booking(session, context, _request(start, "sales"), now, plugins=None)
        assert booking.staff_id == _staff(session)["sara"]


def test_staff_named_on_behalf_must_be_routed(app: Any, now: datetime) -> None:
    start = _only_for_sara(app, now)
    sessions = app.extensions["bookwise"].database.sessions
    with pytest.raises(BookingError) as refused, unit_of_work(sessions, write=True) as session:
        context = find_service(session, "northwind-hr", "hr-interview")
        request = _request(start, "dev", by_staff=True, staff="sara")
        create_booking(session, context, request, now, plugins=None)
    assert refused.value.code == "unknown_staff"


# --- the API -------------------------------------------------------------------------------

API = "/api/v1/calendars/northwind-hr/services"


def _days(now: datetime) -> str:
    first = (now + timedelta(days=2)).date()
    return f"from={first}&to={first + timedelta(days=6)}&tz=Europe/Paris"


def test_the_api_slots_take_the_answers(app: Any, now: datetime) -> None:
    start = _only_for_sara(app, now)
    api = app.test_client()
    service = next(s for s in api.get(API).get_json()["services"] if s["id"] == "hr-interview")
    assert service["routing_fields"] == ["position"]
    whole = api.get(f"{API}/hr-interview/slots?{_days(now)}").get_json()
    assert whole["routed"] is False and whole["routing_fields"] == ["position"]
    dev = api.get(f"{API}/hr-interview/slots?{_days(now)}&answers[position]=dev").get_json()
    assert dev["routed"] is True
    starts = {datetime.fromisoformat(s["start"]) for s in dev["slots"]}
    assert start not in starts and start in {
        datetime.fromisoformat(s["start"]) for s in whole["slots"]
    }


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("answers[position]=astronaut", 422, "invalid"),
        ("answers[position]=", 422, "invalid"),
        ("answers[position]=%00dev", 422, "invalid"),
        ("answers[position]=" + "d" * 70_000, 422, "invalid"),
        ("answers[remarks]=hello", 400, "invalid_request"),
        ("answers[]=dev", 200, None),  # not an answer parameter: ignored
        ("answers[position=dev", 200, None),
        ("answers[%F0%9F%92%A5]=dev", 400, "invalid_request"),
        ("answers[position]=%ED%A0%80", 422, "invalid"),
    ],
)
def test_hostile_answers_get_a_clear_error(
    app: Any, now: datetime, query: str, status: int, code: str | None
) -> None:
    response = app.test_client().get(f"{API}/hr-interview/slots?{_days(now)}&{query}")
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    if code:
        assert response.get_json()["error"]["code"] == code


def test_the_api_booking_uses_the_posted_answers(app: Any, now: datetime) -> None:
    start = _only_for_sara(app, now)
    before = _bookings(app)
    body: dict[str, Any] = {
        "start": start.isoformat(),
        "client": {"name": "Ada", "email": "ada@example.org"},
        "answers": {"position": "dev", "cv_url": "https://example.org/ada"},
        "consent": True,
    }
    api = app.test_client()
    refused = api.post(f"{API}/hr-interview/bookings", json=body)
    assert refused.status_code in (409, 422)
    assert refused.get_json()["error"]["code"] in ("not_a_slot", "slot_taken")
    assert _bookings(app) == before
    body["answers"]["position"] = "support"
    booked = api.post(f"{API}/hr-interview/bookings", json=body)
    assert booked.status_code == 201 and booked.get_json()["staff"] == "sara"


# --- the public page -----------------------------------------------------------------------

PAGE = "/northwind-hr/hr-interview"


def test_the_page_asks_the_routing_questions_before_the_times(app: Any, now: datetime) -> None:
    start = _only_for_sara(app, now)
    web = app.test_client()
    first = web.get(f"{PAGE}?tz=Europe/Paris").get_data(as_text=True)
    assert 'name="field_position"' in first and 'name="routed"' in first
    assert 'class="slot"' not in first and "data-picker" not in first
    assert 'name="field_cv_url"' not in first  # only what the routing needs
    day = start.date().isoformat()
    page = web.get(f"{PAGE}?tz=Europe/Paris&routed=1&field_position=dev&date={day}").get_data(
        as_text=True
    )
    hrefs = [h.replace("&amp;", "&") for h in re.findall(r'class="slot" href="([^"]+)"', page)]
    assert hrefs and all("field_position=dev" in h and "routed=1" in h for h in hrefs)
    offered = {datetime.fromisoformat(parse_qs(urlsplit(h).query)["start"][0]) for h in hrefs}
    assert start not in offered
    assert '<option selected value="dev">' in page or 'value="dev" selected' in page
    # The day switcher carries the answers, and so does the month's navigation.
    times = web.get(
        f"{PAGE}/times?tz=Europe/Paris&routed=1&field_position=dev&date={day}"
    ).get_json()
    assert all(datetime.fromisoformat(slot["start"]) != start for slot in times["slots"])
    sales = web.get(
        f"{PAGE}/times?tz=Europe/Paris&routed=1&field_position=sales&date={day}"
    ).get_json()
    assert start in {datetime.fromisoformat(slot["start"]) for slot in sales["slots"]}


@pytest.mark.parametrize(
    "query",
    [
        "routed=1",
        "routed=1&field_position=",
        "routed=1&field_position=astronaut",
        "routed=1&field_position=%00",
        "routed=1&field_position=%ED%A0%80",
        "routed=1&field_position=" + "x" * 70_000,
        "routed=1&field_position=dev&field_position=sales",
        "routed=1&field_position=dev&date=99999-01-01&staff=%00",
    ],
)
def test_hostile_answers_on_the_page_never_fail(app: Any, query: str) -> None:
    web = app.test_client()
    response = web.get(f"{PAGE}?{query}")
    assert response.status_code < 500
    times = web.get(f"{PAGE}/times?{query}")
    assert times.status_code < 500


def test_a_wrong_answer_is_marked_and_no_time_shown(app: Any) -> None:
    page = app.test_client().get(f"{PAGE}?routed=1&field_position=astronaut")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'class="field-error"' in html and 'class="slot"' not in html
    times = app.test_client().get(f"{PAGE}/times?routed=1&field_position=astronaut")
    assert times.status_code == 422 and times.get_json()["error"]["code"] == "answers_needed"
