"""Run one nameko service in this process: ``tracker serve task_svc``.

eventlet must patch the standard library before anything else imports sockets or threads, so
this module is only imported through ``tracker serve`` (see tracker/cli.py), and patches first.

SIGTERM stops the service gracefully: nameko cancels its queue consumer (no new requests reach this
process), lets in-flight workers finish, reply and acknowledge, then exits; requests the broker had
sent ahead (prefetched, unacknowledged) go back to the queue for another replica. Stock nameko 2.14
closes the consumer connection as soon as the last consumer is cancelled, before the in-flight
workers acknowledge: the broker then redelivers requests that were already executed (a get would
hand out a second task nobody receives). ``ConsumeWatch`` (tracker/patches.py) keeps the connection until
they are done.

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

os.environ.setdefault("PSYCOPG_WAIT_FUNC", "wait_select")

from eventlet.event import Event  # noqa: E402
from nameko.runners import ServiceRunner  # noqa: E402

from tracker import jsoncodec  # noqa: E402
from tracker.patches import ConsumeWatch, apply_service_patches  # noqa: E402
from tracker.plugins import discover  # noqa: E402
from tracker.probe import INTERVAL, Heartbeat  # noqa: E402
from tracker.queues import QueueTypeConflict, ensure_queue_types  # noqa: E402
from tracker.settings import get_settings  # noqa: E402

log = logging.getLogger("tracker.serve")

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
    apply_service_patches(settings.rpc_queue("{}"))
    jsoncodec.register_kombu()  # requests and replies through orjson, as the gateway's
    try:
        for m in ensure_queue_types(settings, [name]):
            log.warning("queue %s was not a %s queue and nothing consumed it: deleted (%d stale requests)",
                        m.queue, settings.queue_type, m.messages)
    except QueueTypeConflict as exc:
        log.error("%s", exc)
        return 1
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
