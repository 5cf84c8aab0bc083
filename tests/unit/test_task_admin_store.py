"""The SQL of task administration (services/task_svc/store.py, contract §6.8) against a migrated
database, inside a rolled-back transaction: the selection of each filter, the ILIKE escaping, the
cursor pages, and the actions' counts and effects."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Connection, text

from services.project_svc import store as projects
from services.task_svc import store
from services.task_svc.store import Chosen, like_pattern

NEW, FAILED, CLOSED = 1, 2, 3


def one(conn: Connection, query: str, **params):
    return conn.execute(text(query), params).scalar()


def project(conn: Connection, name: str) -> int:
    return projects.create(conn, {"name": name}, "whsecret")


def task(conn: Connection, pid: int, recipe: str = "r", **columns) -> int:
    names = ["project", "recipe", *columns]
    return one(conn, f"INSERT INTO task ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)}) RETURNING id",
               project=pid, recipe=recipe, **columns)


def ids(conn: Connection, chosen: Chosen) -> list[int]:
    where, params = store.selection(chosen)
    return [r[0] for r in conn.execute(text(f"SELECT t.id FROM task t WHERE {where} ORDER BY t.id"), params)]


@pytest.mark.parametrize("raw, pattern", [
    ("abc", "%abc%"), ("50%", "%50\\%%"), ("a_b", "%a\\_b%"), ("C:\\x", "%C:\\\\x%"), ("\\%_", "%\\\\\\%\\_%"),
])
def test_like_pattern_escapes_the_wildcards_and_the_escape(raw, pattern):
    assert like_pattern(raw) == pattern


def test_q_matches_literally_and_case_insensitively(conn):
    pid = project(conn, "q")
    rows = {name: task(conn, pid, recipe) for name, recipe in
            [("pct", "100% done"), ("under", "a_b"), ("plain", "axb 100 done"), ("slash", "x\\y"), ("caps", "ÜBER")]}
    assert ids(conn, Chosen(pid, q="%")) == [rows["pct"]]
    assert ids(conn, Chosen(pid, q="a_b")) == [rows["under"]]
    assert ids(conn, Chosen(pid, q="\\")) == [rows["slash"]]
    assert ids(conn, Chosen(pid, q="über")) == [rows["caps"]]
    assert ids(conn, Chosen(pid, q="done")) == sorted([rows["pct"], rows["plain"]])


def test_status_filters_are_disjoint_and_cover_every_task(conn):
    pid = project(conn, "s")
    worker = one(conn, "INSERT INTO worker (alias, created, secret_digest) VALUES ('w', 0, 'd') RETURNING id")
    rows = {
        "fresh": task(conn, pid),
        "expired": task(conn, pid, assignee=worker, lease_deadline=None),
        "held_forever": task(conn, pid, assignee=worker),
        "held": task(conn, pid, assignee=worker),
        "awaiting": task(conn, pid, verification_count=2),
        "failed": task(conn, pid, status=FAILED),
        "closed": task(conn, pid, status=CLOSED, assignee=worker),
    }
    conn.execute(text("UPDATE task SET lease_deadline = now() - interval '1 second' WHERE id = :i"),
                 {"i": rows["expired"]})
    conn.execute(text("UPDATE task SET lease_deadline = clock_timestamp() + interval '1 hour' WHERE id = :i"),
                 {"i": rows["held"]})
    conn.execute(text("INSERT INTO task_verification VALUES (:i, :w, 5)"), {"i": rows["awaiting"], "w": worker})
    expected = {"new": ["fresh", "expired"], "awaiting": ["awaiting"], "assigned": ["held_forever", "held"],
                "failed": ["failed"], "closed": ["closed"]}
    for status, names in expected.items():
        assert ids(conn, Chosen(pid, status=status)) == sorted(rows[n] for n in names), status
    assert ids(conn, Chosen(pid, assignee=worker)) == sorted(rows[n] for n in ("expired", "held_forever", "held",
                                                                                 "closed"))
    assert ids(conn, Chosen(pid, ids=[rows["fresh"], rows["closed"], 10**15])) == sorted([rows["fresh"],
                                                                                          rows["closed"]])
    assert ids(conn, Chosen(pid)) == sorted(rows.values())


@pytest.mark.parametrize("descending", [False, True])
def test_pages_follow_the_cursor_without_gap_or_repeat(conn, descending):
    pid, other = project(conn, "p"), project(conn, "o")
    made = []
    for i in range(23):
        made.append(task(conn, pid, f"t{i}"))
        task(conn, other, f"o{i}")  # interleaved ids of another project never show
    seen, after = [], None
    while True:
        rows, after = store.list_tasks(conn, Chosen(pid), descending, after, 5)
        seen += [r["id"] for r in rows]
        if after is None:
            break
        assert after == rows[-1]["id"] and len(rows) == 5
    assert seen == sorted(made, reverse=descending)
    assert store.list_tasks(conn, Chosen(pid), descending, None, 23)[1] is None
    assert store.list_tasks(conn, Chosen(pid), descending, None, 22)[1] is not None


def test_listing_cuts_the_recipe_and_the_row_has_it_whole(conn):
    pid = project(conn, "r")
    tid = task(conn, pid, "ab" * 1000)
    rows, _ = store.list_tasks(conn, Chosen(pid), False, None, 5)
    assert rows[0]["recipe"] == ("ab" * 1000)[:1000] and rows[0]["recipe_length"] == 2000
    assert store.task_row(conn, tid)["recipe"] == "ab" * 1000
    assert store.task_row(conn, tid + 1000) is None


def test_retry_counts_new_and_failed_and_forgets_votes(conn):
    pid = project(conn, "rt")
    worker = one(conn, "INSERT INTO worker (alias, created, secret_digest) VALUES ('w', 0, 'd') RETURNING id")
    failed = task(conn, pid, status=FAILED, retries=3)
    voted = task(conn, pid, verification_count=2)
    closed = task(conn, pid, status=CLOSED, assignee=worker)
    held = task(conn, pid, assignee=worker)
    conn.execute(text("INSERT INTO task_verification VALUES (:i, :w, 5)"), {"i": voted, "w": worker})
    assert store.retry(conn, Chosen(pid)) == 3
    assert one(conn, "SELECT count(*) FROM task_verification") == 0
    assert one(conn, "SELECT count(*) FROM task WHERE status = 1 AND retries = 0 AND assignee IS NULL "
                     "AND id IN (:a, :b, :c)", a=failed, b=voted, c=held) == 3
    assert one(conn, "SELECT status FROM task WHERE id = :i", i=closed) == CLOSED
    assert store.retry(conn, Chosen(pid)) == 3  # already pristine ones still count


def test_move_skips_the_targets_hashes_and_sets_priority_on_moved_only(conn):
    src, dst = project(conn, "src"), project(conn, "dst")
    task(conn, dst, hash64=7)
    clash = task(conn, src, hash64=7, priority=1)
    free = task(conn, src, hash64=8, priority=1)
    nohash = task(conn, src, priority=1)
    closed = task(conn, src, hash64=9, status=CLOSED)
    assert store.move(conn, Chosen(src), dst, 5) == (2, 1)
    placed = dict(conn.execute(text("SELECT id, project FROM task WHERE id IN (:a, :b, :c, :d)"),
                               {"a": clash, "b": free, "c": nohash, "d": closed}).all())
    assert placed == {clash: src, free: dst, nohash: dst, closed: src}
    assert one(conn, "SELECT priority FROM task WHERE id = :i", i=clash) == 1
    assert one(conn, "SELECT priority FROM task WHERE id = :i", i=free) == 5


def test_delete_and_set_priority_counts(conn):
    pid = project(conn, "d")
    a, b = task(conn, pid), task(conn, pid, status=CLOSED)
    assert store.set_priority(conn, Chosen(pid), 4) == 1
    assert store.delete(conn, Chosen(pid, ids=[a, b])) == 2
    assert one(conn, "SELECT count(*) FROM task WHERE project = :p", p=pid) == 0


def test_a_move_racing_a_submit_of_the_same_hash_counts_it_as_a_conflict(engine):
    """A submit to the target stores a hash64 the move already looked for: the move's update meets
    the unique index (after waiting for the submit's commit), runs again in a savepoint and leaves
    that task behind as a conflict, instead of failing. Committed rows, removed at the end."""
    with engine.begin() as setup:
        src, dst = project(setup, "race-src"), project(setup, "race-dst")
        racing = task(setup, src, hash64=4242)
        calm = task(setup, src, hash64=4343)
    try:
        with engine.connect() as submitter:
            submitter.begin()
            task(submitter, dst, hash64=4242)  # not committed yet: invisible to the move's check
            result: dict = {}

            def run_move() -> None:
                with engine.begin() as mover:
                    result["moved"] = store.move(mover, Chosen(src), dst, None)

            thread = threading.Thread(target=run_move)
            thread.start()
            time.sleep(0.5)
            assert thread.is_alive()  # the move waits on the submit's index entry
            submitter.commit()
            thread.join(10)
        assert result["moved"] == (1, 1)
        with engine.connect() as check:
            assert one(check, "SELECT project FROM task WHERE id = :i", i=racing) == src
            assert one(check, "SELECT project FROM task WHERE id = :i", i=calm) == dst
    finally:
        with engine.begin() as cleanup:
            cleanup.execute(text("DELETE FROM project WHERE id IN (:a, :b)"), {"a": src, "b": dst})


def test_a_holders_release_does_not_wait_for_the_actions_first_pass(engine, monkeypatch):
    """An action's first pass locks only tasks without an assignee, so a holder can release its task
    while that pass (the long part of a big action) is still open; the second pass then takes the
    released task as it is now. The action stays one transaction: its count covers both passes."""
    with engine.begin() as setup:
        pid = project(setup, "passes")
        free = [task(setup, pid) for _ in range(3)]
        held = task(setup, pid, assignee=77, assign_time=1)
    released_while_open: dict = {}
    real_run = store.locked_selection

    def pausing(chosen, open_only=True, part=None, after=0):
        if part == "rest" and "rows" not in released_while_open:  # between the passes: first-pass locks held
            with engine.connect() as holder:
                holder.execute(text("SET lock_timeout = '2s'"))
                released_while_open["rows"] = holder.execute(text(
                    f"UPDATE task SET status = {FAILED}, assignee = NULL WHERE id = :i AND assignee = 77"),
                    {"i": held}).rowcount
                holder.commit()
        return real_run(chosen, open_only, part, after)

    monkeypatch.setattr(store, "locked_selection", pausing)
    try:
        with engine.begin() as manager:
            assert store.set_priority(manager, Chosen(pid), 9) == 4
        assert released_while_open["rows"] == 1  # no lock wait (lock_timeout would have raised)
        with engine.connect() as check:
            assert one(check, "SELECT count(*) FROM task WHERE project = :p AND priority = 9", p=pid) == 4
            assert one(check, "SELECT status FROM task WHERE id = :i", i=held) == FAILED
            assert sorted(free) == [r[0] for r in check.execute(text(
                "SELECT id FROM task WHERE project = :p AND assignee IS NULL AND status = 1 ORDER BY id"),
                {"p": pid})]
    finally:
        with engine.begin() as cleanup:
            cleanup.execute(text("DELETE FROM project WHERE id = :p"), {"p": pid})


def test_the_first_pass_goes_in_chunks_and_misses_nothing(conn, monkeypatch):
    """Chunks of the first pass follow the id cursor: every selected task once, whatever the chunk."""
    monkeypatch.setattr(store, "ACTION_CHUNK", 3)
    pid = project(conn, "chunks")
    made = [task(conn, pid, status=FAILED if i % 4 == 0 else NEW) for i in range(11)]
    task(conn, pid, status=CLOSED)
    assert store.retry(conn, Chosen(pid)) == 11
    assert store.set_priority(conn, Chosen(pid, ids=made[2:9]), 3) == 7
    assert one(conn, "SELECT count(*) FROM task WHERE project = :p AND priority = 3", p=pid) == 7
    assert store.delete(conn, Chosen(pid)) == 12
