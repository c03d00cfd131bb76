"""Database plumbing: the declarative base, UTC datetimes, engines and sessions.

Plain SQLAlchemy 2 rather than Flask-SQLAlchemy: models and services take a ``Session`` and work
the same in a web request, the worker, the CLI, benchmarks and tests, with or without an app.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

# Stable constraint names, so that migrations can refer to them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class NaiveDatetimeError(ValueError):
    """A datetime without a time zone reached the database: that is a bug in the caller."""


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored in UTC; read back aware, in UTC, on every database.

    Writing a naive datetime raises :class:`NaiveDatetimeError`: the time zone it meant is unknown.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise NaiveDatetimeError(f"naive datetime {value!r}: give it a time zone")
        value = value.astimezone(UTC)
        # SQLite keeps text: store it without offset, always UTC, so that text order is time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, _dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# JSON on SQLite, JSONB (indexable, compared by value) on PostgreSQL.
JSONType = JSON().with_variant(postgresql.JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime,
        dict[str, Any]: JSONType,
        dict[str, str]: JSONType,
        list[str]: JSONType,
        list[Any]: JSONType,
    }


def utcnow() -> datetime:
    """The current time, aware, in UTC (the system's: see :mod:`bookwise.clock` for the
    application's clock, which services receive as ``now``)."""
    return datetime.now(UTC)


def make_engine(url: str, **options: Any) -> Engine:
    """An engine with the settings Bookwise needs on each database.

    SQLite: foreign keys on, WAL (readers do not block the writer), a busy timeout instead of an
    immediate "database is locked", and transactions begun by us (``BEGIN``, or ``BEGIN
    IMMEDIATE`` when a connection asks for it with the ``sqlite_begin`` execution option) rather
    than by the driver, which would begin them too late for a check-then-write to be safe.
    """
    if url.startswith("sqlite"):
        if ":memory:" in url or url in ("sqlite://", "sqlite:///"):
            options.setdefault("poolclass", StaticPool)
        else:
            create_private_file(sqlite_path(url))
        options.setdefault("connect_args", {}).setdefault("check_same_thread", False)
        engine = create_engine(url, **options)
        _configure_sqlite(engine)
        return engine
    options.setdefault("pool_pre_ping", True)
    # At most 15 connections a process: six web or worker processes stay under PostgreSQL's
    # default max_connections (100). Past that a request waits for a free connection (up to
    # pool_timeout, 30 s) rather than being refused by the server ("too many clients"); more
    # connections would not book faster, as bookings of one pool wait for each other's locks.
    options.setdefault("pool_size", 5)
    options.setdefault("max_overflow", 10)
    return create_engine(url, **options)


def make_read_only(engine: Engine) -> None:
    """Every connection of ``engine`` refuses to write (a replica's: a write sent there by
    mistake fails at once instead of failing on the replica's own terms, or worse, on a
    primary named by mistake): ``default_transaction_read_only`` on PostgreSQL, ``query_only``
    on SQLite."""

    @event.listens_for(engine, "connect")
    def _read_only(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute("PRAGMA query_only=ON")
        elif engine.dialect.name == "postgresql":
            cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        cursor.close()
        if engine.dialect.name == "postgresql":
            dbapi_connection.commit()


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL (None in memory or for another database)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:" or parsed.database.startswith("file:"):
        return None
    return Path(parsed.database)


def create_private_file(path: Path | None) -> None:
    """Create the SQLite file ``path``, when missing, readable and writable by its owner only
    (0600, whatever the umask): SQLite gives its -wal and -shm files the database file's mode.
    An existing file is left as it is (see :func:`loose_permissions`)."""
    if path is None or path.exists():
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError:
        return  # a missing folder or no right to write: SQLite says it better when connecting
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def loose_permissions(path: Path | None) -> int | None:
    """The mode of an SQLite file (or its -wal, -shm) that others than its owner may read or
    write, None when all are private."""
    if path is None:
        return None
    for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            mode = stat.S_IMODE(candidate.stat().st_mode)
        except OSError:
            continue
        if mode & 0o077:
            return mode
    return None


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (views render after committing)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def begin_write(session: Session) -> None:
    """Begin the session's transaction as a writer.

    On SQLite the write lock is taken at BEGIN (``BEGIN IMMEDIATE``): writers queue for it (up to
    the busy timeout) instead of failing halfway when a read transaction tries to become a write.
    Elsewhere this is a plain BEGIN. The session must not have begun already.
    """
    if session.in_transaction():
        raise RuntimeError("begin_write() must come before the first query of the transaction")
    session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})


def is_busy(exc: OperationalError) -> bool:
    """Whether the database refused for want of a lock in time (SQLite "database is locked" or
    "busy", PostgreSQL ``lock_not_available`` or a deadlock): the same work may be tried again."""
    if getattr(exc.orig, "sqlstate", None) in ("55P03", "40P01"):
        return True
    message = str(exc.orig).lower()
    return "database is locked" in message or "database is busy" in message


@contextmanager
def unit_of_work(factory: sessionmaker[Session], write: bool = False) -> Iterator[Session]:
    """One transaction: commit when the block ends normally, roll back on any exception.

    ``write=True`` begins it with :func:`begin_write`, for check-then-write sequences.
    """
    session = factory()
    if write:
        begin_write(session)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
