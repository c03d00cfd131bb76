"""Staff members' own calendars read for busy times, over a real HTTP server on loopback: the
fetch's limits (304, 404, timeout, size, redirects, private addresses), the refresh that replaces
busy times in one transaction and keeps them when a read fails, the slots API that stops offering
a busy time, the e-mail after a day of failing, the CLI, the job and the calendar data file."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bookwise.calendars.fetching import FetchError, fetch, label_of
from bookwise.calendars.models import BusyTime, CalendarSource, StaffMember
from bookwise.calendars.sources import (
    add_url_source,
    refresh_sources,
    source_statuses,
    tell_about_failures,
)
from bookwise.config import FeedSettings
from bookwise.db import unit_of_work
from bookwise.notifications.models import Notification
from tests.conftest import TEST_NOW, Loaded
from tests.test_api import tomorrow_at

pytestmark = pytest.mark.clock

FEEDS = FeedSettings(
    refresh_minutes=15, timeout=2, max_bytes=1_000_000, allow_private_addresses=True
)


def ics(*events: tuple[datetime, datetime], extra: str = "") -> bytes:
    """A calendar as Outlook publishes one: titles, places and attendees included."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Microsoft Corporation//Outlook 16.0//EN"]
    for index, (start, end) in enumerate(events):
        lines += [
            "BEGIN:VEVENT",
            f"UID:event-{index}@example.org",
            "DTSTAMP:20261201T000000Z",
            f"DTSTART:{start.astimezone(UTC):%Y%m%dT%H%M%SZ}",
            f"DTEND:{end.astimezone(UTC):%Y%m%dT%H%M%SZ}",
            f"SUMMARY:Chemotherapy review, patient {index}",
            "LOCATION:Room 12",
            "ATTENDEE;CN=Jane Doe:mailto:jane@example.org",
            "END:VEVENT",
        ]
    return "\r\n".join([*lines, *([extra] if extra else []), "END:VCALENDAR"]).encode()


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    etag: str | None = None
    delay: float = 0
    headers: dict[str, str] = field(default_factory=dict)
    stream_bytes: int = 0  # send this many bytes, without Content-Length


