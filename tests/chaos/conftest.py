"""Chaos tests: a tracker on a private PostgreSQL and RabbitMQ that the test kills and restarts.

Not part of the default suite (it restarts servers and takes minutes): marked ``chaos`` by
tests/conftest.py, it runs with ``./test.sh -m chaos``, ``./test.sh --all``, or when tests/chaos (or a
file in it) is named on the command line: ``.venv/bin/pytest tests/chaos -q``.
"""

from __future__ import annotations

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
    """The private servers and the tracker running on them."""

    def __init__(self, base: Path, pg: PrivatePostgres, rabbit: PrivateRabbit | PrivateRabbitCluster,
                 system: System) -> None:
        self.base, self.pg, self.rabbit, self.system = base, pg, rabbit, system


def _stack(tmp_path, rabbit, nodes: list[PrivateRabbit]):
    """A private PostgreSQL, ``rabbit`` (one node, or a cluster of ``nodes``), a database, and the
    tracker on them (``TT_CHAOS_REPLICAS``, ``TT_CHAOS_GATEWAYS``); logs copied to ``tmp_path``."""
    replicas = os.environ.get("TT_CHAOS_REPLICAS", "2")
    gateways = os.environ.get("TT_CHAOS_GATEWAYS", "2")
    base = nodes[0].dir.parent
    pg = PrivatePostgres(base).init()
    rabbit.init()
    system = None
    try:
        pg.start()
        rabbit.start()
        name = "tt_chaos_" + uuid.uuid4().hex[:8]
        pg.create_database(name)
        port = free_port()
        env = {
            **os.environ,
            "TT_DATABASE_URL": pg.url(name),
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
        yield ChaosStack(base, pg, rabbit, system)
    finally:
        if system is not None:
            system.stop()
        rabbit.close()
        pg.close()
        if pg.log.exists():
            shutil.copy(pg.log, tmp_path / "postgres.log")
        for node in nodes:
            suffix = "" if len(nodes) == 1 else "-" + node.dir.name
            if node.log.exists():
                shutil.copy(node.log, tmp_path / f"rabbitmq{suffix}.out")
            if (node.dir / "log").exists():
                shutil.copytree(node.dir / "log", tmp_path / f"rabbitmq-logs{suffix}", dirs_exist_ok=True)
        remove(base)


@pytest.fixture
def chaos_stack(tmp_path):
    rabbit = PrivateRabbit(make_base_dir())
    yield from _stack(tmp_path, rabbit, [rabbit])


@pytest.fixture
def cluster_stack(tmp_path):
    """As chaos_stack, on a private 3-node RabbitMQ cluster (``stack.rabbit``: PrivateRabbitCluster)."""
    cluster = PrivateRabbitCluster(make_base_dir(), size=3)
    yield from _stack(tmp_path, cluster, cluster.nodes)
