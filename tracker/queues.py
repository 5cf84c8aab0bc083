"""The service queues' type on the broker (``TT_QUEUE_TYPE``): finding a queue that already exists
with another type, and re-creating it when nobody uses it.

RabbitMQ refuses to declare an existing queue with other arguments (``PRECONDITION_FAILED -
inequivalent arg 'x-queue-type'``), and a queue's type cannot be changed in place. A virtual host
used by a version of the tracker from before quorum queues holds classic ``tt-rpc.<service>``
queues; a service declaring them as quorum queues would die at once, and again after each restart.
So ``tracker run`` and ``tracker serve <service>`` look first: a queue of the wrong type that no
process consumes is deleted (nameko declares it again, with the configured type, when the service
starts); one that is consumed belongs to a system still running with the other type, and starting
stops with what to do. ``tracker doctor`` reports the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from amqp.exceptions import NotFound, PreconditionFailed
from kombu import Connection

from tracker.settings import Settings


class QueueTypeConflict(Exception):
    """A service queue exists with another type and is consumed: it cannot be replaced now."""


@dataclass(frozen=True)
class Mismatch:
    queue: str
    messages: int
    consumers: int
    detail: str  # the broker's words


def reach_any_node(conn: Connection, settings: Settings, timeout: float | None = None) -> Connection:
    """Connect ``conn`` (made from ``settings.amqp_uri``) to the first broker node that answers,
    from the one it points at now: each address once, without pausing between them (kombu's own
    ``.connection`` tries two, and pauses 2 s after each round). Raises the last failure."""
    conn.ensure_connection(max_retries=len(settings.amqp_uris) - 1, interval_start=0, interval_step=0,
                           interval_max=0, timeout=timeout)
    return conn


def _connect(settings: Settings) -> Connection:
    return reach_any_node(Connection(settings.amqp_uri, connect_timeout=5), settings)


def mismatched(settings: Settings, services: Iterable[str]) -> list[Mismatch]:
    """The services' queues that exist with arguments other than ``settings.rpc_queue_arguments``.
    A queue that does not exist yet is fine (the service declares it)."""
    found = []
    with _connect(settings) as conn:
        for service in services:
            name = settings.rpc_queue(service)
            channel = conn.channel()  # a refused declaration closes its channel
            try:
                _, messages, consumers = channel.queue_declare(name, passive=True)
            except NotFound:
                continue
            try:  # it exists: this only compares the arguments (a race can create it; nameko would anyway)
                channel.queue_declare(name, durable=True, auto_delete=False,
                                      arguments=settings.rpc_queue_arguments or None)
            except PreconditionFailed as exc:
                found.append(Mismatch(name, messages, consumers, str(exc.reply_text)))
            else:
                channel.close()
    return found


def fix_for(settings: Settings, mismatch: Mismatch) -> str:
    other = "classic" if settings.queue_type == "quorum" else "quorum"
    return (f"stop the system still consuming it ({mismatch.consumers} consumer(s), made with "
            f"TT_QUEUE_TYPE={other}) and start again: an unused queue is re-created as a "
            f"{settings.queue_type} queue; or keep TT_QUEUE_TYPE={other} for this system")


def ensure_queue_types(settings: Settings, services: Iterable[str]) -> list[Mismatch]:
    """Delete each service queue of the wrong type that has no consumer (so that the service
    re-creates it with the configured type) and return them; raise QueueTypeConflict naming the
    fix for one that is consumed. The requests a deleted queue held were sent by gateways of a
    stopped system: their callers already had a 503, or get one, and retry."""
    mismatches = mismatched(settings, services)
    busy = [m for m in mismatches if m.consumers]
    if busy:
        raise QueueTypeConflict("; ".join(
            f"queue {m.queue!r} is not a {settings.queue_type} queue ({m.detail}): {fix_for(settings, m)}"
            for m in busy))
    if mismatches:
        with _connect(settings) as conn:
            for m in mismatches:
                try:
                    conn.channel().queue_delete(m.queue, if_unused=True)
                except PreconditionFailed as exc:  # a consumer arrived meanwhile
                    raise QueueTypeConflict(f"queue {m.queue!r} is in use again ({exc.reply_text}): "
                                            f"{fix_for(settings, m)}") from exc
    return mismatches
