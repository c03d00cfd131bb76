"""A calendar's Plugins group in the back office: every plugin of the instance, or only some."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
from sqlalchemy import select

from bookwise.audit.models import AuditEntry
from bookwise.calendars.models import Calendar
from bookwise.plugins.host import PluginHost
from tests.admin.conftest import World, db, fetch, post
from tests.admin.test_calendars_admin import settings_form

EVERY = "All the plugins of this site"


@pytest.fixture
def jitsi(world: World, monkeypatch: pytest.MonkeyPatch) -> PluginHost:
    """The world's instance with the jitsi plugin enabled (installed with the repository)."""
    bookwise = world.app.extensions["bookwise"]
    settings = dataclasses.replace(
        bookwise.settings,
        plugins={"enabled": ["jitsi"], "jitsi": {"server": "https://meet.example.org"}},
    )
    host = PluginHost(settings, bookwise.database.sessions).load()
    assert host.plugins["jitsi"].state == "loaded", host.plugins["jitsi"].problems
    monkeypatch.setattr(bookwise.database, "plugins", host)
    return host


def checked(page: str, input_id: str) -> bool:
    tag = re.search(rf'<input[^>]* id="{input_id}"[^>]*>', page)
    assert tag is not None, input_id
    return " checked" in tag.group(0)


def set_plugins(world: World, plugins: list[str] | None) -> None:
    with db(world) as session:
        calendar = session.get(Calendar, world.ids["acme"])
        assert calendar is not None
        calendar.plugins = plugins
        session.commit()


def save(client: Any, world: World, **changes: Any) -> Any:
    return post(client, f"/admin/calendars/{world.ids['acme']}/", settings_form(world, **changes))


def plugin_audits(world: World) -> list[dict[str, Any]]:
    with db(world) as session:
        entries = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "calendar.updated", AuditEntry.calendar_id.is_not(None))
            .order_by(AuditEntry.id)
        )
        return [e.details["plugins"] for e in entries if "plugins" in (e.details or {})]


def test_choose_only_some_plugins_then_every_one_again(world: World, jitsi: PluginHost) -> None:
    client = world.login("admin")
    page = client.get(f"/admin/calendars/{world.ids['acme']}/").get_data(as_text=True)
    assert EVERY in page and "Only those ticked" in page
    assert checked(page, "plugin_choice-0") and not checked(page, "plugin_choice-1")
    assert 'id="plugins-0" name="plugins" type="checkbox" value="jitsi"' in page
    assert "meeting providers: jitsi" in page
    assert 'value="email"' not in page  # the core's plugins are always used

    assert save(client, world, plugin_choice="only", plugins="jitsi").status_code == 302
    assert fetch(world, Calendar, world.ids["acme"]).plugins == ["jitsi"]
    page = client.get(f"/admin/calendars/{world.ids['acme']}/").get_data(as_text=True)
    assert checked(page, "plugin_choice-1") and checked(page, "plugins-0")

    assert save(client, world, plugin_choice="only").status_code == 302  # no box ticked: none
    assert fetch(world, Calendar, world.ids["acme"]).plugins == []
    assert save(client, world, plugin_choice="all", plugins="jitsi").status_code == 302
    assert fetch(world, Calendar, world.ids["acme"]).plugins is None
    assert plugin_audits(world) == [
        {"from": None, "to": ["jitsi"]},
        {"from": ["jitsi"], "to": []},
        {"from": [], "to": None},
    ]


def test_a_plugin_the_instance_does_not_enable_is_refused_on_its_field(
    world: World, jitsi: PluginHost
) -> None:
    client = world.login("admin")
    response = save(client, world, plugin_choice="only", plugins=["jitsi", "sms_http"])
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "sms_http is not a plugin enabled on this Bookwise" in page
    assert 'id="plugins-error"' in page
    assert fetch(world, Calendar, world.ids["acme"]).plugins is None
    assert plugin_audits(world) == []


def test_a_chosen_plugin_no_longer_enabled_is_kept(world: World, jitsi: PluginHost) -> None:
    set_plugins(world, ["sms_http"])
    client = world.login("admin")
    page = client.get(f"/admin/calendars/{world.ids['acme']}/").get_data(as_text=True)
    assert "Also chosen, but not enabled on this Bookwise now" in page and "sms_http" in page
    # Other settings are saved; the plugin the form cannot show stays chosen.
    assert save(client, world, plugin_choice="only", name="Acme Advice 2").status_code == 302
    saved = fetch(world, Calendar, world.ids["acme"])
    assert saved.name == "Acme Advice 2" and saved.plugins == ["sms_http"]
    assert save(client, world, plugin_choice="only", plugins="jitsi").status_code == 302
    assert fetch(world, Calendar, world.ids["acme"]).plugins == ["jitsi", "sms_http"]


def test_no_plugins_group_without_a_plugin_to_choose(world: World) -> None:
    """The world's instance enables no plugin of its own: no group, and saving the other
    settings keeps the calendar's choice."""
    set_plugins(world, ["jitsi"])
    client = world.login("admin")
    page = client.get(f"/admin/calendars/{world.ids['acme']}/").get_data(as_text=True)
    assert EVERY not in page and "plugin_choice" not in page
    assert save(client, world, plugin_choice="all").status_code == 302
    assert fetch(world, Calendar, world.ids["acme"]).plugins == ["jitsi"]


def test_a_viewer_sees_the_choice_but_cannot_change_it(world: World, jitsi: PluginHost) -> None:
    client = world.login("viewer")
    page = client.get(f"/admin/calendars/{world.ids['acme']}/").get_data(as_text=True)
    assert EVERY in page
    assert save(client, world, plugin_choice="only").status_code == 403
    assert fetch(world, Calendar, world.ids["acme"]).plugins is None


def test_a_new_calendar_and_a_clone_keep_the_choice(world: World, jitsi: PluginHost) -> None:
    client = world.login("super")
    assert EVERY in client.get("/admin/calendars/new").get_data(as_text=True)
    response = post(
        client,
        "/admin/calendars/new",
        settings_form(world, slug="fresh", name="Fresh", plugin_choice="only", plugins="jitsi"),
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    with db(world) as session:
        fresh = session.scalars(select(Calendar).where(Calendar.slug == "fresh")).one()
        assert fresh.plugins == ["jitsi"]
        fresh_id = fresh.id
    response = post(
        client,
        f"/admin/calendars/{fresh_id}/clone",
        {"name": "Fresh copy", "slug": "fresh-copy"},
    )
    assert response.status_code == 302
    with db(world) as session:
        copy = session.scalars(select(Calendar).where(Calendar.slug == "fresh-copy")).one()
        assert copy.plugins == ["jitsi"]
