"""20 workers, 2,000 tasks, 2 task_svc processes, 2 gateway processes: nothing doubled, nothing lost."""

from __future__ import annotations

import threading
from collections import Counter

from tests.harness import Api

WORKERS = 20
TASKS = 2_000


def test_twenty_workers_drain_two_thousand_tasks(system, api, make_project, grant):
    # The harness runs task_svc with 2 replicas; prove both are consuming before the race.
    assert system.consumers()["task_svc"] >= 2
    pid = make_project(public=True)
    submitter = api.new_worker("submitter")
    grant(submitter, pid)
    for start in range(0, TASKS, 1000):
        items = [{"project": pid, "recipe": f"job-{i}", "priority": i % 7} for i in range(start, start + 1000)]
        r = submitter.post("/task/bulk_submit", items)
        assert r.json()["content"] == {"submitted": 1000, "duplicates": 0}

    workers = [Api(system.url, {}).new_worker(f"racer-{i}") for i in range(WORKERS)]
    received: list[list[int]] = [[] for _ in workers]
    problems: list[str] = []

    def run(index: int, w: Api) -> None:
        empty = 0
        while empty < 3:
            body = w.get(f"/task/get/{pid}").json()
            if not body["ok"]:
                empty += 1
                continue
            empty = 0
            task = body["content"]["task"]
            if task["assignee"] != w.id:
                problems.append(f"task {task['id']} handed to {w.id} shows assignee {task['assignee']}")
            received[index].append(task["id"])
            r = w.post("/task/release", {"task_id": task["id"], "result": 0}).json()
            if r["content"]["updated"] is not True:
                problems.append(f"release of {task['id']} by {w.id}: {r}")

    threads = [threading.Thread(target=run, args=(i, w)) for i, w in enumerate(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)

    assert not problems, problems[:5]
    handed = Counter(tid for ids in received for tid in ids)
    doubled = [tid for tid, n in handed.items() if n > 1]
    assert not doubled, f"tasks handed to two holders: {doubled[:10]}"
    assert len(handed) == TASKS
    assert sum(1 for ids in received if ids) > 1  # the work really was shared
    assert system.sql("SELECT status, count(*) FROM task WHERE project = %s GROUP BY status", pid) == [(3, TASKS)]
    assert api.get(f"/project/get/{pid}").json()["content"]["project"]["closed_task_count"] == TASKS
    stats = {s["id"]: s["closed_task_count"] for s in api.get("/worker/stats").json()["content"]["stats"]}
    assert sum(stats[w.id] for w in workers) == TASKS
    assert all(stats[w.id] == len(received[i]) for i, w in enumerate(workers))
