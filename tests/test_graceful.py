"""Graceful shutdown under load, and the service probe (deploy/README.md, "Rolling updates").

A rolling update sends SIGTERM to service processes while the gateway keeps sending them work. Here
one of two task_svc replicas gets SIGTERM in the middle of a steady submit/get/release load: every
HTTP request must still get its correct answer, and nothing may be executed twice (a redelivered
get would hand out a task nobody receives; a redelivered submit would store it twice).
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import psutil
import psycopg
import pytest
import requests

from tests.harness import Api, System, submitted
from tracker.plugins import discover
from tracker.probe import detect_roles

# A tier of its own (tests/conftest.py): it boots a system, then SIGTERMs replicas under load and cuts
# broker connections — minutes of chaos-like work, not a contract check. ``./test.sh -m slow`` runs it.
pytestmark = pytest.mark.slow

THREADS = 6
LOAD_BEFORE = 3.0  # seconds of load before the SIGTERM
LOAD_AFTER = 5.0  # and after it (the launcher restarts the stopped replica meanwhile)


@pytest.fixture(scope="module")
def own_system(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("graceful")
    # RPCs blocked on purpose below must not time out at the gateway (default 10 s) on a busy machine
    sysm = System.create(tmp, TT_HEARTBEAT_FILE=str(tmp / "hb-{service}"), TT_RPC_TIMEOUT="30")
    try:
        sysm.start("--scale", "task_svc=2", "--gateway-workers", "2")
        sysm.admin = Api(sysm.url).new_manager("admin")
        yield sysm
    finally:
        sysm.destroy_later()


def _service_pids(sysm: System, name: str) -> list[int]:
    """The launcher starts each service as ``python -m tracker serve NAME``."""
    return [c.pid for c in psutil.Process(sysm.proc.pid).children() if c.cmdline()[-2:] == ["serve", name]]


def _probe(sysm: System, *args: str) -> subprocess.CompletedProcess:
    return sysm.tracker("probe", *args, timeout=30)


def _wait_probe(sysm: System, name: str, ok: bool, timeout: float = 30, *args: str) -> subprocess.CompletedProcess:
    deadline = time.monotonic() + timeout
    while True:
        result = _probe(sysm, name, *args)
        if (result.returncode == 0) == ok or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


# --- the probe ---------------------------------------------------------------------------------
def test_probe_passes_for_every_running_service(own_system):
    for name in discover():
        result = _wait_probe(own_system, name, ok=True)
        assert result.returncode == 0, result.stderr
        assert result.stdout.count("consuming") == len(_service_pids(own_system, name)), result.stdout
    assert "pid" in _probe(own_system, "task_svc").stdout
    victim = _service_pids(own_system, "task_svc")[0]
    one = _probe(own_system, "task_svc", "--pid", str(victim))
    assert one.returncode == 0 and one.stdout.count("consuming") == 1, one.stdout
    gateway = _probe(own_system, "gateway")
    assert gateway.returncode == 0, gateway.stderr
    unknown = _probe(own_system, "no_such_svc")
    assert unknown.returncode == 1 and "no running process" in unknown.stderr
    # Without a name (the image's HEALTHCHECK) it probes the one part a container runs; here, with
    # every part on one machine, it finds them all and asks for a name.
    assert {*discover(), "gateway"} <= detect_roles()
    several = _probe(own_system)
    assert several.returncode == 2 and "name one" in several.stderr


# --- graceful shutdown under load ----------------------------------------------------------------
@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    answers: Counter = field(default_factory=Counter)
    failures: list = field(default_factory=list)
    submitted: int = 0
    closed: list = field(default_factory=list)

    def fail(self, what: str) -> None:
        with self.lock:
            self.failures.append(what)


def _work(worker: Api, project: int, stop: threading.Event, tally: Tally) -> None:
    """submit, get, release as one worker, forever; every answer is checked against the contract."""
    while not stop.is_set():
        try:
            r = worker.post("/task/submit", {"project": project, "recipe": uuid.uuid4().hex})
            if not submitted(r):
                tally.fail(f"submit: {r.status_code} {r.text}")
                continue
            with tally.lock:
                tally.submitted += 1
            r = worker.get(f"/task/get/{project}")
            body = r.json()
            if r.status_code != 200:
                tally.fail(f"get: {r.status_code} {r.text}")
                continue
            if body == {"ok": False, "message": "No task available"}:
                tally.answers["no task"] += 1
                continue
            task = body["content"]["task"]
            if task["assignee"] != worker.id:
                tally.fail(f"get handed out a task held by {task['assignee']}: {r.text}")
                continue
            r = worker.post("/task/release", {"task_id": task["id"], "result": 0})
            if r.status_code != 200 or r.json()["content"] != {"updated": True}:
                tally.fail(f"release {task['id']}: {r.status_code} {r.text}")
                continue
            with tally.lock:
                tally.closed.append(task["id"])
                tally.answers["closed"] += 1
        except (requests.RequestException, ValueError, KeyError) as exc:
            tally.fail(f"{exc.__class__.__name__}: {exc}")


def _drain(worker: Api, project: int) -> list[int]:
    closed = []
    while True:
        body = worker.get(f"/task/get/{project}").json()
        if not body["ok"]:
            return closed
        tid = body["content"]["task"]["id"]
        assert worker.post("/task/release", {"task_id": tid}).json()["content"] == {"updated": True}
        closed.append(tid)


def test_sigterm_to_a_task_svc_replica_under_load_drops_nothing(own_system):
    sysm, admin = own_system, own_system.admin
    project = admin.post("/project/create", {"name": "graceful-" + uuid.uuid4().hex[:8], "public": True})
    project = project.json()["content"]["id"]
    workers = []
    for i in range(THREADS):
        w = Api(sysm.url).new_worker(f"load-{i}")
        assert w.post("/project/request_access", {"project": project, "assign": True, "submit": True}).ok
        assert admin.post(f"/project/accept_request/{project}/{w.id}").status_code == 200
        workers.append(w)
    replicas = _service_pids(sysm, "task_svc")
    assert len(replicas) == 2, replicas
    victim = psutil.Process(replicas[0])

    tally, stop = Tally(), threading.Event()
    threads = [threading.Thread(target=_work, args=(w, project, stop, tally)) for w in workers]
    for t in threads:
        t.start()
    try:
        time.sleep(LOAD_BEFORE)
        before = tally.answers["closed"]
        victim.send_signal(signal.SIGTERM)
        victim.wait(timeout=30)  # not our child: psutil cannot tell its exit code; the launcher's log does
        time.sleep(LOAD_AFTER)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not tally.failures, tally.failures[:10]
    assert before > 0 and tally.answers["closed"] > before, tally.answers  # load ran before and after
    log = sysm.log_path.read_text()
    assert re.search(r"task_svc\.\d\s+\| INFO tracker.serve: task_svc stopped\n", log), log[-3000:]
    assert re.search(r"task_svc\.\d\s+\| exited with code 0;", log), log[-3000:]  # graceful, not killed

    # Nothing executed twice and nothing lost: every task stored once per accepted submit, each of
    # them closable, and closed exactly once, by the counter too.
    closed = tally.closed + _drain(workers[0], project)
    assert len(closed) == len(set(closed))
    rows = sysm.sql("SELECT id, status FROM task WHERE project = %s", project)
    assert len(rows) == tally.submitted, "a submit was stored twice, or an accepted one lost"
    assert {tid for tid, status in rows if status == 3} == set(closed)
    assert all(status == 3 for _, status in rows), "a task was handed out to nobody"
    counter = admin.get(f"/project/get/{project}").json()["content"]["project"]["closed_task_count"]
    assert counter == len(closed) == sysm.sql("SELECT count(*) FROM task WHERE project = %s AND status = 3",
                                               project)[0][0]

    # The launcher restarted the replica; its probe passes again.
    deadline = time.monotonic() + 60
    while sysm.consumers()["task_svc"] < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(_service_pids(sysm, "task_svc")) == 2 and sysm.consumers()["task_svc"] == 2
    result = _wait_probe(sysm, "task_svc", ok=True)
    assert result.returncode == 0 and result.stdout.count("consuming") == 2, result.stdout + result.stderr


# --- an RPC in flight at SIGTERM is finished by its replica, not run again by another ---------------
def _lock_waiters(sysm: System) -> dict[int, int]:
    """client port -> backend pid of this system's database sessions waiting for a row lock."""
    rows = sysm.sql("SELECT client_port, pid FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
                    sysm.name)
    return dict(rows)


