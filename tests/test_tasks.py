"""The worker loop end to end (contract §3.1, §3.2, §6.5): submit, bulk, get, release, extend."""

from __future__ import annotations

import time

import pytest

from tests.harness import submitted
from tracker.hashing import unique_string_hash


@pytest.fixture
def queue(api, make_project, grant):
    """A public project and a worker with SUBMIT+ASSIGN on it."""
    pid = make_project(public=True)
    w = api.new_worker("submitter")
    grant(w, pid)
    return pid, w


def submit(w, pid, **fields):
    return w.post("/task/submit", {"project": pid, "recipe": fields.pop("recipe", "r"), **fields})


def take(w, pid, query: str = ""):
    r = w.get(f"/task/get/{pid}{query}")
    assert r.status_code == 200, r.text
    return r.json()


def release(w, tid, result=0, verification=0):
    return w.post("/task/release", {"task_id": tid, "result": result, "verification": verification})


# --- submit ------------------------------------------------------------------------------------
def test_submit_then_get_returns_full_task(queue, system):
    pid, w = queue
    r = submit(w, pid, recipe="do it", priority=3, max_retries=2, max_assign_time=60)
    assert submitted(r), r.text
    body = take(w, pid)
    task = body["content"]["task"]
    assert body["ok"] is True
    assert task["recipe"] == "do it" and task["priority"] == 3 and task["max_retries"] == 2
    assert task["max_assign_time"] == 60 and task["retries"] == 0 and task["status"] == 1
    assert task["assignee"] == w.id and abs(task["assign_time"] - time.time()) < 5
    assert task["verification_count"] == 1  # 0 is stored as 1
    assert task["project"]["id"] == pid and "secret" not in task["project"]
    assert set(task) == {"id", "priority", "project", "assignee", "retries", "max_retries", "status", "recipe",
                         "max_assign_time", "assign_time", "verification_count"}


@pytest.mark.parametrize("fields, name", [
    ({"recipe": ""}, "recipe"),
    ({"recipe": 5}, "recipe"),
    ({"priority": 32768}, "priority"),
    ({"priority": -32769}, "priority"),
    ({"priority": 1.0}, "priority"),
    ({"max_retries": -1}, "max_retries"),
    ({"max_assign_time": -1}, "max_assign_time"),
    ({"max_assign_time": 2 ** 31}, "max_assign_time"),
    ({"verification_count": -1}, "verification_count"),
    ({"verification_count": 32768}, "verification_count"),
    ({"hash64": 2 ** 64}, "hash64"),
    ({"hash64": -(2 ** 63) - 1}, "hash64"),
    ({"hash64": "1"}, "hash64"),
    ({"hash64": 1, "hash_u64": 2}, "hash_u64"),
    ({"hash64": 7, "unique_string": "x"}, "unique_string"),
    ({"project": 0}, "project"),
])
def test_submit_rejects_bad_fields(queue, fields, name):
    pid, w = queue
    r = submit(w, pid, **fields)
    assert r.status_code == 400, r.text
    assert r.json()["ok"] is False and name in r.json()["message"]


def test_submit_requires_recipe_and_project(queue):
    pid, w = queue
    r = w.post("/task/submit", {"project": pid})
    assert r.status_code == 400 and "recipe" in r.json()["message"]
    r = w.post("/task/submit", {"recipe": "x"})
    assert r.status_code == 400 and "project" in r.json()["message"]


def test_submit_errors_by_check_order(api, queue, make_project):
    pid, w = queue
    assert api.post("/task/submit", {"project": pid, "recipe": "x"}).status_code == 401
    assert submit(w, 10 ** 12).status_code == 404
    stranger = api.new_worker("stranger")
    r = submit(stranger, pid)
    assert r.status_code == 403 and r.json()["ok"] is False  # public without SUBMIT
    bad = stranger.post("/task/submit", {"project": 10 ** 12, "recipe": ""})
    assert bad.status_code == 400  # syntax before existence


