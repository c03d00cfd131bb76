"""Many clients racing for the same time, over real HTTP, on SQLite and PostgreSQL.

50 threads post the same start at once: exactly one booking for a one-to-one slot, exactly five
for a group of five; every other client gets a 409 "slot_taken", never a 500. With several
server processes (as behind gunicorn) the database alone keeps them apart.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from bookwise.bookings.models import Booking
from tests.conftest import TEST_NOW

PARIS = ZoneInfo("Europe/Paris")
# Times here are chosen from the instant the suite stands at: CI runs these at several.
pytestmark = pytest.mark.clock
CLIENTS = 50


def _start(days: int = 2, hour: int = 10) -> str:
    day = TEST_NOW.astimezone(PARIS).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, tzinfo=PARIS).isoformat()


def _post(
    url: str, body: dict[str, Any], number: int, extra: dict[str, str] | None = None
) -> tuple[int, str]:
    # Each client from an address of its own, as real clients come (the servers trust one
    # proxy's X-Forwarded-For): the rate limits per address then hold none of them back.
    headers = {"Content-Type": "application/json", "X-Forwarded-For": f"10.0.0.{number + 1}"}
    headers |= extra or {}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())["id"]
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())["error"]["code"]


def _race(urls: list[str], path: str, body_for: Any) -> Counter[tuple[int, str]]:
    """CLIENTS threads post at the same instant, spread over ``urls``; their answers, counted."""
    answers = _answers(urls, path, body_for)
    return Counter((status, detail if status != 201 else "created") for status, detail in answers)


def _answers(
    urls: list[str], path: str, body_for: Any, headers: dict[str, str] | None = None
) -> list[tuple[int, str]]:
    """CLIENTS threads post at the same instant, spread over ``urls``: each status with the id
    of the booking made (201) or the error's code."""
    barrier = threading.Barrier(CLIENTS)
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def client(number: int) -> None:
        body = body_for(number)
        barrier.wait()
        outcome = _post(urls[number % len(urls)] + path, body, number, headers)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def _one_to_one(number: int) -> dict[str, Any]:
    return {
        "start": _start(),
        "staff": "ben",
        "client": {"name": f"C{number}", "email": f"c{number}@example.org"},
    }


def _group(number: int) -> dict[str, Any]:
    return {
        "start": _start(hour=11),
        "client": {"name": f"G{number}", "email": f"g{number}@example.org"},
    }


@pytest.fixture
def server(scenario: Any, clock: Any) -> Any:
    """The scenario app served on loopback by a threaded server, behind a (pretended) proxy."""
    from bookwise.app import create_app

    settings = scenario.settings
    settings = replace(settings, security=replace(settings.security, behind_proxies=1))
    app = create_app(settings, clock=clock)
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join()
    app.extensions["bookwise"].database.engine.dispose()


def _booked(scenario: Any, start: str) -> int:
    moment = datetime.fromisoformat(start)
    with scenario.database.sessions() as session:
        return session.scalar(
            sa.select(sa.func.count())
            .select_from(Booking)
            .where(Booking.start_at == moment, Booking.holds_slot)
        )


def test_one_winner_for_a_one_to_one_slot(server: str, scenario: Any) -> None:
    outcome = _race([server], "/api/v1/calendars/acme/services/review/bookings", _one_to_one)
    assert outcome == Counter({(201, "created"): 1, (409, "slot_taken"): CLIENTS - 1})
    assert _booked(scenario, _start()) == 1


def test_five_winners_for_a_group_of_five(server: str, scenario: Any) -> None:
    outcome = _race([server], "/api/v1/calendars/acme/services/workshop/bookings", _group)
    assert outcome == Counter({(201, "created"): 5, (409, "slot_taken"): CLIENTS - 5})
    assert _booked(scenario, _start(hour=11)) == 5


