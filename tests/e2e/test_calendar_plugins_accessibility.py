"""axe-core over a calendar's settings page with its Plugins group (shown only when the instance
enables a plugin of its own: here the repository's jitsi), with an error on the group."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from sqlalchemy import select

from bookwise.calendars.models import Calendar
from bookwise.plugins.host import PluginHost
from tests.e2e.test_accessibility import PASSWORD, Checker, demo_admin, english

pytestmark = pytest.mark.browser
__all__ = ["demo_admin", "english"]  # the fixtures this module uses from the accessibility tests


def test_the_plugins_group_of_a_calendar_has_no_axe_violations(
    english: Any, live: str, app: Any, demo_admin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bookwise = app.extensions["bookwise"]
    settings = dataclasses.replace(
        bookwise.settings,
        plugins={"enabled": ["jitsi"], "jitsi": {"server": "https://meet.example.org"}},
    )
    monkeypatch.setattr(
        bookwise.database, "plugins", PluginHost(settings, bookwise.database.sessions).load()
    )
    with bookwise.database.sessions() as session:
        calendar_id = session.scalar(
            select(Calendar.id).where(Calendar.slug == "clinique-des-lilas")
        )
    page = english.new_page()
    checker = Checker(page, live)
    page.goto(live + "/login")
    page.fill("#email", demo_admin)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live + "/admin/")

    page.goto(f"{live}/admin/calendars/{calendar_id}/")
    page.check("#plugin_choice-1")
    checker.check("a calendar's settings with its plugins")
    page.check("#plugins-0")
    # A name the instance does not enable, as a stale form would send it: refused on the group.
    page.evaluate("() => { document.querySelector('#plugins-0').value = 'jitsy'; }")
    page.click("form.card button[type=submit]")
    page.wait_for_selector("#plugins-error")
    assert "jitsy is not a plugin enabled on this Bookwise" in page.inner_text("#plugins")
    checker.check("a calendar's settings with an error on its plugins")