def _stable_lock_waiters(sysm: System, timeout: float = 20) -> dict[int, int]:
    """The waiting sessions once their number stops changing (the gateway may batch several
    releases into one RPC, so there may be fewer sessions than requests)."""
    deadline, last, since = time.monotonic() + timeout, None, time.monotonic()
    while time.monotonic() < deadline:
        waiting = _lock_waiters(sysm)
        if waiting.keys() != (last or {}).keys():
            last, since = waiting, time.monotonic()
        elif waiting and time.monotonic() - since > 2:
            return waiting
        time.sleep(0.2)
    return last or {}


def _local_ports(pid: int, url: str, default: int) -> set[int]:
    """This process's local ports of its TCP connections to the server of ``url``."""
    server = urlsplit(url).port or default
    return {c.laddr.port for c in psutil.Process(pid).net_connections("tcp") if c.raddr and c.raddr.port == server}


def test_rpc_in_flight_at_sigterm_is_finished_by_its_replica(own_system):
    """Releases block on task rows this test holds locked; a task_svc replica that runs one of
    them gets SIGTERM. It must keep its broker connection until they finish and are acknowledged:
    closing it first (stock nameko) makes the broker redeliver them to the other replica, where
    they would run a second time: one more session waiting for the same locks."""
    sysm, admin = own_system, own_system.admin
    project = admin.post("/project/create", {"name": "inflight-" + uuid.uuid4().hex[:8], "public": True})
    project = project.json()["content"]["id"]
    held = []
    for i in range(4):
        w = Api(sysm.url).new_worker(f"inflight-{i}")
        assert w.post("/project/request_access", {"project": project, "assign": True, "submit": True}).ok
        assert admin.post(f"/project/accept_request/{project}/{w.id}").status_code == 200
        tid = w.post("/task/submit", {"project": project, "recipe": f"r{i}"}).json()["content"]["id"]
        held.append((w, w.get(f"/task/get/{project}").json()["content"]["task"]["id"]))
        assert held[-1][1] == tid
    answers: dict[int, requests.Response | Exception] = {}

    def release(w: Api, tid: int) -> None:
        try:
            answers[tid] = w.post("/task/release", {"task_id": tid, "result": 0})
        except requests.RequestException as exc:
            answers[tid] = exc

    with psycopg.connect(sysm.db_url) as lock:
        lock.execute("SELECT id FROM task WHERE id = ANY(%s) FOR UPDATE", ([tid for _, tid in held],))
        threads = [threading.Thread(target=release, args=pair) for pair in held]
        for t in threads:
            t.start()
        waiting = _stable_lock_waiters(sysm)
        assert waiting, "no release is waiting for the locked rows"
        busy = [pid for pid in _service_pids(sysm, "task_svc") if _local_ports(pid, sysm.db_url, 5432) & set(waiting)]
        assert busy, "no task_svc replica runs a blocked release"
        victim = psutil.Process(busy[0])
        victim.send_signal(signal.SIGTERM)
        time.sleep(3)  # stock nameko closes the connection within a second; the broker redelivers
        assert len(_lock_waiters(sysm)) == len(waiting), "a request in flight was redelivered and ran again"
        assert victim.is_running() and victim.status() != psutil.STATUS_ZOMBIE, "stopped before its requests"
        lock.rollback()
    for t in threads:
        t.join(timeout=60)
    for _, tid in held:
        r = answers[tid]
        assert isinstance(r, requests.Response) and r.status_code == 200, r
        assert r.json()["content"] == {"updated": True}, r.text
    victim.wait(timeout=30)
    deadline = time.monotonic() + 60
    while sysm.consumers()["task_svc"] < 2 and time.monotonic() < deadline:
        time.sleep(0.5)


