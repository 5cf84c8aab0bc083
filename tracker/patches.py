"""Every change this project makes to nameko's and gunicorn's own behaviour, in one place.

Two sections, one per framework, because the two sides must never load each other's: the
gateway runs under gevent and must not import nameko or eventlet, a service runs under eventlet
and has no use for gunicorn. So nothing here imports a framework at module level; each function
imports its framework when called, and ``tests/test_patches.py`` checks that importing this module
loads neither.

Each patch relies on a framework's internals that no public API promises, so each checks the
version it was written against (``require``) and has a test in ``tests/test_patches.py`` that
fails when an upgrade changes what it relies on. On an upgrade: re-read the framework code each
patch names, then change the pinned version here and in pyproject.toml together.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from contextlib import contextmanager, suppress
from functools import cache
from importlib.metadata import version
from typing import Any

log = logging.getLogger("tracker.patches")

NAMEKO_VERSION = "2.14.1"
GUNICORN_VERSION = "27.0.1"


class PatchedVersionMismatch(RuntimeError):
    """A framework's installed version is not the one a patch was written (and tested) against."""


def require(distribution: str, expected: str, patch: str) -> None:
    """Refuse to patch a framework version nobody checked the patch against (not an ``assert``:
    those vanish under ``python -O``)."""
    found = version(distribution)
    if found != expected:
        raise PatchedVersionMismatch(
            f"{patch} patches {distribution} {expected} internals, but {distribution} {found} is installed: "
            f"re-check that patch in tracker/patches.py (and run tests/test_patches.py), then update "
            f"{distribution.upper()}_VERSION there")


# =============================================================================================
# Service side: nameko (under eventlet)
# =============================================================================================

# The key of nameko's config (tracker.settings.Settings.nameko_config) naming the service queues'
# declaration arguments, e.g. {"x-queue-type": "quorum"}.
QUEUE_ARGUMENTS_KEY = "rpc_queue_arguments"


@cache
def _nameko_classes() -> tuple[type, type]:
    """The two nameko subclasses (built on first use, so that importing this module loads no
    nameko): the RPC entrypoint (with its queue consumer) and the reply publisher."""
    require("nameko", NAMEKO_VERSION, "Rpc.handle_result / RpcConsumer.setup / ReplyPublisher")
    import nameko.rpc
    from amqp.exceptions import AMQPError
    from kombu.exceptions import KombuError
    from nameko.amqp.publish import Publisher

    class RpcConsumer(nameko.rpc.RpcConsumer):
        """nameko's RPC consumer, but its queue is declared with the arguments the config names
        under ``QUEUE_ARGUMENTS_KEY`` (the queue type: quorum queues are replicated over the
        cluster's nodes). nameko 2.14 builds the kombu ``Queue`` in ``setup`` with ``durable=True``
        only; kombu declares it, with its ``queue_arguments``, on every (re)connection. Durable,
        not exclusive, not auto-delete, as a quorum queue must be."""

        def setup(self):
            super().setup()
            arguments = self.container.config.get(QUEUE_ARGUMENTS_KEY) or None
            self.queue.queue_arguments = dict(arguments) if arguments else None

    class Rpc(nameko.rpc.Rpc):
        """nameko's RPC entrypoint, but a reply that cannot be published does not kill the service.

        nameko 2.14 lets the publish error escape ``handle_result``, which kills the container and
        every in-flight request with it (seen when RabbitMQ restarts). The request is simply left
        unacknowledged: the broker requeues it when the old channel dies, and its redelivery answers
        the stored reply (tracker/idempotency.py) instead of acting twice.
        """

        rpc_consumer = RpcConsumer()  # nameko binds this shared extension by its class

        def handle_result(self, message, worker_ctx, result, exc_info):
            try:
                return super().handle_result(message, worker_ctx, result, exc_info)
            except (KombuError, AMQPError, OSError) as exc:
                log.warning("could not reply to %s (%s); left for redelivery",
                            self.method_name, exc.__class__.__name__)
                return result, exc_info

    class ReplyPublisher(Publisher):
        """Replies go out transient and unconfirmed. A confirm is a broker round trip per reply
        (measured: ~15 % of task_svc's time), and it buys nothing: a lost reply already means a
        timeout for the waiting gateway and a redelivery that replays the stored reply."""

        use_confirms = False
        delivery_mode = 1  # transient

    return Rpc, ReplyPublisher


