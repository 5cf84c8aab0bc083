"""tracker.db.script against the test database: several statements in one round trip, run as
prepared statements that survive rollbacks, parameters bound as the connection would."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from tracker.db import script


@pytest.fixture
def conn(system):
    engine = create_engine(system.db_url.replace("postgresql://", "postgresql+psycopg://", 1),
                           connect_args={"prepare_threshold": None})
    with engine.connect() as connection:
        raw = connection.connection.driver_connection
        raw.autocommit = True
        yield connection
        raw.autocommit = False
    engine.dispose()


def test_parts_answer_their_own_rows(conn):
    results = script(conn, "BEGIN", (text("SELECT CAST(:a AS integer) + 1 AS x, 'a%b' AS s"), {"a": 41}),
                     (text("SELECT CAST(:w AS text) AS w, CAST(:w AS text) AS again, CAST(:n AS text) AS n"),
                      {"w": "it's \\ \"q\"", "n": None}),
                     (text("SELECT unnest(CAST(:ids AS bigint[])) AS id"), {"ids": [3, 1 << 40]}), "COMMIT")
    assert results[0] == [] and results[-1] == []
    assert results[1] == [{"x": 42, "s": "a%b"}]
    assert results[2] == [{"w": "it's \\ \"q\"", "again": "it's \\ \"q\"", "n": None}]
    assert results[3] == [{"id": 3}, {"id": 1 << 40}]


def test_prepared_statements_survive_rollback(conn):
    statement = text("SELECT CAST(:v AS integer) * 2 AS doubled")
    assert script(conn, "BEGIN", (statement, {"v": 2}))[1] == [{"doubled": 4}]
    conn.connection.driver_connection.rollback()
    assert script(conn, "BEGIN", (statement, {"v": 5}))[1] == [{"doubled": 10}]
    script(conn, "COMMIT")
    prepared = conn.exec_driver_sql("SELECT count(*) FROM pg_prepared_statements").scalar()
    assert prepared >= 1


def test_a_failing_part_stops_the_script_and_raises_sqlalchemys_error(conn):
    with pytest.raises(DBAPIError) as caught:
        script(conn, "BEGIN", (text("SELECT 1 / CAST(:z AS integer) AS x"), {"z": 0}), "COMMIT")
    assert caught.value.orig.sqlstate == "22012"  # division by zero
    conn.connection.driver_connection.rollback()
    assert script(conn, (text("SELECT CAST(:z AS integer) AS z"), {"z": 7}))[0] == [{"z": 7}]
