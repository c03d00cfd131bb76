"""The slot cache: a service's free slots, a local day at a time, as found whatever the time of
asking (bookwise.availability.engine.find_slots_any_time), kept in the process (at most
``cache.memory_mb``, the least used forgotten first) and, when
``cache.storage`` is a ``redis://`` address, in Redis for every web process.

An entry is never invalidated: it is named after everything the day's slots were found from,
so that a change makes a new name and the old entry is no longer asked for (it runs out after
``cache.slots_seconds``). The name holds:

- the versions of the staff's time (``slot_versions``: per member and block of six hours; a
  member's ``slots_version`` for changes longer than a month) and of the calendar's hours
  (``calendars.slots_version``), raised by the database in the transaction of any change
  (migration 0022), read in the same session as, and before, the rows the slots are found
  from. A day's name holds the versions of the blocks its starts, their length and buffers
  reach: a booking makes its own day be found again, not the month;
- the pool, in its order, with whose hours each member keeps;
- the service's rules (duration, step, buffers, capacity, sessions, time zone);
- what the search counts (the staff asked for, bookings or not), and the day.

So a search that reads a version after a booking's commit never reads an entry found before
it, on any process; an entry read from a lagging replica was found from that replica. What is
kept does not depend on the clock: the booking window (notice, how far ahead) cuts it when
asked (``in_booking_window``). The one thing the versions do not follow is a waitlist offer
running out: the slot it held stays held here until the job that ends offers has run, or the
entry has run out (a slot shown taken that is free, never the reverse).

A Redis that fails is left alone for :data:`REDIS_REST` seconds, said once in the log: the
process keeps its own entries meanwhile. Entries in Redis are JSON, never pickles: a value read
from Redis must not be able to run code.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis
from cachetools import TTLCache

from bookwise.availability.engine import Slot
from bookwise.config import CacheSettings

log = logging.getLogger(__name__)

# Raised when what an entry holds, or how it is found, changes: entries of older code are not
# read by newer (several versions of Bookwise may share a Redis during a rolling upgrade).
FORMAT = b"slots/1"
# How long a Redis that failed is left alone (seconds).
REDIS_REST = 30
# How long Bookwise waits for Redis before doing without it (seconds): a slow cache must not
# slow the page more than the search it saves.
REDIS_TIMEOUT = 0.25


@dataclass(frozen=True)
class Day:
    """A day of slots as kept: its name, its slots by start, and their starts in UTC seconds
    (to cut the day at the booking window by bisection, without reading each slot)."""

    name: str
    slots: tuple[Slot, ...]
    starts: tuple[int, ...] = field(repr=False)

    @classmethod
    def of(cls, name: str, slots: Sequence[Slot]) -> Day:
        return cls(name, tuple(slots), tuple(int(slot.start.timestamp()) for slot in slots))


# What a caller made of a day (SlotCache.rendered): the day, weakly (a day forgotten by the cache
# is not kept alive by what was made of it), and the texts.
_Made = tuple[weakref.ref[Day], list[str]]


class SlotCache:
    """Days of slots by name, in this process (the last used, up to ``memory_bytes``) and, with
    ``redis_url``, in Redis, shared. Safe to use from several threads."""

    def __init__(
        self,
        *,
        seconds: int = 300,
        memory_bytes: int = 64 * 2**20,
        redis_url: str | None = None,
        namespace: str = "bookwise",
    ) -> None:
        self.seconds = seconds
        self.namespace = namespace
        # name -> (until when it holds, UTC seconds; the day), and (name, view) -> what a
        # caller made of that day (:meth:`rendered`): at most ``memory_bytes`` of them as
        # _size counts, the least recently used forgotten first.
        self._local: TTLCache[Hashable, tuple[float, Day | _Made]] = TTLCache(
            maxsize=memory_bytes, ttl=seconds, getsizeof=lambda entry: _size(entry[1])
        )
        self._lock = threading.Lock()
        # The days being found in this process: name -> (its lock, the threads holding or
        # waiting for it).
        self._finding: dict[str, tuple[threading.Lock, int]] = {}
        self._redis = (
            redis.Redis.from_url(
                redis_url,
                socket_timeout=REDIS_TIMEOUT,
                socket_connect_timeout=REDIS_TIMEOUT,
                health_check_interval=30,
            )
            if redis_url
            else None
        )
        self._redis_down_until = 0.0

    @property
    def shared(self) -> bool:
        """Whether entries are shared with other processes (Redis configured)."""
        return self._redis is not None

    def names(
        self, found_from: Iterable[object], days: Sequence[tuple[datetime, object]]
    ) -> list[str]:
        """The entries' names of ``days`` (each a day's start, and the versions of the days its
        slots are found from) for a search that reads ``found_from`` (the calendar's version,
        the pool, the rules, what it counts: see the module's docstring)."""
        digest = hashlib.blake2b(FORMAT, digest_size=16)
        digest.update(repr(tuple(found_from)).encode())
        prefix = f"{self.namespace}:slots:"
        names = []
        for start, versions in days:
            one = digest.copy()
            one.update(repr((int(start.timestamp()), versions)).encode())
            names.append(prefix + one.hexdigest())
        return names

    def get(self, names: Sequence[str], now: datetime) -> list[Day | None]:
        """The days kept under ``names`` (None: not kept, or kept until before ``now``), from
        this process, then Redis."""
        at = now.timestamp()
        with self._lock:
            entries = [self._local.get(name) for name in names]
        found: list[Day | None] = [
            e[1] if e is not None and at < e[0] and isinstance(e[1], Day) else None for e in entries
        ]
        missing = [i for i, day in enumerate(found) if day is None]
        client = self._client()
        if not missing or client is None:
            return found
        try:
            values: list[bytes | None] = client.mget([names[i] for i in missing])  # type: ignore[assignment]
        except redis.RedisError as exc:
            self._rest(exc)
            return found
        kept = {}
        for i, value in zip(missing, values, strict=True):
            if value is None:
                continue
            until, slots = _decode(value)
            if at < until:
                found[i] = day = Day.of(names[i], slots)
                kept[names[i]] = (until, day)
        if kept:
            with self._lock:
                for name, entry in kept.items():
                    if _size(entry[1]) <= self._local.maxsize:
                        self._local[name] = entry
        return found

    def put(
        self, days: dict[str, Sequence[Slot]], now: datetime, until: datetime | None = None
    ) -> list[Day]:
        """Keep ``days`` (name to slots) here and in Redis, for ``seconds`` from ``now`` or
        until ``until`` (a waitlist offer they count runs out), whichever comes first; the
        days, as :meth:`get` gives them."""
        made = [Day.of(name, slots) for name, slots in days.items()]
        end = math.inf if until is None else until.timestamp()
        seconds = (
            self.seconds if until is None else min(self.seconds, math.ceil(end - now.timestamp()))
        )
        if seconds <= 0 or not days:
            return made
        with self._lock:
            for day in made:
                if _size(day) <= self._local.maxsize:  # else cachetools refuses it
                    self._local[day.name] = (end, day)
        client = self._client()
        if client is None:
            return made
        try:
            with client.pipeline(transaction=False) as pipe:
                for day in made:
                    pipe.set(day.name, _encode(end, day.slots), ex=seconds)
                pipe.execute()
        except redis.RedisError as exc:
            self._rest(exc)
        return made

    def rendered(self, day: Day, view: Hashable, render: Callable[[Day], list[str]]) -> list[str]:
        """What ``render`` makes of ``day`` for ``view`` (a client's time zone, say: one JSON
        text per slot), made once and kept in this process beside the day. It is kept for that
        very day: a day found again under the same name (its waitlist offer ran out) is made
        again. Each process makes its own: it is cheap beside a search."""
        key = (day.name, view)
        with self._lock:
            entry = self._local.get(key)
        if entry is not None and isinstance(entry[1], tuple) and entry[1][0]() is day:
            return entry[1][1]
        made = render(day)
        kept: _Made = (weakref.ref(day), made)
        with self._lock:
            if _size(kept) <= self._local.maxsize:
                self._local[key] = (math.inf, kept)
        return made

    @contextmanager
    def finding(self, name: str) -> Iterator[None]:
        """Held while this process finds the day ``name``: a second thread that misses the
        same day waits, then reads what the first kept, instead of finding it too (after a
        booking, every visitor of its day misses at once)."""
        with self._lock:
            lock, users = self._finding.get(name, (threading.Lock(), 0))
            self._finding[name] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._lock:
                lock, users = self._finding[name]
                if users == 1:
                    del self._finding[name]
                else:
                    self._finding[name] = (lock, users - 1)

    def clear(self) -> None:
        """Forget this process's entries (Redis's run out by themselves)."""
        with self._lock:
            self._local.clear()

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()

    def _client(self) -> redis.Redis | None:
        if self._redis is None or time.monotonic() < self._redis_down_until:
            return None
        return self._redis

    def _rest(self, exc: Exception) -> None:
        self._redis_down_until = time.monotonic() + REDIS_REST
        log.warning(
            "the slot cache's Redis (cache.storage) does not answer (%s): each process keeps "
            "its own slots for %d s",
            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
            REDIS_REST,
        )


def _size(kept: Day | _Made) -> int:
    """About how many bytes a day (or what was made of it) takes in memory. A day, measured
    with tracemalloc (33 starts of 50 staff each, about 88 KB): most of it is each slot's staff
    and places; a text, its length and a string's header."""
    if isinstance(kept, tuple):
        return 56 + sum(49 + len(text) for text in kept[1])
    return 100 + sum(186 + 56 * len(slot.staff) for slot in kept.slots)


def _encode(until: float, slots: Iterable[Slot]) -> bytes:
    """A day's slots as JSON: until when they hold (UTC seconds, null: until they run out), and
    each slot as ``[start, end, [staff], remaining, [remaining by staff]]``, times in UTC
    seconds."""
    return json.dumps(
        {
            "until": None if until == math.inf else until,
            "slots": [
                [
                    int(s.start.timestamp()),
                    int(s.end.timestamp()),
                    s.staff,
                    s.remaining,
                    [s.remaining_by_staff[m] for m in s.staff],
                ]
                for s in slots
            ],
        },
        separators=(",", ":"),
    ).encode()


def _decode(value: bytes) -> tuple[float, tuple[Slot, ...]]:
    entry = json.loads(value)
    until = math.inf if entry["until"] is None else float(entry["until"])
    return until, tuple(
        Slot(
            start=datetime.fromtimestamp(start, UTC),
            end=datetime.fromtimestamp(end, UTC),
            staff=tuple(staff),
            remaining=remaining,
            remaining_by_staff=dict(zip(staff, by_staff, strict=True)),
        )
        for start, end, staff, remaining, by_staff in entry["slots"]
    )


def slot_cache_for(settings: CacheSettings, database_url: str) -> SlotCache:
    """The instance's slot cache; its names in Redis carry the database's digest, so that
    instances sharing a Redis never read each other's."""
    return SlotCache(
        seconds=settings.slots_seconds,
        memory_bytes=settings.memory_mb * 2**20,
        redis_url=settings.redis_url,
        namespace="bookwise-" + hashlib.sha256(database_url.encode()).hexdigest()[:12],
    )
