"""The hot path's plans cannot depend on the task table's statistics (migration 0007).

Autovacuum is off on some machines and lags everywhere after a big import, so the table is often
never analysed or analysed before the rows that matter arrived. Each case loads a project by COPY
without ANALYZE into a table that is (a) never analysed or (b) analysed while it held only another
project's leased tasks, then captures the plans PostgreSQL actually runs — the statements inside
``tt_assign_many`` / ``tt_assign`` through auto_explain, the release and expiry statements through
EXPLAIN EXECUTE — under both plan-cache choices (a custom plan per call, and the generic plan a
session switches to after five calls), and asserts: the never-held candidates come from
``task_pick`` in index order with no sort and no bitmap or sequential scan; the expired
candidates are an index range on ``task_lease``; tasks are reached by their primary key. Since
migration 0011 the candidates are read unlocked under a LIMIT (n + MAX_SKIPPED) and each is then
locked through ``task_pkey`` alone.

Needs only PostgreSQL (its own database; auto_explain ships with the server).
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from services.task_svc import store
from services.task_svc.messages import TaskResult, TaskStatus
from tests.harness import migrated_database
from tracker.wording import TASK_READY_CHANNEL

# One pytest process runs the whole module: its fixture builds a database of its own
# (two 200,000-task bulk loads) once.
pytestmark = pytest.mark.xdist_group("test_plans")

ROOT = Path(__file__).resolve().parent.parent
BULK = 200_000
OLD, NEW, STALE_NEW = 1, 2, 3
MODES = ("force_custom_plan", "force_generic_plan")


@pytest.fixture(scope="module")
def db_url() -> Iterator[str]:
    with migrated_database("tt_plans_") as url:
        yield url


def _copy(conn: psycopg.Connection, project: int, n: int) -> None:
    """A bulk load as bulk_submit does it (COPY), and no ANALYZE after it."""
    with conn.cursor().copy("COPY task (project, priority, recipe, max_assign_time) FROM STDIN") as copy:
        for i in range(n):
            copy.write_row((project, i % 3, f'{{"n": {i}}}', 3600))


@pytest.fixture(scope="module")
def tables(db_url) -> str:
    """OLD: 2,000 tasks, half closed, a quarter held with live leases, some leases expired; NEW: a
    bulk load into a never-analysed table. Then ANALYZE, and STALE_NEW: a bulk load the statistics
    have never seen."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert conn.execute("SELECT reltuples FROM pg_class WHERE relname = 'task'").fetchone()[0] < 0
        conn.execute("INSERT INTO project (id, name, webhook_secret) VALUES (1, 'old', 'x'), (2, 'new', 'x'),"
                     " (3, 'stale', 'x')")
        conn.execute("INSERT INTO worker (id, alias, created, secret_digest)"
                     " SELECT g, 'w' || g, 0, 'd' FROM generate_series(1, 16) g")
        conn.execute("""
            INSERT INTO task (project, recipe, status, max_assign_time, assignee, lease_deadline)
            SELECT 1, 'r', CASE WHEN g % 2 = 0 THEN 3 ELSE 1 END, 3600,
                   CASE WHEN g % 4 = 1 THEN 1 + g % 16 END,
                   CASE WHEN g % 4 = 1 THEN now() + CASE WHEN g % 40 = 1 THEN interval '-1 minute'
                                                          ELSE interval '1 hour' END END
            FROM generate_series(1, 2000) g""")
        _copy(conn, NEW, BULK)
    return db_url


@pytest.fixture(scope="module")
def stale(tables) -> str:
    with psycopg.connect(tables, autocommit=True) as conn:
        conn.execute("DELETE FROM task WHERE project = %s", (NEW,))  # the statistics saw only OLD
        conn.execute("ANALYZE task")
        _copy(conn, STALE_NEW, BULK)
    return tables


# --- reading plans ----------------------------------------------------------------------------------
def _nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _task_scans(plan: dict) -> list[dict]:
    return [n for n in _nodes(plan) if n.get("Relation Name") == "task" and n["Node Type"].endswith("Scan")]


def _cte(plan: dict, name: str) -> dict:
    found = [n for n in _nodes(plan) if n.get("Subplan Name") == f"CTE {name}"]
    assert found, f"no CTE {name} in plan"
    return found[0]


def _describe(plan: dict) -> str:
    return " / ".join(f"{n['Node Type']}" + (f" {n['Index Name']}" if "Index Name" in n else "")
                      + (f" [{n['Index Cond']}]" if "Index Cond" in n else "") for n in _nodes(plan))


