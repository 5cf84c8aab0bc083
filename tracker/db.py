"""One SQLAlchemy engine per process, made cooperative for eventlet-based services.

psycopg 3's default C wait function blocks a whole eventlet process while it waits for the
server (measured: 10 concurrent 0.5 s queries took 5 s). ``wait_select`` goes through the
``select`` module, which eventlet and gevent patch, so waits yield to other greenlets. The
variable must be set before psycopg is first imported, hence at the top of this module.
"""

from __future__ import annotations

import os

os.environ.setdefault("PSYCOPG_WAIT_FUNC", "wait_select")

from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from functools import cache  # noqa: E402

from sqlalchemy import Connection, Engine, create_engine  # noqa: E402

from tracker.settings import get_settings  # noqa: E402


@cache
def get_engine() -> Engine:
    settings = get_settings()
    return create_engine(
        settings.sqlalchemy_url,
        pool_size=settings.db_pool_size,
        max_overflow=max(1, settings.db_pool_size // 4),
        # No pre-ping: it costs a round trip per transaction. After a database restart the first
        # use of a stale connection fails (503 for that request) and SQLAlchemy then invalidates
        # every pooled connection of that age at once.
        pool_pre_ping=False,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5},
    )


@contextmanager
def transaction() -> Iterator[Connection]:
    """A connection inside one transaction: committed on success, rolled back on any error."""
    with get_engine().begin() as conn:
        yield conn
