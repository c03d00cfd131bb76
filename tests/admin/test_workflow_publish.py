"""Publishing a scenario: in which calendars, with which staff, and what happens to the bookings
already made."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bookwise.audit.models import AuditEntry
from bookwise.calendars.models import Service, ServiceStaff
from bookwise.workflows.models import WorkflowRecord
from tests.admin.conftest import NOW, World, db, token

CONSULT = "/admin/workflows/consult/publish"


def service_of(world: World, slug: str, calendar: str) -> dict[str, Any] | None:
    """The service of a scenario in a calendar: published or not, its listed staff in order."""
    with db(world) as session:
        service = session.scalar(
            select(Service)
            .join(WorkflowRecord, WorkflowRecord.id == Service.workflow_id)
            .where(WorkflowRecord.slug == slug, Service.calendar_id == world.ids[calendar])
        )
        if service is None:
            return None
        staff = session.scalars(
            select(ServiceStaff.staff_id)
            .where(ServiceStaff.service_id == service.id)
            .order_by(ServiceStaff.position)
        )
        return {"active": service.active, "by_tags": service.pool_by_tags, "staff": list(staff)}


def audited(world: World, action: str) -> list[int | None]:
    with db(world) as session:
        return list(
            session.scalars(select(AuditEntry.calendar_id).where(AuditEntry.action == action))
        )


def checked(page: str, name: str) -> list[str]:
    """The values of the ticked checkboxes called ``name``, in the page's order."""
    return [
        re.search(r'value="([^"]+)"', tag).group(1)  # type: ignore[union-attr]
        for tag in re.findall(rf'<input[^>]*name="{name}"[^>]*>', page)
        if "checked" in tag
    ]


def sentence(page: str) -> str:
    found = re.search(r'<p id="what-changes">(.*?)</p>', page, re.S)
    assert found is not None
    return html.unescape(found.group(1))


def test_the_page_asks_which_calendars_and_staff(world: World) -> None:
    client = world.login("admin")
    details = client.get("/admin/workflows/workshop/").get_data(as_text=True)
    assert 'href="/admin/workflows/workshop/publish"' in details
    page = client.get("/admin/workflows/workshop/publish").get_data(as_text=True)
    # The calendars the admin administers, the current one ticked; not the other calendar.
    assert checked(page, "calendar") == [str(world.ids["acme"])]
    assert "Private club" not in page
    assert "published" in page
    # Every bookable member is offered; ticked: those the workshop's tags (host) pick, as it
    # has no listed staff.
    ids = world.ids
    offered = re.findall(r'<input[^>]*name="staff" value="(\d+)"', page)
    assert sorted(offered) == sorted(str(ids[f"staff_{s}"]) for s in ("ana", "ben", "cleo"))
    assert checked(page, "staff") == [str(ids["staff_ana"])]


