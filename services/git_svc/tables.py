"""Tables of git_svc: webhook deliveries already applied (contract §6.7, replays)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Table, Text, text
from sqlalchemy.dialects.postgresql import TIMESTAMP

from tracker.schema import metadata

webhook_delivery = Table(
    "webhook_delivery",
    metadata,
    Column("project_id", BigInteger, ForeignKey("project.id", ondelete="CASCADE"), primary_key=True),
    Column("delivery", Text, primary_key=True),
    Column("received", TIMESTAMP(timezone=True), nullable=False, server_default=text("now()")),
)
Index("webhook_delivery_received", webhook_delivery.c.received)
