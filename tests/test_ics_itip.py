"""The .ics files and feeds, read back by two independent parsers (icalendar and vobject).

iTIP (RFC 5546) for the messages build_ics writes: METHOD, one VEVENT, a stable UID across a
request, its change and its cancellation, SEQUENCE, DTSTART and DTEND in the business's zone
with a VTIMEZONE that covers them, ORGANIZER and ATTENDEE, STATUS, DTSTAMP in UTC; and the
syntax of RFC 5545 (CRLF, lines folded at 75 octets, escaped text). vobject resolves a TZID with
the document's own VTIMEZONE (icalendar with the zone's name), so it checks the VTIMEZONE itself.
No database, no Flask, no clock: every time is fixed.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
import vobject
from vobject.icalendar import TimezoneComponent

from bookwise.bookings.ics import CalendarEvent, build_feed, build_ics

PARIS = "Europe/Paris"
NEW_YORK = "America/New_York"
STAMP = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
ORGANIZER = "Zoë Brontë · Clinique Saint-Éloi"
METHODS = ("REQUEST", "CANCEL", "PUBLISH")


def booking_event(**changes: Any) -> CalendarEvent:
    start = changes.pop("start", datetime(2027, 6, 15, 7, 30, tzinfo=UTC))
    values: dict[str, Any] = {
        "uid": "8f1c2d3e4b5a@bookwise",
        "sequence": 0,
        "start": start,
        "end": start + timedelta(minutes=45),
        "timezone": PARIS,
        "summary": "Consultation · Clinique Saint-Éloi",
        "stamp": STAMP,
        "description": "Gérer votre rendez-vous : https://book.example/manage/8f1c2d3e4b5a",
        "location": "12 rue de l'Église, 75015 Paris",
        "url": "",
        "organizer_name": ORGANIZER,
        "organizer_email": "accueil@saint-eloi.example",
        "attendee_name": "Zoé Martin",
        "attendee_email": "zoe@example.org",
        "status": "CONFIRMED",
    }
    values.update(changes)
    return CalendarEvent(**values)


def parse(data: bytes) -> tuple[icalendar.Calendar, Any]:
    """``data`` read by icalendar and by vobject. vobject keeps the first VTIMEZONE it meets for
    a TZID for the rest of the process: it forgets them first, so that it reads this one's."""
    known = vars(vobject.icalendar)["__tzidMap"]
    for tzid in [tzid for tzid in known if tzid != "UTC"]:
        del known[tzid]
    return icalendar.Calendar.from_ical(data), vobject.readOne(data.decode("utf-8"))


def the_vevent(calendar: icalendar.Calendar, document: Any) -> tuple[icalendar.Event, Any]:
    events = calendar.walk("VEVENT")
    assert len(events) == 1
    assert len(document.contents["vevent"]) == 1
    return events[0], document.vevent


def lines(data: bytes) -> list[bytes]:
    """The physical lines; every one ends with CRLF, no bare CR or LF anywhere."""
    assert data.endswith(b"\r\n")
    physical = data[:-2].split(b"\r\n")
    assert all(b"\r" not in line and b"\n" not in line for line in physical)
    return physical


def unescape(text: str) -> str:
    """A TEXT value as written (RFC 5545, 3.3.11) read back."""
    escapes = {"\\\\": "\\", "\\,": ",", "\\;": ";", "\\n": "\n", "\\N": "\n"}
    return re.sub(r"\\[\\,;nN]", lambda match: escapes[match.group()], text)


def unfolded(data: bytes) -> list[str]:
    return data.decode("utf-8").replace("\r\n ", "").split("\r\n")


def assert_in_zone(
    event: icalendar.Event, vevent: Any, name: str, zone: str, instant: datetime
) -> None:
    """``name`` (DTSTART, DTEND) is written with TZID ``zone`` and both parsers read
    ``instant``; vobject through the document's own VTIMEZONE."""
    assert event[name].params["TZID"] == zone
    assert event.decoded(name) == instant
    assert event.decoded(name).astimezone(UTC) == instant.astimezone(UTC)
    value = getattr(vevent, name.lower()).value
    assert type(value.tzinfo).__module__.startswith("dateutil")  # from the VTIMEZONE read
    assert TimezoneComponent.pickTzid(value.tzinfo) == zone
    assert value.astimezone(UTC) == instant.astimezone(UTC)


