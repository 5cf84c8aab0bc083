"""A replicated broker under chaos (issue 16, RabbitMQ part): the tracker runs on a private 3-node
RabbitMQ cluster (infra.PrivateRabbitCluster) with quorum service queues and every node's address
in TT_AMQP_URI, while 16 workers cycle tasks and a submitter adds them (workload.py, the same
clients and checks as test_chaos.py). Meanwhile:

1. ``kill -9`` of the node holding the leader of the task service's queue; the test waits until
   the system is whole again (``/readyz`` 200, every service consumed by all its replicas, every
   service replica and gateway worker connected to a live node and none to the dead one), prints
   how long that took, then starts the node again and waits until it is back in the queue;
2. ``kill -9`` of the node a gateway worker is connected to (after 1, not the same node: the
   gateway moved on), the same wait, the node started again.

Every invariant of the chaos test must hold: nothing lost, doubled or double-held, no 500, and each
event recovered. Sizes (``TT_CLUSTER_*`` knobs, README.md): 16 workers, 40 bulks of 100 tasks, 1 s
between bulks, so that both events fall while tasks are still being submitted. The summary, with
the nodes each process was connected to before each kill, is ``<tmp>/chaos_summary.json``.
"""

from __future__ import annotations

import contextlib
import os
import time

import psutil
import pytest

from tests.chaos.infra import PrivateRabbit, PrivateRabbitCluster
from tests.chaos.workload import Run, Sizes, cast, failure_details, print_compact, run_workload, wait_recovered
from tests.harness import SERVICES, _children, _cmdline, gateway_worker_pids, service_pids

SIZES = Sizes.from_env("TT_CLUSTER", bulks=40, submit_pause=1.0, limit=900)
EVENT_AT = [float(x) for x in os.environ.get("TT_CLUSTER_EVENT_AT", "8,45").split(",")]
EVENTS = "kill_task_queue_leader,kill_gateway_node"
REJOIN_TIMEOUT = 120.0


def _label(p: psutil.Process) -> str:
    cmd = _cmdline(p)
    return f"gateway worker {p.pid}" if any("gunicorn" in part for part in cmd) else f"{cmd[-1]} {p.pid}"


def broker_connections(stack) -> dict[str, list[str]]:
    """For each node, the tracker processes with an established connection to it (by the node's
    AMQP port; a connection to a dead node lingers in CLOSE_WAIT until its process notices)."""
    cluster: PrivateRabbitCluster = stack.rabbit
    found: dict[str, list[str]] = {n.node: [] for n in cluster.nodes}
    processes = []
    for p in _children(stack.system):
        processes.append(p)
        with contextlib.suppress(psutil.Error):
            processes.extend(p.children())  # gunicorn's workers
    for p in processes:
        try:
            conns = p.net_connections(kind="tcp")
        except psutil.Error:
            continue
        for c in conns:
            node = cluster.by_port(c.raddr.port) if c.raddr and c.status == psutil.CONN_ESTABLISHED else None
            if node is not None and _label(p) not in found[node.node]:
                found[node.node].append(_label(p))
    return found


def gateway_node(stack) -> PrivateRabbit | None:
    """The node the first gateway worker is connected to."""
    pids = gateway_worker_pids(stack.system)
    for node, labels in broker_connections(stack).items():
        if pids and f"gateway worker {pids[0]}" in labels:
            return stack.rabbit.by_name(node)
    return None


