"""rate limiters and monitoring snapshots

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limit",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("next_free", sa.Float(precision=53), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["project.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("project_id", "kind"),
    )
    op.create_table(
        "monitoring_snapshot",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("time_stamp", sa.BigInteger(), nullable=False),
        sa.Column("new_task_count", sa.BigInteger(), nullable=False),
        sa.Column("failed_task_count", sa.BigInteger(), nullable=False),
        sa.Column("closed_task_count", sa.BigInteger(), nullable=False),
        sa.Column("worker_access_count", sa.BigInteger(), nullable=False),
        sa.Column("awaiting_verification_count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["project.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("project_id", "time_stamp"),
    )
    op.create_index("monitoring_snapshot_time", "monitoring_snapshot", ["time_stamp"])
    op.create_table(
        "monitoring_clock",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("slot", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO monitoring_clock (id, slot) VALUES (1, 0)")


def downgrade() -> None:
    op.drop_table("monitoring_clock")
    op.drop_index("monitoring_snapshot_time", table_name="monitoring_snapshot")
    op.drop_table("monitoring_snapshot")
    op.drop_table("rate_limit")
