"""What the browser tests do again and again: pick a time the workflow's rules allow, fill in
the patient visit's form."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

PARIS = ZoneInfo("Europe/Paris")


def days_after(now: datetime, days: int) -> date:
    """The day ``days`` days after ``now`` in the clinic's time zone."""
    return now.astimezone(PARIS).date() + timedelta(days=days)


def pick_time(page: Any, not_before: date, nth: int = 0) -> str:
    """Click the first free day on or after ``not_before`` (turning months as needed), then its
    ``nth`` time; return the time's label. Tests choose ``not_before`` from the workflow's rules
    (notice, cancellation deadline), never "whatever is free first": a time offered right at
    the edge of the notice is gone a second later. ``page`` may be a frame."""
    open_day(page, not_before)
    slot = page.locator("ul.slots a.slot").nth(nth)
    slot.wait_for()
    label = str(slot.inner_text())
    slot.click()
    return label


def open_day(page: Any, not_before: date) -> str:
    """Show the times of the first free day on or after ``not_before``; that day (ISO)."""
    for _ in range(4):
        days = page.locator("a.day.free").evaluate_all("links => links.map(a => a.dataset.day)")
        later = [d for d in days if date.fromisoformat(d) >= not_before]
        if later:
            break
        month = page.locator("#picker-title").inner_text()
        page.locator("a[rel=next]").click()
        expect(page.locator("#picker-title")).not_to_have_text(month)
    else:
        raise AssertionError(f"no free day on or after {not_before} in four months")
    day = page.locator(f'a.day.free[data-day="{later[0]}"]')
    if "selected" not in (day.get_attribute("class") or ""):
        # The script fetches the day's times and replaces the list: wait until the old times
        # are gone, or one of them may be clicked as it is replaced (seen on a loaded machine).
        old = page.locator("ul.slots a.slot")
        old.evaluate_all("links => links.forEach(a => a.classList.add('stale'))")
        day.click()
        expect(page.locator("ul.slots a.slot.stale")).to_have_count(0)
    page.locator(f'a.day.selected[data-day="{later[0]}"]').wait_for()
    return str(later[0])


def fill_patient_visit(page: Any, name: str, email: str, consent: bool = True) -> None:
    """The patient visit's form (the demo clinic), answered."""
    page.fill("#field_name", name)
    page.fill("#field_email", email)
    page.fill("#field_date_of_birth", "1985-04-12")
    page.fill("#field_reason", "A sore knee for a week.")
    if consent:
        page.check("#consent")
