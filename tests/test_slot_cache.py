"""The slot cache (bookwise.availability.cache) never hides a change of the staff's time.

Each test reads the free times through the cache, changes what they are found from (through
the API, the ORM, a bulk statement, raw SQL, another process), and reads again: the answer must
be the one found afresh, and differ from the one before. On SQLite and PostgreSQL. Redis is the
real server on this machine (127.0.0.1:6379).
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
import sqlalchemy as sa

from bookwise.app import create_app
from bookwise.availability.cache import Day, SlotCache
from bookwise.availability.engine import Slot
from bookwise.bookings.models import Booking, WaitlistEntry
from bookwise.calendars.models import (
    BusyTime,
    Calendar,
    SlotVersion,
    StaffMember,
    TimeOff,
    WorkingHours,
)
from bookwise.db import unit_of_work
from bookwise.metrics import SLOT_CACHE_DAYS
from bookwise.testing import overlapping_bookings
from tests.conftest import TEST_NOW, Loaded

PARIS = ZoneInfo("Europe/Paris")
URL = "/api/v1/calendars/acme/services/consult"
REDIS_URL = "redis://127.0.0.1:6379/0"
# Times here are chosen from the instant the suite stands at: CI runs these at several.
pytestmark = pytest.mark.clock


class Clock:
    """The app's clock, moved by the test."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def moved() -> Clock:
    return Clock(TEST_NOW)


@pytest.fixture
def app(scenario: Loaded, moved: Clock) -> Iterator[Any]:
    # Many bookings and reads from one test client: the rate limits (tested elsewhere) off.
    security = scenario.settings.security
    settings = dataclasses.replace(
        scenario.settings,
        security=dataclasses.replace(
            security, rate_limits=dataclasses.replace(security.rate_limits, enabled=False)
        ),
    )
    application = create_app(settings, clock=moved)
    application.config.update(TESTING=True)
    yield application
    application.extensions["bookwise"].database.dispose()


def day(days: int) -> str:
    return (TEST_NOW.astimezone(PARIS).date() + timedelta(days=days)).isoformat()


def at(days: int, hour: int, minute: int = 0) -> datetime:
    local = TEST_NOW.astimezone(PARIS).date() + timedelta(days=days)
    return datetime(local.year, local.month, local.day, hour, minute, tzinfo=PARIS)


class Reader:
    """Reads the consult service's free times of days 2 to 4 through one app's cache, and
    afresh (the cache emptied first), counting the statements each runs."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.client = app.test_client()
        self.statements: list[str] = []
        engine = app.extensions["bookwise"].database.engine
        sa.event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(" ".join(statement.split()))

    def cached(self, query: str = "") -> list[dict[str, Any]]:
        self.statements.clear()
        answer = self.client.get(
            f"{URL}/slots?from={day(2)}&to={day(4)}{query}",
            headers={"X-Forwarded-For": f"10.1.{len(self.statements)}.1"},
        )
        assert answer.status_code == 200, answer.get_json()
        slots: list[dict[str, Any]] = answer.get_json()["slots"]
        return slots

    def afresh(self, query: str = "") -> list[dict[str, Any]]:
        self.app.extensions["bookwise"].slot_cache.clear()
        return self.cached(query)

    def read_time(self) -> bool:
        """Whether the last read read the staff's time (a miss), not only the versions."""
        return any("FROM time_off" in s for s in self.statements)


@pytest.fixture
def reader(app: Any) -> Reader:
    return Reader(app)


def book(app: Any, start: datetime, email: str = "zoe@example.org") -> dict[str, Any]:
    made = app.test_client().post(
        f"{URL}/bookings",
        json={
            "start": start.isoformat(),
            "client": {"name": "Zoé", "email": email},
            "answers": {"topic": "Maths"},
            "consent": True,
        },
    )
    assert made.status_code == 201, made.get_json()
    booked: dict[str, Any] = made.get_json()
    return booked


def remaining(slots: list[dict[str, Any]], start: datetime) -> int:
    """The places left at ``start`` (0: not offered)."""
    return next((s["remaining"] for s in slots if datetime.fromisoformat(s["start"]) == start), 0)


