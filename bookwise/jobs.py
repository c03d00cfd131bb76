"""The ticker of scheduled work: APScheduler calls :meth:`JobRunner.tick` at a fixed interval.

APScheduler keeps its jobs in each process's memory, and two processes sharing one job store
would run a job twice; so it is only the ticker here. The registry (the core's jobs and the
plugins', :mod:`bookwise.scheduling`) decides what is due, and the database's leases make a
``once`` job run once across every web and worker process. See docs/jobs.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from bookwise.clock import system_clock
from bookwise.config import Settings
from bookwise.database import Database
from bookwise.db import utcnow
from bookwise.scheduling.core import all_jobs
from bookwise.scheduling.registry import Job
from bookwise.scheduling.services import JobRunner


def runner_for(
    settings: Settings,
    database: Database,
    clock: Callable[[], datetime] = system_clock,
    jobs: Sequence[Job] | None = None,
) -> JobRunner:
    """A runner of the registry's jobs (or of ``jobs``) for this process, on ``clock``."""
    registry = list(jobs) if jobs is not None else all_jobs(settings, database.plugins)
    return JobRunner(settings, database, registry, clock=clock)


def scheduler_for(
    settings: Settings,
    database: Database,
    blocking: bool = False,
    clock: Callable[[], datetime] = system_clock,
    jobs: Sequence[Job] | None = None,
    tick: float | None = None,
) -> BackgroundScheduler | BlockingScheduler:
    """A scheduler that asks the registry for due jobs every ``tick`` seconds (by default
    ``scheduler.interval``, which is also the outbox's cadence)."""
    runner = runner_for(settings, database, clock=clock, jobs=jobs)
    scheduler = BlockingScheduler() if blocking else BackgroundScheduler(daemon=True)
    scheduler.add_job(
        runner.tick,
        "interval",
        seconds=tick or settings.scheduler.interval,
        id="scheduled-jobs",
        max_instances=1,
        coalesce=True,
        next_run_time=utcnow(),  # at start: whatever came due while the process was down
    )
    return scheduler