def assert_zone_covers(calendar: icalendar.Calendar, document: Any, zone: str, year: int) -> None:
    """The document's VTIMEZONE for ``zone`` gives the zone's offset at every hour of ``year``
    (read by icalendar and by vobject)."""
    vtimezones = [c for c in calendar.walk("VTIMEZONE") if str(c["TZID"]) == zone]
    assert len(vtimezones) == 1
    (component,) = (c for c in document.contents["vtimezone"] if c.tzid.value == zone)
    readers = [vtimezones[0].to_tz(), component.gettzinfo()]
    real = ZoneInfo(zone)
    moment = datetime(year, 1, 1, tzinfo=UTC)
    while moment.year == year:
        expected = moment.astimezone(real).utcoffset()
        local = moment.astimezone(real).replace(tzinfo=None)
        for tzinfo in readers:
            assert moment.astimezone(tzinfo).utcoffset() == expected, (zone, moment, tzinfo)
            if not moment.astimezone(real).fold:
                assert local.replace(tzinfo=tzinfo).astimezone(UTC) == moment, (zone, local)
        moment += timedelta(hours=1)


# --- one booking, each method ------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("zone", "start"),
    [
        (PARIS, datetime(2027, 6, 15, 9, 30, tzinfo=ZoneInfo(PARIS))),
        (NEW_YORK, datetime(2027, 11, 20, 16, 0, tzinfo=ZoneInfo(NEW_YORK))),
    ],
)
def test_each_method_reads_the_same_with_both_parsers(
    method: str, zone: str, start: datetime
) -> None:
    end = start + timedelta(minutes=45)
    event = booking_event(timezone=zone, start=start.astimezone(UTC), end=end, sequence=3)
    data = build_ics(event, method)  # type: ignore[arg-type]
    calendar, document = parse(data)
    vevent_i, vevent_v = the_vevent(calendar, document)

    assert str(calendar["METHOD"]) == method and document.method.value == method
    assert str(calendar["VERSION"]) == "2.0" and str(calendar["PRODID"])
    assert str(vevent_i["UID"]) == vevent_v.uid.value == "8f1c2d3e4b5a@bookwise"
    assert int(vevent_i["SEQUENCE"]) == int(vevent_v.sequence.value) == 3
    assert_in_zone(vevent_i, vevent_v, "DTSTART", zone, start)
    assert_in_zone(vevent_i, vevent_v, "DTEND", zone, end)
    assert_zone_covers(calendar, document, zone, start.year)
    assert str(vevent_i["SUMMARY"]) == vevent_v.summary.value == event.summary
    assert str(vevent_i["LOCATION"]) == vevent_v.location.value == event.location
    assert str(vevent_i["DESCRIPTION"]) == vevent_v.description.value == event.description

    organizer = vevent_i["ORGANIZER"]
    assert str(organizer) == vevent_v.organizer.value == "mailto:accueil@saint-eloi.example"
    assert organizer.params["CN"] == ORGANIZER
    assert vevent_v.organizer.params["CN"] == [ORGANIZER]
    if method == "PUBLISH":
        # RFC 5546, 3.2.1: "Attendees MUST NOT be present" in a PUBLISH.
        assert "ATTENDEE" not in vevent_i and "attendee" not in vevent_v.contents
    else:
        attendee = vevent_i["ATTENDEE"]
        assert str(attendee) == vevent_v.attendee.value == "mailto:zoe@example.org"
        expected = {"CN": "Zoé Martin", "ROLE": "REQ-PARTICIPANT", "PARTSTAT": "ACCEPTED"}
        assert {key: attendee.params[key] for key in expected} == expected
        assert {key: vevent_v.attendee.params[key] for key in expected} == {
            key: [value] for key, value in expected.items()
        }
    status = "CANCELLED" if method == "CANCEL" else "CONFIRMED"
    assert str(vevent_i["STATUS"]) == vevent_v.status.value == status


