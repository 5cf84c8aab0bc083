"""The SQL of project_svc, worker_svc, manager_svc and log_svc against a migrated database.

Each test runs in one transaction that is rolled back (tests/unit/conftest.py ``conn``): effects
are read back with plain SQL, refusals (a taken name, a second request) are answered by the
database's own constraints, and nothing outlives the test.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from services.log_svc import store as logs
from services.manager_svc import store as managers
from services.project_svc import store as projects
from services.worker_svc import store as workers


def one(conn: Connection, query: str, **params):
    return conn.execute(text(query), params).scalar()


def new_worker(conn: Connection, alias: str = "w") -> int:
    return workers.create(conn, alias, "digest-" + alias)["id"]


def new_manager(conn: Connection, username: str, admin: bool | None = False) -> int:
    return managers.create(conn, username, "hash", admin=admin)["id"]


def new_project(conn: Connection, name: str, **values) -> int:
    project_id = projects.create(conn, {"name": name, **values}, "whsecret")
    assert project_id is not None
    return project_id


# --- the rollback itself --------------------------------------------------------------------------
@pytest.mark.parametrize("run", [1, 2])
def test_each_test_starts_from_the_migrated_empty_database(conn, run):
    assert one(conn, "SELECT count(*) FROM worker") == 0
    assert one(conn, "SELECT count(*) FROM manager") == 0
    new_worker(conn)  # rolled back: the other run sees none either
    new_manager(conn, "m")


# --- worker_svc --------------------------------------------------------------------------------------
def test_worker_create_stores_the_digest_and_answers_the_public_record(conn):
    row = workers.create(conn, "alpha", "d1")
    assert set(row) == {"id", "created", "alias", "paused"}
    assert row["alias"] == "alpha" and row["paused"] is False and row["created"] > 1_600_000_000
    assert one(conn, "SELECT secret_digest FROM worker WHERE id = :i", i=row["id"]) == "d1"
    assert workers.get(conn, row["id"]) == row
    assert workers.get(conn, row["id"] + 1000) is None


def test_worker_ids_are_distinct(conn):
    ids = {new_worker(conn, f"w{i}") for i in range(3)}
    assert len(ids) == 3 and one(conn, "SELECT count(*) FROM worker") == 3


def test_worker_alias_and_pause_change_only_that_worker(conn):
    a, b = new_worker(conn, "a"), new_worker(conn, "b")
    workers.set_alias(conn, a, "renamed")
    assert workers.set_paused(conn, a, True) is True
    assert workers.get(conn, a)["alias"] == "renamed" and workers.get(conn, a)["paused"] is True
    assert workers.get(conn, b)["alias"] == "b" and workers.get(conn, b)["paused"] is False
    assert workers.set_paused(conn, a + b + 1000, True) is False  # nobody to pause


def test_worker_stats_count_closures_zero_without_any(conn):
    a, b = new_worker(conn, "a"), new_worker(conn, "b")
    conn.execute(text("INSERT INTO worker_closures (worker_id, closed_task_count) VALUES (:w, 5)"), {"w": b})
    assert workers.stats(conn) == [
        {"id": a, "alias": "a", "closed_task_count": 0, "paused": False},
        {"id": b, "alias": "b", "closed_task_count": 5, "paused": False},
    ]


# --- manager_svc -------------------------------------------------------------------------------------
def test_first_manager_is_admin_later_ones_are_not(conn):
    first = managers.create(conn, "first", "h")
    second = managers.create(conn, "second", "h")
    assert first["tracker_admin"] is True and second["tracker_admin"] is False
    assert managers.admin_count(conn) == 1 and managers.is_admin(conn, first["id"])


def test_taken_username_refused_nothing_stored(conn):
    managers.create(conn, "taken", "h1")
    assert managers.create(conn, "taken", "h2") is None
    assert one(conn, "SELECT count(*) FROM manager") == 1
    assert managers.by_username(conn, "taken").password_hash == "h1"


def test_username_unique_index_refuses_a_direct_duplicate(conn):
    """The index, not only the store's check, keeps names unique (two registrations racing)."""
    new_manager(conn, "dup")
    with pytest.raises(IntegrityError) as refused, conn.begin_nested():
        conn.execute(text("INSERT INTO manager (username, password_hash, register_time) VALUES ('dup', 'h', 0)"))
    assert refused.value.orig.sqlstate == "23505"


def test_usernames_compare_exactly(conn):
    new_manager(conn, "Alice")
    assert managers.by_username(conn, "alice") is None
    assert managers.create(conn, "alice", "h") is not None


