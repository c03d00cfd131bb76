"""The demo's sample bookings: made through the booking service, in every calendar, none sent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from bookwise.bookings.models import Booking
from bookwise.db import unit_of_work
from bookwise.demo import CLIENTS, demo_email, seed_demo_bookings
from bookwise.notifications.models import Notification


def test_sample_bookings_around_today(demo: Any) -> None:
    now = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    with unit_of_work(demo.database.sessions, write=True) as session:
        count = seed_demo_bookings(session, now)
    assert count > 20
    with demo.database.sessions() as session:
        bookings = session.scalars(sa.select(Booking)).all()
        calendars = {b.calendar_id for b in bookings}
        states = {b.state for b in bookings}
        sent = session.scalar(
            sa.select(sa.func.count())
            .select_from(Notification)
            .where(Notification.state != "skipped")
        )
    assert len(bookings) == count and len(calendars) == 3
    assert {"completed", "confirmed"} <= states
    assert any(b.start_at < now for b in bookings) and any(b.start_at > now for b in bookings)
    assert sent == 0  # the demo's messages are never sent


def test_demo_addresses_keep_every_letter_of_the_names() -> None:
    assert demo_email("Sofía García") == "sofia.garcia@example.org"
    assert demo_email("Inès Moreau") == "ines.moreau@example.org"
    for name, _locale in CLIENTS:
        local = demo_email(name).removesuffix("@example.org")
        assert local.isascii() and len(local) == len(name), (name, local)
