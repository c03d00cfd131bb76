"""Refresh the screenshots in docs/screenshots/: `make screenshots`.

Starts Bookwise on a throwaway demo database and photographs its pages with the system's
Chromium (Playwright; no browser download).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

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
    page.screenshot(path=str(OUT / "form-fr.png"), full_page=True)
    print("wrote docs/screenshots/form-fr.png")
    page.check("#consent")
    page.click("button[type=submit]")
    page.wait_for_selector(".success")
    page.screenshot(path=str(OUT / "confirmation-fr.png"), full_page=True)
    print("wrote docs/screenshots/confirmation-fr.png")
    context.close()


def meeting_confirmation(browser: Any, base: str) -> None:
    """A candidate books an HR interview: the confirmation carries the Jitsi room of the plugin."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="en", timezone_id="Europe/Paris"
    )
    page = context.new_page()
    page.goto(base + "/northwind-hr/hr-interview")
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
    page.screenshot(path=str(OUT / "confirmation-meeting.png"), full_page=True)
    print("wrote docs/screenshots/confirmation-meeting.png")
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
]


def back_office(browser: Any, base: str, folder: str) -> None:
    """Sign in as the demo administrator, choose the HR calendar, photograph the back office."""
    email, password = (Path(folder) / "instance" / "demo-admin.txt").read_text().split()
    for name, path, lang in ADMIN_SHOTS:
        context = browser.new_context(
            viewport={"width": 1360, "height": 900},
            locale=lang,
            timezone_id="Europe/Paris",
            extra_http_headers={"Accept-Language": lang},
        )
        page = context.new_page()
        page.goto(base + "/login")
        page.fill("#email", email)
        page.fill("#password", password)
        page.click("button[type=submit]")
        page.wait_for_url("**/admin/**")  # signed in (slow when the machine is busy)
        if "Northwind Talent" not in page.locator("#bw-calendar option:checked").inner_text():
            # Choosing a calendar opens it (admin.js).
            with page.expect_navigation():
                page.select_option("#bw-calendar", label="Northwind Talent")
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(OUT / name), full_page=name != "admin-editor.png")
        print(f"wrote docs/screenshots/{name}")
        context.close()


def main() -> int:
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
                    context = browser.new_context(
                        viewport={"width": width, "height": height},
                        locale=lang,
                        timezone_id="Europe/Paris",
                        extra_http_headers={"Accept-Language": lang},
                    )
                    page = context.new_page()
                    page.goto(base + path)
                    page.wait_for_load_state("networkidle")
                    page.screenshot(path=str(OUT / name), full_page=True)
                    context.close()
                    print(f"wrote docs/screenshots/{name}")
                confirmation(browser, base)
                meeting_confirmation(browser, base)
                back_office(browser, base, folder)
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
