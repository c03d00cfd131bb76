"""How fast the outbox drains: 10,000 due reminders to a local SMTP server, by one worker process
and by two, each sent exactly once (the SMTP server counts each recipient's messages; the outbox
must end with every row sent). Run:

    .venv/bin/python benchmarks/outbox.py                       # SQLite
    .venv/bin/python benchmarks/outbox.py postgresql+psycopg://postgres@127.0.0.1/test

Each message is rendered from its template in the recipient's language, carries the calendar
invitation, and goes through a real SMTP conversation (aiosmtpd on loopback, one connection per
batch of 50).
"""

from __future__ import annotations

import collections
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bookwise import instance  # noqa: E402
from bookwise.bookings.services import BookingRequest, create_booking, find_service  # noqa: E402
from bookwise.config import load_settings  # noqa: E402
from bookwise.database import Database, open_database, prepare_schema  # noqa: E402
from bookwise.db import unit_of_work  # noqa: E402
from bookwise.notifications.models import Notification  # noqa: E402

ROWS = 10_000
SCENARIO = ROOT / "tests" / "data" / "scenario"
DRAIN = """
import sys
from bookwise.config import load_settings
from bookwise.database import open_database
from bookwise.notifications.delivery import Dispatcher
settings = load_settings(sys.argv[1], environ={})
print(Dispatcher(settings, open_database(settings)).drain(), flush=True)
"""


class Counter:
    def __init__(self) -> None:
        self.count = 0
        self.by_recipient: collections.Counter[str] = collections.Counter()

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.count += 1
        self.by_recipient.update(envelope.rcpt_tos)
        return "250 OK"


def main(url: str | None) -> None:
    handler = Counter()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    schema = f"outbox_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url) if url else None
    try:
        with tempfile.TemporaryDirectory() as folder:
            if admin is not None:
                with admin.begin() as connection:
                    connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
                database_url = f"{url}?options=-csearch_path%3D{schema},public"
            else:
                database_url = f"sqlite:///{folder}/outbox.db"
            config = Path(folder) / "config.yaml"
            config.write_text(
                f"database_url: '{database_url}'\ninstance_dir: {folder}/instance\n"
                f"workflows: {SCENARIO / 'workflows'}\nforms: {ROOT / 'forms'}\n"
                f"mail: {{host: 127.0.0.1, port: {port}, sender: 'Bench <b@bench.example>'}}\n"
            )
            settings = load_settings(config, environ={})
            database = open_database(settings)
            prepare_schema(database)
            instance.load_calendar_files(settings, database, [SCENARIO / "calendars.yaml"])
            start = datetime.now(ZoneInfo("Europe/Paris")).replace(
                hour=10, minute=0, second=0, microsecond=0
            ) + timedelta(days=3)
            with unit_of_work(database.sessions, write=True) as session:
                context = find_service(session, "acme", "visit")
                booking = create_booking(
                    session,
                    context,
                    BookingRequest(
                        start=start, staff="ana", values={"name": "B", "email": "b@bench.example"}
                    ),
                    datetime.now(UTC),
                    plugins=None,
                )
                booking_id = booking.id
            print(
                f"{'PostgreSQL' if url else 'SQLite'}: {ROWS} due e-mails, each rendered with "
                "its calendar invitation, to aiosmtpd on loopback"
            )
            for workers in (1, 2):
                reset(database, booking_id)
                handler.count = 0
                handler.by_recipient.clear()
                started = time.perf_counter()
                processes = [
                    subprocess.Popen(
                        [sys.executable, "-c", DRAIN, str(config)],
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                    for _ in range(workers)
                ]
                for process in processes:
                    process.communicate()
                elapsed = time.perf_counter() - started
                with database.engine.connect() as connection:
                    states = dict(
                        connection.execute(
                            sa.select(Notification.state, sa.func.count()).group_by(
                                Notification.state
                            )
                        ).all()
                    )
                twice = sum(1 for n in handler.by_recipient.values() if n > 1)
                print(
                    f"  {workers} worker process(es): {handler.count} sent in {elapsed:.1f} s "
                    f"= {handler.count / elapsed:.0f} messages/s; {len(handler.by_recipient)} "
                    f"recipients, {twice} sent more than once; outbox {states}"
                )
            database.engine.dispose()
    finally:
        controller.stop()
        if admin is not None:
            with admin.begin() as connection:
                connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()


def reset(database: Database, booking_id: int) -> None:
    now = datetime.now(UTC)
    with database.engine.begin() as connection:
        connection.execute(sa.delete(Notification.__table__))
        connection.execute(
            sa.insert(Notification.__table__),
            [
                {
                    "idempotency_key": f"bench:{n}",
                    "booking_id": booking_id,
                    "calendar_id": 1,
                    "event": "reminder",
                    "channel": "email",
                    "recipient_kind": "client",
                    "recipient": f"r{n}@bench.example",
                    "template": "reminder",
                    "locale": ("en", "fr", "de", "es")[n % 4],
                    "timezone": "Europe/Paris",
                    "due_at": now,
                    "state": "pending",
                    "attempts": 0,
                    "payload": {"sequence": 0},
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(ROWS)
            ],
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