def test_dedupe_hash_aliases_and_unique_string(queue, system):
    pid, w = queue
    assert submit(w, pid, hash64=2 ** 64 - 1).status_code == 200
    r = submit(w, pid, hash64=-1)  # same 64 bits, signed spelling
    assert r.status_code == 409 and r.json()["ok"] is False
    assert submit(w, pid, hash_u64=2 ** 64 - 1).status_code == 409
    assert submit(w, pid, unique_string="Hello, world").status_code == 200
    assert submit(w, pid, hash64=8565956259293726066).status_code == 409
    assert system.sql("SELECT count(*) FROM task WHERE project = %s AND hash64 = %s",
                      pid, 8565956259293726066) == [(1,)]
    assert unique_string_hash("a") == 5158252350249958646
    # hash 0 never conflicts
    assert submit(w, pid, hash64=0).status_code == 200 and submit(w, pid, hash64=0).status_code == 200


def test_dedupe_covers_closed_and_failed_tasks(queue):
    pid, w = queue
    assert submit(w, pid, unique_string="once").status_code == 200
    t = take(w, pid)["content"]["task"]
    assert release(w, t["id"]).json()["content"]["updated"] is True
    assert submit(w, pid, unique_string="once").status_code == 409  # CLOSED still counts
    assert submit(w, pid, hash64=99).status_code == 200
    t = take(w, pid)["content"]["task"]
    assert release(w, t["id"], result=1).json()["content"]["updated"] is True  # max_retries 0: FAILED
    assert submit(w, pid, hash64=99).status_code == 409


# --- bulk --------------------------------------------------------------------------------------
def test_bulk_submit_counts_duplicates(queue, system):
    pid, w = queue
    assert submit(w, pid, hash64=5).status_code == 200
    items = [{"project": pid, "recipe": f"b{i}", "hash64": h} for i, h in enumerate([1, 2, 2, 5, 0, 0])]
    r = w.post("/task/bulk_submit", {"requests": items})
    assert r.status_code == 200, r.text
    assert r.json()["content"] == {"submitted": 4, "duplicates": 2}
    rows = system.sql("SELECT recipe FROM task WHERE project = %s AND recipe LIKE 'b%%' ORDER BY id", pid)
    assert [x[0] for x in rows] == ["b0", "b1", "b4", "b5"]  # stored in submission order


@pytest.mark.parametrize("clash", ["none", "stored", "within"])
def test_large_bulk_keeps_order_and_skips_duplicates(queue, system, clash):
    """Large bulks go by COPY when they repeat no hash64; a repeat (stored, or within the bulk)
    undoes the COPY and the insert skips exactly the repeats, in order either way."""
    pid, w = queue
    base = {"none": 10_000, "stored": 20_000, "within": 30_000}[clash]
    if clash == "stored":
        assert submit(w, pid, recipe="old", hash64=base + 150).status_code == 200
    hashes = [base + i for i in range(300)]
    if clash == "within":
        hashes[200] = hashes[10]
    items = [{"project": pid, "recipe": f"{clash}-{i}\t\\ \n\"é", "hash64": h} for i, h in enumerate(hashes)]
    r = w.post("/task/bulk_submit", items)
    assert r.status_code == 200, r.text
    skipped = {"none": set(), "stored": {150}, "within": {200}}[clash]
    assert r.json()["content"] == {"submitted": 300 - len(skipped), "duplicates": len(skipped)}
    rows = system.sql("SELECT recipe, hash64 FROM task WHERE project = %s AND recipe LIKE %s ORDER BY id",
                      pid, f"{clash}-%")
    expected = [(items[i]["recipe"], hashes[i]) for i in range(300) if i not in skipped]
    assert [tuple(row) for row in rows] == expected


def test_bulk_submit_accepts_bare_array(queue):
    pid, w = queue
    r = w.post("/task/bulk_submit", [{"project": pid, "recipe": "x"}, {"project": pid, "recipe": "y"}])
    assert r.status_code == 200 and r.json()["content"] == {"submitted": 2, "duplicates": 0}


