"""A staff member's own calendars and the feed of their bookings, in a real browser.

A calendar's administrator gives Dr Moreau's published calendar (a real HTTP server on loopback,
one meeting the next day she works, 10:00-11:00 Paris time) on her page: the page shows it read,
one busy time, and the booking page no longer offers her times that overlap the meeting. An
address that fails shows its problem in words; a web page saved as .ics is refused beside the
file field. A client books her; the private address made on her page is shown once, with a Copy
button, and serves that booking as iCalendar. The page is used with the keyboard and checked by
axe, in English and in French.
"""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from bookwise.accounts.services import create_user, grant_role
from bookwise.calendars.models import Calendar, StaffMember
from bookwise.db import unit_of_work
from bookwise.notifications.services import seed_templates
from bookwise.notifications.templates import SHIPPED_TEMPLATES
from tests.conftest import base_config, write_config
from tests.e2e.helpers import fill_patient_visit
from tests.e2e.test_accessibility import Checker

pytestmark = pytest.mark.browser

PARIS = ZoneInfo("Europe/Paris")
ADMIN = "secretariat@lilas-medical.example"
PASSWORD = "the practice's long password"
CLINIC = "clinique-des-lilas"
DOCTOR = "dr-moreau"  # works the calendar's hours: every morning but Sunday's
VISIT = timedelta(minutes=20)  # workflows/patient-visit.yaml
# A web page saved with an .ics name: what people download when they copy the page that shows
# a calendar instead of its .ics address.
WEB_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>My calendar</title></head><body>Calendar</body></html>\n"
)


@pytest.fixture
def config_file(tmp_path: Path, database_url: str) -> Path:
    """The tests' configuration, allowed to read calendar addresses on loopback (``feeds:
    allow_private_addresses`` is off by default: an address must not probe the intranet)."""
    values = base_config(tmp_path, database_url) | {
        "feeds": {"allow_private_addresses": True, "timeout": 5}
    }
    return write_config(tmp_path / "config.yaml", values)


def meeting_day(now: datetime) -> date:
    """Tomorrow in Paris, or Monday when tomorrow is a Sunday (the practice is closed then:
    nothing would be offered to take away)."""
    day = now.astimezone(PARIS).date() + timedelta(days=1)
    return day + timedelta(days=1) if day.weekday() == 6 else day


def ics_stamp(moment: datetime) -> str:
    return moment.astimezone(ZoneInfo("UTC")).strftime("%Y%m%dT%H%M%SZ")


def own_calendar(day: date) -> bytes:
    """Dr Moreau's calendar as Outlook publishes it: one meeting on ``day``, 10:00-11:00 in
    Paris (written in UTC), with a title and an attendee that must not be kept."""
    start = datetime.combine(day, time(10), PARIS)
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Bookwise browser tests//Own calendar//EN",
        "BEGIN:VEVENT",
        "UID:staff-meeting@lilas-medical.example",
        f"DTSTAMP:{ics_stamp(start - timedelta(days=7))}",
        f"DTSTART:{ics_stamp(start)}",
        f"DTEND:{ics_stamp(start + timedelta(hours=1))}",
        "SUMMARY:Staff meeting about Mrs Secret",
        "ATTENDEE:mailto:boss@lilas-medical.example",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


@dataclass
class CalendarServer:
    """A web server on loopback publishing Dr Moreau's calendar (``/moreau.ics``); any other
    path is a 404, like a calendar unpublished since."""

    base: str
    calendar: bytes
    reads: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.base + "/moreau.ics"


@pytest.fixture
def calendar_server(now: datetime) -> Iterator[CalendarServer]:
    published = CalendarServer("", own_calendar(meeting_day(now)))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            published.reads.append(self.path)
            if self.path == "/moreau.ics":
                status, body, kind = 200, published.calendar, "text/calendar; charset=utf-8"
            else:
                status, body, kind = 404, b"Not found", "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    published.base = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield published
    server.shutdown()
    server.server_close()
    thread.join()


@dataclass
class Practice:
    """The clinic's administrator (not a superadmin) and Dr Moreau's id."""

    email: str
    doctor_id: int


