"""The core's own scheduled jobs (plugins add theirs with ``bookwise_register_jobs``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from bookwise.config import Settings
from bookwise.database import Database
from bookwise.plugins.host import PluginHost
from bookwise.scheduling.registry import Daily, Every, Job, JobContext
from bookwise.scheduling.services import job_rows

COMPLETE_PAST_EVERY = 300  # seconds
# How often the job looks for due calendar sources; each source's own pace is
# feeds.refresh_minutes (and its back-off after failures).
REFRESH_FEEDS_EVERY = 60  # seconds
# Retention runs once a day at a quiet hour (UTC): see bookwise.privacy.retention.
RETENTION_AT = time(3, 30)
WAITLIST_OFFERS_EVERY = 60  # seconds: a held place waits at most this long past its hold
PURGE_IDEMPOTENCY_KEYS_EVERY = 3600  # seconds: a key lives at most this long past its hours
PURGE_SLOT_VERSIONS_AT = time(3, 45)  # UTC, daily: a quiet hour, after the retention


def deliver_outbox(context: JobContext) -> str | None:
    """Send what the outbox holds. It claims its own rows, so every process may run it."""
    from bookwise.notifications.delivery import Dispatcher

    dispatcher = context.cache.get("dispatcher")
    if not isinstance(dispatcher, Dispatcher):
        dispatcher = Dispatcher(context.settings, context.database, clock=context.clock)
        context.cache["dispatcher"] = dispatcher
    handled = dispatcher.drain(limit=1000)
    return f"{handled} message(s) handled" if handled else None


def complete_past(context: JobContext) -> str | None:
    """Complete the bookings whose end has passed (see bookwise.bookings.completion)."""
    from bookwise.bookings.completion import complete_past_bookings

    done = complete_past_bookings(context.database.sessions, context.now, context.plugins)
    return f"{done} booking(s) completed" if done else None


def refresh_calendar_feeds(context: JobContext) -> str | None:
    """Read the staff members' own calendars that are due (see bookwise.calendars.sources)."""
    from bookwise.calendars.sources import refresh_sources

    outcomes = refresh_sources(context.database.sessions, context.settings.feeds, context.now)
    if not outcomes:
        return None
    failed = sum(1 for o in outcomes if o.outcome == "failed")
    return f"{len(outcomes)} calendar(s) read, {failed} failed"


def apply_retention(context: JobContext) -> str | None:
    """Apply the workflows' retention (see bookwise.privacy.retention), audited per calendar
    and workflow."""
    from bookwise.config import secret_key_of
    from bookwise.privacy.retention import run_retention

    done = run_retention(
        context.database.sessions, context.now, secret=secret_key_of(context.settings)
    )
    if done.empty:
        return None
    return (
        f"{done.answers} booking(s) without answers, {done.clients} client(s) erased, "
        f"{done.messages} message(s) purged, {done.entries} waitlist entries erased"
    )


def expire_waitlist_offers(context: JobContext) -> str | None:
    """Expire the waitlist offers not taken in time and offer each place to the next in line
    (see bookwise.bookings.offers); safe in several processes at once."""
    from bookwise.bookings.offers import expire_offers
    from bookwise.db import unit_of_work

    with unit_of_work(context.database.sessions, write=True) as session:
        expired = expire_offers(session, context.now)
    return f"{expired} waitlist offer(s) expired" if expired else None


def purge_idempotency_keys(context: JobContext) -> str | None:
    """Delete the API's idempotency keys older than ``api.idempotency_hours`` (see
    bookwise.bookings.idempotency); one DELETE, safe in several processes at once."""
    from bookwise.bookings.idempotency import purge_expired

    purged = purge_expired(
        context.database.sessions, context.now, context.settings.api.idempotency_hours
    )
    return f"{purged} idempotency key(s) purged" if purged else None


def purge_slot_versions(context: JobContext) -> str | None:
    """Delete the slot cache's versions of past days (see
    bookwise.availability.services.purge_slot_versions); one DELETE."""
    from bookwise.availability.services import purge_slot_versions as purge
    from bookwise.db import unit_of_work

    with unit_of_work(context.database.sessions, write=True) as session:
        purged = purge(session, context.now)
    return f"{purged} slot version(s) purged" if purged else None


def core_jobs(settings: Settings) -> list[Job]:
    return [
        Job(
            "deliver-outbox",
            deliver_outbox,
            Every(settings.scheduler.interval),
            once=False,  # the outbox is claimed row by row: any number of processes may drain it
            lease=timedelta(minutes=5),
            description="send the due messages of the outbox",
        ),
        Job(
            "complete-past",
            complete_past,
            Every(COMPLETE_PAST_EVERY),
            once=True,
            lease=timedelta(minutes=10),
            description="complete the bookings whose end has passed",
        ),
        Job(
            "refresh-calendar-feeds",
            refresh_calendar_feeds,
            Every(REFRESH_FEEDS_EVERY),
            once=True,  # one process reads each calendar address, under the lease
            lease=timedelta(minutes=30),
            description="read staff members' own calendars for the times they are busy",
        ),
        Job(
            "apply-retention",
            apply_retention,
            Daily(RETENTION_AT),
            once=True,  # one process erases, under the lease
            lease=timedelta(hours=1),
            description="remove the answers, clients and messages past their workflow's retention",
        ),
        Job(
            "waitlist-offers",
            expire_waitlist_offers,
            Every(WAITLIST_OFFERS_EVERY),
            once=True,
            lease=timedelta(minutes=5),
            description="expire waitlist offers not taken in time; offer each place to the next",
        ),
        Job(
            "purge-idempotency-keys",
            purge_idempotency_keys,
            Every(PURGE_IDEMPOTENCY_KEYS_EVERY),
            once=True,
            lease=timedelta(minutes=10),
            description="delete the API's idempotency keys older than api.idempotency_hours",
        ),
        Job(
            "purge-slot-versions",
            purge_slot_versions,
            Daily(PURGE_SLOT_VERSIONS_AT),
            once=True,
            lease=timedelta(minutes=10),
            description="delete the slot cache's versions of days past",
        ),
    ]


def all_jobs(settings: Settings, plugins: PluginHost) -> list[Job]:
    """The registry: the core's jobs, then the enabled plugins'."""
    return [*core_jobs(settings), *plugins.jobs.values()]


@dataclass(frozen=True)
class JobStatus:
    """One job as ``bookwise jobs`` and the back office show it."""

    name: str
    trigger: str
    scope: str
    owner: str
    description: str
    last_started_at: datetime | None
    outcome: str | None  # ok, failed, running; None before its first run
    duration_ms: int | None
    next_run_at: datetime | None
    last_error: str | None
    summary: str | None


def job_statuses(settings: Settings, database: Database) -> list[JobStatus]:
    """Every job of the registry with its last run, outcome, duration and next run."""
    rows = job_rows(database)
    statuses = []
    for job in all_jobs(settings, database.plugins):
        row = rows.get(job.name)
        outcome = None
        if row is not None:
            outcome = "running" if row.lease_holder is not None else row.last_outcome
        statuses.append(
            JobStatus(
                name=job.name,
                trigger=job.trigger.describe(),
                scope=job.describe_scope(),
                owner=database.plugins.job_owner(job.name) or "core",
                description=job.description,
                last_started_at=row.last_started_at if row else None,
                outcome=outcome,
                duration_ms=row.last_duration_ms if row else None,
                next_run_at=row.next_run_at if row else None,
                last_error=row.last_error if row else None,
                summary=row.last_summary if row else None,
            )
        )
    return statuses
