"""Creating and upgrading the database schema with Alembic migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

MIGRATIONS = Path(__file__).parent / "migrations"

SchemaState = Literal["empty", "current", "outdated", "foreign"]


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def schema_state(engine: Engine) -> SchemaState:
    """``empty`` (no tables), ``current``, ``outdated`` (migrations to run), or ``foreign``
    (tables that are not ours: refuse to touch them)."""
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        if not tables:
            return "empty"
        if "alembic_version" not in tables:
            return "foreign"
        current = MigrationContext.configure(connection).get_current_revision()
    return "current" if current == head_revision() else "outdated"


def current_revision(engine: Engine) -> str | None:
    """The migration the database stands at (None: none applied, or no database yet)."""
    with engine.connect() as connection:
        if "alembic_version" not in inspect(connection).get_table_names():
            return None
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run the migrations up to ``revision`` (default: the latest) in one transaction.

    On SQLite, altering a table means copying it and dropping the original; with foreign keys
    enforced, that drop would cascade into (and delete) the rows that refer to it. So foreign
    keys are off while migrating, and checked before the transaction commits.
    """
    config = alembic_config()
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        # The pragma is ignored inside a transaction: send it on the driver's connection, which
        # Bookwise keeps in autocommit mode (see bookwise.db).
        raw = connection.connection.dbapi_connection
        if sqlite and raw is not None:
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise RuntimeError(f"migration broke foreign keys: {broken[:5]}")
        finally:
            if sqlite and raw is not None:
                raw.execute("PRAGMA foreign_keys=ON")
