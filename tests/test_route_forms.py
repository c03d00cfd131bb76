"""Issue 17, routing on the forms: the answers given before the times (``routed=1`` and the
booking form's own names, ``field_<id>``) fill the public booking form, and its links (back to
the times, the other times after a lost race) keep them, so the client never sees a time the
routed staff cannot take. The back office's booking for a client asks the same questions before
its times.

On the demo's candidate interview (northwind-hr, hr-interview): developers go to the recruiters
tagged ``tech`` (Amélie, Tom), support and sales to those tagged ``business`` (Tom, Sara). Dates
come from the ``now`` fixture."""

from __future__ import annotations

import re
from datetime import datetime
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from bookwise.accounts.services import create_user, grant_role
from bookwise.availability.services import SlotSearch, local_day_bounds, service_availability
from bookwise.bookings.models import Booking
from bookwise.bookings.services import find_service
from bookwise.calendars.models import Calendar
from tests.test_public import form_values
from tests.test_route import _bookings, _only_for_sara

pytestmark = pytest.mark.clock

PARIS = ZoneInfo("Europe/Paris")
PAGE = "/northwind-hr/hr-interview"
ORIGIN = {"Origin": "http://localhost"}


def book_url(start: datetime, **answers: str) -> str:
    query = {"start": start.astimezone(PARIS).isoformat(), "tz": "Europe/Paris", **answers}
    return f"{PAGE}/book?{urlencode(query)}"


def query_of(url: str) -> dict[str, list[str]]:
    """The query of a URL (unescaped already: "&not" is an entity's start in HTML)."""
    return parse_qs(urlsplit(url).query)


def selected(html: str, name: str) -> list[str]:
    """The values chosen in the <select> ``name`` of a page."""
    select = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', html, re.S)
    assert select, f"no select {name}"
    return re.findall(r'<option selected value="([^"]*)"', select.group(1)) + re.findall(
        r'<option value="([^"]*)" selected', select.group(1)
    )


def back_link(html: str) -> str:
    found = re.search(r'<p class="breadcrumb"><a href="([^"]+)"', html)
    assert found
    return unescape(found.group(1))


def day_starts(
    app: Any, now: datetime, moment: datetime, answers: dict[str, Any] | None
) -> list[datetime]:
    """The free starts of ``moment``'s day in Paris, for the staff ``answers`` route to."""
    day = moment.astimezone(PARIS).date()
    with app.extensions["bookwise"].database.sessions() as session:
        context = find_service(session, "northwind-hr", "hr-interview")
        found = service_availability(
            session,
            context.calendar,
            context.service,
            context.workflow,
            *local_day_bounds(day, day, PARIS),
            now,
            SlotSearch(answers=answers),
        )
    return [slot.start for slot in found.slots]


def candidate(html: str, **overrides: str) -> dict[str, str]:
    values = form_values(html) | {
        "field_name": "Ada Lovelace",
        "field_email": "ada@example.org",
        "field_cv_url": "https://example.org/ada",
        "consent": "y",
    }
    return values | overrides


# --- the public booking form -----------------------------------------------------------------


def test_the_link_s_answers_fill_the_form_and_its_back_link(app: Any, now: datetime) -> None:
    start = _only_for_sara(app, now)
    web = app.test_client()
    response = web.get(book_url(start, routed="1", field_position="sales"))
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html[:500]
    assert selected(html, "field_position") == ["sales"]
    assert 'class="field-error"' not in html and 'class="error-summary"' not in html
    back = query_of(back_link(html))
    assert back["routed"] == ["1"] and back["field_position"] == ["sales"]
    assert back["date"] == [start.astimezone(PARIS).date().isoformat()]


def test_other_answers_and_fields_fill_in_too_but_only_the_workflow_s(
    app: Any, now: datetime
) -> None:
    start = _only_for_sara(app, now)
    url = book_url(
        start,
        routed="1",
        field_position="support",
        field_remarks="Available from May",
        field_salary="a lot",  # not a question of this workflow
        consent="y",  # not an answer: the client ticks it themselves
    )
    html = app.test_client().get(url).get_data(as_text=True)
    assert re.search(r'<textarea[^>]*name="field_remarks"[^>]*>\s*Available from May', html)
    assert 'name="field_salary"' not in html and ">a lot<" not in html
    assert not re.search(r'<input[^>]*checked[^>]*name="consent"', html)
    assert not re.search(r'<input[^>]*name="consent"[^>]*checked', html)


def test_a_time_the_routed_staff_cannot_take_sends_back_to_the_times(
    app: Any, now: datetime
) -> None:
    start = _only_for_sara(app, now)
    response = app.test_client().get(book_url(start, routed="1", field_position="dev"))
    assert response.status_code == 302
    back = query_of(response.headers["Location"])
    assert back["notice"] == ["unavailable"]
    assert back["routed"] == ["1"] and back["field_position"] == ["dev"]
    assert back["date"] == [start.astimezone(PARIS).date().isoformat()]
    page = app.test_client().get(response.headers["Location"]).get_data(as_text=True)
    assert "That time is no longer available" in page
    hrefs = [unescape(h) for h in re.findall(r'class="slot" href="([^"]+)"', page)]
    assert hrefs and all(query_of(h)["field_position"] == ["dev"] for h in hrefs)