def test_sessions_open_and_close(conn):
    m = new_manager(conn, "m")
    managers.open_session(conn, m, "tok-1", 3600)
    managers.open_session(conn, m, "tok-2", 3600)
    managers.close_session(conn, "tok-1")
    assert conn.execute(text("SELECT token_digest FROM manager_session")).scalars().all() == ["tok-2"]
    assert one(conn, "SELECT expires > now() + interval '59 minutes' FROM manager_session") is True


def test_at_most_50_sessions_the_oldest_end(conn):
    m, other = new_manager(conn, "m"), new_manager(conn, "other")
    managers.open_session(conn, other, "other-0", 3600)
    for i in range(managers.MAX_SESSIONS + 2):
        managers.open_session(conn, m, f"s-{i:02d}", 3600 + i)  # later sessions expire later
    kept = conn.execute(text("SELECT token_digest FROM manager_session WHERE manager_id = :m ORDER BY 1"),
                        {"m": m}).scalars().all()
    assert kept == [f"s-{i:02d}" for i in range(2, managers.MAX_SESSIONS + 2)]
    assert one(conn, "SELECT count(*) FROM manager_session WHERE manager_id = :o", o=other) == 1


def test_expired_sessions_are_removed_by_the_next_login(conn):
    m = new_manager(conn, "m")
    conn.execute(text("INSERT INTO manager_session VALUES ('old', :m, now() - interval '1 second')"), {"m": m})
    managers.open_session(conn, m, "new", 60)
    assert conn.execute(text("SELECT token_digest FROM manager_session")).scalars().all() == ["new"]


def test_promote_and_demote(conn):
    a, b = new_manager(conn, "a", admin=True), new_manager(conn, "b")
    managers.set_admin(conn, b, True)
    assert managers.admin_count(conn) == 2
    managers.set_admin(conn, a, False)
    assert [m["id"] for m in managers.list_all(conn) if m["tracker_admin"]] == [b]


# --- project_svc ----------------------------------------------------------------------------------------
def test_project_create_stores_fields_and_defaults(conn):
    pid = new_project(conn, "alpha", priority=3, motd="hello")
    row = conn.execute(text("SELECT name, priority, motd, public, hidden, paused, webhook_secret FROM project "
                            "WHERE id = :p"), {"p": pid}).one()
    assert tuple(row) == ("alpha", 3, "hello", False, False, False, "whsecret")
    assert projects.exists_(conn, pid) and not projects.exists_(conn, pid + 1000)


def test_project_name_taken_create_refused(conn):
    new_project(conn, "same")
    assert projects.create(conn, {"name": "same"}, "x") is None
    assert one(conn, "SELECT count(*) FROM project") == 1


def test_rename_to_a_taken_name_refused_and_the_transaction_goes_on(conn):
    a, b = new_project(conn, "a"), new_project(conn, "b")
    assert projects.update_fields(conn, b, {"name": "a", "motd": "changed"}) is False
    # The refusal was a savepoint: the transaction still works and b is unchanged.
    assert tuple(conn.execute(text("SELECT name, motd FROM project WHERE id = :b"), {"b": b}).one()) == ("b", "")
    assert projects.update_fields(conn, b, {"name": "c"}) is True
    assert one(conn, "SELECT name FROM project WHERE id = :b", b=b) == "c"
    assert one(conn, "SELECT name FROM project WHERE id = :a", a=a) == "a"


def test_update_with_nothing_to_change_is_a_success(conn):
    pid = new_project(conn, "p")
    assert projects.update_fields(conn, pid, {}) is True


def test_list_readable_by_visibility_and_role(conn):
    shown, hidden, mine = new_project(conn, "b-shown"), new_project(conn, "a-hidden", hidden=True), \
        new_project(conn, "c-mine", hidden=True)
    m = new_manager(conn, "m")
    projects.set_role(conn, m, mine, 1)
    names = {who: [p["name"] for p in projects.list_readable(conn, *who)]
             for who in ((None, False), (m, False), (None, True))}
    assert names[(None, False)] == ["b-shown"]
    assert names[(m, False)] == ["b-shown", "c-mine"]
    assert names[(None, True)] == ["a-hidden", "b-shown", "c-mine"]  # by name, admin sees all
    assert {shown, hidden, mine} == {p["id"] for p in projects.list_readable(conn, None, True)}
    listed = projects.list_readable(conn, None, False)[0]
    assert listed["closed_task_count"] == 0 and "webhook_secret" not in listed and "secret" not in listed


