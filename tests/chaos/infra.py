"""A private PostgreSQL 15 cluster and a private RabbitMQ node, each on free ports in a temp dir.

The machine-wide PostgreSQL (5432) and RabbitMQ (5672) serve other test runs, so the chaos test
never touches them: it starts its own and stops, restarts and crashes those. We run as root; the
servers run as their own system users (``runuser``), so their directories are owned by them.

PostgreSQL: ``initdb`` once, then ``pg_ctl start/stop`` with ``-p <port> -k <sockdir>`` and
``listen_addresses=127.0.0.1``; the superuser ``postgres`` connects over TCP with ``trust``.

RabbitMQ: a second Erlang node ``tt-chaos-<hex>@localhost`` run as the ``rabbitmq`` user (so
``rabbitmqctl`` finds the same ``~rabbitmq/.erlang.cookie``), with its own AMQP port, distribution
port, mnesia/log dirs and pid file, an empty plugins file (no management listener on 15672) and a
config file naming its listener (the machine's /etc/rabbitmq/rabbitmq.conf names 5672). It shares
the machine's epmd (4369), which only maps node names to ports. The guest user may log in from
127.0.0.1 (RabbitMQ's default), and the tracker uses the default virtual host ``/``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psutil
import psycopg
from kombu import Connection

PG_BIN = Path(os.environ.get("TT_CHAOS_PG_BIN", "/usr/lib/postgresql/15/bin"))
RABBIT_BIN = Path(os.environ.get("TT_CHAOS_RABBIT_BIN", "/usr/lib/rabbitmq/bin"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _chown(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def make_base_dir(prefix: str = "tt-chaos-") -> Path:
    """A temp dir the postgres and rabbitmq users can traverse (pytest's tmp dirs are 0700 root)."""
    base = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    base.chmod(0o755)
    return base


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


class PrivatePostgres:
    """``start``/``stop(mode)``/``restart(mode)``/``kill`` (= immediate stop: a crash, WAL recovery
    on the next start). ``url(db)`` is a libpq URL for the tracker.

    Replication (test_db_failover.py): ``standby_of(primary)`` makes a streaming standby of a
    running cluster (``pg_basebackup -R``) named ``application_name`` to it; ``make_synchronous``
    names it in the primary's ``synchronous_standby_names``; ``crash`` is SIGKILL to the postmaster
    and every server process (the primary's machine lost: no shutdown, nothing more sent to the
    standby); ``promote`` turns the standby into a primary."""

    def __init__(self, base: Path, port: int | None = None, name: str = "pg") -> None:
        self.name = name
        self.dir = base / name
        self.data = self.dir / "data"
        self.sock = self.dir / "sock"
        self.log = self.dir / "postgres.log"
        self.port = port or free_port()
        self.crashed_at: float | None = None  # monotonic time of the last crash()

    # --- helpers ------------------------------------------------------------------------------
    def _run(self, tool: str, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(["runuser", "-u", "postgres", "--", str(PG_BIN / tool), *args],
                              capture_output=True, text=True, timeout=timeout, cwd=self.dir)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
                               f"\nserver log:\n{_tail(self.log)}")
        return proc

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    def url(self, db: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    # --- lifecycle ----------------------------------------------------------------------------
    def init(self) -> PrivatePostgres:
        self.sock.mkdir(parents=True, exist_ok=True)
        _chown(self.dir, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        return self

    def start(self, timeout: int = 60) -> None:
        opts = (f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c max_connections=300 "
                # a process crash, not an OS crash, is what we test: the page cache keeps the data
                # (a standby's too: what it received is on its side of the page cache)
                "-c fsync=off -c full_page_writes=off")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", str(timeout), "start",
                  timeout=timeout + 30)

    def stop(self, mode: str = "fast", timeout: int = 60) -> None:
        """mode: smart | fast (clients disconnected, checkpoint) | immediate (crash-like, no checkpoint)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", str(timeout), "stop", timeout=timeout + 30)

    def restart(self, mode: str = "fast", down: float = 0.0) -> None:
        self.stop(mode)
        time.sleep(down)
        self.start()

    def kill(self) -> None:
        """Crash: SIGQUIT to every server process, no shutdown checkpoint (pg_ctl -m immediate)."""
        self.stop("immediate")

    # --- replication --------------------------------------------------------------------------
    def standby_of(self, primary: PrivatePostgres, application_name: str = "standby") -> PrivatePostgres:
        """Copy the running ``primary`` into this (not yet initialised) cluster as a streaming
        standby: ``standby.signal`` and ``primary_conninfo`` (with ``application_name``, the name
        ``synchronous_standby_names`` refers to). Start it with ``start()``."""
        self.sock.mkdir(parents=True, exist_ok=True)
        _chown(self.dir, "postgres")
        self._run("pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
                  "-D", str(self.data), "-R", "-X", "stream", "-c", "fast", "--no-sync")
        with open(self.data / "postgresql.auto.conf", "a") as conf:  # a later line wins
            conf.write(f"primary_conninfo = 'host=127.0.0.1 port={primary.port} user=postgres "
                       f"application_name={application_name}'\n")
        return self

    def make_synchronous(self, standby_names: str, timeout: float = 60) -> None:
        """On the primary: every commit waits until the named standby has flushed its WAL
        (``synchronous_commit = on``, the default level, spelled out). Waits until the standby
        reports itself as the synchronous one."""
        self.sql(f"ALTER SYSTEM SET synchronous_standby_names = '{standby_names}'",
                 "ALTER SYSTEM SET synchronous_commit = 'on'", "SELECT pg_reload_conf()")
        self.wait_for(lambda: self.sql("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'")[0][0],
                      timeout, "no synchronous standby streaming")

    def wait_streaming(self, timeout: float = 60) -> None:
        """On the primary: wait until a standby streams from it."""
        self.wait_for(lambda: self.sql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")[0][0],
                      timeout, "no standby streaming")

    def wait_replayed(self, timeout: float = 30) -> None:
        """On a standby: wait until all the WAL it received is replayed (what a promote starts from)."""
        self.wait_for(lambda: self.sql("SELECT pg_last_wal_receive_lsn() IS NULL"
                                       " OR pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn()")[0][0],
                      timeout, "standby did not replay what it received")

    def wait_for(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: {what} within {timeout} s:\n{_tail(self.log)}")
            time.sleep(0.2)

    def sql(self, *statements: str, db: str = "postgres") -> list:
        """Run each statement in autocommit; the rows of the last one (``[]`` without rows)."""
        with psycopg.connect(self.url(db), autocommit=True, connect_timeout=5) as conn:
            rows: list = []
            for statement in statements:
                cur = conn.execute(statement)
                rows = cur.fetchall() if cur.description else []
            return rows

    def promote(self, timeout: int = 60) -> None:
        """A standby becomes a primary (ends recovery, starts a new timeline, accepts writes)."""
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", str(timeout), "promote", timeout=timeout + 30)

    def wal_after(self, lsn: str) -> dict:
        """On a crashed primary (nothing running): what its WAL holds past ``lsn`` (a standby's
        ``pg_last_wal_receive_lsn()``): the WAL records and transaction commits that standby never
        received, read with ``pg_waldump`` from the files left behind. It stops, with an error we
        expect, at the end of the valid WAL."""
        proc = self._run("pg_waldump", "-p", str(self.data / "pg_wal"), "-s", lsn, check=False)
        records = [line for line in proc.stdout.splitlines() if line.startswith("rmgr:")]
        return {"from_lsn": lsn, "records": len(records),
                "commits": sum("desc: COMMIT" in line for line in records),
                "last_lsn": records[-1].split("lsn: ", 1)[1].split(",", 1)[0] if records else None,
                "end": (proc.stderr.strip().splitlines() or [""])[-1][:200]}

    def server_pids(self) -> list[int]:
        """The postmaster first, then every process it started."""
        try:
            postmaster = psutil.Process(int((self.data / "postmaster.pid").read_text().split("\n", 1)[0]))
            if str(self.data) not in postmaster.cmdline():  # a stale pid file, the pid reused since
                return []
            return [postmaster.pid, *(p.pid for p in postmaster.children(recursive=True))]
        except (OSError, ValueError, psutil.Error):
            return []

    def crash(self) -> list[int]:
        """kill -9 of the postmaster and, in the same instant, of every server process: the primary
        as lost as when its machine dies (a backend left alone would finish its commit and a
        walsender would go on sending until they noticed the postmaster gone). The pids killed.
        ``postmaster.pid`` stays behind, as after a real crash."""
        pids = self.server_pids()
        self.crashed_at = time.monotonic()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).wait(timeout=10)
        return pids

    @property
    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def create_database(self, name: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def close(self) -> None:
        if self.data.exists() and self.running:
            with contextlib.suppress(Exception):
                self.stop("immediate")
        self.crash()  # nothing left behind (a no-op when nothing runs)


class PrivateRabbit:
    """A RabbitMQ node of its own. ``start``/``stop`` (rabbitmqctl stop: a clean shutdown)/
    ``restart``/``kill`` (SIGKILL to the whole Erlang process group). Queues, users and the
    default vhost survive a restart (they live in its mnesia dir)."""

    def __init__(self, base: Path, port: int | None = None, dist_port: int | None = None, *,
                 sub: str = "rabbit", node: str | None = None) -> None:
        self.dir = base / sub
        self.node = node or f"tt-chaos-{uuid.uuid4().hex[:8]}@localhost"
        self.port = port or free_port()
        self.dist_port = dist_port or free_port()
        self.log = self.dir / "server.out"
        self.proc: subprocess.Popen | None = None
        self._out = None

    @property
    def amqp_uri(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def env(self) -> dict[str, str]:
        d = self.dir
        return {
            "HOME": "/var/lib/rabbitmq",  # where the rabbitmq user's .erlang.cookie lives
            "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),  # not /etc/rabbitmq's NODENAME
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_PID_FILE": str(d / "rabbit.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
        }

    def _argv(self, tool: str, *args: str) -> list[str]:
        kv = [f"{k}={v}" for k, v in self.env().items()]
        return ["runuser", "-u", "rabbitmq", "--", "env", *kv, str(RABBIT_BIN / tool), *args]

    def ctl(self, *args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(self._argv("rabbitmqctl", "-n", self.node, *args), capture_output=True, text=True,
                              timeout=timeout, cwd=self.dir)
        if check and proc.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed ({proc.returncode}):\n"
                               f"{proc.stdout}\n{proc.stderr}")
        return proc

    def init(self) -> PrivateRabbit:
        for sub in ("mnesia", "log"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        (self.dir / "rabbitmq-env.conf").write_text("")
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq.conf").write_text(f"listeners.tcp.default = 127.0.0.1:{self.port}\n")
        _chown(self.dir, "rabbitmq")
        return self

    def accepts(self, timeout: float = 2) -> bool:
        try:
            with Connection(self.amqp_uri, connect_timeout=timeout) as conn:
                conn.ensure_connection(max_retries=1, timeout=timeout)
            return True
        except Exception:  # noqa: BLE001 - any refusal means "not yet"
            return False

    def start(self, timeout: float = 120) -> None:
        if self.proc and self.proc.poll() is None:
            raise RuntimeError("rabbit already running")
        self._out = open(self.log, "a")  # noqa: SIM115 - kept open while the node runs
        self.proc = subprocess.Popen(self._argv("rabbitmq-server"), stdout=self._out, stderr=subprocess.STDOUT,
                                     cwd=self.dir, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited with {self.proc.returncode}:\n{_tail(self.log)}")
            if self.accepts():
                return
            time.sleep(0.5)
        raise RuntimeError(f"rabbitmq node not accepting AMQP within {timeout} s:\n{_tail(self.log)}")

    def _reap(self, timeout: float) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        if self._out:
            self._out.close()
            self._out = None

    def stop(self, timeout: float = 60) -> None:
        """Clean shutdown (connections closed by the broker, durable state flushed)."""
        if not self.proc or self.proc.poll() is not None:
            return
        self.ctl("stop", timeout=timeout)
        self._reap(timeout)

    def kill(self) -> None:
        """Crash: SIGKILL to the node's whole process group (runuser, shell, beam.smp, helpers)."""
        if not self.proc or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._reap(10)

    def restart(self, down: float = 0.0, crash: bool = False) -> None:
        self.kill() if crash else self.stop()
        time.sleep(down)
        self.start()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop(timeout=30)
        self.kill()


class PrivateRabbitCluster:
    """``size`` private nodes ``tt-chaos-<hex>-<i>@localhost`` in one RabbitMQ cluster: they share
    the rabbitmq user's Erlang cookie, and nodes 1.. join node 0 (``stop_app``, ``join_cluster``,
    ``start_app``). A node killed and started again rejoins by itself (its mnesia dir remembers
    the cluster). ``amqp_uri`` lists every node, ``;``-separated, as TT_AMQP_URI takes them."""

    def __init__(self, base: Path, size: int = 3) -> None:
        tag = uuid.uuid4().hex[:8]
        self.nodes = [PrivateRabbit(base, sub=f"rabbit-{i}", node=f"tt-chaos-{tag}-{i}@localhost")
                      for i in range(size)]

    @property
    def amqp_uri(self) -> str:
        return ";".join(node.amqp_uri for node in self.nodes)

    def init(self) -> PrivateRabbitCluster:
        for node in self.nodes:
            node.init()
        return self

    def start(self) -> None:
        first, *others = self.nodes
        first.start()
        for node in others:
            node.start()
            node.ctl("stop_app")
            node.ctl("join_cluster", first.node)
            node.ctl("start_app")
        running = self.running_nodes()
        if sorted(running) != sorted(n.node for n in self.nodes):
            raise RuntimeError(f"cluster formed with {running}, not every node")

    def any_running(self) -> PrivateRabbit:
        for node in self.nodes:
            if node.proc and node.proc.poll() is None:
                return node
        raise RuntimeError("no cluster node is running")

    def running_nodes(self) -> list[str]:
        out = self.any_running().ctl("eval", "rabbit_nodes:all_running().").stdout
        return [n.strip().strip("'") for n in out.strip().strip("[]").split(",") if n.strip()]

    def by_port(self, port: int) -> PrivateRabbit | None:
        return next((n for n in self.nodes if n.port == port), None)

    def by_name(self, name: str) -> PrivateRabbit | None:
        return next((n for n in self.nodes if n.node == name), None)

    def queue_info(self, queue: str) -> dict[str, str]:
        """``type``, ``leader``, ``members``, ``online`` of a queue of the default vhost, as
        ``rabbitmqctl list_queues`` prints them (leader and members: quorum queues only)."""
        items = ("name", "type", "leader", "members", "online")
        out = self.any_running().ctl("list_queues", "-q", "--no-table-headers", *items, timeout=30).stdout
        for line in out.splitlines():
            fields = line.split("\t")
            if fields and fields[0] == queue:
                return dict(zip(items, fields, strict=False))
        raise LookupError(f"no queue {queue!r}: {out!r}")

    def close(self) -> None:
        for node in self.nodes:
            node.close()


def remove(base: Path) -> None:
    shutil.rmtree(base, ignore_errors=True)