# --- the probe sees a lost broker connection (last: it disturbs the system) -----------------------
def _rabbitmqctl(*args: str) -> str:
    return subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, text=True, timeout=60).stdout


def test_probe_fails_while_the_broker_connection_is_lost_and_recovers(own_system):
    sysm = own_system
    assert _wait_probe(sysm, "task_svc", ok=True).returncode == 0
    amqp = sysm.env["TT_AMQP_URI"]
    user = urlsplit(amqp).username or "guest"
    ports = set().union(*(_local_ports(pid, amqp, 5672) for pid in _service_pids(sysm, "task_svc")))
    _rabbitmqctl("clear_permissions", "-p", sysm.name, user)  # reconnections are refused
    try:
        listing = _rabbitmqctl("list_connections", "-q", "--no-table-headers", "vhost", "peer_port", "pid")
        for line in listing.splitlines():
            vhost, port, pid = line.split("\t")
            if vhost == sysm.name and int(port) in ports:  # task_svc's connections only
                subprocess.run(["rabbitmqctl", "close_connection", pid.strip(), "probe test"],
                               capture_output=True, timeout=60)
        lost = _wait_probe(sysm, "task_svc", False, 30, "--max-age", "6")
        assert lost.returncode == 1, lost.stdout
        assert "NOT consuming" in lost.stderr and "broker connection lost" in lost.stderr, lost.stderr
    finally:
        _rabbitmqctl("set_permissions", "-p", sysm.name, user, ".*", ".*", ".*")
    back = _wait_probe(sysm, "task_svc", True, 60, "--max-age", "6")
    assert back.returncode == 0, back.stderr
