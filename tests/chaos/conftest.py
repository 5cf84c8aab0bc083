"""Chaos tests: a tracker on a private PostgreSQL and RabbitMQ that the test kills and restarts.

Not part of the default suite (it restarts servers and takes minutes): marked ``chaos`` by
tests/conftest.py, it runs with ``./test.sh -m chaos``, ``./test.sh --all``, or when tests/chaos (or a
file in it) is named on the command line: ``.venv/bin/pytest tests/chaos -q``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from pathlib import Path

import pytest

from tests.chaos.infra import (
    PrivatePostgres,
    PrivateRabbit,
    PrivateRabbitCluster,
    free_port,
    make_base_dir,
    remove,
)
from tests.harness import System

SUMMARIES = pytest.StashKey[list]()
SHOWN = ("elapsed_s", "bulks", "tasks", "closures", "holds", "responses", "events", "anomaly_count", "checks")


def pytest_configure(config):
    config.stash[SUMMARIES] = []


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    for path in config.stash.get(SUMMARIES, []):
        summary = json.loads(Path(path).read_text())
        compact = {k: summary[k] for k in SHOWN if k in summary}
        terminalreporter.section("chaos summary")
        terminalreporter.write_line(json.dumps(compact, indent=1, default=str))
        terminalreporter.write_line(f"full summary: {path}")


@pytest.fixture
def chaos_summary(request):
    """Call with the summary dict: writes it as JSON under the test's tmp dir and shows it at the end."""

    def write(summary: dict, path: Path) -> Path:
        path.write_text(json.dumps(summary, indent=2, sort_keys=False, default=str))
        if str(path) not in request.config.stash[SUMMARIES]:
            request.config.stash[SUMMARIES].append(str(path))
        return path

    return write


class ChaosStack:
    """The private servers and the tracker running on them. ``standby``: test_db_failover.py's
    second PostgreSQL, streaming from ``pg``; ``rabbit``: one node, or test_broker_cluster.py's
    cluster."""

    def __init__(self, base: Path, pg: PrivatePostgres, rabbit: PrivateRabbit | PrivateRabbitCluster,
                 system: System, standby: PrivatePostgres | None = None, replication: str | None = None) -> None:
        self.base, self.pg, self.rabbit, self.system, self.standby = base, pg, rabbit, system, standby
        self.replication = replication


@contextlib.contextmanager
def _stack(tmp_path: Path, *, replication: str | None = None, rabbit_nodes: int = 1):
    """A ChaosStack; ``replication`` "sync" or "async" adds a streaming standby (synchronous: every
    commit waits for it) and hands the tracker the multi-host URL of both, primary first;
    ``rabbit_nodes`` > 1 runs a RabbitMQ cluster of that many nodes, every node in TT_AMQP_URI."""
    replicas = os.environ.get("TT_CHAOS_REPLICAS", "2")
    gateways = os.environ.get("TT_CHAOS_GATEWAYS", "2")
    base = make_base_dir()
    pg = PrivatePostgres(base).init()
    standby = PrivatePostgres(base, name="pg-standby") if replication else None
    rabbit = (PrivateRabbitCluster(base, size=rabbit_nodes) if rabbit_nodes > 1 else PrivateRabbit(base)).init()
    nodes = rabbit.nodes if isinstance(rabbit, PrivateRabbitCluster) else [rabbit]
    system = None
    try:
        pg.start()
        if standby:
            standby.standby_of(pg)
            standby.start()
            pg.wait_streaming()
            if replication == "sync":
                pg.make_synchronous("standby")
        rabbit.start()
        name = "tt_chaos_" + uuid.uuid4().hex[:8]
        pg.create_database(name)
        database_url = pg.url(name)
        if standby:
            database_url = (f"postgresql://postgres@127.0.0.1:{pg.port},127.0.0.1:{standby.port}/{name}"
                            "?target_session_attrs=read-write")
        port = free_port()
        env = {
            **os.environ,
            "TT_DATABASE_URL": database_url,
            "TT_AMQP_URI": rabbit.amqp_uri,  # the private node's (or every node's) default vhost "/"
            "TT_BIND": f"127.0.0.1:{port}",
            "TT_RPC_TIMEOUT": "10",
            "TT_ARGON2_TIME_COST": "1",
            "TT_ARGON2_MEMORY_KIB": "1024",
            "PYTHONUNBUFFERED": "1",
        }
        system = System(name, port, env, tmp_path / "system.log")
        system.start("--replicas", replicas, "--gateway-workers", gateways)
        system.replicas = int(replicas)
        system.gateway_workers = int(gateways)
        yield ChaosStack(base, pg, rabbit, system, standby, replication)
    finally:
        if system is not None:
            system.stop()
        rabbit.close()
        for server in (pg, standby):
            if server is not None:
                server.close()
        logs = [(pg.log, "postgres.log")]
        if standby is not None:
            logs.append((standby.log, "postgres-standby.log"))
        for node in nodes:
            suffix = "" if len(nodes) == 1 else "-" + node.dir.name  # rabbitmq-rabbit-0.out ...
            logs.append((node.log, f"rabbitmq{suffix}.out"))
            if (node.dir / "log").exists():
                shutil.copytree(node.dir / "log", tmp_path / f"rabbitmq-logs{suffix}", dirs_exist_ok=True)
        for src, dst in logs:
            if src.exists():
                shutil.copy(src, tmp_path / dst)
        remove(base)


@pytest.fixture
def chaos_stack(tmp_path):
    with _stack(tmp_path) as stack:
        yield stack


@pytest.fixture
def failover_stack(tmp_path, request):
    """Parametrised (indirectly) with "sync" or "async": the replication the standby gets."""
    with _stack(tmp_path, replication=request.param) as stack:
        yield stack


@pytest.fixture
def cluster_stack(tmp_path):
    """As chaos_stack, on a private 3-node RabbitMQ cluster (``stack.rabbit``: PrivateRabbitCluster)."""
    with _stack(tmp_path, rabbit_nodes=3) as stack:
        yield stack
