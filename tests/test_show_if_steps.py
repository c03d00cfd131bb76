"""Issue 17, conditional questions without JavaScript: the booking page shows the questions that
apply to the answers it starts with; when the answers sent make another apply that the client
never saw, nothing is booked and the form comes back with it (a second step). The page says which
conditional questions it showed in the hidden input ``asked`` (booking.js keeps it up to date),
so that with the script one submit books.

Through the Flask test client, on the scenario's ``consult`` service given a new version with
conditional questions. Dates come from the ``now`` fixture."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from bookwise.bookings.models import Booking, ConsentRecord
from tests.conftest import add_workflow_version
from tests.test_public import form_values

PARIS = ZoneInfo("Europe/Paris")
ORIGIN = {"Origin": "http://localhost"}

CONSULT = """\
id: consult
name: {en: Consultation, fr: Consultation}
duration: 30m
slot_step: 30m
booking_window: {min_notice: 0m, max_ahead: 400d}
cancellation: {allowed: true, min_notice: 2h}
staff: {tags: [consultant], assignment: round_robin}
fields:
  - include: contact
  - {id: topic, type: text, required: true, label: {en: Topic, fr: Sujet}}
  - id: visit_type
    type: select
    label: {en: Visit, fr: Visite}
    options:
      - {value: first, label: {en: First visit, fr: Première visite}}
      - {value: follow_up, label: {en: Follow-up, fr: Suivi}}
  - {id: referral, type: text, required: true, label: {en: Referred by, fr: Adressé par},
     show_if: {field: visit_type, equals: first}}
  - {id: age, type: number, label: {en: Age, fr: Âge}}
  - {id: guardian, type: text, required: true, label: {en: Guardian, fr: Tuteur},
     show_if: {field: age, lt: 18}}
  - {id: guardian_phone, type: text, label: {en: Guardian's phone, fr: Téléphone du tuteur},
     show_if: {field: guardian, answered: true}}
consent:
  required: true
  text:
    en: I agree that my answers are kept for a year.
    fr: J'accepte que mes réponses soient conservées un an.
notifications: []
"""


@pytest.fixture
def web(scenario: Any, scenario_app: Any) -> Any:
    """The scenario's pages, its ``consult`` service asking conditional questions."""
    add_workflow_version(scenario.settings, scenario.database, CONSULT)
    return scenario_app.test_client()


def start_at(now: datetime, hour: int = 10, days: int = 3) -> str:
    day = now.astimezone(PARIS).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, tzinfo=PARIS).isoformat()


URL = "/acme/consult/book"


def open_form(web: Any, now: datetime) -> str:
    start = quote(start_at(now))
    response = web.get(f"{URL}?start={start}&tz=Europe/Paris")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return str(response.get_data(as_text=True))