def assert_index_order(plan: dict, index: str) -> None:
    """Every task row the subtree reads comes from ``index`` in order: no sort, no other access
    (index-only is as good: the index holds the order's columns)."""
    kinds = [n["Node Type"] for n in _nodes(plan)]
    scans = _task_scans(plan)
    assert "Sort" not in kinds and "Incremental Sort" not in kinds, _describe(plan)
    assert [(n["Node Type"].replace("Index Only Scan", "Index Scan"), n.get("Index Name"), n.get("Scan Direction"))
            for n in scans] == [("Index Scan", index, "Forward")], _describe(plan)


def _bounded(plan: dict) -> dict:
    """A bounded candidate scan (migration 0011): a nested loop over at most n + MAX_SKIPPED
    candidates, read without a lock under their LIMIT (their order is the result's: no sort
    above), each then locked by a subquery that reaches its task by ``task_pkey`` only. Returns
    the candidates' subtree."""
    loops = [n for n in _nodes(plan) if n["Node Type"] == "Nested Loop"]
    assert len(loops) == 1, _describe(plan)
    outer, inner = loops[0]["Plans"]
    if outer["Node Type"] == "Subquery Scan":  # usually elided
        outer = outer["Plans"][0]
    assert outer["Node Type"] == "Limit", _describe(plan)
    assert "LockRows" not in [n["Node Type"] for n in _nodes(outer)], _describe(plan)
    assert inner["Node Type"] == "Subquery Scan" and inner["Plans"][0]["Node Type"] == "LockRows", _describe(plan)
    scans = _task_scans(inner)
    assert [(n["Node Type"], n.get("Index Name")) for n in scans] == [("Index Scan", "task_pkey")], _describe(plan)
    assert re.fullmatch(r"\(id = \w+\.id\)", scans[0]["Index Cond"]), _describe(plan)
    return outer


def assert_bounded_index_order(plan: dict, index: str) -> None:
    """The candidates come from ``index`` in order under their LIMIT, and no sort is anywhere:
    the candidates' order is the lock step's."""
    assert_index_order(_bounded(plan), index)
    assert not {"Sort", "Incremental Sort"} & {n["Node Type"] for n in _nodes(plan)}, _describe(plan)


def assert_bounded_expired_range(plan: dict) -> None:
    """Expired candidates: an index range of ``task_lease`` (assert_expired_range) under their
    LIMIT, then locked by primary key."""
    assert_expired_range(_bounded(plan))


def assert_expired_range(plan: dict) -> None:
    """The expired leases are an index range of ``task_lease``: the deadline bound is in the index
    condition, so only leases already past are read (and sorted by priority), never every lease."""
    scans = _task_scans(plan)
    assert [(n["Node Type"], n.get("Index Name")) for n in scans] == [("Index Scan", "task_lease")], _describe(plan)
    assert "lease_deadline <=" in scans[0]["Index Cond"], _describe(plan)


def assert_by_primary_key(plan: dict) -> None:
    """Tasks are reached by id on ``task_pkey`` only (a bitmap of one id per probe is as good)."""
    scans = _task_scans(plan)
    assert scans, _describe(plan)
    for scan in scans:
        index = scan if scan["Node Type"] == "Index Scan" else scan.get("Plans", [{}])[0]
        assert index.get("Index Name") == "task_pkey", _describe(plan)


def _function_plans(url: str, mode: str, sql: str, args: tuple, runs: int = 7) -> list[dict]:
    """The plans of the statements run inside a PL/pgSQL function, from its last call (after
    ``runs`` calls in one session, as a pooled service connection makes them), rolled back."""
    with psycopg.connect(url, autocommit=True) as conn:  # SETs outlive the rolled-back calls
        notices: list[str] = []
        conn.execute("LOAD 'auto_explain'")
        for setting in ("auto_explain.log_min_duration = 0", "auto_explain.log_nested_statements = on",
                        "auto_explain.log_level = notice", "auto_explain.log_format = json",
                        f"plan_cache_mode = {mode}"):
            conn.execute(f"SET {setting}")
        conn.add_notice_handler(lambda d: notices.append(d.message_primary))
        for _ in range(runs):
            notices.clear()
            with conn.transaction():
                conn.execute(sql, args).fetchall()
                raise psycopg.Rollback
    plans = [json.loads(n[n.index("{"):]) for n in notices if n.startswith("duration")]
    # a disabled node's 1e10 cost must not buy a JIT compilation (tens of ms) per call
    assert not [p["Query Text"] for p in plans if "JIT" in p and p["Query Text"] != sql]
    return plans


def _statement(plans: list[dict], marker: str) -> dict:
    found = [p["Plan"] for p in plans if marker in p["Query Text"]]
    assert found, f"no statement with {marker!r} was run"
    return found[0]


