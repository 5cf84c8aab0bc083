"""The migrations build exactly the declared schema (tracker/schema.py): a drift test.

A table, column, type, nullability, index or foreign key declared in one place and not the other
fails here, before a deployment's ``tracker db upgrade`` builds something the code does not expect.
"""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, MetaData, Text

from tracker.migrate import alembic_config
from tracker.schema import metadata


def test_database_at_head(engine):
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head


def test_migrated_schema_equals_the_declared_one(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": False})
        assert compare_metadata(context, metadata) == []


def test_a_drift_is_noticed(engine):
    """The comparison is not vacuous: one column declared and not migrated is reported."""
    declared = MetaData()
    for table in metadata.tables.values():
        table.to_metadata(declared)
    declared.tables["worker"].append_column(Column("nickname", Text, nullable=True))
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), declared)
    assert [(d[0], d[3].name) for d in diff] == [("add_column", "nickname")]
