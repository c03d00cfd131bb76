"""Staff calendars on a CalDAV server, read with a service account of config.yaml: a real
Radicale started on loopback, with passwords it checks, holding Ana's calendar with a weekly
meeting (one week cancelled), a transparent event and a plain one. The source reads it, the busy
times replace the slots, and each failure (wrong password, no such calendar, unknown account,
an address inside the network, no caldav package) is said in words, the last good times kept."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bookwise.calendars.models import CalendarSource, StaffMember
from bookwise.calendars.sources import SourceRefused, add_caldav_source, refresh_sources
from bookwise.config import CaldavAccount, FeedSettings
from bookwise.db import unit_of_work
from tests.conftest import TEST_NOW, Loaded
from tests.test_api import tomorrow_at
from tests.test_calendar_sources import _config_with_feeds, busy_of, slot_times

caldav = pytest.importorskip("caldav")
pytestmark = pytest.mark.clock

SERVICE_USER, SERVICE_PASSWORD = "bookwise", "service-secret"
FEEDS = FeedSettings(
    refresh_minutes=15,
    timeout=5,
    max_bytes=1_000_000,
    allow_private_addresses=True,
    caldav_accounts={"org": CaldavAccount(SERVICE_USER, SERVICE_PASSWORD, "ORG_CALDAV")},
)

PARIS_ZONE = """BEGIN:VTIMEZONE\r
TZID:Europe/Paris\r
BEGIN:STANDARD\r
DTSTART:19701025T030000\r
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r
TZOFFSETFROM:+0200\r
TZOFFSETTO:+0100\r
END:STANDARD\r
BEGIN:DAYLIGHT\r
DTSTART:19700329T020000\r
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r
TZOFFSETFROM:+0100\r
TZOFFSETTO:+0200\r
END:DAYLIGHT\r
END:VTIMEZONE\r
"""


def local(moment: datetime) -> str:
    return f"{moment:%Y%m%dT%H%M%S}"


def event(uid: str, start: datetime, end: datetime, *extra: str) -> str:
    """One calendar object as a calendar app stores it: in Paris time, with a title."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Bookwise tests//CalDAV//EN",
        PARIS_ZONE.rstrip("\r\n"),
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20261201T000000Z",
        f"DTSTART;TZID=Europe/Paris:{local(start)}",
        f"DTEND;TZID=Europe/Paris:{local(end)}",
        f"SUMMARY:Private matter {uid}",
        *extra,
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "\r\n".join(lines) + "\r\n"


def ana_events() -> list[str]:
    weekly = tomorrow_at(16)
    return [
        event("plain", tomorrow_at(10), tomorrow_at(11)),
        event("free", tomorrow_at(14), tomorrow_at(15), "TRANSP:TRANSPARENT"),
        event(
            "weekly",
            weekly,
            tomorrow_at(17),
            "RRULE:FREQ=WEEKLY;COUNT=3",
            f"EXDATE;TZID=Europe/Paris:{local(weekly + timedelta(days=7))}",
        ),
    ]


def expected_busy() -> list[tuple[datetime, datetime]]:
    """The plain event and the weekly one's first and third weeks (the second is cancelled;
    the transparent event leaves the time free)."""
    spans = [
        (tomorrow_at(10), tomorrow_at(11)),
        (tomorrow_at(16), tomorrow_at(17)),
        (tomorrow_at(16, days=15), tomorrow_at(17, days=15)),
    ]
    return [(start.astimezone(UTC), end.astimezone(UTC)) for start, end in spans]


