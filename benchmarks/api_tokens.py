"""What a personal API token costs a request (issue 19). Run:

    .venv/bin/python benchmarks/api_tokens.py

Over the test client, in one process, on the demo instance (its calendars and sample bookings,
SQLite): the public list of a calendar's services (no token: the baseline), the token's list of
the calendar's bookings (20 a page: the bearer check, then one page), the same with an unknown
token (the bearer check alone, answered 401), and the OpenAPI document (built from the views'
descriptions on each request). Medians and 95th percentiles of batches of 100 requests, per
request; the ratio to the public list is the figure to compare (the machine is shared).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bookwise import instance  # noqa: E402
from bookwise.accounts.services import create_user, grant_role  # noqa: E402
from bookwise.accounts.tokens import create_token  # noqa: E402
from bookwise.app import create_app  # noqa: E402
from bookwise.calendars.models import Calendar  # noqa: E402
from bookwise.config import Settings, load_settings  # noqa: E402
from bookwise.database import Database, open_database, prepare_schema  # noqa: E402
from bookwise.db import unit_of_work  # noqa: E402

BATCH, BATCHES = 100, 15
NOW = datetime(2026, 12, 7, 9, tzinfo=UTC)


def demo_instance(folder: str, database_url: str) -> tuple[Settings, Database]:
    """The demo instance (its calendars and sample bookings, standing at NOW) on
    ``database_url``, without rate limits: what the benchmarks measure."""
    config = Path(folder) / "bench.yaml"
    config.write_text(
        f"database_url: {database_url}\n"
        f"secret_key: {'b' * 40}\n"
        f"instance_dir: {folder}/instance\n"
        f"workflows: {ROOT / 'workflows'}\nforms: {ROOT / 'forms'}\n"
        f"demo_data: {ROOT / 'demo' / 'calendars.yaml'}\n"
        "log_level: WARNING\n"
        "security:\n  rate_limits:\n    enabled: false\n"
    )
    settings = load_settings(config, environ={})
    database = open_database(settings)
    prepare_schema(database)
    instance.start_instance(
        settings, database, instance.checked_workflows(settings), demo=True, now=NOW
    )
    return settings, database


def demo_app(folder: str) -> tuple[Any, str, str]:
    """The demo instance's app, a calendar's slug and a read token for it."""
    settings, database = demo_instance(folder, f"sqlite:///{folder}/bench.db")
    with unit_of_work(database.sessions, write=True) as session:
        calendar = session.query(Calendar).order_by(Calendar.id).first()
        assert calendar is not None
        user = create_user(session, "bench@example.org", "a long enough password 42")
        grant_role(session, user, calendar.id, "admin")
        _token, secret = create_token(session, user.email, calendar.slug, "read", "bench", NOW)
        slug = calendar.slug
    app = create_app(settings, clock=lambda: NOW)
    return app, slug, secret


def per_request_ms(client: Any, url: str, status: int, headers: dict[str, str]) -> list[float]:
    for _ in range(30):  # warm up
        client.get(url, headers=headers)
    batches = []
    for _ in range(BATCHES):
        start = time.perf_counter()
        for _ in range(BATCH):
            answer = client.get(url, headers=headers)
            assert answer.status_code == status, (url, answer.status_code)
        batches.append((time.perf_counter() - start) * 1000 / BATCH)
    return sorted(batches)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        app, slug, secret = demo_app(folder)
        client = app.test_client()
        bearer = {"Authorization": f"Bearer {secret}"}
        runs = {
            "public: a calendar's services (no token)": (
                f"/api/v1/calendars/{slug}/services",
                200,
                {},
            ),
            "token: the calendar's bookings, 20 a page": (
                f"/api/v1/bookings?calendar={slug}&from=2026-11-01&limit=20",
                200,
                bearer,
            ),
            "token: an unknown one (the check alone, 401)": (
                f"/api/v1/bookings?calendar={slug}",
                401,
                {"Authorization": "Bearer bw_" + "x" * 43},
            ),
            "the OpenAPI document": ("/api/v1/openapi.json", 200, {}),
        }
        results = {label: per_request_ms(client, *run) for label, run in runs.items()}
        base = statistics.median(results["public: a calendar's services (no token)"])
        for label, times in results.items():
            median = statistics.median(times)
            p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
            print(f"{label}: median {median:.3f} ms, p95 {p95:.3f} ms, {median / base:.2f}x")


if __name__ == "__main__":
    main()
