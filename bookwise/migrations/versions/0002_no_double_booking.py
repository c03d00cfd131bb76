"""No double booking: slot keys and their database guards, busy times, round-robin state.

The database itself refuses what would double-book:

- PostgreSQL: an exclusion constraint (btree_gist) over the staff member and the blocked time
  range of every booking that holds its slot, between bookings of different slot keys (the
  participants of one group session share a key). Group capacity is checked under a row lock on
  the staff member, taken by the booking service.
- SQLite: triggers that abort the same overlaps and any booking beyond its slot's capacity.
  Writers are serialised (BEGIN IMMEDIATE), so the count cannot race.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# A booking row that holds its slot overlaps NEW: same staff, another key, times that meet.
_SQLITE_OVERLAP = """
    SELECT RAISE(ABORT, 'booking_overlap')
    WHERE NEW.holds_slot AND EXISTS (
        SELECT 1 FROM bookings AS other
        WHERE other.staff_id = NEW.staff_id
          AND other.holds_slot
          AND other.id IS NOT NEW.id
          AND other.slot_key != NEW.slot_key
          AND other.blocked_from < NEW.blocked_until
          AND NEW.blocked_from < other.blocked_until
    );
    SELECT RAISE(ABORT, 'slot_full')
    WHERE NEW.holds_slot AND (
        SELECT COUNT(*) FROM bookings AS other
        WHERE other.slot_key = NEW.slot_key
          AND other.holds_slot
          AND other.id IS NOT NEW.id
    ) >= NEW.capacity;
"""


def upgrade() -> None:
    op.create_table(
        "assignment_state",
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("last_staff_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["last_staff_id"],
            ["staff_members.id"],
            name=op.f("fk_assignment_state_last_staff_id_staff_members"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["services.id"],
            name=op.f("fk_assignment_state_service_id_services"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("service_id", name=op.f("pk_assignment_state")),
    )
    op.create_table(
        "busy_times",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("summary", sa.String(length=500), nullable=True),
        sa.CheckConstraint("start_at < end_at", name=op.f("ck_busy_times_range")),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_members.id"],
            name=op.f("fk_busy_times_staff_id_staff_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_busy_times")),
    )
    with op.batch_alter_table("busy_times", schema=None) as batch_op:
        batch_op.create_index("ix_busy_times_staff_time", ["staff_id", "start_at", "end_at"])

    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("slot_key", sa.String(length=120), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("capacity", sa.Integer(), nullable=False, server_default="1")
        )
        batch_op.create_index("ix_bookings_slot_key", ["slot_key"], unique=False)
        batch_op.create_check_constraint("capacity", "capacity >= 1")
    op.execute("UPDATE bookings SET slot_key = uid WHERE slot_key = ''")
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.alter_column("slot_key", server_default=None)
        batch_op.alter_column("capacity", server_default=None)

    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        op.execute(
            "ALTER TABLE bookings ADD CONSTRAINT ex_bookings_no_overlap EXCLUDE USING gist ("
            " staff_id WITH =,"
            " tstzrange(blocked_from, blocked_until) WITH &&,"
            " slot_key WITH <>"
            ") WHERE (holds_slot)"
        )
    else:
        for event in ("INSERT", "UPDATE"):
            op.execute(
                f"CREATE TRIGGER bookings_no_double_booking_{event.lower()} "
                f"BEFORE {event} ON bookings FOR EACH ROW BEGIN {_SQLITE_OVERLAP} END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE bookings DROP CONSTRAINT ex_bookings_no_overlap")
    else:
        for event in ("insert", "update"):
            op.execute(f"DROP TRIGGER bookings_no_double_booking_{event}")
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_constraint("capacity", type_="check")
        batch_op.drop_index("ix_bookings_slot_key")
        batch_op.drop_column("capacity")
        batch_op.drop_column("slot_key")
    with op.batch_alter_table("busy_times", schema=None) as batch_op:
        batch_op.drop_index("ix_busy_times_staff_time")
    op.drop_table("busy_times")
    op.drop_table("assignment_state")
