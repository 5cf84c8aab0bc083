"""One SQLAlchemy engine per process, made cooperative for eventlet-based services.

psycopg 3's default C wait function blocks a whole eventlet process while it waits for the
server (measured: 10 concurrent 0.5 s queries took 5 s). ``wait_select`` goes through the
``select`` module, which eventlet and gevent patch, so waits yield to other greenlets. The
variable must be set before psycopg is first imported, hence at the top of this module.
"""

from __future__ import annotations

import os

os.environ.setdefault("PSYCOPG_WAIT_FUNC", "wait_select")

import hashlib  # noqa: E402
import re  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from functools import cache  # noqa: E402
from typing import Any  # noqa: E402
from weakref import WeakKeyDictionary  # noqa: E402

import psycopg  # noqa: E402
from psycopg.pq import TransactionStatus  # noqa: E402
from psycopg.rows import dict_row  # noqa: E402
from sqlalchemy import Connection, Engine, create_engine  # noqa: E402
from sqlalchemy.exc import DBAPIError  # noqa: E402
from sqlalchemy.sql import ClauseElement  # noqa: E402

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
        # psycopg's own automatic preparation is off: on every rollback it deallocates ALL
        # prepared statements of the session, scripts' included (script() prepares its own).
        connect_args={"connect_timeout": 5, "prepare_threshold": None},
    )


@contextmanager
def transaction() -> Iterator[Connection]:
    """A connection inside one transaction: committed on success, rolled back on any error."""
    with get_engine().begin() as conn:
        yield conn


# --- scripts: several statements in one round trip ---------------------------------------------
# A batch (tracker/service.py) is a handful of short statements, and psycopg sends BEGIN and COMMIT
# each as a round trip of its own: two of a get batch's six. A script sends several statements as
# one simple-protocol query (parameters bound client-side), so BEGIN travels with the batch's first
# reads and COMMIT with its last write; its statements run as prepared statements (below).
#
# Why not psycopg's own pipeline mode with its prepared statements: measured side by side in one
# process on one database, a get+release batch's three scripts (4 gets, 4 releases, 8 stored
# replies; 1,800 batches each, interleaved in blocks of 300) took p50 4.0 ms / 0.80 ms of client CPU
# this way, and 8.7 ms / 1.14 ms as a pipeline with ``prepare=True`` (9.2 ms without), measured
# with ``python -m bench.db_script`` on a busy machine. psycopg also drops every prepared
# statement of a connection on each ROLLBACK, which every refused call issues. So this small layer
# stays; tests/test_db_scripts.py covers it.

Part = str | tuple[Any, dict]


@contextmanager
def scripted_transaction() -> Iterator[Connection]:
    """A connection whose transaction the caller opens and commits in scripts: ``script(conn,
    "BEGIN", ...)`` first, ``script(conn, ..., "COMMIT")`` last. Plain ``conn.execute`` in
    between runs inside that transaction. Anything left open (an error) is rolled back."""
    with get_engine().connect() as conn:
        raw = conn.connection.driver_connection
        raw.autocommit = True  # psycopg then sends no BEGIN of its own
        conn.info[_DEFERRED] = []
        try:
            yield conn
        finally:
            conn.info.pop(_DEFERRED, None)
            try:
                if raw.info.transaction_status != TransactionStatus.IDLE:
                    raw.rollback()
                raw.autocommit = False
            except psycopg.Error:
                conn.invalidate()  # never hand a connection in autocommit to a plain transaction()


_DEFERRED = "tt_deferred"


def defer(conn: Connection, part: Part) -> None:
    """Run ``part`` just before COMMIT, in the commit's own round trip (deferred_parts()), or now
    outside a scripted transaction. For writes whose row locks every transaction of a project
    wants (the closure counters): taken last, they are held for the commit only, so concurrent
    batches do not queue behind each other's whole transaction."""
    deferred = conn.info.get(_DEFERRED)
    if deferred is not None:
        deferred.append(part)
    elif isinstance(part, str):
        conn.exec_driver_sql(part)
    else:
        statement, params = part
        conn.execute(statement, params)


def deferred_parts(conn: Connection) -> list[Part]:
    """The parts defer() kept for the commit, handed over once."""
    deferred = conn.info.get(_DEFERRED) or []
    conn.info[_DEFERRED] = []
    return deferred


@cache
def _compiled(statement: ClauseElement, dialect) -> Any:
    return statement.compile(dialect=dialect)


_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")


@dataclass(frozen=True)
class _Prepared:
    name: str
    definition: str  # PREPARE name AS …, with $n in place of %(name)s
    order: tuple[str, ...]  # the parameter names in $n order


@cache
def _prepared(sql: str) -> _Prepared:
    order: list[str] = []

    def placeholder(match: re.Match) -> str:
        if match.group(0) == "%%":
            return "%"
        if match.group(1) not in order:
            order.append(match.group(1))
        return f"${order.index(match.group(1)) + 1}"

    body = _PLACEHOLDER.sub(placeholder, sql)
    name = "tt_" + hashlib.sha1(sql.encode()).hexdigest()[:20]
    return _Prepared(name, f"PREPARE {name} AS {body}", tuple(order))


# The statements each connection has prepared. A script runs its statements as EXECUTE of
# prepared statements: in the simple query protocol PostgreSQL would otherwise parse and plan
# each one every time (measured: 0.17 ms to plan the access or the close statement, against
# 0.04–0.06 ms to run it).
_PREPARED_ON: WeakKeyDictionary = WeakKeyDictionary()


def script(conn: Connection, *parts: Part) -> list[list[dict]]:
    """Run ``parts`` (SQL text, or (statement, params) with a Core statement or %(name)s SQL) in
    one round trip; the rows of each part as dicts ([] for a part without rows). Errors are
    raised as SQLAlchemy's, as from ``conn.execute``; a failed part stops the ones after it."""
    raw = conn.connection.driver_connection
    binder = psycopg.ClientCursor(raw)
    known = _PREPARED_ON.setdefault(raw, set())
    missing: dict[str, str] = {}
    sql = []
    for part in parts:
        if isinstance(part, str):
            sql.append(part)
            continue
        statement, params = part
        if isinstance(statement, ClauseElement):
            compiled = _compiled(statement, conn.dialect)
            statement, params = str(compiled), compiled.construct_params(params)
        prepared = _prepared(statement)
        if prepared.name not in known:
            missing[prepared.name] = prepared.definition
        args = [params[name] for name in prepared.order]
        sql.append(f"EXECUTE {prepared.name}({binder.mogrify(', '.join(['%s'] * len(args)), args)})" if args
                   else f"EXECUTE {prepared.name}")
    query = ";\n".join(sql)
    cursor = raw.cursor(row_factory=dict_row)
    try:
        if missing:
            # First use on this connection: a round trip of its own, so that a failure of the
            # script itself never leaves it unknown which statements exist (PREPARE is not
            # undone by a rollback).
            cursor.execute(";\n".join(missing.values()))
            known.update(missing)
        cursor.execute(query)  # no parameters: the simple query protocol, which allows many statements
        results = []
        while True:
            results.append(cursor.fetchall() if cursor.description is not None else [])
            if not cursor.nextset():
                return results
    except psycopg.Error as exc:
        broken = raw.broken or raw.closed
        if broken:
            conn.invalidate()
        raise DBAPIError.instance(query, None, exc, psycopg.Error, hide_parameters=True,
                                  connection_invalidated=broken) from exc
