"""Refresh the screenshots in docs/screenshots/: `make screenshots`.

Starts Bookwise on a throwaway demo database and photographs its pages with the system's
Chromium (Playwright; no browser download). `tools/screenshots.py NAME.png ...` refreshes only
the files named.
"""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
# The demo stands at this instant (bookwise run --at): the same pictures whatever the day.
INSTANT = "2026-12-07T09:30 Europe/Paris"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

# The files to refresh (the command's arguments); empty: all of them.
ONLY: set[str] = set()


def wanted(*names: str) -> bool:
    return not ONLY or any(name in ONLY for name in names)


def shoot(page: Any, name: str, **options: Any) -> None:
    """Save ``page`` as docs/screenshots/``name`` (when it is one of the files wanted)."""
    if wanted(name):
        page.screenshot(path=str(OUT / name), **options)
        print(f"wrote docs/screenshots/{name}")


# (file name, path, viewport width, height, language)
SHOTS = [
    ("home.png", "/", 1280, 800, "en"),
    ("calendar-fr.png", "/clinique-des-lilas", 1280, 800, "fr"),
    ("calendar-mobile.png", "/bright-minds", 390, 844, "en"),
    ("booking-desktop.png", "/clinique-des-lilas/patient-visit", 1280, 900, "fr"),
    ("booking-mobile.png", "/northwind-hr/hr-interview", 390, 844, "en"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def confirmation(browser: Any, base: str) -> None:
    """Book the clinic in French, then photograph the form and the confirmation page."""
    if not wanted("form-fr.png", "confirmation-fr.png"):
        return
    context = browser.new_context(
        viewport={"width": 1280, "height": 900},
        locale="fr",
        timezone_id="Europe/Paris",
        extra_http_headers={"Accept-Language": "fr"},
    )
    page = context.new_page()
    page.goto(base + "/clinique-des-lilas/patient-visit?tz=Europe/Paris")
    page.locator("a.day.free").first.click()
    page.locator("ul.slots a.slot").first.wait_for()
    page.locator("ul.slots a.slot").first.click()
    page.fill("#field_name", "Zoé Martin")
    page.fill("#field_email", "zoe@example.org")
    page.fill("#field_date_of_birth", "1985-04-12")
    page.fill("#field_reason", "Douleur au genou depuis une semaine.")
    shoot(page, "form-fr.png", full_page=True)
    page.check("#consent")
    page.click("button[type=submit]")
    page.wait_for_selector(".success")
    shoot(page, "confirmation-fr.png", full_page=True)
    context.close()


def meeting_confirmation(browser: Any, base: str) -> None:
    """A candidate books an HR interview: the confirmation carries the Jitsi room of the plugin."""
    if not wanted("confirmation-meeting.png"):
        return
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="en", timezone_id="Europe/Paris"
    )
    page = context.new_page()
    # The interview routes by position: answered in the address, the times show at once.
    page.goto(base + "/northwind-hr/hr-interview?routed=1&field_position=dev")
    page.locator("a.day.free").first.click()
    page.locator("ul.slots a.slot").first.wait_for()
    page.locator("ul.slots a.slot").first.click()
    page.fill("#field_name", "Sam Candidate")
    page.fill("#field_email", "sam@example.org")
    page.select_option("#field_position", "dev")
    page.fill("#field_cv_url", "https://example.org/cv.pdf")
    page.check("#consent")
    page.click("button[type=submit]")
    page.wait_for_selector(".success")
    shoot(page, "confirmation-meeting.png", full_page=True)
    context.close()


ADMIN_SHOTS = [
    # (file name, path, language)
    ("admin-home.png", "/admin/", "en"),
    ("admin-week.png", "/admin/bookings/grid?view=week", "en"),
    ("admin-bookings.png", "/admin/bookings/", "en"),
    ("admin-editor.png", "/admin/workflows/hr-interview/edit", "en"),
    ("admin-template-fr.png", "/admin/templates/confirmed/client/email/fr", "fr"),
    ("admin-reports.png", "/admin/reports/", "en"),
    ("admin-plugins.png", "/admin/plugins/", "en"),
    # Why a support candidate cannot book 09:00 on Christmas Eve: routing, hours, a holiday.
    (
        "admin-explain.png",
        "/admin/bookings/explain?start=2026-12-24T09:00:00%2B01:00&field_position=support",
        "en",
    ),
]


def sign_in_to_northwind(page: Any, base: str, folder: str) -> None:
    """Sign in as the demo administrator and choose the HR calendar."""
    email, password = (Path(folder) / "instance" / "demo-admin.txt").read_text().split()
    page.goto(base + "/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/admin/**")  # signed in (slow when the machine is busy)
    if "Northwind Talent" not in page.locator("#bw-calendar option:checked").inner_text():
        # Choosing a calendar opens it (admin.js).
        with page.expect_navigation():
            page.select_option("#bw-calendar", label="Northwind Talent")


def back_office(browser: Any, base: str, folder: str) -> None:
    """Sign in as the demo administrator, choose the HR calendar, photograph the back office."""
    for name, path, lang in ADMIN_SHOTS:
        if not wanted(name):
            continue
        context = browser.new_context(
            viewport={"width": 1360, "height": 900},
            locale=lang,
            timezone_id="Europe/Paris",
            extra_http_headers={"Accept-Language": lang},
        )
        page = context.new_page()
        sign_in_to_northwind(page, base, folder)
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
        shoot(page, name, full_page=name != "admin-editor.png")
        context.close()


def published_calendar(day: str) -> bytes:
    """A recruiter's work calendar as Outlook publishes it: one meeting on ``day`` (ISO),
    10:00-11:00 in Paris."""
    start = datetime.fromisoformat(f"{day}T10:00").replace(tzinfo=ZoneInfo("Europe/Paris"))

    def utc(moment: datetime) -> str:
        return moment.astimezone(ZoneInfo("UTC")).strftime("%Y%m%dT%H%M%SZ")

    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Bookwise screenshots//EN",
        "BEGIN:VEVENT",
        "UID:team-meeting@northwind.example",
        f"DTSTAMP:{utc(start - timedelta(days=7))}",
        f"DTSTART:{utc(start)}",
        f"DTEND:{utc(start + timedelta(hours=1))}",
        "SUMMARY:Team meeting",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


@contextmanager
def calendar_server(body: bytes) -> Iterator[str]:
    """A web server on loopback publishing one calendar at ``/outlook/amelie.ics`` (any other
    path answers 404, as a calendar unpublished since); its address."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = self.path == "/outlook/amelie.ics"
            answer = body if found else b"Not found"
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "text/calendar" if found else "text/plain")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def staff_calendars(browser: Any, base: str, folder: str) -> None:
    """Amélie's own calendars (one address read, one that fails) and her bookings' private
    address, on her page in the back office."""
    if not wanted("admin-staff-calendars.png", "admin-staff-subscribe.png"):
        return
    tomorrow = date.fromisoformat(INSTANT[:10]) + timedelta(days=1)  # a Tuesday
    with calendar_server(published_calendar(tomorrow.isoformat())) as server:
        context = browser.new_context(
            viewport={"width": 1280, "height": 900},
            locale="en",
            timezone_id="Europe/Paris",
            extra_http_headers={"Accept-Language": "en"},
        )
        page = context.new_page()
        sign_in_to_northwind(page, base, folder)
        page.goto(base + "/admin/staff/")
        page.click("text=Amélie Laurent")
        page.wait_for_url("**/admin/staff/*/")
        staff_page = page.url
        for address in (server + "/outlook/amelie.ics", server + "/google/amelie-private.ics"):
            page.fill("#calendars #url", address)
            with page.expect_navigation():
                page.click("#calendars button:has-text('Add and read it')")
        # The page opened again, without the messages of the additions, at the section.
        page.goto(staff_page + "#calendars")
        page.wait_for_load_state("networkidle")
        shoot(page, "admin-staff-calendars.png")
        page.click("#subscribe button:has-text('Make a private address')")
        page.locator("#feed-address").wait_for()
        page.locator("#subscribe").scroll_into_view_if_needed()
        page.wait_for_load_state("networkidle")
        shoot(page, "admin-staff-subscribe.png")
        context.close()


def main(argv: list[str]) -> int:
    ONLY.update(argv)
    unknown = ONLY - {
        *(shot[0] for shot in SHOTS),
        *(shot[0] for shot in ADMIN_SHOTS),
        "form-fr.png",
        "confirmation-fr.png",
        "confirmation-meeting.png",
        "admin-staff-calendars.png",
        "admin-staff-subscribe.png",
    }
    if unknown:
        print(f"no such screenshot: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "config.yaml"
        config.write_text(
            f"database_url: sqlite:///{folder}/shots.db\ninstance_dir: {folder}/instance\n"
            f"workflows: {ROOT / 'workflows'}\nforms: {ROOT / 'forms'}\n"
            f"demo_data: {ROOT / 'demo' / 'calendars.yaml'}\n"
            # The demo's plugins (config.yaml), so that the HR interview has its meeting link.
            "plugins:\n  enabled: [jitsi, sms_http, chat_webhook]\n"
            "  jitsi: {server: 'https://meet.jit.si'}\n"
            "  sms_http: {api_url: 'https://sms-gateway.invalid', account: DEMO,"
            " token: demo-token-not-secret, from_number: '+33700000000', dry_run: true}\n"
            "  chat_webhook: {url: 'https://chat.invalid/hooks/demo', dry_run: true}\n"
            # The recruiters' own calendars are served on loopback (staff_calendars).
            "feeds: {allow_private_addresses: true, timeout: 5}\n"
        )
        server = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "bookwise"),
                "run",
                "--config",
                str(config),
                "--port",
                str(port),
                "--at",
                INSTANT,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    urllib.request.urlopen(base + "/healthz", timeout=2)
                    break
                except OSError:
                    time.sleep(0.2)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                for name, path, width, height, lang in SHOTS:
                    if not wanted(name):
                        continue
                    context = browser.new_context(
                        viewport={"width": width, "height": height},
                        locale=lang,
                        timezone_id="Europe/Paris",
                        extra_http_headers={"Accept-Language": lang},
                    )
                    page = context.new_page()
                    page.goto(base + path)
                    page.wait_for_load_state("networkidle")
                    shoot(page, name, full_page=True)
                    context.close()
                confirmation(browser, base)
                meeting_confirmation(browser, base)
                back_office(browser, base, folder)
                staff_calendars(browser, base, folder)
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
