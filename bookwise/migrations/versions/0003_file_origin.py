"""Which rows a calendar data file manages; workflow definitions keep their key order.

Staff, time off and services loaded from a file are marked ``origin = 'file'``: loading the file
again replaces the file's time off and retires what the file no longer lists, without touching
what the back office added. Workflow definitions become plain JSON on PostgreSQL (JSONB sorts
keys), so a version reads back in its author's order.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLES = ("staff_members", "time_off", "services")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("origin", sa.String(length=16), nullable=False, server_default="file")
            )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("origin", server_default=None)
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "workflow_versions",
            "definition",
            type_=sa.JSON(),
            existing_type=postgresql.JSONB(),
            postgresql_using="definition::json",
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "workflow_versions",
            "definition",
            type_=postgresql.JSONB(),
            existing_type=sa.JSON(),
            postgresql_using="definition::jsonb",
        )
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("origin")
