"""axe-core over the public pages and the back office, in Chromium, under the pages' own CSP.

axe's script comes from the installed ``axe-playwright-python`` package (no CDN) and is injected
by Playwright's ``evaluate``, which the page's Content-Security-Policy does not govern; the tests
check that the script ran, that it is the package's copy and that nothing was refused or fetched
from another host. Rules: WCAG 2.1 A and AA, and landmarks.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from axe_playwright_python.base import AXE_SCRIPT
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect
from sqlalchemy import select

from bookwise.accounts.services import create_user, grant_role
from bookwise.bookings.models import Booking
from bookwise.calendars.models import Calendar
from bookwise.db import unit_of_work
from bookwise.demo import seed_demo_bookings
from bookwise.instance import DEMO_ADMIN_EMAIL
from bookwise.notifications.services import seed_templates
from bookwise.notifications.templates import SHIPPED_TEMPLATES
from tests.e2e.helpers import days_after, fill_patient_visit, open_day

pytestmark = pytest.mark.browser

WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
# And two of axe's best practices that the back office once broke: every page has one main
# landmark, and all its content sits inside landmarks.
LANDMARKS = {"landmark-one-main": {"enabled": True}, "region": {"enabled": True}}
PASSWORD = "the demo administrator's password"
AXE_VERSION = re.search(r'axe\.version="([^"]+)"', AXE_SCRIPT)
PARIS = ZoneInfo("Europe/Paris")


def violations_report(where: str, violations: list[dict[str, Any]]) -> str:
    """One paragraph per broken rule: its id, impact, what it asks and where it fails."""
    lines = [f"{len(violations)} accessibility rule(s) broken on {where}:"]
    for violation in violations:
        nodes = violation["nodes"]
        lines.append(
            f"- {violation['id']} ({violation.get('impact')}): {violation['help']}"
            f" [{len(nodes)} element(s)] {violation.get('helpUrl', '')}"
        )
        for node in nodes[:3]:
            target = " ".join(str(t) for t in node["target"])
            summary = (node.get("failureSummary") or "").replace("\n", " ")
            lines.append(f"    at {target}: {summary[:300]}")
    return "\n".join(lines)


class Checker:
    """Runs axe on a page and remembers what the browser refused or fetched elsewhere."""

    def __init__(self, page: Any, base: str) -> None:
        self.page = page
        self.base = base
        self.axe = Axe()  # the package's own axe.min.js
        self.refused: list[str] = []
        self.foreign: list[str] = []
        page.on("console", self._console)
        page.on("request", self._request)

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.refused.append(message.text)

    def _request(self, request: Any) -> None:
        if not request.url.startswith((self.base, "data:", "about:")):
            self.foreign.append(request.url)

    def check(self, what: str) -> None:
        page = self.page
        page.wait_for_load_state("load")
        results = self.axe.run(
            page,
            options={
                "runOnly": {"type": "tag", "values": WCAG_21_AA},
                "rules": LANDMARKS,
                "resultTypes": ["violations"],
            },
        )
        assert page.evaluate("() => window.axe && window.axe.version") == (
            AXE_VERSION and AXE_VERSION.group(1)
        ), "axe did not run from the installed package"
        where = f"{what} ({page.url.removeprefix(self.base)})"
        violations = results.response["violations"]
        assert not violations, violations_report(where, violations)
        assert not self.refused, f"the CSP refused something on {where}: {self.refused}"
        assert not self.foreign, f"requests to other hosts from {where}: {self.foreign}"


@pytest.fixture
def demo_admin(app: Any, now: datetime) -> str:
    """The demo's superadmin (admin of every calendar) and its sample bookings around ``now``;
    the admin's e-mail."""
    database = app.extensions["bookwise"].database
    with unit_of_work(database.sessions) as session:
        seed_templates(session, [SHIPPED_TEMPLATES])
        user = create_user(
            session, DEMO_ADMIN_EMAIL, PASSWORD, name="Demo administrator", superadmin=True
        )
        for calendar in session.scalars(select(Calendar)):
            grant_role(session, user, calendar.id, "admin")
    with unit_of_work(database.sessions, write=True) as session:
        seed_demo_bookings(session, now)
    return DEMO_ADMIN_EMAIL


@pytest.fixture
def english(browser: Any) -> Iterator[Any]:
    context = browser.new_context(
        locale="en-GB",
        timezone_id="Europe/Paris",
        viewport={"width": 1280, "height": 900},
        extra_http_headers={"Accept-Language": "en"},
    )
    yield context
    context.close()


def test_axe_runs_from_the_package_under_the_pages_csp(english: Any, live: str) -> None:
    page = english.new_page()
    response = page.goto(live + "/")
    policy = response.headers.get("content-security-policy", "")
    # The policy stays strict (no eval, no inline script); axe runs all the same.
    assert "script-src 'self'" in policy and "unsafe-eval" not in policy
    checker = Checker(page, live)
    checker.check("the calendar list")
    assert not page.evaluate("() => !!document.querySelector('script[src*=axe]')")


def test_public_pages_have_no_axe_violations(english: Any, live: str, now: datetime) -> None:
    page = english.new_page()
    checker = Checker(page, live)
    page.goto(live + "/")
    checker.check("the calendar list")
    page.goto(live + "/clinique-des-lilas")
    checker.check("a calendar page")

    page.goto(live + "/clinique-des-lilas/patient-visit")
    page.locator("a.day.free").first.wait_for()
    checker.check("a service page's month picker")
    open_day(page, days_after(now, 1))
    page.locator("ul.slots a.slot").first.wait_for()
    checker.check("a service page with a day's times")

    page.locator("ul.slots a.slot").first.click()
    page.wait_for_selector("form.booking-form")
    checker.check("the booking form")
    fill_patient_visit(page, "Noah Williams", "noah@example.org", consent=False)
    page.click("button[type=submit]")
    page.wait_for_selector(".error-summary")
    checker.check("the booking form with an error")
    page.check("#consent")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/manage/[^/]+/booked"))
    checker.check("the confirmation page")

    page.goto(page.url.removesuffix("/booked"))
    checker.check("the manage page")


