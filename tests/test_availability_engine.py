"""The availability engine as a pure function: hours, buffers, capacity, windows, clock changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bookwise.availability.assignment import AssignmentContext, assign
from bookwise.availability.engine import (
    ExistingBooking,
    Interval,
    SlotRules,
    StaffTime,
    find_free_slots,
)
from bookwise.calendars.data import HoursRange
from bookwise.timezones import local_instant

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
M = timedelta(minutes=1)


def every_day(start: str, end: str) -> tuple[HoursRange, ...]:
    def minutes(text: str) -> int:
        hours, mins = text.split(":")
        return int(hours) * 60 + int(mins)

    return tuple(HoursRange(day, minutes(start), minutes(end)) for day in range(7))


def rules(zone: str = "Europe/Paris", **overrides: object) -> SlotRules:
    values: dict = {
        "timezone": zone,
        "duration": 30 * M,
        "slot_step": 15 * M,
        "max_ahead": timedelta(days=3650),
    }
    values.update(overrides)
    return SlotRules(**values)


def day_window(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.fromtimestamp(local_instant(day, 0, zone), UTC)
    end = datetime.fromtimestamp(local_instant(day + timedelta(days=1), 0, zone), UTC)
    return start, end


def local_times(slots: list, zone: ZoneInfo = PARIS) -> list[str]:
    return [s.start.astimezone(zone).strftime("%H:%M") for s in slots]


def booking(
    start: datetime, minutes: int = 30, before: int = 0, after: int = 0, service: int = 99
) -> ExistingBooking:
    end = start + minutes * M
    return ExistingBooking(start, end, start - before * M, end + after * M, service)


DAY = date(2026, 12, 1)  # a Tuesday


def test_the_issue_example_buffers_around_a_booking() -> None:
    """duration 30m, step 15m, buffer after 15m, a booking at 10:00: 09:30 to 10:30 are gone,
    09:15 and 10:45 stay."""
    at_ten = datetime(2026, 12, 1, 10, 0, tzinfo=PARIS)
    staff = StaffTime(1, every_day("09:00", "17:00"), bookings=(booking(at_ten, after=15),))
    slots = find_free_slots(rules(buffer_after=15 * M), [staff], *day_window(DAY, PARIS), LONG_AGO)
    times = local_times(slots)
    for gone in ("09:30", "09:45", "10:00", "10:15", "10:30"):
        assert gone not in times
    assert "09:15" in times and "10:45" in times
    assert times[0] == "09:00" and times[-1] == "16:30"


def test_buffer_before_is_the_new_slots_own() -> None:
    at_ten = datetime(2026, 12, 1, 10, 0, tzinfo=PARIS)
    staff = StaffTime(1, every_day("09:00", "12:00"), bookings=(booking(at_ten),))
    slots = find_free_slots(rules(buffer_before=15 * M), [staff], *day_window(DAY, PARIS), LONG_AGO)
    times = local_times(slots)
    assert "09:30" in times  # 09:15-10:00 touches the booking
    assert "10:15" not in times  # its blocked time starts at 10:00, inside the booking
    assert "10:45" in times  # 10:30-11:15


def test_breaks_are_gaps_between_ranges() -> None:
    hours = (HoursRange(1, 9 * 60, 12 * 60), HoursRange(1, 14 * 60, 15 * 60))
    slots = find_free_slots(
        rules(slot_step=30 * M), [StaffTime(1, hours)], *day_window(DAY, PARIS), LONG_AGO
    )
    assert local_times(slots) == [
        "09:00",
        "09:30",
        "10:00",
        "10:30",
        "11:00",
        "11:30",
        "14:00",
        "14:30",
    ]


def test_slots_step_from_the_start_of_each_range() -> None:
    hours = (HoursRange(1, 9 * 60 + 10, 11 * 60),)
    slots = find_free_slots(
        rules(duration=45 * M, slot_step=30 * M),
        [StaffTime(1, hours)],
        *day_window(DAY, PARIS),
        LONG_AGO,
    )
    assert local_times(slots) == ["09:10", "09:40", "10:10"]


def test_time_off_and_busy_times_block() -> None:
    off = Interval(
        datetime(2026, 12, 1, 9, 0, tzinfo=PARIS), datetime(2026, 12, 1, 10, 0, tzinfo=PARIS)
    )
    busy = Interval(
        datetime(2026, 12, 1, 11, 0, tzinfo=PARIS), datetime(2026, 12, 1, 11, 20, tzinfo=PARIS)
    )
    staff = StaffTime(1, every_day("09:00", "12:00"), unavailable=(off, busy))
    times = local_times(find_free_slots(rules(), [staff], *day_window(DAY, PARIS), LONG_AGO))
    assert times == ["10:00", "10:15", "10:30", "11:30"]


def test_booking_window_counts_from_now() -> None:
    now = datetime(2026, 12, 1, 9, 5, tzinfo=PARIS)
    staff = StaffTime(1, every_day("09:00", "17:00"))
    slots = find_free_slots(
        rules(min_notice=timedelta(hours=2), max_ahead=timedelta(hours=5)),
        [staff],
        *day_window(DAY, PARIS),
        now,
    )
    times = local_times(slots)
    assert times[0] == "11:15"  # the first step on or after 11:05
    assert times[-1] == "14:00"  # starts up to now + 5h


def test_group_capacity_and_remaining() -> None:
    at_ten = datetime(2026, 12, 1, 10, 0, tzinfo=PARIS)
    group = [booking(at_ten, 60, service=7) for _ in range(4)]
    staff = StaffTime(1, every_day("09:00", "13:00"), bookings=tuple(group))
    group_rules = rules(duration=60 * M, slot_step=60 * M, capacity=6, service_id=7)
    slots = {
        local_times([s])[0]: s
        for s in find_free_slots(group_rules, [staff], *day_window(DAY, PARIS), LONG_AGO)
    }
    assert slots["10:00"].remaining == 2
    assert slots["09:00"].remaining == 6 and slots["11:00"].remaining == 6
    full = StaffTime(
        1,
        every_day("09:00", "13:00"),
        bookings=tuple(booking(at_ten, 60, service=7) for _ in range(6)),
    )
    times = local_times(find_free_slots(group_rules, [full], *day_window(DAY, PARIS), LONG_AGO))
    assert "10:00" not in times and times == ["09:00", "11:00", "12:00"]


def test_another_service_blocks_a_group_slot() -> None:
    at_ten = datetime(2026, 12, 1, 10, 0, tzinfo=PARIS)
    staff = StaffTime(1, every_day("09:00", "12:00"), bookings=(booking(at_ten, 60, service=3),))
    group_rules = rules(duration=60 * M, slot_step=60 * M, capacity=6, service_id=7)
    times = local_times(find_free_slots(group_rules, [staff], *day_window(DAY, PARIS), LONG_AGO))
    assert times == ["09:00", "11:00"]


def test_slots_list_free_staff_in_pool_order() -> None:
    at_ten = datetime(2026, 12, 1, 10, 0, tzinfo=PARIS)
    a = StaffTime(5, every_day("09:00", "11:00"), bookings=(booking(at_ten),))
    b = StaffTime(2, every_day("10:00", "11:00"))
    slots = find_free_slots(rules(slot_step=30 * M), [a, b], *day_window(DAY, PARIS), LONG_AGO)
    by_time = {local_times([s])[0]: s for s in slots}
    assert by_time["09:00"].staff == (5,)
    assert by_time["10:00"].staff == (2,)
    assert by_time["10:30"].staff == (5, 2) and by_time["10:30"].remaining == 2


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        find_free_slots(rules(), [], datetime(2026, 1, 1), datetime(2026, 1, 2), LONG_AGO)


# --- clock changes ------------------------------------------------------------------------------

PARIS_SPRING, PARIS_AUTUMN = date(2026, 3, 29), date(2026, 10, 25)
NEW_YORK_SPRING, NEW_YORK_AUTUMN = date(2026, 3, 8), date(2026, 11, 1)


@pytest.mark.parametrize(
    ("zone", "day"),
    [
        (PARIS, PARIS_SPRING),
        (PARIS, PARIS_AUTUMN),
        (NEW_YORK, NEW_YORK_SPRING),
        (NEW_YORK, NEW_YORK_AUTUMN),
    ],
)
def test_office_hours_stay_local_on_change_days(zone: ZoneInfo, day: date) -> None:
    slots = find_free_slots(
        rules(str(zone), duration=60 * M, slot_step=60 * M),
        [StaffTime(1, every_day("09:00", "17:00"))],
        *day_window(day, zone),
        LONG_AGO,
    )
    assert local_times(slots, zone) == [f"{h:02d}:00" for h in range(9, 17)]


@pytest.mark.parametrize(
    ("zone", "day", "real_hours", "offsets"),
    [
        (
            PARIS,
            PARIS_AUTUMN,
            7,
            ["+02:00", "+02:00", "+02:00", "+01:00", "+01:00", "+01:00", "+01:00"],
        ),
        (PARIS, PARIS_SPRING, 5, ["+01:00", "+01:00", "+02:00", "+02:00", "+02:00"]),
        (
            NEW_YORK,
            NEW_YORK_AUTUMN,
            7,
            ["-04:00", "-04:00", "-05:00", "-05:00", "-05:00", "-05:00", "-05:00"],
        ),
        (NEW_YORK, NEW_YORK_SPRING, 5, ["-05:00", "-05:00", "-04:00", "-04:00", "-04:00"]),
    ],
)
def test_night_hours_hold_real_time(
    zone: ZoneInfo, day: date, real_hours: int, offsets: list[str]
) -> None:
    """00:00-06:00 holds 7 real hours when clocks go back (the repeated hour offered twice, each
    with its own offset) and 5 when they go forward (no slot in the skipped hour)."""
    slots = find_free_slots(
        rules(str(zone), duration=60 * M, slot_step=60 * M),
        [StaffTime(1, every_day("00:00", "06:00"))],
        *day_window(day, zone),
        LONG_AGO,
    )
    assert len(slots) == real_hours
    assert [s.start.astimezone(zone).isoformat()[-6:] for s in slots] == offsets
    starts = [s.start for s in slots]
    assert all(b - a == timedelta(hours=1) for a, b in pairwise(starts))
    if real_hours == 5:  # both zones skip from 02:00 to 03:00
        assert all(s.start.astimezone(zone).strftime("%H") != "02" for s in slots)


def test_a_slot_across_the_change_lasts_real_minutes() -> None:
    hours = every_day("01:30", "04:00")
    slots = find_free_slots(
        rules(duration=45 * M, slot_step=45 * M),
        [StaffTime(1, hours)],
        *day_window(PARIS_AUTUMN, PARIS),
        LONG_AGO,
    )
    for slot in slots:
        assert slot.end - slot.start == timedelta(minutes=45)
    crossing = [
        s
        for s in slots
        if s.start.astimezone(PARIS).utcoffset() != s.end.astimezone(PARIS).utcoffset()
    ]
    assert crossing, "one slot should cross the change"
    # 02:15+02:00 to 02:00+01:00 on the wall clock: 45 real minutes.
    assert crossing[0].start.astimezone(PARIS).strftime("%H:%M%z") == "02:15+0200"
    assert crossing[0].end.astimezone(PARIS).strftime("%H:%M%z") == "02:00+0100"


def test_a_range_starting_in_the_skipped_hour_starts_at_the_jump() -> None:
    hours = every_day("02:30", "04:00")
    slots = find_free_slots(
        rules(slot_step=30 * M), [StaffTime(1, hours)], *day_window(PARIS_SPRING, PARIS), LONG_AGO
    )
    assert local_times(slots) == ["03:00", "03:30"]


def test_kolkata_calendar_seen_from_auckland() -> None:
    kolkata, auckland = ZoneInfo("Asia/Kolkata"), ZoneInfo("Pacific/Auckland")
    staff = StaffTime(1, every_day("09:00", "12:00"))
    # The Auckland day of 2 December 2026 (NZDT, +13:00) runs from 16:30 to 16:30 Kolkata time.
    window = day_window(date(2026, 12, 2), auckland)
    slots = find_free_slots(
        rules("Asia/Kolkata", duration=60 * M, slot_step=60 * M), [staff], *window, LONG_AGO
    )
    seen = [s.start.astimezone(auckland).strftime("%d %H:%M") for s in slots]
    assert seen == ["02 16:30", "02 17:30", "02 18:30"]  # 09:00, 10:00, 11:00 in Kolkata
    assert {s.start.astimezone(kolkata).strftime("%H:%M") for s in slots} == {
        "09:00",
        "10:00",
        "11:00",
    }


# --- properties -------------------------------------------------------------------------------

minutes = st.integers(min_value=0, max_value=24 * 60)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[SlotRules, list[StaffTime], datetime, datetime]:
    zone = draw(st.sampled_from(["Europe/Paris", "America/New_York", "Asia/Kolkata", "UTC"]))
    duration = draw(st.sampled_from([15, 20, 30, 45, 60, 90]))
    step = draw(st.sampled_from([5, 10, 15, 30, 60]))
    before, after = draw(st.sampled_from([0, 5, 15])), draw(st.sampled_from([0, 10, 15]))
    capacity = draw(st.sampled_from([1, 1, 3]))
    day = draw(st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 12, 31)))
    tz = ZoneInfo(zone)
    staff = []
    for staff_id in range(1, draw(st.integers(1, 3)) + 1):
        ranges = []
        for weekday in range(7):
            start = draw(st.integers(0, 20)) * 60
            end = min(24 * 60, start + draw(st.integers(1, 10)) * 60)
            ranges.append(HoursRange(weekday, start, end))
        bookings = []
        for _ in range(draw(st.integers(0, 6))):
            hour = draw(st.integers(0, 47))
            at = datetime.combine(day, datetime.min.time(), tz) + timedelta(minutes=30 * hour)
            bookings.append(
                booking(
                    at,
                    draw(st.sampled_from([15, 30, 60])),
                    draw(st.sampled_from([0, 10])),
                    draw(st.sampled_from([0, 10])),
                    service=draw(st.sampled_from([1, 2])),
                )
            )
        off = []
        if draw(st.booleans()):
            at = datetime.combine(day, datetime.min.time(), tz) + timedelta(
                hours=draw(st.integers(0, 23))
            )
            off.append(Interval(at, at + timedelta(minutes=draw(st.integers(1, 300)))))
        staff.append(StaffTime(staff_id, tuple(ranges), tuple(off), tuple(bookings)))
    slot_rules = SlotRules(
        zone,
        duration * M,
        step * M,
        before * M,
        after * M,
        max_ahead=timedelta(days=3650),
        capacity=capacity,
        service_id=1,
    )
    window = day_window(day, tz)
    return slot_rules, staff, *window


def _blocked(start: datetime, r: SlotRules) -> tuple[datetime, datetime]:
    return start - r.buffer_before, start + r.duration + r.buffer_after


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_properties_of_every_slot(scenario: tuple) -> None:
    slot_rules, staff, start, end = scenario
    slots = find_free_slots(slot_rules, staff, start, end, LONG_AGO)
    starts = [s.start for s in slots]
    assert starts == sorted(set(starts)), "slots are sorted and unique"
    zone = ZoneInfo(slot_rules.timezone)
    members = {m.staff_id: m for m in staff}
    for slot in slots:
        assert start <= slot.start < end
        assert slot.end - slot.start == slot_rules.duration
        # capacity per staff member: every free member's group counts (its places left)
        assert 0 < slot.remaining == sum(slot.remaining_by_staff.values())
        for staff_id in slot.staff:
            member = members[staff_id]
            # Inside a working range, in real time.
            local_days = {slot.start.astimezone(zone).date() + timedelta(days=d) for d in (-1, 0)}
            assert any(
                datetime.fromtimestamp(local_instant(d, r.start_minute, zone), UTC) <= slot.start
                and slot.end
                <= datetime.fromtimestamp(local_instant(d, r.end_minute, zone, earliest=False), UTC)
                for d in local_days
                for r in member.hours
                if r.weekday == d.weekday()
            )
            low, high = _blocked(slot.start, slot_rules)
            for period in member.unavailable:
                assert not (low < period.end and period.start < high), "overlaps time off"
            joined = [
                b
                for b in member.bookings
                if slot_rules.capacity > 1 and b.service_id == 1 and b.start == slot.start
            ]
            for existing in member.bookings:
                if existing in joined:
                    continue
                assert not (low < existing.blocked_until and existing.blocked_from < high)
            assert len(joined) + slot.remaining_by_staff[staff_id] == slot_rules.capacity


@settings(max_examples=60, deadline=None)
@given(scenarios(), st.data())
def test_booking_a_listed_slot_never_exceeds_capacity(scenario: tuple, data: st.DataObject) -> None:
    slot_rules, staff, start, end = scenario
    slots = find_free_slots(slot_rules, staff, start, end, LONG_AGO)
    if not slots:
        return
    chosen = data.draw(st.sampled_from(slots))
    staff_id = data.draw(st.sampled_from(chosen.staff))
    low, high = _blocked(chosen.start, slot_rules)
    new = ExistingBooking(chosen.start, chosen.end, low, high, 1)
    updated = [
        m
        if m.staff_id != staff_id
        else StaffTime(m.staff_id, m.hours, m.unavailable, (*m.bookings, new))
        for m in staff
    ]
    after = find_free_slots(slot_rules, updated, start, end, LONG_AGO)
    again = next((s for s in after if s.start == chosen.start), None)
    left = again.remaining_by_staff.get(staff_id, 0) if again else 0
    assert left == chosen.remaining_by_staff[staff_id] - 1
    # The booked member is not offered any overlapping start.
    for slot in after:
        if staff_id in slot.staff and slot.start != chosen.start:
            other_low, other_high = _blocked(slot.start, slot_rules)
            assert not (other_low < high and low < other_high)


# --- assignment -----------------------------------------------------------------------------


def test_round_robin_rotates_and_skips_the_busy() -> None:
    pool = [10, 20, 30]
    last = None
    picked = []
    for _ in range(6):
        last = assign("round_robin", AssignmentContext(free=pool, pool=pool, last_assigned=last))
        picked.append(last)
    assert picked == [10, 20, 30, 10, 20, 30]
    assert (
        assign("round_robin", AssignmentContext(free=[10, 30], pool=pool, last_assigned=10)) == 30
    )


def test_least_busy_then_rotation() -> None:
    pool = [1, 2, 3]
    context = AssignmentContext(
        free=pool, pool=pool, last_assigned=1, week_counts={1: 0, 2: 4, 3: 0}
    )
    assert assign("least_busy", context) == 3  # tie between 1 and 3: 3 comes next in rotation


def test_priority_and_random() -> None:
    assert assign("priority", AssignmentContext(free=[3, 2], pool=[2, 3, 1])) == 2
    import random

    chosen = {
        assign("random", AssignmentContext(free=[1, 2, 3], pool=[1, 2, 3], rng=random.Random(seed)))
        for seed in range(40)
    }
    assert chosen == {1, 2, 3}


def test_a_required_checkbox_cannot_be_skipped_with_a_false_word() -> None:
    from bookwise.bookings.answers import InvalidAnswers, check_answers
    from bookwise.workflows.language import Workflow

    workflow = Workflow.from_definition(
        {
            "id": "w",
            "name": "W",
            "duration": "30m",
            "fields": [{"id": "agree", "type": "checkbox", "required": True, "label": "Agree"}],
        }
    )
    for word in ("false", "no", "0", "off", False):
        with pytest.raises(InvalidAnswers) as refused:
            check_answers(
                workflow,
                {"name": "A", "email": "a@example.org", "agree": word},
                None,
                date(2026, 1, 1),
            )
        assert refused.value.problems["agree"].code == "required"
    clean = check_answers(
        workflow, {"name": "A", "email": "a@example.org", "agree": "on"}, None, date(2026, 1, 1)
    )
    assert clean.answers == {"agree": True}


def test_round_robin_by_turns_gives_a_busy_member_the_next_booking_they_are_free_for() -> None:
    pool = [10, 20, 30]
    turns: dict[int, int] = {}
    picked = []
    for number in range(1, 7):
        chosen = assign("round_robin", AssignmentContext(free=pool, pool=pool, turns=turns))
        turns = {**turns, chosen: number}
        picked.append(chosen)
    assert picked == [10, 20, 30, 10, 20, 30]
    # 10 was busy when its turn came: 20 took it; 10 then has the oldest turn.
    turns = {10: 4, 20: 5, 30: 6}
    assert assign("round_robin", AssignmentContext(free=[20, 30], pool=pool, turns=turns)) == 20
    assert assign("round_robin", AssignmentContext(free=pool, pool=pool, turns=turns)) == 10
    # A member added to the pool (never assigned) comes first, once.
    assert (
        assign("round_robin", AssignmentContext(free=[*pool, 40], pool=[*pool, 40], turns=turns))
        == 40
    )
    # least_busy breaks its ties in the same order.
    counts = {10: 2, 20: 1, 30: 1}
    context = AssignmentContext(free=pool, pool=pool, turns=turns, week_counts=counts)
    assert assign("least_busy", context) == 20
