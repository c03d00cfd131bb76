"""Background jobs, ticked by APScheduler: sending what the outbox holds.

APScheduler keeps its jobs in each process's memory, and two processes sharing one job store
would run a job twice; so it is only the ticker here. The outbox table, claimed row by row, is
the single source of truth: any number of processes can tick at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from bookwise.config import Settings
from bookwise.db import utcnow
from bookwise.instance import Database
from bookwise.notifications.delivery import Dispatcher

log = logging.getLogger(__name__)


def _tick(dispatcher: Dispatcher) -> None:
    try:
        handled = dispatcher.drain(limit=1000)
        if handled:
            log.info("outbox: %d message(s) handled", handled)
    except Exception:  # a database hiccup must not stop the ticker for good
        log.exception("outbox: delivery failed; trying again at the next tick")


def scheduler_for(
    settings: Settings,
    database: Database,
    blocking: bool = False,
    clock: Callable[[], datetime] = utcnow,
) -> BackgroundScheduler | BlockingScheduler:
    """A scheduler that delivers due messages every ``scheduler.interval`` seconds."""
    dispatcher = Dispatcher(settings, database, clock=clock)
    scheduler = BlockingScheduler() if blocking else BackgroundScheduler(daemon=True)
    scheduler.add_job(
        _tick,
        "interval",
        seconds=settings.scheduler.interval,
        args=[dispatcher],
        id="deliver-outbox",
        max_instances=1,
        coalesce=True,
        next_run_time=utcnow(),  # at start: whatever came due while the process was down
    )
    return scheduler