@cache
def _rpc_proxy_class() -> type:
    """nameko's ``RpcProxy`` (a service calling another), with its reply queue not durable.

    nameko 2.14's ReplyListener declares ``rpc.reply-<service>-<uuid>`` as a durable classic queue
    (expiring 5 min after its last consumer): it lives on one broker node, and while that node is
    down RabbitMQ refuses to declare it anywhere else (``NOT_FOUND - home node ... is down``), so
    the calling service cannot consume at all until the node returns. A non-durable queue is
    dropped with its node, and the reconnected consumer declares it again on a live one. Replies
    in flight on the lost node are lost either way: the caller's own timeout answers.
    """
    require("nameko", NAMEKO_VERSION, "ReplyListener.setup (reply queue durability)")
    import nameko.rpc

    class ReplyListener(nameko.rpc.ReplyListener):
        def setup(self):
            super().setup()
            self.queue.durable = False

    class RpcProxy(nameko.rpc.RpcProxy):
        rpc_reply_listener = ReplyListener()  # nameko binds this shared extension by its class

    return RpcProxy


def rpc_proxy(target_service: str, **options: Any) -> Any:
    """nameko's ``RpcProxy(target_service)``, with the reply queue above (_rpc_proxy_class)."""
    return _rpc_proxy_class()(target_service, **options)


def sanitize_urls(url: str) -> str:
    """nameko's ``sanitize_url`` for each of several ``;``-separated broker URLs: nameko's own
    hides the password of the first URL only, and logs the rest (TT_AMQP_URI lists every node of
    a cluster)."""
    from nameko.utils import sanitize_url

    return ";".join(sanitize_url(part) for part in url.split(";"))


def rpc(*args: Any, **kwargs: Any) -> Any:
    """nameko's ``@rpc``, made with the entrypoint above (``Rpc.decorator``)."""
    entrypoint, _ = _nameko_classes()
    return entrypoint.decorator(*args, **kwargs)


def apply_service_patches(rpc_queue_template: str) -> None:
    """Before a service's ServiceRunner is built (tracker/serve.py): replies through
    ReplyPublisher, RPC queues named by ``rpc_queue_template`` (e.g. ``"tt-rpc.{}"``), and no
    broker password in the log whatever the number of broker URLs."""
    require("nameko", NAMEKO_VERSION, "Responder.publisher_cls / RPC_QUEUE_TEMPLATE / messaging.sanitize_url")
    import nameko.messaging
    import nameko.rpc

    _, publisher = _nameko_classes()
    # Responder.send_response builds its publisher from this class attribute, per reply.
    nameko.rpc.Responder.publisher_cls = publisher
    # RpcConsumer.setup reads this module global when it declares the service's queue; nameko
    # alone names it "rpc-<service>" whatever the exchange (tracker.settings.Settings.rpc_queue).
    nameko.rpc.RPC_QUEUE_TEMPLATE = rpc_queue_template
    # QueueConsumer.on_connection_error logs the broker URL through this module global.
    nameko.messaging.sanitize_url = sanitize_urls


# The consume loop turns at least once a second (kombu drains events with a 1 s timeout); a loop
# that has not turned for this long is stuck, whatever the connection looks like.
STALL_SECONDS = 15.0