def test_back_office_pages_have_no_axe_violations(
    english: Any, live: str, app: Any, demo_admin: str
) -> None:
    page = english.new_page()
    checker = Checker(page, live)
    page.goto(live + "/login")
    checker.check("the sign-in page")
    page.fill("#email", demo_admin)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live + "/admin/")
    checker.check("the back office's home")

    page.goto(live + "/admin/bookings/")
    checker.check("the bookings list")
    with app.extensions["bookwise"].database.sessions() as session:
        booking_id = session.scalar(select(Booking.id).order_by(Booking.id).limit(1))
    assert booking_id is not None
    page.goto(f"{live}/admin/bookings/{booking_id}")
    checker.check("a booking")

    page.goto(live + "/admin/workflows/")
    checker.check("the scenarios")
    page.goto(live + "/admin/workflows/patient-visit/edit")
    checker.check("the structured scenario editor")

    page.goto(live + "/admin/templates/")
    checker.check("the messages")
    # And the other pages of the back office, as they come.
    for path in (
        "/admin/templates/confirmed/client/email/en",
        "/admin/bookings/grid",
        "/admin/bookings/grid?view=week",
        "/admin/bookings/new",
        # Why a time is not offered (the day view's click): any day will do, past or not.
        "/admin/bookings/explain?date=2027-03-02&time=08:00",
        "/admin/staff/",
        "/admin/services/",
        "/admin/reports/",
        "/admin/calendars/",
        "/admin/users/",
        "/admin/outbox/",
        "/admin/webhooks/",
        "/admin/audit/",
        "/admin/plugins/",
        "/admin/workflows/patient-visit/",
        "/admin/workflows/patient-visit/yaml",
        "/admin/workflows/new",
    ):
        page.goto(live + path)
        checker.check(path)


# --- the back office's scripts: the calendar switcher and the lists' rows ----------------------


def sign_in(page: Any, base: str, email: str) -> None:
    page.goto(base + "/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/admin/")


def test_the_calendar_switcher_opens_the_chosen_calendar(
    english: Any, live: str, demo_admin: str
) -> None:
    page = english.new_page()
    sign_in(page, live, demo_admin)
    switcher = page.locator("form.calendar-switcher")
    expect(switcher.locator("button[type=submit]")).to_be_hidden()
    # A choice with the mouse (or the list opened) opens the calendar at once.
    with page.expect_navigation():
        page.select_option("#bw-calendar", label="Northwind Talent")
    expect(page.locator("h1")).to_contain_text("Northwind Talent")
    assert page.url == live + "/admin/"
    # Browsing the closed list with the keyboard does not open each calendar on the way:
    # the button comes back, and Enter opens the one chosen.
    page.focus("#bw-calendar")
    page.keyboard.press("ArrowUp")
    expect(switcher.locator("button[type=submit]")).to_be_visible()
    expect(page.locator("h1")).to_contain_text("Northwind Talent")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "Northwind Talent" not in page.locator("h1").inner_text()


def test_a_click_on_a_line_of_a_list_opens_the_booking(
    english: Any, live: str, demo_admin: str
) -> None:
    page = english.new_page()
    sign_in(page, live, demo_admin)
    page.goto(live + "/admin/bookings/")
    row = page.locator("table.bookings tbody tr").first
    href = row.get_attribute("data-href")
    assert href and re.fullmatch(r"/admin/bookings/\d+", href)
    row.locator("td").nth(3).click()  # the staff member's cell: no link there
    page.wait_for_url(live + href)


def test_the_scenario_editor_and_the_wizard_have_no_axe_violations(
    english: Any, live: str, demo_admin: str
) -> None:
    """Issue 16: the editor with every part open (steps, more options, the live preview), with
    problems and their summary; the chooser, the guided form with its problems, and the publish
    step."""
    page = english.new_page()
    checker = Checker(page, live)
    page.goto(live + "/login")
    page.fill("#email", demo_admin)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live + "/admin/")

    page.goto(live + "/admin/workflows/hr-interview/edit")
    page.wait_for_load_state("load")
    page.evaluate("() => document.querySelectorAll('details').forEach(d => { d.open = true; })")
    page.fill("#name_en", "Job interview")  # the live preview follows
    expect(page.locator("#live-preview")).to_contain_text("Job interview", timeout=10_000)
    checker.check("the editor, everything open, with its live preview")
    page.fill("#duration", "0")
    page.click("button[value=save]")
    page.wait_for_selector("#problems a.alert-link")
    checker.check("the editor with problems and their summary")

    page.goto(live + "/admin/workflows/new")
    checker.check("the choice of a start")
    page.click("text=Guided: answer six questions")
    page.wait_for_load_state("load")
    checker.check("the guided form")
    page.click("form.wizard button[type=submit]")
    page.wait_for_selector(".invalid-feedback")
    checker.check("the guided form with problems")

    page.goto(live + "/admin/workflows/hr-interview/publish")
    checker.check("the publish step")
    page.goto(live + "/admin/templates/confirmed/client/email/en/history")
    checker.check("a template's history")
