"""The Jitsi provider in a real instance: a room per booking, in the messages and the .ics."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from bookwise.bookings.models import Booking, BookingEvent
from bookwise.bookings.services import transition_booking
from bookwise.db import unit_of_work
from bookwise.plugins.host import load_plugins
from bookwise.testing import book, make_instance

HR = {"position": "dev", "cv_url": "https://example.org/cv.pdf"}
SERVER = "https://meet.example.org"


def enabled(**settings: str) -> dict[str, object]:
    return {"enabled": ["jitsi"], "jitsi": {"server": SERVER, **settings}}


def test_each_booking_gets_its_own_unguessable_room(tmp_path: Path) -> None:
    bw = make_instance(tmp_path, plugins=enabled(prefix="Northwind"))
    first = book(bw, "northwind-hr", "hr-interview", HR)
    second = book(bw, "northwind-hr", "hr-interview", HR, days_ahead=8)
    pattern = re.compile(rf"^{re.escape(SERVER)}/Northwind[0-9a-f]{{32}}$")
    assert pattern.match(first.meeting_url) and pattern.match(second.meeting_url)
    assert first.meeting_url != second.meeting_url
    assert first.meeting_provider == "jitsi"
    assert "zoe" not in first.meeting_url.lower()  # nothing of the client in a public room name


def test_the_link_reaches_the_messages_and_the_invitation(tmp_path: Path) -> None:
    bw = make_instance(tmp_path, plugins=enabled())
    booking = book(bw, "northwind-hr", "hr-interview", HR)
    with unit_of_work(bw.database.sessions, write=True) as session:
        row = session.get(Booking, booking.id)
        transition_booking(
            session, row, "approve", "staff", "ana", bw.now(), plugins=bw.database.plugins
        )
    bw.send_due()
    log = (bw.settings.instance_dir / "messages.log").read_text(encoding="utf-8")
    confirmed = [json.loads(line) for line in log.splitlines()]
    to_client = [m for m in confirmed if m["to"] == "zoe@example.org"]
    assert any(booking.meeting_url in m["text"] for m in to_client)


def test_the_server_setting_is_checked_at_start_up(tmp_path: Path) -> None:
    bw = make_instance(tmp_path, plugins={"enabled": ["jitsi"], "jitsi": {"server": "meet"}})
    host = load_plugins(bw.settings)
    assert host.plugins["jitsi"].state == "failed"
    (problem,) = host.problems()
    assert "plugins.jitsi.server" in problem and "https:// address of a Jitsi" in problem
    # The rest starts, and bookings are made without a link (their history says why).
    booking = book(bw, "northwind-hr", "hr-interview", HR)
    assert booking.meeting_url is None
    with bw.database.sessions() as session:
        events = session.scalars(select(BookingEvent).where(BookingEvent.booking_id == booking.id))
        assert "meeting_failed" in {event.action for event in events}


@pytest.mark.parametrize("server", ["http://meet.example.org", "https://meet.example.org/path"])
def test_only_a_https_server_address(tmp_path: Path, server: str) -> None:
    bw = make_instance(tmp_path, plugins={"enabled": ["jitsi"], "jitsi": {"server": server}})
    assert load_plugins(bw.settings).plugins["jitsi"].state == "failed"