@pytest.mark.parametrize("method", METHODS)
def test_dtstamp_is_utc(method: str) -> None:
    # Given in another zone, it is written in UTC (RFC 5545, 3.8.7.2).
    stamp = datetime(2027, 3, 1, 10, 0, tzinfo=ZoneInfo(PARIS))
    data = build_ics(booking_event(stamp=stamp), method)  # type: ignore[arg-type]
    assert "DTSTAMP:20270301T090000Z" in unfolded(data)
    calendar, document = parse(data)
    vevent_i, vevent_v = the_vevent(calendar, document)
    assert vevent_i.decoded("DTSTAMP") == STAMP
    assert vevent_i.decoded("DTSTAMP").utcoffset() == timedelta(0)
    assert vevent_v.dtstamp.value == STAMP and vevent_v.dtstamp.value.utcoffset() == timedelta(0)


def test_a_request_then_its_change_then_its_cancellation_keep_one_uid() -> None:
    first = booking_event(status="TENTATIVE")
    moved = dataclasses.replace(
        first,
        sequence=1,
        start=first.start + timedelta(days=1, hours=2),
        end=first.end + timedelta(days=1, hours=2),
        status="CONFIRMED",
    )
    cancelled = dataclasses.replace(moved, sequence=2, status="CANCELLED")
    seen = []
    for event, method in ((first, "REQUEST"), (moved, "REQUEST"), (cancelled, "CANCEL")):
        calendar, document = parse(build_ics(event, method))  # type: ignore[arg-type]
        vevent_i, vevent_v = the_vevent(calendar, document)
        assert str(calendar["METHOD"]) == document.method.value == method
        assert str(vevent_i["UID"]) == vevent_v.uid.value
        assert vevent_i.decoded("DTSTART") == vevent_v.dtstart.value == event.start
        seen.append((str(vevent_i["UID"]), int(vevent_i["SEQUENCE"]), str(vevent_v.status.value)))
    assert seen == [
        ("8f1c2d3e4b5a@bookwise", 0, "TENTATIVE"),  # waits for the staff's approval
        ("8f1c2d3e4b5a@bookwise", 1, "CONFIRMED"),
        ("8f1c2d3e4b5a@bookwise", 2, "CANCELLED"),
    ]


def test_a_cancel_says_cancelled_whatever_the_event_status() -> None:
    calendar, document = parse(build_ics(booking_event(status="TENTATIVE"), "CANCEL"))
    vevent_i, vevent_v = the_vevent(calendar, document)
    assert str(vevent_i["STATUS"]) == vevent_v.status.value == "CANCELLED"


# --- time zones ----------------------------------------------------------------------------------


def test_an_event_across_the_spring_change_in_paris() -> None:
    # 2027-03-28: at 02:00 (01:00 UTC) the clocks go to 03:00. 01:30 to 03:30 is one hour.
    start = datetime(2027, 3, 28, 0, 30, tzinfo=UTC)
    data = build_ics(booking_event(start=start, end=start + timedelta(hours=1)), "REQUEST")
    text = unfolded(data)
    assert "DTSTART;TZID=Europe/Paris:20270328T013000" in text
    assert "DTEND;TZID=Europe/Paris:20270328T033000" in text
    calendar, document = parse(data)
    vevent_i, vevent_v = the_vevent(calendar, document)
    for vevent in (vevent_i, vevent_v):
        begins = vevent.decoded("DTSTART") if vevent is vevent_i else vevent.dtstart.value
        ends = vevent.decoded("DTEND") if vevent is vevent_i else vevent.dtend.value
        assert begins.astimezone(UTC) == start
        assert ends.astimezone(UTC) == start + timedelta(hours=1)
        assert ends.astimezone(UTC) - begins.astimezone(UTC) == timedelta(hours=1)
        assert (begins.hour, ends.hour) == (1, 3)  # the local times: 01:30 to 03:30
    assert_zone_covers(calendar, document, PARIS, 2027)
    # The DAYLIGHT onset is the local time before the change (RFC 5545, 3.6.5): 02:00 at +01:00,
    # so a reader of the VTIMEZONE puts 01:30 UTC at 03:30, not at 02:30 (which does not exist).
    (vtimezone,) = document.contents["vtimezone"]
    zone = vtimezone.gettzinfo()
    assert datetime(2027, 3, 28, 1, 30, tzinfo=UTC).astimezone(zone).hour == 3
    daylight = calendar.walk("VTIMEZONE")[0].walk("DAYLIGHT")
    assert daylight
    assert all(d.decoded("DTSTART").hour == 2 for d in daylight)
    assert all(d["TZOFFSETFROM"].td == timedelta(hours=1) for d in daylight)


