"""Workers share one outbox: two worker processes send every message once; a worker holds the
rows it claimed under a short lease that it renews while it works, and a row whose lease ran
out belongs to the worker that took it."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from bookwise.config import load_settings
from bookwise.errors import ConfigError
from bookwise.notifications.channels import EmailChannel
from bookwise.notifications.delivery import DeliveryRules, Dispatcher
from bookwise.notifications.models import Notification
from tests.conftest import SCENARIO, TEST_NOW, Inbox, Loaded, base_config, write_config
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


# --- the lease and its heartbeat -----------------------------------------------------------------


class Moment:
    """A clock the test moves by hand."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def due_emails(loaded: Loaded, count: int) -> list[int]:
    """``count`` confirmation e-mails due now (to r0@, r1@ ... example.org): their ids."""
    book(loaded, start_in())
    with loaded.database.sessions() as session, session.begin():
        booking_id = session.execute(sa.text("SELECT id FROM bookings")).scalar_one()
        session.execute(sa.delete(Notification))
        for n in range(count):
            session.add(
                Notification(
                    idempotency_key=f"lease:{n}",
                    booking_id=booking_id,
                    calendar_id=1,
                    event="confirmed",
                    channel="email",
                    recipient_kind="client",
                    recipient=f"r{n}@example.org",
                    template="confirmed",
                    locale="en",
                    timezone="Europe/Paris",
                    due_at=TEST_NOW,
                    payload={"sequence": 0},
                )
            )
    with loaded.database.sessions() as session:
        return list(session.scalars(sa.select(Notification.id).order_by(Notification.id)))


def claims(loaded: Loaded) -> dict[int, tuple[str | None, datetime | None, str]]:
    with loaded.database.sessions() as session:
        return {
            row.id: (row.claimed_by, row.claimed_until, row.state)
            for row in session.scalars(sa.select(Notification))
        }


def test_the_lease_is_a_minute_and_a_setting(mailing: Loaded, tmp_path: Any) -> None:
    assert Dispatcher(mailing.settings, mailing.database).rules.lease == timedelta(seconds=60)
    values = base_config(tmp_path, mailing.settings.database_url)
    shorter = write_config(tmp_path / "short.yaml", values | {"scheduler": {"outbox_lease": 30}})
    settings = load_settings(shorter, environ={})
    assert Dispatcher(settings, mailing.database).rules.lease == timedelta(seconds=30)
    assert Dispatcher(settings, mailing.database).rules.heartbeat == timedelta(seconds=7.5)
    too_short = write_config(tmp_path / "bad.yaml", values | {"scheduler": {"outbox_lease": 5}})
    with pytest.raises(ConfigError, match="outbox_lease"):
        load_settings(too_short, environ={})


def test_a_row_taken_over_belongs_to_the_worker_that_took_it(mailing: Loaded, inbox: Inbox) -> None:
    ids = due_emails(mailing, 3)
    first = Dispatcher(
        mailing.settings, mailing.database, clock=lambda: TEST_NOW, rules=DeliveryRules(), name="a"
    )
    assert first.claim() == ids
    later = TEST_NOW + timedelta(seconds=61)  # the first worker stopped renewing: its lease ran out
    second = Dispatcher(
        mailing.settings, mailing.database, clock=lambda: later, rules=DeliveryRules(), name="b"
    )
    assert second.claim() == ids
    taken = claims(mailing)
    assert {by for by, _, _ in taken.values()} == {"b"}

    # The first worker comes back: its renewal extends nothing, its sends and results none.
    assert first.renew(ids) == set()
    for row_id in ids:
        first.deliver(row_id)
    assert claims(mailing) == taken
    assert inbox.messages == []

    # The worker that holds them renews them, and sends each once.
    renewed = TEST_NOW + timedelta(seconds=100)
    assert Dispatcher(
        mailing.settings, mailing.database, clock=lambda: renewed, rules=DeliveryRules(), name="b"
    ).renew(ids) == set(ids)
    assert {until for _, until, _ in claims(mailing).values()} == {renewed + timedelta(seconds=60)}
    for row_id in ids:
        second.deliver(row_id)
    assert Counter(m["To"] for m in inbox.messages) == Counter(
        f"r{n}@example.org" for n in range(3)
    )
    assert {state for _, _, state in claims(mailing).values()} == {"sent"}