def _prepared_plan(url: str, mode: str, statement, params: dict) -> dict:
    """EXPLAIN EXECUTE of a store statement (SQLAlchemy text with :names) as the service runs it
    (prepared), with the plan cache forced to ``mode``."""
    names: list[str] = []

    def number(m: re.Match) -> str:
        if m.group(1) not in names:
            names.append(m.group(1))
        return f"${names.index(m.group(1)) + 1}"

    sql = re.sub(r"(?<![:\w]):([a-z_]\w*)", number, statement.text)
    with psycopg.connect(url) as conn:
        conn.execute(f"SET plan_cache_mode = {mode}")
        conn.execute(f"PREPARE s AS {sql}", prepare=False)
        values = ", ".join(psycopg.sql.Literal(params[n]).as_string(conn) for n in names)
        plan = conn.execute(f"EXPLAIN (FORMAT JSON) EXECUTE s({values})", prepare=False).fetchone()[0][0]["Plan"]
        conn.rollback()
    return plan


# --- the cases ---------------------------------------------------------------------------------------
def _check_assign(url: str, project: int, mode: str) -> None:
    workers = list(range(1, 9))
    plans = _function_plans(url, mode, "SELECT * FROM tt_assign_many(%s, %s, %s, %s)",
                            ([project] * 8, workers, [1] * 8, [0.0] * 8))
    scan = _statement(plans, "WITH free AS")
    assert_bounded_index_order(_cte(scan, "free"), "task_pick")
    assert_bounded_expired_range(_cte(scan, "expired"))
    assert_by_primary_key(_statement(plans, "UPDATE task SET"))

    plans = _function_plans(url, mode, "SELECT * FROM tt_assign(%s, %s, %s)", (project, 1, 2))
    scan = _statement(plans, "WITH free AS")
    assert_bounded_index_order(_cte(scan, "free"), "task_pick")
    assert_bounded_expired_range(_cte(scan, "expired"))


def _check_release(url: str, project: int, mode: str) -> None:
    with psycopg.connect(url) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM task WHERE project = %s ORDER BY id LIMIT 8", (project,))]
    for result in (TaskResult.OK, TaskResult.FAIL):  # the common release at once; the rest one by one
        plans = _function_plans(url, mode, "SELECT * FROM tt_release_many(%s, %s, %s, %s)",
                                (ids, [1] * len(ids), [result] * len(ids), [0] * len(ids)))
        assert_by_primary_key(_statement(plans, "UPDATE task t SET status"))
        if result == TaskResult.FAIL:
            assert_by_primary_key(_statement(plans, "FROM task WHERE id = p_ids"))
    plans = _function_plans(url, mode, "SELECT * FROM tt_extend_many(%s, %s, %s)",
                            (ids, [1] * len(ids), [60] * len(ids)))
    assert_by_primary_key(_statement(plans, "UPDATE task t SET lease_deadline"))
    plan = _prepared_plan(url, mode, store.NEXT_EXPIRY, {"p": project})
    assert [(n["Node Type"], n.get("Index Name")) for n in _task_scans(plan)] == \
        [("Index Only Scan", "task_lease")], _describe(plan)
    assert "lease_deadline >" in _task_scans(plan)[0]["Index Cond"], _describe(plan)


@pytest.mark.parametrize("mode", MODES)
def test_never_analysed_table_after_bulk_load(tables, mode):
    with psycopg.connect(tables) as conn:
        assert conn.execute("SELECT reltuples FROM pg_class WHERE relname = 'task'").fetchone()[0] < 0
    _check_assign(tables, NEW, mode)
    _check_assign(tables, OLD, mode)
    _check_release(tables, NEW, mode)


@pytest.mark.parametrize("mode", MODES)
def test_stale_statistics_after_bulk_load_into_new_project(stale, mode):
    with psycopg.connect(stale) as conn:  # the statistics know OLD's rows only
        assert conn.execute("SELECT count(*) FROM pg_stats WHERE tablename = 'task' AND attname = 'project'"
                            " AND %s = ANY(CAST(CAST(most_common_vals AS text) AS bigint[]))",
                            (STALE_NEW,)).fetchone()[0] == 0
    _check_assign(stale, STALE_NEW, mode)
    _check_assign(stale, OLD, mode)
    _check_release(stale, STALE_NEW, mode)


def _check_listing(url: str, project: int, mode: str, descending: bool, **filters) -> None:
    """A page of task administration's listing (contract §6.8) is a range of ``task_project_id`` read
    in the page's order: no sort, no offset, whatever the statistics say."""
    statement, params = store.list_query(store.Chosen(project, **filters), descending, 1000, 50)
    plan = _prepared_plan(url, mode, statement, params)
    if _searched_then_sorted(plan, filters):
        return
    assert [(n["Node Type"], n.get("Index Name"), n.get("Scan Direction")) for n in _task_scans(plan)] == \
        [("Index Scan", "task_project_id", "Backward" if descending else "Forward")], _describe(plan)


