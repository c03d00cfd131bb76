"""What the rate limits cost a request. Run:

    .venv/bin/python benchmarks/ratelimits.py

Over the test client, in one process: a client's change of a booking (``POST
/api/v1/manage/<token>/cancel`` with an unknown token: the limiter counts it, then the view answers
404 after one indexed SELECT) with the limits off, counted in memory, and counted in the Redis
server on loopback (127.0.0.1:6379, the machine's); the limits are set so high that none refuses.
Medians and 95th percentiles of batches of 200 requests, per request; the ratio to "off" is the
figure to compare (this machine is shared and noisy).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bookwise.app import create_app  # noqa: E402
from bookwise.config import load_settings  # noqa: E402
from bookwise.database import open_database, prepare_schema  # noqa: E402

BATCH, BATCHES = 200, 15
HIGH = "1000000 per day"


def app_with(folder: str, name: str, **limits: Any) -> Any:
    config = Path(folder) / f"{name}.yaml"
    storage = limits.get("storage", "memory://")
    config.write_text(
        f"database_url: sqlite:///{folder}/bench.db\n"
        f"secret_key: {'b' * 40}\n"
        f"instance_dir: {folder}/instance\n"
        f"workflows: {ROOT / 'workflows'}\nforms: {ROOT / 'forms'}\n"
        "log_level: WARNING\n"
        "security:\n  rate_limits:\n"
        f"    enabled: {str(limits.get('enabled', True)).lower()}\n"
        f"    storage: {storage}\n"
        f"    manage_per_address: {HIGH}\n"
    )
    settings = load_settings(config, environ={})
    prepare_schema(open_database(settings))
    return create_app(settings)


def per_request_ms(app: Any) -> list[float]:
    client = app.test_client()
    url = "/api/v1/manage/" + "x" * 43 + "/cancel"
    for _ in range(50):  # warm up
        client.post(url, json={})
    batches = []
    for _ in range(BATCHES):
        start = time.perf_counter()
        for _ in range(BATCH):
            assert client.post(url, json={}).status_code == 404
        batches.append((time.perf_counter() - start) * 1000 / BATCH)
    return sorted(batches)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        runs = {
            "limits off": app_with(folder, "off", enabled=False),
            "limits counted in memory": app_with(folder, "memory"),
            "limits counted in Redis (loopback)": app_with(
                folder, "redis", storage="redis://127.0.0.1:6379/0"
            ),
        }
        results = {label: per_request_ms(app) for label, app in runs.items()}
        base = statistics.median(results["limits off"])
        for label, times in results.items():
            median = statistics.median(times)
            p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
            print(
                f"{label:<36} median {median:6.3f} ms   p95 {p95:6.3f} ms   "
                f"x{median / base:4.2f} of off   ({BATCHES} batches of {BATCH})"
            )


if __name__ == "__main__":
    main()
