"""gunicorn settings hooks for the gateway (``gunicorn -c python:gateway.gunicorn_conf``).

prometheus_client picks its multi-process mode when first imported, so the metrics directory is
set here, in the master, before any worker is forked. ``TT_METRICS_DIR`` names it (an emptyDir
in Kubernetes); otherwise a private temporary directory is made and removed on exit.
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
from pathlib import Path

_OWN_DIR = not os.environ.get("TT_METRICS_DIR")
METRICS_DIR = os.environ.get("TT_METRICS_DIR") or tempfile.mkdtemp(prefix="tt-metrics-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = METRICS_DIR

import json  # noqa: E402

from gunicorn import util  # noqa: E402
from gunicorn.http import wsgi  # noqa: E402
from prometheus_client import multiprocess  # noqa: E402 - after the directory is chosen

from gateway.security import SECURITY_HEADERS  # noqa: E402


def _write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn answers requests it cannot parse (a raw non-ASCII request line, a NUL in a
    header) itself, with an HTML page; every answer of this API is a JSON envelope (§1.3)."""
    body = json.dumps({"ok": False, "message": f"{reason}: {mesg}"}).encode("ascii")
    security = "".join(f"{name}: {value}\r\n" for name, value in SECURITY_HEADERS.items())
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"{security}Content-Length: {len(body)}\r\n\r\n").encode("latin-1")
    util.write_nonblock(sock, head + body)


util.write_error = _write_json_error  # looked up on the module at call time by every worker class


class OneWriteResponse(wsgi.Response):
    """Status line, headers and a (non-chunked) body leave in one ``send`` instead of two.

    Every answer here is one small JSON body; gunicorn writes its headers first and the body
    second, and on loopback each write wakes the client (measured: socket sends were a quarter
    of a gateway worker's samples). Headers are held back only while ``write`` runs, and flushed
    on their own whenever the body does not follow (no body, chunked, nothing to send).
    """

    _holding = False
    _held: bytes | None = None

    def send_headers(self) -> None:
        if self._holding and not self.headers_sent and not self.chunked:
            tosend = self.default_headers()
            tosend.extend(["%s: %s\r\n" % (k, v) for k, v in self.headers])  # noqa: UP031 - as gunicorn does
            self._held = util.to_bytestring("%s\r\n" % "".join(tosend), "latin-1")  # noqa: UP031
            self.headers_sent = True
            return
        super().send_headers()

    def _emit_body(self, data: bytes) -> None:
        held, self._held = self._held, None
        if held is not None:
            util.write(self.sock, held + data)
            return
        super()._emit_body(data)

    def write(self, arg) -> None:
        self._holding = True
        try:
            super().write(arg)
        finally:
            self._holding = False
            held, self._held = self._held, None
            if held is not None:  # the body was dropped or empty: the headers still go out
                util.write(self.sock, held)


wsgi.Response = OneWriteResponse  # gunicorn's workers build responses through this module name


def on_starting(server) -> None:
    """Samples of an earlier gateway in the same directory would be counted again: start empty."""
    path = Path(METRICS_DIR)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def post_worker_init(worker) -> None:
    """Everything loaded so far lives as long as the worker: out of the collector's sight, a
    full collection no longer walks it (measured: 10,000-item bulks paid 30-45 ms pauses). The
    young generation is collected every 20,000 allocations instead of 700: a batch or a bulk
    allocates thousands of short-lived objects, and each collection stalls every request."""
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)


def child_exit(server, worker) -> None:
    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    if _OWN_DIR:
        shutil.rmtree(METRICS_DIR, ignore_errors=True)
