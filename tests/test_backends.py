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
    """``tracker ARGS`` with ``env``, on a free port unless ``env`` names one apart from the system's."""
    env = {**os.environ, "TT_BIND": f"127.0.0.1:{free_port()}", **env}
    return subprocess.run([sys.executable, "-m", "tracker", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_run_names_unreachable_postgresql(system):
    port = free_port()
    out = tracker({**system.env, "TT_BIND": f"127.0.0.1:{free_port()}",
                   "TT_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/x"}, "run")
    assert out.returncode == 1
    assert "PostgreSQL: not reachable at 127.0.0.1:" + str(port) in out.stderr
    assert "pg_ctlcluster" in out.stderr and "Traceback" not in out.stderr + out.stdout


def test_run_names_unreachable_rabbitmq(system):
    port = free_port()
    out = tracker({**system.env, "TT_BIND": f"127.0.0.1:{free_port()}",
                   "TT_AMQP_URI": f"amqp://guest:guest@127.0.0.1:{port}/"}, "run")
    assert out.returncode == 1
    assert f"RabbitMQ: not reachable at 127.0.0.1:{port}" in out.stderr
    assert "rabbitmq-server" in out.stderr and "Traceback" not in out.stderr + out.stdout


def test_run_names_a_missing_virtual_host_and_how_to_create_it(system):
    vhost = "tt_missing_" + str(free_port())
    out = tracker({**system.env, "TT_BIND": f"127.0.0.1:{free_port()}",
                   "TT_AMQP_URI": f"amqp://guest:guest@127.0.0.1:5672/{vhost}"}, "run")
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"virtual host '{vhost}' does not exist" in out.stderr
    assert f"rabbitmqctl add_vhost {vhost}" in out.stderr
    assert f"rabbitmqctl set_permissions -p {vhost} guest" in out.stderr
    assert "not reachable" not in out.stderr and "Traceback" not in out.stderr + out.stdout


def test_run_says_the_broker_refused_the_credentials(system):
    uri = system.env["TT_AMQP_URI"].replace("guest:guest@", "guest:wrong@")
    out = tracker({**system.env, "TT_BIND": f"127.0.0.1:{free_port()}", "TT_AMQP_URI": uri}, "run")
    assert out.returncode == 1
    assert "refused the credentials of user 'guest'" in out.stderr and "TT_AMQP_URI" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout


def test_run_says_the_database_refused_the_user(system):
    url = system.db_url.replace("postgres@", "no_such_role_tt@")
    out = tracker({**system.env, "TT_BIND": f"127.0.0.1:{free_port()}", "TT_DATABASE_URL": url}, "run")
    assert out.returncode == 1
    assert "refused user 'no_such_role_tt'" in out.stderr and "TT_DATABASE_URL" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout


def test_run_on_a_busy_port_stops_at_once_with_one_clear_line(system):
    """The port of the running test system is taken: nothing starts, exit 1, within seconds."""
    started = time.monotonic()
    out = tracker({**system.env}, "run", timeout=30)
    assert out.returncode == 1
    assert time.monotonic() - started < 10
    assert f"cannot listen on 127.0.0.1:{system.port}: address already in use" in out.stderr
    assert "starting" not in out.stdout  # no service was started
    assert "Traceback" not in out.stderr + out.stdout


def test_doctor_on_a_healthy_system_and_without_its_virtual_host(system):
    out = tracker(system.env, "doctor")
    lines = out.stdout.splitlines()
    for name in ("PostgreSQL", "schema", "RabbitMQ", "permissions"):
        assert any(line.startswith(f"[ok  ] {name}:") for line in lines), out.stdout
    settings_ok = any(line.startswith("[ok  ] database settings:") for line in lines)
    assert out.returncode == (0 if settings_ok else 1), out.stdout  # autovacuum may be off on this machine
    vhost = "tt_doctor_" + str(free_port())
    out = tracker({**system.env, "TT_AMQP_URI": f"amqp://guest:guest@127.0.0.1:5672/{vhost}"}, "doctor")
    assert out.returncode == 1
    assert f"[FAIL] RabbitMQ: virtual host '{vhost}' does not exist" in out.stdout
    assert f"rabbitmqctl add_vhost {vhost}" in out.stdout


def test_doctor_finds_missing_permissions(system):
    vhost = "tt_noperm_" + str(free_port())
    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, "guest", "^$", "^$", "^$")
        out = tracker({**system.env, "TT_AMQP_URI": f"amqp://guest:guest@127.0.0.1:5672/{vhost}"}, "doctor")
        assert out.returncode == 1
        assert "[FAIL] permissions:" in out.stdout and f"set_permissions -p {vhost} guest" in out.stdout
    finally:
        rabbitmqctl("delete_vhost", vhost)


def test_doctor_finds_a_schema_behind_the_code(system, tmp_path):
    from tests.harness import System

    other = System.create(tmp_path)  # a database of its own, never migrated
    try:
        out = tracker(other.env, "doctor")
        assert out.returncode == 1
        assert "[WARN] schema: database" in out.stdout and "tracker db upgrade" in out.stdout
    finally:
        other.destroy()


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