def test_publish_in_two_calendars_with_the_staff_chosen(world: World) -> None:
    client = world.login("super")
    ids = world.ids
    assert service_of(world, "private-only", "acme") is None
    page = client.get("/admin/workflows/private-only/publish").get_data(as_text=True)
    assert "Acme Advice" in page and "Private club" in page
    response = client.post(
        "/admin/workflows/private-only/publish",
        data={
            "csrf_token": token(client),
            "calendar": [ids["acme"], ids["private"]],
            "staff": [ids["staff_cleo"], ids["staff_ana"]],
            "op": "publish",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    acme = service_of(world, "private-only", "acme")
    assert acme == {
        "active": True,
        "by_tags": False,
        "staff": [ids["staff_cleo"], ids["staff_ana"]],
    }
    private = service_of(world, "private-only", "private")
    assert private is not None and private["active"] and private["by_tags"]
    assert sorted(audited(world, "service.published")) == [ids["acme"], ids["private"]]
    assert audited(world, "service.updated") == [ids["acme"]]
    page = client.get("/admin/workflows/private-only/publish").get_data(as_text=True)
    assert checked(page, "staff") == [str(ids["staff_cleo"]), str(ids["staff_ana"])]
    assert "Stop offering it here" in page
    assert world.app.test_client().get("/acme/private-only").status_code == 200


def test_a_calendar_the_user_does_not_administer_is_refused_and_nothing_written(
    world: World,
) -> None:
    client = world.login("admin")
    ids = world.ids
    before = service_of(world, "workshop", "acme")
    response = client.post(
        "/admin/workflows/workshop/publish",
        data={
            "csrf_token": token(client),
            "calendar": [ids["acme"], ids["private"]],
            "staff": [ids["staff_ana"]],
        },
    )
    assert response.status_code == 403
    assert service_of(world, "workshop", "private") is None
    assert service_of(world, "workshop", "acme") == before
    assert audited(world, "service.published") == []
    assert len(audited(world, "access.denied")) == 1
    # A calendar that does not exist is no better.
    missing = client.post(
        "/admin/workflows/workshop/publish",
        data={"csrf_token": token(client), "calendar": [999], "staff": [ids["staff_ana"]]},
    )
    assert missing.status_code == 403


def test_wrong_choices_are_explained_and_nothing_written(world: World) -> None:
    client = world.login("admin")
    ids = world.ids
    before = service_of(world, "workshop", "acme")
    path = "/admin/workflows/workshop/publish"
    cases = {
        "Choose at least one calendar.": {"staff": [ids["staff_ana"]]},
        "Choose at least one staff member.": {"calendar": [ids["acme"]]},
        # dan is the private calendar's
        "Choose staff members of this calendar only.": {
            "calendar": [ids["acme"]],
            "staff": [ids["staff_ana"], ids["staff_dan"]],
        },
        "Choose the calendars and staff members from the lists.": {
            "calendar": [ids["acme"]],
            "staff": ["ana"],
        },
    }
    for message, data in cases.items():
        response = client.post(path, data={"csrf_token": token(client), **data})
        assert response.status_code == 422, message
        assert message in response.get_data(as_text=True)
    assert service_of(world, "workshop", "acme") == before
    assert audited(world, "service.published") == audited(world, "service.updated") == []
    # Without the form's token: refused.
    assert client.post(path, data={"calendar": [ids["acme"]]}).status_code in (400, 403)


def test_only_an_admin_of_the_calendar_may_publish(world: World) -> None:
    viewer = world.login("viewer")
    assert viewer.get(CONSULT).status_code == 403
    other = world.login("other")  # admin of private only: acme's review is not theirs
    assert other.get("/admin/workflows/review/publish").status_code == 403


def test_the_page_says_which_version_the_bookings_keep(world: World) -> None:
    admin = world.login("admin")
    assert sentence(admin.get(CONSULT).get_data(as_text=True)) == (
        "1 booking already made uses version 1, like new bookings."
    )
    # A second version (its administrators are those of acme and private: the superadmin).
    super_ = world.login("super")
    page = super_.get("/admin/workflows/consult/yaml").get_data(as_text=True)
    text = re.search(r"<textarea[^>]*>(.*?)</textarea>", page, re.S)
    assert text is not None
    changed = html.unescape(text.group(1)).lstrip("\n").replace("duration: 30m", "duration: 40m")
    saved = super_.post(
        "/admin/workflows/consult/yaml", data={"csrf_token": token(super_), "text": changed}
    )
    assert saved.status_code == 302
    assert sentence(admin.get(CONSULT).get_data(as_text=True)) == (
        "1 booking already made keeps version 1; new bookings use version 2."
    )
    # The superadmin administers both calendars: the private calendar's booking counts too.
    assert sentence(super_.get(CONSULT).get_data(as_text=True)) == (
        "2 bookings already made keep version 1; new bookings use version 2."
    )
    # Once they have ended, none is waiting (a month later: signed in again).
    world.app.extensions["bookwise"].clock = lambda: NOW + timedelta(days=30)
    admin = world.login("admin")
    assert sentence(admin.get(CONSULT).get_data(as_text=True)) == (
        "No booking is waiting; new bookings use version 2."
    )


def test_stop_offering_it_here(world: World) -> None:
    client = world.login("admin")
    assert service_of(world, "consult", "acme")["active"]  # type: ignore[index]
    response = client.post(CONSULT, data={"csrf_token": token(client), "op": "withdraw"})
    assert response.status_code == 302
    assert not service_of(world, "consult", "acme")["active"]  # type: ignore[index]
    assert service_of(world, "consult", "private")["active"]  # type: ignore[index]
    assert audited(world, "service.updated") == [world.ids["acme"]]
    again = client.post(CONSULT, data={"csrf_token": token(client), "op": "withdraw"})
    assert again.status_code == 302
    assert "It is not published in this calendar." in client.get(
        again.headers["Location"]
    ).get_data(as_text=True)
