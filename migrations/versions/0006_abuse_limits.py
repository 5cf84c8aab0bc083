"""abuse throttles (failed logins, worker creations) and applied webhook deliveries

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "throttle_event",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("at", postgresql.TIMESTAMP(timezone=True), server_default=sa.text("clock_timestamp()"),
                  nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("throttle_event_subject_at", "throttle_event", ["subject", "at"])
    op.create_index("throttle_event_at", "throttle_event", ["at"])
    op.create_table(
        "webhook_delivery",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("delivery", sa.Text(), nullable=False),
        sa.Column("received", postgresql.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["project.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("project_id", "delivery"),
    )
    op.create_index("webhook_delivery_received", "webhook_delivery", ["received"])


def downgrade() -> None:
    op.drop_index("webhook_delivery_received", table_name="webhook_delivery")
    op.drop_table("webhook_delivery")
    op.drop_index("throttle_event_at", table_name="throttle_event")
    op.drop_index("throttle_event_subject_at", table_name="throttle_event")
    op.drop_table("throttle_event")
