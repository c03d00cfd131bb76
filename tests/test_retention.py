"""Retention: the workflows' ``retention`` planned (a dry run writes nothing) and applied (exactly
what is due, idempotent, audited, counts kept), by the service, ``bookwise retention`` and the
``apply-retention`` job of the scheduler's registry."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from bookwise.audit.models import AuditEntry
from bookwise.bookings.models import Booking, Client
from bookwise.bookings.services import BookingRequest, create_booking, find_service
from bookwise.config import load_settings
from bookwise.database import open_database
from bookwise.db import unit_of_work
from bookwise.notifications.models import Notification
from bookwise.privacy.retention import apply_retention, plan_retention
from bookwise.reports.services import ReportScope, booking_stats, export_rows
from tests.conftest import SCENARIO, Loaded, base_config, write_config

PARIS = ZoneInfo("Europe/Paris")
SECRET = "test-secret-" + "x" * 40
pytestmark = pytest.mark.clock

# The scenario's "visit" keeps answers 30 days and clients 90 days after the booking's end;
# "consult" says nothing (kept until someone erases them).
VISIT_RETENTION = "retention: {delete_answers_after: 30d, delete_client_after: 90d}\n"


@pytest.fixture
def kept(tmp_path: Path, database_url: str) -> Iterator[Loaded]:
    """The scenario with a retention on "visit"."""
    from bookwise import instance

    workflows = tmp_path / "workflows"
    shutil.copytree(SCENARIO / "workflows", workflows)
    with (workflows / "visit.yaml").open("a", encoding="utf-8") as handle:
        handle.write(VISIT_RETENTION)
    values = base_config(tmp_path, database_url) | {"workflows": str(workflows)}
    config = write_config(tmp_path / "kept.yaml", values)
    settings = load_settings(config, environ={})
    database = open_database(settings)
    instance.sync_workflows(settings, database)
    instance.load_calendar_file(settings, database, SCENARIO / "calendars.yaml")
    yield Loaded(settings, database)
    database.engine.dispose()


def day_at(now: datetime, days: int, hour: int = 10) -> datetime:
    local = now.astimezone(PARIS).date() + timedelta(days=days)
    return datetime(local.year, local.month, local.day, hour, tzinfo=PARIS)


def book_as(
    loaded: Loaded,
    now: datetime,
    start: datetime,
    *,
    name: str = "Zoé Martin",
    email: str = "zoe@example.org",
    service: str = "visit",
    calendar: str = "acme",
    health: str = "asthma",
    phone: str = "+33612345678",
) -> str:
    """A booking made at ``now`` (its uid)."""
    values: dict[str, Any] = {"name": name, "email": email, "phone": phone}
    values |= {"topic": "Taxes"} if service != "visit" else {"topic": "Taxes", "health": health}
    with unit_of_work(loaded.database.sessions, write=True) as session:
        context = find_service(session, calendar, service)
        booking = create_booking(
            session,
            context,
            BookingRequest(
                start=start,
                staff=None if service == "consult" else "ana",
                consent=True if service == "consult" else None,
                locale="en",
                timezone="Europe/Paris",
                values=values,
            ),
            now,
            plugins=None,
        )
        return booking.uid


def settle_outbox(loaded: Loaded, now: datetime) -> None:
    """Mark every planned message sent (what the worker does; its sending is tested elsewhere)."""
    with unit_of_work(loaded.database.sessions, write=True) as session:
        session.execute(sa.update(Notification).values(state="sent", sent_at=now))


def booking(loaded: Loaded, uid: str) -> tuple[dict[str, Any], datetime | None, str, str | None]:
    """(answers, answers_erased_at, client name, client email) of a booking."""
    with loaded.database.sessions() as session:
        row = session.scalars(sa.select(Booking).where(Booking.uid == uid)).one()
        return dict(row.answers), row.answers_erased_at, row.client.name, row.client.email


def messages_of(loaded: Loaded, *uids: str) -> int:
    """How many outbox rows the bookings have (every rule of "visit": confirmation, reminder,
    follow-up, to the client, the staff member, a webhook)."""
    with loaded.database.sessions() as session:
        return int(
            session.scalar(
                sa.select(sa.func.count())
                .select_from(Notification)
                .join(Booking, Booking.id == Notification.booking_id)
                .where(Booking.uid.in_(uids))
            )
            or 0
        )


def audit(loaded: Loaded, action: str) -> list[AuditEntry]:
    with loaded.database.sessions() as session:
        return list(session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action)))


def stats(loaded: Loaded, first: date, last: date) -> tuple[int, list[tuple[str, int]]]:
    with loaded.database.sessions() as session:
        calendar_id = session.scalar(sa.text("SELECT id FROM calendars WHERE slug = 'acme'"))
        scope = ReportScope(calendar_id, first, last, "Europe/Paris", "en", "en")
        counted = booking_stats(session, scope)
        return counted.total, counted.services


@pytest.fixture
def three(kept: Loaded, now: datetime) -> dict[str, str]:
    """Two visits (day 1 and day 61) and a consultation (day 1), their messages sent."""
    made = {
        "early": book_as(kept, now, day_at(now, 1)),
        "late": book_as(kept, now, day_at(now, 61), name="Luc Petit", email="luc@example.org"),
        "consult": book_as(kept, now, day_at(now, 1, 11), service="consult"),
    }
    settle_outbox(kept, now)
    return made


def test_a_dry_run_lists_what_is_due_and_writes_nothing(
    kept: Loaded, three: dict[str, str], now: datetime, bookwise_cli: Any, tmp_path: Path
) -> None:
    at = day_at(now, 1 + 45)  # the early visit ended 45 days ago: answers due, client not
    with kept.database.sessions() as session:
        plan = plan_retention(session, at)
    assert [(g.calendar, g.workflow) for g in plan.groups] == [("acme", "visit")]
    group = plan.groups[0]
    sent = messages_of(kept, three["early"])
    assert sent >= 3
    assert (len(group.bookings), len(group.clients), len(group.messages)) == (1, 0, sent)
    assert group.oldest_end == group.newest_end == day_at(now, 1) + timedelta(minutes=30)
    result = bookwise_cli(
        "retention", "--dry-run", "--at", at.isoformat(), "--config", str(tmp_path / "kept.yaml")
    )
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(
        f"acme/visit: 1 booking(s) lose their answers, 0 client(s) erased, {sent} message(s) "
        "purged; booking ends "
    )
    assert lines[-1] == (
        f"1 answer set(s), 0 client(s) and {sent} message(s) would be removed (dry run: nothing "
        "changed)"
    )
    assert booking(kept, three["early"])[:2] == ({"topic": "Taxes", "health": "asthma"}, None)
    assert audit(kept, "retention.applied") == []


def test_apply_removes_exactly_what_is_due_keeps_the_counts_and_is_idempotent(
    kept: Loaded, three: dict[str, str], now: datetime
) -> None:
    first, last = day_at(now, 0).date(), day_at(now, 70).date()
    before = stats(kept, first, last)
    at = day_at(now, 1 + 100)  # early ended 100 days ago (client due), late 40 (answers due)
    with unit_of_work(kept.database.sessions, write=True) as session:
        done = apply_retention(session, at, secret=SECRET)
    sent = messages_of(kept, three["early"], three["late"])
    assert (done.answers, done.clients, done.messages) == (2, 1, sent)
    answers, erased_at, name, email = booking(kept, three["early"])
    assert (answers, erased_at, email) == ({}, at, None)
    assert name.startswith("Erased client ") and len(name) == len("Erased client ") + 8
    answers, erased_at, name, email = booking(kept, three["late"])
    assert (answers, erased_at, name, email) == ({}, at, "Luc Petit", "luc@example.org")
    # No retention on "consult": kept as it was.
    assert booking(kept, three["consult"]) == ({"topic": "Taxes"}, None, "Zoé Martin",
                                               "zoe@example.org")  # fmt: skip
    # The bookings stay: the reports count the same.
    assert stats(kept, first, last) == before
    with kept.database.sessions() as session:
        calendar_id = session.scalar(sa.text("SELECT id FROM calendars WHERE slug = 'acme'"))
        scope = ReportScope(calendar_id, first, last, "Europe/Paris", "en", "en")
        _header, rows = export_rows(session, scope, include_sensitive=True, translate=str)
        assert len(rows) == 3
        assert not any("asthma" in cell for row in rows for cell in row)
        purged = session.scalars(
            sa.select(Notification).where(Notification.recipient_kind == "client")
        ).all()
        to_visits = [r for r in purged if r.idempotency_key.startswith("purged:")]
        assert len(to_visits) == len(purged) >= 2  # ("consult" sends no messages)
        assert {r.recipient for r in to_visits} == {"(erased)"}
        assert all("example.org" not in r.idempotency_key for r in to_visits)
    entries = audit(kept, "retention.applied")
    assert len(entries) == 1
    entry = entries[0]
    assert (entry.actor, entry.object_id, entry.calendar_id) == ("system", "visit", calendar_id)
    assert (entry.details["answers_erased"], entry.details["clients_erased"],
            entry.details["messages_purged"]) == (2, 1, sent)  # fmt: skip
    # Again: nothing more to do, nothing audited.
    with unit_of_work(kept.database.sessions, write=True) as session:
        assert plan_retention(session, at).empty
        again = apply_retention(session, at, secret=SECRET)
    assert again.empty
    assert len(audit(kept, "retention.applied")) == 1


def test_a_booking_not_yet_past_its_limit_is_left_alone(
    kept: Loaded, three: dict[str, str], now: datetime
) -> None:
    limit = day_at(now, 1) + timedelta(minutes=30) + timedelta(days=30)
    with kept.database.sessions() as session:
        assert plan_retention(session, limit - timedelta(seconds=1)).empty
        due = plan_retention(session, limit)
    assert due.answers == 1 and due.clients == 0


def test_a_period_shortened_since_applies_to_earlier_bookings(
    kept: Loaded, three: dict[str, str], now: datetime, tmp_path: Path
) -> None:
    from bookwise import instance

    visit = tmp_path / "workflows" / "visit.yaml"
    visit.write_text(
        visit.read_text(encoding="utf-8").replace(VISIT_RETENTION, "")
        + "retention: {delete_answers_after: 10d}\n",
        encoding="utf-8",
    )
    instance.sync_workflows(kept.settings, kept.database)
    with kept.database.sessions() as session:
        plan = plan_retention(session, day_at(now, 1 + 15))
    assert plan.answers == 1 and plan.clients == 0


def test_the_job_runs_through_the_scheduler_registry(
    kept: Loaded, three: dict[str, str], now: datetime, bookwise_cli: Any, tmp_path: Path
) -> None:
    from bookwise.scheduling.core import core_jobs
    from bookwise.scheduling.registry import Daily

    job = next(j for j in core_jobs(kept.settings) if j.name == "apply-retention")
    assert job.once and isinstance(job.trigger, Daily)
    at = day_at(now, 1 + 100)
    config = str(tmp_path / "kept.yaml")
    result = bookwise_cli("jobs", "run", "apply-retention", "--config", config, "--at",
                          at.isoformat())  # fmt: skip
    assert result.exit_code == 0, result.stderr
    sent = messages_of(kept, three["early"], three["late"])
    assert result.stdout.strip().endswith(
        f": 2 booking(s) without answers, 1 client(s) erased, {sent} message(s) purged, 0 "
        "waitlist entries erased"
    )
    assert booking(kept, three["early"])[3] is None
    assert booking(kept, three["late"])[:1] == ({},)
    with kept.database.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Client)) == 3
    again = bookwise_cli("jobs", "run", "apply-retention", "--config", config, "--at",
                         at.isoformat())  # fmt: skip
    assert again.exit_code == 0 and "erased" not in again.stdout


def test_the_command_applies_and_says_what_it_removed(
    kept: Loaded, three: dict[str, str], now: datetime, bookwise_cli: Any, tmp_path: Path
) -> None:
    at = day_at(now, 1 + 45)
    result = bookwise_cli(
        "retention", "--at", at.isoformat(), "--config", str(tmp_path / "kept.yaml")
    )
    assert result.exit_code == 0, result.stderr
    sent = messages_of(kept, three["early"])
    assert result.stdout.splitlines()[-1] == (
        f"1 answer set(s), 0 client(s) and {sent} message(s) were removed"
    )
    assert booking(kept, three["early"])[0] == {}
    assert [e.actor for e in audit(kept, "retention.applied")] == ["cli"]
