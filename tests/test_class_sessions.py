"""The demo's revision class (workflows/tutoring-group.yaml) is offered only at its sessions, on
the slots API and on the booking page, as one group of six per session."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
# Mondays and Wednesdays at 17:00, Saturdays at 10:00 (the workflow's sessions).
SESSIONS = {(0, "17:00"), (2, "17:00"), (5, "10:00")}


def test_the_api_offers_only_the_class_sessions(client: Any, now: datetime) -> None:
    first = now.astimezone(NEW_YORK).date()
    last = first + timedelta(days=21)
    slots = client.get(
        "/api/v1/calendars/bright-minds/services/tutoring-group/slots"
        f"?from={first}&to={last}&tz=America/New_York"
    ).get_json()["slots"]
    assert len(slots) >= 8  # three sessions a week, for three weeks less the booking notice
    for slot in slots:
        start = datetime.fromisoformat(slot["start"])
        assert (start.weekday(), start.strftime("%H:%M")) in SESSIONS, slot
        assert slot["remaining"] == 6, "one group of six, though two tutors could teach it"
        assert datetime.fromisoformat(slot["end"]) - start == timedelta(minutes=90)


def test_the_booking_page_shows_only_session_times(client: Any, now: datetime) -> None:
    day = now.astimezone(NEW_YORK).date() + timedelta(days=2)
    while day.weekday() not in (0, 2, 5):
        day += timedelta(days=1)
    data = client.get(
        f"/bright-minds/tutoring-group/times?date={day}&tz=America/New_York"
    ).get_json()
    expected = "10:00" if day.weekday() == 5 else "17:00"
    assert [datetime.fromisoformat(s["start"]).strftime("%H:%M") for s in data["slots"]] == [
        expected
    ]
    assert data["slots"][0]["places"] == "6 places left"
    # The day after a session day (tue, thu or sun) has none, though the centre is open.
    after = client.get(
        f"/bright-minds/tutoring-group/times?date={day + timedelta(days=1)}&tz=America/New_York"
    ).get_json()
    assert after["slots"] == []
