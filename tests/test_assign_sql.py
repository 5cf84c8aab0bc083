"""The batch assignment function (migration 0005) hands out exactly what one get after another
would: tt_assign_many against a loop of tt_assign, on the same rows, each in a rolled-back
transaction. Covers priorities, expired leases, ?count=N, quorum tasks and two projects."""

from __future__ import annotations

import psycopg
import pytest


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
