"""The unit tier: no broker, no services, no gateway process.

Store tests get ``conn``: a connection inside a transaction on one throwaway database migrated to
head (made once per session), rolled back after each test, so tests neither see nor clean up each
other's rows. Gateway tests build the app in-process (tests/unit/test_gateway.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Connection, Engine, create_engine, pool

from tests.harness import PG_ADMIN, ROOT


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A new database, migrated to head with the same ``tracker db upgrade`` an operator runs."""
    name = "tt_unit_" + uuid.uuid4().hex[:10]
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        migrated = subprocess.run([sys.executable, "-m", "tracker", "db", "upgrade"], cwd=ROOT, capture_output=True,
                                  text=True, timeout=120, env={**os.environ, "TT_DATABASE_URL": url})
        assert migrated.returncode == 0, migrated.stderr
        yield url
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def engine(database_url) -> Iterator[Engine]:
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1), poolclass=pool.NullPool)
    yield engine
    engine.dispose()


@pytest.fixture
def conn(engine) -> Iterator[Connection]:
    """One transaction per test, always rolled back: what a test writes is gone after it."""
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            yield connection
        finally:
            transaction.rollback()