@dataclass
class Radicale:
    base: str
    calendar: str  # Ana's calendar collection


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_radicale(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Radicale on a free loopback port, passwords in a plain-text htpasswd file (so that a
    wrong one is really refused), every signed-in account allowed to read every calendar (as
    an organisation's service account is)."""
    users = folder / "users"
    users.write_text(f"ana:ana-secret\n{SERVICE_USER}:{SERVICE_PASSWORD}\n", encoding="utf-8")
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "radicale",
            "--config",
            "",
            "--server-hosts",
            f"127.0.0.1:{port}",
            "--storage-filesystem-folder",
            str(folder / "storage"),
            "--auth-type",
            "htpasswd",
            "--auth-htpasswd-filename",
            str(users),
            "--auth-htpasswd-encryption",
            "plain",
            "--auth-delay",
            "0",
            "--rights-type",
            "authenticated",
            "--logging-level",
            "error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("Radicale did not start") from None
            time.sleep(0.05)
    return process, f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    """The server, with Ana's calendar filled by Ana herself (the caldav client)."""
    process, base = start_radicale(tmp_path_factory.mktemp("radicale"))
    try:
        with caldav.DAVClient(
            url=base, username="ana", password="ana-secret", enable_rfc6764=False
        ) as client:
            calendar = client.principal().make_calendar(name="Personal", cal_id="personal")
            for text in ana_events():
                calendar.save_event(text)
        yield Radicale(base, f"{base}ana/personal/")
    finally:
        process.terminate()
        process.wait(timeout=10)


def add(loaded: Loaded, url: str, account: str = "org", settings: FeedSettings = FEEDS) -> int:
    with unit_of_work(loaded.database.sessions, write=True) as session:
        ben = session.scalar(sa.select(StaffMember).where(StaffMember.slug == "ben"))
        assert ben is not None
        return add_caldav_source(
            session, ben, url, account, actor="test", now=TEST_NOW, settings=settings
        ).id


def words(outcome: Any) -> str:
    assert outcome.problem is not None
    return str(outcome.problem.text % dict(outcome.problem.values))


def test_a_caldav_calendar_busy_times_are_no_longer_offered(
    scenario: Loaded, scenario_app: Any, radicale: Radicale, now: datetime
) -> None:
    api = scenario_app.test_client()
    ten = tomorrow_at(10)
    assert ten in slot_times(api, "review", ten, staff="ben")
    add(scenario, radicale.calendar)

    [outcome] = refresh_sources(scenario.database.sessions, FEEDS, now)

    assert (outcome.outcome, outcome.busy, outcome.label) == (
        "updated",
        3,
        "127.0.0.1/ana/personal/",
    )
    assert busy_of(scenario, "ben") == expected_busy()
    offered = slot_times(api, "review", ten, staff="ben")
    assert ten not in offered and tomorrow_at(16) not in offered
    assert tomorrow_at(14) in offered  # transparent: free
    with scenario.database.sessions() as session:
        source = session.scalars(sa.select(CalendarSource)).one()
        assert (source.kind, source.account) == ("caldav", "org")
        assert "Private matter" not in (source.content or "")
    # Read again at the next refresh (no ETag for a search): same times.
    [again] = refresh_sources(scenario.database.sessions, FEEDS, now + timedelta(minutes=15))
    assert again.outcome == "updated"
    assert busy_of(scenario, "ben") == expected_busy()


def test_a_wrong_password_is_said_and_the_busy_times_are_kept(
    scenario: Loaded, radicale: Radicale, now: datetime
) -> None:
    add(scenario, radicale.calendar)
    refresh_sources(scenario.database.sessions, FEEDS, now)
    wrong = replace(FEEDS, caldav_accounts={"org": CaldavAccount(SERVICE_USER, "nope")})

    [failed] = refresh_sources(scenario.database.sessions, wrong, now, force=True)

    assert failed.outcome == "failed"
    assert words(failed) == (
        "The CalDAV server refused the account 'org': check its user name and password in "
        "config.yaml, and that it may read this calendar."
    )
    assert busy_of(scenario, "ben") == expected_busy()


def test_a_calendar_that_does_not_exist_is_not_found(
    scenario: Loaded, radicale: Radicale, now: datetime
) -> None:
    add(scenario, radicale.base + "ana/no-such-calendar/")
    [failed] = refresh_sources(scenario.database.sessions, FEEDS, now)
    assert words(failed).startswith("There is no calendar at this address any more")


def test_an_unknown_account_is_refused_or_said(
    scenario: Loaded, radicale: Radicale, now: datetime
) -> None:
    with pytest.raises(SourceRefused, match=r"No CalDAV account named 'staff' in config.yaml"):
        add(scenario, radicale.calendar, account="staff")
    with pytest.raises(SourceRefused, match="not a web address"):
        add(scenario, "ftp://example.org/cal/")
    # Added with an account that config.yaml no longer has: the refresh says so.
    add(scenario, radicale.calendar)
    gone = replace(FEEDS, caldav_accounts={})
    [failed] = refresh_sources(scenario.database.sessions, gone, now)
    assert words(failed) == (
        "No CalDAV account named 'org' in config.yaml (feeds.caldav_accounts)."
    )


def test_an_address_inside_the_network_is_refused_unless_allowed(
    scenario: Loaded, radicale: Radicale, now: datetime
) -> None:
    add(scenario, radicale.calendar)
    closed = replace(FEEDS, allow_private_addresses=False)
    [failed] = refresh_sources(scenario.database.sessions, closed, now)
    assert words(failed).startswith("The address points inside this server's own network")
    assert busy_of(scenario, "ben") == []


def test_without_the_caldav_package_the_source_says_what_to_install(
    scenario: Loaded, radicale: Radicale, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "caldav.davclient", None)  # import fails, as uninstalled
    add(scenario, radicale.calendar)
    [failed] = refresh_sources(scenario.database.sessions, FEEDS, now)
    assert words(failed) == (
        "CalDAV support is not installed on this server: install bookwise[caldav]."
    )


def test_an_unreachable_server_is_said_in_words(scenario: Loaded, now: datetime) -> None:
    add(scenario, f"http://127.0.0.1:{free_port()}/ana/personal/")
    [failed] = refresh_sources(scenario.database.sessions, FEEDS, now)
    assert words(failed).startswith("The address's server could not be reached")


def test_the_config_reads_the_password_from_the_environment(tmp_path: Path) -> None:
    from bookwise.config import load_settings
    from bookwise.errors import ConfigError

    config = tmp_path / "config.yaml"
    config.write_text(
        "feeds:\n  caldav_accounts:\n    org: {username: bookwise, password_env: ORG_CALDAV}\n",
        encoding="utf-8",
    )
    settings = load_settings(config, environ={"ORG_CALDAV": "s3cret"})
    [(name, account)] = settings.feeds.caldav_accounts.items()
    assert (name, account.username, account.password) == ("org", "bookwise", "s3cret")
    assert "s3cret" not in repr(settings)
    with pytest.raises(ConfigError, match="the environment variable ORG_CALDAV is not set"):
        load_settings(config, environ={})


def test_a_caldav_calendar_in_the_data_file_loads(
    tmp_path: Path,
    database_url: str,
    bookwise_cli: Any,
    radicale: Radicale,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.conftest import SCENARIO, base_config, write_config

    data = (
        (SCENARIO / "calendars.yaml")
        .read_text(encoding="utf-8")
        .replace(
            "{id: ben, name: Ben, email: ben@acme.example, tags: [consultant]}",
            "{id: ben, name: Ben, email: ben@acme.example, tags: [consultant],"
            f" calendar_feeds: [{{caldav: '{radicale.calendar}', account: org}}]}}",
        )
    )
    calendars = tmp_path / "calendars.yaml"
    calendars.write_text(data, encoding="utf-8")
    account = {"username": SERVICE_USER, "password_env": "ORG_CALDAV"}
    config = write_config(
        tmp_path / "caldav.yaml",
        base_config(tmp_path, database_url)
        | {
            "workflows": str(SCENARIO / "workflows"),
            "demo_data": None,
            "feeds": {"allow_private_addresses": True, "caldav_accounts": {"org": account}},
        },
    )
    monkeypatch.setenv("ORG_CALDAV", SERVICE_PASSWORD)
    at = ["--at", TEST_NOW.isoformat()]
    assert bookwise_cli("--config", str(config), "init").exit_code == 0
    loaded = bookwise_cli("--config", str(config), "load", str(calendars), *at)
    assert loaded.exit_code == 0, loaded.stderr
    assert "acme/ben  127.0.0.1/ana/personal/  updated  3 busy interval(s) kept" in loaded.stdout

    # An account config.yaml does not have: the load stands, the read says why.
    calendars.write_text(data.replace("account: org", "account: other"), encoding="utf-8")
    again = bookwise_cli("--config", str(config), "load", str(calendars), *at)
    assert again.exit_code == 0, again.stderr
    assert "No CalDAV account named 'other' in config.yaml" in again.stderr


@pytest.mark.parametrize(
    ("feed", "message"),
    [
        ("{caldav: 'https://x.org/cal/'}", "either {url"),
        ("{caldav: 'ftp://x.org/cal/', account: org}", "is not the address of a calendar"),
        ("{caldav: 'https://x.org/cal/', account: 'a b'}", "is not a CalDAV account name"),
    ],
)
def test_bad_caldav_feeds_in_a_data_file_are_refused(
    tmp_path: Path, database_url: str, bookwise_cli: Any, feed: str, message: str
) -> None:
    from tests.conftest import SCENARIO

    data = (
        (SCENARIO / "calendars.yaml")
        .read_text(encoding="utf-8")
        .replace(
            "{id: ben, name: Ben, email: ben@acme.example, tags: [consultant]}",
            "{id: ben, name: Ben, email: ben@acme.example, tags: [consultant],"
            f" calendar_feeds: [{feed}]}}",
        )
    )
    calendars = tmp_path / "calendars.yaml"
    calendars.write_text(data, encoding="utf-8")
    config = _config_with_feeds(tmp_path, database_url, calendars)
    assert bookwise_cli("--config", str(config), "init").exit_code == 0
    result = bookwise_cli("--config", str(config), "load", str(calendars))
    assert result.exit_code == 1
    assert message in result.stderr
