"""A calendar's quiet hours in the back office's settings page."""

from __future__ import annotations

from bookwise.calendars.models import Calendar
from tests.admin.conftest import World, fetch, post
from tests.admin.test_calendars_admin import settings_form


def test_quiet_hours_are_saved_shown_and_cleared(world: World) -> None:
    client = world.login("admin")
    path = f"/admin/calendars/{world.ids['acme']}/"
    form = settings_form(world, quiet_from="21:00", quiet_to="08:00", quiet_email="y")
    assert post(client, path, form).status_code == 302
    saved = fetch(world, Calendar, world.ids["acme"])
    assert saved.quiet_hours == {"from": "21:00", "to": "08:00", "email": True}
    page = client.get(path).get_data(as_text=True)
    assert 'value="21:00"' in page and 'value="08:00"' in page and 'type="time"' in page
    assert post(client, path, settings_form(world)).status_code == 302
    assert fetch(world, Calendar, world.ids["acme"]).quiet_hours is None


def test_wrong_quiet_hours_are_shown_beside_their_fields_and_nothing_is_saved(
    world: World,
) -> None:
    client = world.login("admin")
    path = f"/admin/calendars/{world.ids['acme']}/"
    cases = [
        ({"quiet_from": "21:00"}, "Give both times of the quiet hours, or neither."),
        ({"quiet_from": "21:00", "quiet_to": "25:00"}, "Write a time of day, like 21:00."),
        ({"quiet_from": "21:00", "quiet_to": "21:00"}, "The quiet hours end when they begin"),
    ]
    for values, message in cases:
        response = post(client, path, settings_form(world, **values))
        assert response.status_code == 422, values
        assert message in response.get_data(as_text=True)
    assert fetch(world, Calendar, world.ids["acme"]).quiet_hours is None


def test_the_preview_shows_a_message_held_for_quiet_hours(world: World) -> None:
    from tests.admin.test_workflow_preview import DRAFT, timeline
    from tests.admin.test_workflows_admin import editor

    client = world.login("admin")
    values = editor(client, "/admin/workflows/visit/edit")
    # The sample booking is at 10:00: its SMS reminder, 2 hours before, falls in 21:00-09:00.
    values.update({"quiet_from": "21:00", "quiet_to": "09:00", "slug": "visit"})
    page = client.post(DRAFT, data=values).get_data(as_text=True)
    held = [m for m in timeline(page) if "held for quiet hours" in m["when"]]
    assert len(held) == 1, timeline(page)
    assert "9:00" in held[0]["when"] and "8:00" in held[0]["when"]
