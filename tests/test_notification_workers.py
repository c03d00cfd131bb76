"""Two worker processes drain one outbox: every message is sent exactly once."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa

from bookwise.notifications.models import Notification
from tests.conftest import SCENARIO, TEST_NOW, base_config, write_config
from tests.test_notifications import book, start_in

ROWS = 2000

DRAIN = """
import sys
from bookwise.clock import clock_from, parse_instant
from bookwise.config import load_settings
from bookwise.database import open_database
from bookwise.notifications.delivery import Dispatcher
settings = load_settings(sys.argv[1], environ={})
clock = clock_from(parse_instant(sys.argv[2]))
print(Dispatcher(settings, open_database(settings), clock=clock).drain(), flush=True)
"""


@pytest.mark.slow
def test_two_workers_send_each_message_once(mailing: Any, inbox: Any, tmp_path: Any) -> None:
    book(mailing, start_in())
    with mailing.database.sessions() as session, session.begin():
        booking_id, uid = session.execute(sa.text("SELECT id, uid FROM bookings")).one()
        session.execute(sa.delete(Notification))
        now = TEST_NOW
        session.execute(
            sa.insert(Notification),
            [
                {
                    "idempotency_key": f"load:{n}",
                    "booking_id": booking_id,
                    "calendar_id": 1,
                    "event": "confirmed",
                    "channel": "email",
                    "recipient_kind": "client",
                    "recipient": f"r{n}@example.org",
                    "template": "confirmed",
                    "locale": "en",
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
    values = base_config(tmp_path, mailing.settings.database_url) | {
        "workflows": str(SCENARIO / "workflows"),
        "mail": {"host": "127.0.0.1", "port": inbox.port, "sender": "Acme <b@acme.example>"},
    }
    config = write_config(tmp_path / "workers.yaml", values)
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", DRAIN, str(config), TEST_NOW.isoformat()],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    handled = []
    for worker in workers:
        out, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err
        handled.append(int(out.strip().splitlines()[-1]))
    assert sum(handled) == ROWS
    assert all(count > 0 for count in handled), f"both workers took a share: {handled}"
    received = Counter(message["To"] for message in inbox.messages)
    assert len(received) == ROWS and set(received.values()) == {1}
    with mailing.database.sessions() as session:
        states = Counter(session.scalars(sa.select(Notification.state)))
    assert states == Counter({"sent": ROWS})
    assert uid
