"""Versions of what the free slots are found from, for the slot cache (issue 20), raised by
triggers in the transaction that changes what they stand for, whatever makes the change (a
booking, the back office, a calendar feed's refresh, a bulk statement, a cascade):

- ``slot_versions``: one row per staff member and block of six hours (UTC, counted from 1970:
  ``block = epoch seconds // 21600``) that something changed in: a booking (the columns that
  take time), time off, a busy time, a waitlist offer held for them. A change counts in every
  block it touches (a waitlist offer: from a day before its start to a day after, the freed
  booking's length not being at hand).
- ``staff_members.slots_version``: raised instead for a change longer than
  :data:`LONGEST_DAYS` days (a long leave): every day of the member is found again.
- ``calendars.slots_version``: the calendar's working hours, and its staff's.

The cache names a day's entry after the versions of the blocks its slots are found from, read
before those rows (bookwise.availability.cache): an entry found before a change is never read
after its commit. A booking makes only its own day be found again (and the next, for a booking
late in the evening: blocks are UTC's, days the calendar's).

PostgreSQL: a trigger per statement (a feed's refresh replaces many busy times at once), which
reads the statement's rows from its transition tables; an update counts only when a column that
matters changed. The rows are upserted in (staff, block) order, so that two statements never wait
for each other in opposite orders; before them, the staff members' rows are locked (in id
order): a transaction that changes a member's time in several statements (a cancellation, then
the offer of its place) takes the member's blocks while no other can, else two such
transactions would each hold blocks the other wants. A booking holds its member's row already
(its claim). SQLite: a trigger per row (one writer at a time).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05
"""

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

# A change over more days than this raises the member's version instead of one row per block.
LONGEST_DAYS = 31
BLOCK_SECONDS = 6 * 3600
LONGEST_BLOCKS = LONGEST_DAYS * 24 * 3600 // BLOCK_SECONDS

