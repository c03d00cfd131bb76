"""What a scheduled job is: a name, a function, a trigger, and whether it runs once across
every process (under a lease in the database) or in each process. Pure: no Flask, no database.

A job's function takes a :class:`JobContext` (the instance's settings, its database and plugin
host, the run's ``now``, the clock, and the instant the run was due) and returns an optional
line saying what it did (shown by ``bookwise jobs``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from bookwise.config import Settings
    from bookwise.database import Database
    from bookwise.plugins.host import PluginHost

JOB_NAME = re.compile(r"[a-z][a-z0-9_-]{0,79}")
# Declared by bookwise.scheduling.core; named here so that plugins cannot take them.
CORE_JOB_NAMES: tuple[str, ...] = (
    "deliver-outbox",
    "complete-past",
    "refresh-calendar-feeds",
    "apply-retention",
    "waitlist-offers",
    "purge-idempotency-keys",
    "purge-slot-versions",
)


class JobProblem(ValueError):
    """A job declaration that cannot be used; the message says why."""


@dataclass(frozen=True)
class Every:
    """Run every ``seconds`` seconds (the first run as soon as the job is known)."""

    seconds: float

    def __post_init__(self) -> None:
        if not isinstance(self.seconds, int | float) or self.seconds <= 0:
            raise JobProblem(f"Every(seconds={self.seconds!r}): give a number of seconds above 0")

    def first(self, now: datetime) -> datetime:
        return now

    def next_after(self, due: datetime, now: datetime) -> datetime:
        """The next due instant after a run that was due at ``due``: the same cadence, skipping
        the runs missed while nothing ran (they are not made up one by one)."""
        step = timedelta(seconds=self.seconds)
        following = due + step
        if following <= now:
            missed = (now - following) // step + 1
            following += missed * step
        return following

    def describe(self) -> str:
        seconds = self.seconds
        if seconds % 3600 == 0:
            return f"every {int(seconds // 3600)} h"
        if seconds % 60 == 0:
            return f"every {int(seconds // 60)} min"
        return f"every {seconds:g} s"


@dataclass(frozen=True)
class Daily:
    """Run once a day at ``at`` (a wall-clock time) in ``zone`` (an IANA name, UTC by default;
    a calendar's zone for work that follows its days). Across a change of the clocks, a time
    that does not exist that day runs at the same offset as the day before (zoneinfo's fold)."""

    at: time
    zone: str = "UTC"

    def __post_init__(self) -> None:
        if not isinstance(self.at, time) or self.at.tzinfo is not None:
            raise JobProblem(f"Daily(at={self.at!r}): give a time without zone, and zone=")
        try:
            ZoneInfo(self.zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise JobProblem(f"Daily(zone={self.zone!r}) is not a known time zone") from None

    def first(self, now: datetime) -> datetime:
        return self._on_or_after(now)

    def next_after(self, due: datetime, now: datetime) -> datetime:
        return self._on_or_after(max(due, now) + timedelta(seconds=1))

    def _on_or_after(self, moment: datetime) -> datetime:
        zone = ZoneInfo(self.zone)
        local = moment.astimezone(zone)
        day = local.date()
        while True:
            candidate = datetime.combine(day, self.at, tzinfo=zone).astimezone(UTC)
            if candidate >= moment:
                return candidate
            day += timedelta(days=1)

    def describe(self) -> str:
        return f"daily at {self.at.strftime('%H:%M')} {self.zone}"


Trigger = Every | Daily


@dataclass(frozen=True)
class JobContext:
    """What a job's function is given for one run."""

    settings: Settings
    database: Database
    plugins: PluginHost
    now: datetime  # when the run started, on the process's clock
    clock: Callable[[], datetime]
    due: datetime  # the instant the run was due (its identity: each is run once)
    cache: dict[str, Any] = field(default_factory=dict)  # per process and job: a client, a pool


@dataclass(frozen=True)
class Job:
    """A scheduled job.

    ``once=True`` (the default): one run for each due instant across every process, web and
    worker, on every machine; the run holds a lease of ``lease`` in the database, and when its
    process dies another takes the run over once the lease has expired (so keep a run shorter
    than its lease, or make it safe to run again). ``once=False``: every process runs it on
    its own (for work that claims its own rows, like the outbox).
    """

    name: str
    run: Callable[[JobContext], str | None]
    trigger: Trigger
    once: bool = True
    lease: timedelta = timedelta(minutes=10)
    description: str = ""

    def describe_scope(self) -> str:
        return "once" if self.once else "each process"


def check_job(job: Any, taken: Iterable[str] = ()) -> Job:
    """``job`` if it is a usable declaration; else :class:`JobProblem` saying what is wrong."""
    if not isinstance(job, Job):
        raise JobProblem(f"{job!r} is not a bookwise.plugins.Job")
    if not isinstance(job.name, str) or not JOB_NAME.fullmatch(job.name):
        raise JobProblem(
            f"job name {job.name!r} is not valid: use lowercase letters, digits, '-' and '_'"
        )
    if job.name in set(taken):
        raise JobProblem(f"another part already declares the job {job.name!r}")
    if not callable(job.run):
        raise JobProblem(f"job {job.name!r}: run is not a function")
    if not isinstance(job.trigger, Every | Daily):
        raise JobProblem(f"job {job.name!r}: trigger must be Every(...) or Daily(...)")
    if not isinstance(job.lease, timedelta) or job.lease <= timedelta(0):
        raise JobProblem(f"job {job.name!r}: lease must be a positive timedelta")
    return job
