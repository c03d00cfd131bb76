"""Calendars, staff and services in the back office."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from bookwise.audit.models import AuditEntry
from bookwise.bookings.models import Booking
from bookwise.calendars.models import Calendar, Service, StaffMember, TimeOff, WorkingHours
from bookwise.notifications.models import Notification
from tests.admin.conftest import NOW, World, db, fetch, post, token


def settings_form(world: World, **changes: Any) -> dict[str, Any]:
    values = {
        "name": "Acme Advice",
        "slug": "acme",
        "timezone": "Europe/Paris",
        "default_locale": "en",
        "address": "1 Main Street",
        "phone": "+33 1 23 45 67 89",
        "reply_to": "desk@acme.example",
        "published": "y",
        "search_indexing": "y",
        "embed_origins": "https://www.acme.example\nhttps://partner.example:8443",
        "description_en": "Advice for everyone.",
        "description_fr": "Des conseils pour tous.",
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def test_save_the_settings(world: World) -> None:
    client = world.login("admin")
    page = client.get(f"/admin/calendars/{world.ids['acme']}/").get_data(as_text=True)
    assert "&lt;iframe src=" in page and "/embed/acme" in page
    response = post(client, f"/admin/calendars/{world.ids['acme']}/", settings_form(world))
    assert response.status_code == 302
    saved = fetch(world, Calendar, world.ids["acme"])
    assert saved.embed_origins == ["https://www.acme.example", "https://partner.example:8443"]
    assert saved.description == {"en": "Advice for everyone.", "fr": "Des conseils pour tous."}
    assert saved.search_indexing and not saved.sign_in_required
    # The page can now be framed by the listed sites only.
    frame = world.app.test_client().get("/embed/acme")
    assert (
        "frame-ancestors https://www.acme.example https://partner.example:8443"
        in (frame.headers["Content-Security-Policy"])
    )


def test_wrong_settings_are_shown_beside_their_fields_and_nothing_is_saved(world: World) -> None:
    client = world.login("admin")
    response = post(
        client,
        f"/admin/calendars/{world.ids['acme']}/",
        settings_form(
            world,
            timezone="Mars/Olympus",
            embed_origins="https://ok.example\nhttps://bad.example/path",
            reply_to="not an address",
            slug="private",
        ),
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Choose a time zone from the list" in page
    assert "https://bad.example/path is not a web origin" in page
    assert "This is not an e-mail address" in page
    assert "Another calendar already has this address" in page
    saved = fetch(world, Calendar, world.ids["acme"])
    assert saved.timezone == "Europe/Paris" and saved.embed_origins == []


def test_a_viewer_sees_the_settings_but_cannot_save_them(world: World) -> None:
    client = world.login("viewer")
    page = client.get(f"/admin/calendars/{world.ids['acme']}/").get_data(as_text=True)
    assert "<fieldset disabled" in page
    response = post(client, f"/admin/calendars/{world.ids['acme']}/", settings_form(world))
    assert response.status_code == 403


def test_opening_hours(world: World) -> None:
    client = world.login("admin")
    path = f"/admin/calendars/{world.ids['acme']}/hours"
    bad = post(client, path, {"day_0": "09:00-12:00, 11:00-13:00", "day_1": "9h-5pm"})
    assert bad.status_code == 422
    text = bad.get_data(as_text=True)
    assert "9h-5pm is not a time range" in text
    good = post(client, path, {"day_0": "09:00-12:00, 14:00-18:00", "day_4": "08:00-12:00"})
    assert good.status_code == 302
    with db(world) as session:
        rows = session.scalars(
            select(WorkingHours)
            .where(WorkingHours.calendar_id == world.ids["acme"], WorkingHours.staff_id.is_(None))
            .order_by(WorkingHours.weekday, WorkingHours.start_minute)
        ).all()
        assert [(r.weekday, r.start_minute, r.end_minute) for r in rows] == [
            (0, 540, 720),
            (0, 840, 1080),
            (4, 480, 720),
        ]
    overlapping = post(client, path, {"day_2": "09:00-12:00, 11:00-13:00"})
    assert overlapping.status_code == 422
    assert "Two ranges of this day overlap" in overlapping.get_data(as_text=True)


def test_clone_a_calendar(world: World) -> None:
    client = world.login("super")
    response = post(
        client,
        f"/admin/calendars/{world.ids['acme']}/clone",
        {"name": "Acme Lyon", "slug": "acme-lyon"},
    )
    assert response.status_code == 302
    with db(world) as session:
        clone = session.scalar(select(Calendar).where(Calendar.slug == "acme-lyon"))
        assert clone is not None and not clone.published
        assert sorted(m.slug for m in clone.staff) == ["ana", "ben", "cleo"]
        assert sorted(s.workflow.slug for s in clone.services) == [
            "consult",
            "review",
            "visit",
            "workshop",
        ]
        assert (
            session.scalar(
                select(func.count()).select_from(Booking).where(Booking.calendar_id == clone.id)
            )
            == 0
        )
    taken = post(
        client, f"/admin/calendars/{world.ids['acme']}/clone", {"name": "X", "slug": "acme"}
    )
    assert taken.status_code == 422


def test_only_a_superadmin_clones_or_creates_calendars(world: World) -> None:
    client = world.login("admin")
    assert (
        post(client, f"/admin/calendars/{world.ids['acme']}/clone", {"name": "X", "slug": "x"})
    ).status_code == 403
    assert client.get("/admin/calendars/new").status_code == 403


def test_create_a_calendar(world: World) -> None:
    client = world.login("super")
    response = post(
        client,
        "/admin/calendars/new",
        settings_form(world, name="New place", slug="new-place", embed_origins=""),
    )
    assert response.status_code == 302
    with db(world) as session:
        made = session.scalar(select(Calendar).where(Calendar.slug == "new-place"))
        assert made is not None and len(made.hours) == 5


def test_add_a_staff_member_who_accepts_the_invitation(world: World) -> None:
    client = world.login("admin")
    response = post(
        client,
        "/admin/staff/new",
        {"name": "Dora Explorer", "email": "dora@acme.example", "tags": "consultant, french"},
    )
    assert response.status_code == 302
    with db(world) as session:
        dora = session.scalar(select(StaffMember).where(StaffMember.slug == "dora-explorer"))
        assert dora is not None and dora.invitation == "pending" and dora.origin == "admin"
        assert dora.tags == ["consultant", "french"]
        invitation = session.scalar(
            select(Notification).where(Notification.event == "staff-invitation")
        )
        assert invitation is not None and invitation.recipient == "dora@acme.example"
        accept = invitation.payload["invitation"]["accept_url"]
    path = accept.split("://", 1)[1].split("/", 1)[1]
    visitor = world.app.test_client()
    page = visitor.get("/" + path)
    assert page.status_code == 200 and "Accept" in page.get_data(as_text=True)
    with db(world) as session:  # opening the link changes nothing (mail scanners open links)
        assert (
            session.scalar(
                select(StaffMember.invitation).where(StaffMember.slug == "dora-explorer")
            )
            == "pending"
        )
    csrf = re.search(
        r'name="csrf_token" type="hidden" value="([^"]+)"', page.get_data(as_text=True)
    )
    assert csrf
    done = visitor.post("/" + path, data={"csrf_token": csrf.group(1)})
    assert "clients can now book" in done.get_data(as_text=True)
    with db(world) as session:
        assert (
            session.scalar(
                select(StaffMember.invitation).where(StaffMember.slug == "dora-explorer")
            )
            == "accepted"
        )
    assert visitor.get("/staff-invitation/forged-token/accept").status_code == 404


def test_a_staff_member_who_declined_is_invited_again(world: World) -> None:
    client = world.login("admin")
    post(client, "/admin/staff/new", {"name": "Eli Declines", "email": "eli@acme.example"})
    with db(world) as session:
        eli = session.scalar(select(StaffMember).where(StaffMember.slug == "eli-declines"))
        assert eli is not None
        eli.invitation = "declined"
        session.commit()
        eli_id = eli.id
    response = post(client, f"/admin/staff/{eli_id}/invite")
    assert response.status_code == 302
    with db(world) as session:
        assert session.get(StaffMember, eli_id).invitation == "pending"  # type: ignore[union-attr]
        sent = session.scalars(
            select(Notification).where(
                Notification.event == "staff-invitation",
                Notification.recipient == "eli@acme.example",
            )
        ).all()
        assert len(sent) == 2  # the first invitation, and this one
        entry = session.scalar(
            select(AuditEntry)
            .where(AuditEntry.action == "staff.invited")
            .order_by(AuditEntry.id.desc())
        )
        assert entry is not None and entry.object_id == "eli-declines"
        assert entry.actor == "admin@bw.example"


def test_a_staff_member_with_a_bad_address_is_not_added(world: World) -> None:
    client = world.login("admin")
    response = post(client, "/admin/staff/new", {"name": "X", "email": "nope", "tags": "Bad Tag!"})
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert "This is not an e-mail address" in text
    with db(world) as session:
        assert session.scalar(select(func.count()).select_from(StaffMember)) == 4


def test_time_off_notifies_the_member_and_warns_of_bookings(world: World) -> None:
    client = world.login("ana")  # staff record their own time off
    day = (NOW + timedelta(days=3)).date().isoformat()
    response = post(
        client,
        f"/admin/staff/{world.ids['staff_ana']}/time-off",
        {"start": f"{day}T08:00", "end": f"{day}T18:00", "reason": "Dentist"},
        follow_redirects=True,
    )
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "2 bookings already fall in this time" in text  # her consult and her review
    with db(world) as session:
        notice = session.scalar(select(Notification).where(Notification.event == "time-off"))
        assert notice is not None and notice.recipient == "ana@acme.example"
        off = session.scalar(select(TimeOff).where(TimeOff.staff_id == world.ids["staff_ana"]))
        assert off is not None and off.reason == "Dentist"
        off_id = off.id
    backwards = post(
        client,
        f"/admin/staff/{world.ids['staff_ana']}/time-off",
        {"start": f"{day}T18:00", "end": f"{day}T08:00"},
    )
    assert backwards.status_code == 422
    assert "The end must come after the start" in backwards.get_data(as_text=True)
    removed = post(client, f"/admin/staff/{world.ids['staff_ana']}/time-off/{off_id}/delete")
    assert removed.status_code == 302
    # Another member's time off is not theirs to touch.
    assert post(client, f"/admin/staff/{world.ids['staff_ben']}/time-off", {}).status_code == 403


def test_remove_a_staff_member_giving_their_bookings_to_others(world: World) -> None:
    client = world.login("admin")
    page = client.get(f"/admin/staff/{world.ids['staff_cleo']}/remove").get_data(as_text=True)
    assert "1 booking is still planned" in page
    response = post(client, f"/admin/staff/{world.ids['staff_cleo']}/remove", {"mode": "reassign"})
    assert response.status_code == 302
    with db(world) as session:
        visit = session.get(Booking, world.ids["acme_visit"])
        assert visit is not None and visit.staff_id != world.ids["staff_cleo"]
        assert visit.state == "confirmed"
        cleo = session.get(StaffMember, world.ids["staff_cleo"])
        assert cleo is not None and cleo.removed_at is not None and not cleo.bookable


def test_removal_stops_when_no_one_can_take_a_booking(world: World) -> None:
    # At 13:00 on that day, ana and ben both have a review: no one else is free for ben's.
    client = world.login("admin")
    with db(world) as session:
        cleo = session.get(StaffMember, world.ids["staff_cleo"])
        assert cleo is not None
        cleo.bookable = False
        session.commit()
    response = post(client, f"/admin/staff/{world.ids['staff_ben']}/remove", {"mode": "reassign"})
    assert response.status_code == 409
    assert "No one else is free" in response.get_data(as_text=True)
    with db(world) as session:
        ben = session.get(StaffMember, world.ids["staff_ben"])
        assert ben is not None and ben.removed_at is None
    cancelled = post(
        client,
        f"/admin/staff/{world.ids['staff_ben']}/remove",
        {"mode": "reassign_or_cancel", "reason": "Ben left us"},
    )
    assert cancelled.status_code == 302
    with db(world) as session:
        review = session.get(Booking, world.ids["acme_review_ben"])
        assert review is not None and review.state == "cancelled"


def test_publish_a_service_with_listed_staff(world: World) -> None:
    client = world.login("admin")
    with db(world) as session:
        service = session.scalar(
            select(Service).where(Service.calendar_id == world.ids["acme"]).limit(1)
        )
        assert service is not None
        service_id = service.id
    path = f"/admin/services/{service_id}/"
    assert "Who takes these bookings" in client.get(path).get_data(as_text=True)
    response = client.post(
        path,
        data={
            "csrf_token": token(client),
            "active": "1",
            "pool": "listed",
            "staff": [str(world.ids["staff_cleo"]), str(world.ids["staff_ana"])],
        },
    )
    assert response.status_code == 302
    with db(world) as session:
        saved = session.get(Service, service_id)
        assert saved is not None and not saved.pool_by_tags
        assert [link.staff_id for link in saved.staff_links] == [
            world.ids["staff_cleo"],
            world.ids["staff_ana"],
        ]
    empty = client.post(path, data={"csrf_token": token(client), "pool": "listed"})
    assert empty.status_code == 422
    foreign = client.post(
        path,
        data={
            "csrf_token": token(client),
            "pool": "listed",
            "staff": [str(world.ids["staff_dan"])],
        },
    )
    assert foreign.status_code == 403


def test_the_invitation_and_time_off_notice_are_e_mailed(world: World, inbox: Any) -> None:
    import dataclasses

    from bookwise.notifications.delivery import Dispatcher

    client = world.login("admin")
    post(client, "/admin/staff/new", {"name": "Eva Mail", "email": "eva@acme.example"})
    with db(world) as session:
        eva = session.scalar(select(StaffMember).where(StaffMember.slug == "eva-mail"))
        assert eva is not None
        eva_id = eva.id
    day = (NOW + timedelta(days=9)).date().isoformat()
    post(
        client,
        f"/admin/staff/{eva_id}/time-off",
        {"start": f"{day}T09:00", "end": f"{day}T17:00", "reason": "Training"},
    )
    bookwise = world.app.extensions["bookwise"]
    settings = dataclasses.replace(
        bookwise.settings,
        mail=dataclasses.replace(bookwise.settings.mail, host="127.0.0.1", port=inbox.port),
    )
    Dispatcher(settings, bookwise.database, clock=lambda: NOW).drain()
    received = inbox.to("eva@acme.example")
    subjects = sorted(str(m["Subject"]) for m in received)
    assert subjects == [
        "Acme Advice has invited you to take appointments",
        subjects[1],
    ] and subjects[1].startswith("Time off recorded")
    invitation = next(m for m in received if "invited" in str(m["Subject"]))
    text = invitation.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    accept = re.search(r"Accept: (\S+)", text)
    assert accept and "/staff-invitation/" in accept.group(1)
    notice = next(m for m in received if "Time off" in str(m["Subject"]))
    assert "Training" in notice.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
