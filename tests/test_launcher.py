"""``tracker run``: one supervised group with prefixed logs, restarts, and a clean Ctrl-C."""

from __future__ import annotations

import signal
import time

import psutil
import pytest
import requests

from tests.harness import System


@pytest.fixture
def own_system(tmp_path):
    sysm = System.create(tmp_path)
    try:
        sysm.start("--gateway-workers", "1")
        yield sysm
    finally:
        sysm.destroy()


def _children(proc) -> list[psutil.Process]:
    return psutil.Process(proc.pid).children(recursive=True)


def _service_pid(proc, name: str) -> int:
    for child in psutil.Process(proc.pid).children():
        if child.cmdline()[-1] == name:
            return child.pid
    raise AssertionError(f"no {name} process")


def test_supervisor_prefixes_restarts_and_stops_cleanly(own_system):
    log = own_system.log_path
    text = log.read_text()
    for name in ("gateway", "task_svc", "worker_svc", "project_svc", "manager_svc", "log_svc", "git_svc"):
        assert f"\n{name}" in text and " | " in text, f"no prefixed output from {name}"

    # A crashed service is restarted and serves again.
    victim = _service_pid(own_system.proc, "worker_svc")
    psutil.Process(victim).send_signal(signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "exited with code" not in log.read_text():
        time.sleep(0.2)
    assert "exited with code" in log.read_text()
    own_system.wait_ready(timeout=30)
    assert _service_pid(own_system.proc, "worker_svc") != victim
    r = requests.post(own_system.url + "/worker/create", json={"alias": "after-restart"}, timeout=10)
    assert r.status_code == 200

    # Ctrl-C stops the whole group: exit 0, no process left behind.
    children = _children(own_system.proc)
    assert len(children) >= 7
    own_system.proc.send_signal(signal.SIGINT)
    assert own_system.proc.wait(timeout=40) == 0
    assert "tracker: all processes stopped" in log.read_text()
    gone, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, [p.pid for p in alive]
