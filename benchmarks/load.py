"""Load on the real servers (issue 20). Run:

    .venv/bin/python benchmarks/load.py [--quick] [--workers=2] [--threads=4] [POSTGRES_URL]
    .venv/bin/python benchmarks/load.py --postgresql-only POSTGRES_URL

Needs wrk (Debian: ``apt-get install wrk``). For SQLite, then PostgreSQL when a URL is given (a
schema of its own, dropped after): the calendar of benchmarks/availability.py (50 staff working
08:00-18:00 Monday to Saturday, a 30-minute round-robin service on a 15-minute step, 2,000
bookings over 31 days), served by ``bookwise serve --workers 2 --threads 4`` (gunicorn) with one
``bookwise worker`` beside it, loaded by wrk (2 threads) over loopback. Rate limits are off (one
client address sends everything).

1. ``GET /healthz``, the trivial endpoint, served the same way: the baseline of every ratio.
2. Slots: ``GET .../slots`` for 31 days, 8 connections.
3. Bookings: 8, then 64 connections ``POST .../bookings`` at 200 start times (10 days of half
   hours, 50 staff each), each request a random one of them; then an SQL check that no staff
   member holds two bookings at once.
4. Mixed, 64 connections: 90% slot reads (one day), 9% bookings, 1% cancellations (of bookings
   this run made, by their manage tokens); every answer but 200, 201 and 409 is an error.

20 seconds a scenario and 2 minutes for the mixed one (``--quick``: 5 and 10 seconds). Each
figure is given with its ratio to the trivial endpoint's requests per second: "costs N trivial
requests"; and the CPU each request (or booking) cost, by who spent it: the web processes, the
worker (the messages a booking plans), PostgreSQL, wrk, the rest of the machine. The outbox's
drain by two workers is measured by benchmarks/outbox.py.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from availability import PARIS, bench_instance, target  # noqa: E402

from bookwise.bookings.models import Booking  # noqa: E402
from bookwise.testing import overlapping_bookings  # noqa: E402

BIN = Path(sys.executable).parent
SERVICE = "/api/v1/calendars/bench/services/bench"

# Shared by every scenario: statuses counted per thread, the manage tokens of the bookings a
# thread made (for its cancellations), and one JSON line of results at the end.
LUA_COMMON = r"""
local threads, counter = {}, 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end
function init(args)
  statuses, tokens, made = {}, {}, 0
  math.randomseed(os.time() * 100 + id)
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 201 and body then
    local token = body:match('"manage_token": *"([^"]+)"')
    if token then table.insert(tokens, token) end
  end
end
function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do counts[status] = (counts[status] or 0) + n end
  end
  local errors = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "p50": %d, "p95": %d, "p99": %d, "max": %d, '
    .. '"socket_errors": %d, "statuses": {',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max,
    errors.connect + errors.read + errors.write + errors.timeout))
  local first = true
  for status, n in pairs(counts) do
    if not first then io.write(", ") end
    io.write(string.format('"%d": %d', status, n))
    first = false
  end
  io.write("}}\n")
end
local json = {["Content-Type"] = "application/json"}
function book(start)
  made = made + 1
  local body = string.format(
    '{"start": "%s", "client": {"name": "Load %d-%d", "email": "load%d-%d@bench.example"}}',
    start, id, made, id, made)
  return wrk.format("POST", SERVICE .. "/bookings", json, body)
