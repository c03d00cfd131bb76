"""Fixtures: a fresh database per test (SQLite always, PostgreSQL when configured), settings that
point at the repository's workflows, an app, a test client and a CLI runner.

PostgreSQL: set ``BOOKWISE_TEST_POSTGRES_URL`` (CI does). When it is set and the server does not
answer, the run stops with an error; it never skips quietly.

Time: no test reads the wall clock. The suite stands at one instant, ``BOOKWISE_TEST_NOW``
(``2027-03-28T08:30 Europe/Paris`` or an ISO 8601 time with an offset), by default
``bookwise.testing.DEFAULT_NOW``; the ``now`` fixture gives it and the ``clock`` fixture is a
clock starting there, which the apps and servers of the tests run on. Tests that depend on the
time of day are marked ``clock`` (automatically when they ask for ``now`` or ``clock``, and the
browser tests); CI runs them again at several instants (``tools/clock-matrix``).
"""

from __future__ import annotations

import email
import email.policy
import http.server
import os
import shutil
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from ruamel.yaml import YAML

from bookwise import migrate
from bookwise.clock import Clock, clock_from
from bookwise.config import Settings, load_settings
from bookwise.db import make_engine
from bookwise.instance import Database, open_database
from bookwise.testing import test_instant

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
POSTGRES_URL = os.environ.get("BOOKWISE_TEST_POSTGRES_URL", "").strip()
BACKENDS = ["sqlite", *(["postgresql"] if POSTGRES_URL else [])]

try:
    TEST_NOW = test_instant()
except ValueError as error:
    raise SystemExit(str(error)) from None