def test_bulk_submit_is_all_or_nothing_on_invalid_items(queue, system, make_project):
    pid, w = queue
    before = system.sql("SELECT count(*) FROM task WHERE project = %s", pid)[0][0]
    r = w.post("/task/bulk_submit", {"requests": [{"project": pid, "recipe": "ok"}, {"project": pid, "recipe": ""}]})
    assert r.status_code == 400 and "requests[1].recipe" in r.json()["message"]
    other = make_project()
    r = w.post("/task/bulk_submit", [{"project": pid, "recipe": "a"}, {"project": other, "recipe": "b"}])
    assert r.status_code == 400 and "requests[1].project" in r.json()["message"]
    assert w.post("/task/bulk_submit", {"requests": []}).status_code == 400
    big = [{"project": pid, "recipe": "x"}] * 10_001
    assert w.post("/task/bulk_submit", big).status_code == 400
    assert system.sql("SELECT count(*) FROM task WHERE project = %s", pid)[0][0] == before


def test_bulk_submit_permissions(api, queue):
    pid, w = queue
    stranger = api.new_worker()
    assert stranger.post("/task/bulk_submit", [{"project": pid, "recipe": "x"}]).status_code == 403
    assert w.post("/task/bulk_submit", [{"project": 10 ** 12, "recipe": "x"}]).status_code == 404


# --- get -----------------------------------------------------------------------------------------
def test_get_orders_by_priority_then_lowest_id(queue):
    pid, w = queue
    for recipe, prio in [("low", -5), ("a", 2), ("b", 2), ("top", 9), ("c", 2)]:
        assert submit(w, pid, recipe=recipe, priority=prio).status_code == 200
    order = [take(w, pid)["content"]["task"]["recipe"] for _ in range(5)]
    assert order == ["top", "a", "b", "c", "low"]
    assert take(w, pid) == {"ok": False, "message": "No task available"}


def test_get_count_returns_batch_in_choice_order(queue):
    pid, w = queue
    for i, prio in enumerate([1, 3, 2]):
        submit(w, pid, recipe=f"t{i}", priority=prio)
    body = take(w, pid, "?count=2")
    assert [t["recipe"] for t in body["content"]["tasks"]] == ["t1", "t2"]
    body = take(w, pid, "?count=5")
    assert [t["recipe"] for t in body["content"]["tasks"]] == ["t0"]
    assert take(w, pid, "?count=3") == {"ok": False, "message": "No task available", "content": {"tasks": []}}
    for bad in ("0", "101", "x", "1.5"):
        r = w.get(f"/task/get/{pid}?count={bad}")
        assert r.status_code == 400 and "count" in r.json()["message"]


def test_get_errors(api, queue):
    pid, w = queue
    assert api.get(f"/task/get/{pid}").status_code == 401
    assert w.get("/task/get/abc").status_code == 400
    assert w.get(f"/task/get/{10 ** 12}").status_code == 404


def test_paused_project_assigns_nothing_but_accepts_submits(admin, queue):
    pid, w = queue
    assert admin.post(f"/project/update/{pid}", {"paused": True}).status_code == 200
    assert submit(w, pid, recipe="while paused").status_code == 200
    assert take(w, pid) == {"ok": False, "message": "No task available"}
    assert admin.post(f"/project/update/{pid}", {"paused": False}).status_code == 200
    assert take(w, pid)["content"]["task"]["recipe"] == "while paused"


# --- release ---------------------------------------------------------------------------------------
def test_release_ok_closes_and_counts(api, queue, system):
    pid, w = queue
    submit(w, pid)
    t = take(w, pid)["content"]["task"]
    r = release(w, t["id"])
    assert r.status_code == 200 and r.json() == {"ok": True, "content": {"updated": True}}
    assert system.sql("SELECT status FROM task WHERE id = %s", t["id"]) == [(3,)]
    project = api.get(f"/project/get/{pid}").json()["content"]["project"]
    assert project["closed_task_count"] == 1
    stats = {s["id"]: s for s in api.get("/worker/stats").json()["content"]["stats"]}
    assert stats[w.id]["closed_task_count"] == 1
    # releasing again: no longer the holder
    again = release(w, t["id"]).json()
    assert again == {"ok": True, "message": "Task was not marked as closed", "content": {"updated": False}}
    assert api.get(f"/project/get/{pid}").json()["content"]["project"]["closed_task_count"] == 1