def test_roles_set_change_and_remove(conn):
    pid, m = new_project(conn, "p"), new_manager(conn, "m")
    assert projects.role_of(conn, m, pid) == 0
    projects.set_role(conn, m, pid, 5)
    projects.set_role(conn, m, pid, 7)
    assert projects.role_of(conn, m, pid) == 7
    assert one(conn, "SELECT count(*) FROM manager_role") == 1
    assert projects.managers_with_role(conn, pid)[0]["role"] == 7
    assert projects.managers_with_role(conn, pid)[0]["manager"]["username"] == "m"
    projects.set_role(conn, m, pid, 0)
    assert projects.role_of(conn, m, pid) == 0 and one(conn, "SELECT count(*) FROM manager_role") == 0


def test_access_request_grant_revoke(conn):
    pid, w = new_project(conn, "p"), new_worker(conn, "w")
    assert projects.add_request(conn, w, pid, assign=True, submit=False) is True
    row = projects.access_row(conn, w, pid)
    assert (row.assign, row.submit, row.request) == (True, False, True)
    assert projects.add_request(conn, w, pid, assign=False, submit=True) is False  # second request refused
    assert tuple(projects.access_row(conn, w, pid))[2:] == (True, False, True)  # and changed nothing
    projects.grant(conn, w, pid)
    assert projects.access_row(conn, w, pid).request is False
    assert projects.add_request(conn, w, pid, assign=True, submit=True) is False  # granted: refused too
    projects.revoke(conn, w, pid)
    assert projects.access_row(conn, w, pid) is None


def test_access_request_for_a_missing_worker_violates_the_key(conn):
    pid = new_project(conn, "p")
    with pytest.raises(IntegrityError) as refused, conn.begin_nested():
        projects.add_request(conn, 999_999, pid, True, True)
    assert refused.value.orig.sqlstate == "23503"
    assert not projects.worker_exists(conn, 999_999)


def test_access_list_granted_first_then_by_alias(conn):
    pid = new_project(conn, "p")
    b, a, c = new_worker(conn, "b"), new_worker(conn, "a"), new_worker(conn, "c")
    for w in (a, b, c):
        projects.add_request(conn, w, pid, True, True)
    projects.grant(conn, c, pid)
    listed = projects.access_list(conn, pid)
    assert [(e["worker"]["alias"], e["request"]) for e in listed] == [("c", False), ("a", True), ("b", True)]
    assert {e["project"] for e in listed} == {pid}


def test_deleting_a_project_removes_its_rows(conn):
    pid, m, w = new_project(conn, "p"), new_manager(conn, "m"), new_worker(conn, "w")
    projects.set_role(conn, m, pid, 31)
    projects.add_request(conn, w, pid, True, True)
    projects.first_snapshot(conn, pid)
    conn.execute(text("DELETE FROM project WHERE id = :p"), {"p": pid})
    for table in ("manager_role", "worker_access", "monitoring_snapshot"):
        assert one(conn, f"SELECT count(*) FROM {table}") == 0, table


def test_first_snapshot_is_all_zeros(conn):
    pid = new_project(conn, "p")
    projects.first_snapshot(conn, pid)
    (snap,) = projects.snapshots(conn, pid)
    assert snap["time_stamp"] > 1_600_000_000
    assert {k: v for k, v in snap.items() if k != "time_stamp"} == dict.fromkeys(
        ("new_task_count", "failed_task_count", "closed_task_count", "worker_access_count",
         "awaiting_verification_count"), 0)


def test_snapshot_taken_once_per_slot_and_counts_tasks_and_access(conn):
    pid, other = new_project(conn, "p"), new_project(conn, "q")
    w = new_worker(conn, "w")
    projects.add_request(conn, w, pid, True, True)
    conn.execute(text("INSERT INTO task (project, recipe, status) VALUES (:p, 'a', 1), (:p, 'b', 1), "
                      "(:p, 'c', 2), (:p, 'd', 3)"), {"p": pid})
    conn.execute(text("INSERT INTO project_closures VALUES (:p, 7)"), {"p": pid})
    interval = 1e9  # one slot for decades: the second claim in it must lose
    assert projects.take_snapshot(conn, interval, 400) == 2  # one row per project
    assert projects.take_snapshot(conn, interval, 400) is None
    (snap,) = projects.snapshots(conn, pid)
    assert (snap["new_task_count"], snap["failed_task_count"], snap["closed_task_count"],
            snap["worker_access_count"], snap["awaiting_verification_count"]) == (2, 1, 7, 1, 0)
    assert projects.snapshots(conn, other)[0]["new_task_count"] == 0