@pytest.mark.parametrize(
    ("zone", "first", "second"),
    [
        # The hour the clocks go back comes twice; the second is written in UTC, since a local
        # time that comes twice means the first (RFC 5545, 3.3.5).
        (
            PARIS,
            datetime(2027, 10, 31, 0, 30, tzinfo=UTC),
            datetime(2027, 10, 31, 1, 30, tzinfo=UTC),
        ),
        (
            NEW_YORK,
            datetime(2027, 11, 7, 5, 30, tzinfo=UTC),
            datetime(2027, 11, 7, 6, 30, tzinfo=UTC),
        ),
    ],
)
def test_the_hour_that_comes_twice(zone: str, first: datetime, second: datetime) -> None:
    for start in (first, second):
        event = booking_event(timezone=zone, start=start, end=start + timedelta(minutes=30))
        data = build_ics(event, "REQUEST")
        calendar, document = parse(data)
        vevent_i, vevent_v = the_vevent(calendar, document)
        assert vevent_i.decoded("DTSTART").astimezone(UTC) == start
        assert vevent_v.dtstart.value.astimezone(UTC) == start
        assert vevent_i.decoded("DTEND").astimezone(UTC) == start + timedelta(minutes=30)
        assert vevent_v.dtend.value.astimezone(UTC) == start + timedelta(minutes=30)
        text = unfolded(data)
        written = next(
            line for line in text[text.index("BEGIN:VEVENT") :] if line.startswith("DTSTART")
        )
        if start == first:
            assert written.startswith(f"DTSTART;TZID={zone}:")
        else:
            assert written == f"DTSTART:{start:%Y%m%dT%H%M%S}Z"


def test_the_vtimezone_covers_the_event_at_the_turn_of_the_year() -> None:
    start = datetime(2027, 12, 31, 22, 30, tzinfo=ZoneInfo(NEW_YORK))  # 2028 in UTC
    event = booking_event(timezone=NEW_YORK, start=start, end=start + timedelta(hours=2))
    calendar, document = parse(build_ics(event, "REQUEST"))
    vevent_i, vevent_v = the_vevent(calendar, document)
    assert_in_zone(vevent_i, vevent_v, "DTSTART", NEW_YORK, start)
    for year in (2027, 2028):
        assert_zone_covers(calendar, document, NEW_YORK, year)


def test_naive_times_are_refused() -> None:
    naive = datetime(2027, 6, 15, 9, 30)
    for field in ("start", "end", "stamp"):
        with pytest.raises(ValueError, match="naive"):
            build_ics(booking_event(**{field: naive}), "PUBLISH")


# --- syntax: lines, characters, escaping ------------------------------------------------------


def test_lines_end_with_crlf_and_fold_at_75_octets() -> None:
    event = booking_event(
        summary=f"{ORGANIZER} — " * 6,
        description="Préparez vos documents: ordonnance, carte Vitale; résultats. " * 8,
        attendee_name="Zoë Brontë-Öztürk van der Ærø",
        attendee_email="zoe.bronte-ozturk.van-der-aero@example.org",
    )
    for method in METHODS:
        data = build_ics(event, method)  # type: ignore[arg-type]
        physical = lines(data)
        assert max(len(line) for line in physical) <= 75
        assert any(line.startswith(b" ") for line in physical), "something was folded"
        for line in physical:
            line.decode("utf-8")  # a fold never cuts a character in two
        calendar, document = parse(data)
        vevent_i, vevent_v = the_vevent(calendar, document)
        assert str(vevent_i["SUMMARY"]) == vevent_v.summary.value == event.summary
        assert str(vevent_i["DESCRIPTION"]) == vevent_v.description.value == event.description


