"""A worker killed in the window between the mail server taking a message and answering it
(issue 15, finding 3): the message may arrive twice, but both copies carry the same Message-ID,
and the dead worker's other rows are sent once its short lease has run out.

Real processes throughout: ``bookwise worker --once`` sends through an SMTP server on loopback
(aiosmtpd) that takes the first message and then never answers; the test kills that worker with
SIGKILL and starts another one later on the injected clock (``--at``), not by sleeping.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email
import email.policy
import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from bookwise.notifications.channels import EmailChannel, WebhookChannel
from bookwise.notifications.delivery import DeliveryRules, Dispatcher
from bookwise.notifications.models import Notification
from tests.conftest import SCENARIO, SECRET, TEST_NOW, Loaded, base_config, write_config
from tests.test_notifications import book, start_in

ROWS = 5
SCRIPT = Path(sys.executable).parent / "bookwise"


class SilentAfterData:
    """An SMTP server that takes the first message in full and then never answers it (the
    kill-before-250 window); it answers every later message at once."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.took_first = threading.Event()
        self.released = False
        self.port = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        if not self.took_first.is_set():
            self.took_first.set()
            while not self.released:  # no answer until the test ends
                await asyncio.sleep(0.05)
            return "451 the test is over"
        return "250 OK"


@pytest.fixture
def silent_server() -> Iterator[SilentAfterData]:
    handler = SilentAfterData()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        handler.port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    yield handler
    handler.released = True
    controller.stop()


def plan_due_rows(loaded: Loaded) -> None:
    """``ROWS`` confirmation e-mails due now, to r0@ ... r4@example.org, in that order."""
    book(loaded, start_in())
    with loaded.database.sessions() as session, session.begin():
        booking_id = session.execute(sa.text("SELECT id FROM bookings")).scalar_one()
        session.execute(sa.delete(Notification))
        session.execute(
            sa.insert(Notification),
            [
                {
                    "idempotency_key": f"crash:{n}",
                    "booking_id": booking_id,
                    "calendar_id": 1,
                    "event": "confirmed",
                    "channel": "email",
                    "recipient_kind": "client",
                    "recipient": f"r{n}@example.org",
                    "template": "confirmed",
                    "locale": "en",
                    "timezone": "Europe/Paris",
                    "due_at": TEST_NOW,
                    "state": "pending",
                    "attempts": 0,
                    "payload": {"sequence": 0},
                    "created_at": TEST_NOW,
                    "updated_at": TEST_NOW,
                }
                for n in range(ROWS)
            ],
        )


def worker(config: Path, at: datetime) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(SCRIPT), "--config", str(config), "worker", "--once", "--at", at.isoformat()],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )


def handled_by(config: Path, at: datetime) -> int:
    """Run a worker to the end at ``at``; the number of rows it handled."""
    out, err = worker(config, at).communicate(timeout=120)
    last = out.strip().splitlines()[-1] if out.strip() else ""
    assert last.endswith("message(s) handled"), err
    return int(last.split()[0])


