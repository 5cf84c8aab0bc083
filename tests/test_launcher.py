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


def test_a_gateway_that_cannot_bind_stops_the_whole_group(capsys):
    """The port was free at the start-up check but taken before gunicorn bound it: gunicorn says
    "Address already in use" and retries; the supervisor stops everything and fails at once."""
    import sys

    from tracker.launcher import Child, Supervisor

    gunicorn_like = ("import sys, time\n"
                     "print('[ERROR] Connection in use: (127.0.0.1, 3010)', flush=True)\n"
                     "print('[ERROR] connection to (127.0.0.1, 3010) failed: [Errno 98] Address already in use',"
                     " flush=True)\n"
                     "time.sleep(60)\n")
    service = Child("task_svc", [sys.executable, "-c", "import time; time.sleep(60)"], "36")
    gateway = Child("gateway", [sys.executable, "-c", gunicorn_like], "97")
    supervisor = Supervisor([service, gateway])
    started = time.monotonic()
    code = supervisor.run()
    assert code == 1 and time.monotonic() - started < 10
    assert service.proc.poll() is not None and gateway.proc.poll() is not None
    assert "the gateway cannot listen: address already in use" in capsys.readouterr().err
