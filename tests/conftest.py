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
import re
import shutil
import socket
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
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
from bookwise.database import Database, open_database
from bookwise.db import make_engine
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


# Modules that change what every process of the virtualenv sees (tests/test_plugins.py
# pip-installs a throwaway plugin for a moment): marked ``serial``, they never run beside other
# tests. Under pytest-xdist they are left out; ``pytest --serial-only`` runs them alone.
SERIAL_MODULES = {ROOT / "tests" / "test_plugins.py"}
# Modules whose expensive module-scoped fixtures (a wheel built, installed) should be made once:
# with ``--dist loadgroup`` (make test) all their tests go to one worker.
ONE_WORKER_MODULES = {ROOT / "tests" / "test_packaging.py"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--serial-only",
        action="store_true",
        help="run only the tests marked serial (make test runs them after the parallel run)",
    )


def _parallel(config: pytest.Config) -> bool:
    """Whether this is a pytest-xdist run (the controller or one of its workers)."""
    return bool(os.environ.get("PYTEST_XDIST_WORKER")) or bool(
        getattr(config.option, "numprocesses", None)
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that depend on the time of day (they ask for ``now`` or ``clock``, or drive a
    browser) are marked ``clock``: CI runs them again at other instants. Tests of the
    ``SERIAL_MODULES`` are marked ``serial``: left out of a parallel run, alone with
    ``--serial-only``."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "now" in names or "clock" in names or item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.clock)
        if item.path in SERIAL_MODULES:
            item.add_marker(pytest.mark.serial)
        if item.path in ONE_WORKER_MODULES:  # their module fixtures are made once, not per worker
            item.add_marker(pytest.mark.xdist_group(item.path.stem))
    serial_only = config.getoption("serial_only")
    if serial_only or _parallel(config):
        keep = [i for i in items if bool(i.get_closest_marker("serial")) == serial_only]
        dropped = [i for i in items if bool(i.get_closest_marker("serial")) != serial_only]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = keep


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if _parallel(config) and not config.getoption("serial_only"):
        terminalreporter.write_line(
            "tests marked serial (tests/test_plugins.py) do not run in parallel: "
            "run them with `pytest --serial-only` (make test does)"
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # --serial-only on a selection without serial tests ran nothing, and nothing failed.
    if session.config.getoption("serial_only") and exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.OK


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


def _postgres_schema(admin: sa.Engine) -> str:
    """A new, migrated schema of the test database: its name (unique to this process)."""
    schema = f"bw_test_{uuid.uuid4().hex[:10]}"
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(_with_search_path(POSTGRES_URL, schema))
    migrate.upgrade(engine)
    engine.dispose()
    return schema


def _postgres_tables(connection: sa.Connection, schema: str) -> list[str]:
    """The tables of a schema but Alembic's, parents before children."""
    metadata = sa.MetaData()
    metadata.reflect(bind=connection, schema=schema)
    return [t.name for t in metadata.sorted_tables if t.name != "alembic_version"]


_LAYOUTS: dict[str, tuple[list[str], list[str]]] = {}


def _postgres_layout(connection: sa.Connection, schema: str) -> tuple[list[str], list[str]]:
    """The tables (parents first) and sequences of a session's schema, read once: reflecting a
    schema costs more than emptying it."""
    if schema not in _LAYOUTS:
        sequences = connection.execute(
            sa.text(
                "SELECT quote_ident(sequence_schema) || '.' || quote_ident(sequence_name) "
                "FROM information_schema.sequences WHERE sequence_schema = :schema"
            ),
            {"schema": schema},
        ).scalars()
        _LAYOUTS[schema] = (_postgres_tables(connection, schema), list(sequences))
    return _LAYOUTS[schema]


def _empty_postgres(connection: sa.Connection, schema: str) -> None:
    """Delete every row of a schema's tables, children first. DELETE, not TRUNCATE: tables of a
    few rows are emptied in microseconds, while TRUNCATE gives each table and index a new file
    (about half a second a test for the whole schema)."""
    tables, _sequences = _postgres_layout(connection, schema)
    for table in reversed(tables):
        connection.execute(sa.text(f'DELETE FROM "{schema}"."{table}"'))


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[sa.Engine]:
    """An engine on the test database itself; the session's schemas are dropped at the end."""
    admin = sa.create_engine(POSTGRES_URL)
    # The migrations create btree_gist "IF NOT EXISTS", in the first schema of the search path:
    # a test schema, which takes the extension (and other processes' constraints) with it when
    # dropped, and two xdist workers migrating at once race to create it. Made once, in public.
    with admin.begin() as connection:
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(72430001)"))
        connection.execute(sa.text("CREATE EXTENSION IF NOT EXISTS btree_gist SCHEMA public"))
    yield admin
    with admin.begin() as connection:
        for (schema,) in connection.execute(
            sa.text("SELECT nspname FROM pg_namespace WHERE nspname = ANY(:names)"),
            {"names": _SESSION_SCHEMAS},
        ):
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


_SESSION_SCHEMAS: list[str] = []


@pytest.fixture(scope="session")
def postgres_schema(postgres_admin: sa.Engine) -> str:
    """A schema of its own in the test database (each xdist worker has its own), migrated once
    and dropped at the end; each test empties its tables."""
    schema = _postgres_schema(postgres_admin)
    _SESSION_SCHEMAS.append(schema)
    return schema


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
        _empty_postgres(connection, schema)
        for sequence in _postgres_layout(connection, schema)[1]:
            connection.execute(
                sa.text("SELECT setval(:sequence, 1, false)"), {"sequence": sequence}
            )
    engine.dispose()
    return url


# --- seeded databases: prepared once per session, copied into each test's database --------------
#
# Loading the workflows and a calendar file takes about half a second; most tests start from one
# of three seeded states (``demo``, ``scenario``, ``mailing``). Each is made once per session (per
# xdist worker), by the same calls the fixtures made before, into a database of its own; each test
# then gets a copy: on SQLite the seeded file, copied into the test's database with SQLite's
# backup API; on PostgreSQL the seeded schema's rows, copied into the test's (just emptied)
# schema by INSERT ... SELECT, and its sequences set where the seed left them. The seeds'
# settings differ from a test's only in the database and the instance folder (neither is stored).


Values = Callable[[Path, str], dict[str, Any]]
Seeder = Callable[[Settings, Database], Any]


@dataclass
class Seed:
    backend: str
    sqlite_file: Path | None = None
    schema: str | None = None
    tables: tuple[str, ...] = ()
    sequences: tuple[tuple[str, int, bool], ...] = ()
    result: Any = None  # what the seeder returned (ids, for instance)


class Seeds:
    """The seeded states of this session, made when first asked for."""

    def __init__(self, request: pytest.FixtureRequest, folder: Path) -> None:
        self.request = request
        self.folder = folder
        self.made: dict[tuple[str, str], Seed] = {}

    def restore(self, name: str, database: Database, values: Values, seed: Seeder) -> Any:
        """Make ``database`` hold the seeded state ``name`` (whatever it held before), which
        ``seed`` makes from an empty database and the configuration ``values(folder,
        database_url)``; return what ``seed`` returned."""
        backend = database.engine.dialect.name
        key = (name, backend)
        if key not in self.made:
            self.made[key] = self._make(name, backend, values, seed)
        made = self.made[key]
        if made.sqlite_file is not None:
            database.engine.dispose()  # no connection of the pool holds the old content
            target = sqlite3.connect(database.engine.url.database or "")
            source = sqlite3.connect(made.sqlite_file)
            try:
                source.backup(target)
            finally:
                source.close()
                target.close()
            return made.result
        with database.engine.begin() as connection:
            schema = connection.execute(sa.text("SELECT current_schema()")).scalar_one()
            tables, _sequences = _postgres_layout(connection, schema)
            # One script, one round trip: children emptied first, parents filled first.
            script = [f'DELETE FROM "{schema}"."{table}"' for table in reversed(tables)]
            script += [
                f'INSERT INTO "{table}" SELECT * FROM "{made.schema}"."{table}"'
                for table in made.tables
            ]
            script += [
                f"SELECT setval('{sequence}', {int(value)}, {bool(called)})"
                for sequence, value, called in made.sequences
            ]
            connection.exec_driver_sql(";\n".join(script))
        return made.result

    def _make(self, name: str, backend: str, values: Values, seed: Seeder) -> Seed:
        folder = self.folder / f"{name}-{backend}"
        folder.mkdir()
        if backend == "sqlite":
            path = folder / "bookwise.db"
            shutil.copyfile(self.request.getfixturevalue("sqlite_template"), path)
            url = f"sqlite:///{path}"
        else:
            schema = _postgres_schema(self.request.getfixturevalue("postgres_admin"))
            _SESSION_SCHEMAS.append(schema)
            url = _with_search_path(POSTGRES_URL, schema)
        config = write_config(folder / "config.yaml", values(folder, url))
        settings = load_settings(config, environ={})
        database = open_database(settings)
        try:
            result = seed(settings, database)
            if backend == "sqlite":
                with database.engine.connect() as connection:
                    connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                return Seed(backend, sqlite_file=path, result=result)
            with database.engine.connect() as connection:
                tables = _postgres_tables(connection, schema)
                sequences = []
                for (sequence,) in connection.execute(
                    sa.text(
                        "SELECT quote_ident(sequence_schema) || '.' || quote_ident(sequence_name) "
                        "FROM information_schema.sequences WHERE sequence_schema = :schema"
                    ),
                    {"schema": schema},
                ):
                    value, called = connection.execute(
                        sa.text(f"SELECT last_value, is_called FROM {sequence}")
                    ).one()
                    local = sequence.split(".", 1)[1]  # the same sequence in the test's schema
                    sequences.append((local, value, called))
            return Seed(
                backend,
                schema=schema,
                tables=tuple(tables),
                sequences=tuple(sequences),
                result=result,
            )
        finally:
            database.engine.dispose()


@pytest.fixture(scope="session")
def seeds(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Seeds:
    return Seeds(request, tmp_path_factory.mktemp("seeds"))


def write_config(path: Path, values: dict[str, Any]) -> Path:
    yaml = YAML()
    with path.open("w", encoding="utf-8") as handle:
        yaml.dump(values, handle)
    return path


def base_config(tmp_path: Path, database_url: str) -> dict[str, Any]:
    return {
        "database_url": database_url,
        "secret_key": "test-secret-" + "x" * 40,
        # Seeded databases are copied from instance to instance: they share one encryption key
        # (bookwise.crypto), as a copied database must come with its key.
        "privacy": {"encryption_keys": ["_dsqMNYFPIlSS2rXnJTyMDRRcOmEGeLgh6jtBTCtChQ="]},
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


def _seed_demo(settings: Settings, database: Database) -> None:
    from bookwise import instance

    instance.sync_workflows(settings, database)
    instance.load_calendar_file(settings, database, ROOT / "demo" / "calendars.yaml")


@pytest.fixture
def demo(settings: Settings, database: Database, seeds: Seeds) -> Loaded:
    """A database with the repository's workflows and the demo calendars loaded (a copy of the
    session's seeded ``demo`` database)."""
    seeds.restore("demo", database, base_config, _seed_demo)
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


def _scenario_config(tmp_path: Path, database_url: str) -> dict[str, Any]:
    return base_config(tmp_path, database_url) | {"workflows": str(SCENARIO / "workflows")}


def _seed_scenario(settings: Settings, database: Database) -> None:
    from bookwise import instance

    instance.sync_workflows(settings, database)
    instance.load_calendar_file(settings, database, SCENARIO / "calendars.yaml")


@pytest.fixture
def scenario(tmp_path: Path, database_url: str, seeds: Seeds) -> Iterator[Loaded]:
    """The test scenario (tests/data/scenario): the calendar "acme" with three consultants, the
    workflows consult (1:1, round robin), workshop (5 places) and review (approval, client
    chooses), and the sign-in-only calendar "private". A copy of the session's seeded
    ``scenario`` database."""
    values = _scenario_config(tmp_path, database_url)
    settings = load_settings(write_config(tmp_path / "scenario.yaml", values), environ={})
    database = open_database(settings)
    seeds.restore("scenario", database, _scenario_config, _seed_scenario)
    yield Loaded(settings, database)
    database.engine.dispose()


def add_workflow_version(settings: Settings, database: Database, text: str) -> None:
    """Store ``text`` (a workflow file, checked as the editor checks it) as the next version of
    the workflow its ``id`` names: what a business user's save does."""
    from bookwise.db import unit_of_work
    from bookwise.workflows.editing import check_text
    from bookwise.workflows.services import add_version, find_workflow
    from bookwise.workflows.sources import check_context

    workflow_id = re.search(r"^id: *(\S+)", text, re.MULTILINE)
    assert workflow_id is not None, "the text has no id"
    with unit_of_work(database.sessions) as session:
        context, _ = check_context(settings)
        checked, problems = check_text(
            text, f"{workflow_id[1]}.yaml", context, expected_id=workflow_id[1]
        )
        assert checked is not None, problems
        add_version(
            session,
            find_workflow(session, workflow_id[1]),
            source_text=checked.source_text,
            definition=checked.definition,
            origin="admin",
            author="test",
        )


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


def _mailing_config(
    tmp_path: Path, database_url: str, smtp_port: int = 25, webhook: str = "http://127.0.0.1/hook"
) -> dict[str, Any]:
    return base_config(tmp_path, database_url) | {
        "workflows": str(SCENARIO / "workflows"),
        "mail": {
            "host": "127.0.0.1",
            "port": smtp_port,
            "sender": "Acme <bookings@acme.example>",
            "timeout": 5,
        },
        "plugins": {"enabled": [], "webhook": {"url": webhook, "secret": SECRET}},
        "base_url": "https://book.acme.example",
    }


def _seed_mailing(settings: Settings, database: Database) -> None:
    from bookwise import instance

    instance.load_calendar_files(settings, database, [SCENARIO / "calendars.yaml"])


@pytest.fixture
def mailing(
    inbox: Inbox, receiver: str, tmp_path: Path, database_url: str, seeds: Seeds
) -> Iterator[Loaded]:
    """The scenario, with e-mail going to the loopback SMTP server and a webhook receiver (a copy
    of the session's seeded ``mailing`` database: the seed ran with other ports, which it does
    not store)."""
    values = _mailing_config(tmp_path, database_url, inbox.port, receiver)
    settings = load_settings(write_config(tmp_path / "mail.yaml", values), environ={})
    database = open_database(settings)
    seeds.restore("mailing", database, _mailing_config, _seed_mailing)
    yield Loaded(settings, database)
    database.engine.dispose()
