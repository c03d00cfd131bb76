"""CalDAV sources: ``calendar_sources.account`` names the service account a "caldav" source is
read with (one of config.yaml's ``feeds.caldav_accounts``). Only the name is stored: the
account's password stays in the server's environment.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op


revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calendar_sources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("account", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calendar_sources", schema=None) as batch_op:
        batch_op.drop_column("account")
