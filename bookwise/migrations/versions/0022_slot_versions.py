"""Versions of what the free slots are found from, for the slot cache (issue 20):
``staff_members.slots_version`` and ``calendars.slots_version``, raised by triggers in the
transaction that changes what they stand for, whatever makes the change (a booking, the back
office, a calendar feed's refresh, a bulk statement, a cascade).

- A staff member's: their bookings (the columns that take time), time off, busy times, and the
  waitlist offers held for them.
- A calendar's: its working hours, the calendar's and its staff's.

The cache keys its entries by these versions, read before the rows the slots are found from, so
that an entry found before a change is never read after it (bookwise.availability.cache).

PostgreSQL: a trigger per statement (a feed's refresh replaces many busy times at once), which
reads the statement's rows from its transition tables; an update raises the version only when a
column that counts changed. SQLite: a trigger per row.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

# table: (the table whose version rises, the column naming its row, the columns that count)
WATCHED = {
    "bookings": (
        "staff_members",
        "staff_id",
        (
            "staff_id",
            "holds_slot",
            "start_at",
            "end_at",
            "blocked_from",
            "blocked_until",
            "service_id",
        ),
    ),
    "time_off": ("staff_members", "staff_id", ("staff_id", "start_at", "end_at")),
    "busy_times": ("staff_members", "staff_id", ("staff_id", "start_at", "end_at")),
    "waitlist_entries": (
        "staff_members",
        "offered_staff_id",
        (
            "state",
            "offered_staff_id",
            "offered_start",
            "offer_expires_at",
            "freed_booking_id",
            "service_id",
        ),
    ),
    "working_hours": (
        "calendars",
        "calendar_id",
        ("calendar_id", "staff_id", "weekday", "start_minute", "end_minute"),
    ),
}


def _raise(target: str, ids: str) -> str:
    return f"UPDATE {target} SET slots_version = slots_version + 1 WHERE id IN ({ids});"


def _postgresql(table: str, target: str, column: str, columns: tuple[str, ...]) -> None:
    before = ", ".join(f"o.{c}" for c in columns)
    after = ", ".join(f"n.{c}" for c in columns)
    changed = (
        f"FROM old_rows AS o JOIN new_rows AS n ON n.id = o.id "
        f"WHERE ({before}) IS DISTINCT FROM ({after})"
    )
    op.execute(
        f"""
        CREATE FUNCTION slots_{table}_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                {_raise(target, f"SELECT {column} FROM new_rows")}
            ELSIF TG_OP = 'DELETE' THEN
                {_raise(target, f"SELECT {column} FROM old_rows")}
            ELSE
                {_raise(target, f"SELECT o.{column} {changed} UNION SELECT n.{column} {changed}")}
            END IF;
            RETURN NULL;
        END $$
        """
    )
    for event, tables in (
        ("INSERT", "NEW TABLE AS new_rows"),
        ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
        ("DELETE", "OLD TABLE AS old_rows"),
    ):
        op.execute(
            f"CREATE TRIGGER slots_{table}_{event.lower()} AFTER {event} ON {table} "
            f"REFERENCING {tables} FOR EACH STATEMENT "
            f"EXECUTE FUNCTION slots_{table}_changed()"
        )


def _sqlite(table: str, target: str, column: str, columns: tuple[str, ...]) -> None:
    differs = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in columns)
    op.execute(
        f"CREATE TRIGGER slots_{table}_insert AFTER INSERT ON {table} "
        f"BEGIN {_raise(target, f'NEW.{column}')} END"
    )
    op.execute(
        f"CREATE TRIGGER slots_{table}_update AFTER UPDATE OF {', '.join(columns)} ON {table} "
        f"WHEN {differs} BEGIN {_raise(target, f'OLD.{column}, NEW.{column}')} END"
    )
    op.execute(
        f"CREATE TRIGGER slots_{table}_delete AFTER DELETE ON {table} "
        f"BEGIN {_raise(target, f'OLD.{column}')} END"
    )


def upgrade() -> None:
    for table in ("calendars", "staff_members"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("slots_version", sa.Integer(), nullable=False, server_default="0")
            )
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table, (target, column, columns) in WATCHED.items():
        (_postgresql if postgresql else _sqlite)(table, target, column, columns)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table in WATCHED:
        for event in ("insert", "update", "delete"):
            op.execute(
                f"DROP TRIGGER slots_{table}_{event}" + (f" ON {table}" if postgresql else "")
            )
        if postgresql:
            op.execute(f"DROP FUNCTION slots_{table}_changed()")
    for table in ("staff_members", "calendars"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("slots_version")
