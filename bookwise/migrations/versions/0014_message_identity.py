"""Message identity: ``outbox.message_uid`` names each message, the same on every attempt; the
e-mail's Message-ID and the webhook's ``webhook-id`` are made from it, so that a copy sent again
after a worker died before recording the result is dropped by its receiver. Rows already in the
outbox get one each.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

import uuid

import sqlalchemy as sa
from alembic import op


revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("message_uid", sa.String(length=40), nullable=True))
    outbox = sa.table("outbox", sa.column("id", sa.Integer), sa.column("message_uid", sa.String))
    connection = op.get_bind()
    ids = list(connection.execute(sa.select(outbox.c.id)).scalars())
    if ids:
        connection.execute(
            outbox.update()
            .where(outbox.c.id == sa.bindparam("row_id"))
            .values(message_uid=sa.bindparam("uid")),
            [{"row_id": row_id, "uid": uuid.uuid4().hex} for row_id in ids],
        )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.alter_column("message_uid", existing_type=sa.String(length=40), nullable=False)
        batch_op.create_unique_constraint(op.f("uq_outbox_message_uid"), ["message_uid"])


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_outbox_message_uid"), type_="unique")
        batch_op.drop_column("message_uid")
