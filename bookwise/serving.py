"""``bookwise serve``: the application under gunicorn, with several web processes.

Each process is forked from gunicorn's master, then imports and creates the application itself
(no preloading): its database pool, its plugins and its rate-limit storage are its own. The
processes hold no state of their own that another needs (sessions are signed cookies; rate
limits and caches go to Redis when configured), so they can be added, and machines too.

Prometheus's counters live in each process: in the library's multiprocess mode each writes them
to a file of ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` adds them up. The variable must be set
before prometheus_client is first imported: :func:`prepare_metrics_folder` is called first thing.
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path
from typing import Any

from bookwise.config import Settings
from bookwise.errors import BookwiseError

METRICS_FOLDER = "PROMETHEUS_MULTIPROC_DIR"


def prepare_metrics_folder(settings: Settings) -> Path:
    """The folder the processes write their metrics to (``PROMETHEUS_MULTIPROC_DIR``, else
    ``metrics/`` in the instance folder), emptied: the figures of a previous run would be added
    to this one's."""
    if "prometheus_client" in sys.modules and not os.environ.get(METRICS_FOLDER):
        raise BookwiseError("internal: prometheus_client was imported before its folder was set")
    folder = Path(os.environ.get(METRICS_FOLDER) or settings.instance_dir / "metrics")
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    os.environ[METRICS_FOLDER] = str(folder)
    return folder


def _child_exit(_server: Any, worker: Any) -> None:
    """A web process ended: its gauges are dropped (its counters stay counted)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def _worker_ready(_worker: Any) -> None:
    """A web process has built its application: what it holds for good (modules, the app, the
    workflows) is moved out of the garbage collector's sight (``gc.freeze``), so that the
    collections a request's allocations trigger look only at what requests make."""
    gc.collect()
    gc.freeze()


def _json_logger() -> type:
    """gunicorn's logger, writing JSON lines with Bookwise's formatter (log_format: json), so
    that a log collector reads one format."""
    from gunicorn.glogging import Logger

    from bookwise.tracing import RequestIdFilter, json_formatter

    class JsonLogger(Logger):  # type: ignore[misc]
        def setup(self, cfg: Any) -> None:
            super().setup(cfg)
            for log in (self.error_log, self.access_log):
                for handler in log.handlers:
                    handler.setFormatter(json_formatter())
                    handler.addFilter(RequestIdFilter())

    return JsonLogger


def serve_with_gunicorn(
    settings: Settings, *, host: str, port: int, workers: int, threads: int
) -> None:
    """Run gunicorn until it is stopped (SIGTERM, Ctrl+C): ``workers`` processes of ``threads``
    threads each, on ``host:port``."""
    from gunicorn.app.base import BaseApplication

    options: dict[str, Any] = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "preload_app": False,
        "child_exit": _child_exit,
        # gunicorn's control socket is one path per user by default: two instances on a
        # machine would share it. Bookwise does not use it.
        "control_socket_disable": True,
        "post_worker_init": _worker_ready,
        # A request stuck this long is a bug or a dead database: the process is replaced.
        "timeout": 60,
        "graceful_timeout": 30,
        # Bookwise writes its own (access_log), with the secret tokens of paths left out.
        "accesslog": None,
        "errorlog": "-",
        # gunicorn's own lines (a worker started, restarted, timed out) as Bookwise's are.
        "logger_class": _json_logger()
        if settings.log_format == "json"
        else "gunicorn.glogging.Logger",
        "loglevel": settings.log_level.lower(),
        # Which proxies' X-Forwarded-* to trust is the app's (security.behind_proxies, ProxyFix).
        "forwarded_allow_ips": "*" if settings.security.behind_proxies else "127.0.0.1",
    }

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            from bookwise.app import create_app

            return create_app(settings)

    Server().run()
