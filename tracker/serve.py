"""Run one nameko service in this process: ``tracker serve task_svc``.

eventlet must patch the standard library before anything else imports sockets or threads, so
this module is only imported through ``tracker serve`` (see tracker/cli.py), and patches first.

SIGTERM stops the service gracefully: nameko cancels its queue consumer (no new requests reach this
process), lets in-flight workers finish, reply and acknowledge, then exits; requests the broker had
sent ahead (prefetched, unacknowledged) go back to the queue for another replica. Stock nameko 2.14
closes the consumer connection as soon as the last consumer is cancelled, before the in-flight
workers acknowledge: the broker then redelivers requests that were already executed (a get would
hand out a second task nobody receives). ``ConsumeWatch`` keeps the connection until they are done.

A green thread checks every few seconds that the RPC consumer is connected and consuming and then
refreshes this process's heartbeat file, which ``tracker probe NAME`` reads (tracker/probe.py).
"""

from __future__ import annotations

import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import gc  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402

os.environ.setdefault("PSYCOPG_WAIT_FUNC", "wait_select")

import nameko.rpc  # noqa: E402
from eventlet.event import Event  # noqa: E402
from nameko.messaging import QueueConsumer  # noqa: E402
from nameko.rpc import RpcConsumer  # noqa: E402
from nameko.runners import ServiceRunner  # noqa: E402

from tracker.plugins import discover  # noqa: E402
from tracker.probe import INTERVAL, Heartbeat  # noqa: E402
from tracker.settings import get_settings  # noqa: E402

log = logging.getLogger("tracker.serve")

# The consume loop turns at least once a second (kombu drains events with a 1 s timeout); a loop that
# has not turned for this long is stuck, whatever the connection looks like.
STALL_SECONDS = 15.0


class ConsumeWatch:
    """Watches this process's RPC consumers: connected to the broker and consuming their queue?

    nameko has no public health API, so this reads the QueueConsumer (a kombu ConsumerMixin) that
    carries every RPC entrypoint of a container: its consume thread, the kombu Consumer it created
    for the RpcConsumer on the last (re)connection, that consumer's channel and AMQP connection, and
    whether the broker confirmed the subscription (``consuming_from``). It also wraps the consumer's
    per-loop hook, to time the loop and to hold the connection open during a graceful stop.
    """

    def __init__(self, runner: ServiceRunner) -> None:
        self.rpc: list[tuple[object, RpcConsumer, QueueConsumer]] = []
        for container in runner.containers:
            for ext in container.extensions:  # includes shared sub-extensions, bound to this container
                if isinstance(ext, RpcConsumer):
                    self.rpc.append((container, ext, ext.queue_consumer))
        self.turned: dict[int, float] = {}
        for container, _, qc in self.rpc:
            self._wrap(container, qc)

    def _wrap(self, container, qc: QueueConsumer) -> None:
        def on_iteration() -> None:
            """nameko's on_iteration, except that a consumer with nothing left to consume stops only
            once no worker of its container is running: their acknowledgements need the connection."""
            self.turned[id(qc)] = time.monotonic()
            qc._cancel_consumers_if_requested()
            if not qc._consumers and not container._worker_threads:
                qc.should_stop = True

        qc.on_iteration = on_iteration

    def problem(self) -> str | None:
        """None when every RPC consumer is consuming; else what is wrong, for the probe to print."""
        if not self.rpc:
            return "no RPC consumer in this process"
        for _, rpc, qc in self.rpc:
            queue = rpc.queue.name if rpc.queue is not None else rpc.container.service_name
            if qc._gt is None or not qc._consumers_ready.ready():
                return f"connecting to the broker ({queue})"
            if qc._gt.dead or qc.should_stop:
                return f"consumer stopped ({queue})"
            consumer = qc._consumers.get(rpc)
            if consumer is None:
                return f"no consumer for {queue} (stopping?)"
            channel = consumer.channel
            connection = getattr(channel, "connection", None)
            if connection is None or not connection.connected or not channel.is_open:
                return f"broker connection lost ({queue}); reconnecting"
            if not consumer.consuming_from(queue):
                return f"not subscribed to {queue}"
            idle = time.monotonic() - self.turned.get(id(qc), 0.0)
            if idle > STALL_SECONDS:
                return f"consume loop has not turned for {idle:.0f} s ({queue})"
        return None


def _heartbeat_loop(watch: ConsumeWatch, heartbeat: Heartbeat, stopping: Event) -> None:
    """Self-check every INTERVAL seconds while consuming, every second while not (so the probe
    recovers quickly after a reconnection); log each change of state once."""
    reported: str | None = "starting"
    while not stopping.ready():
        try:
            problem = watch.problem()
            heartbeat.beat(problem)
        except Exception:  # noqa: BLE001 - a probe must never take the service down
            log.exception("heartbeat self-check failed")
            problem = "self-check failed"
        if problem != reported:
            if problem is None:
                log.info("consuming")
            elif reported is None:  # was consuming: this is news for whoever reads the log
                log.warning("not consuming: %s", problem)
            else:
                log.info("not consuming yet: %s", problem)
            reported = problem
        eventlet.sleep(INTERVAL if problem is None else 1.0)
    heartbeat.beat("stopping")


def serve_service(name: str) -> int:
    logging.basicConfig(level=os.environ.get("TT_LOG_LEVEL", "INFO"),
                        format="%(levelname)s %(name)s: %(message)s")
    plugin = discover()[name]
    settings = get_settings()
    nameko.rpc.RPC_QUEUE_TEMPLATE = settings.rpc_queue("{}")  # read by nameko when it declares queues
    runner = ServiceRunner(settings.nameko_config())
    runner.add_service(plugin.service_class())
    watch = ConsumeWatch(runner)
    heartbeat = Heartbeat(name)
    heartbeat.start()
    stopping = Event()

    def stop(signum, frame):
        if not stopping.ready():
            log.info("%s stopping: no new requests; finishing in-flight ones", name)
            stopping.send(True)
            eventlet.spawn_n(runner.stop)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    eventlet.spawn_n(_heartbeat_loop, watch, heartbeat, stopping)
    try:
        runner.start()
        gc.set_threshold(20_000, 10, 10)
        gc.freeze()  # the service's long-lived objects: out of reach of full collections
        log.info("%s ready (pid %d)", name, os.getpid())
        runner.wait()
    finally:
        heartbeat.remove()
    log.info("%s stopped", name)
    return 0
