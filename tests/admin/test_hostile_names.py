"""Names typed in the back office refuse control and text direction characters (issue 15,
finding 10): a line break in a calendar's name would break every e-mail of the calendar."""

from __future__ import annotations

from sqlalchemy import func, select

from bookwise.calendars.models import Calendar, StaffMember
from tests.admin.conftest import World, db, fetch, post
from tests.admin.test_calendars_admin import settings_form


def test_a_calendar_name_with_a_line_break_is_not_saved(world: World) -> None:
    client = world.login("admin")
    response = post(
        client,
        f"/admin/calendars/{world.ids['acme']}/",
        settings_form(world, name="Acme\r\nBcc: x@evil.example"),
    )
    assert response.status_code == 422
    assert "This text contains an invisible control character" in response.get_data(as_text=True)
    assert fetch(world, Calendar, world.ids["acme"]).name == "Acme Advice"


def test_a_staff_name_with_a_direction_override_is_not_added(world: World) -> None:
    client = world.login("admin")
    with db(world) as session:
        before = session.scalar(select(func.count()).select_from(StaffMember))
    response = post(
        client, "/admin/staff/new", {"name": "Eli \u202egnp.exe", "email": "eli@acme.example"}
    )
    assert response.status_code == 422
    assert "This text contains an invisible control character" in response.get_data(as_text=True)
    with db(world) as session:
        assert session.scalar(select(func.count()).select_from(StaffMember)) == before
