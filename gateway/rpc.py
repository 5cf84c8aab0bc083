"""The gateway's RPC client: one AMQP connection per gateway process, shared by every request.

It speaks nameko's RPC wire format (request ``{"args", "kwargs"}`` to the RPC exchange with routing
key ``service.method``; reply ``{"result", "error"}`` to ``reply_to``), so services are plain nameko
entrypoints. It is leaner than nameko's standalone proxy, which the benchmark showed costing more
broker work than the calls themselves (docs/PERFORMANCE.md):

- one connection and one reply queue per process, not one per concurrent request: a reader
  thread (a greenlet under gunicorn's gevent worker) hands each reply to its waiter by
  correlation id;
- replies are consumed without acknowledgements: the reply queue is exclusive to this
  connection, so a reply the gateway cannot take is one nobody waits for;
- requests are published without publisher confirms (a broker round trip each) but
  ``mandatory``: a request no queue takes comes back as ``basic.return`` and fails at once (503),
  as nameko's ``UnknownService`` did. A request lost with the connection fails its waiter (503);
  the client retries, and stored replies make the retry safe (tracker/idempotency.py).

Requests are transient and expire when the gateway stops waiting: a request queued while every
replica was down must not take effect after its client saw a 503. (A quorum queue keeps every
message on disk whatever its delivery mode, and honours the per-message expiration at the queue's
head, as a classic queue does.)

``TT_AMQP_URI`` may list several broker nodes (``amqp://a;amqp://b;amqp://c``). The client keeps
one kombu ``Connection`` holding them all as failover alternates: a (re)connection tries the node
after the one it last used first, then each other node once, round-robin, so a node that died is
tried last. The reply queue is exclusive to a connection and lives on its node, so it dies with
that node; each new connection declares a new one on the node it reached (calls waiting on the
old one answer 503 and are retried by their clients).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from dataclasses import dataclass, field

import amqp
from amqp import spec
from kombu import Connection

from tracker import jsoncodec
from tracker.contract import Reply
from tracker.errors import UNAVAILABLE, Internal
from tracker.queues import reach_any_node
from tracker.settings import Settings

log = logging.getLogger("gateway.rpc")

TRANSIENT = 1  # AMQP delivery mode: not written to the broker's disk
INTERNAL_ERROR = Internal().reply()


@dataclass
class _Waiter:
    conn: object
    done: threading.Event = field(default_factory=threading.Event)
    answer: list | None = None  # the service's replies, as sent; None: no answer (503)
    failed: bool = False  # the service raised (500)


class RpcClient:
    """``dispatch(service, calls)`` sends a batch of calls to the service's one entrypoint
    (tracker/service.py) and answers one ``Reply`` per call: 503 when no replica answers in time
    or the broker is unreachable, 500 when the service raised."""

    def __init__(self, settings: Settings) -> None:
        self._uri = ";".join(settings.amqp_uris)
        self._settings = settings
        self._kombu = Connection(self._uri, heartbeat=0, connect_timeout=5)  # parses every URL; connects lazily
        self._lost_one = False  # a connection was lost: the next one starts at the next node
        self._exchange = settings.rpc_exchange
        self._timeout = settings.rpc_timeout
        self._conn: amqp.Connection | None = None
        self._channel: amqp.Channel | None = None
        self._reply_to = ""
        self._reader: threading.Thread | None = None
        self._waiters: dict[str, _Waiter] = {}
        self._connecting = threading.Lock()
        self._publishing = threading.Lock()  # the frames of one message must not interleave

    # --- connection --------------------------------------------------------------------------
    def _connect(self) -> amqp.Connection:
        with self._connecting:
            if self._conn is not None:
                return self._conn
            raw = self._reach_a_node()
            channel = raw.channel()
            channel.exchange_declare(self._exchange, "topic", durable=True, auto_delete=False)
            queue = channel.queue_declare("", exclusive=True, auto_delete=True).queue
            channel.queue_bind(queue, self._exchange, routing_key=queue)
            channel.events["basic_return"].add(self._on_return)
            channel.basic_consume(queue, no_ack=True, callback=self._on_reply)
            self._conn, self._channel, self._reply_to = raw, channel, queue
            self._reader = threading.Thread(target=self._read, args=(raw,), name="rpc-replies", daemon=True)
            self._reader.start()
            return raw

    def _reach_a_node(self) -> amqp.Connection:
        """A new connection to one of the broker's nodes: each is tried once, the next one after a
        lost connection first (kombu's round-robin over its alternates), without pausing between
        them; the last failure is raised when none answers."""
        kombu = self._kombu
        with contextlib.suppress(Exception):
            kombu.collect()  # drop the dead transport connection (kombu would reuse it) without a handshake
        if self._lost_one:
            kombu.maybe_switch_next()
            self._lost_one = False
        return reach_any_node(kombu, self._settings).connection

    def _read(self, conn: amqp.Connection) -> None:
        failure = None
        try:
            while conn.connected:  # False once the close handshake of close() has completed
                conn.drain_events()
        except Exception as exc:  # noqa: BLE001 - any way the connection ends
            failure = exc
        self._lost(conn, failure)

    def _lost(self, conn: amqp.Connection, exc: Exception | None) -> None:
        """Forget a broken connection and answer 503 to every call waiting on it."""
        with self._connecting:
            if self._conn is conn:
                self._conn = self._channel = None
                self._lost_one = True
                if exc is not None:
                    log.warning("broker connection lost: %s", exc.__class__.__name__)
        for cid, waiter in list(self._waiters.items()):
            if waiter.conn is conn:
                self._waiters.pop(cid, None)
                waiter.done.set()
        with contextlib.suppress(Exception):
            conn.collect()

    # --- replies -----------------------------------------------------------------------------
    def _on_reply(self, message: amqp.Message) -> None:
        waiter = self._waiters.pop(message.properties.get("correlation_id"), None)
        if waiter is None:
            return  # its caller gave up (timeout)
        try:
            body = jsoncodec.loads(message.body)
            if body.get("error"):
                log.error("service call failed: %s: %s", body["error"].get("exc_type"), body["error"].get("value"))
                waiter.failed = True
            else:
                waiter.answer = body.get("result")
        except (ValueError, AttributeError):
            waiter.failed = True
        waiter.done.set()

    def _on_return(self, exc, exchange, routing_key, message) -> None:
        waiter = self._waiters.pop(message.properties.get("correlation_id"), None)
        log.warning("no service takes %s", routing_key)
        if waiter is not None:
            waiter.done.set()  # its answer stays 503

    # --- calls -------------------------------------------------------------------------------
    def dispatch(self, service: str, calls: list[list], timeout: float | None = None) -> list[Reply]:
        """``calls``: ``[caller, operation, params]`` each (tracker/contract.py); ``timeout``: how
        long to wait for the answer (default ``rpc_timeout``; a slow route's is longer)."""
        answer = self._call(service, "dispatch", timeout or self._timeout, calls)
        if isinstance(answer, list) and len(answer) == len(calls):
            try:
                return [Reply.model_validate(reply) for reply in answer]
            except ValueError:
                log.error("%s answered replies that are not the contract's", service)
                return [INTERNAL_ERROR] * len(calls)
        return [INTERNAL_ERROR if answer is INTERNAL_ERROR else UNAVAILABLE] * len(calls)

    def _call(self, service: str, method: str, timeout: float, *args) -> list | Reply | None:
        try:
            conn = self._conn or self._connect()
            channel = self._channel
        except Exception as exc:  # noqa: BLE001 - broker unreachable in any of kombu's ways
            log.warning("cannot reach the broker: %s", exc.__class__.__name__)
            return None
        cid = uuid.uuid4().hex
        waiter = self._waiters[cid] = _Waiter(conn)
        message = amqp.Message(
            jsoncodec.dumps({"args": args, "kwargs": {}}),
            content_type="application/json", content_encoding="utf-8", delivery_mode=TRANSIENT,
            correlation_id=cid, reply_to=self._reply_to, expiration=str(int(timeout * 1000)))
        try:
            with self._publishing:
                channel.basic_publish(message, exchange=self._exchange, routing_key=f"{service}.{method}",
                                      mandatory=True)
        except Exception as exc:  # noqa: BLE001 - connection lost while sending
            self._waiters.pop(cid, None)
            self._lost(conn, exc)
            return None
        if not waiter.done.wait(timeout):
            self._waiters.pop(cid, None)
            log.warning("no answer from %s.%s within %.1f s", service, method, timeout)
        return INTERNAL_ERROR if waiter.failed else waiter.answer

    def close(self) -> None:
        """Send the close handshake and let the reader thread take its answer (it then ends).

        ``amqp.Connection.close()`` would wait here for a Close-Ok that the reader thread reads
        first: it returned only after 30 s (measured), which every gateway stop paid.
        """
        conn, reader = self._conn, self._reader
        if conn is None:
            return
        with contextlib.suppress(Exception):
            conn.send_method(spec.Connection.Close, "BsBB", (200, "closing", 0, 0))
        if reader is not None and reader is not threading.current_thread():
            reader.join(2)
        self._lost(conn, None)

