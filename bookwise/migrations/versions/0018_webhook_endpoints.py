"""The calendars' outbound webhook endpoints (issue 19).

- ``webhook_endpoints``: a calendar's endpoint (URL, the events it wants, active or paused, a
  description) and its secrets, encrypted like the answers (current, and the previous one with
  the end of its overlap after a rotation). Deliveries are outbox rows (channel
  ``calendar-webhook``, recipient the endpoint's id).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("calendar_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("events", JSON, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("secrets", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["calendars.id"],
            name=op.f("fk_webhook_endpoints_calendar_id_calendars"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_index(
        op.f("ix_webhook_endpoints_calendar_id"), "webhook_endpoints", ["calendar_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_webhook_endpoints_calendar_id"), table_name="webhook_endpoints")
    op.drop_table("webhook_endpoints")
