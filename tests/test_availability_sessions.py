"""The availability engine, pure: a class's fixed sessions, and what a group's capacity counts
when several staff members are free (``per: staff`` or ``per: slot``)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from bookwise.availability.engine import (
    ExistingBooking,
    Interval,
    SlotRules,
    StaffTime,
    find_free_slots,
)
from bookwise.calendars.data import HoursRange

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)  # "now", before every window below
SERVICE = 7
MON, WED, SAT, SUN = 0, 2, 5, 6


def every_day(start: str, end: str) -> tuple[HoursRange, ...]:
    def minutes(text: str) -> int:
        hours, mins = text.split(":")
        return int(hours) * 60 + int(mins)

    return tuple(HoursRange(day, minutes(start), minutes(end)) for day in range(7))


def rules(**overrides: object) -> SlotRules:
    values: dict[str, object] = {
        "timezone": "Europe/Paris",
        "duration": timedelta(minutes=90),
        "slot_step": timedelta(minutes=30),
        "max_ahead": timedelta(days=3650),
        "capacity": 6,
        "service_id": SERVICE,
    }
    values.update(overrides)
    return SlotRules(**values)  # type: ignore[arg-type]


def week(first: date, zone: ZoneInfo, days: int = 7) -> tuple[datetime, datetime]:
    start = datetime.combine(first, datetime.min.time(), zone)
    return start, datetime.combine(first + timedelta(days=days), datetime.min.time(), zone)


def seat(at: datetime, minutes: int = 90, service: int = SERVICE) -> ExistingBooking:
    end = at + timedelta(minutes=minutes)
    return ExistingBooking(at, end, at, end, service)


def local(slots: list, zone: ZoneInfo = PARIS) -> list[str]:
    return [s.start.astimezone(zone).strftime("%a %H:%M") for s in slots]


# A week starting on a Monday.
MONDAY = date(2026, 11, 30)
CLASS_TIMES = ((MON, 18 * 60), (WED, 18 * 60), (SAT, 10 * 60))


def test_a_class_is_offered_only_at_its_sessions() -> None:
    tutor = StaffTime(1, every_day("09:00", "20:00"))
    slots = find_free_slots(rules(sessions=CLASS_TIMES), [tutor], *week(MONDAY, PARIS), LONG_AGO)
    assert local(slots) == ["Mon 18:00", "Wed 18:00", "Sat 10:00"]
    assert all(s.remaining == 6 for s in slots)
    # Without sessions, the same hours give a start every slot_step.
    assert len(find_free_slots(rules(), [tutor], *week(MONDAY, PARIS), LONG_AGO)) > 100


def test_sessions_are_local_times_of_the_calendars_zone() -> None:
    tutor = StaffTime(1, every_day("09:00", "20:00"))
    slots = find_free_slots(
        rules(timezone="America/New_York", sessions=CLASS_TIMES),
        [tutor],
        *week(MONDAY, NEW_YORK),
        LONG_AGO,
    )
    assert local(slots, NEW_YORK) == ["Mon 18:00", "Wed 18:00", "Sat 10:00"]
    assert slots[0].start == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)


def test_a_session_outside_working_hours_is_not_offered() -> None:
    # Saturday mornings off; on Wednesday the 18:00 session would end at 19:30, after 19:00.
    hours = (
        *(r for r in every_day("09:00", "20:00") if r.weekday not in (SAT, WED)),
        HoursRange(WED, 9 * 60, 19 * 60),
    )
    slots = find_free_slots(
        rules(sessions=CLASS_TIMES), [StaffTime(1, hours)], *week(MONDAY, PARIS), LONG_AGO
    )
    assert local(slots) == ["Mon 18:00"]


def test_sessions_respect_time_off_bookings_and_the_booking_window() -> None:
    monday_six = datetime(2026, 11, 30, 18, 0, tzinfo=PARIS)
    off = Interval(
        datetime(2026, 12, 5, 8, 0, tzinfo=PARIS), datetime(2026, 12, 5, 11, 0, tzinfo=PARIS)
    )
    other = seat(datetime(2026, 12, 2, 17, 30, tzinfo=PARIS), 60, service=3)
    tutor = StaffTime(1, every_day("09:00", "20:00"), (off,), (other,))
    slots = find_free_slots(rules(sessions=CLASS_TIMES), [tutor], *week(MONDAY, PARIS), LONG_AGO)
    assert local(slots) == ["Mon 18:00"]
    # now is after Monday's session: it is gone; min_notice counts too.
    later = find_free_slots(
        rules(sessions=CLASS_TIMES, min_notice=timedelta(hours=2)),
        [StaffTime(1, every_day("09:00", "20:00"))],
        *week(MONDAY, PARIS),
        monday_six - timedelta(hours=1),
    )
    assert local(later) == ["Wed 18:00", "Sat 10:00"]


def test_a_session_in_the_skipped_hour_starts_when_the_clocks_jump() -> None:
    # 2027-03-28: Paris goes from 02:00 to 03:00. A Sunday 02:30 session starts at 03:00 (01:00Z).
    night = StaffTime(1, every_day("00:00", "08:00"))
    spring = find_free_slots(
        rules(sessions=((SUN, 2 * 60 + 30),)), [night], *week(date(2027, 3, 28), PARIS, 1), LONG_AGO
    )
    assert [s.start for s in spring] == [datetime(2027, 3, 28, 1, 0, tzinfo=UTC)]
    # 2026-10-25: 02:30 happens twice; the session is at its first occurrence (00:30Z).
    autumn = find_free_slots(
        rules(sessions=((SUN, 2 * 60 + 30),)),
        [night],
        *week(date(2026, 10, 25), PARIS, 1),
        LONG_AGO,
    )
    assert [s.start for s in autumn] == [datetime(2026, 10, 25, 0, 30, tzinfo=UTC)]
    assert autumn[0].end - autumn[0].start == timedelta(minutes=90)


def test_a_group_begun_at_a_time_that_is_no_longer_a_session_is_not_offered() -> None:
    tuesday = datetime(2026, 12, 1, 18, 0, tzinfo=PARIS)  # booked before the sessions were set
    tutor = StaffTime(1, every_day("09:00", "20:00"), bookings=(seat(tuesday),))
    slots = find_free_slots(rules(sessions=CLASS_TIMES), [tutor], *week(MONDAY, PARIS), LONG_AGO)
    assert "Tue 18:00" not in local(slots)


# --- what capacity counts --------------------------------------------------------------------

MONDAY_SIX = datetime(2026, 11, 30, 18, 0, tzinfo=PARIS)


def at_six(slots: list) -> object:
    return next((s for s in slots if s.start == MONDAY_SIX), None)


def two_tutors(first: int = 0, second: int = 0) -> list[StaffTime]:
    return [
        StaffTime(
            1, every_day("09:00", "20:00"), bookings=tuple(seat(MONDAY_SIX) for _ in range(first))
        ),
        StaffTime(
            2, every_day("09:00", "20:00"), bookings=tuple(seat(MONDAY_SIX) for _ in range(second))
        ),
    ]


def test_per_staff_remaining_counts_every_free_members_group() -> None:
    """Two tutors free for a class of 6: 12 places, as 12 bookings would succeed."""
    rule = rules(sessions=CLASS_TIMES)
    fresh = at_six(find_free_slots(rule, two_tutors(), *week(MONDAY, PARIS), LONG_AGO))
    assert fresh.staff == (1, 2) and fresh.remaining == 12
    begun = at_six(find_free_slots(rule, two_tutors(4), *week(MONDAY, PARIS), LONG_AGO))
    assert begun.remaining == 8 and begun.remaining_by_staff == {1: 2, 2: 6}
    one_full = at_six(find_free_slots(rule, two_tutors(6, 1), *week(MONDAY, PARIS), LONG_AGO))
    assert one_full.staff == (2,) and one_full.remaining == 5


def test_per_slot_is_one_group_whoever_teaches_it() -> None:
    rule = rules(sessions=CLASS_TIMES, per_slot=True)
    fresh = at_six(find_free_slots(rule, two_tutors(), *week(MONDAY, PARIS), LONG_AGO))
    assert fresh.staff == (1, 2) and fresh.remaining == 6
    # Once tutor 2 teaches it, new clients join tutor 2's group: no second group opens.
    begun = at_six(find_free_slots(rule, two_tutors(0, 2), *week(MONDAY, PARIS), LONG_AGO))
    assert begun.staff == (2,) and begun.remaining == 4
    assert begun.remaining_by_staff == {2: 4}
    assert at_six(find_free_slots(rule, two_tutors(0, 6), *week(MONDAY, PARIS), LONG_AGO)) is None
    # Participants held by staff outside the pool given (joined_elsewhere) take places too.
    with_others = find_free_slots(
        rule, two_tutors(0, 2), *week(MONDAY, PARIS), LONG_AGO, {MONDAY_SIX: 3}
    )
    assert at_six(with_others).remaining == 1
    full = find_free_slots(rule, two_tutors(), *week(MONDAY, PARIS), LONG_AGO, {MONDAY_SIX: 6})
    assert at_six(full) is None
    # Given tutors only, with a group begun elsewhere: they may take it on (a reassignment).
    moved = find_free_slots(rule, two_tutors(), *week(MONDAY, PARIS), LONG_AGO, {MONDAY_SIX: 2})
    assert at_six(moved).staff == (1, 2) and at_six(moved).remaining == 4


def test_per_slot_group_whose_teacher_is_away_is_not_split() -> None:
    away = Interval(MONDAY_SIX - timedelta(hours=1), MONDAY_SIX + timedelta(hours=3))
    staff = [
        StaffTime(1, every_day("09:00", "20:00")),
        StaffTime(2, every_day("09:00", "20:00"), (away,), (seat(MONDAY_SIX),)),
    ]
    slots = find_free_slots(
        rules(sessions=CLASS_TIMES, per_slot=True), staff, *week(MONDAY, PARIS), LONG_AGO
    )
    assert at_six(slots) is None


def test_per_slot_with_one_place_is_one_booking_per_time() -> None:
    rule = rules(sessions=CLASS_TIMES, per_slot=True, capacity=1)
    assert (
        at_six(find_free_slots(rule, two_tutors(), *week(MONDAY, PARIS), LONG_AGO)).remaining == 1
    )
    assert at_six(find_free_slots(rule, two_tutors(1), *week(MONDAY, PARIS), LONG_AGO)) is None
    per_staff = rules(sessions=CLASS_TIMES, capacity=1)
    left = at_six(find_free_slots(per_staff, two_tutors(1), *week(MONDAY, PARIS), LONG_AGO))
    assert left.staff == (2,) and left.remaining == 1