def _with_search_path(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


def pytest_report_header() -> str:
    return f"clock: the tests stand at {TEST_NOW.isoformat()} (BOOKWISE_TEST_NOW)"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that depend on the time of day (they ask for ``now`` or ``clock``, or drive a
    browser) are marked ``clock``: CI runs them again at other instants."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "now" in names or "clock" in names or item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.clock)


@pytest.fixture
def now() -> datetime:
    """The instant the test stands at (aware, UTC): see the module docstring."""
    return TEST_NOW


@pytest.fixture
def clock(now: datetime) -> Clock:
    """A clock that starts at ``now`` and runs on: for apps, servers and dispatchers."""
    return clock_from(now)


def pytest_configure(config: pytest.Config) -> None:
    if not POSTGRES_URL:
        return
    engine = sa.create_engine(POSTGRES_URL)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except Exception as exc:
        raise pytest.UsageError(
            f"BOOKWISE_TEST_POSTGRES_URL is set but PostgreSQL does not answer: "
            f"{str(exc).splitlines()[0]}"
        ) from None
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite database with the migrated schema, copied for each test (faster than migrating)."""
    path = tmp_path_factory.mktemp("template") / "bookwise.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_schema() -> Iterator[str]:
    """A schema of its own in the test database, migrated once and dropped at the end."""
    schema = f"bw_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(_with_search_path(POSTGRES_URL, schema))
    migrate.upgrade(engine)
    engine.dispose()
    yield schema
    with admin.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty, migrated database, on each backend in turn."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "bookwise.db"
        shutil.copyfile(template, target)
        return f"sqlite:///{target}"
    schema: str = request.getfixturevalue("postgres_schema")
    url = _with_search_path(POSTGRES_URL, schema)
    engine = make_engine(url)
    with engine.begin() as connection:
        tables = [
            t
            for t in sa.inspect(connection).get_table_names(schema=schema)
            if t != "alembic_version"
        ]
        if tables:
            names = ", ".join(f'"{schema}"."{t}"' for t in tables)
            connection.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


def write_config(path: Path, values: dict[str, Any]) -> Path:
    yaml = YAML()
    with path.open("w", encoding="utf-8") as handle:
        yaml.dump(values, handle)
    return path


def base_config(tmp_path: Path, database_url: str) -> dict[str, Any]:
    return {
        "database_url": database_url,
        "secret_key": "test-secret-" + "x" * 40,
        "instance_dir": str(tmp_path / "instance"),
        "workflows": str(ROOT / "workflows"),
        "forms": str(ROOT / "forms"),
        "templates": str(ROOT / "templates"),
        "demo_data": str(ROOT / "demo" / "calendars.yaml"),
        "locales": ["en", "fr", "de", "es"],
        "default_locale": "en",
    }


@pytest.fixture
def config_file(tmp_path: Path, database_url: str) -> Path:
    return write_config(tmp_path / "config.yaml", base_config(tmp_path, database_url))


@pytest.fixture
def settings(config_file: Path) -> Settings:
    return load_settings(config_file, environ={})


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    db = open_database(settings)
    yield db
    db.engine.dispose()


@pytest.fixture
def session(database: Database) -> Iterator[sa.orm.Session]:
    with database.sessions() as s:
        yield s


@dataclass
class Loaded:
    settings: Settings
    database: Database


@pytest.fixture
def demo(settings: Settings, database: Database) -> Loaded:
    """A database with the repository's workflows and the demo calendars loaded."""
    from bookwise import instance

    instance.sync_workflows(settings, database)
    instance.load_calendar_file(settings, database, ROOT / "demo" / "calendars.yaml")
    return Loaded(settings, database)


@pytest.fixture
def app(settings: Settings, demo: Loaded, clock: Clock) -> Any:
    from bookwise.app import create_app

    application = create_app(settings, clock=clock)
    application.config.update(TESTING=True)
    yield application
    application.extensions["bookwise"].database.engine.dispose()


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def bookwise_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run ``bookwise ARGS`` in this process, as the console script does; capture its output."""
    from bookwise.cli import main

    for variable in ("BOOKWISE_CONFIG", "BOOKWISE_DATABASE_URL", "BOOKWISE_SECRET_KEY"):
        monkeypatch.delenv(variable, raising=False)

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main(list(args))
        out = capsys.readouterr()
        return CliResult(code, out.out, out.err)

    return run


SCENARIO = DATA / "scenario"


@pytest.fixture
def scenario(tmp_path: Path, database_url: str) -> Loaded:
    """The test scenario (tests/data/scenario): the calendar "acme" with three consultants, the
    workflows consult (1:1, round robin), workshop (5 places) and review (approval, client
    chooses), and the sign-in-only calendar "private"."""
    from bookwise import instance

    values = base_config(tmp_path, database_url) | {"workflows": str(SCENARIO / "workflows")}
    settings = load_settings(write_config(tmp_path / "scenario.yaml", values), environ={})
    database = open_database(settings)
    instance.sync_workflows(settings, database)
    instance.load_calendar_file(settings, database, SCENARIO / "calendars.yaml")
    yield Loaded(settings, database)
    database.engine.dispose()


@pytest.fixture
def scenario_app(scenario: Loaded, clock: Clock) -> Any:
    from bookwise.app import create_app

    application = create_app(scenario.settings, clock=clock)
    application.config.update(TESTING=True)
    yield application
    application.extensions["bookwise"].database.engine.dispose()


# --- messages: a real SMTP server and a real HTTP receiver on loopback -------------------------


class Inbox:
    """An SMTP server on loopback that keeps what it receives (aiosmtpd)."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.refuse: int | None = None  # answer this code to every message instead
        self.port = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse:
            return f"{self.refuse} refused for the test"
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address]


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    handler = Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        handler.port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    yield handler
    controller.stop()


class Receiver(http.server.BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


SECRET = "webhook-secret-for-tests"


@pytest.fixture
def mailing(inbox: Inbox, receiver: str, tmp_path: Any, database_url: str) -> Loaded:
    """The scenario, with e-mail going to the loopback SMTP server and a webhook receiver."""
    from bookwise import instance

    values = base_config(tmp_path, database_url) | {
        "workflows": str(SCENARIO / "workflows"),
        "mail": {
            "host": "127.0.0.1",
            "port": inbox.port,
            "sender": "Acme <bookings@acme.example>",
            "timeout": 5,
        },
        "plugins": {"enabled": [], "webhook": {"url": receiver, "secret": SECRET}},
        "base_url": "https://book.acme.example",
    }
    settings = load_settings(write_config(tmp_path / "mail.yaml", values), environ={})
    database = open_database(settings)
    instance.load_calendar_files(settings, database, [SCENARIO / "calendars.yaml"])
    yield Loaded(settings, database)
    database.engine.dispose()
