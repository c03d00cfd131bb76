"""Meeting links made by plugins: which provider made a booking's link, and its id there.

The provider's id is given back to it when the booking is cancelled, to delete the meeting.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("bookings", sa.Column("meeting_provider", sa.String(length=64), nullable=True))
    op.add_column("bookings", sa.Column("meeting_id", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_column("meeting_id")
        batch_op.drop_column("meeting_provider")