def staff_id(scenario: Loaded, slug: str) -> int:
    with scenario.database.sessions() as session:
        return session.execute(
            sa.select(StaffMember.id).where(StaffMember.slug == slug)
        ).scalar_one()


def check_change(reader: Reader, change: Callable[[], None], query: str = "") -> None:
    """Cached before; ``change``; the cached read equals a fresh one and differs from before."""
    before = reader.cached(query)
    assert reader.cached(query) == before
    assert not reader.read_time(), "the second read is the cache's"
    change()
    after = reader.cached(query)
    assert after == reader.afresh(query)
    assert after != before, "the change shows in the window"


# --- every kind of change ------------------------------------------------------------------


def test_a_booking_is_never_hidden_by_the_cache(app: Any, reader: Reader) -> None:
    start = at(2, 10)
    before = reader.cached()
    assert remaining(before, start) == 3
    for number in range(3):
        book(app, start, f"c{number}@example.org")
        after = reader.cached()
        assert remaining(after, start) == 2 - number
        assert after == reader.afresh()
    assert start.isoformat() not in {s["start"] for s in reader.cached()}


def test_a_cancellation_frees_the_time_at_once(app: Any, reader: Reader) -> None:
    booked = book(app, at(3, 9))
    token = booked["manage_token"]

    def cancel() -> None:
        assert app.test_client().post(f"/api/v1/manage/{token}/cancel").status_code == 200

    check_change(reader, cancel)
    assert remaining(reader.cached(), at(3, 9)) == 3


def test_time_off_added_and_removed(app: Any, reader: Reader, scenario: Loaded) -> None:
    ana = staff_id(scenario, "ana")

    def add() -> None:
        with unit_of_work(scenario.database.sessions) as session:
            session.add(TimeOff(staff_id=ana, start_at=at(2, 8), end_at=at(2, 14), reason="x"))

    def remove() -> None:
        with unit_of_work(scenario.database.sessions) as session:
            session.execute(sa.delete(TimeOff).where(TimeOff.staff_id == ana))

    check_change(reader, add)
    assert remaining(reader.cached(), at(2, 9)) == 2
    check_change(reader, remove)
    assert remaining(reader.cached(), at(2, 9)) == 3


def test_busy_times_written_in_bulk(app: Any, reader: Reader, scenario: Loaded) -> None:
    """A calendar feed's refresh replaces its busy times with two bulk statements."""
    ids = [staff_id(scenario, slug) for slug in ("ana", "ben")]

    def refresh() -> None:
        with unit_of_work(scenario.database.sessions) as session:
            session.execute(sa.delete(BusyTime).where(BusyTime.staff_id.in_(ids)))
            session.execute(
                sa.insert(BusyTime),
                [
                    {"staff_id": i, "start_at": at(4, 8), "end_at": at(4, 12), "source": "feed"}
                    for i in ids
                ],
            )

    check_change(reader, refresh)
    assert remaining(reader.cached(), at(4, 9)) == 1


def test_the_calendars_hours_changed(app: Any, reader: Reader, scenario: Loaded) -> None:
    weekday = at(3, 9).weekday()

    def shorten() -> None:
        with unit_of_work(scenario.database.sessions) as session:
            hours = session.scalars(
                sa.select(WorkingHours)
                .join(Calendar)
                .where(
                    Calendar.slug == "acme",
                    WorkingHours.staff_id.is_(None),
                    WorkingHours.weekday == weekday,
                )
            ).one()
            hours.start_minute = 12 * 60

    check_change(reader, shorten)
    assert remaining(reader.cached(), at(3, 9)) == 0
    assert remaining(reader.cached(), at(3, 12)) == 3


def test_a_member_given_hours_of_their_own(app: Any, reader: Reader, scenario: Loaded) -> None:
    ben = staff_id(scenario, "ben")

    def own_hours() -> None:
        with unit_of_work(scenario.database.sessions) as session:
            member = session.get(StaffMember, ben)
            assert member is not None
            member.uses_calendar_hours = False
            calendar_id = member.calendar_id
            session.add_all(
                WorkingHours(
                    calendar_id=calendar_id,
                    staff_id=ben,
                    weekday=w,
                    start_minute=14 * 60,
                    end_minute=16 * 60,
                )
                for w in range(7)
            )

    check_change(reader, own_hours)
    assert remaining(reader.cached(), at(2, 9)) == 2
    assert remaining(reader.cached(), at(2, 14)) == 3


