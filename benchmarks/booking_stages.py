"""Where a booking's milliseconds go (issue 20). Run:

    .venv/bin/python benchmarks/booking_stages.py [POSTGRES_URL]

The app of benchmarks/booking.py (the demo instance, the tutoring service, the API's POST over
the test client), with each stage of the booking wrapped in a timer: 33 bookings after one to
warm up, the mean time per booking of each stage, and what the wrapped stages leave (Flask, the
request body, the commit). A stage the code does not have (an older commit) is left out.
"""

from __future__ import annotations

import functools
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from availability import target  # noqa: E402
from booking import CALENDAR, SERVICE, answers_for, demo_app, spaced_starts  # noqa: E402

from bookwise.api import views as api  # noqa: E402
from bookwise.bookings import services as bookings  # noqa: E402

STAGES = (
    (api, "find_service", "find the service"),
    (bookings, "check_answers", "check the answers"),
    (bookings, "read_pool", "the pool"),
    (bookings, "_lock_staff", "lock staff rows (PostgreSQL)"),
    (bookings, "_claim", "claim the member (PostgreSQL)"),
    (bookings, "_slot_at", "the slot: staff time and engine"),
    (bookings, "_staff_order", "who: the strategy"),
    (bookings, "_choose_staff", "who: the strategy"),
    (bookings, "_take_turn", "the member's turn"),
    (bookings, "_flush_or_taken", "insert the client and the booking"),
    (bookings, "record_new_booking", "history, webhook endpoints, plugins"),
    (bookings, "plan_event", "plan the messages"),
    (bookings, "plan_timed", "plan the reminders"),
    (api, "_booking_json", "the answer's JSON"),
    (api, "created", "the answer (idempotency)"),
)


def wrap(spent: dict[str, float]) -> None:
    for module, name, label in STAGES:
        original = getattr(module, name, None)
        if original is None:
            continue

        def timed(*args: Any, _original: Any = original, _label: str = label, **kw: Any) -> Any:
            started = time.perf_counter()
            try:
                return _original(*args, **kw)
            finally:
                spent[_label] += time.perf_counter() - started

        setattr(module, name, functools.wraps(original)(timed))


def run(database_url: str) -> None:
    spent: dict[str, float] = defaultdict(float)
    wrap(spent)
    with tempfile.TemporaryDirectory() as folder:
        app = demo_app(folder, database_url.replace("FOLDER", folder))
        client = app.test_client()
        base = f"/api/v1/calendars/{CALENDAR}/services"
        answers = answers_for(client)
        starts = spaced_starts(client)
        total, count = 0.0, 0
        for number, start in enumerate(starts[:34]):
            if number == 1:  # the first warms the caches
                spent.clear()
                total, count = 0.0, 0
            body = {
                "start": start,
                "client": {"name": f"C{number}", "email": f"c{number}@example.org"},
                "answers": answers,
                "consent": True,
            }
            began = time.perf_counter()
            answer = client.post(f"{base}/{SERVICE}/bookings", json=body)
            total += time.perf_counter() - began
            count += 1
            assert answer.status_code == 201, answer.get_json()
        app.extensions["bookwise"].database.engine.dispose()
    print(f"{database_url.split(':', 1)[0]}: {count} bookings, mean {total / count * 1000:.2f} ms")
    for label, seconds in spent.items():
        print(f"  {label:<42} {seconds / count * 1000:6.2f} ms")
    rest = (total - sum(spent.values())) / count * 1000
    print(f"  {'the rest (Flask, the body, the commit)':<42} {rest:6.2f} ms")


def main() -> None:
    if len(sys.argv) < 2:
        run("sqlite:///FOLDER/bench.db")
        return
    with tempfile.TemporaryDirectory() as folder, target(sys.argv[1], Path(folder)) as url:
        run(url)


if __name__ == "__main__":
    main()
