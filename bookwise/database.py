"""The database of an instance: its engine, its sessions and the plugins that ride on them.

:func:`open_database` is the one way to connect (the web app, workers, the CLI and the tests all
call it), and the schema checks say in plain words what to run when the database is empty,
outdated or someone else's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, inspect
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from bookwise import migrate
from bookwise.config import Settings
from bookwise.crypto import attach_keyring, check_keyring, keyring_for
from bookwise.db import (
    loose_permissions,
    make_engine,
    make_read_only,
    make_session_factory,
    sqlite_path,
)
from bookwise.errors import BookwiseError, ConfigError
from bookwise.plugins.bookings import attach
from bookwise.plugins.host import PluginHost

log = logging.getLogger(__name__)


@dataclass
class Database:
    engine: Engine
    sessions: sessionmaker[Session]
    # The instance's plugins (see bookwise.plugins.host); the sessions carry them too.
    plugins: PluginHost
    # Sessions on the read-only copy (``database_replica_url``), for slot searches; None
    # without one. Its engine refuses to write (bookwise.db.make_read_only).
    replica: sessionmaker[Session] | None = None

    def dispose(self) -> None:
        """Close every connection of the pools (the primary's and the replica's)."""
        self.engine.dispose()
        if self.replica is not None:
            bind = self.replica.kw.get("bind")
            if isinstance(bind, Engine):
                bind.dispose()


def open_database(settings: Settings) -> Database:
    """Connect to the configured database (creating the SQLite folder when needed), and to its
    read-only copy when ``database_replica_url`` names one."""
    url = settings.database_url
    engine = _engine(settings, "database_url", url)
    # The answers are encrypted with the instance's keys (bookwise.crypto): a key missing or
    # wrong for the data already there stops the start, saying what to set.
    attach_keyring(engine, keyring_for(settings))
    check_keyring(engine, has_table=_has_bookings(engine))
    loose = loose_permissions(sqlite_path(url))
    if loose is not None:
        # The administrator's file, left as it is: they may have set it up for a reason.
        log.warning(
            "the SQLite database %s can be read by others than its owner (mode %o): "
            "run chmod 600 on it (and on its -wal and -shm files)",
            sqlite_path(url),
            loose,
        )
    # The plugins come with the database: every session reaches them (see bookwise.plugins).
    sessions = make_session_factory(engine)
    host = PluginHost(settings, sessions).load()
    attach(sessions)
    replica = None
    if settings.database_replica_url:
        reader = _engine(settings, "database_replica_url", settings.database_replica_url)
        make_read_only(reader)
        attach_keyring(reader, keyring_for(settings))
        replica = make_session_factory(reader)
    return Database(engine, sessions, host, replica)


def _engine(settings: Settings, key: str, url: str) -> Engine:
    """The engine of ``url`` (the configuration's ``key``), with the configured pool on
    PostgreSQL; a :class:`ConfigError` naming the key when the address is not one."""
    pool = settings.database_pool
    options = (
        {}
        if url.startswith("sqlite")
        else {
            "pool_size": pool.size,
            "max_overflow": pool.max_overflow,
            "pool_timeout": pool.timeout,
            "pool_recycle": pool.recycle,
        }
    )
    try:
        if url.startswith("sqlite:///"):
            path = url.removeprefix("sqlite:///").split("?")[0]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        return make_engine(url, **options)
    except (ArgumentError, NoSuchModuleError) as exc:
        hint = (
            "write postgresql+psycopg:// instead of postgres://"
            if url.startswith(("postgres://", "postgresql://"))
            else "write sqlite:///path/to/file.db or postgresql+psycopg://user@host/name"
        )
        raise ConfigError(
            f"{settings.source}: {key} {url!r} is not a database address Bookwise can use: "
            f"{hint} ({_first_line(exc)})"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{key} {url!r}: cannot create its folder ({exc.strerror})") from None


def _has_bookings(engine: Engine) -> bool:
    try:
        return inspect(engine).has_table("bookings")
    except Exception:  # unreachable: the schema checks say so in their words
        return False


def schema_state(database: Database) -> migrate.SchemaState:
    """What the database holds: ``empty``, ``current``, ``outdated`` or ``foreign``."""
    try:
        return migrate.schema_state(database.engine)
    except Exception as exc:  # the driver's own errors vary; all mean "cannot reach it"
        raise BookwiseError(
            f"cannot open the database at database_url ({_first_line(exc)}): check the address "
            "in the configuration (or BOOKWISE_DATABASE_URL), that the server runs and accepts "
            "this user"
        ) from None


def prepare_schema(database: Database) -> migrate.SchemaState:
    """Create or upgrade the schema; return what was there before."""
    state = schema_state(database)
    if state == "foreign":
        raise BookwiseError(
            "the database holds tables that are not Bookwise's; point database_url at an "
            "empty database"
        )
    if state != "current":
        migrate.upgrade(database.engine)
    return state


def require_current_schema(database: Database) -> None:
    """:class:`BookwiseError` with what to do, unless the schema is there and up to date."""
    state = schema_state(database)
    if state == "empty":
        raise BookwiseError("the database is empty: run bookwise init first")
    if state == "outdated":
        raise BookwiseError("the database schema is outdated: run bookwise init to upgrade it")
    if state == "foreign":
        raise BookwiseError("the database holds tables that are not Bookwise's")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