def test_a_member_who_stops_taking_bookings(app: Any, reader: Reader, scenario: Loaded) -> None:
    cleo = staff_id(scenario, "cleo")

    def unbookable() -> None:
        with unit_of_work(scenario.database.sessions) as session:
            session.execute(
                sa.update(StaffMember).where(StaffMember.id == cleo).values(bookable=False)
            )

    check_change(reader, unbookable)
    assert remaining(reader.cached(), at(2, 9)) == 2


def test_a_booking_moved_by_raw_sql(app: Any, reader: Reader, scenario: Loaded) -> None:
    booked = book(app, at(2, 10))

    def move() -> None:
        with scenario.database.engine.begin() as connection:
            _move_booking(connection, booked["id"], timedelta(hours=3))

    check_change(reader, move)
    assert remaining(reader.cached(), at(2, 10)) == 3
    assert remaining(reader.cached(), at(2, 13)) == 2


def _move_booking(connection: sa.Connection, uid: str, by: timedelta) -> None:
    """Move a booking by ``by`` with one UPDATE, as a script would (not through the ORM)."""
    row = connection.execute(
        sa.select(Booking.id, Booking.start_at, Booking.end_at).where(Booking.uid == uid)
    ).one()
    start, end = row.start_at + by, row.end_at + by
    connection.execute(
        sa.update(Booking)
        .where(Booking.id == row.id)
        .values(start_at=start, end_at=end, blocked_from=start, blocked_until=end)
    )


def test_a_change_the_slots_do_not_depend_on_keeps_the_cache(
    app: Any, reader: Reader, scenario: Loaded
) -> None:
    """A booking's columns that take no time (its reminders, its meeting link) leave the
    staff's version alone: the cache keeps its days."""
    booked = book(app, at(2, 10))
    reader.cached()
    with unit_of_work(scenario.database.sessions) as session:
        session.execute(
            sa.update(Booking)
            .where(Booking.uid == booked["id"])
            .values(meeting_url="https://meet.example/x", sequence=Booking.sequence + 1)
        )
    reader.cached()
    assert not reader.read_time()


def test_another_process_booking_is_seen(app: Any, reader: Reader, scenario: Loaded) -> None:
    """Two web processes, each with its own cache: a booking made through one is seen by the
    other's next read (the versions are the database's)."""
    other = create_app(scenario.settings, clock=app.extensions["bookwise"].clock)
    other.config.update(TESTING=True)
    try:
        before = reader.cached()
        book(other, at(2, 10))
        after = reader.cached()
        assert remaining(after, at(2, 10)) == remaining(before, at(2, 10)) - 1
        assert after == reader.afresh()
    finally:
        other.extensions["bookwise"].database.dispose()


def test_a_waitlist_offer_that_runs_out(
    app: Any, reader: Reader, scenario: Loaded, moved: Clock
) -> None:
    """A place offered to the waitlist is held until the offer runs out: then the cached day
    shows it free, before any job has ended the offer."""
    start = at(2, 10)
    booked = book(app, start)
    with unit_of_work(scenario.database.sessions) as session:
        freed = session.execute(sa.select(Booking).where(Booking.uid == booked["id"])).scalar_one()
        freed.holds_slot = False
        freed.state = "cancelled"
        session.add(
            WaitlistEntry(
                calendar_id=freed.calendar_id,
                service_id=freed.service_id,
                client_id=freed.client_id,
                wanted_from=start,
                wanted_until=start + timedelta(hours=1),
                state="offered",
                locale="en",
                timezone="Europe/Paris",
                manage_token=uuid.uuid4().hex,
                freed_booking_id=freed.id,
                offered_start=start,
                offered_staff_id=freed.staff_id,
                offered_at=TEST_NOW,
                offer_expires_at=TEST_NOW + timedelta(hours=2),
            )
        )
    held = reader.cached()
    assert remaining(held, start) == 2
    assert reader.cached() == held and not reader.read_time()
    moved.at = TEST_NOW + timedelta(hours=2, seconds=1)
    free = reader.cached()
    assert remaining(free, start) == 3
    assert free == reader.afresh()