def test_release_fail_retries_then_failed(queue, system):
    pid, w = queue
    submit(w, pid, max_retries=2)
    for expected_status in (1, 2):
        t = take(w, pid)["content"]["task"]
        assert release(w, t["id"], result=1).json()["content"]["updated"] is True
        assert system.sql("SELECT status FROM task WHERE id = %s", t["id"]) == [(expected_status,)]
    assert take(w, pid)["ok"] is False  # FAILED is never assigned
    assert system.sql("SELECT retries, assignee FROM task WHERE id = %s", t["id"]) == [(2, None)]


def test_release_skip_keeps_retries_and_requeues(queue, system):
    pid, w = queue
    submit(w, pid, max_retries=3)
    t = take(w, pid)["content"]["task"]
    assert release(w, t["id"], result=2).json()["content"]["updated"] is True
    again = take(w, pid)["content"]["task"]
    assert again["id"] == t["id"] and again["retries"] == 0


def test_release_errors(api, queue):
    pid, w = queue
    assert release(w, 10 ** 12).status_code == 404
    assert w.post("/task/release", {"task_id": 0}).status_code == 400
    assert w.post("/task/release", {"task_id": 1, "result": 3}).status_code == 400
    assert w.post("/task/release", {}).status_code == 400
    assert api.post("/task/release", {"task_id": 1}).status_code == 401
    submit(w, pid)
    t = take(w, pid)["content"]["task"]
    other = api.new_worker()
    r = release(other, t["id"])
    assert r.status_code == 200 and r.json()["content"]["updated"] is False


def test_release_after_access_revoked_still_works(admin, api, make_project, grant, system):
    pid = make_project()  # private
    w = api.new_worker()
    grant(w, pid)
    submit(w, pid)
    t = take(w, pid)["content"]["task"]
    assert admin.post(f"/project/reject_request/{pid}/{w.id}").status_code == 200
    assert release(w, t["id"]).json()["content"]["updated"] is True


# --- leases --------------------------------------------------------------------------------------
def test_lease_expires_exactly_and_old_holder_is_refused(api, queue, system):
    pid, w = queue
    submit(w, pid, max_assign_time=1, recipe="leased")
    t = take(w, pid)["content"]["task"]
    other = api.new_worker()
    assert take(other, pid)["ok"] is False  # lease live
    time.sleep(2)
    again = take(other, pid)["content"]["task"]
    assert again["id"] == t["id"] and again["assignee"] == other.id
    late = release(w, t["id"]).json()
    assert late["content"]["updated"] is False  # re-assigned: the old holder lost it
    assert release(other, t["id"]).json()["content"]["updated"] is True


def test_expired_holder_may_release_until_reassigned(queue, system):
    pid, w = queue
    submit(w, pid, max_assign_time=1)
    t = take(w, pid)["content"]["task"]
    time.sleep(1.5)
    assert release(w, t["id"]).json()["content"]["updated"] is True
    assert system.sql("SELECT status FROM task WHERE id = %s", t["id"]) == [(3,)]


def test_lease_zero_never_expires(api, queue, system):
    pid, w = queue
    submit(w, pid, max_assign_time=0)
    t = take(w, pid)["content"]["task"]
    assert system.sql("SELECT lease_deadline FROM task WHERE id = %s", t["id"]) == [(None,)]
    # even a lease started long ago stays live when max_assign_time is 0
    system.sql("UPDATE task SET assign_time = 1 WHERE id = %s", t["id"])
    assert take(api.new_worker(), pid)["ok"] is False
    assert release(w, t["id"]).json()["content"]["updated"] is True


