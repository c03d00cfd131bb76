"""Why a time is not offered (bookwise.availability.engine.explain_start): each rule's reason,
and the property the issue asks for: a start is offered exactly when no reason applies, and
exactly when find_free_slots offers it, with the same staff and places."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from bookwise.availability.engine import (
    BOOKED,
    BUFFER,
    BUSY,
    CAPACITY,
    HELD,
    MAX_AHEAD,
    MIN_NOTICE,
    NOT_A_START,
    OTHER_GROUP,
    OUTSIDE_HOURS,
    PAST,
    ROUTING,
    TIME_OFF,
    ExistingBooking,
    Interval,
    Reason,
    SlotRules,
    StaffTime,
    explain_start,
    find_free_slots,
)
from bookwise.calendars.data import HoursRange
from tests.test_availability_engine import LONG_AGO, M, booking, day_window, every_day, rules

PARIS = ZoneInfo("Europe/Paris")
TUESDAY = date(2026, 12, 1)


def at(hhmm: str, day: date = TUESDAY, zone: ZoneInfo = PARIS) -> datetime:
    hours, minutes = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hours, minutes, tzinfo=zone)


def codes(explanation: object, staff_id: int | None = None) -> list[str]:
    if staff_id is None:
        return [r.code for r in explanation.reasons]  # type: ignore[attr-defined]
    verdict = next(v for v in explanation.staff if v.staff_id == staff_id)  # type: ignore[attr-defined]
    return [r.code for r in verdict.reasons]


HOURS = every_day("09:00", "12:00")


def test_a_free_start_has_no_reason() -> None:
    told = explain_start(rules(), [StaffTime(1, HOURS)], at("10:00"), LONG_AGO)
    assert told.offered and told.reasons == () and told.staff[0].free
    assert told.remaining == 1


def test_outside_hours_and_off_the_step() -> None:
    staff = [StaffTime(1, HOURS)]
    assert codes(explain_start(rules(), staff, at("08:00"), LONG_AGO), 1) == [OUTSIDE_HOURS]
    # The last slot must end by 12:00: 11:45 with 30 minutes does not fit.
    assert codes(explain_start(rules(), staff, at("11:45"), LONG_AGO), 1) == [OUTSIDE_HOURS]
    told = explain_start(rules(), staff, at("10:05"), LONG_AGO)
    assert codes(told, 1) == [NOT_A_START]
    nearest = told.staff[0].reasons[0]
    assert (nearest.start, nearest.end) == (at("10:00"), at("10:15"))


def test_time_off_busy_booking_and_buffer_are_told_apart() -> None:
    member = StaffTime(
        1,
        HOURS,
        unavailable=(
            Interval(at("09:00"), at("09:30"), TIME_OFF, "Dentist"),
            Interval(at("11:00"), at("11:15"), BUSY, "Outlook"),
        ),
        bookings=(booking(at("10:00"), 30, after=15),),
    )
    slot_rules = rules(buffer_before=10 * M)
    told = explain_start(slot_rules, [member], at("09:15"), LONG_AGO)
    assert [(r.code, r.label) for r in told.staff[0].reasons] == [(TIME_OFF, "Dentist")]
    assert codes(explain_start(slot_rules, [member], at("10:15"), LONG_AGO), 1) == [BOOKED]
    # 10:30 starts when the booking ends, but its 15 minutes after (and our 10 before) are in
    # the way: a buffer, not the booking.
    assert codes(explain_start(slot_rules, [member], at("10:30"), LONG_AGO), 1) == [BUFFER]
    # 09:30 ends when the booking starts (fine), but its own 10 minutes before reach into the
    # time off; 09:45 would end inside the booking.
    assert codes(explain_start(slot_rules, [member], at("09:30"), LONG_AGO), 1) == [TIME_OFF]
    assert codes(explain_start(slot_rules, [member], at("09:45"), LONG_AGO), 1) == [BOOKED]
    told = explain_start(slot_rules, [member], at("11:15"), LONG_AGO)
    assert [(r.code, r.label) for r in told.staff[0].reasons] == [(BUSY, "Outlook")]


def test_a_place_held_for_the_waitlist_is_its_own_reason() -> None:
    offered = replace(booking(at("10:00"), 30, after=15), held=True)
    member = StaffTime(1, HOURS, bookings=(offered,))
    told = explain_start(rules(), [member], at("10:15"), LONG_AGO)
    assert [(r.code, r.start, r.end) for r in told.staff[0].reasons] == [
        (HELD, at("10:00"), at("10:30"))
    ]
    # Its break too: the place is held as the booking it stands for.
    assert codes(explain_start(rules(), [member], at("10:30"), LONG_AGO), 1) == [HELD]
    from bookwise.availability.reasons import reason_message
    from bookwise.formatting import translator

    reason = told.staff[0].reasons[0]
    words = reason_message(reason, "Europe/Paris", "en", translator("en"), private=False)
    assert words == (
        "Offered to a client on the waitlist (10:00\u202fAM\u201310:30\u202fAM), and held for them "
        "until they answer."
    )


def test_the_booking_window_is_service_wide() -> None:
    staff = [StaffTime(1, HOURS)]
    now = at("09:00")
    slot_rules = rules(min_notice=timedelta(hours=2), max_ahead=timedelta(days=7))
    assert codes(explain_start(slot_rules, staff, at("09:30", TUESDAY), now)) == [MIN_NOTICE]
    past = explain_start(slot_rules, staff, at("10:00", TUESDAY - timedelta(days=1)), now)
    assert codes(past) == [PAST] and not past.offered
    far = explain_start(slot_rules, staff, at("10:00", TUESDAY + timedelta(days=8)), now)
    assert codes(far) == [MAX_AHEAD] and far.reasons[0].end == now + timedelta(days=7)
    # The staff are still explained, so a receptionist sees both.
    assert far.staff[0].free


def test_groups_full_per_member_and_per_slot() -> None:
    group = [booking(at("10:00"), 30, service=1) for _ in range(3)]
    full = StaffTime(1, HOURS, bookings=tuple(group))
    other = StaffTime(2, HOURS)
    per_member = rules(capacity=3, service_id=1)
    told = explain_start(per_member, [full, other], at("10:00"), LONG_AGO)
    assert codes(told, 1) == [CAPACITY] and told.offered and told.remaining == 3
    per_slot = rules(capacity=3, service_id=1, per_slot=True)
    told = explain_start(per_slot, [full, other], at("10:00"), LONG_AGO)
    assert codes(told) == [CAPACITY] and not told.offered
    # One place taken by member 1: the group is theirs, member 2 does not open a second one.
    begun = StaffTime(1, HOURS, bookings=(group[0],))
    told = explain_start(per_slot, [begun, other], at("10:00"), LONG_AGO)
    assert told.offered and told.remaining == 2 and codes(told, 2) == [OTHER_GROUP]


def test_routing_is_a_reason_of_its_own() -> None:
    staff = [StaffTime(1, HOURS), StaffTime(2, HOURS)]
    told = explain_start(rules(), staff, at("10:00"), LONG_AGO, routed_out=[2])
    assert told.offered and codes(told, 2) == [ROUTING] and told.staff[0].free
    told = explain_start(rules(), staff, at("10:00"), LONG_AGO, routed_out=[1, 2])
    assert not told.offered


# --- the property -------------------------------------------------------------------------------

DST_DAYS = [
    ("Europe/Paris", date(2026, 3, 29)),
    ("Europe/Paris", date(2026, 10, 25)),
    ("America/New_York", date(2026, 3, 8)),
    ("America/New_York", date(2026, 11, 1)),
    ("Asia/Kolkata", date(2026, 6, 1)),
    ("UTC", date(2026, 12, 1)),
]


@st.composite
def worlds(draw: st.DrawFn) -> tuple[SlotRules, list[StaffTime], date, datetime, set[int], int]:
    zone_name, day = draw(st.sampled_from(DST_DAYS))
    zone = ZoneInfo(zone_name)
    midnight = datetime.combine(day, datetime.min.time(), zone)
    capacity = draw(st.sampled_from([1, 1, 2, 3]))
    sessions: tuple[tuple[int, int], ...] = ()
    if draw(st.integers(0, 4)) == 0:
        sessions = tuple(
            (day.weekday(), draw(st.integers(0, 47)) * 30) for _ in range(draw(st.integers(1, 4)))
        )
    slot_rules = SlotRules(
        zone_name,
        draw(st.sampled_from([15, 30, 45, 60, 90])) * M,
        draw(st.sampled_from([10, 15, 30, 60])) * M,
        draw(st.sampled_from([0, 5, 15])) * M,
        draw(st.sampled_from([0, 10, 15])) * M,
        min_notice=draw(st.sampled_from([0, 0, 60, 600])) * M,
        max_ahead=draw(
            st.sampled_from([timedelta(hours=20), timedelta(days=30), timedelta(days=30)])
        ),
        capacity=capacity,
        service_id=1,
        per_slot=capacity > 1 and draw(st.booleans()),
        sessions=sessions,
    )
    staff = []
    for staff_id in range(1, draw(st.integers(1, 3)) + 1):
        hours = []
        for weekday in {day.weekday(), (day.weekday() - 1) % 7}:
            for _ in range(draw(st.integers(weekday == day.weekday(), 2))):
                start = draw(st.integers(0, 46)) * 30
                end = min(24 * 60, start + draw(st.integers(1, 16)) * 30)
                hours.append(HoursRange(weekday, start, end))
        bookings = []
        for _ in range(draw(st.integers(0, 3))):
            start = midnight + draw(st.integers(0, 95)) * 15 * M
            length = draw(st.sampled_from([15, 30, 60]))
            before, after = draw(st.sampled_from([0, 10])), draw(st.sampled_from([0, 10]))
            bookings.append(
                ExistingBooking(
                    start,
                    start + length * M,
                    start - before * M,
                    start + (length + after) * M,
                    draw(st.sampled_from([1, 2])),
                    # A place offered to the waitlist and held weighs as a booking.
                    held=draw(st.integers(0, 3)) == 0,
                )
            )
        today = [r for r in hours if r.weekday == day.weekday()]
        for _ in range(draw(st.integers(0, 2))):  # a group of this service, maybe full
            # Mostly in working hours, on the grid, where only the group itself can refuse it.
            first = draw(st.sampled_from(today)).start_minute if today else 0
            start = midnight + (first * M + draw(st.integers(0, 4)) * slot_rules.slot_step)
            group = ExistingBooking(start, start + slot_rules.duration, start, start + 60 * M, 1)
            bookings += [group] * draw(st.integers(1, capacity))
            if draw(st.booleans()):  # and a place of it offered to the waitlist
                bookings.append(replace(group, held=True))
        off = []
        for _ in range(draw(st.integers(0, 2))):
            start = midnight + draw(st.integers(0, 47)) * 30 * M
            kind = draw(st.sampled_from([TIME_OFF, BUSY]))
            off.append(Interval(start, start + draw(st.integers(1, 300)) * M, kind))
        staff.append(StaffTime(staff_id, tuple(sorted(hours)), tuple(off), tuple(bookings)))
    # Mostly before the day (its starts are all ahead), sometimes during it.
    now = midnight + draw(st.one_of(st.integers(-20, 0), st.integers(-48, 60))) * 30 * M
    routed_out = set(draw(st.lists(st.sampled_from([1, 2, 3]), max_size=2)))
    elsewhere = draw(st.sampled_from([0, 0, 1])) if slot_rules.per_slot else 0
    return slot_rules, staff, day, now, routed_out, elsewhere


@settings(max_examples=120, deadline=None)
@given(worlds())
def test_a_time_is_offered_exactly_when_no_reason_applies(world: tuple) -> None:
    slot_rules, staff, day, now, routed_out, elsewhere = world
    zone = ZoneInfo(slot_rules.timezone)
    start, end = day_window(day, zone)
    pool = [member for member in staff if member.staff_id not in routed_out]
    # Per slot, the group's places taken by staff outside the pool: some from elsewhere in the
    # calendar (``elsewhere``), and those of the members the routing leaves out, as the
    # services count them (read_joined_elsewhere over the routed pool).
    extra: dict[datetime, int] = {}
    joined: dict[datetime, int] = defaultdict(int)
    if slot_rules.per_slot:
        for member in staff:
            for b in member.bookings:
                if b.service_id != 1:
                    continue
                extra[b.start.astimezone(UTC)] = elsewhere
                if member.staff_id in routed_out:
                    joined[b.start.astimezone(UTC)] += 1
        for moment, count in extra.items():
            joined[moment] += count
    offered = {
        slot.start: slot
        for slot in find_free_slots(
            slot_rules, pool, start, end, now, joined_elsewhere=dict(joined)
        )
    }
    # Every 5 minutes, every booking's start, and a few odd seconds.
    candidates = {start + 5 * M * k for k in range(int((end - start) / (5 * M)))}
    candidates |= {b.start for m in staff for b in m.bookings if start <= b.start < end}
    candidates |= {start + timedelta(seconds=7 * k + 1) for k in range(3)}
    for moment in sorted(candidates):
        told = explain_start(
            slot_rules,
            staff,
            moment,
            now,
            joined_elsewhere=extra.get(moment.astimezone(UTC), 0),
            routed_out=routed_out,
        )
        free = [verdict for verdict in told.staff if verdict.free]
        assert told.offered == (not told.reasons and bool(free)), moment
        slot = offered.get(moment.astimezone(UTC))
        assert told.offered == (slot is not None), (moment, told)
        if slot is None:
            continue
        assert [v.staff_id for v in free] == list(slot.staff), (moment, told, slot)
        assert {v.staff_id: v.remaining for v in free} == slot.remaining_by_staff
        assert told.remaining == slot.remaining


def test_reasons_in_words_name_whole_days_as_days() -> None:
    from bookwise.availability.reasons import reason_message
    from bookwise.formatting import translator

    words = translator("en")
    holiday = Reason(
        TIME_OFF,
        datetime(2026, 12, 24, tzinfo=PARIS),
        datetime(2027, 1, 2, tzinfo=PARIS),
        "End-of-year holidays",
    )
    assert reason_message(holiday, "Europe/Paris", "en", words) == (
        "Time off (End-of-year holidays), Thursday, December 24, 2026 \u2013 Friday, "
        "January 1, 2027."
    )
    # A client reads that the person is away, not why.
    assert reason_message(holiday, "Europe/Paris", "en", words, private=False) == (
        "Time off, Thursday, December 24, 2026 \u2013 Friday, January 1, 2027."
    )
    one_day = Reason(TIME_OFF, at("00:00"), at("00:00", TUESDAY + timedelta(days=1)))
    assert reason_message(one_day, "Europe/Paris", "fr", translator("fr")) == (
        "Absence, mardi 1 décembre 2026."
    )
