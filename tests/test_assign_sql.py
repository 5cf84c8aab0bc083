"""The batch assignment function (migration 0005) hands out exactly what one get after another
would: tt_assign_many against a loop of tt_assign, on the same rows, each in a rolled-back
transaction. Covers priorities, expired leases, ?count=N, quorum tasks and two projects; and how
far a get looks past tasks another transaction holds locked (migration 0011)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from tests.harness import migrated_database

# One pytest process runs the whole module: its fixture builds a database of its own with a queued load once.
pytestmark = pytest.mark.xdist_group("test_assign_sql")


@pytest.fixture
def scene(system, api, make_project):
    p, q = make_project(public=True), make_project(public=True)
    workers = [api.new_worker(f"sql-{i}").id for i in range(3)]
    rows = [(p, prio, 1, 0) for prio in (0, 5, 5, 2, 9, 0, 1)] + [(q, 3, 1, 0), (q, 3, 2, 0), (q, 7, 2, 0)]
    with psycopg.connect(system.db_url, autocommit=True) as conn:
        ids = [conn.execute("INSERT INTO task (project, priority, recipe, verification_count, max_assign_time) "
                            "VALUES (%s, %s, 'r', %s, 60) RETURNING id", (pr, prio, vc)).fetchone()[0]
               for pr, prio, vc, _ in rows]
        # two expired leases in p, one still running
        conn.execute("UPDATE task SET assignee = %s, lease_deadline = now() - interval '1 minute' "
                     "WHERE id = ANY(%s)", (workers[2], [ids[1], ids[5]]))
        conn.execute("UPDATE task SET assignee = %s, lease_deadline = now() + interval '1 hour' WHERE id = %s",
                     (workers[2], ids[4]))
        # workers[0] already verified the best quorum task of q
        conn.execute("INSERT INTO task_verification (task_id, worker_id, verification) VALUES (%s, %s, 1)",
                     (ids[9], workers[0]))
    return p, q, workers


def _assigned(db_url: str, gets: list[tuple[int, int, int]], batch: bool) -> list[tuple[int, int, int]]:
    with psycopg.connect(db_url) as conn:
        if batch:
            rows = conn.execute("SELECT req, (t).id, (t).assignee FROM tt_assign_many(%s, %s, %s, %s)",
                                ([g[0] for g in gets], [g[1] for g in gets], [g[2] for g in gets],
                                 [0.0] * len(gets))).fetchall()
        else:
            rows = [(i + 1, r[0], r[1]) for i, g in enumerate(gets)
                    for r in conn.execute("SELECT id, assignee FROM tt_assign(%s, %s, %s)", g).fetchall()]
        conn.rollback()
    return sorted(rows)


@pytest.mark.parametrize("shape", ["one project", "counts", "two projects", "quorum", "more than free"])
def test_batch_assignment_matches_one_get_after_another(system, scene, shape):
    p, q, (w0, w1, w2) = scene
    gets = {
        "one project": [(p, w0, 1), (p, w1, 1), (p, w2, 1)],
        "counts": [(p, w0, 2), (p, w1, 3)],
        "two projects": [(p, w0, 1), (q, w1, 1), (p, w1, 2)],
        "quorum": [(q, w0, 1), (q, w1, 1), (q, w0, 2)],
        "more than free": [(p, w0, 4), (p, w1, 4), (p, w2, 1)],
    }[shape]
    batch = _assigned(system.db_url, gets, batch=True)
    assert batch == _assigned(system.db_url, gets, batch=False)
    assert batch, "the scene has assignable tasks"
    assert len({task for _, task, _ in batch}) == len(batch), "a task handed out twice"


def test_a_rate_limited_project_admits_one_get_per_token_within_a_batch(system, scene):
    """Gets of a rate-limited project in one batch are admitted, served and charged one after the
    other (migration 0008): at 1 task/s the first get takes its task, the next two are refused
    with the delay until the next token; an unlimited project in the same batch is untouched."""
    p, q, (w0, w1, w2) = scene
    with psycopg.connect(system.db_url) as conn:
        rows = conn.execute(
            "SELECT req, (t).id, delay FROM tt_assign_many(%s, %s, %s, %s) ORDER BY req",
            ([p, p, q, p], [w0, w1, w2, w2], [1, 1, 1, 1], [1.0, 1.0, 0.0, 1.0])).fetchall()
        charged = conn.execute("SELECT next_free - extract(epoch FROM now()) FROM rate_limit "
                               "WHERE project_id = %s AND kind = 0", (p,)).fetchone()[0]
        conn.rollback()
    by_req = {}
    for req, task, delay in rows:
        by_req.setdefault(req, []).append((task, delay))
    assert by_req[1][0][0] is not None and by_req[1][0][1] is None  # admitted, served
    assert by_req[3][0][0] is not None  # the unlimited project
    for req in (2, 4):
        assert by_req[req] == [(None, by_req[req][0][1])]
        assert 0.5 < by_req[req][0][1] <= 1.0  # refused until the next token, ~1 s away
    assert 0.5 < charged <= 1.01


# --- a project under a long action (migration 0011) ----------------------------------------------
# A filter action (contract §6.8) keeps every task it changed locked until it commits. Each get
# passes at most MAX_SKIPPED locked candidates: counted here in buffers (the pages a call touches,
# its nested statements included), not timed. Measured: ~7,000–7,500 for n + MAX_SKIPPED
# candidates (a lock attempt is a heap page and a primary-key descent) where the unbounded scan of
# 0007/0008 read ~53,000 to step over the 50,000 locked rows below (so it fails this test).
QUEUED = 60_000
LOCKED = 50_000
MAX_SKIPPED = importlib.import_module("migrations.versions.0011_bounded_pick").MAX_SKIPPED
BUFFER_BOUND = 10 * MAX_SKIPPED


@pytest.fixture(scope="module")
def big_db():
    """Project 1: QUEUED tasks, all priority 0 (id order is choice order); project 2: 10 tasks."""
    with migrated_database("tt_stall_") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO project (id, name, webhook_secret) VALUES (1, 'big', 'x'), (2, 'other', 'x')")
            conn.execute("INSERT INTO worker (id, alias, created, secret_digest)"
                         " SELECT g, 'w' || g, 0, 'd' FROM generate_series(1, 8) g")
            conn.execute("INSERT INTO task (project, recipe, max_assign_time)"
                         " SELECT 1, 'r' || g, 60 FROM generate_series(1, %s) g", (QUEUED,))
            conn.execute("INSERT INTO task (project, recipe, max_assign_time)"
                         " SELECT 2, 'r', 60 FROM generate_series(1, 10)")
            conn.execute("VACUUM (ANALYZE) task")
        yield url


@contextmanager
def action_holding(url: str, first: int, how: str) -> Iterator[list[int]]:
    """Another transaction holding row locks on the project's ``first`` best tasks, as a filter
    action does: by rewriting their priority (new index entries the get cannot see, the old ones
    locked) or by locking them only. Yields the locked ids; rolled back on exit."""
    with psycopg.connect(url) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM task WHERE project = 1 ORDER BY id LIMIT %s", (first,))]
        if how == "priority":
            conn.execute("UPDATE task SET priority = 7 WHERE id = ANY(%s)", (ids,))
        else:
            conn.execute("SELECT count(*) FROM (SELECT id FROM task WHERE id = ANY(%s) FOR UPDATE) x", (ids,))
        try:
            yield ids
        finally:
            conn.rollback()
    if how == "priority":
        # The rolled-back rewrite leaves LOCKED dead entries at the head of the priority index:
        # the next get would read them all once, whichever test runs next (order-dependent).
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM task")


def _get(url: str, call: str, args: tuple) -> tuple[list[int], int]:
    """The task ids one call hands out and the buffers it touched, rolled back."""
    with psycopg.connect(url) as conn:
        conn.execute("SET statement_timeout = '20s'")  # a stall fails, never hangs
        plan = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {call}", args).fetchone()[0][0]["Plan"]
        conn.rollback()
        ids = [r[0] for r in conn.execute(call.replace("SELECT *", "SELECT (t).id" if "many" in call else "SELECT id"),
                                          args).fetchall()]
        conn.rollback()
    return ids, plan["Shared Hit Blocks"] + plan["Shared Read Blocks"]


BATCH = ("SELECT * FROM tt_assign_many(%s, %s, %s, %s)", ([1, 1, 2], [1, 2, 3], [1, 2, 1], [0.0] * 3))
SINGLE = ("SELECT * FROM tt_assign(%s, %s, %s)", (1, 1, 3))  # the rate-limited and quorum path


@pytest.mark.parametrize("how", ["priority", "lock"])
@pytest.mark.parametrize("call", [BATCH, SINGLE], ids=["tt_assign_many", "tt_assign"])
def test_a_get_passes_at_most_max_skipped_locked_tasks(big_db, how, call):
    """50,000 best tasks locked: the get reads a bounded number of pages and answers "No task
    available" for that project (its free tasks are all behind the locked ones), without
    handing out a locked task; another project in the same batch is served as usual."""
    with action_holding(big_db, LOCKED, how) as locked:
        ids, buffers = _get(big_db, *call)
    assert buffers < BUFFER_BOUND, f"{buffers} buffers: the scan went past the bound"
    assert not set(ids) & set(locked)
    with psycopg.connect(big_db) as conn:
        project = dict(conn.execute("SELECT id, project FROM task WHERE id = ANY(%s)", (ids,)).fetchall())
    assert [i for i in ids if project[i] == 1] == []
    if call is BATCH:
        assert len([i for i in ids if project[i] == 2]) == 1


@pytest.mark.parametrize("how", ["priority", "lock"])
@pytest.mark.parametrize("call", [BATCH, SINGLE], ids=["tt_assign_many", "tt_assign"])
def test_the_best_unlocked_tasks_within_the_bound_are_handed_out_in_order(big_db, how, call):
    """Fewer locked tasks than MAX_SKIPPED ahead: the get hands out the best unlocked tasks, the
    same ones, in the same order, as the unbounded scan did (contract §3.1)."""
    with action_holding(big_db, MAX_SKIPPED // 2, how) as locked:
        ids, _ = _get(big_db, *call)
    with psycopg.connect(big_db) as conn:
        best = [r[0] for r in conn.execute("SELECT id FROM task WHERE project = 1 AND NOT (id = ANY(%s))"
                                           " ORDER BY priority DESC, id LIMIT 3", (locked,))]
    assert [i for i in ids if i in set(best) | set(locked)] == best
