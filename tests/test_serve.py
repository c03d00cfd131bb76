"""``bookwise serve``: gunicorn with several web processes on the scenario's database, over real
HTTP; their metrics added up at /metrics (issue 20)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import ROOT, SCENARIO, TEST_NOW, base_config, write_config
from tests.test_concurrency import _free_port

pytestmark = pytest.mark.slow
PARIS = ZoneInfo("Europe/Paris")


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def served(scenario: Any, tmp_path: Path) -> Any:
    """``bookwise serve`` with two processes of one thread each, on the scenario's database."""
    values = base_config(tmp_path, scenario.settings.database_url) | {
        "workflows": str(SCENARIO / "workflows")
    }
    config = write_config(tmp_path / "serve.yaml", values)
    port = _free_port()
    environment = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    process = subprocess.Popen(
        [sys.executable, "-m", "bookwise.cli", "serve", "--config", str(config),
         "--port", str(port), "--workers", "2", "--threads", "1"],
        cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            if process.poll() is not None:
                raise AssertionError(process.stdout.read() if process.stdout else "exited")
            try:
                if _get(url + "/readyz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("bookwise serve did not become ready")
        yield url, tmp_path / "instance" / "metrics"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=40) == 0  # a graceful stop


def test_two_processes_serve_and_count_together(served: tuple[str, Path]) -> None:
    url, folder = served
    ready = json.loads(_get(url + "/readyz")[1])
    assert ready["status"] == "ready" and ready["checks"]["migrations"]["state"] == "current"
    day = (TEST_NOW.astimezone(PARIS) + timedelta(days=2)).date().isoformat()
    slots = f"{url}/api/v1/calendars/acme/services/consult/slots?from={day}&to={day}"
    with ThreadPoolExecutor(8) as pool:  # at once: both processes take some
        answers = list(pool.map(lambda _n: _get(slots)[0], range(40)))
    assert answers == [200] * 40
    # Each process wrote its own counts; /metrics adds them up.
    assert len({path.name.split("_")[-1] for path in folder.glob("histogram_*.db")}) >= 2
    status, text = _get(url + "/metrics")
    assert status == 200
    line = 'bookwise_request_seconds_count{endpoint="api.slots",method="GET",status="2xx"}'
    counted = [row for row in text.splitlines() if row.startswith(line)]
    assert counted == [f"{line} 40.0"], counted


def test_serving_an_empty_database_says_what_to_do(
    bookwise_cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In this process prometheus_client is imported already: its folder given, as serve wants.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    values = base_config(tmp_path, f"sqlite:///{tmp_path / 'empty.db'}")
    config = write_config(tmp_path / "empty.yaml", values)
    result = bookwise_cli("serve", "--config", str(config), "--port", str(_free_port()))
    assert result.exit_code == 1
    assert "run bookwise init first" in result.stderr
