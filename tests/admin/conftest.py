"""The back office's test world: the scenario's two calendars, a user for each role, bookings.

- ``acme`` (consult, workshop, review, visit; staff ana, ben, cleo) and ``private`` (consult; dan);
- users: super (superadmin), admin (acme admin), viewer (acme viewer), ana (acme staff, linked
  to the staff member ana), other (admin of private only);
- bookings: in acme, a consult (ben or whoever round robin gives), a review with ana waiting for
  approval, a review with ben, a visit with cleo (a sensitive answer, and a client name that looks
  like a spreadsheet formula); in private, a consult with dan; a workflow owned by private only
  (``private-only``) and an outbox row of each calendar.

The world is built once per session (per xdist worker) and copied into each test's database (see
``Seeds`` in tests/conftest.py): building it (five scrypt hashes, five bookings) took a second or
two per test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bookwise.accounts.services import create_user, grant_role
from bookwise.bookings.services import BookingRequest, create_booking, find_service
from bookwise.calendars.models import Calendar, StaffMember, TimeOff
from bookwise.config import Settings
from bookwise.database import Database
from bookwise.db import unit_of_work
from bookwise.notifications.models import Notification
from bookwise.notifications.services import seed_templates
from bookwise.notifications.templates import SHIPPED_TEMPLATES
from bookwise.workflows.editing import check_text
from bookwise.workflows.services import create_workflow
from bookwise.workflows.sources import check_context
from tests.conftest import Seeds, _scenario_config, _seed_scenario

PASSWORD = "correct horse battery staple"
NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)

PRIVATE_ONLY = """\
id: private-only
name: {en: Members' secret session, fr: Séance secrète}
duration: 30m
booking_window: {min_notice: 0m, max_ahead: 400d}
staff: {tags: [consultant]}
notifications: []
"""


@dataclass
class World:
    app: Any
    ids: dict[str, int] = field(default_factory=dict)

    def login(self, who: str) -> Any:
        client = self.app.test_client()
        response = client.post(
            "/login",
            data={
                "email": f"{who}@bw.example",
                "password": PASSWORD,
                "csrf_token": token(client, "/login"),
            },
        )
        assert response.status_code == 302, response.data[:500]
        return client


def token(client: Any, path: str = "/admin/") -> str:
    """The session's CSRF token, read from a back-office page."""
    html = client.get(path).get_data(as_text=True)
    for tag in re.findall(r"<input[^>]*>", html):
        if 'name="csrf_token"' in tag:
            value = re.search(r'value="([^"]+)"', tag)
            if value:
                return value.group(1)
    raise AssertionError("no CSRF token on " + path)


def _book(session: Any, calendar: str, service: str, start: datetime, **extra: Any) -> int:
    context = find_service(session, calendar, service)
    values = {"name": extra.pop("name", "Zoé Client"), "email": "zoe@client.example"}
    values.update(extra.pop("values", {"topic": "Taxes"}))
    booking = create_booking(
        session,
        context,
        BookingRequest(start=start, values=values, consent=True, locale="en", **extra),
        NOW,
        plugins=None,
    )
    return booking.id


def _seed_world(settings: Settings, database: Database) -> dict[str, int]:
    """The scenario, then the world's users, workflow, time off, bookings and messages."""
    _seed_scenario(settings, database)
    ids: dict[str, int] = {}
    with unit_of_work(database.sessions) as session:
        seed_templates(session, [SHIPPED_TEMPLATES])
        calendars = {c.slug: c for c in session.scalars(select(Calendar))}
        staff = {m.slug: m for m in session.scalars(select(StaffMember))}
        acme, private = calendars["acme"], calendars["private"]
        ids.update(acme=acme.id, private=private.id)
        for slug, member in staff.items():
            ids[f"staff_{slug}"] = member.id
        super_ = create_user(session, "super@bw.example", PASSWORD, superadmin=True)
        admin = create_user(session, "admin@bw.example", PASSWORD)
        viewer = create_user(session, "viewer@bw.example", PASSWORD)
        ana = create_user(session, "ana@bw.example", PASSWORD)
        other = create_user(session, "other@bw.example", PASSWORD)
        grant_role(session, admin, acme.id, "admin")
        grant_role(session, viewer, acme.id, "viewer")
        grant_role(session, ana, acme.id, "staff").staff_id = staff["ana"].id
        grant_role(session, other, private.id, "admin")
        ids.update(super=super_.id, admin=admin.id, viewer=viewer.id, ana=ana.id, other=other.id)
        context, _ = check_context(settings)
        checked, problems = check_text(PRIVATE_ONLY, "private-only.yaml", context)
        assert checked is not None, problems
        record = create_workflow(session, checked, private.id, origin="admin", author="test")
        ids["private_only"] = record.id
        off = TimeOff(
            staff_id=staff["dan"].id,
            start_at=NOW + timedelta(days=20),
            end_at=NOW + timedelta(days=21),
            reason="Secret trip",
            origin="admin",
        )
        session.add(off)
        session.flush()
        ids["time_off_dan"] = off.id
    day = NOW + timedelta(days=3)
    with unit_of_work(database.sessions, write=True) as session:
        ids["acme_consult"] = _book(session, "acme", "consult", day.replace(hour=9))
    with unit_of_work(database.sessions, write=True) as session:
        ids["acme_review_ana"] = _book(
            session, "acme", "review", day.replace(hour=13), staff="ana", values={}
        )
    with unit_of_work(database.sessions, write=True) as session:
        ids["acme_review_ben"] = _book(
            session, "acme", "review", day.replace(hour=13), staff="ben", values={}
        )
    with unit_of_work(database.sessions, write=True) as session:
        ids["acme_visit"] = _book(
            session,
            "acme",
            "visit",
            day.replace(hour=15),
            staff="cleo",
            name='=HYPERLINK("http://evil.example")',
            values={"topic": "Knee", "health": "Diabetic"},
        )
    with unit_of_work(database.sessions, write=True) as session:
        ids["private_consult"] = _book(
            session, "private", "consult", day.replace(hour=10), name="Secret Member"
        )
    with unit_of_work(database.sessions) as session:
        for calendar in ("acme", "private"):
            row = Notification(
                idempotency_key=f"test:{calendar}",
                calendar_id=ids[calendar],
                event="confirmed",
                channel="email",
                recipient_kind="client",
                recipient=f"{calendar}-client@client.example",
                template="confirmed",
                locale="en",
                timezone="Europe/Paris",
                due_at=NOW,
                state="dead",
                attempts=5,
                last_error="connection refused",
            )
            session.add(row)
            session.flush()
            ids[f"message_{calendar}"] = row.id
    return ids


@pytest.fixture
def world(scenario: Any, seeds: Seeds) -> Iterator[World]:
    """The world in the scenario's database: a copy of the session's seeded ``world``."""
    from bookwise.app import create_app

    ids = dict(seeds.restore("world", scenario.database, _scenario_config, _seed_world))
    application = create_app(scenario.settings)
    application.config.update(TESTING=True)
    application.extensions["bookwise"].clock = lambda: NOW
    yield World(application, ids)
    application.extensions["bookwise"].database.engine.dispose()


def db(world: World) -> Any:
    """A database session of the world's instance (the caller closes it)."""
    return world.app.extensions["bookwise"].database.sessions()


def fetch(world: World, model: Any, key: int) -> Any:
    """A row as it is in the database now, detached (its plain columns readable)."""
    with db(world) as session:
        found = session.get(model, key)
        assert found is not None
        session.expunge_all()
        return found


def post(client: Any, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """POST with the session's CSRF token (read from the page itself when it has a form)."""
    values = {"csrf_token": token(client)}
    values.update(data or {})
    return client.post(path, data=values, **kwargs)