def test_names_with_accents_round_trip() -> None:
    event = booking_event(summary=ORGANIZER, attendee_name="Zoë Brontë", organizer_name=ORGANIZER)
    calendar, document = parse(build_ics(event, "REQUEST"))
    vevent_i, vevent_v = the_vevent(calendar, document)
    assert str(vevent_i["SUMMARY"]) == vevent_v.summary.value == ORGANIZER
    assert vevent_i["ORGANIZER"].params["CN"] == ORGANIZER
    assert vevent_v.organizer.params["CN"] == [ORGANIZER]
    assert vevent_i["ATTENDEE"].params["CN"] == "Zoë Brontë"
    assert vevent_v.attendee.params["CN"] == ["Zoë Brontë"]


def test_commas_semicolons_colons_and_line_breaks_are_escaped() -> None:
    tricky = "Brontë, Zoë; salle: 2"
    event = booking_event(
        summary=tricky,
        location="12 rue de l'Église\n75015 Paris, France; 2e étage",
        description="Ligne 1\nLigne 2: C:\\dossier\\fichier; fin, vraiment",
        organizer_name=tricky,
        attendee_name=tricky,
    )
    data = build_ics(event, "REQUEST")
    text = unfolded(data)
    assert "SUMMARY:Brontë\\, Zoë\\; salle: 2" in text
    assert "LOCATION:12 rue de l'Église\\n75015 Paris\\, France\\; 2e étage" in text
    assert "DESCRIPTION:Ligne 1\\nLigne 2: C:\\\\dossier\\\\fichier\\; fin\\, vraiment" in text
    # A parameter value with a comma, semicolon or colon is quoted (RFC 5545, 3.2).
    assert any(line.startswith(f'ORGANIZER;CN="{tricky}":mailto:') for line in text)
    assert any(line.startswith(f'ATTENDEE;CN="{tricky}";') for line in text)
    calendar, document = parse(data)
    vevent_i, vevent_v = the_vevent(calendar, document)
    for name in ("SUMMARY", "LOCATION", "DESCRIPTION"):
        expected = getattr(event, name.lower())
        assert str(vevent_i[name]) == getattr(vevent_v, name.lower()).value == expected
    assert vevent_i["ORGANIZER"].params["CN"] == vevent_i["ATTENDEE"].params["CN"] == tricky
    assert vevent_v.organizer.params["CN"] == vevent_v.attendee.params["CN"] == [tricky]
    assert str(vevent_i["ORGANIZER"]) == vevent_v.organizer.value


def test_a_name_parameter_holds_no_quote_or_line_break() -> None:
    # A parameter value cannot hold a double quote nor a line break: they are not written as
    # RFC 6868 escapes (^' ^n), which Outlook and vobject show as they are.
    event = booking_event(attendee_name='Zoé "Zozo"\nMartin', organizer_name="Cabinet\r\nLyon")
    data = build_ics(event, "REQUEST")
    assert b"^" not in data
    calendar, document = parse(data)
    vevent_i, vevent_v = the_vevent(calendar, document)
    assert vevent_i["ATTENDEE"].params["CN"] == "Zoé 'Zozo' Martin"
    assert vevent_v.attendee.params["CN"] == ["Zoé 'Zozo' Martin"]
    assert vevent_i["ORGANIZER"].params["CN"] == "Cabinet Lyon"
    assert vevent_v.organizer.params["CN"] == ["Cabinet Lyon"]


def test_without_an_organizer_or_attendee_none_is_written() -> None:
    # The download of a calendar without a reply-to address (a PUBLISH) and the invitation of a
    # client without an e-mail address.
    event = booking_event(organizer_email="", attendee_email="")
    for method in METHODS:
        calendar, document = parse(build_ics(event, method))  # type: ignore[arg-type]
        vevent_i, vevent_v = the_vevent(calendar, document)
        assert "ORGANIZER" not in vevent_i and "organizer" not in vevent_v.contents
        assert "ATTENDEE" not in vevent_i and "attendee" not in vevent_v.contents


