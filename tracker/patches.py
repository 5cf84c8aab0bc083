"""Temporary: the nameko patches (helper branch `own` replaces this module)."""

from __future__ import annotations

import logging

import nameko.rpc
from amqp.exceptions import AMQPError
from kombu.exceptions import KombuError
from nameko.amqp.publish import Publisher

log = logging.getLogger("tracker.patches")

class Rpc(nameko.rpc.Rpc):
    """nameko's RPC entrypoint, but a reply that cannot be published does not kill the service.

    nameko 2.14 lets the publish error escape, which kills the container and every in-flight
    request with it (seen when RabbitMQ restarts). The request is simply left unacknowledged: the
    broker requeues it when the old channel dies, and its redelivery answers the stored reply
    (tracker/idempotency.py) instead of acting twice.
    """

    def handle_result(self, message, worker_ctx, result, exc_info):
        try:
            return super().handle_result(message, worker_ctx, result, exc_info)
        except (KombuError, AMQPError, OSError) as exc:
            log.warning("could not reply to %s (%s); left for redelivery", self.method_name, exc.__class__.__name__)
            return result, exc_info


rpc = Rpc.decorator


class ReplyPublisher(Publisher):
    """Replies go out transient and unconfirmed. A confirm is a broker round trip per reply
    (measured: ~15 % of task_svc's time), and it buys nothing: a lost reply already means a
    timeout for the waiting gateway and a redelivery that replays the stored reply."""

    use_confirms = False
    delivery_mode = 1  # transient


nameko.rpc.Responder.publisher_cls = ReplyPublisher
