"""Recipe search's side table (migration 0010): ``task_recipe`` follows ``task`` through triggers
whatever statement writes the task — COPY, INSERT, an edit, a move, a delete — and the hot path's
row updates (get, release: ``status``, ``assignee``, lease) never touch it.

Runs in the unit tier's rolled-back transaction (tests/unit/conftest.py ``conn``).
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from services.project_svc import store as projects
from services.task_svc import store


def new_project(conn: Connection, name: str) -> int:
    return projects.create(conn, {"name": name}, "whsecret")


def side(conn: Connection, project: int | None = None) -> dict[int, tuple[int, str]]:
    rows = conn.execute(text("SELECT task_id, project, recipe FROM task_recipe"
                             + (" WHERE project = :p" if project is not None else "")), {"p": project})
    return {r.task_id: (r.project, r.recipe) for r in rows}


def tasks(conn: Connection, project: int) -> dict[int, tuple[int, str]]:
    rows = conn.execute(text("SELECT id, project, recipe FROM task WHERE project = :p"), {"p": project})
    return {r.id: (r.project, r.recipe) for r in rows}


def rows(n: int, prefix: str = "r") -> list[list]:
    return [[0, f'{{"{prefix}": {i}}}', 0, 0, 1, 0] for i in range(n)]


def test_bulk_by_copy_and_by_insert_and_one_submit_are_all_copied(conn):
    p = new_project(conn, "search-insert")
    assert store.insert_tasks(conn, p, rows(250, "copy")) == 250       # COPY path (>= COPY_FROM)
    assert store.insert_tasks(conn, p, rows(3, "insert")) == 3         # INSERT … ON CONFLICT path
    assert store.insert_task(conn, p, [0, "one Zebrafish", 0, 0, 1, 0]) is not None
    assert side(conn, p) == tasks(conn, p) and len(side(conn, p)) == 254


def test_a_duplicate_skipped_by_on_conflict_leaves_no_side_row(conn):
    p = new_project(conn, "search-dupes")
    assert store.insert_tasks(conn, p, [[0, "a", 0, 0, 1, 77], [0, "b", 0, 0, 1, 77]]) == 1
    assert sorted(r for _, r in side(conn, p).values()) == ["a"]


def test_edit_and_move_follow_hot_path_updates_do_not_touch_the_side_row(conn):
    p, q = new_project(conn, "search-edit"), new_project(conn, "search-move")
    task_id = store.insert_task(conn, p, [0, "before", 0, 0, 1, 0])

    def version() -> tuple:
        return conn.execute(text("SELECT xmin::text, ctid::text FROM task_recipe WHERE task_id = :t"),
                            {"t": task_id}).one()

    untouched = version()
    conn.execute(text("UPDATE task SET assignee = 1, assign_time = 5, lease_deadline = now() WHERE id = :t"),
                 {"t": task_id})
    conn.execute(text("UPDATE task SET status = 3, priority = 4, lease_deadline = NULL WHERE id = :t"),
                 {"t": task_id})
    assert version() == untouched  # not even rewritten: no trigger fired
    conn.execute(text("UPDATE task SET recipe = 'after' WHERE id = :t"), {"t": task_id})
    assert side(conn)[task_id] == (p, "after")
    conn.execute(text("UPDATE task SET project = :q WHERE id = :t"), {"q": q, "t": task_id})
    assert side(conn)[task_id] == (q, "after")


def test_deletes_remove_side_rows_by_statement_and_by_project_cascade(conn):
    p, q = new_project(conn, "search-del"), new_project(conn, "search-del2")
    store.insert_tasks(conn, p, rows(5))
    store.insert_tasks(conn, q, rows(4))
    conn.execute(text("DELETE FROM task WHERE project = :p AND recipe <> :keep"), {"p": p, "keep": '{"r": 0}'})
    assert list(side(conn, p).values()) == [(p, '{"r": 0}')]
    conn.execute(text("DELETE FROM project WHERE id = :q"), {"q": q})  # task rows go by the foreign key
    assert side(conn, q) == {} and len(side(conn)) == 1


def test_a_substring_search_can_use_the_trigram_index(conn):
    p = new_project(conn, "search-plan")
    store.insert_tasks(conn, p, rows(300))
    conn.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(conn.execute(text(
        "EXPLAIN SELECT task_id FROM task_recipe WHERE recipe ILIKE '%zebrafish%'")).scalars())
    assert "task_recipe_search" in plan, plan