def test_a_meeting_link_is_the_url_and_the_location_when_there_is_no_place() -> None:
    event = booking_event(location="", url="https://meet.example/abc-defg-hij")
    calendar, document = parse(build_ics(event, "REQUEST"))
    vevent_i, vevent_v = the_vevent(calendar, document)
    assert str(vevent_i["URL"]) == vevent_v.url.value == "https://meet.example/abc-defg-hij"
    assert str(vevent_i["LOCATION"]) == vevent_v.location.value == event.url


# --- feeds ------------------------------------------------------------------------------------


def feed_events() -> list[CalendarEvent]:
    paris = ZoneInfo(PARIS)
    starts = [
        datetime(2026, 11, 2, 9, 0, tzinfo=paris),
        datetime(2027, 3, 28, 1, 30, tzinfo=paris),  # the night the clocks go forward
        datetime(2027, 7, 14, 14, 0, tzinfo=paris),
        datetime(2029, 8, 1, 10, 0, tzinfo=paris),  # three years on: the VTIMEZONE reaches it
    ]
    events = [
        booking_event(
            uid=f"booking-{index}@bookwise",
            sequence=index,
            start=start.astimezone(UTC),
            end=(start + timedelta(hours=2)).astimezone(UTC),
            summary=f"Consultation · Zoë Brontë {index}",
            organizer_email="",
            attendee_email="",
            description=f"https://book.example/admin/bookings/{index}",
            location="",
        )
        for index, start in enumerate(starts)
    ]
    events[1] = dataclasses.replace(events[1], status="TENTATIVE")
    events[2] = dataclasses.replace(events[2], status="CANCELLED")
    new_york = datetime(2027, 3, 14, 1, 30, tzinfo=ZoneInfo(NEW_YORK))
    events.append(
        booking_event(
            uid="booking-ny@bookwise",
            timezone=NEW_YORK,
            start=new_york.astimezone(UTC),
            end=(new_york + timedelta(hours=2)).astimezone(UTC),
            summary="Visio · New York",
        )
    )
    return events


def test_a_feed_reads_the_same_with_both_parsers() -> None:
    events = feed_events()
    name = "Ana Lopez, Clinique Saint-Éloi; cabinet: 2"
    data = build_feed(events, name=name, timezone=PARIS)
    physical = lines(data)
    assert max(len(line) for line in physical) <= 75
    text = unfolded(data)
    assert "REFRESH-INTERVAL;VALUE=DURATION:PT15M" in text
    assert "X-PUBLISHED-TTL:PT15M" in text
    assert "X-WR-TIMEZONE:Europe/Paris" in text
    assert "NAME:Ana Lopez\\, Clinique Saint-Éloi\\; cabinet: 2" in text

    calendar, document = parse(data)
    assert str(calendar["METHOD"]) == document.method.value == "PUBLISH"
    # icalendar reads NAME and X-WR-CALNAME as unknown properties, left escaped.
    for key in ("NAME", "X-WR-CALNAME"):
        assert unescape(str(calendar[key])) == name
        assert document.contents[key.lower()][0].value == name
    assert str(calendar["X-WR-TIMEZONE"]) == document.x_wr_timezone.value == PARIS
    assert calendar.refresh_interval == timedelta(minutes=15)
    assert document.refresh_interval.value == "PT15M"
    assert document.refresh_interval.params["VALUE"] == ["DURATION"]
    assert icalendar.vDuration.from_ical(str(calendar["X-PUBLISHED-TTL"])) == timedelta(minutes=15)
    assert document.x_published_ttl.value == "PT15M"

    vevents_i = calendar.walk("VEVENT")
    vevents_v = document.contents["vevent"]
    assert len(vevents_i) == len(vevents_v) == len(events)
    for event, vevent_i, vevent_v in zip(events, vevents_i, vevents_v, strict=True):
        assert str(vevent_i["UID"]) == vevent_v.uid.value == event.uid
        assert int(vevent_i["SEQUENCE"]) == int(vevent_v.sequence.value) == event.sequence
        assert str(vevent_i["STATUS"]) == vevent_v.status.value == event.status
        assert str(vevent_i["SUMMARY"]) == vevent_v.summary.value == event.summary
        assert_in_zone(vevent_i, vevent_v, "DTSTART", event.timezone, event.start)
        assert_in_zone(vevent_i, vevent_v, "DTEND", event.timezone, event.end)
        assert vevent_i.decoded("DTSTAMP") == vevent_v.dtstamp.value == STAMP
        assert "ATTENDEE" not in vevent_i  # a feed is a PUBLISH: no attendee
    # One VTIMEZONE per zone, the feed's first, covering every event's year.
    assert [str(c["TZID"]) for c in calendar.walk("VTIMEZONE")] == [PARIS, NEW_YORK]
    for year in (2026, 2027, 2029):
        assert_zone_covers(calendar, document, PARIS, year)
    assert_zone_covers(calendar, document, NEW_YORK, 2027)


