"""What load balancers and monitoring ask (docs/deployment.md, "What to watch").

- ``/healthz``: the process answers (liveness): nothing else is looked at, so that a slow
  database does not get healthy processes restarted.
- ``/readyz``: the process can serve (readiness): the database answers and its schema is at the
  latest migration; 503 otherwise, saying which. It also tells when the scheduled jobs last ran
  (any process, any machine: their rows in the database), for an alert; a stopped worker does not
  make the web processes unready, since they still serve.
- ``/metrics``: Prometheus's text (bookwise.metrics), to the networks of
  ``monitoring.metrics_from`` only.

Each request's time is observed here too, by endpoint, method and status class; and each goes
by a request id (the proxy's ``X-Request-ID``, or a new one; sent back in the answer), which its
log lines and the messages it plans carry (bookwise.tracing).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from ipaddress import ip_address
from typing import Any

from flask import Blueprint, Flask, Response, g, jsonify, request
from sqlalchemy import func, select, text
from werkzeug.exceptions import NotFound

from bookwise.metrics import CONTENT_TYPE_LATEST, REQUEST_SECONDS, exposition, status_class
from bookwise.tracing import REQUEST_ID, request_id_from
from bookwise.web import instance, now

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def health() -> Response:
    """Liveness: 200 while the process answers."""
    return jsonify(status="ok")


@blueprint.get("/readyz")
def ready() -> tuple[Response, int]:
    """Readiness: the database and its schema (503 naming what fails), and the scheduled jobs'
    last run."""
    from bookwise.migrate import head_revision, schema_state
    from bookwise.scheduling.models import ScheduledJob

    database = instance().database
    checks: dict[str, Any] = {}
    try:
        with database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = {"ok": True}
    except Exception as error:  # unreachable, refused, timed out: say so, do not fail
        checks["database"] = {"ok": False, "error": type(error).__name__}
        return jsonify(status="unready", checks=checks), 503
    state = schema_state(database.engine)
    checks["migrations"] = {"ok": state == "current", "state": state, "head": head_revision()}
    ready = state == "current"
    if database.replica is not None:
        # Said, but not unready: without it the slot searches read the primary (web.read_session)
        # and every page works; a balancer must not take all the processes out for it.
        try:
            with database.replica() as session:
                session.execute(text("SELECT 1"))
            checks["replica"] = {"ok": True}
        except Exception as error:
            checks["replica"] = {"ok": False, "error": type(error).__name__, "reads": "primary"}
    moment = now()
    with database.sessions() as session:
        last = session.scalar(select(func.max(ScheduledJob.last_started_at)))
    interval = instance().settings.scheduler.interval
    stale_after = max(timedelta(seconds=4 * interval), timedelta(minutes=2))
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=moment.tzinfo)
    checks["scheduler"] = {
        "alive": last is not None and moment - last <= stale_after,
        "last_run_at": last.isoformat() if isinstance(last, datetime) else None,
        "age_seconds": round((moment - last).total_seconds()) if last is not None else None,
    }
    return jsonify(status="ready" if ready else "unready", checks=checks), 200 if ready else 503


@blueprint.get("/metrics")
def metrics() -> Response:
    """Prometheus's text, for the networks of ``monitoring.metrics_from`` (404 for others: the
    volumes of bookings are the business's)."""
    networks = instance().settings.monitoring.metrics_from
    try:
        address = ip_address(request.remote_addr or "")
    except ValueError:
        raise NotFound() from None
    if not any(address in network for network in networks):
        raise NotFound()
    body = exposition(instance().database, now())
    response = Response(body, mimetype=CONTENT_TYPE_LATEST.split(";")[0])
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    response.headers["Cache-Control"] = "no-store"
    return response


def _started() -> None:
    g.request_started = time.perf_counter()
    g.request_id = request_id_from(request.headers.get("X-Request-ID"))
    g.request_trace = REQUEST_ID.set(g.request_id)


def _untraced(_error: BaseException | None) -> None:
    token = g.pop("request_trace", None)
    if token is not None:
        REQUEST_ID.reset(token)


def _timed(response: Response) -> Response:
    if "request_id" in g:
        response.headers["X-Request-ID"] = g.request_id
    started = g.pop("request_started", None)
    if started is not None:
        spent = time.perf_counter() - started
        REQUEST_SECONDS.labels(
            endpoint=request.endpoint or "unmatched",
            method=request.method if request.method in _METHODS else "other",
            status=status_class(response.status_code),
        ).observe(spent)
        if instance().settings.access_log:
            _log_access(response, spent)
    return response


ACCESS_LOG = logging.getLogger("bookwise.access")
# The route arguments that are secrets (a manage link's, a calendar feed's, an invitation's).
_SECRET_ARGUMENTS = frozenset({"token"})


def logged_path() -> str:
    """The request's path as the access log writes it: each secret argument of its route
    replaced by its name (``/manage/<token>/cancel``), no query string."""
    path = request.path
    for name, value in (request.view_args or {}).items():
        if name in _SECRET_ARGUMENTS and isinstance(value, str) and value:
            path = path.replace(f"/{value}", f"/<{name}>")
    return path


def _log_access(response: Response, spent: float) -> None:
    path, milliseconds = logged_path(), round(spent * 1000, 1)
    ACCESS_LOG.info(
        "%s %s %s %.1f ms",
        request.method,
        path,
        response.status_code,
        milliseconds,
        extra={
            "method": request.method,
            "path": path,
            "status": response.status_code,
            "duration_ms": milliseconds,
            "client": request.remote_addr,
        },
    )


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def init_health(app: Flask) -> None:
    """The routes above, and each request timed."""
    app.register_blueprint(blueprint)
    app.before_request(_started)
    app.after_request(_timed)
    app.teardown_request(_untraced)