@pytest.fixture
def practice(app: Any) -> Practice:
    database = app.extensions["bookwise"].database
    with unit_of_work(database.sessions) as session:
        seed_templates(session, [SHIPPED_TEMPLATES])
        user = create_user(session, ADMIN, PASSWORD, name="Inès Secrétariat")
        calendar = session.scalar(select(Calendar).where(Calendar.slug == CLINIC))
        assert calendar is not None
        grant_role(session, user, calendar.id, "admin")
        doctor = session.scalar(
            select(StaffMember.id).where(
                StaffMember.calendar_id == calendar.id, StaffMember.slug == DOCTOR
            )
        )
        assert doctor is not None
    return Practice(ADMIN, doctor)


def offered(page: Any, base: str, day: date) -> list[datetime]:
    """The start times the booking page offers with Dr Moreau on ``day`` (read from the links,
    which carry the exact start)."""
    page.goto(
        f"{base}/{CLINIC}/patient-visit?staff={DOCTOR}&date={day.isoformat()}&tz=Europe/Paris"
    )
    hrefs = page.locator("ul.slots a.slot").evaluate_all("links => links.map(a => a.href)")
    starts = [datetime.fromisoformat(parse_qs(urlsplit(h).query)["start"][0]) for h in hrefs]
    return [s for s in starts if s.astimezone(PARIS).date() == day]


def overlaps_meeting(start: datetime, day: date) -> bool:
    meeting = datetime.combine(day, time(10), PARIS)
    return start < meeting + timedelta(hours=1) and start + VISIT > meeting


def sign_in(page: Any, base: str) -> None:
    page.goto(base + "/login")
    page.fill("#email", ADMIN)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/admin/")


def tab_to(page: Any, selector: str, presses: int = 120) -> list[str]:
    """Press Tab until ``selector`` has the focus (from where the focus is); what was focused on
    the way. Fails when it is never reached."""
    target = page.locator(selector)
    seen: list[str] = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        if target.evaluate("element => element === document.activeElement"):
            return seen
        seen.append(page.evaluate("() => document.activeElement.outerHTML.slice(0, 80)"))
    raise AssertionError(f"Tab never reached {selector}; it went through {seen}")


def focus_shows(page: Any) -> bool:
    """Whether the focused element shows it (an outline or Bootstrap's focus shadow)."""
    return bool(
        page.evaluate(
            """() => {
                const style = getComputedStyle(document.activeElement);
                return style.outlineStyle !== 'none' || style.boxShadow !== 'none';
            }"""
        )
    )


def check(checker: Checker, what: str) -> None:
    """axe on the page at rest: the mouse off the controls (one left where a click was would be
    caught halfway through its hover transition, in colours that are never at rest)."""
    page = checker.page
    box = page.locator("h1").bounding_box()
    assert box
    page.mouse.move(box["x"] + 2, box["y"] + box["height"] / 2)
    page.wait_for_function(
        "() => document.getAnimations().every(a => a.playState !== 'running')", polling=50
    )
    checker.check(what)


