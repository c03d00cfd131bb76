"""A weekly course booked in a real browser, then one occurrence cancelled from the manage page
(issue 18): the tutoring scenario of the demo offers series."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import days_after, pick_time

pytestmark = pytest.mark.browser


def open_tutoring_form(page: Any, live: str, now: datetime) -> None:
    page.goto(f"{live}/bright-minds/tutoring?tz=America/New_York")
    pick_time(page, days_after(now, 2))
    page.wait_for_selector("form.booking-form")
    page.fill("#field_name", "Sam Parker")
    page.fill("#field_email", "sam@example.org")
    page.fill("#field_student_name", "Alex Parker")
    page.select_option("#field_level", "middle")
    page.locator("input[name=field_subjects][value=maths]").check()
    # Repeat: every week, 3 times.
    page.select_option("#repeat-frequency", "weekly")
    page.fill("#repeat-count", "3")


def test_book_a_weekly_series_then_cancel_one_occurrence(
    open_context: Callable[..., Any], live: str, now: datetime
) -> None:
    context = open_context(locale="en-US", timezone_id="America/New_York")
    page = context.new_page()
    open_tutoring_form(page, live, now)
    page.click("button[type=submit]")

    # Each occurrence is shown, free or not; nothing is booked yet.
    preview = page.locator("#series-preview")
    expect(preview).to_be_visible()
    occurrences = preview.locator("li.occurrence")
    expect(occurrences).to_have_count(3)
    free = preview.locator("li.occurrence.free").count()
    assert free >= 2
    assert page.locator("#field_student_name").input_value() == "Alex Parker"  # answers kept
    page.click(f"button:has-text('Book the series ({free} times')")

    page.wait_for_selector("text=Your series is booked")
    cancel_buttons = page.locator("button:has-text('Cancel this one')")
    expect(cancel_buttons).to_have_count(free)
    cancel_buttons.first.click()
    page.wait_for_selector("text=This occurrence has been cancelled")
    expect(page.locator("button:has-text('Cancel this one')")).to_have_count(free - 1)
    expect(page.locator("li.occurrence.status-cancelled")).to_have_count(1)


def test_the_series_pages_have_no_axe_violations(
    open_context: Callable[..., Any], live: str, now: datetime
) -> None:
    from tests.e2e.test_accessibility import Checker

    context = open_context(
        locale="en-GB",
        timezone_id="America/New_York",
        extra_http_headers={"Accept-Language": "en"},
    )
    page = context.new_page()
    checker = Checker(page, live)
    open_tutoring_form(page, live, now)
    checker.check("the booking form with Repeat")
    page.click("button[type=submit]")
    page.wait_for_selector("#series-preview")
    checker.check("the series' occurrences before booking")
    page.click("button:has-text('Book the series')")
    page.wait_for_selector("text=Your series is booked")
    checker.check("the series' manage page")


def _take_for_everyone(app: Any, start: datetime) -> None:
    """Book ``start`` of the tutoring until no tutor is free then."""
    from bookwise.bookings.services import BookingError, BookingRequest, book_from_answers
    from bookwise.db import unit_of_work

    database = app.extensions["bookwise"].database
    now = app.extensions["bookwise"].clock()
    values = {
        "name": "Someone Else",
        "email": "else@example.org",
        "student_name": "Kim",
        "level": "high",
        "subjects": ["physics"],
    }
    for _ in range(10):
        try:
            with unit_of_work(database.sessions, write=True) as session:
                request = BookingRequest(start=start, values=values, consent=True)
                book_from_answers(session, "bright-minds", "tutoring", request, now, plugins=None)
        except BookingError:
            return
    raise AssertionError("the time is still free after ten bookings")


def test_a_time_not_free_is_replaced_by_another_that_week(
    open_context: Callable[..., Any], live: str, now: datetime, app: Any
) -> None:
    from bookwise.bookings.recurrence import occurrence_starts

    context = open_context(locale="en-US", timezone_id="America/New_York")
    page = context.new_page()
    open_tutoring_form(page, live, now)
    first = datetime.fromisoformat(page.locator("input[name=start]").input_value())
    second = occurrence_starts(first, "weekly", 3, "America/New_York")[1]  # the centre's zone
    _take_for_everyone(app, second)
    page.click("button[type=submit]")

    preview = page.locator("#series-preview")
    expect(preview.locator("li.occurrence.not-free")).to_have_count(1)
    choice = preview.locator("select[name=replacement]")
    expect(choice).to_have_count(1)
    from tests.e2e.test_accessibility import Checker

    Checker(page, live).check("the series' occurrences with a replacement to pick")
    picked = choice.locator("option").nth(1)
    instead = datetime.fromisoformat(str(picked.get_attribute("value")).split("/")[1])
    choice.select_option(index=1)
    page.click("button:has-text('Book the series (2 times, and the replacements picked)')")

    page.wait_for_selector("text=Your series is booked")
    expect(page.locator("button:has-text('Cancel this one')")).to_have_count(3)
    listed = page.locator("li.occurrence").evaluate_all("items => items.map(i => i.dataset.start)")
    assert instead in [datetime.fromisoformat(s) for s in listed]
    expect(page.locator("text=Replaced by another time")).to_have_count(1)
