"""outcomes of state-changing calls, for exactly-once effects

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rpc_outcome",
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("reply", sa.Text(), nullable=False),
        sa.Column("expires", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("request"),
    )
    op.create_index("rpc_outcome_expires", "rpc_outcome", ["expires"])
    # A queue-like table: inserted and pruned all the time.
    op.execute("ALTER TABLE rpc_outcome SET (autovacuum_vacuum_scale_factor = 0.02, "
               "autovacuum_vacuum_threshold = 1000)")


def downgrade() -> None:
    op.drop_index("rpc_outcome_expires", table_name="rpc_outcome")
    op.drop_table("rpc_outcome")
