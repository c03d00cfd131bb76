"""Quiet hours, the pure function: when a message due inside them is sent, across the nights
the clocks change, in the recipient's zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bookwise.notifications.quiet import (
    QuietHours,
    held_until,
    minute_of,
    quiet_stretch,
    send_time,
)

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
NIGHT = QuietHours(minute_of("21:00"), minute_of("08:00"))


def local(zone: ZoneInfo, *parts: int, fold: int = 0) -> datetime:
    year, month, day, hour, minute = parts
    return datetime(year, month, day, hour, minute, tzinfo=zone, fold=fold).astimezone(UTC)


def evening(day: tuple[int, int, int]) -> str:
    return f"{day[0]:04d}-{day[1]:02d}-{day[2]:02d} 21:00"


def wall(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def test_outside_quiet_hours_a_message_goes_out_when_due() -> None:
    due = local(PARIS, 2027, 6, 1, 14, 0)
    assert send_time(due, NIGHT, PARIS) == due
    assert send_time(due, None, PARIS) == due


def test_at_three_in_the_morning_it_waits_for_eight() -> None:
    due = local(PARIS, 2027, 6, 2, 3, 0)
    assert wall(send_time(due, NIGHT, PARIS), PARIS) == "2027-06-02 08:00"


def test_before_sends_it_the_evening_before() -> None:
    # A reminder for 08:30 due at 02:00 goes out at 21:00 the day before.
    due = local(PARIS, 2027, 6, 2, 2, 0)
    assert wall(send_time(due, NIGHT, PARIS, "before"), PARIS) == "2027-06-01 21:00"


def test_before_in_the_past_falls_back_to_after() -> None:
    due = now = local(PARIS, 2027, 6, 1, 23, 30)  # a booking made at 23:30: its SMS
    assert wall(send_time(due, NIGHT, PARIS, "before", now=now), PARIS) == "2027-06-02 08:00"


def test_ignore_never_holds() -> None:
    due = local(PARIS, 2027, 6, 2, 3, 0)
    assert send_time(due, NIGHT, PARIS, "ignore") == due


def test_the_bounds_themselves_are_not_quiet() -> None:
    assert quiet_stretch(local(PARIS, 2027, 6, 1, 21, 0), NIGHT, PARIS) is None
    assert quiet_stretch(local(PARIS, 2027, 6, 2, 8, 0), NIGHT, PARIS) is None
    assert quiet_stretch(local(PARIS, 2027, 6, 1, 21, 1), NIGHT, PARIS) is not None


def test_a_range_within_one_day() -> None:
    lunch = QuietHours(minute_of("12:00"), minute_of("14:00"))
    due = local(PARIS, 2027, 6, 1, 13, 0)
    assert wall(send_time(due, lunch, PARIS), PARIS) == "2027-06-01 14:00"
    assert wall(send_time(due, lunch, PARIS, "before"), PARIS) == "2027-06-01 12:00"
    assert send_time(local(PARIS, 2027, 6, 1, 3, 0), lunch, PARIS) == local(PARIS, 2027, 6, 1, 3, 0)


@pytest.mark.parametrize(
    ("zone", "day", "due", "after", "hours_quiet"),
    [
        # Paris springs forward on 2027-03-28 (02:00 -> 03:00): the night is an hour shorter.
        (PARIS, (2027, 3, 27), (2027, 3, 28, 4, 0), "2027-03-28 08:00", 10),
        # ... and falls back on 2027-10-31 (03:00 -> 02:00): an hour longer.
        (PARIS, (2027, 10, 30), (2027, 10, 31, 2, 30), "2027-10-31 08:00", 12),
        # New York: 2027-03-14 and 2027-11-07.
        (NEW_YORK, (2027, 3, 13), (2027, 3, 14, 3, 30), "2027-03-14 08:00", 10),
        (NEW_YORK, (2027, 11, 6), (2027, 11, 7, 1, 30), "2027-11-07 08:00", 12),
    ],
)
def test_across_a_change_of_the_clocks_the_night_holds_the_real_local_times(
    zone: ZoneInfo,
    day: tuple[int, int, int],
    due: tuple[int, ...],
    after: str,
    hours_quiet: int,
) -> None:
    moment = local(zone, *due)
    stretch = quiet_stretch(moment, NIGHT, zone)
    assert stretch is not None
    start, end = stretch
    assert wall(start, zone) == evening(day)
    assert wall(end, zone) == after
    assert end - start == timedelta(hours=hours_quiet)
    assert wall(send_time(moment, NIGHT, zone), zone) == after
    assert wall(send_time(moment, NIGHT, zone, "before"), zone) == evening(day)


def test_a_time_the_clocks_skip_is_the_moment_they_jump() -> None:
    # Quiet from 02:30 on the night Paris skips 02:00-03:00: it begins at the jump (01:00 UTC).
    odd = QuietHours(minute_of("02:30"), minute_of("06:00"))
    due = local(PARIS, 2027, 3, 28, 4, 0)
    assert send_time(due, odd, PARIS, "before") == datetime(2027, 3, 28, 1, 0, tzinfo=UTC)


def test_the_repeated_hour_stays_quiet() -> None:
    # Quiet until 02:30 on the night Paris shows 02:00-03:00 twice: until the second 02:30.
    odd = QuietHours(minute_of("22:00"), minute_of("02:30"))
    first_pass = local(PARIS, 2027, 10, 31, 2, 45, fold=0)
    assert send_time(first_pass, odd, PARIS) == local(PARIS, 2027, 10, 31, 2, 30, fold=1)


def test_a_client_in_tokyo_of_a_paris_calendar_is_quiet_on_tokyo_time() -> None:
    # 10:00 in Paris is 18:00 in Tokyo (summer): not quiet. 16:00 in Paris is 23:00 in Tokyo.
    assert held_until(local(PARIS, 2027, 6, 1, 10, 0), "sms", NIGHT, "Asia/Tokyo") == local(
        PARIS, 2027, 6, 1, 10, 0
    )
    held = held_until(local(PARIS, 2027, 6, 1, 16, 0), "sms", NIGHT, "Asia/Tokyo")
    assert wall(held, TOKYO) == "2027-06-02 08:00"
    assert wall(held, PARIS) == "2027-06-02 01:00"


def test_email_is_exempt_unless_it_waits_too() -> None:
    due = local(PARIS, 2027, 6, 2, 3, 0)
    assert held_until(due, "email", NIGHT, "Europe/Paris") == due
    everything = QuietHours(NIGHT.start, NIGHT.end, email=True)
    assert wall(held_until(due, "email", everything, "Europe/Paris"), PARIS) == "2027-06-02 08:00"


def test_the_mapping_round_trips_and_from_equal_to_is_refused() -> None:
    spec = {"from": "21:00", "to": "08:00", "email": True}
    hours = QuietHours.of(spec)
    assert hours is not None and hours.to_spec() == spec
    assert QuietHours.of({"from": "21:00", "to": "08:00"}).to_spec() == {  # type: ignore[union-attr]
        "from": "21:00",
        "to": "08:00",
    }
    assert QuietHours.of(None) is None
    with pytest.raises(ValueError, match="same time"):
        QuietHours(600, 600)


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        quiet_stretch(datetime(2027, 6, 2, 3, 0), NIGHT, PARIS)


ZONES = [PARIS, NEW_YORK, TOKYO, ZoneInfo("Australia/Lord_Howe"), ZoneInfo("America/Santiago")]
minutes = st.integers(min_value=0, max_value=1439)


@st.composite
def quiet_hours(draw: st.DrawFn) -> QuietHours:
    start = draw(minutes)
    end = draw(minutes.filter(lambda m: m != start))
    return QuietHours(start, end)


instants = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2029, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=400, deadline=None)
@given(
    due=instants,
    hours=quiet_hours(),
    zone=st.sampled_from(ZONES),
    direction=st.sampled_from(["after", "before"]),
)
def test_properties(due: datetime, hours: QuietHours, zone: ZoneInfo, direction: str) -> None:
    sent = send_time(due, hours, zone, direction)
    # Never inside the quiet hours.
    assert quiet_stretch(sent, hours, zone) is None
    stretch = quiet_stretch(due, hours, zone)
    if stretch is None:
        assert sent == due
        return
    # Never later than the end of the stretch holding the due time; never earlier than its start.
    assert stretch[0] <= sent <= stretch[1]
    if direction == "after":
        assert sent >= due
    else:
        assert sent <= due
    # Away from the changes of the clocks, the wall clock agrees: sent at ``to`` or ``from``.
    local_sent = sent.astimezone(zone)
    steady = all(
        (sent + timedelta(hours=h)).astimezone(zone).utcoffset() == local_sent.utcoffset()
        for h in (-26, 26)
    )
    if steady:
        expected = hours.end if direction == "after" else hours.start
        assert local_sent.hour * 60 + local_sent.minute == expected


@settings(max_examples=200, deadline=None)
@given(due=instants, hours=quiet_hours(), zone=st.sampled_from(ZONES), lag=st.integers(0, 2000))
def test_before_never_sends_in_the_past(
    due: datetime, hours: QuietHours, zone: ZoneInfo, lag: int
) -> None:
    now = due - timedelta(minutes=lag)
    sent = send_time(due, hours, zone, "before", now=now)
    assert sent >= now
    assert quiet_stretch(sent, hours, zone) is None


def test_machines_are_never_held() -> None:
    due = local(PARIS, 2027, 6, 2, 3, 0)
    everything = QuietHours(NIGHT.start, NIGHT.end, email=True)
    assert held_until(due, "webhook", everything, "Europe/Paris") == due
    assert held_until(due, "chat", NIGHT, "Europe/Paris") != due


def test_the_schedule_shows_the_time_a_held_message_is_sent() -> None:
    from bookwise.notifications.simulation import message_schedule
    from bookwise.workflows.language import Workflow

    workflow = Workflow.from_definition(
        {
            "id": "visit",
            "name": "Visit",
            "duration": "30m",
            "quiet_hours": {"from": "21:00", "to": "08:00"},
            "notifications": [
                {"on": "reminder", "before": "7h", "to": "client", "channel": ["sms", "email"]},
                {
                    "on": "reminder",
                    "before": "8h",
                    "to": "client",
                    "channel": "sms",
                    "quiet_hours": "before",
                },
            ],
        }
    )
    start = local(PARIS, 2027, 10, 31, 10, 0)  # the morning after Paris falls back
    by_key = {
        (m.rule.before, m.channel): m
        for m in message_schedule(workflow, start, "Europe/Paris")
        if m.event == "reminder"
    }
    late = by_key[(timedelta(hours=7), "sms")]
    assert wall(late.due, PARIS) == "2027-10-31 03:00"  # type: ignore[arg-type]
    assert late.held is not None and wall(late.held, PARIS) == "2027-10-31 08:00"
    assert by_key[(timedelta(hours=7), "email")].held is None
    early = by_key[(timedelta(hours=8), "sms")]
    assert early.sent_at is not None and wall(early.sent_at, PARIS) == "2027-10-30 21:00"
    # Without a zone (the recipients' unknown), nothing is held.
    assert all(m.held is None for m in message_schedule(workflow, start))
