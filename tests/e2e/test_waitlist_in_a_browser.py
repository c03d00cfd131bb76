"""The waitlist in Chromium (issue 18): a place offered by e-mail (real SMTP on loopback) and
accepted from the message's link; an offer not taken in time that passes to the next in line,
whose link then takes it. The school of tests/test_waitlist.py, served on loopback."""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect
from werkzeug.serving import make_server

from bookwise.bookings.offers import expire_offers
from bookwise.clock import Clock
from bookwise.db import unit_of_work
from bookwise.notifications.delivery import Dispatcher
from tests.conftest import Inbox, Loaded
from tests.test_waitlist import (  # noqa: F401
    book_lesson,
    cancel,
    entries,
    full_class,
    join,
    school,
    session_start,
)

pytestmark = pytest.mark.browser


@pytest.fixture
def served(school: Loaded, clock: Clock) -> Iterator[tuple[str, Loaded]]:  # noqa: F811
    """The school's app on 127.0.0.1, its messages' links pointing there."""
    from bookwise.app import create_app

    app = create_app(school.settings, clock=clock)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    settings = dataclasses.replace(school.settings, base_url=base)
    app.extensions["bookwise"].settings = settings
    yield base, Loaded(settings, school.database)
    server.shutdown()
    thread.join()
    app.extensions["bookwise"].database.engine.dispose()


def send(loaded: Loaded, at: datetime) -> None:
    Dispatcher(loaded.settings, loaded.database, clock=lambda: at).drain()


def offer_link(inbox: Inbox, address: str) -> str:
    (message,) = [m for m in inbox.to(address) if "A place is free" in m["Subject"]]
    body = message.get_body(preferencelist=("plain",)).get_content()
    found = re.search(r"(http://127\.0\.0\.1:\d+/manage/wl-\S+)", body)
    assert found is not None, body
    return found.group(1)


def test_an_offer_accepted_from_the_e_mail_link(
    browser: Any, served: tuple[str, Loaded], inbox: Inbox, now: datetime
) -> None:
    _base, loaded = served
    start, bookings = full_class(loaded, now)
    join(loaded, start, now, 1)
    cancel(loaded, bookings[0], now)
    send(loaded, now)
    link = offer_link(inbox, "w1@example.org")

    page = browser.new_context(locale="en").new_page()
    page.goto(link)
    expect(page.locator(".waitlist-state")).to_contain_text("A place is free for you")
    page.click("button:has-text('Accept')")
    expect(page.locator("h1")).to_have_text("Your booking is confirmed")
    assert entries(loaded)["w1@example.org"].state == "booked"


def test_an_offer_not_taken_in_time_passes_to_the_next_in_line(
    browser: Any, served: tuple[str, Loaded], inbox: Inbox, now: datetime
) -> None:
    _base, loaded = served
    start, bookings = full_class(loaded, now)
    join(loaded, start, now, 1)
    join(loaded, start, now, 2)
    cancel(loaded, bookings[0], now)
    send(loaded, now)
    first = offer_link(inbox, "w1@example.org")
    later = now + timedelta(hours=2, minutes=1)
    with unit_of_work(loaded.database.sessions, write=True) as session:
        assert expire_offers(session, later) == 1
    send(loaded, later)
    second = offer_link(inbox, "w2@example.org")

    page = browser.new_context(locale="en").new_page()
    page.goto(first)
    expect(page.locator(".waitlist-state")).to_contain_text("has gone to the next person")
    expect(page.locator("button:has-text('Accept')")).to_have_count(0)
    page.goto(second)
    expect(page.locator(".waitlist-state")).to_contain_text("A place is free for you")
    page.click("button:has-text('Accept')")
    expect(page.locator("h1")).to_have_text("Your booking is confirmed")
    found = entries(loaded)
    assert (found["w1@example.org"].state, found["w2@example.org"].state) == ("expired", "booked")


def test_a_full_time_waited_for_from_the_times_of_a_day(
    browser: Any, served: tuple[str, Loaded], now: datetime
) -> None:
    base, loaded = served
    start = session_start(now) - timedelta(hours=8)  # 10:00, a lesson
    book_lesson(loaded, start, now)
    day = start.date()
    page = browser.new_context(locale="en", timezone_id="Europe/Paris").new_page()
    # The page opens on another day; the script switches to the lesson's day in place.
    page.goto(f"{base}/school/lesson?date={(day + timedelta(days=1)).isoformat()}&tz=Europe/Paris")
    page.click(f"a.day[data-day='{day.isoformat()}']")
    full = page.locator("[data-full-times] li")
    expect(full).to_have_count(1)
    expect(full).to_contain_text("10:00")
    full.locator("a.join-waitlist").click()
    expect(page.locator("h1")).to_have_text("Join the waitlist")
    page.fill("#field_name", "Wanda")
    page.fill("#field_email", "wanda@example.org")
    # The question asked only for an exam appears as the answer is chosen.
    expect(page.locator("#field_exam_day")).to_be_hidden()
    page.select_option("#field_goal", "exam")
    page.fill("#field_exam_day", (day + timedelta(days=20)).isoformat())
    page.click("button:has-text('Join the waitlist')")
    expect(page.locator(".notice, .waitlist-state").first).to_contain_text("on the waitlist")
    entry = entries(loaded)["wanda@example.org"]
    assert entry.wanted_from == entry.wanted_until == start
    assert entry.answers["goal"] == "exam"
