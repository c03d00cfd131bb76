"""The slots kept by the slot cache are found without the booking window, a day at a time, and
cut to the window when asked: the result must be what the engine gives for the whole window at
that time (bookwise.availability.engine.find_slots_any_time, in_booking_window). Pure: no app."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from bookwise.availability.engine import (
    Slot,
    find_free_slots,
    find_slots_any_time,
    in_booking_window,
)
from tests.test_availability_engine import day_window, scenarios


def _seen(slots: list[Slot]) -> list[tuple[object, ...]]:
    # Slot's equality leaves out remaining_by_staff: compare everything.
    return [
        (s.start, s.end, s.staff, s.remaining, sorted(s.remaining_by_staff.items())) for s in slots
    ]


@settings(max_examples=200, deadline=None)
@given(
    scenarios(),
    st.integers(-36 * 60, 60 * 60),  # now, in minutes from the scenario's day
    st.sampled_from([0, 30, 60 * 5, 60 * 24]),  # min_notice, minutes
    st.sampled_from([60 * 3, 60 * 20, 60 * 24 * 2, 60 * 24 * 400]),  # max_ahead, minutes
    st.booleans(),  # one group per slot
    st.booleans(),  # fixed sessions
)
def test_days_found_any_time_then_cut_equal_the_window_found_now(
    scenario: tuple,
    now_minutes: int,
    notice: int,
    ahead: int,
    per_slot: bool,
    sessions: bool,
) -> None:
    rules, staff, day_start, _day_end = scenario
    zone = ZoneInfo(rules.timezone)
    rules = replace(
        rules,
        min_notice=timedelta(minutes=notice),
        max_ahead=timedelta(minutes=ahead),
        per_slot=per_slot and rules.capacity > 1,
        sessions=((day_start.astimezone(zone).weekday(), 9 * 60), (0, 14 * 60 + 30))
        if sessions
        else (),
    )
    # Three local days, the scenario's in the middle, cut into days as the cache keeps them.
    first = day_start.astimezone(zone).date() - timedelta(days=1)
    days = [day_window(first + timedelta(days=n), zone) for n in range(3)]
    window_start, window_end = days[0][0], days[-1][1]
    now = day_start + timedelta(minutes=now_minutes)
    elsewhere = {day_start + timedelta(hours=10): 1} if rules.per_slot else None

    kept = [
        slot
        for low, high in days
        for slot in find_slots_any_time(rules, staff, low, high, elsewhere)
    ]
    assert _seen(in_booking_window(rules, kept, window_start, window_end, now)) == _seen(
        find_free_slots(rules, staff, window_start, window_end, now, elsewhere)
    )
    # A window that is not whole days (a client's time zone): cut the same way.
    low, high = window_start + timedelta(hours=7), window_end - timedelta(hours=5)
    assert _seen(in_booking_window(rules, kept, low, high, now)) == _seen(
        find_free_slots(rules, staff, low, high, now, elsewhere)
    )


def test_a_slot_found_any_time_carries_no_trace_of_the_clock() -> None:
    """The same days, asked at two times: the kept slots are the same; only the cut differs."""
    rules, staff, start, end = _one_scenario()
    kept = find_slots_any_time(rules, staff, start, end)
    assert kept, "the example has free slots"
    early = in_booking_window(rules, kept, start, end, start - timedelta(days=1))
    late = in_booking_window(rules, kept, start, end, start + timedelta(hours=12))
    assert _seen(early) == _seen(kept)
    assert late and all(s.start >= start + timedelta(hours=12) + rules.min_notice for s in late)
    assert len(late) < len(early)


def _one_scenario() -> tuple:
    from bookwise.availability.engine import SlotRules, StaffTime
    from bookwise.calendars.data import HoursRange

    zone = ZoneInfo("Europe/Paris")
    start, end = day_window(datetime(2026, 3, 10).date(), zone)
    rules = SlotRules("Europe/Paris", timedelta(minutes=30), timedelta(minutes=30))
    hours = tuple(HoursRange(w, 8 * 60, 18 * 60) for w in range(7))
    return rules, [StaffTime(1, hours), StaffTime(2, hours)], start, end
