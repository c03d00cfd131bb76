"""A series in the back office (issue 18): an occurrence's page says where it stands in its
series and lists the others; a series awaiting approval is approved or declined in one action,
with one message to the client."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from bookwise.audit.models import AuditEntry
from bookwise.bookings.models import Booking
from bookwise.bookings.recurrence import SeriesRequest
from bookwise.bookings.series import create_series
from bookwise.bookings.services import BookingRequest, find_service
from bookwise.db import unit_of_work
from bookwise.notifications.models import Notification
from tests.admin.conftest import NOW, World, db, post
from tests.conftest import SCENARIO, add_workflow_version

REVIEW = (
    (SCENARIO / "workflows" / "review.yaml")
    .read_text()
    .replace(
        "notifications: []\n",
        "notifications:\n  - {on: confirmed, to: client, channel: email}\n"
        "  - {on: declined, to: client, channel: email}\n"
        "recurrence: {allowed: true, max_occurrences: 6}\n",
    )
)


def book_a_series(world: World, scenario: Any, count: int = 3) -> list[int]:
    """A weekly series of ``review`` with ana, awaiting approval; its bookings' ids."""
    add_workflow_version(scenario.settings, scenario.database, REVIEW)
    with unit_of_work(world.app.extensions["bookwise"].database.sessions, write=True) as session:
        request = BookingRequest(
            start=(NOW + timedelta(days=4)).replace(hour=10),
            values={"name": "Zoé Series", "email": "zoe@series.example"},
            staff="ana",
            locale="en",
        )
        context = find_service(session, "acme", "review")
        series = create_series(
            session, context, request, SeriesRequest("weekly", count), NOW, plugins=None
        )
        return [b.id for b in series.occurrences]


def test_an_occurrence_page_shows_its_series(world: World, scenario: Any) -> None:
    ids = book_a_series(world, scenario)
    client = world.login("admin")
    page = client.get(f"/admin/bookings/{ids[1]}").get_data(as_text=True)
    assert "Occurrence 2 of 3 of a weekly series" in page
    for other in (ids[0], ids[2]):
        assert f'href="/admin/bookings/{other}"' in page
    assert "Approve the series" in page and "Decline the series" in page
    # A single booking has no series part.
    single = client.get(f"/admin/bookings/{world.ids['acme_review_ana']}").get_data(as_text=True)
    assert "Occurrence" not in single and "the series" not in single


def test_approving_the_series_approves_every_occurrence_with_one_message(
    world: World, scenario: Any
) -> None:
    ids = book_a_series(world, scenario)
    client = world.login("ana")
    response = post(
        client,
        f"/admin/bookings/{ids[0]}/series-move",
        {"transition": "approve", "reason": "", "state": "requested"},
    )
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Done for 3 occurrences of the series: Approve." in page
    with db(world) as session:
        states = session.scalars(select(Booking.state).where(Booking.id.in_(ids))).all()
        rows = session.scalars(
            select(Notification).where(
                Notification.booking_id.in_(ids), Notification.event == "confirmed"
            )
        ).all()
        audited = session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "booking.transition")
        )
    assert set(states) == {"confirmed"}
    assert Counter(r.state for r in rows) == {"pending": 1, "withdrawn": 2}
    (told,) = [r for r in rows if r.state == "pending"]
    assert told.booking_id == ids[0] and len(told.payload["changed"]) == 3
    assert audited == 3
    # Nothing is left awaiting approval: the page no longer offers it, a second post is refused.
    page = client.get(f"/admin/bookings/{ids[1]}").get_data(as_text=True)
    assert "Approve the series" not in page
    again = post(
        client,
        f"/admin/bookings/{ids[0]}/series-move",
        {"transition": "approve", "state": "requested"},
        follow_redirects=True,
    )
    assert "waiting for this any more" in again.get_data(as_text=True)


def test_a_move_on_the_series_is_all_or_nothing(world: World, scenario: Any) -> None:
    ids = book_a_series(world, scenario)
    client = world.login("admin")
    # A move the workflow does not allow from this state: nothing changes.
    response = post(
        client,
        f"/admin/bookings/{ids[0]}/series-move",
        {"transition": "resume", "state": "requested"},
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert "cannot be changed" in response.get_data(as_text=True)
    with db(world) as session:
        states = session.scalars(select(Booking.state).where(Booking.id.in_(ids))).all()
    assert set(states) == {"requested"}
    # A viewer may not act on it.
    viewer = world.login("viewer")
    assert "Approve the series" not in viewer.get(f"/admin/bookings/{ids[0]}").get_data(
        as_text=True
    )
    refused = post(
        viewer,
        f"/admin/bookings/{ids[0]}/series-move",
        {"transition": "approve", "state": "requested"},
    )
    assert refused.status_code == 403