def test_a_message_that_stops_every_worker_ends_dead(mailing: Loaded, inbox: Inbox) -> None:
    """Each take-over of a row whose worker stopped counts as an attempt: a message that makes
    every worker taking it stop (a poison message) is not tried for ever."""
    [row_id] = due_emails(mailing, 1)
    rules = DeliveryRules()
    moment = TEST_NOW
    for taken in range(rules.max_attempts):
        worker = Dispatcher(
            mailing.settings, mailing.database, clock=lambda m=moment: m, rules=rules, name="w"
        )
        assert worker.claim() == [row_id]  # ...and the worker stops without a word
        with mailing.database.sessions() as session:
            row = session.get(Notification, row_id)
            assert row is not None
            assert (row.state, row.attempts) == ("sending", taken)  # the first take was no retry
        moment += rules.lease + timedelta(seconds=1)
    last = Dispatcher(mailing.settings, mailing.database, clock=lambda: moment, rules=rules)
    assert last.claim() == []
    with mailing.database.sessions() as session:
        row = session.get(Notification, row_id)
        assert row is not None
        assert row.state == "dead"
        assert row.attempts == rules.max_attempts
        assert "lease ran out" in (row.last_error or "")
    assert inbox.messages == []


class HeldAnswer:
    """An SMTP server that takes the first message and answers it only when the test says."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.took_first = threading.Event()
        self.answer = threading.Event()
        self.port = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.rcpt_tos[0])
        if not self.took_first.is_set():
            self.took_first.set()
            while not self.answer.is_set():
                await asyncio.sleep(0.02)
        return "250 OK"


@pytest.fixture
def slow_server() -> Iterator[HeldAnswer]:
    handler = HeldAnswer()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        handler.port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    yield handler
    handler.answer.set()
    controller.stop()


@pytest.mark.timeout(60)
def test_a_slow_send_keeps_its_lease_with_a_heartbeat(
    mailing: Loaded, slow_server: HeldAnswer
) -> None:
    ids = due_emails(mailing, 2)
    moment = Moment(TEST_NOW)
    mail = dataclasses.replace(mailing.settings.mail, port=slow_server.port, timeout=60)
    # A lease of 0.4 s on the clock: the heartbeat beats every 0.1 s of real time.
    sender = Dispatcher(
        mailing.settings,
        mailing.database,
        channels={"email": EmailChannel(mail)},
        clock=moment,
        rules=DeliveryRules(lease=timedelta(seconds=0.4)),
        name="slow",
    )
    worker = threading.Thread(target=sender.run_once)
    worker.start()
    try:
        assert slow_server.took_first.wait(timeout=30)
        # The mail server takes its time; the clock runs far past the first lease.
        moment.at = TEST_NOW + timedelta(minutes=10)
        deadline = time.monotonic() + 30
        while not all(
            state == "sending" and until is not None and until > moment.at
            for _, until, state in claims(mailing).values()
        ):
            assert time.monotonic() < deadline, "the lease was not renewed during the send"
            time.sleep(0.05)
        other = Dispatcher(
            mailing.settings,
            mailing.database,
            clock=lambda: moment.at + timedelta(seconds=0.2),
            rules=DeliveryRules(),
            name="other",
        )
        assert other.claim() == []  # still held by the live, slow worker
    finally:
        slow_server.answer.set()
        worker.join(timeout=30)
    assert {(by, state) for by, _, state in claims(mailing).values()} == {("slow", "sent")}
    assert sorted(slow_server.messages) == [f"r{n}@example.org" for n in range(len(ids))]