def cluster_chaos(run: Run, stack, t0: float, results: list[dict], record: dict) -> None:
    cluster: PrivateRabbitCluster = stack.rabbit
    system = stack.system
    queue = f"{system.env.get('TT_RPC_EXCHANGE', 'tt-rpc')}.task_svc"

    def moved_off(dead: PrivateRabbit):
        def check() -> str | None:
            conns = broker_connections(stack)
            if conns[dead.node]:
                return f"still on the dead node: {conns[dead.node]}"
            live = {label for node, labels in conns.items() if node != dead.node for label in labels}
            missing = [f"gateway worker {pid}" for pid in gateway_worker_pids(system)]
            missing += [f"{svc} {pid}" for svc in SERVICES for pid in service_pids(system, svc)]
            missing = [label for label in missing if label not in live]
            if missing:
                return f"not connected to a live node: {missing}"
            info = cluster.queue_info(queue)
            if info.get("leader") in ("", dead.node):
                return f"queue {queue} has no live leader ({info.get('leader')})"
            return None
        return check

    def kill_task_queue_leader() -> PrivateRabbit:
        info = cluster.queue_info(queue)
        record["queue_at_start"] = info
        if info["type"] != "quorum":
            raise RuntimeError(f"{queue} is a {info['type']} queue, not a quorum queue")
        return cluster.by_name(info["leader"])

    def kill_gateway_node() -> PrivateRabbit:
        node = gateway_node(stack)
        if node is None:
            raise RuntimeError(f"no gateway worker connected to a node: {broker_connections(stack)}")
        return node

    pick = {"kill_task_queue_leader": kill_task_queue_leader, "kill_gateway_node": kill_gateway_node}
    for name, when in zip(EVENTS.split(","), EVENT_AT, strict=True):
        pause = t0 + when - time.monotonic()
        if pause > 0 and run.stop.wait(pause):
            return
        try:
            victim = pick[name]()
            before = {"node": victim.node, "connected": broker_connections(stack),
                      "queue": cluster.queue_info(queue)}
        except Exception as exc:  # noqa: BLE001 - the injection itself failed: report it
            results.append(run.rec.event(f"{name}: injection failed", error=repr(exc)))
            continue
        started = time.monotonic()
        begin = run.rec.event(name, node=victim.node, connected=before["connected"][victim.node])
        victim.kill()
        done = wait_recovered(stack, run.rec, name, started, moved_off(victim))
        after = {"connected": broker_connections(stack), "queue": cluster.queue_info(queue)}
        results.append({**begin, "recovery": done})
        rejoin = _restart(run, cluster, victim, queue)
        record.setdefault("kills", []).append({"event": name, "before": before, "after_recovery": after,
                                               "recovery_s": done.get("seconds"), "rejoin": rejoin})
        time.sleep(3)  # let the retries of this event settle before the next one


def _restart(run: Run, cluster: PrivateRabbitCluster, node: PrivateRabbit, queue: str) -> dict:
    """Start a killed node again and wait until it is a running member of the cluster and of the
    queue (so that the next kill leaves a majority)."""
    started = time.monotonic()
    node.start()
    deadline = time.monotonic() + REJOIN_TIMEOUT
    while time.monotonic() < deadline:
        info = cluster.queue_info(queue)
        if node.node in cluster.running_nodes() and node.node in info.get("online", ""):
            return run.rec.event(f"{node.node} back in the cluster and the queue",
                                 seconds=round(time.monotonic() - started, 2))
        time.sleep(1)
    return run.rec.event(f"{node.node} NOT back", seconds=REJOIN_TIMEOUT)


def test_broker_cluster(cluster_stack, tmp_path, chaos_summary):
    stack = cluster_stack
    system = stack.system
    assert len(system.env["TT_AMQP_URI"].split(";")) == 3
    people = cast(system, SIZES.workers)
    assert system.consumers()["task_svc"] >= 2
    record: dict = {}

    setup = {"workers": SIZES.workers, "bulks": SIZES.bulks, "bulk_size": SIZES.bulk_size,
             "replicas": system.replicas, "gateway_workers": system.gateway_workers, "events": EVENTS,
             "event_at": EVENT_AT, "rabbit_nodes": len(stack.rabbit.nodes)}
    outcome = run_workload(system, people, SIZES,
                           lambda run, t0, results: cluster_chaos(run, stack, t0, results, record),
                           tmp_path=tmp_path, setup=setup)
    summary, checks = outcome.summary, outcome.checks
    summary["cluster"] = record
    checks["both kills carried out"] = len(record.get("kills", [])) == 2
    summary["checks"] = checks
    path = chaos_summary(summary, tmp_path / "chaos_summary.json")
    print_compact(summary, path, title="BROKER CLUSTER SUMMARY")
    recovery = {k["event"]: k["recovery_s"] for k in record.get("kills", [])}
    print("\nBROKER CLUSTER: seconds to recover", recovery, "elapsed", summary["elapsed_s"], flush=True)
    failed = [name for name, ok in checks.items() if not ok]
    assert not failed, f"broker cluster checks failed: {failed}; kills: {recovery}; {failure_details(summary)}; " \
                       f"summary: {path}"


pytestmark = pytest.mark.timeout(int(SIZES.limit) + 600)
