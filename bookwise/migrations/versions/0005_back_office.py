"""The back office: calendar-owned workflows and templates, removed staff members.

A workflow created in the back office belongs to the calendar whose admin created it (the
instance's files belong to none). A calendar's admins edit their own copy of a message template,
which wins over the instance's for that calendar. A staff member removed in the back office is
kept, marked removed, for the history of their bookings.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TEMPLATE_KEY = ["name", "audience", "channel", "locale"]


def upgrade() -> None:
    with op.batch_alter_table("workflows", schema=None) as batch_op:
        batch_op.add_column(sa.Column("calendar_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_workflows_calendar_id_calendars"),
            "calendars",
            ["calendar_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.add_column(
        "staff_members", sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True)
    )
    with op.batch_alter_table("message_templates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("calendar_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_message_templates_calendar_id_calendars"),
            "calendars",
            ["calendar_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.drop_constraint(
            "uq_message_templates_name_audience_channel_locale", type_="unique"
        )
    op.create_index(
        "uq_message_templates_instance",
        "message_templates",
        TEMPLATE_KEY,
        unique=True,
        sqlite_where=sa.text("calendar_id IS NULL"),
        postgresql_where=sa.text("calendar_id IS NULL"),
    )
    op.create_index(
        "uq_message_templates_calendar",
        "message_templates",
        ["calendar_id", *TEMPLATE_KEY],
        unique=True,
        sqlite_where=sa.text("calendar_id IS NOT NULL"),
        postgresql_where=sa.text("calendar_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.execute("DELETE FROM message_templates WHERE calendar_id IS NOT NULL")
    op.drop_index("uq_message_templates_calendar", table_name="message_templates")
    op.drop_index("uq_message_templates_instance", table_name="message_templates")
    with op.batch_alter_table("message_templates", schema=None) as batch_op:
        batch_op.create_unique_constraint(
            "uq_message_templates_name_audience_channel_locale", TEMPLATE_KEY
        )
        batch_op.drop_constraint(
            "fk_message_templates_calendar_id_calendars", type_="foreignkey"
        )
        batch_op.drop_column("calendar_id")
    with op.batch_alter_table("staff_members", schema=None) as batch_op:
        batch_op.drop_column("removed_at")
    with op.batch_alter_table("workflows", schema=None) as batch_op:
        batch_op.drop_constraint("fk_workflows_calendar_id_calendars", type_="foreignkey")
        batch_op.drop_column("calendar_id")
