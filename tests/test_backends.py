"""Missing backends: the run command explains itself; the gateway answers 503 JSON, never hangs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import requests

from tests.harness import ROOT, free_port, rabbitmqctl


def tracker(env: dict, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tracker", *args], env={**os.environ, **env}, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_run_names_unreachable_postgresql(system):
    port = free_port()
    out = tracker({**system.env, "TT_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/x"}, "run")
    assert out.returncode == 1
    assert "PostgreSQL is not reachable at 127.0.0.1:" + str(port) in out.stderr
    assert "pg_ctlcluster" in out.stderr and "Traceback" not in out.stderr + out.stdout


def test_run_names_unreachable_rabbitmq(system):
    port = free_port()
    out = tracker({**system.env, "TT_AMQP_URI": f"amqp://guest:guest@127.0.0.1:{port}/"}, "run")
    assert out.returncode == 1
    assert f"RabbitMQ is not reachable at 127.0.0.1:{port}" in out.stderr
    assert "rabbitmq-server" in out.stderr and "Traceback" not in out.stderr + out.stdout


def _gateway(env: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tracker", "serve", "gateway", "--workers", "1"],
                            env={**os.environ, **env, "TT_BIND": f"127.0.0.1:{port}", "TT_RPC_TIMEOUT": "2"},
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            requests.get(url + "/healthz", timeout=1)
            break
        except requests.RequestException:
            time.sleep(0.1)
    return proc, url


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_gateway_answers_503_when_no_service_listens(system):
    vhost = system.name + "_empty"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    proc, url = _gateway({**system.env, "TT_AMQP_URI": system.env["TT_AMQP_URI"] + "_empty"})
    try:
        start = time.monotonic()
        r = requests.get(url + "/worker/stats", timeout=10)
        assert r.status_code == 503
        assert r.json() == {"ok": False, "message": "Service unavailable"}
        assert time.monotonic() - start < 4
        assert requests.get(url + "/healthz", timeout=5).status_code == 200
    finally:
        _stop(proc)
        rabbitmqctl("delete_vhost", vhost)


def test_gateway_answers_503_and_readyz_reports_a_missing_broker(system):
    port = free_port()
    proc, url = _gateway({**system.env, "TT_AMQP_URI": f"amqp://guest:guest@127.0.0.1:{port}/"})
    try:
        start = time.monotonic()
        r = requests.post(url + "/worker/create", json={}, timeout=15)
        assert r.status_code == 503 and r.json()["ok"] is False
        assert time.monotonic() - start < 8
        ready = requests.get(url + "/readyz", timeout=15)
        assert ready.status_code == 503
        assert ready.json()["content"] == {"broker": False, "database": True}
    finally:
        _stop(proc)


def test_a_system_on_another_exchange_of_the_same_vhost_sees_nothing(system):
    """Isolation by exchange name alone: no service of the running system answers this gateway."""
    proc, url = _gateway({**system.env, "TT_RPC_EXCHANGE": "tt-rpc-other"})
    try:
        r = requests.get(url + "/worker/stats", timeout=10)
        assert r.status_code == 503
        assert requests.get(system.url + "/worker/stats", timeout=10).status_code == 200
    finally:
        _stop(proc)