class ConsumeWatch:
    """Watches a ServiceRunner's RPC consumers: connected to the broker and consuming their queue?
    And holds each consumer's connection open during a graceful stop until its workers are done.

    nameko has no public health API, so this reads the QueueConsumer (a kombu ConsumerMixin) that
    carries every RPC entrypoint of a container — its consume thread ``_gt``, ``_consumers_ready``,
    the kombu Consumer per provider in ``_consumers`` — and the container's ``_worker_threads``.
    Stock nameko 2.14 stops consuming (and closes the connection) as soon as the last consumer is
    cancelled, before in-flight workers acknowledge: the broker then redelivers requests that were
    already executed. So ``on_iteration`` is replaced (``_hold_until_workers_done``).
    """

    def __init__(self, runner) -> None:
        require("nameko", NAMEKO_VERSION, "ConsumeWatch (QueueConsumer/ServiceContainer internals)")
        from nameko.rpc import RpcConsumer

        self.rpc: list[tuple[Any, Any, Any]] = []
        for container in runner.containers:
            for ext in container.extensions:  # includes shared sub-extensions, bound to this container
                if isinstance(ext, RpcConsumer):
                    self.rpc.append((container, ext, ext.queue_consumer))
        self.turned: dict[int, float] = {}
        for container, _, qc in self.rpc:
            qc.on_iteration = self._hold_until_workers_done(container, qc)

    def _hold_until_workers_done(self, container, qc):
        def on_iteration() -> None:
            """nameko's on_iteration, except that a consumer with nothing left to consume stops only
            once no worker of its container is running: their acknowledgements need the connection."""
            self.turned[id(qc)] = time.monotonic()
            qc._cancel_consumers_if_requested()
            if not qc._consumers and not container._worker_threads:
                qc.should_stop = True

        return on_iteration

    def problem(self) -> str | None:
        """None when every RPC consumer is consuming; else what is wrong, for the probe to print."""
        if not self.rpc:
            return "no RPC consumer in this process"
        for _, rpc_consumer, qc in self.rpc:
            queue = rpc_consumer.queue.name if rpc_consumer.queue is not None else rpc_consumer.container.service_name
            if qc._gt is None or not qc._consumers_ready.ready():
                return f"connecting to the broker ({queue})"
            if qc._gt.dead or qc.should_stop:
                return f"consumer stopped ({queue})"
            consumer = qc._consumers.get(rpc_consumer)
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


# =============================================================================================
# Gateway side: gunicorn (under gevent)
# =============================================================================================

def json_error_writer(extra_headers: dict[str, str]):
    """gunicorn's ``util.write_error`` for this API: gunicorn answers requests it cannot parse (a
    raw non-ASCII request line, a NUL in a header) itself, with an HTML page; every answer of
    this API is a JSON envelope (contract §1.3), carrying ``extra_headers`` (the security headers)."""
    from gunicorn import util

    security = "".join(f"{name}: {value}\r\n" for name, value in extra_headers.items())

    def write_error(sock, status_int: int, reason: str, mesg: str) -> None:
        body = json.dumps({"ok": False, "message": f"{reason}: {mesg}"}).encode("ascii")
        head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
                f"{security}Content-Length: {len(body)}\r\n\r\n").encode("latin-1")
        util.write_nonblock(sock, head + body)

    return write_error


@cache
def one_write_response() -> type:
    """gunicorn's ``wsgi.Response``, except that status line, headers and a (non-chunked) body
    leave in one ``send`` instead of two.

    Every answer here is one small JSON body; gunicorn writes its headers first and the body
    second, and on loopback each write wakes the client (measured: socket sends were a quarter
    of a gateway worker's samples). Headers are held back only while ``write`` runs, and flushed
    on their own whenever the body does not follow (no body, chunked, nothing to send).
    """
    require("gunicorn", GUNICORN_VERSION, "OneWriteResponse (wsgi.Response.send_headers/_emit_body/write)")
    from gunicorn import util
    from gunicorn.http import wsgi

    class OneWriteResponse(wsgi.Response):
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

    OneWriteResponse.__doc__ = one_write_response.__doc__
    return OneWriteResponse


def _shut(sock) -> None:
    """End a connection from our side: a greenlet blocked reading it reads EOF and closes it."""
    with suppress(OSError):  # already gone
        sock.shutdown(socket.SHUT_RDWR)


