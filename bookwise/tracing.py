"""Which request (or scheduled job run) a log line or a message comes from, and how logs are
written. No Flask: the web sets the id per request (bookwise.health), the job runner per run.

- :data:`REQUEST_ID`: the id of the work in progress in this thread or task: a request's
  ``X-Request-ID`` (sent by the proxy, like nginx's ``$request_id``, or made here), or
  ``job-<name>-<8 hex>`` for a scheduled job's run. The outbox rows planned meanwhile carry it
  (``outbox.request_id``): a message is traced back to the request that caused it.
- :func:`configure_logging`: plain lines (``log_format: text``, the default) or JSON lines
  (``json``: one object per line with ``time``, ``level``, ``logger``, ``message`` and
  ``request_id``, for a log collector), written by python-json-logger.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

REQUEST_ID: ContextVar[str | None] = ContextVar("bookwise_request_id", default=None)

# What an X-Request-ID sent by a proxy may be: short, printable, nothing to break a log line.
_SANE = re.compile(r"[A-Za-z0-9._:@/+=-]{1,64}")


def current_request_id() -> str | None:
    return REQUEST_ID.get()


def request_id_from(header: str | None) -> str:
    """The id a request goes by: the proxy's ``X-Request-ID`` when it is a sane one, else a new
    one (32 hex digits)."""
    if header and _SANE.fullmatch(header):
        return header
    return uuid.uuid4().hex


@contextmanager
def traced(request_id: str) -> Iterator[str]:
    """Work done inside goes by ``request_id`` (its log lines, the messages it plans)."""
    token = REQUEST_ID.set(request_id)
    try:
        yield request_id
    finally:
        REQUEST_ID.reset(token)


def job_run_id(name: str) -> str:
    return f"job-{name}-{uuid.uuid4().hex[:8]}"


class RequestIdFilter(logging.Filter):
    """Gives every record the ``request_id`` of the work in progress (``-`` outside any)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get() or "-"
        return True


TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"


def json_formatter() -> logging.Formatter:
    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        datefmt="%Y-%m-%dT%H:%M:%S%z",
    )


def configure_logging(level: str, log_format: str = "text") -> None:
    """Log to stderr at ``level``, as plain lines or JSON lines (``log_format``); once per
    process (the first call wins, as logging.basicConfig)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(
        json_formatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    logging.basicConfig(level=level, handlers=[handler])
    # Libraries that tell of routine at INFO: a scheduler tick every few seconds, the migration
    # context at every readiness probe. Below WARNING only when Bookwise itself logs DEBUG.
    for chatty in ("apscheduler", "alembic.runtime.migration"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.root.level))
