"""Bookwise's access log (``access_log: true``): one line per request, the secret tokens of its
path left out and no query string; and gunicorn's own lines as JSON under ``log_format: json``."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bookwise.app import create_app
from bookwise.tracing import RequestIdFilter, json_formatter
from tests.conftest import TEST_NOW, Loaded
from tests.test_slot_cache import book

URL = "/api/v1/calendars/acme/services/consult"


@pytest.fixture
def logged(scenario: Loaded, clock: Any) -> Iterator[Any]:
    settings = dataclasses.replace(scenario.settings, access_log=True)
    app = create_app(settings, clock=clock)
    app.config.update(TESTING=True)
    yield app
    app.extensions["bookwise"].database.dispose()


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "bookwise.access"]


def test_a_manage_link_is_logged_without_its_token(
    logged: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = logged.test_client()
    day = (TEST_NOW + timedelta(days=2)).date().isoformat()
    slots = client.get(f"{URL}/slots?from={day}&to={day}").get_json()["slots"]
    token = book(logged, datetime.fromisoformat(slots[0]["start"]))["manage_token"]
    caplog.clear()
    with caplog.at_level("INFO", logger="bookwise.access"):
        assert client.get(f"/manage/{token}").status_code == 200
        assert client.post(f"/api/v1/manage/{token}/cancel").status_code == 200
        assert client.get(f"/embed/manage/{token}?lang=fr").status_code == 200
        assert client.get(f"/feeds/{token}.ics").status_code == 404
    lines = [r.getMessage() for r in access_records(caplog)]
    assert [line.split(" ")[:3] for line in lines] == [
        ["GET", "/manage/<token>", "200"],
        ["POST", "/api/v1/manage/<token>/cancel", "200"],
        ["GET", "/embed/manage/<token>", "200"],
        ["GET", "/feeds/<token>.ics", "404"],
    ]
    everything = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    assert token not in everything
    assert "lang=fr" not in everything


def test_the_query_string_is_never_logged(logged: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A query can carry a client's answers (routing): the path alone is written."""
    with caplog.at_level("INFO", logger="bookwise.access"):
        logged.test_client().get(f"{URL}/slots?from=2030-01-07&to=2030-01-07&answers.topic=HIV")
    [record] = access_records(caplog)
    assert record.getMessage().startswith(f"GET {URL}/slots 200 ")
    assert "HIV" not in repr(record.__dict__)


def test_each_line_has_its_fields_in_json(logged: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="bookwise.access"):
        answer = logged.test_client().get("/acme/nothing-here", headers={"X-Request-ID": "abc-123"})
    assert answer.status_code == 404
    [record] = access_records(caplog)
    RequestIdFilter().filter(record)
    record.request_id = "abc-123"  # the filter reads the request's; it has ended
    line = json.loads(json_formatter().format(record))
    assert line["logger"] == "bookwise.access"
    assert (line["method"], line["path"], line["status"]) == ("GET", "/acme/nothing-here", 404)
    assert isinstance(line["duration_ms"], float) and line["client"] == "127.0.0.1"


def test_the_access_log_is_off_by_default(
    scenario: Loaded, clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(scenario.settings, clock=clock)
    try:
        with caplog.at_level("INFO", logger="bookwise.access"):
            app.test_client().get("/healthz")
        assert access_records(caplog) == []
    finally:
        app.extensions["bookwise"].database.dispose()


def test_gunicorn_writes_json_lines_under_log_format_json(tmp_path: Path) -> None:
    from gunicorn.config import Config

    from bookwise.serving import _json_logger

    config = Config()
    config.set("errorlog", str(tmp_path / "error.log"))
    logger = _json_logger()(config)
    logger.info("Booting worker with pid: %s", 1234)
    for handler in logger.error_log.handlers:
        handler.flush()
    [line] = (tmp_path / "error.log").read_text().splitlines()
    written = json.loads(line)
    assert written["message"] == "Booting worker with pid: 1234"
    assert written["logger"] == "gunicorn.error" and written["level"] == "INFO"
    assert written["request_id"] == "-"
