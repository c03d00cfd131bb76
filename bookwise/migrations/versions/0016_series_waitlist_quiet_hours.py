"""Series, waitlist and quiet hours (issue 18).

- ``booking_series``: a client's recurring bookings (one rule, one manage link, one invitation);
  ``bookings.series_id`` names the series of an occurrence.
- ``waitlist_entries``: clients waiting for a full time or day of a service, and the place
  offered to them; one live offer per freed place (``uq_waitlist_offer``, partial).
- ``calendars.quiet_hours``: the calendar's quiet hours for text messages (NULL: none).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _sqlite_triggers(table: str) -> list[str]:
    """The SQL of ``table``'s triggers on SQLite (none elsewhere)."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return []
    rows = bind.execute(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
        {"t": table},
    )
    return [row[0] for row in rows]


def upgrade() -> None:
    op.add_column("calendars", sa.Column("quiet_hours", JSON, nullable=True))
    op.create_table(
        "booking_series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(length=40), nullable=False),
        sa.Column("calendar_id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("frequency", sa.String(length=32), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("manage_token", sa.String(length=64), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("count >= 1", name=op.f("ck_booking_series_count")),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["calendars.id"],
            name=op.f("fk_booking_series_calendar_id_calendars"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_booking_series_client_id_clients"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["services.id"],
            name=op.f("fk_booking_series_service_id_services"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_series")),
        sa.UniqueConstraint("manage_token", name=op.f("uq_booking_series_manage_token")),
        sa.UniqueConstraint("uid", name=op.f("uq_booking_series_uid")),
    )
    # SQLite cannot add a constraint to a table: batch mode copies it, which drops its
    # no-double-booking triggers (migration 0002); they are read first and made again.
    triggers = _sqlite_triggers("bookings")
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("series_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_bookings_series_id_booking_series"),
            "booking_series",
            ["series_id"],
            ["id"],
            ondelete="SET NULL",
        )
    for sql in triggers:
        op.execute(sql)
    op.create_index(op.f("ix_bookings_series_id"), "bookings", ["series_id"], unique=False)
    op.create_table(
        "waitlist_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("calendar_id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("wanted_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("wanted_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("answers", JSON, nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("manage_token", sa.String(length=64), nullable=False),
        sa.Column("freed_booking_id", sa.Integer(), nullable=True),
        sa.Column("offered_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("offered_staff_id", sa.Integer(), nullable=True),
        sa.Column("offered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("offer_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("booking_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("wanted_from <= wanted_until", name=op.f("ck_waitlist_entries_wanted")),
        sa.ForeignKeyConstraint(
            ["booking_id"],
            ["bookings.id"],
            name=op.f("fk_waitlist_entries_booking_id_bookings"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["calendars.id"],
            name=op.f("fk_waitlist_entries_calendar_id_calendars"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_waitlist_entries_client_id_clients"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["freed_booking_id"],
            ["bookings.id"],
            name=op.f("fk_waitlist_entries_freed_booking_id_bookings"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["offered_staff_id"],
            ["staff_members.id"],
            name=op.f("fk_waitlist_entries_offered_staff_id_staff_members"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["services.id"],
            name=op.f("fk_waitlist_entries_service_id_services"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waitlist_entries")),
        sa.UniqueConstraint("manage_token", name=op.f("uq_waitlist_entries_manage_token")),
    )
    op.create_index(
        "ix_waitlist_service_wanted",
        "waitlist_entries",
        ["service_id", "state", "wanted_from"],
    )
    op.create_index(
        op.f("ix_waitlist_entries_offer_expires_at"), "waitlist_entries", ["offer_expires_at"]
    )
    op.create_index(
        "uq_waitlist_offer",
        "waitlist_entries",
        ["freed_booking_id"],
        unique=True,
        sqlite_where=sa.text("state = 'offered'"),
        postgresql_where=sa.text("state = 'offered'"),
    )


def downgrade() -> None:
    op.drop_index("uq_waitlist_offer", table_name="waitlist_entries")
    op.drop_index(op.f("ix_waitlist_entries_offer_expires_at"), table_name="waitlist_entries")
    op.drop_index("ix_waitlist_service_wanted", table_name="waitlist_entries")
    op.drop_table("waitlist_entries")
    op.drop_index(op.f("ix_bookings_series_id"), table_name="bookings")
    triggers = _sqlite_triggers("bookings")
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_constraint("fk_bookings_series_id_booking_series", type_="foreignkey")
        batch_op.drop_column("series_id")
    for sql in triggers:
        op.execute(sql)
    op.drop_table("booking_series")
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.drop_column("quiet_hours")