def test_own_calendars_and_the_feed_on_a_staff_members_page(
    open_context: Any,
    live: str,
    now: datetime,
    practice: Practice,
    calendar_server: CalendarServer,
    tmp_path: Path,
) -> None:
    day = meeting_day(now)
    client = open_context(
        locale="en-GB",
        timezone_id="Europe/Paris",
        viewport={"width": 1280, "height": 900},
        extra_http_headers={"Accept-Language": "en"},
    ).new_page()
    before = offered(client, live, day)
    assert any(overlaps_meeting(s, day) for s in before), (
        f"Dr Moreau has no time around 10:00 on {day} to take away: {before}"
    )

    office = open_context(
        locale="en-GB",
        timezone_id="Europe/Paris",
        viewport={"width": 1280, "height": 900},
        extra_http_headers={"Accept-Language": "en"},
    )
    office.grant_permissions(["clipboard-read", "clipboard-write"], origin=live)
    page = office.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on(
        "requestfailed",
        lambda r: None if r.failure == "net::ERR_ABORTED" else problems.append(f"failed: {r.url}"),
    )
    page.on(
        "response", lambda r: problems.append(f"{r.status}: {r.url}") if r.status >= 400 else None
    )
    sign_in(page, live)
    checker = Checker(page, live)

    # Her page, from the staff list.
    page.click("nav >> text=Staff")
    page.click("text=Dr Claire Moreau")
    page.wait_for_url(f"{live}/admin/staff/{practice.doctor_id}/")
    own = page.locator("#calendars")
    expect(own.locator("h2")).to_have_text("Own calendars")
    expect(own).to_contain_text("None yet.")

    # Her published calendar's address, read at once.
    own.locator("#url").fill(calendar_server.url)
    own.locator("button:has-text('Add and read it')").click()
    page.wait_for_url(re.compile(r"#calendars$"))
    expect(page.locator(".alert-success").first).to_contain_text(
        "Calendar added: 127.0.0.1/moreau.ics."
    )
    expect(page.locator(".alert-success").last).to_contain_text("Read: 1 busy time.")
    rows = own.locator("table.calendar-sources tbody tr")
    expect(rows).to_have_count(1)
    working = rows.nth(0).locator("td")
    expect(working.nth(0)).to_have_text("127.0.0.1/moreau.ics")
    expect(working.nth(1)).to_have_text("Working")
    expect(working.nth(2)).to_have_text("1")
    expect(working.nth(4)).to_have_text("Web address")
    assert calendar_server.reads == ["/moreau.ics"]

    # The booking page no longer offers her times that overlap the meeting; the others stay.
    after = offered(client, live, day)
    assert not [s for s in after if overlaps_meeting(s, day)], after
    assert [s for s in before if s < datetime.combine(day, time(9, 30), PARIS)] == [
        s for s in after if s < datetime.combine(day, time(9, 30), PARIS)
    ]
    assert [s for s in before if s >= datetime.combine(day, time(11), PARIS)] == [
        s for s in after if s >= datetime.combine(day, time(11), PARIS)
    ]

    # With the keyboard only: Tab from the top of the page reaches the address field, then its
    # button; an address that fails is added all the same, its problem said in words.
    page.goto(f"{live}/admin/staff/{practice.doctor_id}/")
    tab_to(page, "#calendars #url")
    assert focus_shows(page), "the focused address field does not show it"
    page.keyboard.type(calendar_server.base + "/unpublished.ics")
    page.keyboard.press("Tab")
    button = own.locator("form:has(#url) button[type=submit]")
    assert button.evaluate("element => element === document.activeElement")
    expect(button).to_have_text("Add and read it")
    assert focus_shows(page), "the focused button does not show it"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator(".alert-danger").first).to_contain_text(
        "There is no calendar at this address any more (the server answered 404)"
    )
    expect(rows).to_have_count(2)
    failing = rows.nth(1).locator("td")
    expect(failing.nth(0)).to_have_text("127.0.0.1/unpublished.ics")
    expect(failing.nth(1)).to_contain_text(
        "There is no calendar at this address any more (the server answered 404): it may have "
        "been unpublished or moved"
    )
    expect(failing.nth(1)).to_contain_text("Failing since")

    # A web page saved as .ics is refused beside the file field; nothing is added.
    saved = tmp_path / "my-calendar.ics"
    saved.write_bytes(WEB_PAGE)
    own.locator("#file").set_input_files(saved)
    own.locator("button:has-text('Upload and read it')").click()
    refusal = own.locator("#file-error")
    expect(refusal).to_contain_text("This is not an iCalendar file")
    expect(own.locator("#file")).to_have_attribute("aria-invalid", "true")
    expect(own.locator("#file")).to_have_attribute("aria-describedby", "file-error")
    # Beside the field: in the field's own group, just below it.
    group = own.locator(".form-group:has(#file)")
    expect(group.locator("#file-error")).to_have_count(1)
    field_box, refusal_box = own.locator("#file").bounding_box(), refusal.bounding_box()
    assert field_box and refusal_box
    assert 0 <= refusal_box["y"] - (field_box["y"] + field_box["height"]) < 80
    expect(rows).to_have_count(2)
    check(checker, "a staff member's page with a refused upload")
    # The refusal answers 422, as every form with errors does (Chromium logs it as an error).
    expected = [f"422: {live}/admin/staff/{practice.doctor_id}/calendars/file"]
    assert [p for p in problems if not p.startswith("Failed to load resource")] == expected, (
        problems
    )
    problems.clear()

    # A client books her, later that morning (the times the meeting leaves).
    client.goto(
        f"{live}/{CLINIC}/patient-visit?staff={DOCTOR}&date={day.isoformat()}&tz=Europe/Paris"
    )
    slot = client.locator("ul.slots a.slot").last
    booked = datetime.fromisoformat(
        parse_qs(urlsplit(slot.get_attribute("href") or "").query)["start"][0]
    )
    assert not overlaps_meeting(booked, day)
    slot.click()
    client.wait_for_selector("form.booking-form")
    fill_patient_visit(client, "Noah Williams", "noah@example.org")
    client.click("button[type=submit]")
    client.wait_for_url(re.compile(r"/manage/[^/]+/booked"))

    # The private address of her bookings: shown once, with a Copy button.
    page.goto(f"{live}/admin/staff/{practice.doctor_id}/")
    subscribe = page.locator("#subscribe")
    expect(subscribe.locator("h2")).to_have_text("Subscribe to Dr Claire Moreau's bookings")
    subscribe.locator("button:has-text('Make a private address')").click()
    address_field = subscribe.locator("#feed-address")
    expect(address_field).to_be_visible()
    address = address_field.input_value()
    assert re.fullmatch(re.escape(live) + r"/feeds/[^/]+\.ics", address), address
    expect(subscribe.locator("a[href^='webcal://']")).to_have_attribute(
        "href", "webcal://" + address.split("://", 1)[1]
    )
    copy = subscribe.locator("button.copy-button")
    expect(copy).to_be_visible()
    expect(copy).to_have_text("Copy")
    expect(rows).to_have_count(2)
    check(checker, "a staff member's page with the address just made")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("() => navigator.clipboard.readText()") == address

    # It serves her booking as iCalendar (asked with the page's request context; the client's
    # browser, never signed in, gets it too: the address is the only key).
    answer = page.request.get(address)
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/calendar")
    feed = answer.text().replace("\r\n ", "")
    assert feed.startswith("BEGIN:VCALENDAR")
    assert feed.count("BEGIN:VEVENT") == 1
    local = booked.astimezone(PARIS)
    assert re.search(
        rf"DTSTART(;TZID=Europe/Paris:{local:%Y%m%dT%H%M%S}|:{ics_stamp(booked)})", feed
    ), feed
    assert "SUMMARY:Consultation" in feed  # the service, in the practice's language
    assert "Noah Williams" not in feed  # clients' names are off by default
    assert "Mrs Secret" not in feed and "Staff meeting" not in feed
    anonymous = client.request.get(address)
    assert anonymous.status == 200 and anonymous.text().count("BEGIN:VEVENT") == 1

    # Shown once: the page opened again says when it was made and used, never the address.
    page.goto(f"{live}/admin/staff/{practice.doctor_id}/")
    expect(subscribe).to_contain_text("Address made on")
    expect(subscribe).to_contain_text("last used")
    expect(subscribe.locator("#feed-address")).to_have_count(0)
    assert address.rsplit("/", 1)[1].removesuffix(".ics") not in page.content()
    expect(subscribe.locator("button")).to_have_text(
        ["Make a new address (the old one stops working)", "Stop this address"]
    )
    check(checker, "a staff member's page with both sections")

    # In French.
    page.goto(f"{live}/admin/staff/{practice.doctor_id}/?lang=fr")
    expect(own.locator("h2")).to_have_text("Agendas personnels")
    expect(subscribe.locator("h2")).to_have_text("S'abonner aux réservations de Dr Claire Moreau")
    expect(rows.nth(0).locator("td").nth(1)).to_have_text("Fonctionne")
    expect(rows.nth(1).locator("td").nth(1)).to_contain_text(
        "Il n'y a plus d'agenda à cette adresse"
    )
    check(checker, "a staff member's page in French")
    assert not problems, problems
