"""The ``ttc`` command line against the real tracker, run as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time

import psutil
import pytest

from tests.client.conftest import as_api, task_rows

TTC = [sys.executable, "-m", "task_tracker_client.cli"]


def ttc(system, *args: str, creds=None, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "TT_URL": system.url}
    if creds is not None:
        env["TT_CREDENTIALS"] = str(creds)
    return subprocess.run([*TTC, *args], env=env, input=input, capture_output=True, text=True, timeout=timeout)


def start_ttc(system, *args: str, creds) -> subprocess.Popen:
    env = {**os.environ, "TT_URL": system.url, "TT_CREDENTIALS": str(creds)}
    return subprocess.Popen([*TTC, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def creds(system, tmp_path, grant, make_project):
    """``creds(project)``: a worker made by ``ttc worker create``, granted access on ``project``."""

    def make(project: int, alias: str = "cli") -> os.PathLike:
        path = tmp_path / f"{alias}.json"
        r = ttc(system, "worker", "create", "--alias", alias, "--save", str(path))
        assert r.returncode == 0, r.stderr
        from task_tracker_client import Client

        c = Client.load(path)
        grant(as_api(system, c), project)
        c.close()
        return path

    return make


def test_worker_create_project_access_logs(system, tmp_path, make_project, admin):
    project = make_project(public=True)
    path = tmp_path / "w.json"
    r = ttc(system, "worker", "create", "--alias", "cli-one", creds=path)
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = json.loads(path.read_text())
    assert doc["alias"] == "cli-one" and doc["url"] == system.url and doc["secret"]
    again = ttc(system, "worker", "create", "--alias", "cli-two", creds=path)
    assert again.returncode == 2 and "exists" in again.stderr  # a secret is never overwritten by accident
    assert json.loads(path.read_text()) == doc

    r = ttc(system, "project", "get", str(project), creds=path)
    assert r.returncode == 0 and json.loads(r.stdout)["id"] == project
    r = ttc(system, "project", "list", creds=path)
    assert r.returncode == 0 and any(line.split("\t")[0] == str(project) for line in r.stdout.splitlines())
    r = ttc(system, "project", "get", str(2 ** 62), creds=path)
    assert r.returncode == 1 and "NotFound" in r.stderr

    r = ttc(system, "access", "request", str(project), "--submit", creds=path)
    assert r.returncode == 0 and "requested" in r.stdout
    rows = admin.get(f"/project/access_list/{project}").json()["content"]["accesses"]
    mine = [a for a in rows if a["worker"]["id"] == doc["worker_id"]]
    assert mine and mine[0]["request"] is True and mine[0]["submit"] is True and mine[0]["assign"] is False

    from task_tracker_client import Client

    c = Client.load(path)
    marker = f"cli-log-{time.time_ns()}"
    c.log("warn", marker, scope="cli-test")
    c.close()
    r = ttc(system, "logs", "--level", "warn", "--since", "5m")
    assert r.returncode == 0 and marker in r.stdout and "WARN cli-test@worker:" in r.stdout
    r = ttc(system, "logs", "--level", "error", "--since", "5m")
    assert r.returncode == 0 and marker not in r.stdout  # error and worse only


@pytest.mark.slow  # 100,000 tasks: soak-like, and every later test of the session reads the grown tables
def test_submit_100k_lines_interrupted_and_rerun_stores_each_line_once(system, tmp_path, make_project, creds):
    project = make_project()
    path = creds(project, "submitter")
    data = tmp_path / "tasks.txt"
    n = 100_000
    data.write_text("".join(f"line {i}\n" for i in range(n)))
    progress = tmp_path / "tasks.txt.ttc-progress"

    first = start_ttc(system, "submit", str(project), str(data), "--quiet", creds=path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and first.poll() is None:
        if progress.exists() and json.loads(progress.read_text() or "{}").get("lines", 0) >= 20_000:
            break
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)  # mid-run, likely with a chunk in flight
    first.wait(10)
    stored = system.sql("SELECT count(*) FROM task WHERE project = %s", project)[0][0]
    assert 20_000 <= stored < n, stored

    second = ttc(system, "submit", str(project), str(data), "--quiet", creds=path)
    assert second.returncode == 0, second.stderr
    assert "lines already done by an earlier run" in second.stdout
    counts = system.sql("SELECT count(*), count(DISTINCT recipe) FROM task WHERE project = %s", project)
    assert counts == [(n, n)]

    # Without the progress file the chunks' Idempotency-Keys alone make a re-run store nothing.
    progress.unlink()
    third = ttc(system, "submit", str(project), str(data), "--quiet", creds=path)
    assert third.returncode == 0, third.stderr
    assert system.sql("SELECT count(*) FROM task WHERE project = %s", project) == [(n,)]


def test_submit_json_lines_stdin_and_unique_from_line(system, tmp_path, make_project, creds):
    project = make_project()
    path = creds(project, "jsonl")
    lines = ["plain recipe", json.dumps({"recipe": "from json", "priority": 7, "max_retries": 9}), "",
             "plain recipe", "other"]
    r = ttc(system, "submit", str(project), "-", "--unique-from-line", "--quiet", creds=path,
            input="\n".join(lines) + "\n")
    assert r.returncode == 0, r.stderr
    assert "submitted 3, duplicates 1" in r.stdout
    rows = system.sql("SELECT recipe, priority, max_retries, hash64 <> 0 FROM task WHERE project = %s ORDER BY id",
                      project)
    assert rows == [("plain recipe", 0, 3, True), ("from json", 7, 9, True), ("other", 0, 3, True)]
    # Progress display on a non-terminal: plain lines, no escape codes.
    data = tmp_path / "more.txt"
    data.write_text("x\ny\n")
    r = ttc(system, "submit", str(project), str(data), creds=path)
    assert r.returncode == 0 and "tasks 2/2" in r.stderr and "\x1b[" not in r.stderr


SCRIPT = """
import os, sys, time
recipe = sys.stdin.read()
out = sys.argv[1]
open(os.path.join(out, os.environ["TT_TASK_ID"] + ".pid"), "w").write(str(os.getpid()))
if recipe.startswith("sleep "):
    time.sleep(float(recipe.split()[1]))