def test_a_feed_writes_each_event_as_a_download_does() -> None:
    # One VEVENT writer: an event's lines are the same in the feed and in its PUBLISH download.
    def vevent_lines(data: bytes) -> list[str]:
        text = unfolded(data)
        return text[text.index("BEGIN:VEVENT") : text.index("END:VEVENT") + 1]

    event = booking_event(url="https://meet.example/x", attendee_email="")
    feed = build_feed([event], name="Ana", timezone=PARIS)
    assert vevent_lines(feed) == vevent_lines(build_ics(event, "PUBLISH"))


def test_an_empty_feed_is_a_valid_calendar() -> None:
    data = build_feed([], name="Ana · Clinique Saint-Éloi", timezone=NEW_YORK, refresh_minutes=60)
    lines(data)
    text = unfolded(data)
    assert "REFRESH-INTERVAL;VALUE=DURATION:PT1H" in text
    assert "X-PUBLISHED-TTL:PT1H" in text
    calendar, document = parse(data)
    assert calendar.walk("VEVENT") == [] and "vevent" not in document.contents
    assert str(calendar["X-WR-CALNAME"]) == document.x_wr_calname.value
    assert [str(c["TZID"]) for c in calendar.walk("VTIMEZONE")] == [NEW_YORK]
    assert document.vtimezone.tzid.value == NEW_YORK
    assert calendar.refresh_interval == timedelta(hours=1)
    assert_zone_covers(calendar, document, NEW_YORK, 2030)


def test_a_feed_refreshes_at_least_every_minute() -> None:
    with pytest.raises(ValueError, match="refresh_minutes"):
        build_feed([], name="Ana", timezone=PARIS, refresh_minutes=0)


def test_a_feed_of_two_thousand_events_is_whole() -> None:
    """(Its speed is measured in benchmarks/feeds.py, not asserted here.)"""
    start = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)
    events = [
        booking_event(
            uid=f"booking-{index}@bookwise",
            sequence=index % 4,
            start=start + timedelta(hours=5 * index),
            end=start + timedelta(hours=5 * index, minutes=45),
            summary=f"Consultation · Zoë Brontë {index}",
            description=f"https://book.example/admin/bookings/{index}",
            status="CANCELLED" if index % 50 == 0 else "CONFIRMED",
            attendee_email="",
        )
        for index in range(2000)
    ]
    data = build_feed(events, name="Ana", timezone=PARIS)
    calendar = icalendar.Calendar.from_ical(data)
    vevents = calendar.walk("VEVENT")
    assert [str(v["UID"]) for v in vevents] == [e.uid for e in events]
    assert sum(str(v["STATUS"]) == "CANCELLED" for v in vevents) == 40
    assert len(calendar.walk("VTIMEZONE")) == 1  # the events span 2027 and 2028: one zone
    assert len(vobject.readOne(data.decode("utf-8")).contents["vevent"]) == 2000
