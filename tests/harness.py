"""A whole throwaway tracker for tests: its own database, AMQP virtual host and port.

Started with the same ``tracker run`` a user runs, so the tests exercise the real launcher,
gateway, services, broker and database. Nothing is shared with a system already running here.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import psycopg
import requests
from kombu import Connection

from tracker.plugins import discover

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("TT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_BASE = os.environ.get("TT_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
SERVICES = list(discover())  # every service plugin, as the launcher starts them (no list by hand)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


@dataclass
class System:
    name: str
    port: int
    env: dict
    log_path: Path
    proc: subprocess.Popen | None = None
    extra: list = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db_url(self) -> str:
        return self.env["TT_DATABASE_URL"]

    @classmethod
    def create(cls, tmp: Path, **env_overrides: str) -> System:
        name = "tt_test_" + uuid.uuid4().hex[:10]
        port = free_port()
        env = {
            **os.environ,
            "TT_DATABASE_URL": PG_ADMIN.rsplit("/", 1)[0] + "/" + name,
            "TT_AMQP_URI": AMQP_BASE.rstrip("/") + "/" + name,
            "TT_BIND": f"127.0.0.1:{port}",
            "TT_RPC_TIMEOUT": "10",
            "TT_ARGON2_TIME_COST": "1",
            "TT_ARGON2_MEMORY_KIB": "1024",
            # Many systems share the machine's PostgreSQL (100 connections): keep each one small.
            "TT_DB_POOL_SIZE": "4",
            # Every test client is 127.0.0.1: the per-address abuse limits would count the whole
            # suite as one client (contract §7: a test deployment raises or disables them).
            # tests/security/test_review_limits.py starts a system of its own with them on.
            "TT_LOGIN_FAILURES_PER_ADDRESS": "0",
            "TT_WORKER_CREATIONS_PER_ADDRESS": "0",
            "PYTHONUNBUFFERED": "1",
            **env_overrides,
        }
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        rabbitmqctl("add_vhost", name)
        rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        return cls(name, port, env, tmp / f"{name}.log")

    def tracker(self, *args: str, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "tracker", *args], env=self.env, input=input,
                              capture_output=True, text=True, timeout=timeout, cwd=ROOT)

    def start(self, *run_args: str) -> None:
        migrated = self.tracker("db", "upgrade")
        assert migrated.returncode == 0, migrated.stderr
        self.log = open(self.log_path, "w")  # noqa: SIM115 - kept open while the system runs
        self.proc = subprocess.Popen([sys.executable, "-m", "tracker", "run", "--no-migrate", *run_args],
                                     env=self.env, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)
        self.wait_ready()

    def consumers(self) -> dict[str, int]:
        counts = {}
        with Connection(self.env["TT_AMQP_URI"]) as conn:
            channel = conn.channel()
            for svc in SERVICES:
                try:
                    queue = f"{self.env.get('TT_RPC_EXCHANGE', 'tt-rpc')}.{svc}"
                    _, _, counts[svc] = channel.queue_declare(queue, passive=True)
                except Exception:  # noqa: BLE001 - queue not declared yet
                    counts[svc] = 0
                    channel = conn.channel()
        return counts

    def wait_ready(self, timeout: float = 90, min_consumers: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                raise RuntimeError(f"tracker run exited early; log:\n{self.log_path.read_text()[-4000:]}")
            try:
                ready = requests.get(self.url + "/readyz", timeout=2).status_code == 200
            except requests.RequestException:
                ready = False
            if ready and min(self.consumers().values()) >= min_consumers:
                return
            time.sleep(0.3)
        raise RuntimeError(f"system not ready in {timeout} s; log:\n{self.log_path.read_text()[-4000:]}")

    def stop(self) -> None:
        for p in [*self.extra, self.proc]:
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in [*self.extra, self.proc]:
            if p:
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()

    def destroy(self) -> None:
        self.stop()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        with contextlib.suppress(subprocess.SubprocessError):
            rabbitmqctl("delete_vhost", self.name)

    def destroy_later(self) -> None:
        """destroy() while the next tests run: a system's graceful stop takes seconds of waiting
        (gunicorn's included). The session waits for every one at its end (join_teardowns)."""
        thread = threading.Thread(target=self.destroy, name=f"destroy-{self.name}")
        thread.start()
        _TEARDOWNS.append(thread)

    def sql(self, query: str, *args):
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            cur = conn.execute(query, args or None)
            return cur.fetchall() if cur.description else None


_TEARDOWNS: list[threading.Thread] = []


def join_teardowns() -> None:
    while _TEARDOWNS:
        _TEARDOWNS.pop().join()


# --- the processes of a running system (tests that kill one) ----------------------------------
def _children(system: System) -> list[psutil.Process]:
    return psutil.Process(system.proc.pid).children()


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


def service_pids(system: System, name: str) -> list[int]:
    """Pids of the replicas of service ``name`` started by ``tracker run``."""
    return [p.pid for p in _children(system) if _cmdline(p)[-1:] == [name]]


def gateway_worker_pids(system: System) -> list[int]:
    """Pids of the gateway's gunicorn worker processes (children of the gunicorn master)."""
    for p in _children(system):
        if any("gunicorn" in part for part in _cmdline(p)):
            return [c.pid for c in p.children()]
    return []


# --- assertions shared by the end-to-end tests ------------------------------------------------
def assert_error(r, status: int, *words: str) -> dict:
    """An error answer: the status, the JSON envelope with ok false and a message (§1.3)."""
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["ok"] is False, body
    assert isinstance(body.get("message"), str) and body["message"], body
    for word in words:
        assert word in body["message"], body["message"]
    return body


def assert_ok(r) -> dict:
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is True, body
    return body


def submitted(r) -> bool:
    """A /task/submit success: exactly ``{"ok": true, "content": {"id": <task id>}}`` (§6.5)."""
    if r.status_code != 200:
        return False
    body = r.json()
    content = body.get("content") if isinstance(body, dict) else None
    return (set(body) == {"ok", "content"} and body["ok"] is True and isinstance(content, dict)
            and set(content) == {"id"} and type(content["id"]) is int and content["id"] >= 1)


class Api:
    """A thin HTTP client: one requests.Session per identity (worker headers or manager cookie)."""

    def __init__(self, base: str, headers: dict | None = None) -> None:
        self.base = base
        self.http = requests.Session()
        if headers:
            self.http.headers.update(headers)
        self.id: int | None = None
        self.secret: str | None = None

    def get(self, path: str, **kw) -> requests.Response:
        return self.http.get(self.base + path, timeout=30, **kw)

    def post(self, path: str, body=None, raw: bytes | str | None = None, **kw) -> requests.Response:
        if raw is not None:
            return self.http.post(self.base + path, data=raw, timeout=30, **kw)
        return self.http.post(self.base + path, json=body, timeout=30, **kw)

    # --- identities ---------------------------------------------------------------------------
    def new_worker(self, alias: str = "w") -> Api:
        r = self.post("/worker/create", {"alias": alias})
        assert r.status_code == 200, r.text
        w = r.json()["content"]["worker"]
        api = Api(self.base, {"X-Worker-ID": str(w["id"]), "X-Secret": w["secret"]})
        api.id, api.secret = w["id"], w["secret"]
        base64.b64decode(w["secret"], validate=True)
        return api

    def new_manager(self, username: str | None = None, password: str = "tt-test-password") -> Api:
        api = Api(self.base)
        username = username or "m" + uuid.uuid4().hex[:12]
        r = api.post("/register", {"username": username, "password": password})
        assert r.status_code == 200, r.text
        api.id = r.json()["content"]["manager"]["id"]
        api.username = username
        return api


@contextmanager
def migrated_database(prefix: str) -> Iterator[str]:
    """The URL of a new database migrated to head with the ``tracker db upgrade`` an operator runs;
    dropped afterwards. For tests that need PostgreSQL alone (no system)."""
    name = prefix + uuid.uuid4().hex[:10]
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        migrated = subprocess.run([sys.executable, "-m", "tracker", "db", "upgrade"], cwd=ROOT, capture_output=True,
                                  text=True, timeout=120, env={**os.environ, "TT_DATABASE_URL": url})
        assert migrated.returncode == 0, migrated.stderr
        yield url
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
