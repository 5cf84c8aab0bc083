"""Quorum service queues and broker failover on the machine's broker (issue 16, RabbitMQ part).

The service queues are quorum queues by default (TT_QUEUE_TYPE); a queue left from a system of
the other type is re-created when unused, and starting stops with what to do when it is consumed
(tracker/queues.py). The gateway's RPC client (gateway/rpc.py) reaches the first broker address
that answers, and after losing its connection moves to the next one with a new reply queue.
A real 3-node cluster losing nodes is tests/chaos/test_broker_cluster.py.
"""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
import time
import uuid

import pytest
from amqp.exceptions import PreconditionFailed
from kombu import Connection

from gateway.rpc import RpcClient
from tests.harness import ROOT, SERVICES, free_port, rabbitmqctl
from tracker.contract import Caller
from tracker.queues import QueueTypeConflict, ensure_queue_types
from tracker.settings import get_settings


def _settings(system, **changes):
    return dataclasses.replace(get_settings(), **{"amqp_uri": system.env["TT_AMQP_URI"],
                                                  "rpc_exchange": system.env.get("TT_RPC_EXCHANGE", "tt-rpc"),
                                                  **changes})


def test_the_service_queues_are_quorum_queues(system):
    """RabbitMQ refuses a classic declaration of a quorum queue: so each one is a quorum queue."""
    settings = _settings(system)
    assert settings.queue_type == "quorum"  # the default
    with Connection(system.env["TT_AMQP_URI"]) as conn:
        for service in SERVICES:
            with pytest.raises(PreconditionFailed, match="x-queue-type.*quorum"):
                conn.channel().queue_declare(settings.rpc_queue(service), durable=True, auto_delete=False)


def _answered(client: RpcClient) -> bool:
    """A call task_svc answers without changing anything (no credentials): True when its reply
    came back (None: no answer, the 503 case)."""
    caller = Caller(request="failover-" + uuid.uuid4().hex, deadline=time.time() + 30).wire()
    return client._call("task_svc", "dispatch", 20, [[caller, "get", {"project": 1}]]) is not None


def test_the_gateway_client_skips_a_dead_address_and_moves_on_after_losing_its_node(system):
    dead = f"amqp://guest:guest@127.0.0.1:{free_port()}/"  # nothing listens there
    live = system.env["TT_AMQP_URI"]
    client = RpcClient(_settings(system, amqp_uri=f"{dead};{live}"))
    try:
        assert _answered(client)  # the request and its reply went through
        first_queue = client._reply_to
        assert client._kombu.port == int(live.rsplit(":", 1)[1].split("/")[0])

        client._conn.sock.shutdown(socket.SHUT_RDWR)  # the connection dies under the client, as when its node is killed
        deadline = time.monotonic() + 10
        while client._conn is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client._conn is None  # the reader noticed
        assert _answered(client)  # the dead address was tried, then the live one
        assert client._reply_to != first_queue  # a new reply queue, declared on the node it reached
    finally:
        client.close()


@pytest.fixture
def spare_vhost(system):
    """A virtual host of its own, with the test system's database (nothing is started on it)."""
    name = "tt_qtype_" + uuid.uuid4().hex[:8]
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    try:
        yield {**system.env, "TT_AMQP_URI": system.env["TT_AMQP_URI"].rsplit("/", 1)[0] + "/" + name,
               "TT_BIND": f"127.0.0.1:{free_port()}"}
    finally:
        rabbitmqctl("delete_vhost", name)


def test_a_classic_queue_left_from_before_is_recreated_or_named_with_the_fix(spare_vhost):
    settings = dataclasses.replace(get_settings(), amqp_uri=spare_vhost["TT_AMQP_URI"])
    queue = settings.rpc_queue("task_svc")
    with Connection(spare_vhost["TT_AMQP_URI"]) as conn:
        conn.channel().queue_declare(queue, durable=True, auto_delete=False)  # as nameko declared it before
        # unused: deleted, for the service to declare it again as a quorum queue
        (m,) = ensure_queue_types(settings, ["task_svc"])
        assert m.queue == queue and "x-queue-type" in m.detail and m.consumers == 0
        conn.channel().queue_declare(queue, durable=True, auto_delete=False,
                                        arguments={"x-queue-type": "quorum"})  # now it can
        conn.channel().queue_delete(queue)

        # consumed by a system still running with classic queues: nothing is deleted, the fix is named
        channel = conn.channel()
        channel.queue_declare(queue, durable=True, auto_delete=False)
        channel.basic_consume(queue, callback=lambda message: None)
        with pytest.raises(QueueTypeConflict, match="TT_QUEUE_TYPE=classic"):
            ensure_queue_types(settings, ["task_svc"])
        out = subprocess.run([sys.executable, "-m", "tracker", "run"], env=spare_vhost, cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 1, out.stdout + out.stderr
        assert f"queue '{queue}' is not a quorum queue" in out.stderr and "TT_QUEUE_TYPE=classic" in out.stderr
        assert "Traceback" not in out.stderr + out.stdout and "starting" not in out.stdout
        doctor = subprocess.run([sys.executable, "-m", "tracker", "doctor"], env=spare_vhost, cwd=ROOT,
                                capture_output=True, text=True, timeout=120)
        assert "[FAIL] queue types" in doctor.stdout, doctor.stdout
        # the same system configured for classic queues has no conflict
        assert ensure_queue_types(dataclasses.replace(settings, queue_type="classic"), ["task_svc"]) == []
