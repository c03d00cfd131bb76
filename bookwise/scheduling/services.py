"""Deciding what is due and running it, once across every process when the job asks for it.

Each job has a row in ``scheduled_jobs``. A run of a ``once`` job is claimed by one UPDATE
(``WHERE name = ? AND next_run_at <= now AND (lease_until IS NULL OR lease_until < now)``) in
its own short write transaction; its row count says whether this process won the run. On
PostgreSQL a second claimer waits for the first's commit and then finds the condition false;
on SQLite the write transaction holds the database's write lock. The winner runs the job
outside any transaction of ours, then records the outcome and the next due instant, and frees
the lease, in a second short transaction (only if it still holds the lease). A process that
dies leaves a lease that expires; the run, still due, is then taken by another.

Jobs that may run in every process (``once=False``) keep their next due instant in the
process's memory; their last run is still recorded, for ``bookwise jobs``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bookwise.clock import system_clock
from bookwise.config import Settings
from bookwise.database import Database
from bookwise.db import unit_of_work
from bookwise.errors import BookwiseError, did_you_mean
from bookwise.notifications.delivery import worker_name
from bookwise.scheduling.models import ScheduledJob
from bookwise.scheduling.registry import Job, JobContext
from bookwise.tracing import job_run_id, traced

log = logging.getLogger("bookwise.jobs")


class UnknownJob(BookwiseError):
    """No job has this name."""


class JobBusy(BookwiseError):
    """Another process holds the job's lease."""


@dataclass(frozen=True)
class RunResult:
    """What one attempt to run a job did."""

    name: str
    ran: bool
    due: datetime | None = None
    outcome: str | None = None  # ok, failed
    summary: str | None = None
    error: str | None = None
    duration_ms: int | None = None