def test_snapshots_newest_first_limited_and_between(conn):
    pid = new_project(conn, "p")
    for t in (100, 200, 300, 400):
        conn.execute(text("INSERT INTO monitoring_snapshot VALUES (:p, :t, 0, 0, 0, 0, 0)"), {"p": pid, "t": t})
    assert [s["time_stamp"] for s in projects.snapshots(conn, pid, limit=2)] == [400, 300]
    assert [s["time_stamp"] for s in projects.snapshots(conn, pid, since=200, until=300)] == [300, 200]


def test_old_snapshots_pruned_at_the_next_snapshot(conn):
    pid = new_project(conn, "p")
    conn.execute(text("INSERT INTO monitoring_snapshot VALUES (:p, 1000, 0, 0, 0, 0, 0)"), {"p": pid})
    projects.take_snapshot(conn, 1e9, retention_hours=1)
    assert all(s["time_stamp"] > 1000 for s in projects.snapshots(conn, pid))


# --- log_svc ---------------------------------------------------------------------------------------------
def test_log_entries_by_level_after_a_time_in_order(conn):
    for level, message, ts in ((5, "late", 30), (5, "early", 10), (3, "other level", 20), (5, "middle", 20),
                               (5, "too old", 5)):
        logs.add(conn, level, message, ts, "{}")
    assert [e["message"] for e in logs.since(conn, 5, 5)] == ["early", "middle", "late"]
    assert logs.since(conn, 3, 0) == [{"level": 3, "message": "other level", "timestamp": 20, "data": "{}"}]
    assert logs.since(conn, 7, 0) == []


def test_log_entries_of_one_second_keep_their_insertion_order(conn):
    for i in range(5):
        logs.add(conn, 4, f"m{i}", 50, "")
    assert [e["message"] for e in logs.since(conn, 4, 0)] == [f"m{i}" for i in range(5)]


def test_log_answer_capped_at_10000_oldest_first(conn):
    conn.execute(text("INSERT INTO log_entry (level, message, timestamp, data) "
                      "SELECT 6, 'm' || g, g, '' FROM generate_series(1, :n) g"), {"n": logs.MAX_ENTRIES + 5})
    entries = logs.since(conn, 6, 0)
    assert len(entries) == logs.MAX_ENTRIES
    assert entries[0]["timestamp"] == 1 and entries[-1]["timestamp"] == logs.MAX_ENTRIES


# --- task_svc: bulk insert ----------------------------------------------------------------------------
def _bulk_rows(n: int, recipe=lambda i: f"r{i}", first_hash: int = 1) -> list[list]:
    return [[i % 3, recipe(i), 2, 60, 1, first_hash + i] for i in range(n)]


def _stored(conn: Connection, project: int) -> list[tuple]:
    return [tuple(r) for r in conn.execute(text(
        "SELECT priority, recipe, max_retries, max_assign_time, verification_count, hash64 FROM task"
        " WHERE project = :p ORDER BY id"), {"p": project})]


def test_bulk_copy_stores_every_row_in_list_order_with_its_recipe_exact(conn):
    from services.task_svc import store as tasks
    project = new_project(conn, "bulk")
    awkward = ["back\\slash", "tab\there", "new\nline", "cr\rhere", "\\N", "all\\\t\n\r", "ünï €"]
    rows = _bulk_rows(tasks.COPY_FROM + 50, lambda i: awkward[i] if i < len(awkward) else f"r{i}")
    assert tasks.insert_tasks(conn, project, rows) == len(rows)
    assert _stored(conn, project) == [tuple(r) for r in rows]  # ids follow the list


def test_bulk_repeating_a_stored_hash_falls_back_skips_it_and_the_transaction_goes_on(conn):
    from services.task_svc import store as tasks
    project = new_project(conn, "bulk")
    assert tasks.insert_tasks(conn, project, _bulk_rows(1, first_hash=500)) == 1
    rows = _bulk_rows(tasks.COPY_FROM, first_hash=400)  # hashes 400 … 599 take in the stored 500
    assert tasks.insert_tasks(conn, project, rows) == len(rows) - 1
    assert one(conn, "SELECT count(*) FROM task WHERE project = :p", p=project) == len(rows)
    assert [r[5] for r in _stored(conn, project)][1:] == [h for h in range(400, 600) if h != 500]


def test_bulk_repeating_its_own_hash_inserts_the_first_only(conn):
    from services.task_svc import store as tasks
    project = new_project(conn, "bulk")
    rows = _bulk_rows(tasks.COPY_FROM)
    rows[-1][5] = rows[0][5]
    assert tasks.insert_tasks(conn, project, rows) == len(rows) - 1
    assert _stored(conn, project) == [tuple(r) for r in rows[:-1]]
