"""The unit tier: no broker, no services, no gateway process.

Store tests get ``conn``: a connection inside a transaction on one throwaway database migrated to
head (made once per session), rolled back after each test, so tests neither see nor clean up each
other's rows. Gateway tests build the app in-process (tests/unit/test_gateway.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, create_engine, pool

from tests.harness import migrated_database


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A new database, migrated to head with the same ``tracker db upgrade`` an operator runs."""
    with migrated_database("tt_unit_") as url:
        yield url


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