def answers(page: str, **overrides: Any) -> dict[str, Any]:
    """The page's hidden inputs and the answers of a client, ``overrides`` on top (None: not
    sent)."""
    values: dict[str, Any] = form_values(page) | {
        "field_name": "Zoé Martin",
        "field_email": "zoe@example.org",
        "field_phone": "",
        "field_topic": "Taxes",
        "field_visit_type": "follow_up",
        "field_age": "40",
        "consent": "y",
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def post(web: Any, data: dict[str, Any] | bytes) -> Any:
    if isinstance(data, bytes):
        return web.post(
            URL,
            data=data,
            headers=ORIGIN,
            content_type="application/x-www-form-urlencoded",
        )
    return web.post(URL, data=data, headers=ORIGIN)


def bookings(app: Any) -> list[Booking]:
    with app.extensions["bookwise"].database.sessions() as session:
        return list(session.scalars(sa.select(Booking)))


def count(app: Any, model: Any) -> int:
    with app.extensions["bookwise"].database.sessions() as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


def box(page: str, fid: str) -> str:
    """The opening tag of the wrapper of the conditional question ``fid``."""
    found = re.search(rf'<div class="shown-if[^"]*" data-question="{fid}"[^>]*>', page)
    assert found, fid
    return found.group(0)


def asked_input(page: str) -> str:
    return form_values(page)["asked"]


# --- the first page ------------------------------------------------------------------------------


def test_the_first_page_hides_the_questions_that_do_not_apply_yet(web: Any, now: datetime) -> None:
    page = open_form(web, now)
    for fid in ("referral", "guardian", "guardian_phone"):
        assert " hidden" in box(page, fid), fid
        assert "data-show-if=" in box(page, fid)  # booking.js shows it as the client answers
    assert asked_input(page) == ""
    assert "A few more questions" not in page


# --- the second step -----------------------------------------------------------------------------


def test_a_question_that_comes_to_apply_is_asked_on_a_second_step(
    web: Any, scenario_app: Any, now: datetime
) -> None:
    page = open_form(web, now)
    response = post(web, answers(page, field_visit_type="first"))
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    second = response.get_data(as_text=True)
    assert bookings(scenario_app) == [] and count(scenario_app, ConsentRecord) == 0
    # Asked, marked, with the focus; not reproached for being blank (the client never saw it).
    assert "A few more questions, now that we know your answers." in second
    assert '<a href="#field_referral">Referred by</a>' in second
    assert " hidden" not in box(second, "referral") and "newly-asked" in box(second, "referral")
    assert re.search(r'<input[^>]*autofocus[^>]*id="field_referral"', second)
    assert "This field is required" not in second and 'role="alert"' not in second
    assert asked_input(second) == "referral"
    # Every answer kept: the time, the contact, the consent, the choices.
    assert form_values(second)["start"] == start_at(now)
    assert 'value="Zoé Martin"' in second and 'value="Taxes"' in second
    assert re.search(r'<input checked id="consent"', second)
    assert '<option selected value="first">' in second
    # Sent again, answered: booked.
    booked = post(web, answers(second, field_visit_type="first", field_referral="Dr Who"))
    assert booked.status_code == 302, booked.get_data(as_text=True)[:2000]
    assert "/booked" in booked.headers["Location"]
    (booking,) = bookings(scenario_app)
    assert booking.answers["referral"] == "Dr Who"
    assert booking.start_at.astimezone(PARIS).isoformat() == start_at(now)


def test_sent_again_blank_the_new_question_is_required_as_written(
    web: Any, scenario_app: Any, now: datetime
) -> None:
    page = open_form(web, now)
    second = post(web, answers(page, field_visit_type="first")).get_data(as_text=True)
    refused = post(web, answers(second, field_visit_type="first"))
    assert refused.status_code == 422
    assert 'id="field_referral-error">This field is required.' in refused.get_data(as_text=True)
    assert bookings(scenario_app) == []


def test_with_the_script_the_list_names_the_question_and_one_submit_books(
    web: Any, scenario_app: Any, now: datetime
) -> None:
    page = open_form(web, now)
    sent = answers(page, field_visit_type="first", field_referral="Dr Who", asked="referral")
    response = post(web, sent)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    assert bookings(scenario_app)[0].answers["referral"] == "Dr Who"


def test_answers_that_make_nothing_new_apply_book_at_once(
    web: Any, scenario_app: Any, now: datetime
) -> None:
    page = open_form(web, now)
    # A question that does not apply is dropped, whatever was sent for it.
    response = post(web, answers(page, field_referral="Dr Who", field_guardian="Ana"))
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    assert bookings(scenario_app)[0].answers == {
        "topic": "Taxes",
        "visit_type": "follow_up",
        "age": 40,
    }


def test_a_chain_is_asked_one_step_at_a_time(web: Any, scenario_app: Any, now: datetime) -> None:
    """A minor is asked for a guardian; a guardian named, for the guardian's phone."""
    page = open_form(web, now)
    second = post(web, answers(page, field_age="12,5"))  # a number as check_answers reads it
    assert second.status_code == 200
    second_page = second.get_data(as_text=True)
    assert asked_input(second_page) == "guardian"
    assert " hidden" in box(second_page, "guardian_phone")
    third = post(web, answers(second_page, field_age="12,5", field_guardian="Ana"))
    assert third.status_code == 200
    third_page = third.get_data(as_text=True)
    assert "newly-asked" in box(third_page, "guardian_phone")
    assert "newly-asked" not in box(third_page, "guardian")
    assert asked_input(third_page) == "guardian guardian_phone"
    booked = post(
        web,
        answers(third_page, field_age="12,5", field_guardian="Ana", field_guardian_phone="+33"),
    )
    assert booked.status_code == 302, booked.get_data(as_text=True)[:2000]
    assert bookings(scenario_app)[0].answers["guardian_phone"] == "+33"


def test_the_second_step_also_marks_the_other_answers_to_correct(
    web: Any, scenario_app: Any, now: datetime
) -> None:
    page = open_form(web, now)
    response = post(web, answers(page, field_visit_type="first", field_topic="", consent=None))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "A few more questions" in html and 'role="alert"' in html
    assert 'id="field_topic-error">This field is required.' in html
    assert 'id="consent-error">Your consent is needed to book.' in html
    assert "field_referral-error" not in html
    assert 'autofocus id="field_referral"' not in html  # the error summary has the focus
    assert bookings(scenario_app) == []


def test_an_expired_form_is_refused_before_any_question(web: Any, now: datetime) -> None:
    page = open_form(web, now)
    response = post(web, answers(page, field_visit_type="first", form_token="forged"))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "This form has expired" in html and "A few more questions" not in html


def test_a_question_the_client_saw_is_not_asked_again(
    web: Any, scenario_app: Any, now: datetime
) -> None:
    """Seen on the page (listed), left blank: a required one is reproached as usual."""
    page = open_form(web, now)
    response = post(web, answers(page, field_visit_type="first", asked="referral"))
    assert response.status_code == 422
    assert "field_referral-error" in response.get_data(as_text=True)
    assert bookings(scenario_app) == []


# --- a hostile list ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "listed",
    [
        "nope ../referral REFERRAL referral2 topic name",
        " ".join(f"q{n}" for n in range(10_000)),
        "\t\n\x00\x1b\u202e",
        "referral" * 1000,
    ],
    ids=["unknown ids", "10,000 ids", "controls", "run together"],
)
def test_a_hostile_list_is_ignored(web: Any, scenario_app: Any, now: datetime, listed: str) -> None:
    page = open_form(web, now)
    response = post(web, answers(page, field_visit_type="first", asked=listed))
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    assert "A few more questions" in response.get_data(as_text=True)
    assert asked_input(response.get_data(as_text=True)) == "referral"
    assert bookings(scenario_app) == []


