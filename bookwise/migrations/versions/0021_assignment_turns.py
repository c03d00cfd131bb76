"""Each staff member's last turn in a service's rotation (issue 20): ``assignment_turns``, one
row per service and member, instead of ``assignment_state``, one row per service that every
booking of the service wrote (so that bookings for different staff waited for each other on
PostgreSQL). The member a service's rotation last chose keeps its place: their turn is 1, the
others' 0 (never). On PostgreSQL the turns' numbers come from the sequence
``assignment_turn_seq``.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "assignment_turns",
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("turn", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["services.id"],
            name=op.f("fk_assignment_turns_service_id_services"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_members.id"],
            name=op.f("fk_assignment_turns_staff_id_staff_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("service_id", "staff_id", name=op.f("pk_assignment_turns")),
    )
    op.execute(
        "INSERT INTO assignment_turns (service_id, staff_id, turn) "
        "SELECT service_id, last_staff_id, 1 FROM assignment_state "
        "WHERE last_staff_id IS NOT NULL"
    )
    op.drop_table("assignment_state")
    if op.get_bind().dialect.name == "postgresql":
        # The turns' numbers: taken without waiting by bookings made at once (1 is taken above).
        op.execute("CREATE SEQUENCE assignment_turn_seq START 2")


def downgrade() -> None:
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
    # The member with each service's latest turn is the rotation's last.
    op.execute(
        "INSERT INTO assignment_state (service_id, last_staff_id, updated_at) "
        "SELECT t.service_id, t.staff_id, CURRENT_TIMESTAMP FROM assignment_turns t "
        "WHERE t.turn = (SELECT max(u.turn) FROM assignment_turns u "
        "WHERE u.service_id = t.service_id) AND t.turn > 0 "
        "AND t.staff_id = (SELECT min(v.staff_id) FROM assignment_turns v "
        "WHERE v.service_id = t.service_id AND v.turn = t.turn)"
    )
    op.drop_table("assignment_turns")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE assignment_turn_seq")