def keep_alive_between_requests(idle_seconds: float) -> type:
    """gunicorn's gevent worker, except for how long a connection may wait for its next request.

    gunicorn gives every request on a connection ``--keep-alive`` seconds (2 by default) to arrive
    whole: the first one, and each next one after an answer. That one value serves two ends. As
    the time to send a request it should be short: a client that connects and sends nothing, or
    trickles its headers, holds a connection slot for it (docs/PERFORMANCE.md, "Many clients").
    As the time a client may pause between two requests it should be long: a worker running a
    task, or a proxy reusing its pooled connections, sends its next request over a connection the
    gateway may be closing at that very moment, and meets a reset (seen in the suite after a 2 s
    pause; a load balancer's 502). So here the first request keeps gunicorn's ``--keep-alive``
    and each next one gets ``idle_seconds`` (TT_GATEWAY_KEEPALIVE).

    And a stopping worker ends the connections that wait between requests at once (gunicorn waits
    for every open connection until ``--graceful-timeout``: one idle client held a stop 35 s,
    measured 15.7 s against 3.9 s for a whole system); requests in flight still finish (gunicorn
    then closes their connection itself). Patched in place: ``--worker-class gevent`` names it.
    """
    require("gunicorn", GUNICORN_VERSION, "GeventWorker.run/handle/timeout_ctx (keep-alive between requests)")
    import gevent
    from gunicorn.workers.ggevent import GeventWorker

    GeventWorker.tt_idle_seconds = idle_seconds
    if getattr(GeventWorker, "tt_keep_alive_patched", False):
        return GeventWorker
    run, handle = GeventWorker.run, GeventWorker.handle

    def close_idle_when_stopping(worker) -> None:
        while worker.alive:
            gevent.sleep(0.2)
        for sock in list(worker.tt_waiting):
            _shut(sock)

    def patched_run(self) -> None:
        self.tt_connections, self.tt_waiting = {}, set()
        closer = gevent.spawn(close_idle_when_stopping, self)
        try:
            run(self)
        finally:
            closer.kill()

    def patched_handle(self, listener, client, addr) -> None:
        me = gevent.getcurrent()
        self.tt_connections[me] = [client, 0]  # the socket, requests asked for so far
        try:
            handle(self, listener, client, addr)
        finally:
            self.tt_connections.pop(me, None)
            self.tt_waiting.discard(client)

    @contextmanager
    def next_request(self):
        """base_async.handle's keep-alive loop reads each request inside this context."""
        connection = self.tt_connections[gevent.getcurrent()]  # set by patched_handle
        sock, asked = connection
        connection[1] = asked + 1
        if asked:  # between two requests: idle, and closed at once when the worker stops
            self.tt_waiting.add(sock)  # before the check: the closer's sweep or the check sees it
            if not self.alive:
                _shut(sock)
        try:
            with gevent.Timeout(self.tt_idle_seconds if asked else self.cfg.keepalive, False):
                yield
        finally:
            self.tt_waiting.discard(sock)

    GeventWorker.run, GeventWorker.handle, GeventWorker.timeout_ctx = patched_run, patched_handle, next_request
    GeventWorker.tt_keep_alive_patched = True
    return GeventWorker


def apply_gateway_patches(error_headers: dict[str, str], idle_seconds: float) -> None:
    """In gunicorn's master, before workers fork (gateway/gunicorn_conf.py): JSON error pages
    carrying ``error_headers``, one-write responses, ``idle_seconds`` of keep-alive between
    requests (idle connections closed on stop)."""
    require("gunicorn", GUNICORN_VERSION, "util.write_error / wsgi.Response")
    from gunicorn import util
    from gunicorn.http import wsgi

    # Every worker class calls util.write_error through the module at call time
    # (gunicorn/workers/base.py handle_error).
    util.write_error = json_error_writer(error_headers)
    # wsgi.create builds each response through this module global.
    wsgi.Response = one_write_response()
    keep_alive_between_requests(idle_seconds)
