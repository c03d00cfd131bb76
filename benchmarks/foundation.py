"""How long the foundation's everyday operations take: checking the workflow files, loading the
demo calendars, and reloading them unchanged. Run: .venv/bin/python benchmarks/foundation.py

Prints medians and 95th percentiles over repeated runs (this machine is shared and noisy: compare
figures from one run, not across days).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bookwise import instance  # noqa: E402
from bookwise.config import load_settings  # noqa: E402
from bookwise.database import open_database, prepare_schema  # noqa: E402
from bookwise.workflows.sources import check_instance_workflows  # noqa: E402


def measure(label: str, action: Callable[[], object], repeat: int) -> None:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    print(f"{label:<48} median {statistics.median(times):8.1f} ms   p95 {p95:8.1f} ms   n={repeat}")


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "config.yaml"
        config.write_text(
            f"database_url: sqlite:///{folder}/bench.db\n"
            f"secret_key: {'b' * 40}\n"
            f"instance_dir: {folder}/instance\n"
            f"workflows: {ROOT / 'workflows'}\nforms: {ROOT / 'forms'}\n"
        )
        settings = load_settings(config, environ={})
        database = open_database(settings)
        prepare_schema(database)
        demo = ROOT / "demo" / "calendars.yaml"

        measure(
            "check 4 workflow files + 2 field sets", lambda: check_instance_workflows(settings), 30
        )
        instance.sync_workflows(settings, database)
        measure(
            "sync workflow files (unchanged)",
            lambda: instance.sync_workflows(settings, database),
            30,
        )
        measure(
            "load demo calendars (first: create, then none)",
            lambda: instance.load_calendar_file(settings, database, demo),
            30,
        )
        database.engine.dispose()


if __name__ == "__main__":
    main()
