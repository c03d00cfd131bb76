"""Scheduled jobs: the registry's decisions, the lease, complete-past, the CLI, and two worker
processes sharing one database (each due run of a ``once`` job happens once; a killed holder's
run is taken over when its lease expires)."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bookwise.bookings.models import Booking, BookingEvent
from bookwise.bookings.services import cancel_booking
from bookwise.config import Settings
from bookwise.database import Database
from bookwise.db import unit_of_work
from bookwise.scheduling.models import ScheduledJob
from bookwise.scheduling.registry import Daily, Every, Job, JobContext
from bookwise.scheduling.services import JobRunner, RunResult, claim_run, finish_run
from tests.conftest import Loaded
from tests.test_notifications import book, start_in


class SteppedClock:
    """A clock that stands still until the test moves it."""

    def __init__(self, start: datetime) -> None:
        self.at = start

    def __call__(self) -> datetime:
        return self.at


def counting_job(name: str = "count", seconds: float = 60, once: bool = True) -> tuple[Job, list]:
    runs: list[JobContext] = []

    def run(context: JobContext) -> str:
        runs.append(context)
        return f"run {len(runs)}"

    return Job(name, run, Every(seconds), once=once, lease=timedelta(minutes=1)), runs


# --- triggers (pure) ---------------------------------------------------------------------------


def test_every_keeps_its_cadence_and_skips_missed_runs(now: datetime) -> None:
    every = Every(60)
    assert every.first(now) == now
    assert every.next_after(now, now + timedelta(seconds=5)) == now + timedelta(seconds=60)
    # Down for ten minutes: the next run is the next step of the cadence, not ten catch-ups.
    late = now + timedelta(minutes=10, seconds=30)
    assert every.next_after(now, late) == now + timedelta(minutes=11)
    assert every.describe() == "every 1 min"


def test_daily_runs_at_its_local_time(now: datetime) -> None:
    daily = Daily(clock_time(3, 0), "Europe/Paris")
    start = datetime(2027, 3, 27, 12, 0, tzinfo=UTC)
    first = daily.first(start)
    assert first == datetime(2027, 3, 28, 1, 0, tzinfo=UTC)  # 03:00 CEST, the clocks went forward
    assert daily.next_after(first, first) == datetime(2027, 3, 29, 1, 0, tzinfo=UTC)
    assert daily.first(now) > now


# --- the registry decides ----------------------------------------------------------------------


def test_a_job_runs_when_due_and_not_before(
    settings: Settings, database: Database, now: datetime
) -> None:
    job, runs = counting_job(seconds=60)
    clock = SteppedClock(now)
    runner = JobRunner(settings, database, [job], clock=clock, name="test")
    assert [r.name for r in runner.tick()] == ["count"]  # due at once, the first time
    clock.at = now + timedelta(seconds=30)
    assert runner.tick() == []
    clock.at = now + timedelta(seconds=61)
    assert [r.outcome for r in runner.tick()] == ["ok"]
    assert [r.due for r in runs] == [now, now + timedelta(seconds=60)]
    assert runs[1].now == now + timedelta(seconds=61)
    with database.sessions() as session:
        row = session.get(ScheduledJob, "count")
    assert row is not None and row.lease_holder is None and row.last_outcome == "ok"
    assert row.next_run_at == now + timedelta(seconds=120)
    assert row.last_summary == "run 2"


def test_a_job_that_raises_is_recorded_failed_and_runs_again(
    settings: Settings, database: Database, now: datetime
) -> None:
    def broken(_context: JobContext) -> None:
        raise RuntimeError("no luck")

    clock = SteppedClock(now)
    runner = JobRunner(settings, database, [Job("broken", broken, Every(10))], clock=clock)
    [result] = runner.tick()
    assert result.outcome == "failed" and result.error == "RuntimeError: no luck"
    clock.at = now + timedelta(seconds=10)
    assert [r.outcome for r in runner.tick()] == ["failed"]


def test_each_process_jobs_keep_their_schedule_in_memory(
    settings: Settings, database: Database, now: datetime
) -> None:
    job, runs = counting_job(seconds=60, once=False)
    clock = SteppedClock(now)
    first = JobRunner(settings, database, [job], clock=clock, name="a")
    second = JobRunner(settings, database, [job], clock=clock, name="b")
    first.tick()
    second.tick()  # no lease: both processes run it
    assert len(runs) == 2


# --- the lease ---------------------------------------------------------------------------------


def test_a_second_claimer_is_refused_until_the_lease_expires(
    settings: Settings, database: Database, now: datetime
) -> None:
    job, _ = counting_job()
    runner = JobRunner(settings, database, [job], clock=SteppedClock(now))
    runner._prepare(now)
    assert claim_run(database, job, "a", now) == now
    assert claim_run(database, job, "b", now + timedelta(seconds=30)) is None
    assert claim_run(database, job, "b", now + timedelta(seconds=30), force=True) is None
    with pytest.raises(Exception, match="is running in a"):
        JobRunner(settings, database, [job], clock=SteppedClock(now)).run_now("count")
    # "a" died: once its lease (1 min) is over, "b" takes the same due run over.
    later = now + timedelta(seconds=61)
    assert claim_run(database, job, "b", later) == now
    done = RunResult("count", True, now, "ok", None, None, 5)
    assert finish_run(database, job, "a", now, now, done) is False  # "a" lost it
    assert finish_run(database, job, "b", now, later, done) is True
    with database.sessions() as session:
        row = session.get(ScheduledJob, "count")
    assert row is not None and row.lease_holder is None
    assert row.next_run_at == now + timedelta(seconds=120)


# --- complete-past -----------------------------------------------------------------------------


def _states(loaded: Loaded) -> dict[str, str]:
    with loaded.database.sessions() as session:
        return dict(session.execute(sa.select(Booking.uid, Booking.state)).all())


def test_complete_past_completes_what_is_over_and_nothing_else(
    scenario: Loaded, bookwise_cli: Any, tmp_path: Path, now: datetime
) -> None:
    past = book(scenario, start_in(days=1, hour=10))
    future = book(scenario, start_in(days=3, hour=10))
    cancelled = book(scenario, start_in(days=1, hour=11))
    with unit_of_work(scenario.database.sessions, write=True) as session:
        booking = session.scalars(sa.select(Booking).where(Booking.uid == cancelled)).one()
        cancel_booking(session, booking, now, plugins=None)
    after = start_in(days=1, hour=14)  # both bookings of day 1 are over; day 3 is not
    config = str(tmp_path / "scenario.yaml")
    result = bookwise_cli(
        "jobs", "run", "complete-past", "--config", config, "--at", after.isoformat()
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip().endswith(": 1 booking(s) completed")
    assert _states(scenario) == {past: "completed", future: "confirmed", cancelled: "cancelled"}
    with scenario.database.sessions() as session:
        line = session.scalars(
            sa.select(BookingEvent)
            .join(Booking, Booking.id == BookingEvent.booking_id)
            .where(Booking.uid == past)
            .order_by(BookingEvent.id.desc())
        ).first()
    assert line is not None
    assert (line.action, line.actor, line.from_state, line.to_state) == (
        "complete",
        "system",
        "confirmed",
        "completed",
    )
    assert timedelta(0) <= line.at - after < timedelta(seconds=30)  # the job's now, from --at
    # Nothing more to do: a second run completes nothing.
    again = bookwise_cli(
        "jobs", "run", "complete-past", "--config", config, "--at", after.isoformat()
    )
    assert again.exit_code == 0, again.stderr
    assert again.stdout.startswith("complete-past: ok in ") and "completed" not in again.stdout


# --- the CLI -----------------------------------------------------------------------------------


def test_jobs_lists_the_registry_with_last_runs(
    bookwise_cli: Any, config_file: Path, now: datetime
) -> None:
    before = bookwise_cli("jobs", "--config", str(config_file))
    assert before.exit_code == 0, before.stderr
    lines = before.stdout.splitlines()
    assert lines[0].split() == ["job", "trigger", "where", "owner", "last", "run", "outcome",
                                "duration", "next", "run"]  # fmt: skip
    assert lines[1].split()[:6] == ["deliver-outbox", "every", "15", "s", "each", "process"]
    assert lines[2].split()[:6] == ["complete-past", "every", "5", "min", "once", "core"]
    ran = bookwise_cli("jobs", "run", "complete-past", "--config", str(config_file),
                       "--at", now.isoformat())  # fmt: skip
    assert ran.exit_code == 0, ran.stderr
    after = bookwise_cli("jobs", "--config", str(config_file)).stdout.splitlines()
    row = after[2].split()
    assert row[0] == "complete-past" and "ok" in row and row[row.index("ok") + 2] == "s"
    stamp = now.strftime("%Y-%m-%d")
    assert stamp in after[2]


def test_jobs_run_an_unknown_name_says_which_exist(bookwise_cli: Any, config_file: Path) -> None:
    result = bookwise_cli("jobs", "run", "complete-pst", "--config", str(config_file))
    assert result.exit_code == 1
    assert "no job 'complete-pst'; did you mean 'complete-past'?" in result.stderr


# --- two worker processes ----------------------------------------------------------------------

WORKER = """
import os, sys, time
from datetime import timedelta
from bookwise.clock import parse_instant
from bookwise.config import load_settings
from bookwise.database import open_database
from bookwise.jobs import runner_for
from bookwise.scheduling.registry import Every, Job

