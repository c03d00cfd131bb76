"""Template versions: ``message_template_versions`` keeps every wording a message template had
(for the instance, or one calendar's copy), numbered per template, with who made it, when and how
(saved, reset, restored): the back office shows the history, the changes, and restores one.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op


revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

TEMPLATE_KEY = ["name", "audience", "channel", "locale"]


def upgrade() -> None:
    op.create_table(
        "message_template_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("calendar_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("audience", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("author", sa.String(length=320), nullable=True),
        sa.Column("comment", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["calendars.id"],
            name=op.f("fk_message_template_versions_calendar_id_calendars"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_template_versions")),
    )
    # One number per template: the instance's (no calendar) and each calendar's copy apart, as
    # a plain unique index would let rows without a calendar repeat a number (NULLs differ).
    op.create_index(
        "uq_message_template_versions_instance",
        "message_template_versions",
        [*TEMPLATE_KEY, "number"],
        unique=True,
        sqlite_where=sa.text("calendar_id IS NULL"),
        postgresql_where=sa.text("calendar_id IS NULL"),
    )
    op.create_index(
        "uq_message_template_versions_calendar",
        "message_template_versions",
        ["calendar_id", *TEMPLATE_KEY, "number"],
        unique=True,
        sqlite_where=sa.text("calendar_id IS NOT NULL"),
        postgresql_where=sa.text("calendar_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_message_template_versions_calendar", table_name="message_template_versions")
    op.drop_index("uq_message_template_versions_instance", table_name="message_template_versions")
    op.drop_table("message_template_versions")