def test_a_wrong_answer_in_the_link_is_marked_like_a_posted_one(app: Any, now: datetime) -> None:
    start = _only_for_sara(app, now)
    response = app.test_client().get(
        book_url(start, routed="1", field_position="astronaut", field_notice_period="soon")
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    errors = re.findall(r'<p class="field-error" id="(field_\w+)-error">', html)
    assert set(errors) == {"field_position", "field_notice_period"}  # not the unanswered ones
    assert "Please correct the answers marked below." in html
    # Wrong answers route nowhere: the back link asks the questions again.
    assert "routed" not in query_of(back_link(html))


@pytest.mark.parametrize(
    "answers",
    [
        {"field_position": ""},
        {"field_position": "\x00"},
        {"field_position": "\ud800"},
        {"field_position": "x" * 70_000},
        {"field_remarks": "y" * 70_000},
        {"field_notice_period": "1e999"},
        {"field_notice_period": "9" * 5000},
        {"field_email": "<script>alert(1)</script>"},
        {"field_position": "{{ 7 * 7 }}", "field_cv_url": "javascript:alert(1)"},
    ],
)
def test_hostile_answers_in_the_link_never_fail(
    app: Any, now: datetime, answers: dict[str, str]
) -> None:
    start = _only_for_sara(app, now)
    query = {"start": start.astimezone(PARIS).isoformat(), "routed": "1", **answers}
    encoded = urlencode(query, errors="surrogatepass")
    response = app.test_client().get(f"{PAGE}/book?{encoded}")
    assert response.status_code in (200, 302)
    html = response.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html


def test_several_values_for_one_answer_take_the_first(app: Any, now: datetime) -> None:
    start = _only_for_sara(app, now)
    url = f"{book_url(start, routed='1')}&field_position=sales&field_position=dev"
    html = app.test_client().get(url).get_data(as_text=True)
    assert selected(html, "field_position") == ["sales"]


def test_an_answer_changed_on_the_form_is_refused_with_the_routed_times(
    app: Any, now: datetime
) -> None:
    """Offered to a sales candidate (only Sara is free), the time is refused once the position
    becomes developer: the message says why, every answer is kept, and the other times offered
    are the developers' recruiters' only; nothing is written."""
    start = _only_for_sara(app, now)
    web = app.test_client()
    url = book_url(start, routed="1", field_position="sales")
    page = web.get(url).get_data(as_text=True)
    before = _bookings(app)
    refused = web.post(
        url.split("?")[0], data=candidate(page, field_position="dev"), headers=ORIGIN
    )
    html = refused.get_data(as_text=True)
    assert refused.status_code == 409, html[:500]
    assert _bookings(app) == before
    assert "No one who takes bookings with these answers is free at this time." in html
    assert "Your answers are kept." in html and "just taken" not in html
    assert selected(html, "field_position") == ["dev"]
    assert 'value="Ada Lovelace"' in html
    offered = [datetime.fromisoformat(v) for v in re.findall(r'name="start" value="([^"]+)"', html)]
    assert offered and start not in offered
    assert offered == day_starts(app, now, start, {"position": "dev"})[:24]
    # The way back to the times carries the new answer.
    back = query_of(back_link(html))
    assert back["field_position"] == ["dev"] and back["routed"] == ["1"]
    # Sending it back as a sales candidate books it, with Sara.
    booked = web.post(
        url.split("?")[0], data=candidate(page, field_position="sales"), headers=ORIGIN
    )
    assert booked.status_code == 302, booked.get_data(as_text=True)[:500]
    with app.extensions["bookwise"].database.sessions() as session:
        booking = session.scalars(sa.select(Booking).order_by(Booking.id.desc())).first()
        assert booking is not None and booking.staff_member.slug == "sara"
        assert booking.answers["position"] == "sales"


def test_without_the_routing_answers_the_form_still_books_only_routed_staff(
    app: Any, now: datetime
) -> None:
    """An old link (no answers): the form opens on a time someone is free at, and the booking
    path routes by the answer given on the form."""
    start = _only_for_sara(app, now)
    web = app.test_client()
    url = book_url(start)
    page = web.get(url).get_data(as_text=True)
    assert selected(page, "field_position") == [""]
    refused = web.post(
        url.split("?")[0], data=candidate(page, field_position="dev"), headers=ORIGIN
    )
    assert refused.status_code == 409
    assert "No one who takes bookings with these answers" in refused.get_data(as_text=True)
    booked = web.post(
        url.split("?")[0], data=candidate(page, field_position="support"), headers=ORIGIN
    )
    assert booked.status_code == 302


# --- the back office: booking for a client ---------------------------------------------------

PASSWORD = "a long password for hr"


@pytest.fixture
def office(app: Any) -> Any:
    """A test client signed in as an administrator of Northwind (the interview's calendar)."""
    with app.extensions["bookwise"].database.sessions() as session, session.begin():
        user = create_user(session, "hr@northwind.example", PASSWORD, name="Hana HR")
        calendar = session.scalar(sa.select(Calendar).where(Calendar.slug == "northwind-hr"))
        grant_role(session, user, calendar.id, "admin")
    client = app.test_client()
    signed = client.post(
        "/login",
        data={
            "email": "hr@northwind.example",
            "password": PASSWORD,
            "csrf_token": csrf_token(client.get("/login").get_data(as_text=True)),
        },
    )
    assert signed.status_code == 302
    return client


def csrf_token(html: str) -> str:
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert found, "no CSRF token"
    return found.group(1)


def service_id(app: Any) -> str:
    with app.extensions["bookwise"].database.sessions() as session:
        context = find_service(session, "northwind-hr", "hr-interview")
        return str(context.service.id)


def time_links(html: str) -> list[str]:
    return [
        unescape(h)
        for h in re.findall(r'class="btn btn-outline-primary btn-sm" href="([^"]+)"', html)
    ]


def test_the_back_office_asks_the_routing_questions_before_the_times(
    app: Any, now: datetime, office: Any
) -> None:
    start = _only_for_sara(app, now)
    service = service_id(app)
    day = start.astimezone(PARIS).date().isoformat()
    first = office.get(f"/admin/bookings/new?service={service}&date={day}")
    html = first.get_data(as_text=True)
    assert first.status_code == 200
    assert 'name="field_position"' in html and 'name="routed"' in html
    assert 'name="field_cv_url"' not in html  # only what the routing needs
    assert "Answer the questions above the times first." in html and not time_links(html)

    routed = office.get(
        f"/admin/bookings/new?service={service}&date={day}&routed=1&field_position=dev"
    )
    html = routed.get_data(as_text=True)
    links = time_links(html)
    assert links and all(query_of(h)["field_position"] == ["dev"] for h in links)
    offered = [datetime.fromisoformat(query_of(h)["start"][0]) for h in links]
    # Staff book outside the online window: the routed staff's times of the whole day.
    assert start not in offered
    assert set(offered) >= set(day_starts(app, now, start, {"position": "dev"}))
    # The day's navigation keeps the answers (links and the date form).
    nav = re.search(r'<nav class="d-flex[^"]*day-nav".*?</nav>', html, re.S)
    assert nav and "field_position=dev" in nav.group(0)
    assert '<input type="hidden" name="field_position" value="dev">' in nav.group(0)
    sales = office.get(
        f"/admin/bookings/new?service={service}&date={day}&routed=1&field_position=sales"
    ).get_data(as_text=True)
    assert start in [datetime.fromisoformat(query_of(h)["start"][0]) for h in time_links(sales)]


@pytest.mark.parametrize(
    "answers", ["routed=1", "routed=1&field_position=astronaut", "routed=1&field_position=%00"]
)
def test_a_wrong_answer_in_the_back_office_is_marked_and_no_time_shown(
    app: Any, office: Any, answers: str
) -> None:
    response = office.get(f"/admin/bookings/new?service={service_id(app)}&{answers}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="field_position-error"' in html and not time_links(html)


def test_the_back_office_form_takes_the_answers_and_the_routed_staff(
    app: Any, now: datetime, office: Any
) -> None:
    start = _only_for_sara(app, now)
    service = service_id(app)
    day = start.astimezone(PARIS).date().isoformat()
    times = office.get(
        f"/admin/bookings/new?service={service}&date={day}&routed=1&field_position=sales"
    ).get_data(as_text=True)
    (link,) = [
        h for h in time_links(times) if datetime.fromisoformat(query_of(h)["start"][0]) == start
    ]
    form = office.get(link).get_data(as_text=True)
    assert selected(form, "field_position") == ["sales"]
    staff = re.search(r'<select id="staff_member".*?</select>', form, re.S)
    assert staff and "Sara" in staff.group(0) and "Amélie" not in staff.group(0)
    back = re.search(r'<p><a href="([^"]+)">&larr;', form)
    assert back and query_of(unescape(back.group(1)))["field_position"] == ["sales"]

    values = {
        "csrf_token": csrf_token(form),
        "service": service,
        "start": start.isoformat(),
        "field_name": "Ada Lovelace",
        "field_email": "ada@example.org",
        "field_cv_url": "https://example.org/ada",
        "consent": "y",
        "client_locale": "en",
    }
    before = _bookings(app)
    # The answer changed to developer: no developers' recruiter is free then; nothing written.
    refused = office.post(link, data=values | {"field_position": "dev"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 409
    assert "No staff member these answers route to is free at this time." in html
    assert selected(html, "field_position") == ["dev"]
    assert _bookings(app) == before
    booked = office.post(link, data=values | {"field_position": "sales"})
    assert booked.status_code == 302, booked.get_data(as_text=True)[:1000]
    with app.extensions["bookwise"].database.sessions() as session:
        booking = session.scalars(sa.select(Booking).order_by(Booking.id.desc())).first()
        assert booking is not None and booking.staff_member.slug == "sara"
        assert booking.source == "admin" and booking.answers["position"] == "sales"