SERVE = """
import sys
from werkzeug.serving import make_server
from bookwise.app import create_app
from bookwise.clock import clock_from, parse_instant
from bookwise.config import load_settings
settings = load_settings(sys.argv[1], environ={})
app = create_app(settings, clock=clock_from(parse_instant(sys.argv[3])))
server = make_server("127.0.0.1", int(sys.argv[2]), app, threaded=True)
print("ready", flush=True)
server.serve_forever()
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def four_servers(scenario: Any, tmp_path: Path) -> Any:
    """Four server processes on the same database, as gunicorn workers would be."""
    from tests.conftest import SCENARIO, base_config, write_config

    values = base_config(tmp_path, scenario.settings.database_url) | {
        "workflows": str(SCENARIO / "workflows"),
        "security": {"behind_proxies": 1},
    }
    config = write_config(tmp_path / "servers.yaml", values)
    processes, urls = [], []
    for _ in range(4):
        port = _free_port()
        process = subprocess.Popen(
            [sys.executable, "-c", SERVE, str(config), str(port), TEST_NOW.isoformat()],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        processes.append(process)
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for process in processes:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready", process.stderr
        for url in urls:
            for _ in range(100):
                try:
                    urllib.request.urlopen(url + "/healthz", timeout=2)
                    break
                except OSError:
                    time.sleep(0.05)
        yield urls
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=20)


@pytest.mark.slow
def test_several_processes_one_winner(four_servers: list[str], scenario: Any) -> None:
    outcome = _race(four_servers, "/api/v1/calendars/acme/services/review/bookings", _one_to_one)
    assert outcome == Counter({(201, "created"): 1, (409, "slot_taken"): CLIENTS - 1})
    assert _booked(scenario, _start()) == 1


@pytest.mark.slow
def test_several_processes_five_winners(four_servers: list[str], scenario: Any) -> None:
    outcome = _race(four_servers, "/api/v1/calendars/acme/services/workshop/bookings", _group)
    assert outcome == Counter({(201, "created"): 5, (409, "slot_taken"): CLIENTS - 5})
    assert _booked(scenario, _start(hour=11)) == 5


@pytest.mark.slow
def test_several_processes_one_idempotency_key_one_booking(
    four_servers: list[str], scenario: Any
) -> None:
    """A client's retries all at once, with the same key, to four processes: one booking, and
    every answer is its 201."""
    body = _group(0)
    answers = _answers(
        four_servers,
        "/api/v1/calendars/acme/services/workshop/bookings",
        lambda _number: body,
        {"Idempotency-Key": "retry-7f3a"},
    )
    assert {status for status, _id in answers} == {201}, Counter(answers)
    assert len({booking for _status, booking in answers}) == 1
    assert _booked(scenario, _start(hour=11)) == 1


def test_the_database_refuses_an_overlap_on_its_own(scenario: Any) -> None:
    """Even a write that skips the service's checks cannot double-book: the constraint (on
    PostgreSQL) or the trigger (on SQLite) refuses it."""
    from bookwise.bookings.services import BookingRequest, create_booking, find_service
    from bookwise.db import unit_of_work

    start = datetime.fromisoformat(_start())
    with unit_of_work(scenario.database.sessions, write=True) as session:
        context = find_service(session, "acme", "review")
        first = create_booking(
            session,
            context,
            BookingRequest(
                start=start, staff="ben", values={"name": "A", "email": "a@example.org"}
            ),
            TEST_NOW,
            plugins=None,
        )
        first_values = {
            c.name: getattr(first, c.name)
            for c in Booking.__table__.columns
            if c.name not in ("id",)
        }
    clone = Booking(
        **{
            **first_values,
            "uid": "f" * 32,
            "slot_key": "f" * 32,
            "manage_token": "x",
            "start_at": start + timedelta(minutes=15),
            "end_at": start + timedelta(minutes=60),
            "blocked_from": start + timedelta(minutes=5),
            "blocked_until": start + timedelta(minutes=75),
        }
    )
    with scenario.database.sessions() as session:
        session.add(clone)
        with pytest.raises(sa.exc.IntegrityError) as caught:
            session.commit()
    text = str(caught.value.orig)
    assert "booking_overlap" in text or "ex_bookings_no_overlap" in text