config, start, log, mode, seconds, origin = sys.argv[1:7]
instant = parse_instant(start)

def clock():  # the same instant in every process: the test's, plus the (shared) monotonic time
    return instant + timedelta(seconds=time.monotonic() - float(origin))

def count(context):
    with open(log, "a") as handle:
        handle.write(f"{context.due.isoformat()} {os.getpid()}\\n")
    # A run takes a while, so that the other process tries to claim it meanwhile.
    time.sleep(600 if mode == "hang" else 0.3)  # "hang": killed by the test, lease held

settings = load_settings(config, environ={})
job = Job("count-runs", count, Every(1), once=True, lease=timedelta(seconds=2))
runner = runner_for(settings, open_database(settings), clock, [job])
print("ready", flush=True)
deadline = time.monotonic() + float(seconds)
while time.monotonic() < deadline:
    runner.tick()
    time.sleep(0.05)
"""


def _worker(config: Path, now: datetime, log: Path, mode: str, seconds: float) -> Any:
    origin = str(ORIGIN)  # CLOCK_MONOTONIC is one clock for every process of the machine
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            WORKER,
            str(config),
            now.isoformat(),
            str(log),
            mode,
            str(seconds),
            origin,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


ORIGIN = time.monotonic()


def _runs(log: Path) -> list[tuple[str, str]]:
    if not log.exists():
        return []
    return [tuple(line.split()) for line in log.read_text().splitlines()]  # type: ignore[misc]


@pytest.mark.slow
def test_two_workers_run_each_due_run_once(
    config_file: Path, tmp_path: Path, now: datetime
) -> None:
    log = tmp_path / "runs.log"
    workers = [_worker(config_file, now, log, "count", 6) for _ in range(2)]
    for worker in workers:
        _out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
    runs = _runs(log)
    dues = [due for due, _pid in runs]
    assert len(runs) >= 3, runs
    assert len(set(dues)) == len(dues), f"a due run happened twice: {runs}"


@pytest.mark.slow
def test_a_killed_holder_is_replaced_when_its_lease_expires(
    config_file: Path, tmp_path: Path, now: datetime
) -> None:
    log = tmp_path / "runs.log"
    holder = _worker(config_file, now, log, "hang", 60)
    deadline = time.monotonic() + 60
    while not _runs(log) and time.monotonic() < deadline:
        time.sleep(0.05)
    [(held_due, held_pid)] = _runs(log)
    holder.kill()
    holder.communicate(timeout=30)
    other = _worker(config_file, now, log, "count", 5)
    _out, err = other.communicate(timeout=120)
    assert other.returncode == 0, err
    taken_over = [(due, pid) for due, pid in _runs(log)[1:]]
    assert taken_over and taken_over[0][0] == held_due and taken_over[0][1] != held_pid
    dues = [due for due, _ in taken_over]
    assert len(set(dues)) == len(dues)


def test_every_core_job_name_is_kept_from_plugins(settings: Any) -> None:
    """A plugin cannot declare a job under a core job's name: the list that refuses them names
    every job of the core."""
    from bookwise.scheduling.core import core_jobs
    from bookwise.scheduling.registry import CORE_JOB_NAMES

    assert sorted(CORE_JOB_NAMES) == sorted(job.name for job in core_jobs(settings))
