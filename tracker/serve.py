"""Run one nameko service in this process: ``tracker serve task_svc``.

eventlet must patch the standard library before anything else imports sockets or threads, so
this module is only imported through ``tracker serve`` (see tracker/cli.py), and patches first.
SIGTERM stops the service gracefully: nameko stops consuming, lets in-flight workers finish and
reply, then exits; unacknowledged requests go back to the queue for another replica.
"""

from __future__ import annotations

import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402

os.environ.setdefault("PSYCOPG_WAIT_FUNC", "wait_select")

import nameko.rpc  # noqa: E402
from nameko.runners import ServiceRunner  # noqa: E402

from tracker.plugins import discover  # noqa: E402
from tracker.settings import get_settings  # noqa: E402


def serve_service(name: str) -> int:
    logging.basicConfig(level=os.environ.get("TT_LOG_LEVEL", "INFO"),
                        format="%(levelname)s %(name)s: %(message)s")
    plugin = discover()[name]
    settings = get_settings()
    nameko.rpc.RPC_QUEUE_TEMPLATE = settings.rpc_queue("{}")  # read by nameko when it declares queues
    runner = ServiceRunner(settings.nameko_config())
    runner.add_service(plugin.service_class())

    def stop(signum, frame):
        eventlet.spawn_n(runner.stop)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    runner.start()
    logging.getLogger("tracker.serve").info("%s ready (pid %d)", name, os.getpid())
    runner.wait()
    return 0
