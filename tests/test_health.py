"""Liveness, readiness and Prometheus metrics (issue 20; bookwise.health, bookwise.metrics)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY

from bookwise.config import ConfigError, load_settings
from bookwise.jobs import runner_for
from bookwise.notifications.delivery import Dispatcher
from tests.conftest import TEST_NOW, Loaded, base_config, write_config

PARIS = ZoneInfo("Europe/Paris")


def start_at(hour: int, days: int = 2) -> str:
    day = TEST_NOW.astimezone(PARIS).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, tzinfo=PARIS).isoformat()


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_liveness_asks_nothing_of_the_database(scenario_app: Any) -> None:
    scenario_app.extensions["bookwise"].database.engine.dispose()
    assert scenario_app.test_client().get("/healthz").get_json() == {"status": "ok"}


def test_ready_when_the_database_answers_at_the_latest_migration(
    scenario_app: Any, scenario: Loaded, clock: Any
) -> None:
    client = scenario_app.test_client()
    answer = client.get("/readyz")
    assert answer.status_code == 200, answer.get_json()
    checks = answer.get_json()["checks"]
    assert checks["database"] == {"ok": True}
    assert checks["migrations"]["state"] == "current"
    # No scheduled job has run yet in this database: said, but the web still serves.
    assert checks["scheduler"]["alive"] is False and checks["scheduler"]["last_run_at"] is None
    runner_for(scenario.settings, scenario.database, clock=clock).tick()
    scheduler = client.get("/readyz").get_json()["checks"]["scheduler"]
    assert scheduler["alive"] is True and scheduler["age_seconds"] <= 60
    # A schema behind the code (an upgrade not yet run): 503, saying so. The version is put
    # back after: on PostgreSQL the schema is the test process's, shared by the tests after.
    head = checks["migrations"]["head"]
    with scenario.database.engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '0018'"))
    try:
        behind = client.get("/readyz")
    finally:
        with scenario.database.engine.begin() as connection:
            connection.execute(
                sa.text("UPDATE alembic_version SET version_num = :head"), {"head": head}
            )
    assert behind.status_code == 503
    assert behind.get_json()["checks"]["migrations"] == {
        "ok": False,
        "state": "outdated",
        "head": head,
    }


def test_metrics_count_requests_slots_bookings_and_messages(
    scenario_app: Any, scenario: Loaded, clock: Any
) -> None:
    client = scenario_app.test_client()
    searches = sample("bookwise_slot_search_seconds_count")
    made = sample("bookwise_bookings_made_total", source="api")
    day = start_at(9)[:10]
    slots = client.get(f"/api/v1/calendars/acme/services/consult/slots?from={day}&to={day}")
    assert slots.status_code == 200
    booked = client.post(  # a visit: its messages go on every event
        "/api/v1/calendars/acme/services/visit/bookings",
        json={
            "start": start_at(10),
            "client": {"name": "P", "email": "p@example.org"},
            "answers": {"topic": "Knee"},
        },
    )
    assert booked.status_code == 201, booked.get_json()
    refused = client.post(  # the same place again, full: not counted
        "/api/v1/calendars/acme/services/review/bookings",
        json={"start": "2020-01-01T09:00:00+01:00", "client": {"name": "Q", "email": "q@x.org"}},
    )
    assert refused.status_code >= 400
    assert sample("bookwise_slot_search_seconds_count") > searches
    assert sample("bookwise_bookings_made_total", source="api") == made + 1
    # No mail server answers here: the two e-mails due fail (to be tried again), the webhook
    # (no channel enabled) is skipped; each outcome counted once.
    failed = sample("bookwise_deliveries_total", channel="email", result="failed")
    skipped = sample("bookwise_deliveries_total", channel="webhook", result="skipped")
    Dispatcher(scenario.settings, scenario.database, clock=clock).drain()
    assert sample("bookwise_deliveries_total", channel="email", result="failed") == failed + 2
    assert sample("bookwise_deliveries_total", channel="webhook", result="skipped") == skipped + 1

    text = client.get("/metrics").get_data(as_text=True)
    assert 'bookwise_request_seconds_count{endpoint="api.slots",method="GET",status="2xx"}' in text
    assert 'bookwise_bookings_made_total{source="api"}' in text
    assert "bookwise_outbox_due " in text and "bookwise_outbox_oldest_due_seconds " in text
    assert 'bookwise_outbox_messages{channel="email",state="failed"} 2.0' in text
    assert 'bookwise_outbox_messages{channel="email",state="pending"} 2.0' in text


def test_metrics_only_for_the_networks_configured(scenario_app: Any) -> None:
    client = scenario_app.test_client()
    assert client.get("/metrics").status_code == 200  # the test client comes from 127.0.0.1
    elsewhere = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert elsewhere.status_code == 404


def test_a_network_that_cannot_be_read_is_named(tmp_path: Any, database_url: str) -> None:
    values = base_config(tmp_path, database_url) | {"monitoring": {"metrics_from": ["10.0.0/8"]}}
    with pytest.raises(ConfigError, match=r"monitoring.metrics_from: '10.0.0/8' is not an addr"):
        load_settings(write_config(tmp_path / "config.yaml", values), environ={})