if recipe == "fail":
    print("line one", file=sys.stderr)
    print("the last words", file=sys.stderr)
    sys.exit(3)
open(os.path.join(out, os.environ["TT_TASK_ID"]), "w").write(recipe + "|" + os.environ["TT_TASK_PRIORITY"])
"""


def test_run_drone_outcomes(system, tmp_path, make_project, creds):
    project = make_project()
    path = creds(project, "drone")
    from task_tracker_client import Client

    c = Client.load(path)
    ok_id = c.submit(project, "hello", priority=4)
    fail_id = c.submit(project, "fail", max_retries=1)
    slow_id = c.submit(project, "sleep 30", max_retries=1)
    since = int(time.time()) - 1
    r = ttc(system, "run", str(project), "--until-empty", "--timeout", "2", "--concurrency", "2", "--",
            sys.executable, "-c", SCRIPT, str(tmp_path), creds=path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / str(ok_id)).read_text() == "hello|4"  # recipe on stdin, TT_TASK_* in the env
    status = dict(system.sql("SELECT id, status FROM task WHERE project = %s", project))
    assert status == {ok_id: 3, fail_id: 2, slow_id: 2}
    logged = [e["message"] for e in c.logs(3, since) if json.loads(e["data"])["worker"] == c.worker_id]
    assert any(f"task {fail_id}" in m and "code 3" in m and "the last words" in m for m in logged), logged
    assert any(f"task {slow_id}" in m and "timed out" in m for m in logged), logged
    c.close()


def _wait_held(system, project: int, n: int, timeout: float = 20) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = [r[0] for r in task_rows(system, project) if r[3]]
        if len(held) >= n:
            return held
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} tasks held: {task_rows(system, project)}")


def _wait_running(tmp_path, n: int, timeout: float = 20) -> list[int]:
    """Task ids whose command has started (it wrote its pid file). A task the server has assigned is
    not yet in flight for ``ttc``: the get's reply may still be on the wire, and a stop that comes
    then gives those tasks back as SKIP, as documented."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = [int(p.stem) for p in tmp_path.glob("*.pid")]
        if len(running) >= n:
            return running
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} commands started: {list(tmp_path.iterdir())}")


def test_run_sigterm_finishes_tasks_in_flight(system, tmp_path, make_project, creds):
    project = make_project()
    path = creds(project, "drone-term")
    from task_tracker_client import Client

    c = Client.load(path)
    c.bulk_submit(project, ["sleep 1.5"] * 6)
    c.close()
    proc = start_ttc(system, "run", str(project), "--concurrency", "3", "--wait", "1", "--",
                     sys.executable, "-c", SCRIPT, str(tmp_path), creds=path)
    _wait_held(system, project, 3)
    held = _wait_running(tmp_path, 3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    rows = {r[0]: r for r in task_rows(system, project)}
    assert all(rows[t][1] == 3 for t in held)  # the tasks in flight finished and closed
    assert not any(r[3] for r in rows.values())  # nothing left held
    closed = sum(r[1] == 3 for r in rows.values())
    assert closed == 3 and sum(r[1] == 1 for r in rows.values()) == 3, rows


def test_run_sigterm_after_grace_releases_skip_and_kills_commands(system, tmp_path, make_project, creds):
    project = make_project()
    path = creds(project, "drone-grace")
    from task_tracker_client import Client

    c = Client.load(path)
    c.bulk_submit(project, ["sleep 60"] * 2, max_retries=1)
    c.close()
    proc = start_ttc(system, "run", str(project), "--concurrency", "2", "--grace", "1", "--wait", "1", "--",
                     sys.executable, "-c", SCRIPT, str(tmp_path), creds=path)
    held = _wait_held(system, project, 2)
    _wait_running(tmp_path, 2)
    pids = [int(p.read_text()) for p in tmp_path.glob("*.pid")]
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert time.monotonic() - t0 < 10
    rows = system.sql("SELECT id, status, retries, assignee FROM task WHERE project = %s ORDER BY id", project)
    assert sorted(held) == [r[0] for r in rows]
    assert all(r[1:] == (1, 0, None) for r in rows), rows  # released SKIP: NEW, retries unchanged, unassigned
    time.sleep(0.2)
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
