"""The migrations and the declared tables (every plugin's tables module, merged) describe the same
schema: a throwaway database is upgraded to head, then Alembic compares it with the merged metadata.

The migrations are the truth for existing databases: a difference means a declaration to fix (or
a migration to write). PL/pgSQL functions are not compared (Alembic does not model them);
tests/test_plans.py covers what they do. No system is started: only PostgreSQL is used.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, create_engine

from tests.harness import PG_ADMIN
from tracker.migrate import alembic_config
from tracker.schema import merged
from tracker.settings import get_settings


@pytest.fixture
def migrated(monkeypatch):
    """The URL of a new database upgraded to head; dropped afterwards."""
    name = "tt_drift_" + uuid.uuid4().hex[:10]
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    monkeypatch.setenv("TT_DATABASE_URL", url)
    get_settings.cache_clear()  # migrations/env.py reads the URL from the settings
    try:
        command.upgrade(alembic_config(), "head")
        yield get_settings().sqlalchemy_url
    finally:
        get_settings.cache_clear()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _differences(url: str, metadata: MetaData) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


def test_migrations_at_head_match_the_declared_tables(migrated):
    differences = _differences(migrated, merged())
    assert differences == [], "the declared tables and the migrations differ:\n" + "\n".join(map(repr, differences))


def test_a_declaration_the_migrations_lack_is_found(migrated):
    """The comparison can fail: a column declared but never migrated is reported."""
    copy = MetaData()
    for table in merged().sorted_tables:
        table.to_metadata(copy)
    copy.tables["project"].append_column(Column("drift_probe", Integer))
    differences = _differences(migrated, copy)
    assert any(d[0] == "add_column" and d[3].name == "drift_probe" for d in differences), differences
