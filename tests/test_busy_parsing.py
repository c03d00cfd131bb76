"""Busy times read from staff members' own calendars (bookwise.availability.busy).

The files of tests/data/ics are shaped like real exports (Outlook/Exchange, Google, Apple,
Thunderbird; folded lines, CRLF, attendees and descriptions); the intervals each must give are
written out by hand, in UTC, from the file's wall times and the zone rules (Paris: UTC+1, UTC+2
from 2027-03-28 02:00 to 2027-10-31 03:00; New York: UTC-5, UTC-4 from 2027-03-14). No database,
no Flask, no clock: every instant is fixed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bookwise.availability import busy
from bookwise.availability.busy import (
    MAX_OCCURRENCES,
    BusyRead,
    FeedError,
    busy_intervals,
    minimize,
)

DATA = Path(__file__).parent / "data" / "ics"
PARIS = "Europe/Paris"


def utc(year: int, month: int, day: int, h: int = 0, m: int = 0) -> datetime:
    return datetime(year, month, day, h, m, tzinfo=UTC)


MARCH, MAY = utc(2027, 3, 1), utc(2027, 5, 1)
# dst-crossing.ics has an event at the autumn change too.
WINDOWS = {"dst-crossing.ics": (MARCH, utc(2027, 12, 1))}


def read(name: str, timezone: str = PARIS) -> BusyRead:
    start, end = WINDOWS.get(name, (MARCH, MAY))
    return busy_intervals((DATA / name).read_bytes(), start, end, timezone=timezone)


def hour(month: int, day: int, h: int, m: int = 0) -> datetime:
    return utc(2027, month, day, h, m)


# file -> (busy intervals in UTC, VEVENTs in the file, occurrences or events ignored)
EXPECTED: dict[str, tuple[list[tuple[datetime, datetime]], int, int]] = {
    # W. Europe Standard Time 09:00 CET; Eastern Standard Time (no VTIMEZONE) 09:00 EST;
    # a weekly Tuesday 08:00 W. Europe until 2027-04-06 06:00Z (inclusive), 07:00Z then 06:00Z;
    # Customized Time Zone (the file's own US-Eastern-like rules) 10:00 EDT; Romance Standard
    # Time 14:00 in April is CEST although the file's VTIMEZONE has only +01:00; the FREE lunch
    # (TRANSP:TRANSPARENT) is ignored.
    "outlook-windows-tz.ics": (
        [
            (hour(3, 10, 8), hour(3, 10, 9)),
            (hour(3, 12, 14), hour(3, 12, 14, 30)),
            (hour(3, 16, 7), hour(3, 16, 7, 30)),
            (hour(3, 16, 14), hour(3, 16, 15)),
            (hour(3, 23, 7), hour(3, 23, 7, 30)),
            (hour(3, 30, 6), hour(3, 30, 6, 30)),
            (hour(4, 6, 6), hour(4, 6, 6, 30)),
            (hour(4, 15, 12), hour(4, 15, 13, 30)),
        ],
        6,
        1,
    ),
    # UTC times with X-WR-TIMEZONE:Europe/Paris: the weekly rule from 2027-03-22 08:00Z keeps
    # 09:00 Paris time, so 07:00Z after the change; Tuesdays 17:00 Paris with the 03-09
    # occurrence cancelled (ignored); the all-day birthday is TRANSP:TRANSPARENT (ignored).
    "google-export.ics": (
        [
            (hour(3, 2, 16), hour(3, 2, 17)),
            (hour(3, 10, 13), hour(3, 10, 14)),
            (hour(3, 16, 16), hour(3, 16, 17)),
            (hour(3, 22, 8), hour(3, 22, 9)),
            (hour(3, 23, 16), hour(3, 23, 17)),
            (hour(3, 29, 7), hour(3, 29, 8)),
            (hour(4, 5, 7), hour(4, 5, 8)),
        ],
        5,
        2,
    ),
    # Europe/Paris: 14:30-15:15, 15:00-16:00 and 16:00-16:30 overlap and touch, merged into
    # one; a DURATION of 2 hours at 08:30 CEST; a timed event over three days.
    "apple.ics": (
        [
            (hour(3, 3, 13, 30), hour(3, 3, 15, 30)),
            (hour(4, 8, 6, 30), hour(4, 8, 8, 30)),
            (hour(4, 20, 16), hour(4, 22, 8)),
        ],
        5,
        0,
    ),
    # Local midnight to local midnight in Paris: 03-02; 03-26 to 03-29 (the last midnight in
    # summer time); DURATION:P2D from 04-05; DTSTART only on 04-12 (one day); two Fridays.
    "all-day.ics": (
        [
            (hour(3, 1, 23), hour(3, 2, 23)),
            (hour(3, 25, 23), hour(3, 28, 22)),
            (hour(4, 4, 22), hour(4, 6, 22)),
            (hour(4, 11, 22), hour(4, 12, 22)),
            (hour(4, 15, 22), hour(4, 16, 22)),
            (hour(4, 22, 22), hour(4, 23, 22)),
        ],
        5,
        0,
    ),
    # Mondays 10:00 Paris, COUNT=7 from 03-01: 03-15 excluded (EXDATE), 03-29 moved to
    # Wednesday 03-31 14:00-15:30 (RECURRENCE-ID), plus RDATE 03-17 15:00 (the series' hour)
    # and an RDATE period 04-20 08:00Z for 30 minutes.
    "weekly-exdate-moved.ics": (
        [
            (hour(3, 1, 9), hour(3, 1, 10)),
            (hour(3, 8, 9), hour(3, 8, 10)),
            (hour(3, 17, 14), hour(3, 17, 15)),
            (hour(3, 22, 9), hour(3, 22, 10)),
            (hour(3, 31, 12), hour(3, 31, 13, 30)),
            (hour(4, 5, 8), hour(4, 5, 9)),
            (hour(4, 12, 8), hour(4, 12, 9)),
            (hour(4, 20, 8), hour(4, 20, 8, 30)),
        ],
        2,
        0,
    ),
    # Floating times in the business's zone: 09:00 on 03-10, daily 12:00 from 03-26 (11:00Z,
    # then 10:00Z from 03-28); a floating DTSTART without end lasts nothing (ignored).
    "floating.ics": (
        [
            (hour(3, 10, 8), hour(3, 10, 9)),
            (hour(3, 26, 11), hour(3, 26, 11, 30)),
            (hour(3, 27, 11), hour(3, 27, 11, 30)),
            (hour(3, 28, 10), hour(3, 28, 10, 30)),
            (hour(3, 29, 10), hour(3, 29, 10, 30)),
        ],
        3,
        1,
    ),
    # 01:00 CET to 04:00 CEST on 03-28 is two real hours; daily 09:00 Paris is 08:00Z then
    # 07:00Z; 01:30 CEST to 03:30 CET on 10-31 is three real hours.
    "dst-crossing.ics": (
        [
            (hour(3, 25, 8), hour(3, 25, 9)),
            (hour(3, 26, 8), hour(3, 26, 9)),
            (hour(3, 27, 8), hour(3, 27, 9)),
            (hour(3, 28, 0), hour(3, 28, 2)),
            (hour(3, 28, 7), hour(3, 28, 8)),
            (hour(3, 29, 7), hour(3, 29, 8)),
            (hour(3, 30, 7), hour(3, 30, 8)),
            (hour(10, 30, 23, 30), hour(10, 31, 2, 30)),
        ],
        3,
        0,
    ),
    # TRANSP:TRANSPARENT and STATUS:CANCELLED ignored; CONFIRMED and TENTATIVE are busy.
    "transparent-cancelled.ics": (
        [(hour(3, 12, 10), hour(3, 12, 11)), (hour(3, 13, 10), hour(3, 13, 11))],
        4,
        2,
    ),
    # An unreadable DTSTART and an unreadable RRULE: those two events are left out; a TZID
    # nothing defines, and one whose VTIMEZONE is broken, are read in the business's zone;
    # the broken VTODO does not matter.
    "broken-events.ics": (
        [
            (hour(3, 15, 8), hour(3, 15, 9)),
            (hour(3, 16, 9), hour(3, 16, 10)),
            (hour(3, 17, 8), hour(3, 17, 9)),
        ],
        5,
        2,
    ),
}
CALENDARS = sorted(EXPECTED)
PRIVATE_PROPERTIES = ("SUMMARY", "DESCRIPTION", "LOCATION", "ATTENDEE", "ORGANIZER", "X-APPLE")
PRIVATE_WORDS = ("Dupont", "Moreau", "oncologie", "Chimio", "RH", "patient", "Leroy", "mailto")


def test_the_corpus_has_one_expectation_per_file() -> None:
    assert sorted(p.name for p in DATA.glob("*.ics")) == sorted([*EXPECTED, "malformed.ics"])


@pytest.mark.parametrize("name", CALENDARS)
def test_each_file_gives_its_busy_intervals(name: str) -> None:
    intervals, events, ignored = EXPECTED[name]
    assert read(name) == BusyRead(tuple(intervals), events, ignored)


@pytest.mark.parametrize("name", CALENDARS)
def test_minimize_keeps_the_busy_intervals(name: str) -> None:
    start, end = WINDOWS.get(name, (MARCH, MAY))
    small = minimize((DATA / name).read_bytes())
    assert busy_intervals(small, start, end, timezone=PARIS) == read(name)
    assert busy_intervals(minimize(small), start, end, timezone=PARIS) == read(name)


@pytest.mark.parametrize("name", CALENDARS)
def test_minimize_drops_what_is_private(name: str) -> None:
    original = (DATA / name).read_text(encoding="utf-8")
    small = minimize(original)
    unfolded = small.replace("\r\n ", "")
    names = {line.split(":")[0].split(";")[0] for line in unfolded.splitlines()}
    assert not names & set(PRIVATE_PROPERTIES)
    assert not {n for n in names if n.startswith(PRIVATE_PROPERTIES)}
    assert "VALARM" not in small and "VTODO" not in small
    assert "X-WR-CALNAME" not in small and "X-MICROSOFT" not in small
    for word in PRIVATE_WORDS:
        assert word not in unfolded, word
    assert small.startswith("BEGIN:VCALENDAR\r\n") and small.endswith("END:VCALENDAR\r\n")
    assert all(len(line.encode()) <= 75 for line in small.split("\r\n"))
    assert len(small) < len(original)


def test_minimize_keeps_what_times_need() -> None:
    small = minimize((DATA / "google-export.ics").read_bytes())
    for kept in (
        "PRODID:-//Google Inc//Google Calendar 70.9054//EN",
        "VERSION:2.0",
        "X-WR-TIMEZONE:Europe/Paris",
        "TZID:Europe/Paris",
        "RRULE:FREQ=WEEKLY;COUNT=3",
        "RECURRENCE-ID;TZID=Europe/Paris:20270309T170000",
        "STATUS:CANCELLED",
        "TRANSP:TRANSPARENT",
        "SEQUENCE:1",
        "DTSTAMP:20270105T091500Z",
    ):
        assert kept in small, kept
    # UIDs are kept as digests: the same UID gives the same digest, the address is gone.
    uids = [line for line in small.splitlines() if line.startswith("UID:")]
    assert len(uids) == 5 and len(set(uids)) == 4
    assert "google.com" not in small


def test_outlook_windows_zones_and_google_x_wr_timezone_matter() -> None:
    """Without the corrections, these would be an hour off (documents what the tests check)."""
    outlook = read("outlook-windows-tz.ics")
    # icalendar alone reads 14:00 "Romance Standard Time" with the file's +01:00-only VTIMEZONE.
    assert (hour(4, 15, 13), hour(4, 15, 14, 30)) not in outlook.intervals
    google = read("google-export.ics")
    # Expanded in UTC, the weekly 08:00Z would stay 08:00Z after the change to summer time.
    assert (hour(3, 29, 8), hour(3, 29, 9)) not in google.intervals


def test_a_zone_named_by_two_files_is_each_file_own() -> None:
    """icalendar caches VTIMEZONEs by name for the whole process; each file keeps its own."""

    def calendar(offset: str) -> str:
        return (
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\n"
            "BEGIN:VTIMEZONE\r\nTZID:Customized Time Zone 1\r\nBEGIN:STANDARD\r\n"
            f"DTSTART:16010101T000000\r\nTZOFFSETFROM:{offset}\r\nTZOFFSETTO:{offset}\r\n"
            "END:STANDARD\r\nEND:VTIMEZONE\r\nBEGIN:VEVENT\r\nUID:1\r\n"
            "DTSTART;TZID=Customized Time Zone 1:20270415T090000\r\nDURATION:PT1H\r\n"
            "END:VEVENT\r\nEND:VCALENDAR\r\n"
        )

    east = busy_intervals(calendar("+0500"), MARCH, MAY, timezone=PARIS)
    west = busy_intervals(calendar("-0300"), MARCH, MAY, timezone=PARIS)
    assert east.intervals == ((hour(4, 15, 4), hour(4, 15, 5)),)
    assert west.intervals == ((hour(4, 15, 12), hour(4, 15, 13)),)


@pytest.mark.timeout(30)
def test_a_zone_whose_rules_would_be_walked_for_ever_is_left_out() -> None:
    """python-dateutil walks a VTIMEZONE's rules from 1601 at each conversion: a secondly rule
    (or one naming every day) is not a time zone. The event falls back to the business's zone,
    as for a name nothing defines."""
    original = (DATA / "outlook-windows-tz.ics").read_text(encoding="utf-8")
    for rule in ("FREQ=SECONDLY", "FREQ=YEARLY;BYDAY=MO,TU,WE,TH,FR,SA,SU", "FREQ=YEARLY;BYHOUR=1"):
        text = original.replace(
            "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=1SU;BYMONTH=11", f"RRULE:{rule}"
        )
        result = busy_intervals(text, MARCH, MAY, timezone=PARIS)
        # Customized Time Zone 10:00 on 03-16, now read in Paris (CET).
        assert (hour(3, 16, 9), hour(3, 16, 10)) in result.intervals
        assert (hour(3, 16, 14), hour(3, 16, 15)) not in result.intervals
    # The old style of rule (a Sunday among the 8th to the 14th) is a sane one.
    text = original.replace(
        "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=2SU;BYMONTH=3",
        "RRULE:FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=8,9,10,11,12,13,14;BYDAY=SU",
    )
    assert busy_intervals(text, MARCH, MAY, timezone=PARIS) == read("outlook-windows-tz.ics")


def test_the_business_zone_places_all_day_and_floating_times() -> None:
    new_york = read("all-day.ics", timezone="America/New_York")
    assert new_york.intervals[:2] == (
        (hour(3, 2, 5), hour(3, 3, 5)),  # EST
        (hour(3, 26, 4), hour(3, 29, 4)),  # EDT from 03-14
    )
    floating = read("floating.ics", timezone="America/New_York")
    assert floating.intervals[0] == (hour(3, 10, 14), hour(3, 10, 15))
    assert floating.intervals[-1] == (hour(3, 29, 16), hour(3, 29, 16, 30))


def calendar_of(*events: str, head: str = "") -> str:
    """A calendar with the given VEVENT bodies (their lines joined by CRLF)."""
    body = "".join(
        f"BEGIN:VEVENT\r\nUID:e{number}\r\n{event}\r\nEND:VEVENT\r\n"
        for number, event in enumerate(events)
    )
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\n{head}{body}END:VCALENDAR\r\n"


def test_floating_times_follow_x_wr_timezone_when_the_calendar_names_one() -> None:
    text = calendar_of(
        "DTSTART:20270310T090000\r\nDTEND:20270310T100000", head="X-WR-TIMEZONE:Asia/Tokyo\r\n"
    )
    assert busy_intervals(text, MARCH, MAY, timezone=PARIS).intervals == (
        (hour(3, 10, 0), hour(3, 10, 1)),
    )


def test_a_datetime_without_end_takes_no_time_and_a_date_one_day() -> None:
    text = calendar_of("DTSTART:20270310T090000Z", "DTSTART;VALUE=DATE:20270311")
    result = busy_intervals(text, MARCH, MAY, timezone="UTC")
    assert result == BusyRead(((hour(3, 11, 0), hour(3, 12, 0)),), 2, 1)


def test_events_over_the_window_edges_are_clipped() -> None:
    text = calendar_of(
        "DTSTART:20270228T220000Z\r\nDTEND:20270301T020000Z",
        "DTSTART:20270430T230000Z\r\nDTEND:20270501T010000Z",
        "DTSTART:20270201T000000Z\r\nDTEND:20270202T000000Z",  # before the window: not ignored
        "DTSTART:20270101T000000Z\r\nDTEND:20271231T000000Z\r\nTRANSP:TRANSPARENT",
    )
    result = busy_intervals(text, MARCH, MAY, timezone=PARIS)
    assert result.intervals == ((MARCH, hour(3, 1, 2)), (hour(4, 30, 23), MAY))
    assert result.ignored == 1  # the transparent one over the whole window


def test_a_window_in_another_zone_is_the_same_instants() -> None:
    paris = datetime(2027, 3, 1, 1, tzinfo=ZoneInfo(PARIS))  # 2027-03-01 00:00Z
    text = calendar_of("DTSTART:20270228T220000Z\r\nDTEND:20270301T020000Z")
    result = busy_intervals(text, paris, paris + timedelta(hours=1), timezone=PARIS)
    assert result.intervals == ((MARCH, hour(3, 1, 1)),)
    assert result.intervals[0][0].tzinfo is UTC


def test_overlapping_touching_and_nested_events_are_merged() -> None:
    text = calendar_of(
        "DTSTART:20270310T090000Z\r\nDTEND:20270310T100000Z",
        "DTSTART:20270310T093000Z\r\nDTEND:20270310T103000Z",
        "DTSTART:20270310T103000Z\r\nDTEND:20270310T110000Z",  # touches
        "DTSTART:20270310T091500Z\r\nDTEND:20270310T094500Z",  # inside
        "DTSTART:20270310T110100Z\r\nDTEND:20270310T120000Z",  # a minute later: apart
        "DTSTART:20270310T090000Z\r\nDTEND:20270310T100000Z",  # the same again
    )
    result = busy_intervals(text, MARCH, MAY, timezone=PARIS)
    assert result.intervals == (
        (hour(3, 10, 9), hour(3, 10, 11)),
        (utc(2027, 3, 10, 11, 1), hour(3, 10, 12)),
    )


def test_a_naive_window_or_an_unknown_zone_is_a_programming_error() -> None:
    text = calendar_of("DTSTART:20270310T090000Z\r\nDTEND:20270310T100000Z")
    naive = datetime(2027, 3, 1)
    with pytest.raises(ValueError, match="aware") as caught:
        busy_intervals(text, naive, MAY, timezone=PARIS)
    assert not isinstance(caught.value, FeedError)
    with pytest.raises(ValueError, match="aware"):
        busy_intervals(text, MARCH, naive + timedelta(days=60), timezone=PARIS)
    with pytest.raises(ValueError, match="time zone"):
        busy_intervals(text, MARCH, MAY, timezone="Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="before"):
        busy_intervals(text, MAY, MARCH, timezone=PARIS)


NOT_CALENDARS = {
    "empty": (b"", "it is empty"),
    "blank": (b"  \r\n\r\n", "it is empty"),
    "login page": (
        b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body><form>"
        b"<input name=password></form></body></html>",
        "web page",
    ),
    "json": (b'{"error": {"code": 401, "message": "Unauthorized"}}', "JSON"),
    "binary": (bytes(range(256)) * 8, "binary"),
    "zip": (b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(200), "binary"),
    "vcard": (b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Jean\r\nEND:VCARD\r\n", "BEGIN:VCALENDAR"),
    "no calendar": (b"BEGIN:VEVENT\r\nDTSTART:20270310T090000Z\r\nEND:VEVENT\r\n", "BEGIN"),
    "cut short": ((DATA / "malformed.ics").read_bytes(), "cut short"),
    "cut in a line": (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALEN", "cut short"),
    "mismatched": (
        b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nEND:VTODO\r\nEND:VCALENDAR\r\n",
        "END:VTODO",
    ),
}


@pytest.mark.parametrize("name", sorted(NOT_CALENDARS))
def test_text_that_is_not_a_calendar_is_refused(name: str) -> None:
    text, detail = NOT_CALENDARS[name]
    for call in (
        lambda: busy_intervals(text, MARCH, MAY, timezone=PARIS),
        lambda: minimize(text),
    ):
        with pytest.raises(FeedError) as caught:
            call()
        assert caught.value.code == "not_icalendar"
        assert detail in str(caught.value.message.values["detail"])
        assert caught.value.message.text == "This is not an iCalendar file (%(detail)s)."
        assert str(caught.value).startswith("This is not an iCalendar file (")


def test_text_larger_than_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(busy, "MAX_BYTES", 1000)
    text = calendar_of(*["DTSTART:20270310T090000Z\r\nDURATION:PT1H"] * 50)
    with pytest.raises(FeedError) as caught:
        minimize(text)
    assert caught.value.code == "too_large"
    assert caught.value.message.values == {"detail": "1000"}


def test_encodings_are_read_without_failing() -> None:
    text = calendar_of("DTSTART:20270310T090000Z\r\nDTEND:20270310T100000Z\r\nSUMMARY:Café")
    expected = ((hour(3, 10, 9), hour(3, 10, 10)),)
    for data in (
        text,
        text.encode("utf-8"),
        b"\xef\xbb\xbf" + text.encode("utf-8"),
        "\ufeff" + text,
        text.encode("utf-16"),
        text.encode("latin-1"),  # not UTF-8: the é is replaced, the times stay
        text.replace("Café", "Caf\udcff").encode("utf-8", "surrogateescape"),
    ):
        assert busy_intervals(data, MARCH, MAY, timezone=PARIS).intervals == expected
        assert busy_intervals(minimize(data), MARCH, MAY, timezone=PARIS).intervals == expected


def test_unfolding_and_line_ends() -> None:
    text = (
        "BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nUID:long-uid-\n that-is-folded\n"
        "DTSTART;TZID=Europe/\n Paris:20270310T090000\n"
        "DTEND;TZID=Europe/Paris:2027031\n\t0T100000\n"
        "SUMMARY:x\nEND:VEVENT\nEND:VCALENDAR"
    )
    assert busy_intervals(text, MARCH, MAY, timezone="UTC").intervals == (
        (hour(3, 10, 8), hour(3, 10, 9)),
    )


def test_several_calendars_in_one_file_all_count() -> None:
    first = calendar_of("DTSTART:20270310T090000Z\r\nDURATION:PT1H")
    second = calendar_of("DTSTART:20270311T090000Z\r\nDURATION:PT1H")
    result = busy_intervals(first + second, MARCH, MAY, timezone=PARIS)
    assert result.intervals == (
        (hour(3, 10, 9), hour(3, 10, 10)),
        (hour(3, 11, 9), hour(3, 11, 10)),
    )
    assert result.events == 2


@pytest.mark.timeout(30)
def test_a_secondly_rule_is_refused_quickly() -> None:
    text = calendar_of("DTSTART:20270301T000000Z\r\nDURATION:PT1S\r\nRRULE:FREQ=SECONDLY")
    with pytest.raises(FeedError) as caught:
        busy_intervals(text, MARCH, MAY, timezone=PARIS)
    assert caught.value.code == "too_many_events"
    assert caught.value.message.values == {"detail": str(MAX_OCCURRENCES)}


@pytest.mark.timeout(30)
def test_the_cap_counts_every_event_and_stops_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(busy, "MAX_OCCURRENCES", 100)
    daily = "DTSTART:20270301T090000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=DAILY"
    # 61 days of two daily series: 122 occurrences, more than 100.
    with pytest.raises(FeedError, match="more than 100 events"):
        busy_intervals(calendar_of(daily, daily), MARCH, MAY, timezone=PARIS)
    assert len(busy_intervals(calendar_of(daily), MARCH, MAY, timezone=PARIS).intervals) == 61
    # A rule of years ago with COUNT must be walked from its start: that is counted too.
    monkeypatch.setattr(busy, "MAX_STEPS", 10_000)
    old = "DTSTART:20200301T000000Z\r\nDURATION:PT1M\r\nRRULE:FREQ=MINUTELY;COUNT=100000000"
    with pytest.raises(FeedError) as caught:
        busy_intervals(calendar_of(old), MARCH, MAY, timezone=PARIS)
    assert caught.value.code == "too_many_events"


@pytest.mark.timeout(30)
def test_old_rules_without_count_start_near_the_window() -> None:
    """A daily rule since 1990 and an hourly one since 2000 are walked from the window, not
    from their start (that would be hundreds of thousands of steps)."""
    text = calendar_of(
        "DTSTART;TZID=Europe/Paris:19900101T122000\r\nDURATION:PT20M\r\nRRULE:FREQ=DAILY",
        "DTSTART:20000101T000000Z\r\nDURATION:PT1M\r\nRRULE:FREQ=HOURLY;INTERVAL=7",
        "DTSTART:20100111T070000Z\r\nDURATION:PT30M\r\nRRULE:FREQ=WEEKLY;INTERVAL=3;BYDAY=MO",
    )
    result = busy_intervals(text, hour(3, 1, 0), hour(3, 3, 0), timezone=PARIS)
    # 2000-01-01 00:00Z + 7h * k: 2027-03-01 is 9921 days later, 238104 hours = 7 * 34014 + 6.
    hourly = [hour(3, 1, 1), hour(3, 1, 8), hour(3, 1, 15), hour(3, 1, 22)]
    hourly += [hour(3, 2, 5), hour(3, 2, 12), hour(3, 2, 19)]
    # Mondays every 3 weeks from 2010-01-11: 2027-03-01 is 894 weeks later (894 = 3 * 298).
    expected = [(start, start + timedelta(minutes=1)) for start in hourly]
    expected += [(hour(3, 1, 11, 20), hour(3, 1, 11, 40)), (hour(3, 2, 11, 20), hour(3, 2, 11, 40))]
    expected += [(hour(3, 1, 7), hour(3, 1, 7, 30))]
    assert result.intervals == tuple(sorted(expected))


@pytest.mark.timeout(30)
def test_a_rule_that_never_matches_keeps_its_start_only() -> None:
    text = calendar_of(
        "DTSTART:20270301T090000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30",
        "DTSTART:20270302T090000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=MONTHLY;BYDAY=6MO",
        "DTSTART:20270303T090000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=WEEKLY;BYDAY=MO;BYSETPOS=2",
        "DTSTART:20270131T090000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=MONTHLY",  # 31st: some months
    )
    result = busy_intervals(text, MARCH, MAY, timezone=PARIS)
    assert result.intervals == (
        (hour(3, 1, 9), hour(3, 1, 10)),
        (hour(3, 2, 9), hour(3, 2, 10)),
        (hour(3, 3, 9), hour(3, 3, 10)),
        (hour(3, 31, 9), hour(3, 31, 10)),
    )
    assert result.ignored == 0


def test_a_broken_event_costs_only_itself() -> None:
    text = calendar_of(
        "DTSTART:20270310T25000Z\r\nDURATION:PT1H",
        "DTSTART:20270311T090000Z\r\nDTEND:not-a-date",
        "DTSTART:20270312T090000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=DAILY;BYSETPOS=2",
        "DTSTART:20270313T090000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=DAILY;COUNT=1\r\nEXDATE:garbage",
        "DTSTART:20270314T090000Z\r\nDURATION:PT1H",
    )
    result = busy_intervals(text, MARCH, MAY, timezone=PARIS)
    assert result == BusyRead(((hour(3, 14, 9), hour(3, 14, 10)),), 5, 4)


# One-off events far from the window are skipped before parsing (most of a feed is its past);
# those that may still reach into it must not be. In Pacific/Kiritimati (UTC+14), an all-day
# 2027-03-01 is 2027-02-28 10:00Z to 2027-03-01 10:00Z.
REACH = {
    "far before": ("DTSTART:20260101T090000Z\r\nDTEND:20260101T100000Z", []),
    "far after": ("DTSTART:20280101T090000Z\r\nDTEND:20280101T100000Z", []),
    "long": ("DTSTART:20260101T090000Z\r\nDTEND:20270302T100000Z", [(MARCH, hour(3, 2, 10))]),
    "reversed": ("DTSTART:20280101T000000Z\r\nDTEND:20270430T120000Z", [(hour(4, 30, 12), MAY)]),
    "long duration": ("DTSTART:20260601T000000Z\r\nDURATION:P280D", [(MARCH, hour(3, 8, 0))]),
    "all-day east": ("DTSTART;VALUE=DATE:20270301", [(MARCH, hour(3, 1, 10))]),
    "all-day before": ("DTSTART;VALUE=DATE:20270228", []),
    "yearly": (
        "DTSTART:20260304T090000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=YEARLY",
        [(hour(3, 4, 9), hour(3, 4, 10))],
    ),
    "moved occurrence": (
        "DTSTART:20270304T090000Z\r\nDURATION:PT1H\r\nRECURRENCE-ID:20260304T090000Z",
        [(hour(3, 4, 9), hour(3, 4, 10))],
    ),
}


@pytest.mark.parametrize("case", sorted(REACH))
def test_events_that_may_reach_into_the_window_are_read(case: str) -> None:
    event, intervals = REACH[case]
    result = busy_intervals(calendar_of(event), MARCH, MAY, timezone="Pacific/Kiritimati")
    assert result == BusyRead(tuple(intervals), 1, 0)


def test_a_window_of_nothing_gives_nothing() -> None:
    text = calendar_of("DTSTART:20270310T090000Z\r\nDTEND:20270310T100000Z")
    assert busy_intervals(text, MARCH, MARCH, timezone=PARIS) == BusyRead((), 1, 0)
    assert busy_intervals(calendar_of(), MARCH, MAY, timezone=PARIS) == BusyRead((), 0, 0)


BASE = utc(2027, 3, 10)
event_times = st.lists(
    st.tuples(
        st.integers(min_value=-3000, max_value=6000),  # start, minutes from BASE
        st.integers(min_value=0, max_value=600),  # length in minutes
        st.booleans(),  # takes time
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=event_times, window=st.tuples(st.integers(-100, 3000), st.integers(0, 4000)))
def test_intervals_are_sorted_disjoint_within_the_window_and_cover_busy_events(
    events: list[tuple[int, int, bool]], window: tuple[int, int]
) -> None:
    start = BASE + timedelta(minutes=window[0])
    end = start + timedelta(minutes=window[1])

    def stamp(moment: datetime) -> str:
        return moment.strftime("%Y%m%dT%H%M%SZ")

    text = calendar_of(
        *(
            f"DTSTART:{stamp(BASE + timedelta(minutes=s))}\r\n"
            f"DTEND:{stamp(BASE + timedelta(minutes=s + length))}"
            + ("" if takes_time else "\r\nTRANSP:TRANSPARENT")
            for s, length, takes_time in events
        )
    )
    result = busy_intervals(text, start, end, timezone=PARIS)
    assert result == busy_intervals(minimize(text), start, end, timezone=PARIS)
    for first, last in result.intervals:
        assert start <= first < last <= end
    for (_, previous_end), (next_start, _) in zip(
        result.intervals, result.intervals[1:], strict=False
    ):
        assert previous_end < next_start
    for s, length, takes_time in events:
        busy_from = max(BASE + timedelta(minutes=s), start)
        busy_to = min(BASE + timedelta(minutes=s + length), end)
        if takes_time and busy_from < busy_to:
            assert any(a <= busy_from and busy_to <= b for a, b in result.intervals)
    covered = sum((b - a for a, b in result.intervals), timedelta())
    assert covered <= sum(
        (
            max(
                timedelta(),
                min(BASE + timedelta(minutes=s + n), end) - max(BASE + timedelta(minutes=s), start),
            )
            for s, n, takes_time in events
            if takes_time
        ),
        timedelta(),
    )
