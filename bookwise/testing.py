"""Helpers for testing plugins against a real Bookwise instance (a SQLite file in a temporary
folder, the repository's demo calendars and workflows, the plugins of your choice enabled).

    from bookwise.testing import make_instance, book

    def test_my_channel(tmp_path):
        bw = make_instance(tmp_path, plugins={"enabled": ["shout"], "shout": {"url": ...}})
        booking = book(bw, "tutoring")
        bw.send_due()

Used by the plugins in ``plugins/`` and by Bookwise's own tests. Not part of the runtime.

Time: an instance made here stands at :func:`test_instant` (``BOOKWISE_TEST_NOW`` when set, else
:data:`DEFAULT_NOW`) and its clock runs on from there, so a test gives the same result at any
hour; run your tests with ``BOOKWISE_TEST_NOW="2027-03-28T08:30 Europe/Paris"`` (any instant) to
check they hold on other days and hours, as Bookwise's CI does.
"""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from bookwise.clock import Clock, clock_from, parse_instant
from bookwise.config import Settings, load_settings
from bookwise.database import Database, open_database, prepare_schema

ROOT = Path(__file__).resolve().parents[1]  # the repository (an editable install)

# A Monday early afternoon in Paris: inside the working day, when a booking "as soon as
# possible" falls within the usual notice and cancellation periods.
DEFAULT_NOW = "2026-12-07T13:00 Europe/Paris"


def test_instant() -> datetime:
    """The instant tests stand at: ``BOOKWISE_TEST_NOW`` when set, else :data:`DEFAULT_NOW`."""
    text = os.environ.get("BOOKWISE_TEST_NOW") or DEFAULT_NOW
    try:
        return parse_instant(text)
    except ValueError as error:
        raise ValueError(f"BOOKWISE_TEST_NOW: {error}") from None


test_instant.__test__ = False  # type: ignore[attr-defined]  # not a test, for pytest


@dataclass
class RunningInstance:
    settings: Settings
    database: Database
    clock: Clock = field(default_factory=lambda: clock_from(test_instant()))

    def now(self) -> datetime:
        """The instance's current time (see the module docstring)."""
        return self.clock()

    def app(self) -> Any:
        """The Flask application of this instance, for its test client."""
        from bookwise.app import create_app

        application = create_app(self.settings, clock=self.clock)
        application.config.update(TESTING=True)
        return application

    def send_due(self, at: datetime | None = None) -> int:
        """Deliver every message due (now, or at ``at``); the number handled."""
        from bookwise.notifications.delivery import Dispatcher

        moment = at or self.now()
        return Dispatcher(self.settings, self.database, clock=lambda: moment).drain()


def make_instance(
    tmp_path: Path,
    plugins: Mapping[str, Any] | None = None,
    now: datetime | None = None,
    **config: Any,
) -> RunningInstance:
    """A new instance in ``tmp_path`` with the demo calendars and workflows loaded, standing at
    ``now`` (by default :func:`test_instant`)."""
    from bookwise import instance

    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'bookwise.db'}",
        "secret_key": "plugin-tests-" + "x" * 40,
        "instance_dir": str(tmp_path / "instance"),
        "workflows": str(ROOT / "workflows"),
        "forms": str(ROOT / "forms"),
        "templates": str(ROOT / "templates"),
        "demo_data": None,
        "locales": ["en", "fr", "de", "es"],
        "default_locale": "en",
        "mail": {"transport": "log"},
        "plugins": dict(plugins or {"enabled": []}),
        **config,
    }
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "config.yaml"
    with path.open("w", encoding="utf-8") as handle:
        YAML().dump(values, handle)
    settings = load_settings(path, environ={})
    database = open_database(settings)
    prepare_schema(database)
    instance.sync_workflows(settings, database)
    instance.load_calendar_file(settings, database, ROOT / "demo" / "calendars.yaml")
    return RunningInstance(settings, database, clock_from(now or test_instant()))


def free_starts(
    session: Any, context: Any, now: datetime, days_ahead: int = 7, days: int = 21
) -> list[datetime]:
    """The free start times of a service (a ``BookingContext``), from ``days_ahead`` days from
    now, for ``days`` days, earliest first."""
    from bookwise.availability.services import service_availability

    found = service_availability(
        session,
        context.calendar,
        context.service,
        context.workflow,
        now + timedelta(days=days_ahead),
        now + timedelta(days=days_ahead + days),
        now,
    )
    return sorted({slot.start for slot in found.slots})


def book_in(
    session: Any,
    calendar: str,
    service: str,
    answers: Mapping[str, Any] | None = None,
    days_ahead: int = 7,
    now: datetime | None = None,
    plugins: Any = None,
    **request: Any,
) -> Any:
    """Book the first free slot of ``service`` in the caller's write transaction, ``days_ahead``
    days or more after ``now`` (by default :func:`test_instant`), with ``plugins`` (a plugin
    host; by default none)."""
    from bookwise.bookings.services import BookingRequest, create_booking, find_service

    now = now or test_instant()
    context = find_service(session, calendar, service)
    free = free_starts(session, context, now, days_ahead)
    if not free:
        raise AssertionError(f"no free slot for {calendar}/{service}")
    values = {"name": "Zoe Client", "email": "zoe@example.org", **(answers or {})}
    return create_booking(
        session,
        context,
        BookingRequest(start=free[0], values=values, consent=True, **request),
        now,
        plugins=plugins,
    )


def book(
    bw: RunningInstance,
    calendar: str,
    service: str,
    answers: Mapping[str, Any] | None = None,
    days_ahead: int = 7,
    **request: Any,
) -> Any:
    """Book the first free slot of ``service`` (a workflow id) of ``calendar`` (a slug), at
    least ``days_ahead`` days from now, with the instance's plugins; the booking, as
    committed."""
    from bookwise.db import unit_of_work

    with unit_of_work(bw.database.sessions, write=True) as session:
        return book_in(
            session,
            calendar,
            service,
            answers,
            days_ahead,
            bw.now(),
            plugins=bw.database.plugins,
            **request,
        )


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """What a loopback HTTP server received, and what it answers (status, body)."""

    url: str
    requests: list[Received] = field(default_factory=list)
    status: int = 200
    answer: bytes = b"{}"
    content_type: str = "application/json"


@contextmanager
def http_receiver() -> Iterator[Receiver]:
    """A real HTTP server on 127.0.0.1 that records every POST (a gateway, a chat service)."""
    receiver = Receiver(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            receiver.requests.append(
                Received(self.path, dict(self.headers.items()), self.rfile.read(length))
            )
            self.send_response(receiver.status)
            self.send_header("Content-Type", receiver.content_type)
            self.send_header("Content-Length", str(len(receiver.answer)))
            self.end_headers()
            self.wfile.write(receiver.answer)

        def log_message(self, *_args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def overlapping_bookings(engine: Any) -> int:
    """Pairs of bookings that hold their time, share a staff member and overlap (buffers
    included): what must stay 0 whatever the load (a test's or a benchmark's check, in SQL)."""
    import sqlalchemy as sa
    from sqlalchemy.orm import aliased

    from bookwise.bookings.models import Booking

    mine, other = aliased(Booking), aliased(Booking)
    with engine.connect() as connection:
        pairs = connection.scalar(
            sa.select(sa.func.count())
            .select_from(mine)
            .join(
                other,
                sa.and_(
                    other.staff_id == mine.staff_id,
                    other.id > mine.id,
                    other.blocked_from < mine.blocked_until,
                    mine.blocked_from < other.blocked_until,
                ),
            )
            .where(mine.holds_slot, other.holds_slot)
        )
    return int(pairs or 0)
