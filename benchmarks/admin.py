"""The back office's heavy pages: the bookings list, the reports dashboard and the 120-day export.
Run:

    .venv/bin/python benchmarks/admin.py                       # SQLite
    .venv/bin/python benchmarks/admin.py postgresql+psycopg://postgres@127.0.0.1/test

A calendar of 50 staff members with 5,000 bookings over the last 120 days, each with a client of
its own and three answers (one of them sensitive). Measured, as median and 95th percentile:

1. the export (all 5,000 rows, one column per question, written as TSV: one Core query with its
   joins), and as the same-process baseline the same table built from ORM objects (their
   relations read with ``selectinload``);
2. the dashboard's counts for 30 days;
3. over the test client, signed in as an admin: a page of the bookings list, the dashboard, the
   export download.
"""

from __future__ import annotations

import logging
import random
import re
import sys
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import availability as base  # noqa: E402

from bookwise import instance  # noqa: E402
from bookwise.accounts.services import create_user, grant_role  # noqa: E402
from bookwise.app import create_app  # noqa: E402
from bookwise.bookings.models import Booking, Client  # noqa: E402
from bookwise.bookings.services import find_service  # noqa: E402
from bookwise.config import load_settings  # noqa: E402
from bookwise.database import Database, open_database, prepare_schema  # noqa: E402
from bookwise.db import unit_of_work  # noqa: E402
from bookwise.notifications.context import answer_text, reference  # noqa: E402
from bookwise.reports.services import (  # noqa: E402
    BASE_COLUMNS,
    ReportScope,
    _bookings,
    booking_stats,
    export_rows,
    write_table,
)
from bookwise.workflows.services import workflow_of  # noqa: E402

PARIS = ZoneInfo("Europe/Paris")
BOOKINGS, DAYS = 5000, 120
PASSWORD = "benchmark password 1"

WORKFLOW = """id: bench
name: Benchmark consultation
duration: 30m
slot_step: 15m
booking_window: {min_notice: 0m, max_ahead: 400d}
staff: {tags: [bench]}
fields:
  - {id: topic, type: text, label: Topic}
  - id: level
    type: select
    label: Level
    options: [{value: a, label: Beginner}, {value: b, label: Advanced}]
  - {id: note, type: textarea, label: Health note, sensitive: true}
notifications: []
"""


def seed(database: Database, today: date) -> None:
    rng = random.Random(11)
    with database.sessions() as session, session.begin():
        context = find_service(session, "bench", "bench")
        staff = [m.id for m in context.calendar.staff]
        clients = [
            {
                "calendar_id": context.calendar.id,
                "name": f"Client {n}",
                "email": f"client{n}@bench.example",
                "phone": "+33612345678",
                "created_at": datetime.now(UTC),
            }
            for n in range(BOOKINGS)
        ]
        session.execute(sa.insert(Client), clients)
        client_ids = list(
            session.scalars(sa.select(Client.id).where(Client.calendar_id == context.calendar.id))
        )
        taken: set[tuple[int, datetime]] = set()
        rows = []
        while len(rows) < BOOKINGS:
            day = today - timedelta(days=rng.randrange(1, DAYS))
            start = datetime(day.year, day.month, day.day, 8, tzinfo=PARIS) + timedelta(
                minutes=30 * rng.randrange(20)
            )
            member = rng.choice(staff)
            if (member, start) in taken:
                continue
            taken.add((member, start))
            rows.append(
                base.booking_row(
                    context,
                    member,
                    client_ids[len(rows)],
                    start,
                    state=rng.choice(("completed", "completed", "no_show", "cancelled")),
                    answers={"topic": "Taxes", "level": "b", "note": "Allergic"},
                )
            )
        session.execute(sa.insert(Booking), rows)


