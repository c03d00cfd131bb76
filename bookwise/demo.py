"""Sample bookings for the demo (``make run``): two weeks of appointments around today, some held,
some missed or cancelled, so that the back office, its grids and its reports have something to
show. Made through the booking service, like real ones; their messages are not sent."""

from __future__ import annotations

import random
import unicodedata
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bookwise.availability.services import local_day_bounds, service_availability
from bookwise.bookings.services import (
    BookingContext,
    BookingError,
    BookingRequest,
    create_booking,
    transition_booking,
)
from bookwise.calendars.models import Calendar
from bookwise.notifications.models import Notification
from bookwise.workflows.language import Field, Workflow
from bookwise.workflows.services import current_version

CLIENTS = (
    ("Zoé Martin", "fr"),
    ("Lucas Bernard", "fr"),
    ("Emma Schneider", "de"),
    ("Noah Williams", "en"),
    ("Sofía García", "es"),
    ("Chloé Petit", "fr"),
    ("Jonas Weber", "de"),
    ("Olivia Brown", "en"),
    ("Mateo López", "es"),
    ("Inès Moreau", "fr"),
    ("Liam Smith", "en"),
    ("Hannah Fischer", "de"),
)


def _answer(spec: Field, rng: random.Random) -> Any:
    if spec.options:
        values = [o.value for o in spec.options]
        return [rng.choice(values)] if spec.type == "multiselect" else rng.choice(values)
    if spec.type == "checkbox":
        return True
    if spec.type == "number":
        low = float(spec.min) if isinstance(spec.min, int | float) else 0
        high = float(spec.max) if isinstance(spec.max, int | float) else low + 10
        return int(rng.uniform(low, high))
    if spec.type == "date":
        return "1988-04-12"
    if spec.type == "url":
        return "https://example.org/documents/cv.pdf"
    if spec.type == "phone":
        return "+33 6 12 34 56 78"
    if spec.type == "email":
        return "someone@example.org"
    return "Demo answer" if spec.type == "text" else "A few words written for the demo."


def demo_email(name: str) -> str:
    """``sofia.garcia@example.org`` for "Sofía García": accented letters lose their accents, not
    their place (the clients' names are Latin letters with diacritics, which NFKD separates)."""
    decomposed = unicodedata.normalize("NFKD", name.lower().replace(" ", "."))
    local = "".join(c for c in decomposed if not unicodedata.combining(c))
    return local.encode("ascii", "ignore").decode() + "@example.org"


def _values(workflow: Workflow, name: str, rng: random.Random) -> dict[str, Any]:
    email = demo_email(name)
    values: dict[str, Any] = {"name": name, "email": email, "phone": "+33 6 12 34 56 78"}
    for spec in workflow.custom_fields:
        values[spec.id] = _answer(spec, rng)
    return values


# The demo's bookings are made up: they reach no plugin (no meeting room is opened, no webhook
# tells another system of a client who does not exist).
NO_PLUGINS = None


def seed_demo_bookings(session: Session, now: datetime, seed: int = 7) -> int:
    """Book the demo calendars from ten days ago to a week ahead; the caller began the write
    transaction and commits. Returns how many bookings were made."""
    rng = random.Random(seed)  # noqa: S311 (sample data, not secrets)
    made: list[int] = []
    for calendar in session.scalars(select(Calendar).order_by(Calendar.id)):
        zone = ZoneInfo(calendar.timezone)
        today = now.astimezone(zone).date()
        for service in calendar.services:
            version = current_version(session, service.workflow.slug)
            context = BookingContext(calendar, service, version)
            for offset in range(-10, 8):
                day = today + timedelta(days=offset)
                made += _book_day(session, context, day, zone, now, rng)
    if made:
        session.execute(
            update(Notification)
            .where(Notification.booking_id.in_(made))
            .values(state="skipped", last_error="demo data: not sent")
            .execution_options(synchronize_session=False)
        )
    return len(made)


def _book_day(
    session: Session,
    context: BookingContext,
    day: date,
    zone: ZoneInfo,
    now: datetime,
    rng: random.Random,
) -> list[int]:
    workflow = context.workflow
    start, end = local_day_bounds(day, day, zone)
    # "Now" for each booking: two days before its day, so that every rule of the window holds.
    booked_at = start - timedelta(days=2)
    found = service_availability(
        session, context.calendar, context.service, workflow, start, end, booked_at
    )
    slots = list(found.slots)
    rng.shuffle(slots)
    made = []
    for slot in sorted(slots[: rng.randint(0, 3)], key=lambda s: s.start):
        name, locale = rng.choice(CLIENTS)
        try:
            booking = create_booking(
                session,
                context,
                BookingRequest(
                    start=slot.start,
                    values=_values(workflow, name, rng),
                    consent=True if workflow.consent else None,
                    locale=locale,
                    timezone=context.calendar.timezone,
                    source=rng.choice(("public", "public", "api", "admin")),
                    actor="demo",
                ),
                booked_at,
                plugins=NO_PLUGINS,
            )
        except BookingError:
            continue
        made.append(booking.id)
        lifecycle = workflow.lifecycle
        if slot.end < now:
            moves = [t.name for t in lifecycle.available(booking.state, "admin")]
            outcome = "approve" if "approve" in moves else None
            if outcome:
                transition_booking(
                    session, booking, outcome, "admin", "demo", booked_at, plugins=NO_PLUGINS
                )
                moves = [t.name for t in lifecycle.available(booking.state, "admin")]
            pick = rng.random()
            choice = "no_show" if pick < 0.12 else "cancel" if pick < 0.22 else "complete"
            if choice in moves:
                when = booked_at + timedelta(hours=1) if choice == "cancel" else slot.end
                transition_booking(
                    session,
                    booking,
                    choice,
                    "admin",
                    "demo",
                    when + timedelta(hours=1),
                    plugins=NO_PLUGINS,
                )
        elif rng.random() < 0.5:
            moves = [t.name for t in lifecycle.available(booking.state, "admin")]
            if "approve" in moves:
                transition_booking(
                    session, booking, "approve", "admin", "demo", booked_at, plugins=NO_PLUGINS
                )
    return made