def test_the_clock_only_cuts_what_is_kept(app: Any, reader: Reader, moved: Clock) -> None:
    """The days kept do not depend on the time of asking: later, the same days are read from
    the cache and cut by the booking window at the new time."""
    first = reader.cached()
    moved.at = at(3, 12).astimezone(ZoneInfo("UTC"))
    later = reader.cached()
    assert not reader.read_time()
    assert later == reader.afresh()
    assert len(later) < len(first)
    assert all(datetime.fromisoformat(s["start"]) >= moved.at for s in later)


def test_the_client_chooses_a_member(app: Any, scenario: Loaded) -> None:
    """A search narrowed to one member is named apart from the whole pool's."""
    client = app.test_client()
    url = "/api/v1/calendars/acme/services/review/slots"
    whole = client.get(f"{url}?from={day(2)}&to={day(2)}").get_json()["slots"]
    ana = client.get(f"{url}?from={day(2)}&to={day(2)}&staff=ana").get_json()["slots"]
    assert whole and ana
    assert all(s["staff"] == ["ana"] or "ana" in s["staff"] for s in ana)
    app.extensions["bookwise"].slot_cache.clear()
    assert client.get(f"{url}?from={day(2)}&to={day(2)}&staff=ana").get_json()["slots"] == ana


def test_a_hit_reads_only_the_versions(app: Any, reader: Reader) -> None:
    reader.cached()
    hits = SLOT_CACHE_DAYS.labels("hit")._value.get()
    reader.cached()
    assert SLOT_CACHE_DAYS.labels("hit")._value.get() - hits == 3  # days 2, 3 and 4
    # The service; the pool with its versions; the versions of the days' blocks.
    assert len([s for s in reader.statements if s.startswith("SELECT")]) == 3
    assert not any("bookings" in s or "working_hours" in s for s in reader.statements)


def test_a_booking_makes_only_its_day_be_found_again(app: Any, reader: Reader) -> None:
    """Days 2 to 4 kept; a booking on day 3: days 2 and 4 still come from the cache."""
    reader.cached()
    book(app, at(3, 10))
    hits = SLOT_CACHE_DAYS.labels("hit")._value.get()
    misses = SLOT_CACHE_DAYS.labels("miss")._value.get()
    after = reader.cached()
    assert SLOT_CACHE_DAYS.labels("miss")._value.get() - misses == 1
    assert SLOT_CACHE_DAYS.labels("hit")._value.get() - hits == 2
    assert remaining(after, at(3, 10)) == 2
    assert after == reader.afresh()


def test_a_long_leave_counts_for_every_day(app: Any, reader: Reader, scenario: Loaded) -> None:
    """Time off longer than a month raises the member's version, not one per day."""
    ana = staff_id(scenario, "ana")

    def leave() -> None:
        with unit_of_work(scenario.database.sessions) as session:
            session.add(TimeOff(staff_id=ana, start_at=at(-30, 0), end_at=at(60, 0)))

    check_change(reader, leave)
    assert remaining(reader.cached(), at(2, 9)) == 2
    with scenario.database.sessions() as session:
        member = session.get(StaffMember, ana)
        assert member is not None and member.slots_version == 1
        assert session.scalar(sa.select(sa.func.count()).select_from(SlotVersion)) == 0


# --- racing: bookings and reads at once ------------------------------------------------------