def _searched_then_sorted(plan: dict, filters: dict) -> bool:
    """No sort, except of a search's matches: with ``q`` the planner may answer from task_recipe's
    trigram index (migration 0010) and sort the few matches by id (the same id order, so actions
    still lock in one order) — never a sort of the project's tasks. True when it did that."""
    sorts = [n for n in _nodes(plan) if n["Node Type"] in ("Sort", "Incremental Sort")]
    if not sorts:
        return False
    assert "q" in filters, _describe(plan)
    assert all(key.endswith("t.id") or key.endswith("t.id DESC") for n in sorts for key in n["Sort Key"][-1:]), \
        _describe(plan)
    assert any(n.get("Index Name") == "task_recipe_search" for n in _nodes(plan)), _describe(plan)
    return True


def _check_selection(url: str, project: int, mode: str, part: str | None = None, **filters) -> None:
    """The bulk actions lock their selection in id order along the same index, without a sort
    (the first pass of an action in descending order, store._in_two_passes)."""
    sel, params = store.locked_selection(store.Chosen(project, **filters), part=part)
    plan = _prepared_plan(url, mode, text(f"WITH {sel} SELECT count(*) FROM sel"), params)
    if _searched_then_sorted(plan, filters):
        return
    direction = "Backward" if part == "unassigned" else "Forward"  # the first pass goes down
    assert [(n["Node Type"], n.get("Index Name"), n.get("Scan Direction")) for n in _task_scans(plan)] == \
        [("Index Scan", "task_project_id", direction)], _describe(plan)


@pytest.mark.parametrize("mode", MODES)
def test_the_bulk_actions_select_along_the_project_id_index(stale, mode):
    for project in (STALE_NEW, OLD):
        for part in (None, "unassigned"):  # an action's first pass (store._in_two_passes) too
            _check_selection(stale, project, mode, part)
            _check_selection(stale, project, mode, part, status="failed", q="n")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("descending", [False, True], ids=["asc", "desc"])
def test_the_task_listing_pages_along_the_project_id_index(stale, mode, descending):
    for project in (STALE_NEW, OLD):
        _check_listing(stale, project, mode, descending)
        _check_listing(stale, project, mode, descending, status="failed")
        _check_listing(stale, project, mode, descending, q="n", assignee=3)


def _migration(name: str):
    return importlib.import_module(f"migrations.versions.{name}")


def test_the_functions_use_the_status_values_python_uses():
    """The database functions spell the task statuses of ``TaskStatus`` (one source: migration
    0008 states them once, 0011 the one its functions use, and this is where they must agree)."""
    module = _migration("0008_one_path")
    assert tuple(TaskStatus) == (module.NEW, module.FAILED, module.CLOSED)
    released = (module.R_CLOSED, module.R_FAILED, module.R_SKIPPED, module.R_AWAITING, module.R_NOT_HOLDER,
                module.R_MISSING)
    assert tuple(store.ReleaseOutcome) == released
    assert module.CHANNEL == TASK_READY_CHANNEL
    bounded = _migration("0011_bounded_pick")
    assert bounded.NEW == TaskStatus.NEW
    assert (bounded.PLANNER, bounded.HORIZON) == (module.PLANNER, module.HORIZON)


# --- recipe search (migration 0010) -------------------------------------------------------------------
# The side-table condition of a ``q`` search (docs/PERFORMANCE.md "Recipe search", "The query").
SEARCH = text("SELECT r.task_id FROM task_recipe r WHERE r.project = :p AND r.recipe ILIKE :pattern")


@pytest.mark.parametrize("mode", MODES)
def test_a_recipe_search_reads_the_trigram_index_on_a_never_analysed_side_table(stale, mode):
    """``task_recipe`` is filled by triggers during bulk loads and nothing here analyses it: a
    substring search for a rare term must still come from ``task_recipe_search``, for a custom plan
    (the pattern known) and a generic one (a parameter), not from reading the project's rows."""
    with psycopg.connect(stale) as conn:
        assert conn.execute("SELECT reltuples FROM pg_class WHERE relname = 'task_recipe'").fetchone()[0] < 0
        assert conn.execute("SELECT count(*) FROM task_recipe WHERE project = %s", (STALE_NEW,)).fetchone()[0] == BULK
    plan = _prepared_plan(stale, mode, SEARCH, {"p": STALE_NEW, "pattern": "%zebrafish%"})
    indexes = [n.get("Index Name") for n in _nodes(plan) if n["Node Type"].endswith("Scan")]
    assert "task_recipe_search" in indexes, _describe(plan)
    assert not any(n["Node Type"] == "Seq Scan" for n in _nodes(plan)), _describe(plan)