end
"""

LUA_BOOKINGS = r"""
function request()
  return book(STARTS[math.random(#STARTS)])
end
"""

LUA_MIXED = r"""
function request()
  local draw = math.random()
  if draw < 0.90 or (draw >= 0.99 and #tokens == 0) then
    local day = DAYS[math.random(#DAYS)]
    return wrk.format("GET", SERVICE .. "/slots?from=" .. day .. "&to=" .. day)
  elseif draw < 0.99 then
    return book(STARTS[math.random(#STARTS)])
  end
  local token = table.remove(tokens, math.random(#tokens))
  return wrk.format("POST", "/api/v1/manage/" .. token .. "/cancel", json, "{}")
end
"""


def lua_list(name: str, values: list[str]) -> str:
    return f"{name} = {{" + ", ".join(f'"{value}"' for value in values) + "}\n"


def half_hours(first: date, days: int) -> list[str]:
    """The half hours of ``days`` working days (Monday to Saturday) from ``first``, 08:00-17:30."""
    starts: list[str] = []
    day = first
    while len(starts) < days * 20:
        if day.weekday() != 6:
            for n in range(20):
                moment = datetime(day.year, day.month, day.day, 8, tzinfo=PARIS)
                starts.append((moment + timedelta(minutes=30 * n)).isoformat())
        day += timedelta(days=1)
    return starts


TICK = os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds spent by the web processes (``bookwise serve`` and its children), the
    ``bookwise worker``, the PostgreSQL server processes, wrk, and the whole machine, between
    two readings of /proc."""

    def __init__(self, server: int, worker: int) -> None:
        self.server, self.worker = server, worker

    def read(self) -> dict[str, float]:
        parents: dict[int, int] = {}
        times: dict[int, float] = {}
        names: dict[int, str] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            pid = int(entry.name)
            name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :]
            fields = rest.split()
            parents[pid], names[pid] = int(fields[1]), name
            times[pid] = (int(fields[11]) + int(fields[12])) / TICK  # utime + stime

        def under(root: int) -> float:
            family, changed = {root}, True
            while changed:
                grown = family | {pid for pid, parent in parents.items() if parent in family}
                changed, family = grown != family, grown
            return sum(times.get(pid, 0.0) for pid in family)

        busy = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        idle = int(busy[3]) + int(busy[4])  # idle + iowait
        return {
            "web": under(self.server),
            "worker": under(self.worker),
            "postgres": sum(t for pid, t in times.items() if names[pid].startswith("postgres")),
            "machine": (sum(int(v) for v in busy[:8]) - idle) / TICK,
        }

    def spent(self, before: dict[str, float], wrk_cpu: float, count: float) -> str:
        """Milliseconds of CPU per ``count`` (request or booking), by who spent them."""
        after = self.read()
        delta = {k: after[k] - before[k] for k in before}
        delta["wrk"] = wrk_cpu
        delta["rest"] = delta["machine"] - sum(
            delta[k] for k in ("web", "worker", "postgres", "wrk")
        )
        parts = ", ".join(
            f"{k} {delta[k] * 1000 / count:.2f}"
            for k in ("web", "worker", "postgres", "wrk", "rest", "machine")
        )
        return f"  CPU ms each: {parts}"


def wrk(
    url: str, seconds: int, connections: int, script: str | None, folder: Path
) -> dict[str, Any]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s"]
    path = folder / "load.lua"
    path.write_text(f'SERVICE = "{SERVICE}"\n' + LUA_COMMON + (script or ""))
    command += ["-s", str(path), url]
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["wrk_cpu"] = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(base: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise SystemExit(f"bookwise serve stopped (exit {process.returncode})")
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:  # refused, reset, timed out (processes still starting)
            pass
        time.sleep(0.2)
    raise SystemExit("bookwise serve did not become ready")


def overlaps(database_url: str) -> tuple[int, int]:
    """(bookings holding their time, pairs of them sharing a staff member and a moment)."""
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        held = connection.scalar(sa.select(sa.func.count()).where(Booking.holds_slot))
    pairs = overlapping_bookings(engine)
    engine.dispose()
    return int(held or 0), pairs


def report(label: str, result: dict[str, Any], baseline: float, counted: str = "") -> None:
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(result["statuses"].items()))
    print(
        f"  {label:<34} {result['rps']:8.1f} req/s = 1/{baseline / result['rps']:5.1f} of "
        f"the trivial endpoint; p50 {result['p50'] / 1000:7.1f} ms, p95 "
        f"{result['p95'] / 1000:7.1f} ms, p99 {result['p99'] / 1000:7.1f} ms, max "
        f"{result['max'] / 1000:7.1f} ms; {statuses}{counted}; socket errors "
        f"{result['socket_errors']}"
    )


def run(url: str | None, quick: bool, workers: int = 2, threads: int = 4) -> None:
    seconds, mixed_seconds = (5, 10) if quick else (20, 120)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        with target(url, folder) as database_url:
            _settings, database, first = bench_instance(
                folder, database_url, "log_level: WARNING\n"
            )
            database.dispose()
            config = folder / "config.yaml"
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            environment = {**os.environ, "BOOKWISE_CONFIG": str(config)}
            server = subprocess.Popen(
                [
                    str(BIN / "bookwise"),
                    "serve",
                    "--port",
                    str(port),
                    "--workers",
                    str(workers),
                    "--threads",
                    str(threads),
                ],
                env=environment,
                stdout=subprocess.DEVNULL,
            )
            worker = subprocess.Popen(
                [str(BIN / "bookwise"), "worker"], env=environment, stdout=subprocess.DEVNULL
            )
            try:
                wait_ready(base, server)
                meter = CpuMeter(server.pid, worker.pid)
                print(
                    f"{'PostgreSQL' if url else 'SQLite'}: bookwise serve ({workers} processes "
                    f"x {threads} threads) and bookwise worker; wrk, 2 threads; {seconds} s a "
                    "scenario"
                )
                before = meter.read()
                trivial = wrk(f"{base}/healthz", seconds, 8, None, folder)
                report("GET /healthz (trivial)", trivial, trivial["rps"])
                print(meter.spent(before, trivial["wrk_cpu"], trivial["requests"]))
                last = first + timedelta(days=30)
                before = meter.read()
                slots = wrk(
                    f"{base}{SERVICE}/slots?from={first}&to={last}", seconds, 8, None, folder
                )
                report("GET slots, 50 staff x 31 days", slots, trivial["rps"])
                print(meter.spent(before, slots["wrk_cpu"], slots["requests"]))

                starts = half_hours(first + timedelta(days=40), 10)
                assert len(starts) == 200
                for clients in (8, 64):
                    before = meter.read()
                    booked = wrk(
                        f"{base}/",
                        seconds,
                        clients,
                        lua_list("STARTS", starts) + LUA_BOOKINGS,
                        folder,
                    )
                    made = booked["statuses"].get("201", 0)
                    rate = made / (booked["duration_us"] / 1e6)
                    report(
                        f"POST bookings, {clients} clients, 200 times",
                        booked,
                        trivial["rps"],
                        f"; {rate:.1f} bookings/s = 1/{trivial['rps'] / rate:.1f}",
                    )
                    print(meter.spent(before, booked["wrk_cpu"], made))
                    held, pairs = overlaps(database_url)
                    print(
                        f"  after it: {held} bookings hold their time; {pairs} overlap (must be 0)"
                    )

                days = [(first + timedelta(days=n)).isoformat() for n in range(31)]
                later = half_hours(first + timedelta(days=60), 30)
                before = meter.read()
                mixed = wrk(
                    f"{base}/",
                    mixed_seconds,
                    64,
                    lua_list("DAYS", days) + lua_list("STARTS", later) + LUA_MIXED,
                    folder,
                )
                print(meter.spent(before, mixed["wrk_cpu"], mixed["requests"]))
                bad = sum(
                    n
                    for status, n in mixed["statuses"].items()
                    if status not in ("200", "201", "409")
                )
                report(
                    f"mixed 90/9/1, {mixed_seconds} s",
                    mixed,
                    trivial["rps"],
                    f"; errors (not 200/201/409): {bad}",
                )
                held, pairs = overlaps(database_url)
                print(f"  after it: {held} bookings hold their time; {pairs} overlap (must be 0)")
            finally:
                for process in (server, worker):
                    process.send_signal(signal.SIGTERM)
                for process in (server, worker):
                    try:
                        process.wait(timeout=60)
                    except subprocess.TimeoutExpired:
                        process.kill()


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    quick = "--quick" in sys.argv
    options = dict(a.removeprefix("--").split("=", 1) for a in sys.argv[1:] if "=" in a)
    workers, threads = int(options.get("workers", 2)), int(options.get("threads", 4))
    urls = [argument for argument in sys.argv[1:] if not argument.startswith("--")]
    if "--postgresql-only" not in sys.argv:
        run(None, quick, workers, threads)
    if urls:
        run(urls[0], quick, workers, threads)


if __name__ == "__main__":
    main()