def outbox(loaded: Loaded) -> dict[int, Notification]:
    with loaded.database.sessions() as session:
        return {row.id: row for row in session.scalars(sa.select(Notification))}


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_worker_killed_before_the_answer_sends_twice_at_most_with_one_message_id(
    mailing: Loaded, silent_server: SilentAfterData, tmp_path: Path
) -> None:
    plan_due_rows(mailing)
    values = base_config(tmp_path, mailing.settings.database_url) | {
        "workflows": str(SCENARIO / "workflows"),
        "mail": {
            "host": "127.0.0.1",
            "port": silent_server.port,
            "sender": "Acme <bookings@acme.example>",
            "timeout": 60,  # the worker waits for the answer until it is killed
        },
    }
    config = write_config(tmp_path / "worker.yaml", values)

    first = worker(config, TEST_NOW)
    try:
        took = silent_server.took_first.wait(timeout=60)
        assert took, first.stderr.read() if first.poll() is not None and first.stderr else ""
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.communicate(timeout=30)
    assert first.returncode == -signal.SIGKILL

    # The dead worker holds every row of its batch, under a short lease.
    held = outbox(mailing)  # only the rows of plan_due_rows
    assert {row.state for row in held.values()} == {"sending"}
    assert len({row.claimed_by for row in held.values()}) == 1
    lease_end = max(row.claimed_until for row in held.values() if row.claimed_until)
    # Measured on the dead worker's own clock (it started at TEST_NOW and ran on for the few
    # seconds the process took to start): about a minute, not the five minutes of issue 15.
    assert lease_end < TEST_NOW + timedelta(seconds=90)

    # Before the lease ends no other worker takes the rows; right after it, one does.
    assert handled_by(config, TEST_NOW + timedelta(seconds=20)) == 0
    assert handled_by(config, lease_end + timedelta(seconds=1)) == ROWS

    rows = {row.recipient: row for row in outbox(mailing).values()}
    assert {row.state for row in rows.values()} == {"sent"}
    copies = Counter(message["To"] for message in silent_server.messages)
    assert copies == Counter({"r0@example.org": 2} | {f"r{n}@example.org": 1 for n in range(1, 5)})
    # Both copies of the message sent twice are the same message to a mail client.
    twice = [m for m in silent_server.messages if m["To"] == "r0@example.org"]
    assert (
        twice[0]["Message-ID"]
        == twice[1]["Message-ID"]
        == rows["r0@example.org"].provider_message_id
    )
    assert twice[0]["Message-ID"] == f"<{rows['r0@example.org'].message_uid}@acme.example>"
    # Every row has its own.
    assert len({m["Message-ID"] for m in silent_server.messages}) == ROWS


# --- every attempt of a message carries the same identity ---------------------------------------


class TakesThenDefers:
    """An SMTP server that takes each recipient's first message in full, then answers 451 (try
    later), and accepts the next one: what a crash after DATA looks like to the recipient."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.port = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        first = all(m["To"] != message["To"] for m in self.messages)
        self.messages.append(message)
        return "451 try again later" if first else "250 OK"


@pytest.fixture
def deferring_server() -> Iterator[TakesThenDefers]:
    handler = TakesThenDefers()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        handler.port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    yield handler
    controller.stop()


class FailsFirst(http.server.BaseHTTPRequestHandler):
    """A webhook receiver that answers 503 to the first POST and 204 to the others."""

    received: list[Message] = []  # the requests' headers (names are case-insensitive)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        FailsFirst.received.append(self.headers)
        self.send_response(503 if len(FailsFirst.received) == 1 else 204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def failing_receiver() -> Iterator[str]:
    FailsFirst.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FailsFirst)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def test_every_attempt_of_a_message_carries_its_message_id_and_webhook_id(
    mailing: Loaded, deferring_server: TakesThenDefers, failing_receiver: str
) -> None:
    book(mailing, start_in())  # a confirmation to the client, to staff, and a webhook
    mail = dataclasses.replace(mailing.settings.mail, port=deferring_server.port)
    channels = {
        "email": EmailChannel(mail),
        "webhook": WebhookChannel(url=failing_receiver, secret=SECRET),
    }
    for at in (TEST_NOW, TEST_NOW + timedelta(minutes=2)):  # an attempt, then the retry
        Dispatcher(
            mailing.settings,
            mailing.database,
            channels=channels,
            clock=lambda at=at: at,
            rules=DeliveryRules(),
        ).drain()

    rows = {r.recipient: r for r in outbox(mailing).values() if r.event == "confirmed"}
    assert {row.state for row in rows.values()} == {"sent"}
    assert {row.attempts for row in rows.values()} == {2}
    for address in ("zoe@example.org", "ana@acme.example"):
        ids = [m["Message-ID"] for m in deferring_server.messages if m["To"] == address]
        uid = rows[address].message_uid
        assert ids == [f"<{uid}@acme.example>"] * 2
        assert rows[address].provider_message_id == ids[0]
    hook = rows["desk@acme.example"]
    assert [h.get("webhook-id") for h in FailsFirst.received] == [hook.message_uid] * 2
    assert len({row.message_uid for row in rows.values()}) == 3
