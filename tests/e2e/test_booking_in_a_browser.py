"""A client's whole journey in a real browser: book, reschedule, cancel, embed, race."""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from bookwise.bookings.models import Booking
from bookwise.calendars.models import Calendar
from tests.e2e.helpers import days_after, fill_patient_visit, pick_time

pytestmark = pytest.mark.browser


def test_book_in_french_from_another_time_zone(
    open_context: Callable[..., Any], live: str, now: datetime
) -> None:
    """A visitor in Toronto books a Paris clinic in French, forgets the consent first."""
    context = open_context(locale="fr-FR", timezone_id="America/Toronto")
    page = context.new_page()
    page.goto(f"{live}/clinique-des-lilas/patient-visit")
    # The script detected the visitor's zone and the page shows times there.
    page.wait_for_url(re.compile(r"tz=America%2FToronto|tz=America/Toronto"))
    assert page.locator("select#tz").input_value() == "America/Toronto"
    assert page.locator("html").get_attribute("lang") == "fr"
    pick_time(page, days_after(now, 1))

    page.wait_for_selector("form.booking-form")
    assert "America/Toronto" in page.locator(".summary").inner_text()
    assert "Europe/Paris" in page.locator(".when-business").inner_text()
    page.fill("#field_name", "Zoé Martin")
    page.fill("#field_email", "zoe@example.org")
    page.fill("#field_date_of_birth", "1985-04-12")
    page.fill("#field_reason", "Douleur au genou depuis une semaine.")
    # "Who referred you?" is asked of a new patient only (show_if), as the box is ticked.
    referred = page.locator("#field_referred_by")
    expect(referred).to_be_hidden()
    asked = page.locator("input[name=asked]")
    assert asked.input_value() == ""
    page.check("#field_first_visit")
    expect(referred).to_be_visible()
    # The page tells the server the client saw the question: no second step with the script.
    assert asked.input_value() == "referred_by"
    referred.fill("Dr Martin")
    page.uncheck("#field_first_visit")
    expect(referred).to_be_hidden()
    page.check("#field_first_visit")
    page.click("button[type=submit]")

    # Consent was left unchecked: the error is announced and sits beside the box.
    alert = page.locator(".error-summary[role=alert]")
    assert alert.is_visible()
    assert (
        "Votre consentement est nécessaire pour réserver."
        in page.locator("#consent-error").inner_text()
    )
    assert page.locator("#consent").get_attribute("aria-invalid") == "true"
    assert page.locator("#field_name").input_value() == "Zoé Martin"  # answers kept

    page.check("#consent")
    page.click("button[type=submit]")
    page.wait_for_selector(".success")
    assert "Votre réservation est confirmée" in page.locator("h1").inner_text()
    details = page.locator("dl.booking-details").inner_text()
    assert "America/Toronto" in details and "Europe/Paris" in details
    with page.expect_download() as download:
        page.click("text=Ajouter à mon agenda (.ics)")
    assert download.value.suggested_filename == "booking.ics"


def test_reschedule_then_cancel_through_the_manage_link(
    open_context: Callable[..., Any], live: str, now: datetime
) -> None:
    """Booked two days ahead, well outside patient-visit's 4-hour cancellation notice whatever
    the hour, the booking can be moved, then cancelled."""
    context = open_context(locale="en-US", timezone_id="Europe/Paris")
    page = context.new_page()
    page.goto(f"{live}/clinique-des-lilas/patient-visit?tz=Europe/Paris")
    pick_time(page, days_after(now, 2))
    fill_patient_visit(page, "Sam Doe", "sam@example.org")
    page.click("button[type=submit]")
    page.wait_for_selector(".success")
    manage_url = page.locator(".manage-link a").get_attribute("href")

    page.goto(manage_url)
    page.click("text=Choose another time")
    page.wait_for_selector("[data-picker]")
    moved = pick_time(page, days_after(now, 3), nth=1)
    page.click("text=Yes, move it")
    page.wait_for_selector("text=Your booking has been moved.")
    assert moved in page.locator("dl.booking-details").inner_text()

    page.click("text=Cancel the booking")
    page.fill("#reason", "Feeling better")
    page.click("text=Yes, cancel it")
    page.wait_for_selector("text=Your booking has been cancelled.")
    assert page.locator(".status").inner_text() == "Cancelled"
    assert page.locator("text=Choose another time").count() == 0


