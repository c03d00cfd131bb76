"""Bookings in the back office: list and filters, details, the workflow's moves, reassigning,
moving, booking for a client on the phone, the day and week grids."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

from sqlalchemy import func, select

from bookwise.audit.models import AuditEntry
from bookwise.bookings.models import Booking, BookingEvent
from tests.admin.conftest import NOW, World, db, fetch, post


def test_the_list_filters_by_state_service_staff_and_client(world: World) -> None:
    client = world.login("admin")
    everything = client.get("/admin/bookings/").get_data(as_text=True)
    for key in ("acme_consult", "acme_review_ana", "acme_review_ben", "acme_visit"):
        assert f"/admin/bookings/{world.ids[key]}" in everything
    assert "4 bookings" in everything
    waiting = client.get("/admin/bookings/?state=requested").get_data(as_text=True)
    assert f"/admin/bookings/{world.ids['acme_review_ana']}" in waiting
    assert f"/admin/bookings/{world.ids['acme_consult']}" not in waiting
    by_staff = client.get(f"/admin/bookings/?staff={world.ids['staff_cleo']}").get_data(
        as_text=True
    )
    assert f"/admin/bookings/{world.ids['acme_visit']}" in by_staff
    assert f"/admin/bookings/{world.ids['acme_review_ben']}" not in by_staff
    searched = client.get("/admin/bookings/?q=hyperlink").get_data(as_text=True)
    assert "1 booking" in searched
    past = client.get("/admin/bookings/?start=2020-01-01&end=2020-01-31").get_data(as_text=True)
    assert "No booking matches" in past
    # Nonsense in the filters is ignored, never an error.
    assert client.get("/admin/bookings/?start=99999-99&page=abc&staff=x").status_code == 200


def test_details_show_answers_consent_history_and_messages(world: World) -> None:
    client = world.login("admin")
    page = client.get(f"/admin/bookings/{world.ids['acme_visit']}").get_data(as_text=True)
    assert "Diabetic" in page and "Knee" in page
    assert "sensitive" in page
    assert "Booked" in page  # the history's first entry
    assert "acme" not in page or "Visit" in page


def test_the_history_says_why_a_booking_has_no_meeting_link(world: World) -> None:
    why = "the calendar 'acme' does not use the plugin 'jitsi'; add it to the calendar's plugins"
    with db(world) as session:
        booking = session.get(Booking, world.ids["acme_visit"])
        assert booking is not None
        session.add(
            BookingEvent(
                booking_id=booking.id,
                action="meeting_failed",
                from_state=booking.state,
                to_state=booking.state,
                actor="plugin:jitsi",
                details={"provider": "jitsi", "error": why},
            )
        )
        session.commit()
    page = world.login("admin").get(f"/admin/bookings/{world.ids['acme_visit']}")
    text = page.get_data(as_text=True).replace("&#39;", "'")
    assert "No meeting link" in text and "the jitsi plugin" in text and why in text


def test_reading_sensitive_answers_is_recorded_and_hidden_from_viewers(world: World) -> None:
    admin = world.login("admin")
    admin.get(f"/admin/bookings/{world.ids['acme_visit']}")
    with db(world) as session:
        seen = session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "booking.sensitive_viewed")
        )
    assert seen == 1
    viewer = world.login("viewer")
    page = viewer.get(f"/admin/bookings/{world.ids['acme_visit']}").get_data(as_text=True)
    assert "Diabetic" not in page and "Hidden from viewers" in page
    assert "Knee" in page


def test_approve_a_request(world: World) -> None:
    client = world.login("ana")
    response = post(
        client,
        f"/admin/bookings/{world.ids['acme_review_ana']}/move",
        {"transition": "approve", "reason": ""},
    )
    assert response.status_code == 302
    assert fetch(world, Booking, world.ids["acme_review_ana"]).state == "confirmed"
    with db(world) as session:
        actions = session.scalars(
            select(BookingEvent.action).where(
                BookingEvent.booking_id == world.ids["acme_review_ana"]
            )
        ).all()
        audited = session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "booking.transition")
        )
    assert list(actions) == ["created", "approve"]
    assert audited == 1


def test_a_move_the_workflow_does_not_allow_is_refused_with_a_message(world: World) -> None:
    client = world.login("admin")
    response = post(
        client,
        f"/admin/bookings/{world.ids['acme_consult']}/move",
        {"transition": "approve"},
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert fetch(world, Booking, world.ids["acme_consult"]).state == "confirmed"
    assert "cannot be changed" in response.get_data(as_text=True)


def test_a_viewer_cannot_act_on_a_booking(world: World) -> None:
    client = world.login("viewer")
    page = client.get(f"/admin/bookings/{world.ids['acme_review_ana']}").get_data(as_text=True)
    assert 'name="transition"' not in page
    response = post(
        client, f"/admin/bookings/{world.ids['acme_review_ana']}/move", {"transition": "approve"}
    )
    assert response.status_code == 403
    assert fetch(world, Booking, world.ids["acme_review_ana"]).state == "requested"


def test_reassign_to_someone_free(world: World) -> None:
    client = world.login("admin")
    page = client.get(f"/admin/bookings/{world.ids['acme_review_ben']}").get_data(as_text=True)
    assert "Give to another staff member" in page
    response = post(
        client,
        f"/admin/bookings/{world.ids['acme_review_ben']}/reassign",
        {"staff_id": world.ids["staff_cleo"]},
    )
    assert response.status_code == 302
    moved = fetch(world, Booking, world.ids["acme_review_ben"])
    assert moved.staff_id == world.ids["staff_cleo"]
    assert moved.sequence == 1


def test_reassign_to_someone_busy_is_refused(world: World) -> None:
    # ana has her own review at that very time.
    client = world.login("admin")
    response = post(
        client,
        f"/admin/bookings/{world.ids['acme_review_ben']}/reassign",
        {"staff_id": world.ids["staff_ana"]},
    )
    assert response.status_code == 422
    assert fetch(world, Booking, world.ids["acme_review_ben"]).staff_id == world.ids["staff_ben"]


def test_move_a_booking_to_another_time(world: World) -> None:
    client = world.login("admin")
    day = (NOW + timedelta(days=4)).date().isoformat()
    page = client.get(
        f"/admin/bookings/{world.ids['acme_consult']}/reschedule?date={day}"
    ).get_data(as_text=True)
    assert 'name="start"' in page
    start = (NOW + timedelta(days=4)).replace(hour=12).isoformat()
    response = post(
        client, f"/admin/bookings/{world.ids['acme_consult']}/reschedule", {"start": start}
    )
    assert response.status_code == 302
    assert (
        fetch(world, Booking, world.ids["acme_consult"]).start_at.isoformat().startswith(start[:16])
    )


def test_book_for_a_client_on_the_phone(world: World) -> None:
    client = world.login("admin")
    with db(world) as session:
        from bookwise.calendars.models import Service
        from bookwise.workflows.models import WorkflowRecord

        service_id = session.scalar(
            select(Service.id)
            .join(WorkflowRecord)
            .where(Service.calendar_id == world.ids["acme"], WorkflowRecord.slug == "consult")
        )
    assert "Consultation" in client.get("/admin/bookings/new").get_data(as_text=True)
    day = (NOW + timedelta(days=5)).date().isoformat()
    times = client.get(f"/admin/bookings/new?service={service_id}&date={day}").get_data(
        as_text=True
    )
    assert "start=" in times
    # Within the hour: the online window would refuse it; staff may book it.
    start = (NOW + timedelta(hours=1)).isoformat()
    path = f"/admin/bookings/new?service={service_id}&start={quote(start)}"
    form = client.get(path).get_data(as_text=True)
    assert 'name="field_topic"' in form
    missing = post(client, path, {"service": service_id, "start": start, "field_name": "Léa"})
    assert missing.status_code == 422
    assert "This field is required" in missing.get_data(as_text=True)
    created = post(
        client,
        path,
        {
            "service": service_id,
            "start": start,
            "field_name": "Léa Phone",
            "field_email": "lea@client.example",
            "field_topic": "Pension",
            "consent": "y",
            "staff_member": "cleo",
            "client_locale": "fr",
        },
    )
    assert created.status_code == 302, created.get_data(as_text=True)[:2000]
    with db(world) as session:
        made = session.scalar(select(Booking).order_by(Booking.id.desc()).limit(1))
        assert made is not None
        assert made.source == "admin" and made.locale == "fr"
        assert made.staff_member.slug == "cleo"
        assert made.consent is not None
    taken = post(
        client,
        path,
        {
            "service": service_id,
            "start": start,
            "field_name": "Second",
            "field_email": "second@client.example",
            "field_topic": "x",
            "consent": "y",
            "staff_member": "cleo",
        },
    )
    assert taken.status_code == 409
    assert "just taken" in taken.get_data(as_text=True)


def test_day_and_week_grids(world: World) -> None:
    client = world.login("admin")
    day = (NOW + timedelta(days=3)).date().isoformat()
    grid = client.get(f"/admin/bookings/grid?date={day}").get_data(as_text=True)
    assert "Ana" in grid and "Ben" in grid and "Zoé Client" in grid
    assert 'rowspan="' in grid
    week = client.get(
        f"/admin/bookings/grid?view=week&date={day}&staff={world.ids['staff_ana']}"
    ).get_data(as_text=True)
    assert f"/admin/bookings/{world.ids['acme_review_ana']}" in week
    assert f"/admin/bookings/{world.ids['acme_review_ben']}" not in week


def test_messages_are_listed_in_words(world: World) -> None:
    """The walk-through of issue 16 found "confirmed", "reminder", "email", "pending" in the
    French back office: the outbox (and a booking's messages, built by the same helper,
    admin.display.message_words) names them in the reader's language."""
    client = world.login("admin")
    page = client.get("/admin/outbox/?lang=fr").get_data(as_text=True)
    table = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert "<td>Rappel avant le début</td>" in table and "<td>E-mail</td>" in table, table
    assert "<td>confirmed</td>" not in table and "<td>email</td>" not in table