def test_reads_racing_bookings_never_show_a_time_booked_before_them(
    app: Any, scenario: Loaded
) -> None:
    """Threads book the times of a day while others read it through the cache. A read sent
    after a booking's answer came back never shows that booking's place free; no time is booked
    twice."""
    starts = [at(2, 8) + timedelta(minutes=30 * n) for n in range(8)]
    done: list[tuple[float, datetime]] = []  # (answered at, start)
    reads: list[tuple[float, list[dict[str, Any]]]] = []  # (sent at, slots)
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []

    def collected(work: Callable[[int], None]) -> Callable[[int], None]:
        def run(number: int) -> None:
            try:
                work(number)
            except BaseException as error:  # a thread's failure, seen by the test
                errors.append(error)
                stop.set()

        return run

    def booker(number: int) -> None:
        client = app.test_client()
        for n, start in enumerate(starts):
            answer = client.post(
                f"{URL}/bookings",
                json={
                    "start": start.isoformat(),
                    "client": {"name": "Zoé", "email": f"b{number}-{n}@example.org"},
                    "answers": {"topic": "Maths"},
                    "consent": True,
                },
                headers={"X-Forwarded-For": f"10.2.{number}.{n}"},
            )
            if answer.status_code == 201:
                with lock:
                    done.append((time.monotonic(), start))
            else:
                assert answer.status_code in (409, 503), answer.get_json()

    def read(number: int) -> None:
        client = app.test_client()
        while not stop.is_set():
            sent = time.monotonic()
            answer = client.get(
                f"{URL}/slots?from={day(2)}&to={day(2)}",
                headers={"X-Forwarded-For": f"10.3.{number}.1"},
            )
            assert answer.status_code == 200
            with lock:
                reads.append((sent, answer.get_json()["slots"]))

    readers = [threading.Thread(target=collected(read), args=(n,)) for n in range(3)]
    bookers = [threading.Thread(target=collected(booker), args=(n,)) for n in range(4)]
    for thread in readers + bookers:
        thread.start()
    for thread in bookers:
        thread.join()
    stop.set()
    for thread in readers:
        thread.join()

    assert errors == []
    assert len(done) == 3 * len(starts)  # three consultants: every place of every time
    assert reads
    for sent, slots in reads:
        for start in starts:
            booked_before = sum(1 for answered, s in done if s == start and answered < sent)
            assert remaining(slots, start) <= 3 - booked_before, (start, booked_before)
    assert overlapping_bookings(scenario.database.engine) == 0