def _insert_ignoring_existing(session: Session, rows: list[dict[str, object]]) -> None:
    """Insert job rows; a row another process inserted meanwhile is left as it is."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(ScheduledJob).values(rows).on_conflict_do_nothing(index_elements=["name"])
    )


def ensure_job_rows(database: Database, jobs: Iterable[Job], now: datetime) -> None:
    """Give every job its row (first due instant from its trigger), once."""
    jobs = list(jobs)
    with database.sessions() as session:
        known = set(session.scalars(select(ScheduledJob.name)))
    missing = [
        {"name": job.name, "next_run_at": job.trigger.first(now)}
        for job in jobs
        if job.name not in known
    ]
    if missing:
        with unit_of_work(database.sessions, write=True) as session:
            _insert_ignoring_existing(session, missing)


def claim_run(
    database: Database, job: Job, holder: str, now: datetime, force: bool = False
) -> datetime | None:
    """Take the lease of ``job`` for ``holder`` if a run is due (or at once with ``force``)
    and no live lease is held; the run's due instant, or None when not taken."""
    conditions = [
        ScheduledJob.name == job.name,
        or_(ScheduledJob.lease_until.is_(None), ScheduledJob.lease_until < now),
    ]
    if not force:
        conditions.append(ScheduledJob.next_run_at <= now)
    with unit_of_work(database.sessions, write=True) as session:
        claimed = session.execute(
            update(ScheduledJob)
            .where(*conditions)
            .values(lease_holder=holder, lease_until=now + job.lease, last_started_at=now)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        due: datetime = session.scalars(
            select(ScheduledJob.next_run_at).where(ScheduledJob.name == job.name)
        ).one()
        return due


def finish_run(
    database: Database,
    job: Job,
    holder: str | None,
    due: datetime,
    started: datetime,
    result: RunResult,
    next_run_at: datetime | None = None,
) -> bool:
    """Record a run's outcome and the next due instant, and free the lease; False when the
    lease was lost meanwhile (it expired and another process took the run)."""
    finished = started + timedelta(milliseconds=result.duration_ms or 0)
    following = next_run_at
    if following is None:
        following = job.trigger.next_after(due, started) if due <= started else due
    values = {
        "last_finished_at": finished,
        "last_outcome": result.outcome,
        "last_error": result.error,
        "last_summary": (result.summary or "")[:500] or None,
        "last_duration_ms": result.duration_ms,
        "next_run_at": following,
    }
    condition = [ScheduledJob.name == job.name]
    if holder is not None:
        condition.append(ScheduledJob.lease_holder == holder)
        values |= {"lease_holder": None, "lease_until": None}
    else:
        values["last_started_at"] = started
    with unit_of_work(database.sessions, write=True) as session:
        done = session.execute(
            update(ScheduledJob)
            .where(*condition)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(done.rowcount)  # type: ignore[attr-defined]


class JobRunner:
    """Runs the registry's due jobs for one process; :meth:`tick` is what APScheduler calls."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        jobs: Sequence[Job],
        clock: Callable[[], datetime] = system_clock,
        name: str | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.jobs = {job.name: job for job in jobs}
        self.clock = clock
        self.name = name or worker_name()
        self._next: dict[str, datetime] = {}  # jobs run in each process: their next due instant
        self._caches: dict[str, dict[str, object]] = {}
        self._rows_ready = False

    def job(self, name: str) -> Job:
        """The job named ``name``; :class:`UnknownJob` (with a did-you-mean) otherwise."""
        job = self.jobs.get(name)
        if job is None:
            raise UnknownJob(
                f"no job {name!r}{did_you_mean(name, self.jobs)} "
                f"(known: {', '.join(sorted(self.jobs)) or 'none'}); see bookwise jobs"
            )
        return job

    def _prepare(self, now: datetime) -> None:
        if not self._rows_ready:
            ensure_job_rows(self.database, self.jobs.values(), now)
            self._rows_ready = True

    def tick(self) -> list[RunResult]:
        """Run every job that is due now (each in turn); never raises."""
        results: list[RunResult] = []
        try:
            self._prepare(self.clock())
        except Exception:  # a database hiccup must not stop the ticker for good
            log.exception("jobs: could not read the scheduled jobs; trying at the next tick")
            return results
        for job in self.jobs.values():
            try:
                result = self._run(job, force=False)
            except Exception:
                log.exception("job %s: could not be claimed or recorded; next tick", job.name)
                continue
            if result.ran:
                results.append(result)
        return results

    def run_now(self, name: str) -> RunResult:
        """Run one job now, whether due or not (with its lease when it is a ``once`` job);
        :class:`JobBusy` when another process is running it."""
        job = self.job(name)
        self._prepare(self.clock())
        result = self._run(job, force=True)
        if not result.ran:
            with self.database.sessions() as session:
                row = session.get(ScheduledJob, job.name)
            holder = row.lease_holder if row is not None else None
            until = row.lease_until.isoformat() if row and row.lease_until else "?"
            raise JobBusy(f"job {name!r} is running in {holder} (lease until {until}); try later")
        return result

    def _run(self, job: Job, force: bool) -> RunResult:
        now = self.clock()
        if not job.once:
            due = self._next.setdefault(job.name, job.trigger.first(now))
            if due > now and not force:
                return RunResult(job.name, ran=False)
            result = self._execute(job, due, now)
            following = job.trigger.next_after(due, now) if due <= now else due
            self._next[job.name] = following
            finish_run(self.database, job, None, due, now, result, next_run_at=following)
            return result
        holder = f"{self.name}/{uuid.uuid4().hex[:8]}"
        claimed = claim_run(self.database, job, holder, now, force=force)
        if claimed is None:
            return RunResult(job.name, ran=False)
        result = self._execute(job, claimed, now)
        if not finish_run(self.database, job, holder, claimed, now, result):
            log.warning(
                "job %s: the run took longer than its lease (%s); another process may have "
                "run it too: give it a longer lease",
                job.name,
                job.lease,
            )
        return result

    def _execute(self, job: Job, due: datetime, now: datetime) -> RunResult:
        context = JobContext(
            settings=self.settings,
            database=self.database,
            plugins=self.database.plugins,
            now=now,
            clock=self.clock,
            due=due,
            cache=self._caches.setdefault(job.name, {}),
        )
        started = time.monotonic()
        try:
            # Its log lines and the messages it plans go by this run's id (bookwise.tracing).
            with traced(job_run_id(job.name)):
                summary = job.run(context)
        except Exception as exc:
            duration = round((time.monotonic() - started) * 1000)
            log.exception("job %s failed", job.name)
            owner = self.database.plugins.job_owner(job.name)
            if owner is not None:
                self.database.plugins.failed(owner, f"job {job.name!r}", exc)
            error = f"{type(exc).__name__}: {exc}"[:2000]
            return RunResult(job.name, True, due, "failed", None, error, duration)
        duration = round((time.monotonic() - started) * 1000)
        if summary:
            log.info("job %s: %s", job.name, summary)
        return RunResult(job.name, True, due, "ok", summary or None, None, duration)


def job_rows(database: Database) -> dict[str, ScheduledJob]:
    """Every job's row, by name (for ``bookwise jobs`` and the back office)."""
    with database.sessions() as session:
        return {row.name: row for row in session.scalars(select(ScheduledJob))}