class FeedServer:
    """An HTTP server on loopback serving calendars; each test sets its routes."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append((self.path, dict(self.headers)))
                route = server.routes.get(self.path, Route(404, b"not found"))
                if route.delay:
                    time.sleep(route.delay)
                if route.etag and self.headers.get("If-None-Match") == route.etag:
                    self.send_response(304)
                    self.send_header("ETag", route.etag)
                    self.end_headers()
                    return
                self.send_response(route.status)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                if route.etag:
                    self.send_header("ETag", route.etag)
                if route.stream_bytes:
                    self.end_headers()
                    chunk = b"X" * 65536
                    try:
                        for _ in range(route.stream_bytes // len(chunk)):
                            self.wfile.write(chunk)
                    except OSError:
                        pass  # the reader stopped: what the size limit is for
                    return
                self.send_header("Content-Type", "text/calendar")
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.close()


# --- fetching -------------------------------------------------------------------------------------


def test_an_unchanged_calendar_costs_one_short_answer(feed_server: FeedServer) -> None:
    feed_server.routes["/cal.ics"] = Route(body=b"BEGIN:VCALENDAR", etag='"v1"')
    first = fetch(feed_server.url + "/cal.ics", FEEDS)
    assert first.body == b"BEGIN:VCALENDAR"
    assert first.etag == '"v1"'
    again = fetch(feed_server.url + "/cal.ics", FEEDS, etag=first.etag)
    assert again.body is None  # 304: nothing to read again
    assert feed_server.requests[-1][1]["If-None-Match"] == '"v1"'
    feed_server.routes["/cal.ics"] = Route(body=b"BEGIN:VCALENDAR changed", etag='"v2"')
    changed = fetch(feed_server.url + "/cal.ics", FEEDS, etag=first.etag)
    assert changed.body == b"BEGIN:VCALENDAR changed"
    assert changed.etag == '"v2"'


@pytest.mark.parametrize(
    ("route", "code", "detail"),
    [
        (Route(404, b"gone"), "not_found", "404"),
        (Route(403, b"no"), "not_public", "403"),
        (Route(503, b"busy"), "http_status", "503"),
        (Route(delay=1.5), "timeout", "0.5"),
        (Route(stream_bytes=50_000_000), "too_large", "1000000"),
        (Route(body=b"x" * 2_000_000), "too_large", "1000000"),
        (Route(302, headers={"Location": "/cal.ics"}), "redirects", "5"),
        (Route(302, headers={"Location": "file:///etc/passwd"}), "not_http", "file:///etc/passwd"),
    ],
    ids=[
        "404",
        "403",
        "503",
        "timeout",
        "50MB-stream",
        "too-long",
        "redirect-loop",
        "redirect-to-file",
    ],
)
@pytest.mark.timeout(60)  # nothing waits for the whole body or forever
def test_each_failure_has_its_code(
    feed_server: FeedServer, route: Route, code: str, detail: str
) -> None:
    feed_server.routes["/cal.ics"] = route
    settings = replace(FEEDS, timeout=0.5)
    with pytest.raises(FetchError) as caught:
        fetch(feed_server.url + "/cal.ics", settings)
    assert (caught.value.code, caught.value.detail) == (code, detail)


@pytest.mark.timeout(60)
def test_a_slow_drip_is_cut_at_the_timeout(feed_server: FeedServer) -> None:
    """A server sending a byte at a time never trips the socket timeout; the whole-answer
    deadline stops it."""

    class Drip(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            try:
                for _ in range(100):
                    self.wfile.write(b"B" * 70_000)
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Drip)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with pytest.raises(FetchError) as caught:
            fetch(
                f"http://127.0.0.1:{httpd.server_port}/",
                replace(FEEDS, timeout=0.5, max_bytes=50_000_000),
            )
        assert caught.value.code == "timeout"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "0.0.0.0"])
def test_private_addresses_are_refused_unless_allowed(feed_server: FeedServer, host: str) -> None:
    port = feed_server.httpd.server_port
    with pytest.raises(FetchError) as caught:
        fetch(f"http://{host}:{port}/cal.ics", replace(FEEDS, allow_private_addresses=False))
    assert caught.value.code in ("private_address", "unreachable")
    if host in ("127.0.0.1", "localhost"):
        assert caught.value.code == "private_address"
    assert not feed_server.requests  # refused before a byte was sent


def test_a_redirect_into_the_private_network_is_refused(feed_server: FeedServer) -> None:
    """An address may look public and redirect inside: the check is on every connection."""
    feed_server.routes["/out"] = Route(302, headers={"Location": "http://127.0.0.1:9/secret"})
    with pytest.raises(FetchError) as caught:
        fetch(feed_server.url + "/out", FEEDS)  # the first hop is allowed here (loopback test)
    assert caught.value.code in ("unreachable", "private_address")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/cal.ics",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "cal.ics",
        "",
        "https://example.org/\udfff.ics",
        "https://example.org/" + "a" * 2000,
    ],
)
def test_only_web_addresses_are_read(url: str) -> None:
    with pytest.raises(FetchError) as caught:
        fetch(url, FEEDS)
    assert caught.value.code == "not_http"


def test_the_label_hides_the_secret_part_of_an_address() -> None:
    url = "https://calendar.google.com/calendar/ical/ana%40x.org/private-9f8e7d/basic.ics?t=SECRET"
    assert "SECRET" not in label_of(url)
    assert label_of(url).startswith("calendar.google.com/calendar/ical/")


# --- refreshing -----------------------------------------------------------------------------------


def member(loaded: Loaded, slug: str) -> StaffMember:
    with loaded.database.sessions() as session:
        found = session.scalar(sa.select(StaffMember).where(StaffMember.slug == slug))
        assert found is not None
        return found


def add_source(loaded: Loaded, slug: str, url: str, now: datetime) -> int:
    with unit_of_work(loaded.database.sessions, write=True) as session:
        staff = session.scalar(sa.select(StaffMember).where(StaffMember.slug == slug))
        assert staff is not None
        return add_url_source(session, staff, url, actor="test", now=now).id


def busy_of(loaded: Loaded, slug: str) -> list[tuple[datetime, datetime]]:
    with loaded.database.sessions() as session:
        rows = session.execute(
            sa.select(BusyTime.start_at, BusyTime.end_at)
            .join(StaffMember, BusyTime.staff_id == StaffMember.id)
            .where(StaffMember.slug == slug)
            .order_by(BusyTime.start_at)
        ).all()
    return [tuple(row) for row in rows]


def slot_times(api: Any, service: str, day: datetime, staff: str | None = None) -> set[datetime]:
    query = f"from={day.date()}&to={day.date()}" + (f"&staff={staff}" if staff else "")
    data = api.get(f"/api/v1/calendars/acme/services/{service}/slots?{query}").get_json()
    return {datetime.fromisoformat(s["start"]) for s in data["slots"]}


def test_after_a_refresh_a_busy_time_is_no_longer_offered(
    scenario: Loaded, scenario_app: Any, feed_server: FeedServer, now: datetime
) -> None:
    api = scenario_app.test_client()
    ten, eleven = tomorrow_at(10), tomorrow_at(11)
    assert ten in slot_times(api, "review", ten, staff="ben")
    feed_server.routes["/ben.ics"] = Route(body=ics((ten, eleven)), etag='"1"')
    add_source(scenario, "ben", feed_server.url + "/ben.ics", now)

    outcomes = refresh_sources(scenario.database.sessions, FEEDS, now)

    assert [(o.staff, o.outcome, o.busy) for o in outcomes] == [("ben", "updated", 1)]
    assert busy_of(scenario, "ben") == [(ten.astimezone(UTC), eleven.astimezone(UTC))]
    offered = slot_times(api, "review", ten, staff="ben")
    assert ten not in offered
    assert tomorrow_at(10, 30) not in offered  # 10:30 overlaps too
    # Review keeps 15 minutes after each appointment: 11:15 is the first time after it.
    assert tomorrow_at(11, 15) in offered
    # The others are free: the pooled service still offers 10:00, with them.
    assert ten in slot_times(api, "consult", ten)
    # Only the times were kept: no title, place or attendee anywhere.
    with scenario.database.sessions() as session:
        source = session.scalars(sa.select(CalendarSource)).one()
        assert "Chemotherapy" not in (source.content or "")
        assert "jane@example.org" not in (source.content or "")
        assert session.scalars(sa.select(BusyTime.summary)).all() == [None]


def test_when_every_consultant_is_busy_the_time_is_gone(
    scenario: Loaded, scenario_app: Any, feed_server: FeedServer, now: datetime
) -> None:
    api = scenario_app.test_client()
    ten = tomorrow_at(10)
    feed_server.routes["/busy.ics"] = Route(body=ics((ten, tomorrow_at(11))))
    for slug in ("ana", "ben", "cleo"):
        add_source(scenario, slug, feed_server.url + "/busy.ics", now)
    refresh_sources(scenario.database.sessions, FEEDS, now)
    assert ten not in slot_times(api, "consult", ten)
    assert tomorrow_at(11) in slot_times(api, "consult", ten)


def test_unchanged_304_and_a_failure_keep_the_busy_times(
    scenario: Loaded, feed_server: FeedServer, now: datetime
) -> None:
    ten, eleven = tomorrow_at(10), tomorrow_at(11)
    feed_server.routes["/ben.ics"] = Route(body=ics((ten, eleven)), etag='"1"')
    add_source(scenario, "ben", feed_server.url + "/ben.ics", now)
    refresh_sources(scenario.database.sessions, FEEDS, now)
    kept = busy_of(scenario, "ben")
    assert len(kept) == 1

    # Not due yet: nothing is fetched.
    before = len(feed_server.requests)
    assert refresh_sources(scenario.database.sessions, FEEDS, now + timedelta(minutes=5)) == []
    assert len(feed_server.requests) == before

    later = now + timedelta(minutes=16)
    [unchanged] = refresh_sources(scenario.database.sessions, FEEDS, later)
    assert unchanged.outcome == "unchanged"
    assert busy_of(scenario, "ben") == kept

    # The address now answers garbage, then 404: the last good times stay, the status says why.
    feed_server.routes["/ben.ics"] = Route(body=b"<html><body>Sign in</body></html>")
    [garbage] = refresh_sources(scenario.database.sessions, FEEDS, later, force=True)
    assert garbage.outcome == "failed"
    assert garbage.problem is not None
    assert "not an iCalendar file" in garbage.problem.text
    assert busy_of(scenario, "ben") == kept
    feed_server.routes["/ben.ics"] = Route(404, b"gone")
    [missing] = refresh_sources(scenario.database.sessions, FEEDS, later, force=True)
    assert missing.problem is not None
    assert missing.problem.text % dict(missing.problem.values) == (
        "There is no calendar at this address any more (the server answered 404): it may have "
        "been unpublished or moved, or the address was copied incompletely."
    )
    assert busy_of(scenario, "ben") == kept
    with scenario.database.sessions() as session:
        [status] = source_statuses(session, calendar="acme")
    assert status.failing and status.failing_since == later
    assert status.last_success_at == later  # the 304 was a success


def test_failures_back_off_and_a_day_of_them_tells_staff_and_admins_once(
    scenario: Loaded, feed_server: FeedServer, now: datetime
) -> None:
    feed_server.routes["/ben.ics"] = Route(503, b"down")
    source_id = add_source(scenario, "ben", feed_server.url + "/ben.ics", now)
    moments = [now]
    refresh_sources(scenario.database.sessions, FEEDS, now)
    waits = []
    for _ in range(8):
        with scenario.database.sessions() as session:
            source = session.get(CalendarSource, source_id)
            assert source is not None and source.next_attempt_at is not None
            waits.append(source.next_attempt_at - moments[-1])
            moments.append(source.next_attempt_at)
        refresh_sources(scenario.database.sessions, FEEDS, moments[-1])
    assert waits[:5] == [timedelta(minutes=m) for m in (15, 30, 60, 120, 240)]
    assert max(waits) == timedelta(hours=6)

    def notices() -> list[Notification]:
        with scenario.database.sessions() as session:
            return list(
                session.scalars(
                    sa.select(Notification).where(Notification.event == "calendar-feed-failing")
                )
            )

    assert moments[-1] - now > timedelta(days=1)
    recipients = sorted(n.recipient for n in notices())
    assert recipients == ["ben@acme.example"]  # the scenario's calendar has no admin user
    with unit_of_work(scenario.database.sessions, write=True) as session:
        assert tell_about_failures(session, moments[-1] + timedelta(hours=1)) == 0
    assert len(notices()) == 1

    # Working again: the next failing spell is told about again, a day after it starts.
    feed_server.routes["/ben.ics"] = Route(body=ics())
    back = moments[-1] + timedelta(hours=7)
    [ok] = refresh_sources(scenario.database.sessions, FEEDS, back)
    assert ok.outcome == "updated"
    with scenario.database.sessions() as session:
        source = session.get(CalendarSource, source_id)
        assert source is not None
        assert (source.failures, source.failing_since, source.error_code) == (0, None, None)


def test_the_failure_message_reads_well(
    scenario: Loaded, feed_server: FeedServer, now: datetime
) -> None:
    from bookwise.notifications.delivery import Dispatcher

    feed_server.routes["/ben.ics"] = Route(404, b"gone")
    add_source(scenario, "ben", feed_server.url + "/ben.ics", now)
    refresh_sources(scenario.database.sessions, FEEDS, now)
    with unit_of_work(scenario.database.sessions, write=True) as session:
        assert tell_about_failures(session, now + timedelta(days=1, minutes=1)) == 1
    dispatcher = Dispatcher(
        replace(scenario.settings, mail=replace(scenario.settings.mail, transport="log")),
        scenario.database,
        clock=lambda: now + timedelta(days=1, minutes=2),
    )
    assert dispatcher.drain() == 1
    log = (scenario.settings.instance_dir / "messages.log").read_text(encoding="utf-8")
    assert "Ben's calendar cannot be read: 127.0.0.1/ben.ics" in log
    assert "There is no calendar at this address any more (the server answered 404)" in log
    assert "/admin/staff/" in log


def test_removing_a_staff_member_source_frees_their_time(
    scenario: Loaded, feed_server: FeedServer, now: datetime
) -> None:
    from bookwise.calendars.sources import remove_source

    feed_server.routes["/ben.ics"] = Route(body=ics((tomorrow_at(10), tomorrow_at(11))))
    source_id = add_source(scenario, "ben", feed_server.url + "/ben.ics", now)
    refresh_sources(scenario.database.sessions, FEEDS, now)
    assert busy_of(scenario, "ben")
    with unit_of_work(scenario.database.sessions, write=True) as session:
        source = session.get(CalendarSource, source_id)
        assert source is not None
        remove_source(session, source, actor="test")
    assert busy_of(scenario, "ben") == []


def test_adding_an_address_twice_or_a_non_address_is_refused(
    scenario: Loaded, now: datetime
) -> None:
    from bookwise.calendars.sources import SourceRefused

    add_source(scenario, "ben", "webcal://example.org/ben.ics", now)
    with pytest.raises(SourceRefused, match="already one of this person's calendars"):
        add_source(scenario, "ben", "https://example.org/ben.ics", now)
    with pytest.raises(SourceRefused, match="not a web address"):
        add_source(scenario, "ben", "mailto:ben@example.org", now)


# --- the job, the CLI, the calendar data file -----------------------------------------------------


def test_the_refresh_job_is_registered_once_per_instance(settings: Any) -> None:
    from bookwise.scheduling.core import core_jobs

    [job] = [j for j in core_jobs(settings) if j.name == "refresh-calendar-feeds"]
    assert job.once


def _config_with_feeds(tmp_path: Path, database_url: str, data: Path) -> Path:
    from tests.conftest import SCENARIO, base_config, write_config

    values = base_config(tmp_path, database_url) | {
        "workflows": str(SCENARIO / "workflows"),
        "demo_data": None,
        "feeds": {"allow_private_addresses": True, "timeout": 2},
    }
    return write_config(tmp_path / "feeds.yaml", values)


def test_calendar_feeds_in_the_data_file_and_the_cli(
    tmp_path: Path, database_url: str, bookwise_cli: Any, feed_server: FeedServer
) -> None:
    from tests.conftest import SCENARIO

    ten = tomorrow_at(10)
    (tmp_path / "ana.ics").write_bytes(ics((ten, tomorrow_at(11))))
    feed_server.routes["/ben.ics"] = Route(body=ics((ten, tomorrow_at(12))), etag='"b"')
    data = (SCENARIO / "calendars.yaml").read_text(encoding="utf-8")
    data = data.replace(
        "{id: ana, name: Ana, email: ana@acme.example, tags: [consultant, host]}",
        "{id: ana, name: Ana, email: ana@acme.example, tags: [consultant, host],"
        " calendar_feeds: [{file: ana.ics}]}",
    ).replace(
        "{id: ben, name: Ben, email: ben@acme.example, tags: [consultant]}",
        "{id: ben, name: Ben, email: ben@acme.example, tags: [consultant],"
        f" calendar_feeds: [{{url: '{feed_server.url}/ben.ics'}}]}}",
    )
    calendars = tmp_path / "calendars.yaml"
    calendars.write_text(data, encoding="utf-8")
    config = _config_with_feeds(tmp_path, database_url, calendars)
    at = ["--at", TEST_NOW.isoformat()]
    assert bookwise_cli("--config", str(config), "init").exit_code == 0
    loaded = bookwise_cli("--config", str(config), "load", str(calendars), *at)
    assert loaded.exit_code == 0, loaded.stderr
    assert "calendar feed acme/ana  ana.ics  updated  1 busy interval(s) kept" in loaded.stdout
    assert "acme/ben  127.0.0.1/ben.ics  updated  1 busy interval(s) kept" in loaded.stdout

    refreshed = bookwise_cli("--config", str(config), "feeds", "refresh", *at)
    assert refreshed.exit_code == 0, refreshed.stderr
    assert "acme/ben  127.0.0.1/ben.ics  unchanged  1 busy interval(s) kept" in refreshed.stdout

    feed_server.routes["/ben.ics"] = Route(404, b"gone")
    failed = bookwise_cli("--config", str(config), "feeds", "refresh", "--calendar", "acme", *at)
    assert failed.exit_code == 1
    assert "acme/ben  127.0.0.1/ben.ics  failed  1 busy interval(s) kept: There is no calendar" in (
        failed.stderr
    )
    status = bookwise_cli("--config", str(config), "feeds", "status")
    assert status.exit_code == 1
    assert "acme/ana  ana.ics  last read" in status.stdout
    assert (
        "problem: There is no calendar at this address any more (the server answered 404)"
        in status.stderr
    )

    # Listed no more in the file: the source and its busy times go.
    calendars.write_text((SCENARIO / "calendars.yaml").read_text(encoding="utf-8"), "utf-8")
    assert bookwise_cli("--config", str(config), "load", str(calendars), *at).exit_code == 0
    status = bookwise_cli("--config", str(config), "feeds", "status")
    assert status.exit_code == 0
    assert "no staff calendars" in status.stdout


@pytest.mark.parametrize(
    ("feed", "message"),
    [
        ("{url: 'ftp://x.org/a.ics'}", "is not a calendar address"),
        ("{file: missing.ics}", "cannot read missing.ics next to this file"),
        ("{file: page.ics}", "page.ics: This is not an iCalendar file"),
        ("{url: 'https://x.org/a.ics', file: a.ics}", "either {url"),
        ('{url: "https://x.org/\\udfff.ics"}', "the address holds a character no address has"),
    ],
)
def test_bad_calendar_feeds_in_a_data_file_are_refused_at_their_line(
    tmp_path: Path, database_url: str, bookwise_cli: Any, feed: str, message: str
) -> None:
    from tests.conftest import SCENARIO

    (tmp_path / "page.ics").write_text("<html>Sign in</html>", encoding="utf-8")
    data = (
        (SCENARIO / "calendars.yaml")
        .read_text(encoding="utf-8")
        .replace(
            "{id: ben, name: Ben, email: ben@acme.example, tags: [consultant]}",
            "{id: ben, name: Ben, email: ben@acme.example, tags: [consultant],\n"
            f"         calendar_feeds: [{feed}]}}",
        )
    )
    calendars = tmp_path / "calendars.yaml"
    calendars.write_text(data, encoding="utf-8")
    config = _config_with_feeds(tmp_path, database_url, calendars)
    assert bookwise_cli("--config", str(config), "init").exit_code == 0
    result = bookwise_cli("--config", str(config), "load", str(calendars))
    assert result.exit_code == 1
    line = data.splitlines().index(next(x for x in data.splitlines() if "calendar_feeds" in x)) + 1
    assert f"calendars.yaml:{line}:" in result.stderr
    assert message in result.stderr


def test_a_problem_reads_whole_in_the_readers_language() -> None:
    """The parser's own phrase inside the message is translated too; a status stays a status."""
    from bookwise.calendars.sources import in_words, problem_of
    from bookwise.formatting import translator

    page = problem_of("not_icalendar", "it looks like a web page")
    assert page is not None
    french = in_words(page, translator("fr"))
    assert french.startswith("Ce n'est pas un fichier iCalendar (cela ressemble à une page web)")
    gone = problem_of("not_found", "404")
    assert gone is not None
    assert "(le serveur a répondu 404)" in in_words(gone, translator("fr"))
    assert "(der Server antwortete 404)" in in_words(gone, translator("de"))