def test_threads_missing_the_same_days_find_them_once(app: Any, reader: Reader) -> None:
    """Eight visitors at once on days nobody kept: the staff's time is read once, the others
    wait for it and read the cache."""
    barrier = threading.Barrier(8)
    answers: list[list[dict[str, Any]]] = []

    def visit(number: int) -> None:
        client = app.test_client()
        barrier.wait()
        answer = client.get(f"{URL}/slots?from={day(2)}&to={day(4)}")
        answers.append(answer.get_json()["slots"])

    reader.statements.clear()
    threads = [threading.Thread(target=visit, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 8 and all(a == answers[0] for a in answers)
    assert len([s for s in reader.statements if "FROM time_off" in s]) == 1


# --- the store itself --------------------------------------------------------------------------


def _slots() -> tuple[Slot, ...]:
    start = at(2, 9)
    return (
        Slot(start, start + timedelta(minutes=30), (3, 1), 2, {3: 1, 1: 1}),
        Slot(start + timedelta(hours=1), start + timedelta(hours=2), (1,), 4, {1: 4}),
    )


@pytest.fixture
def redis_cache() -> Iterator[Callable[..., SlotCache]]:
    made: list[SlotCache] = []
    namespace = f"bookwise-test-{uuid.uuid4().hex[:12]}"

    def make(**options: Any) -> SlotCache:
        options = {"redis_url": REDIS_URL, "namespace": namespace} | options
        cache = SlotCache(**options)
        made.append(cache)
        return cache

    yield make
    client = redis.Redis.from_url(REDIS_URL)
    for name in client.scan_iter(f"{namespace}:*"):
        client.delete(name)
    client.close()
    for cache in made:
        cache.close()


def _full(day: Day | None) -> list[tuple[Any, ...]]:
    assert day is not None
    return [(s.start, s.end, s.staff, s.remaining, s.remaining_by_staff) for s in day.slots]


def test_two_processes_share_days_through_redis(redis_cache: Callable[..., SlotCache]) -> None:
    one, two = redis_cache(), redis_cache()
    days = [(at(2, 0), ()), (at(3, 0), ((1, 81234, 4),))]
    names = one.names(("rules", 1, ((1, 7, True),)), days)
    assert names == two.names(("rules", 1, ((1, 7, True),)), days)
    assert names != one.names(("rules", 1, ((1, 8, True),)), days)
    later = [days[0], (at(3, 0), ((1, 81234, 5),))]
    assert one.names(("rules", 1, ((1, 7, True),)), later)[0] == names[0]
    assert one.names(("rules", 1, ((1, 7, True),)), later)[1] != names[1]
    assert two.get(names, TEST_NOW) == [None, None]
    one.put({names[0]: _slots(), names[1]: ()}, TEST_NOW)
    found = two.get(names, TEST_NOW)
    assert _full(found[0]) == _full(Day.of("x", _slots())) and _full(found[1]) == []
    assert found[0] is not None and found[0].starts == tuple(
        int(s.start.timestamp()) for s in _slots()
    )
    ttl = redis.Redis.from_url(REDIS_URL).ttl(names[0])
    assert 0 < ttl <= 300


def test_a_day_held_by_an_offer_runs_out_with_it(redis_cache: Callable[..., SlotCache]) -> None:
    one, two = redis_cache(), redis_cache()
    names = one.names(("x",), [(at(2, 0), ())])
    one.put({names[0]: _slots()}, TEST_NOW, until=TEST_NOW + timedelta(seconds=90))
    assert 0 < redis.Redis.from_url(REDIS_URL).ttl(names[0]) <= 90
    assert two.get(names, TEST_NOW + timedelta(seconds=89))[0] is not None
    assert two.get(names, TEST_NOW + timedelta(seconds=90)) == [None]
    assert one.get(names, TEST_NOW + timedelta(seconds=90)) == [None]


def test_a_redis_that_does_not_answer(
    redis_cache: Callable[..., SlotCache], caplog: pytest.LogCaptureFixture
) -> None:
    """A Redis down leaves each process its own entries, said once in the log."""
    cache = redis_cache(redis_url="redis://127.0.0.1:1/0")
    names = cache.names(("x",), [(at(2, 0), ())])
    with caplog.at_level("WARNING", logger="bookwise.availability.cache"):
        assert cache.get(names, TEST_NOW) == [None]
        cache.put({names[0]: _slots()}, TEST_NOW)
        assert _full(cache.get(names, TEST_NOW)[0]) == _full(Day.of("x", _slots()))
    warnings = [r for r in caplog.records if "does not answer" in r.getMessage()]
    assert len(warnings) == 1


def test_what_is_made_of_a_day_is_made_once_and_only_of_that_day() -> None:
    cache = SlotCache()
    names = cache.names(("x",), [(at(2, 0), ())])
    cache.put({names[0]: _slots()}, TEST_NOW)
    day = cache.get(names, TEST_NOW)[0]
    assert day is not None
    made: list[str] = []

    def render(of: Day) -> list[str]:
        made.append(of.name)
        return [f"{s.remaining}" for s in of.slots]

    assert cache.rendered(day, "Europe/Paris", render) == ["2", "4"]
    assert cache.rendered(day, "Europe/Paris", render) == ["2", "4"]
    assert cache.rendered(day, "UTC", render) == ["2", "4"]
    assert len(made) == 2  # once per view
    # Found again under the same name (an offer it counted ran out): made again, of it.
    cache.put({names[0]: _slots()[:1]}, TEST_NOW)
    again = cache.get(names, TEST_NOW)[0]
    assert again is not None and again is not day
    assert cache.rendered(again, "Europe/Paris", render) == ["2"]
    assert len(made) == 3
    # What is made is counted in the memory bound: a cache too small keeps nothing made.
    small = SlotCache(memory_bytes=60)
    small_day = Day.of(names[0], _slots())
    small.rendered(small_day, "Europe/Paris", render)
    small.rendered(small_day, "Europe/Paris", render)
    assert len(made) == 5


@pytest.mark.parametrize("service", ["consult", "workshop", "review"])
@pytest.mark.parametrize("zone", ["", "&tz=America/New_York"])
def test_a_reply_from_the_cache_is_the_reply_without_it(app: Any, service: str, zone: str) -> None:
    """The same bytes, from days found afresh, kept, or with no cache at all: from today (the
    notice cuts the day) and in another zone (the window cuts the calendar's days)."""
    path = f"/api/v1/calendars/acme/services/{service}/slots?from={day(0)}&to={day(6)}{zone}"
    client = app.test_client()
    found, kept = client.get(path), client.get(path)
    bookwise = app.extensions["bookwise"]
    app.extensions["bookwise"] = dataclasses.replace(bookwise, slot_cache=None)
    try:
        plain = client.get(path)
    finally:
        app.extensions["bookwise"] = bookwise
    assert found.status_code == kept.status_code == plain.status_code == 200
    assert found.data == kept.data == plain.data
    assert found.mimetype == plain.mimetype == "application/json"
    slots = plain.get_json()["slots"]
    assert slots and all(("staff" in s) == (service == "review") for s in slots)


def test_a_value_in_redis_is_json_not_code(redis_cache: Callable[..., SlotCache]) -> None:
    cache = redis_cache()
    names = cache.names(("x",), [(at(2, 0), ())])
    cache.put({names[0]: _slots()}, TEST_NOW)
    raw = redis.Redis.from_url(REDIS_URL).get(names[0])
    assert raw is not None and raw.startswith(b'{"until":null,"slots":[[')


def test_the_app_uses_redis_when_configured(scenario: Loaded, moved: Clock) -> None:
    from bookwise.config import CacheSettings

    settings = dataclasses.replace(scenario.settings, cache=CacheSettings(storage=REDIS_URL))
    first, second = (create_app(settings, clock=moved) for _ in range(2))
    try:
        url = f"{URL}/slots?from={day(2)}&to={day(2)}"
        one = first.test_client().get(url).get_json()
        misses = SLOT_CACHE_DAYS.labels("miss")._value.get()
        assert second.test_client().get(url).get_json() == one
        assert SLOT_CACHE_DAYS.labels("miss")._value.get() == misses, "read from Redis"
        assert second.extensions["bookwise"].slot_cache.shared
    finally:
        for application in (first, second):
            namespace = application.extensions["bookwise"].slot_cache.namespace
            client = redis.Redis.from_url(REDIS_URL)
            for name in client.scan_iter(f"{namespace}:*"):
                client.delete(name)
            client.close()
            application.extensions["bookwise"].database.dispose()


def test_versions_of_days_past_are_purged(app: Any, scenario: Loaded, bookwise_cli: Any) -> None:
    book(app, at(2, 10))

    def kept() -> int:
        with scenario.database.sessions() as session:
            return int(session.scalar(sa.select(sa.func.count()).select_from(SlotVersion)) or 0)

    def run(days: int) -> str:
        instant = (TEST_NOW + timedelta(days=days)).isoformat()
        result = bookwise_cli(
            "jobs",
            "run",
            "purge-slot-versions",
            "--config",
            scenario.settings.source,
            "--at",
            instant,
        )
        assert result.exit_code == 0, result.stderr
        return str(result.stdout)

    assert kept() >= 1
    assert "purged" not in run(8)  # the booking's day is 6 days past: kept
    assert kept() >= 1
    assert run(10).strip().endswith("slot version(s) purged")
    assert kept() == 0


def test_each_process_keeps_at_most_its_memory() -> None:
    """Days beyond cache.memory_mb push out the least used; a day too big is not kept."""
    from bookwise.availability.cache import _size

    day = _slots()
    size = _size(Day.of("x", day))
    cache = SlotCache(memory_bytes=2 * size + 10)
    names = cache.names(("x",), [(at(n, 0), ()) for n in range(2, 5)])
    for name in names:
        cache.put({name: day}, TEST_NOW)
    assert [found is not None for found in cache.get(names, TEST_NOW)] == [False, True, True]
    small = SlotCache(memory_bytes=size - 1)
    small.put({names[0]: day}, TEST_NOW)  # no error: simply not kept
    assert small.get(names[:1], TEST_NOW) == [None]
