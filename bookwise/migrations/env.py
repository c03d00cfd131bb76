"""Alembic environment: run by bookwise.migrate with a connection in ``config.attributes``."""

from typing import Any, Literal

import sqlalchemy as sa
from alembic import context

from bookwise.db import UTCDateTime
from bookwise.models import metadata


def render_item(kind: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Spell our column types with plain SQLAlchemy types, so migrations do not import the app."""
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if kind == "type" and isinstance(obj, sa.JSON):
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return "sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')"
    return False


config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    compare_type=True,
    render_item=render_item,
)
with context.begin_transaction():
    context.run_migrations()
