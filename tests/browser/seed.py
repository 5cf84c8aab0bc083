"""A tracker with something on every screen: the data behind the screenshots
(scripts/ui_screenshots.py) and the every-screen sweeps (tests/browser/test_screens_ui.py).

Three projects (public with work in every state, private with a pending access request, hidden),
three workers, a second manager with roles, worker logs at several levels, and monitoring
snapshots as the system takes them (the caller's system decides the interval).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from tests.harness import Api, System

OK, FAIL = 0, 1


@dataclass
class Seeded:
    public: int
    private: int
    hidden: int
    workers: list[Api]
    manager: Api
    task: int  # a FAILED task of the public project
    tag: str


def seed(system: System, tasks: int = 60) -> Seeded:
    admin = system.admin
    tag = uuid.uuid4().hex[:4]

    def project(name: str, **fields) -> int:
        r = admin.post("/project/create", {"name": f"{name}-{tag}", **fields})
        assert r.status_code == 200, r.text
        return r.json()["content"]["id"]

    public = project("image-resize", public=True, git_repo="example/image-resize", version="3f2c9e1",
                     clone_url="https://git.example.org/example/image-resize.git",
                     motd="Resize uploads to 3 sizes. Be nice to the CDN.", priority=5)
    private = project("crawl-archive", motd="Private crawl; ask for access.", assign_rate=50, submit_rate=100)
    hidden = project("ops-internal", hidden=True, motd="Internal jobs")
    workers = [Api(system.url).new_worker(alias) for alias in ("rack-a-01", "rack-a-02", "laptop-jo")]
    for w in workers[:2]:
        assert w.post("/project/request_access", {"project": public, "assign": True, "submit": True}).status_code == 200
        assert admin.post(f"/project/accept_request/{public}/{w.id}").status_code == 200
    assert workers[2].post("/project/request_access",
                           {"project": private, "assign": True, "submit": False}).status_code == 200
    items = [{"project": public, "recipe": f'{{"url": "https://img.example.org/{i}.jpg", "sizes": [64, 256, 1024]}}',
              "priority": i % 3, "max_assign_time": 3600, "verification_count": 2 if i % 10 == 0 else 1}
             for i in range(tasks)]
    r = workers[0].post("/task/bulk_submit", {"requests": items})
    assert r.status_code == 200, r.text
    failed = None
    for n, w in enumerate(workers[:2] * 8):  # some closed, some failed, one awaiting verification, some held
        task = w.get(f"/task/get/{public}").json()["content"]["task"]
        if n >= 12:
            continue  # held
        result = FAIL if n % 4 == 1 else OK
        r = w.post("/task/release", {"task_id": task["id"], "result": result, "verification": 7})
        assert r.status_code == 200, r.text
        if result == FAIL and failed is None:
            failed = task["id"]
    now = int(time.time())
    for level, message in (("info", "worker started, 8 threads"), ("warn", "slow download (12 s) from img.example.org"),
                           ("error", "resize failed: unsupported colour profile"), ("trace", "heartbeat")):
        r = workers[0].post(f"/log/{level}", {"scope": "resize", "message": message, "timestamp": now})
        assert r.status_code == 200, r.text
    manager = Api(system.url).new_manager(f"ops-{tag}")
    r = admin.post(f"/manager/set_role_for_project/{public}", {"manager": manager.id, "role": 1 | 16})
    assert r.status_code == 200, r.text
    # the failed task may have been retried by max_retries: make sure one FAILED task exists
    rows = admin.get(f"/project/tasks/{public}", params={"status": "failed"}).json()["content"]["tasks"]
    failed = rows[0]["id"] if rows else failed
    return Seeded(public, private, hidden, workers, manager, failed, tag)


def screens(s: Seeded) -> dict[str, str]:
    """Every screen of the UI: file-name-friendly name → hash route (as the admin sees it)."""
    return {
        "login": "#/login",
        "projects": "#/projects",
        "dashboard": f"#/project/{s.public}",
        "project-new": "#/project/new",
        "project-edit": f"#/project/{s.public}/edit",
        "permissions": f"#/project/{s.private}/permissions",
        "secrets": f"#/project/{s.public}/secrets",
        "tasks": f"#/project/{s.public}/tasks",
        "task": f"#/task/{s.task}",
        "workers": "#/workers",
        "worker": f"#/worker/{s.workers[0].id}",
        "managers": "#/managers",
        "logs": "#/logs?level=7&mode=atleast",
        "console": "#/console",
        "account": "#/account",
    }
