"""What one booking costs, in one process (issue 20). Run:

    .venv/bin/python benchmarks/booking.py [--sql | --sql-full] [POSTGRES_URL]

Over the test client, on the demo instance (SQLite, or PostgreSQL when a URL is given: a schema of
its own, dropped after): the public services list (a cheap request, the baseline), then bookings
through the API's POST, each at a distinct free time of the tutoring service (a pool of three,
round robin), with the SQL statements each one runs. Prints medians and 95th percentiles, the
ratio to the baseline, and the number of statements of one booking (BEGIN included); `--sql`
prints them (cut to 160 characters; whole with `--sql-full`).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "benchmarks"))

from api_tokens import NOW, demo_instance  # noqa: E402

from bookwise.app import create_app  # noqa: E402

CALENDAR, SERVICE = "bright-minds", "tutoring"
BOOKINGS, BASELINE = 60, 300


def demo_app(folder: str, database_url: str) -> Any:
    settings, database = demo_instance(folder, database_url)
    database.engine.dispose()
    return create_app(settings, clock=lambda: NOW)


def answers_for(client: Any) -> dict[str, Any]:
    services = client.get(f"/api/v1/calendars/{CALENDAR}/services").get_json()["services"]
    fields = next(s for s in services if s["id"] == SERVICE)["fields"]
    answers: dict[str, Any] = {}
    for field in fields:
        if not field.get("required") or field["id"] in ("name", "email", "phone"):
            continue
        options = [o["value"] for o in field.get("options") or []]
        if field.get("type") in ("multiselect", "checkboxes", "multichoice"):
            answers[field["id"]] = options[:1]
        else:
            answers[field["id"]] = options[0] if options else "x"
    return answers


def spaced_starts(client: Any) -> list[str]:
    """Free starts of the tutoring service two hours apart: no booking overlaps another's."""
    base = f"/api/v1/calendars/{CALENDAR}/services/{SERVICE}"
    slots = client.get(f"{base}/slots?from=2026-12-14&to=2027-01-29").get_json()
    starts: list[str] = []
    for slot in slots["slots"]:
        moment = datetime.fromisoformat(slot["start"])
        if not starts or (moment - datetime.fromisoformat(starts[-1])).total_seconds() >= 7200:
            starts.append(slot["start"])
    return starts


def run(database_url: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        app = demo_app(folder, database_url)
        client = app.test_client()
        base = f"/api/v1/calendars/{CALENDAR}/services"
        for _ in range(30):
            client.get(base)
        cheap = []
        for _ in range(BASELINE):
            started = time.perf_counter()
            client.get(base)
            cheap.append((time.perf_counter() - started) * 1000)
        answers = answers_for(client)
        starts = spaced_starts(client)[: BOOKINGS + 1]
        engine = app.extensions["bookwise"].database.engine
        statements: list[str] = []
        sa.event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        costs, counts = [], []
        for number, start in enumerate(starts):
            body = {
                "start": start,
                "client": {"name": f"C{number}", "email": f"c{number}@example.org"},
                "answers": answers,
                "consent": True,
            }
            statements.clear()
            began = time.perf_counter()
            answer = client.post(f"{base}/{SERVICE}/bookings", json=body)
            spent = (time.perf_counter() - began) * 1000
            assert answer.status_code == 201, answer.get_json()
            if number:  # the first warms the caches
                costs.append(spent)
                counts.append(len(statements))
            if number == 1 and ("--sql" in sys.argv or "--sql-full" in sys.argv):
                for statement in statements:
                    print(
                        "   ",
                        " ".join(statement.split())[: None if "--sql-full" in sys.argv else 160],
                    )
        app.extensions["bookwise"].database.engine.dispose()
    cheap.sort()
    costs.sort()
    median = statistics.median(cheap)
    kind = database_url.split(":", 1)[0]
    print(f"{kind}: services list (baseline): median {median:.2f} ms")
    print(
        f"{kind}: a booking: median {statistics.median(costs):.2f} ms, "
        f"p95 {costs[int(len(costs) * 0.95)]:.2f} ms, "
        f"{statistics.median(costs) / median:.1f}x the baseline; "
        f"SQL statements {min(counts)}-{max(counts)} (BEGIN included)"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        run(f"sqlite:///{folder}/bench.db")
    urls = [argument for argument in sys.argv[1:] if not argument.startswith("--")]
    if urls:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(urls[0], isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
        try:
            separator = "&" if "?" in urls[0] else "?"
            run(f"{urls[0]}{separator}options=-csearch_path%3D{schema}")
        finally:
            with admin.connect() as connection:
                connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()


if __name__ == "__main__":
    main()