def test_extend(api, queue, system):
    pid, w = queue
    submit(w, pid, max_assign_time=1)
    t = take(w, pid)["content"]["task"]
    r = w.post("/task/extend", {"task_id": t["id"], "seconds": 30})
    body = r.json()
    assert r.status_code == 200 and body["content"]["updated"] is True
    assert abs(body["content"]["expires"] - (time.time() + 30)) < 5
    time.sleep(1.5)
    assert take(api.new_worker(), pid)["ok"] is False  # extended lease still live
    other = api.new_worker()
    assert other.post("/task/extend", {"task_id": t["id"], "seconds": 5}).json()["content"]["updated"] is False
    assert w.post("/task/extend", {"task_id": t["id"], "seconds": 0}).status_code == 400
    assert w.post("/task/extend", {"task_id": t["id"], "seconds": 604_801}).status_code == 400
    assert w.post("/task/extend", {"task_id": 10 ** 12, "seconds": 5}).status_code == 404
    submit(w, pid, max_assign_time=0, recipe="forever")
    t0 = take(w, pid)["content"]["task"]
    r = w.post("/task/extend", {"task_id": t0["id"], "seconds": 30}).json()
    assert r["content"] == {"updated": True, "expires": 0}


# --- verification quorum ---------------------------------------------------------------------------
def test_quorum_of_three_needs_three_agreeing_workers(api, queue, system):
    pid, w = queue
    submit(w, pid, verification_count=3, recipe="quorum")
    workers = [api.new_worker(f"v{i}") for i in range(4)]

    def cycle(worker, verification):
        t = take(worker, pid)["content"]["task"]
        return t["id"], release(worker, t["id"], verification=verification).json()

    tid, r = cycle(workers[0], 42)
    assert r["content"]["updated"] is False and r["message"]
    assert take(workers[0], pid)["ok"] is False  # never verifies the same task twice
    _, r = cycle(workers[1], 7)  # disagrees
    assert r["content"]["updated"] is False
    _, r = cycle(workers[2], 42)
    assert r["content"]["updated"] is False  # 2 agree, 3 needed
    assert system.sql("SELECT status FROM task WHERE id = %s", tid) == [(1,)]
    _, r = cycle(workers[3], 42)
    assert r["content"]["updated"] is True
    assert system.sql("SELECT status FROM task WHERE id = %s", tid) == [(3,)]
    assert api.get(f"/project/get/{pid}").json()["content"]["project"]["closed_task_count"] == 1
    stats = {s["id"]: s["closed_task_count"] for s in api.get("/worker/stats").json()["content"]["stats"]}
    assert stats[workers[3].id] == 1 and stats[workers[0].id] == 0


# --- chaining ------------------------------------------------------------------------------------
def test_chain_copies_closed_task_once(api, make_project, grant, system):
    target = make_project()  # private: chaining ignores the target's permissions
    source = make_project(public=True, chain=target)
    w = api.new_worker()
    grant(w, source)
    submit(w, source, recipe="chained", priority=4, hash64=77, max_retries=5, max_assign_time=9,
           verification_count=1)
    t = take(w, source)["content"]["task"]
    assert release(w, t["id"]).json()["content"]["updated"] is True
    rows = system.sql("SELECT recipe, priority, hash64, max_retries, max_assign_time, verification_count, status, "
                      "retries, assignee FROM task WHERE project = %s", target)
    assert rows == [("chained", 4, 77, 5, 9, 1, 1, 0, None)]
    # a second closure of a task with the same hash in the source is not copied again
    system.sql("DELETE FROM task WHERE id = %s", t["id"])
    submit(w, source, recipe="again", hash64=77)
    t2 = take(w, source)["content"]["task"]
    assert release(w, t2["id"]).json()["content"]["updated"] is True
    assert system.sql("SELECT count(*) FROM task WHERE project = %s", target) == [(1,)]
