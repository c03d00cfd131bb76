"""The public pages with a keyboard and on a phone, in Chromium (issue 12, part 4): the month is
one tab stop walked with the arrow keys; the manage link wraps without breaking the words around
it. The app runs on the suite's clock (``now``); the days are found on the page, not computed
from the wall clock."""

from __future__ import annotations

import calendar
import os
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import days_after, fill_patient_visit, pick_time

pytestmark = pytest.mark.browser

SERVICE = "/clinique-des-lilas/patient-visit?tz=Europe/Paris"


def _month_with_times(page: Any, live: str) -> str:
    """The URL of the picker on a month that has free times (the current one, or a later one
    when the current month has none left at the suite's instant)."""
    page.goto(f"{live}{SERVICE}")
    for _ in range(3):
        if page.locator("ul.slots a.slot").count():
            break
        page.locator("a[rel=next]").click()
        page.wait_for_load_state()
    assert page.locator("ul.slots a.slot").count(), "no free time in three months"
    return str(page.url)


def _focused(page: Any) -> dict[str, Any]:
    return dict(
        page.evaluate(
            """() => { const e = document.activeElement; return {
                 tag: e.tagName, cls: e.className || "", day: e.dataset ? e.dataset.day || "" : "",
                 slot: e.matches("a.slot"), inGrid: !!e.closest("[data-day-grid]") }; }"""
        )
    )


def test_the_first_time_is_a_few_tab_presses_away(browser: Any, live: str) -> None:
    context = browser.new_context(locale="en-US", timezone_id="Europe/Paris")
    page = context.new_page()
    url = _month_with_times(page, live)
    page.goto(url)
    page.wait_for_selector("[data-day-grid][role=grid]")  # the script has run
    presses = 0
    while presses < 60:
        page.keyboard.press("Tab")
        presses += 1
        if _focused(page)["slot"]:
            break
    # Skip link, site header, breadcrumb, staff and zone menus, button, month arrows, the
    # month (one stop), the first time: not one stop per day of the month any more.
    assert _focused(page)["slot"] and presses <= 15, presses
    day_stops = page.locator("[data-day-grid] [data-day][tabindex='0']").count()
    assert day_stops == 1
    context.close()


def test_arrow_keys_walk_the_month(browser: Any, live: str) -> None:
    context = browser.new_context(locale="en-US", timezone_id="Europe/Paris")
    page = context.new_page()
    page.goto(_month_with_times(page, live))
    page.wait_for_selector("[data-day-grid][role=grid]")
    for _ in range(40):
        page.keyboard.press("Tab")
        if _focused(page)["inGrid"]:
            break
    start = _focused(page)
    assert start["inGrid"] and "selected" in start["cls"]  # the chosen day is the tab stop
    first = date.fromisoformat(start["day"]).replace(day=1)
    last = first.replace(day=calendar.monthrange(first.year, first.month)[1])

    def press(key: str) -> date:
        page.keyboard.press(key)
        return date.fromisoformat(_focused(page)["day"])

    assert press("Control+Home") == first
    assert press("ArrowRight") == first + timedelta(days=1)
    assert press("ArrowDown") == first + timedelta(days=8)
    assert press("ArrowLeft") == first + timedelta(days=7)
    assert press("ArrowUp") == first
    assert press("ArrowUp") == first  # the month's edge holds
    sunday = first + timedelta(days=6 - first.weekday())
    assert press("End") == sunday
    assert press("Home") == first  # the first day of its week in this month
    assert press("Control+End") == last
    assert page.locator("[data-day-grid] [data-day][tabindex='0']").count() == 1
    # Shift+Tab and Tab come back to the day last visited.
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")
    assert _focused(page)["day"] == last.isoformat()

    # Enter chooses a free day: its times come, the focus stays on the day.
    free = page.eval_on_selector_all("a.day.free", "els => els.map(e => e.dataset.day)")
    chosen = start["day"]
    others = [d for d in free if d != chosen]
    if others:
        target = date.fromisoformat(others[0])
        press("Control+Home")
        for _ in range((target - first).days):
            page.keyboard.press("ArrowRight")
        assert _focused(page)["day"] == target.isoformat()
        label = page.locator("[data-day-label]").inner_text()
        page.keyboard.press("Enter")
        page.wait_for_function(
            "d => document.querySelector(`a.day[data-day='${d}']`)"
            ".getAttribute('aria-current') === 'date'",
            arg=target.isoformat(),
        )
        assert page.locator("[data-day-label]").inner_text() != label
        assert _focused(page)["day"] == target.isoformat()
        page.keyboard.press("Tab")
        assert _focused(page)["slot"]
    context.close()


def test_without_javascript_each_free_day_is_a_link(browser: Any, live: str) -> None:
    context = browser.new_context(locale="en-US", java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{live}{SERVICE}")
    free = page.locator("a.day.free")
    if not free.count():
        page.locator("a[rel=next]").click()
    assert page.locator("[data-day-grid]").get_attribute("role") is None
    day = free.last.get_attribute("data-day")
    assert free.last.get_attribute("tabindex") is None
    free.last.click()
    page.wait_for_url(re.compile(f"date={day}"))
    assert page.locator("a.day.free.selected").get_attribute("data-day") == day
    context.close()


def test_on_a_phone_only_the_manage_link_breaks(
    open_context: Any, live: str, tmp_path: Path, now: datetime
) -> None:
    context = open_context(
        locale="en-US", timezone_id="Europe/Paris", viewport={"width": 375, "height": 800}
    )
    page = context.new_page()
    page.goto(f"{live}{SERVICE}")
    pick_time(page, days_after(now, 1))
    fill_patient_visit(page, "Sam Doe", "sam@example.org")
    page.click("button[type=submit]")
    page.wait_for_selector(".manage-link a")
    # BOOKWISE_SCREENSHOTS=dir keeps the picture, to look at.
    shots = Path(os.environ.get("BOOKWISE_SCREENSHOTS") or tmp_path)
    page.screenshot(path=str(shots / "manage-link-375.png"), full_page=True)
    # Each word of the sentence sits on one line; the link may wrap, but stays on the screen.
    split_words = page.evaluate(
        """() => {
          const text = document.querySelector(".manage-link").firstChild;
          const split = [];
          const re = /\\S+/g;
          let m;
          while ((m = re.exec(text.data))) {
            const range = document.createRange();
            range.setStart(text, m.index);
            range.setEnd(text, m.index + m[0].length);
            const tops = new Set(Array.from(range.getClientRects(), r => Math.round(r.top)));
            if (tops.size > 1) split.push(m[0]);
          }
          return split;
        }"""
    )
    assert split_words == []
    link = page.locator(".manage-link a").bounding_box()
    assert link is not None and link["x"] + link["width"] <= 375
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    context.close()