def _form_bytes(values: dict[str, Any]) -> bytes:
    """A form body as a browser would send it, lone surrogates as their (invalid) UTF-8 bytes."""

    def quoted(value: str) -> str:
        return quote(value.encode("utf-8", "surrogatepass"), safe="")

    return "&".join(f"{quoted(k)}={quoted(v)}" for k, v in values.items()).encode("ascii")


def test_lone_surrogates_in_the_list_are_no_error(
    web: Any, scenario_app: Any, now: datetime
) -> None:
    page = open_form(web, now)
    asking = answers(page, field_visit_type="first", asked="\udfff referral\ud800")
    response = post(web, _form_bytes(asking))
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    assert "A few more questions" in response.get_data(as_text=True)
    # Next to an id, apart from it: the id counts, the rest is ignored.
    seen = answers(page, field_visit_type="first", field_referral="Dr Who")
    seen["asked"] = "\udfff referral \ud800"
    booked = post(web, _form_bytes(seen))
    assert booked.status_code == 302, booked.get_data(as_text=True)[:2000]
    assert len(bookings(scenario_app)) == 1


def test_without_conditional_questions_the_page_has_no_list(
    scenario_app: Any, now: datetime
) -> None:
    page = scenario_app.test_client().get(f"{URL}?start={quote(start_at(now))}&tz=Europe/Paris")
    assert page.status_code == 200
    assert 'name="asked"' not in page.get_data(as_text=True)


# --- the API's contract ---------------------------------------------------------------------------


def api_booking(now: datetime, hour: int, **answers: Any) -> dict[str, Any]:
    return {
        "start": start_at(now, hour),
        "client": {"name": "Zoé Martin", "email": "zoe@example.org", "locale": "fr"},
        "answers": {"topic": "Taxes", **answers},
        "consent": True,
    }


def test_through_the_api_a_hidden_required_question_is_not_needed_nor_stored(
    web: Any, scenario: Any, now: datetime
) -> None:
    url = "/api/v1/calendars/acme/services/consult/bookings"
    # A follow-up hides "Referred by" (required when asked): booked without it, and a value sent
    # for it anyway is dropped, as is the guardian of an adult.
    response = web.post(
        url,
        json=api_booking(
            now, 10, visit_type="follow_up", referral="Dr Secret", age=40, guardian="X"
        ),
    )
    assert response.status_code == 201, response.get_json()
    with scenario.database.sessions() as session:
        booking = session.scalar(sa.select(Booking).order_by(Booking.id.desc()))
        assert booking is not None
        assert booking.answers == {"topic": "Taxes", "visit_type": "follow_up", "age": 40}
    # A first visit asks it: refused without it, nothing written.
    refused = web.post(url, json=api_booking(now, 11, visit_type="first"))
    assert refused.status_code == 422
    assert "referral" in refused.get_json()["error"]["fields"]