def orm_export(database: Database, calendar_id: int, first: date, last: date) -> bytes:
    """The baseline: the same table built from ORM objects (relations by ``selectinload``)."""
    with database.sessions() as session:
        scope = ReportScope(calendar_id, first, last, "Europe/Paris", "en", "en")
        rows = []
        for booking in _bookings(session, scope):
            workflow = workflow_of(booking.workflow_version)
            row = [
                reference(booking),
                workflow.name.get("en"),
                booking.start_at.astimezone(PARIS).strftime("%Y-%m-%d %H:%M"),
                booking.end_at.astimezone(PARIS).strftime("%Y-%m-%d %H:%M"),
                "Europe/Paris",
                booking.staff_member.name,
                booking.state,
                booking.client.name,
                booking.client.email or "",
                booking.client.phone or "",
                booking.locale,
                booking.timezone,
                booking.source,
                booking.created_at.astimezone(PARIS).strftime("%Y-%m-%d %H:%M"),
                booking.consent.given_at.isoformat() if booking.consent else "",
            ]
            for spec in workflow.custom_fields:
                value = booking.answers.get(spec.id)
                row.append("" if value is None else answer_text(spec, value, "en", "en"))
            rows.append(row)
        return write_table([label for _, label in BASE_COLUMNS], rows, "\t")


def run(url: str | None) -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / "workflows").mkdir()
        (folder / "workflows" / "bench.yaml").write_text(WORKFLOW)
        with base.target(url, folder) as database_url:
            config = folder / "config.yaml"
            config.write_text(
                f"database_url: '{database_url}'\ninstance_dir: {folder}/instance\n"
                f"workflows: {folder / 'workflows'}\nforms: {ROOT / 'forms'}\n"
            )
            settings = load_settings(config, environ={})
            database = open_database(settings)
            prepare_schema(database)
            instance.load_calendar_files(settings, database, [base.calendar_file(folder)])
            today = datetime.now(PARIS).date()
            seed(database, today)
            with unit_of_work(database.sessions) as session:
                user = create_user(session, "bench@bench.example", PASSWORD)
                calendar = find_service(session, "bench", "bench").calendar
                calendar_id = calendar.id
                grant_role(session, user, calendar_id, "admin")
            print(
                f"{'PostgreSQL' if url else 'SQLite'}: {BOOKINGS} bookings over {DAYS} days, "
                f"{base.STAFF} staff"
            )
            first, last = today - timedelta(days=DAYS - 1), today

            def export() -> bytes:
                with database.sessions() as session:
                    header, rows = export_rows(
                        session,
                        ReportScope(calendar_id, first, last, "Europe/Paris", "en", "en"),
                        include_sensitive=True,
                    )
                assert len(rows) == BOOKINGS
                return write_table(header, rows, "\t")

            optimised = base.measure("export of 5,000 bookings (TSV)", export, repeat=7)
            naive = base.measure(
                "baseline: the same table from ORM objects",
                lambda: orm_export(database, calendar_id, first, last),
                repeat=7,
            )
            print(f"  the export takes {optimised / naive:.2f}x the baseline's time")

            def stats() -> object:
                with database.sessions() as session:
                    first_day = today - timedelta(days=29)
                    return booking_stats(
                        session,
                        ReportScope(calendar_id, first_day, today, "Europe/Paris", "en", "en"),
                    )

            base.measure("dashboard counts, 30 days", stats, repeat=10)

            app = create_app(settings)
            client = app.test_client()
            page = client.get("/login").get_data(as_text=True)
            token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
            assert token is not None
            response = client.post(
                "/login",
                data={
                    "email": "bench@bench.example",
                    "password": PASSWORD,
                    "csrf_token": token.group(1),
                },
            )
            assert response.status_code == 302
            start = first.isoformat()

            def get(path: str) -> None:
                answer = client.get(path)
                assert answer.status_code == 200, (path, answer.status_code)

            base.measure(
                "bookings list, a page of 50 (HTTP)",
                lambda: get(f"/admin/bookings/?start={start}&page=40"),
                repeat=10,
            )
            base.measure("reports dashboard (HTTP)", lambda: get("/admin/reports/"), repeat=10)
            base.measure(
                "export download, 120 days (HTTP)",
                lambda: get("/admin/reports/export.tsv"),
                repeat=5,
            )
            app.extensions["bookwise"].database.engine.dispose()
            database.engine.dispose()


if __name__ == "__main__":
    run(sys.argv[1] if len(sys.argv) > 1 else None)