class _HostPages(http.server.BaseHTTPRequestHandler):
    """A stranger's web site that puts the booking page in an iframe."""

    frame_url = ""

    def do_GET(self) -> None:
        body = (
            f"<!doctype html><title>Careers</title><h1>Join us</h1>"
            f'<iframe id="booking" src="{self.frame_url}" width="800" height="900">'
            f"</iframe>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def host_site(live: str) -> Iterator[str]:
    _HostPages.frame_url = f"{live}/embed/northwind-hr/hr-interview"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HostPages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield str(server.server_port)
    server.shutdown()
    thread.join()


def _allow(app: Any, origin: str) -> None:
    with app.extensions["bookwise"].database.sessions() as session, session.begin():
        calendar = session.scalar(sa.select(Calendar).where(Calendar.slug == "northwind-hr"))
        calendar.embed_origins = [origin]


def test_embedded_in_an_allowed_site_and_refused_by_another(
    open_context: Callable[..., Any], live: str, host_site: str, app: Any, now: datetime
) -> None:
    allowed = f"http://localhost:{host_site}"
    _allow(app, allowed)
    context = open_context(locale="en-US", timezone_id="Europe/Paris")
    page = context.new_page()
    page.goto(f"{allowed}/careers")
    frame = page.frame_locator("#booking")
    frame.locator("h1").wait_for()
    assert "Candidate interview" in frame.locator("h1").inner_text()
    assert frame.locator(".site-header").count() == 0
    # The whole flow works inside the frame (no cookie needed): book an interview. The
    # interview routes by position (workflows/hr-interview.yaml): it is asked before the times.
    expect(frame.locator("#picker-title")).to_have_count(0)
    frame.locator("form.routing #field_position").select_option("dev")
    frame.locator("form.routing button[type=submit]").click()
    # The answers load the page again, with the times: wait for it before reading the month.
    frame.locator("#picker-title").wait_for()
    pick_time(frame, days_after(now, 2))
    frame.locator("#field_name").fill("Ada Lovelace")
    frame.locator("#field_email").fill("ada@example.org")
    expect(frame.locator("#field_position")).to_have_value("dev")  # carried from the question
    frame.locator("#field_cv_url").fill("https://example.org/ada-cv")
    frame.locator("#consent").check()
    frame.locator("button[type=submit]").click()
    frame.locator(".success").wait_for()
    assert "Your request has been sent" in frame.locator("h1").inner_text()

    # The same page framed by a site the calendar does not list stays empty.
    refused = context.new_page()
    refused.goto(f"http://127.0.0.1:{host_site}/elsewhere")
    refused.wait_for_timeout(1500)
    inner = refused.frames[1] if len(refused.frames) > 1 else None
    assert inner is not None
    assert "Candidate interview" not in inner.content()


def test_a_candidate_answers_the_position_before_the_times(
    open_context: Callable[..., Any], live: str, app: Any, now: datetime
) -> None:
    """Issue 17, routing: the interview asks the position before any time, shows the times of
    the recruiters who hire for it, carries the answer into the form; the booking goes to a
    recruiter with the position's tag (workflows/hr-interview.yaml: sales -> business)."""
    context = open_context(locale="en-US", timezone_id="Europe/Paris")
    page = context.new_page()
    page.goto(f"{live}/northwind-hr/hr-interview?tz=Europe/Paris")
    routing = page.locator("form.routing")
    expect(routing).to_contain_text("First, a few questions")
    expect(page.locator("#picker-title")).to_have_count(0)  # no time before the answer
    routing.locator("#field_position").select_option("sales")
    routing.locator("button[type=submit]").click()
    page.locator("#picker-title").wait_for()
    expect(page.locator("form.routing #field_position")).to_have_value("sales")
    slot = page.locator("ul.slots a.slot").first
    slot.wait_for()
    assert "field_position=sales" in (slot.get_attribute("href") or "")
    pick_time(page, days_after(now, 2))

    page.wait_for_selector("form.booking-form")
    expect(page.locator("#field_position")).to_have_value("sales")
    page.fill("#field_name", "Grace Hopper")
    page.fill("#field_email", "grace@example.org")
    page.fill("#field_cv_url", "https://example.org/grace-cv")
    page.check("#consent")
    page.click("button[type=submit]")
    page.wait_for_selector(".success")
    with app.extensions["bookwise"].database.sessions() as session:
        (booking,) = session.scalars(sa.select(Booking))
        assert booking.answers["position"] == "sales"
        assert "business" in booking.staff_member.tags


def test_two_clients_race_for_the_same_time(
    open_context: Callable[..., Any], live: str, now: datetime
) -> None:
    """Both open the same time; the second to confirm is told and picks another, answers kept."""
    url = f"{live}/clinique-des-lilas/patient-visit?tz=Europe/Paris&staff=dr-moreau"
    pages = []
    for name in ("First", "Second"):
        context = open_context(locale="en-US", timezone_id="Europe/Paris")
        page = context.new_page()
        page.goto(url)
        pick_time(page, days_after(now, 1))
        fill_patient_visit(page, name, f"{name.lower()}@example.org")
        pages.append(page)
    pages[0].click("button[type=submit]")
    pages[0].wait_for_selector(".success")
    loser = pages[1]
    loser.click("button[type=submit]")
    loser.wait_for_selector(".error-summary")
    assert "This time was just taken" in loser.locator(".error-summary").inner_text()
    assert loser.locator("#field_name").input_value() == "Second"
    choices = loser.locator("input[name=start][type=radio]")
    assert choices.count() > 0
    assert not any(choices.nth(i).is_checked() for i in range(choices.count()))  # none for them
    choices.first.check()
    loser.check("#consent")
    loser.click("button[type=submit]")
    loser.wait_for_selector(".success")


@pytest.mark.parametrize("first_visit", [True, False], ids=["first visit", "known patient"])
def test_without_javascript_a_new_patient_is_asked_who_referred_them_on_a_second_step(
    open_context: Callable[..., Any], live: str, app: Any, now: datetime, first_visit: bool
) -> None:
    """Issue 17: without the script, "Who referred you?" (show_if: first_visit) is not on the
    first page; ticking "first visit" brings the form back with it, every answer kept, and the
    second submit books. A known patient books with one submit."""
    context = open_context(locale="en-US", timezone_id="Europe/Paris", java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{live}/clinique-des-lilas/patient-visit?tz=Europe/Paris")
    pick_time(page, days_after(now, 1))
    page.wait_for_selector("form.booking-form")
    referred = page.locator("#field_referred_by")
    expect(referred).to_be_hidden()
    fill_patient_visit(page, "Zoé Martin", "zoe@example.org")
    if first_visit:
        page.check("#field_first_visit")
    page.click("button[type=submit]")
    if first_visit:
        # The second step: nothing booked yet, the new question marked and focused.
        expect(page.locator(".more-questions")).to_contain_text("A few more questions")
        expect(referred).to_be_visible()
        expect(referred).to_be_focused()
        expect(page.locator(".newly-asked")).to_contain_text("New question")
        assert page.locator("#field_name").input_value() == "Zoé Martin"
        assert page.locator("#field_date_of_birth").input_value() == "1985-04-12"
        assert page.locator("#field_first_visit").is_checked()
        assert page.locator("#consent").is_checked()
        assert page.locator(".success").count() == 0
        with app.extensions["bookwise"].database.sessions() as session:
            assert session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 0
        referred.fill("Dr Martin")
        page.click("button[type=submit]")
    page.wait_for_selector(".success")
    with app.extensions["bookwise"].database.sessions() as session:
        (booking,) = session.scalars(sa.select(Booking))
        assert booking.answers.get("referred_by") == ("Dr Martin" if first_visit else None)
        assert booking.answers["first_visit"] is first_visit
