"""The API's browsable page (/api/v1/docs) in Chromium, under the app's Content-Security-Policy:
Swagger UI loads from the instance itself, reads the OpenAPI 3.1 document and lists the
operations, and the browser reports no CSP violation and asks nothing of another host."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_the_api_page_renders_the_document(live: Any, open_context: Any) -> None:
    page = open_context().new_page()
    problems: list[str] = []
    elsewhere: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: None if r.url.startswith(live) else elsewhere.append(r.url))
    page.goto(f"{live}/api/v1/docs")
    expect(page.get_by_text("Bookwise API").first).to_be_visible()
    expect(page.locator(".opblock").first).to_be_visible()
    assert page.locator(".opblock").count() >= 14
    expect(page.get_by_text("Book a time, or a series of times")).to_be_visible()
    assert not [p for p in problems if "Content Security Policy" in p], problems
    assert not [p for p in problems if "Unable to render" in p], problems
    assert not [u for u in elsewhere if not u.startswith("data:")], elsewhere
