"""Calendar files (.ics) for a booking, for Outlook, Google Calendar and Apple Calendar. Pure.

One booking is one event with a stable UID; every change raises its SEQUENCE, so calendars
update the event they have instead of adding another. The event is written in the business's
time zone, with its VTIMEZONE.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

import icalendar

PRODID = "-//Bookwise//Bookwise booking//EN"

Status = Literal["CONFIRMED", "TENTATIVE", "CANCELLED"]


@dataclass(frozen=True)
class CalendarEvent:
    uid: str
    sequence: int
    start: datetime
    end: datetime
    timezone: str
    summary: str
    stamp: datetime
    description: str = ""
    location: str = ""
    url: str = ""
    organizer_name: str = ""
    organizer_email: str = ""
    attendee_name: str = ""
    attendee_email: str = ""
    status: Status = "CONFIRMED"


def event_status(holds_slot: bool, awaiting_approval: bool) -> Status:
    """The event's ``STATUS``: a booking that waits for staff approval is ``TENTATIVE`` (the
    client's calendar shows the time as held, not as certain) until the approval, whose
    confirmation raises the SEQUENCE and says ``CONFIRMED``; one that no longer takes place is
    ``CANCELLED``."""
    if not holds_slot:
        return "CANCELLED"
    return "TENTATIVE" if awaiting_approval else "CONFIRMED"


def build_ics(event: CalendarEvent, method: Literal["PUBLISH", "REQUEST", "CANCEL"]) -> bytes:
    """The .ics file of ``event``: ``PUBLISH`` for a download, ``REQUEST`` for an invitation
    (new or changed), ``CANCEL`` for a cancellation."""
    zone = ZoneInfo(event.timezone)
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", method)
    vevent = icalendar.Event()
    vevent.add("uid", event.uid)
    vevent.add("sequence", event.sequence)
    vevent.add("dtstamp", event.stamp)
    vevent.add("dtstart", event.start.astimezone(zone))
    vevent.add("dtend", event.end.astimezone(zone))
    vevent.add("summary", event.summary)
    vevent.add("status", "CANCELLED" if method == "CANCEL" else event.status)
    if event.description:
        vevent.add("description", event.description)
    if event.location or event.url:
        vevent.add("location", event.location or event.url)
    if event.url:
        vevent.add("url", event.url)
    if event.organizer_email:
        vevent.add(
            "organizer",
            icalendar.vCalAddress(f"mailto:{event.organizer_email}"),
            parameters={"CN": event.organizer_name or event.organizer_email},
        )
    if event.attendee_email:
        vevent.add(
            "attendee",
            icalendar.vCalAddress(f"mailto:{event.attendee_email}"),
            parameters={
                "CN": event.attendee_name or event.attendee_email,
                "ROLE": "REQ-PARTICIPANT",
                "PARTSTAT": "ACCEPTED",
            },
        )
    calendar.add_component(_timezone(event.timezone, event.start.astimezone(zone).year))
    calendar.add_component(vevent)
    data: bytes = calendar.to_ical()
    return data


@lru_cache(maxsize=256)
def _timezone(zone: str, year: int) -> icalendar.Timezone:
    """The zone's VTIMEZONE around ``year`` (built once: it is the same for every event)."""
    return icalendar.Timezone.from_tzid(
        zone, first_date=date(year - 1, 1, 1), last_date=date(year + 2, 1, 1)
    )


__all__ = ["CalendarEvent", "Status", "build_ics", "event_status"]
