"""Alembic environment: the URL comes from TT_DATABASE_URL, the target is every plugin's tables
merged on tracker.schema.metadata."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from tracker.schema import merged
from tracker.settings import get_settings


def run_migrations_online() -> None:
    engine = create_engine(get_settings().sqlalchemy_url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=merged(), compare_type=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    context.configure(url=get_settings().sqlalchemy_url, target_metadata=merged(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
