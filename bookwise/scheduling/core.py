"""The core's own scheduled jobs (plugins add theirs with ``bookwise_register_jobs``)."""

from __future__ import annotations

from datetime import timedelta

from bookwise.config import Settings
from bookwise.plugins.host import PluginHost
from bookwise.scheduling.registry import Every, Job, JobContext

COMPLETE_PAST_EVERY = 300  # seconds


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

    done = complete_past_bookings(context.database.sessions, context.now)
    return f"{done} booking(s) completed" if done else None


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
    ]


def all_jobs(settings: Settings, plugins: PluginHost) -> list[Job]:
    """The registry: the core's jobs, then the enabled plugins'."""
    return [*core_jobs(settings), *plugins.jobs.values()]
