"""Prometheus metrics (``/metrics``, docs/deployment.md "What to watch").

Counters and histograms live in each process, as ``prometheus_client`` keeps them; under gunicorn
(several worker processes) set ``PROMETHEUS_MULTIPROC_DIR`` to an empty folder shared by the web
processes and ``/metrics`` adds theirs up (the library's multiprocess mode). What the database
knows is read when ``/metrics`` is asked, so that every web and worker process, on every machine,
counts the same: the outbox's depth and the age of its oldest due message, the messages by
channel and state, the scheduled jobs' last runs.

The names are ``bookwise_...``; the labels are few and bounded (an endpoint, a method, a status
class, a channel, a source), never a calendar, a client or a URL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from bookwise.database import Database

__all__ = ["CONTENT_TYPE_LATEST"]

# Seconds: a page or an API call (most under 0.1 s), a slow slot search (up to seconds).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUEST_SECONDS = Histogram(
    "bookwise_request_seconds",
    "Time to answer a request, by endpoint (the view's name), method and status class",
    ["endpoint", "method", "status"],
    buckets=LATENCY_BUCKETS,
)
BOOKINGS_MADE = Counter(
    "bookwise_bookings_made",
    "Bookings made and committed, by where they came from (public, api, admin, waitlist)",
    ["source"],
)
SLOT_SEARCH_SECONDS = Histogram(
    "bookwise_slot_search_seconds",
    "Time to find a service's free slots (the reading of the inputs and the engine)",
    buckets=LATENCY_BUCKETS,
)
SLOTS_FOUND = Counter("bookwise_slots_found", "Free slots found by the slot searches")
SLOT_CACHE_DAYS = Counter(
    "bookwise_slot_cache_days",
    "Days of slots the slot searches asked the slot cache for, by result (hit: kept; miss: "
    "found, then kept)",
    ["result"],
)
DELIVERIES = Counter(
    "bookwise_deliveries",
    "Messages handled by this process's outbox, by channel and result (sent, failed, dead, "
    "skipped, held)",
    ["channel", "result"],
)


def status_class(code: int) -> str:
    """``200`` -> ``2xx``: a bounded label."""
    return f"{code // 100}xx"


def booking_made(source: str, count: int = 1) -> None:
    """Count bookings once their transaction committed (``source``: public, api, admin, ...)."""
    BOOKINGS_MADE.labels(source=source).inc(count)


class DatabaseCollector(Collector):
    """What every process shares, read from the database at each scrape."""

    def __init__(self, database: Database, now: datetime) -> None:
        self.database = database
        self.now = now

    def collect(self) -> Iterator[Metric]:
        from bookwise.notifications.models import Notification
        from bookwise.scheduling.models import ScheduledJob

        waiting = Notification.state.in_(("pending", "failed", "sending"))
        with self.database.sessions() as session:
            depth, oldest = session.execute(
                select(func.count(Notification.id), func.min(Notification.due_at)).where(
                    waiting, Notification.due_at <= self.now
                )
            ).one()
            by_state = session.execute(
                select(Notification.channel, Notification.state, func.count(Notification.id))
                .group_by(Notification.channel, Notification.state)
                .order_by(Notification.channel, Notification.state)
            ).all()
            jobs = session.execute(
                select(
                    ScheduledJob.name,
                    ScheduledJob.last_started_at,
                    ScheduledJob.last_outcome,
                    ScheduledJob.last_duration_ms,
                ).order_by(ScheduledJob.name)
            ).all()
        yield _gauge(
            "bookwise_outbox_due",
            "Messages due now and not yet sent (pending, failed, sending)",
            depth,
        )
        age = (self.now - _aware(oldest)).total_seconds() if oldest is not None else 0.0
        yield _gauge(
            "bookwise_outbox_oldest_due_seconds",
            "How long the oldest message due has waited (0: none waits)",
            max(age, 0.0),
        )
        messages = GaugeMetricFamily(
            "bookwise_outbox_messages",
            "Messages of the outbox by channel and state (retention purges old ones)",
            labels=["channel", "state"],
        )
        for channel, state, count in by_state:
            messages.add_metric([channel, state], count)
        yield messages
        last = GaugeMetricFamily(
            "bookwise_job_last_started_seconds",
            "Seconds since each scheduled job last started",
            labels=["job"],
        )
        failed = GaugeMetricFamily(
            "bookwise_job_last_failed", "1 when a job's last run failed", labels=["job"]
        )
        for name, started, outcome, _duration in jobs:
            if started is not None:
                last.add_metric([name], (self.now - _aware(started)).total_seconds())
            failed.add_metric([name], 1.0 if outcome == "failed" else 0.0)
        yield last
        yield failed


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def exposition(database: Database, now: datetime) -> bytes:
    """The text ``/metrics`` answers: this process's metrics (or, in multiprocess mode, every
    web process's), then the database's."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        out = generate_latest(registry)
    else:
        from prometheus_client import REGISTRY

        out = generate_latest(REGISTRY)
    shared = CollectorRegistry()
    shared.register(DatabaseCollector(database, now))
    return out + generate_latest(shared)