# table: (the staff column, the time the change touches (from, until) as SQL on a row alias
# "r" per dialect, the columns that count)
STAFF_TIME = {
    "bookings": (
        "staff_id",
        ("r.blocked_from", "r.blocked_until"),
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
    "time_off": ("staff_id", ("r.start_at", "r.end_at"), ("staff_id", "start_at", "end_at")),
    "busy_times": ("staff_id", ("r.start_at", "r.end_at"), ("staff_id", "start_at", "end_at")),
    "waitlist_entries": (
        "offered_staff_id",
        None,  # the offered start, a day either side (below)
        (
            "state",
            "offered_staff_id",
            "offered_start",
            "offer_expires_at",
            "freed_booking_id",
            "service_id",
        ),
    ),
}
HOURS_COLUMNS = ("calendar_id", "staff_id", "weekday", "start_minute", "end_minute")


def _postgresql_span(table: str) -> tuple[str, str]:
    if table == "waitlist_entries":
        return "r.offered_start - interval '1 day'", "r.offered_start + interval '1 day'"
    return STAFF_TIME[table][1]  # type: ignore[return-value]


def _postgresql_staff(table: str) -> None:
    column, _span, columns = STAFF_TIME[table]
    low, high = _postgresql_span(table)
    block = f"floor(extract(epoch FROM ({{}})) / {BLOCK_SECONDS})::bigint"
    long = f"{block.format(high)} - {block.format(low)} > {LONGEST_BLOCKS}"

    def touched(rows: str) -> str:
        # The members' rows first, in order: two transactions that change one member's time
        # then take its blocks one after the other, never each some of them (a deadlock).
        return f"""
            PERFORM 1 FROM staff_members
            WHERE id IN (SELECT r.{column} FROM {rows} AS r WHERE r.{column} IS NOT NULL)
            ORDER BY id FOR NO KEY UPDATE;
            INSERT INTO slot_versions AS v (staff_id, block, version)
            SELECT DISTINCT r.{column}, b, 1
            FROM {rows} AS r, generate_series({block.format(low)}, {block.format(high)}) AS b
            WHERE r.{column} IS NOT NULL AND NOT ({long})
            ORDER BY 1, 2
            ON CONFLICT (staff_id, block) DO UPDATE SET version = v.version + 1;
            UPDATE staff_members SET slots_version = slots_version + 1
            WHERE id IN (SELECT r.{column} FROM {rows} AS r WHERE {long});
        """

    _postgresql_function(table, touched, columns)


def _postgresql_hours() -> None:
    def raised(rows: str) -> str:
        return (
            "UPDATE calendars SET slots_version = slots_version + 1 "
            f"WHERE id IN (SELECT r.calendar_id FROM {rows} AS r);"
        )

    _postgresql_function("working_hours", raised, HOURS_COLUMNS)


def _postgresql_function(
    table: str, touched: Callable[[str], str], columns: tuple[str, ...]
) -> None:
    """The function of ``table``'s triggers: ``touched`` (SQL for a set of rows) run on the rows
    inserted, deleted, or updated in a column of ``columns`` (their old and new values)."""
    before = ", ".join(f"o.{c}" for c in columns)
    after = ", ".join(f"n.{c}" for c in columns)
    changed = (
        "FROM old_rows AS o JOIN new_rows AS n ON n.id = o.id "
        f"WHERE ({before}) IS DISTINCT FROM ({after})"
    )
    op.execute(
        f"""
        CREATE FUNCTION slots_{table}_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                {touched("new_rows")}
            ELSIF TG_OP = 'DELETE' THEN
                {touched("old_rows")}
            ELSE
                {touched(f"(SELECT o.* {changed} UNION ALL SELECT n.* {changed})")}
            END IF;
            RETURN NULL;
        END $$
        """
    )
    _postgresql_triggers(table)


def _postgresql_triggers(table: str) -> None:
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


# The block numbers a change of at most LONGEST_DAYS days spans, for SQLite's triggers (which
# allow no WITH RECURSIVE).
_NUMBERS = "(VALUES " + ", ".join(f"({n})" for n in range(LONGEST_BLOCKS + 2)) + ")"


def _sqlite_span(table: str, row: str) -> tuple[str, str]:
    if table == "waitlist_entries":
        return f"datetime({row}.offered_start, '-1 day')", f"datetime({row}.offered_start, '+1 day')"
    low, high = STAFF_TIME[table][1]  # type: ignore[misc]
    return low.replace("r.", f"{row}."), high.replace("r.", f"{row}.")


def _sqlite_touched(table: str, row: str) -> str:
    column = STAFF_TIME[table][0]
    low, high = (f"(CAST(strftime('%s', {t}) AS INTEGER) / {BLOCK_SECONDS})" for t in _sqlite_span(table, row))
    return f"""
        INSERT INTO slot_versions (staff_id, block, version)
        SELECT {row}.{column}, {low} + column1, 1 FROM {_NUMBERS}
        WHERE {row}.{column} IS NOT NULL AND {low} IS NOT NULL
          AND column1 <= {high} - {low} AND {high} - {low} <= {LONGEST_BLOCKS}
        ON CONFLICT (staff_id, block) DO UPDATE SET version = version + 1;
        UPDATE staff_members SET slots_version = slots_version + 1
        WHERE id = {row}.{column} AND {high} - {low} > {LONGEST_BLOCKS};
    """


def _sqlite_staff(table: str) -> None:
    columns = STAFF_TIME[table][2]
    differs = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in columns)
    op.execute(
        f"CREATE TRIGGER slots_{table}_insert AFTER INSERT ON {table} "
        f"BEGIN {_sqlite_touched(table, 'NEW')} END"
    )
    op.execute(
        f"CREATE TRIGGER slots_{table}_update AFTER UPDATE OF {', '.join(columns)} ON {table} "
        f"WHEN {differs} BEGIN {_sqlite_touched(table, 'OLD')} "
        f"{_sqlite_touched(table, 'NEW')} END"
    )
    op.execute(
        f"CREATE TRIGGER slots_{table}_delete AFTER DELETE ON {table} "
        f"BEGIN {_sqlite_touched(table, 'OLD')} END"
    )


def _sqlite_hours() -> None:
    def raised(ids: str) -> str:
        return f"UPDATE calendars SET slots_version = slots_version + 1 WHERE id IN ({ids});"

    differs = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in HOURS_COLUMNS)
    op.execute(
        "CREATE TRIGGER slots_working_hours_insert AFTER INSERT ON working_hours "
        f"BEGIN {raised('NEW.calendar_id')} END"
    )
    op.execute(
        f"CREATE TRIGGER slots_working_hours_update AFTER UPDATE ON working_hours WHEN {differs} "
        f"BEGIN {raised('OLD.calendar_id, NEW.calendar_id')} END"
    )
    op.execute(
        "CREATE TRIGGER slots_working_hours_delete AFTER DELETE ON working_hours "
        f"BEGIN {raised('OLD.calendar_id')} END"
    )


def upgrade() -> None:
    for table in ("calendars", "staff_members"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("slots_version", sa.Integer(), nullable=False, server_default="0")
            )
    op.create_table(
        "slot_versions",
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("block", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_members.id"],
            name=op.f("fk_slot_versions_staff_id_staff_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("staff_id", "block", name=op.f("pk_slot_versions")),
    )
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table in STAFF_TIME:
        (_postgresql_staff if postgresql else _sqlite_staff)(table)
    (_postgresql_hours if postgresql else _sqlite_hours)()


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table in (*STAFF_TIME, "working_hours"):
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER slots_{table}_{event}" + (f" ON {table}" if postgresql else ""))
        if postgresql:
            op.execute(f"DROP FUNCTION slots_{table}_changed()")
    op.drop_table("slot_versions")
    for table in ("staff_members", "calendars"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("slots_version")
