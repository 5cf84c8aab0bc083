"""Operational routes the gateway answers itself: index, liveness, readiness (contract §6.1)."""

from __future__ import annotations

import falcon
import psycopg
from kombu import Connection

import tracker.db  # noqa: F401 - sets the cooperative psycopg wait function before psycopg loads
from gateway.replies import http_body, http_status
from gateway.routes import Dispatcher, Replied, send
from gateway.ui import PATH as UI_PATH
from gateway.ui import wants_html
from tracker import __version__
from tracker.errors import Refused, envelope
from tracker.queues import reach_any_node
from tracker.settings import Settings

PROBE_TIMEOUT = 2.0


def broker_reachable(settings: Settings) -> bool:
    try:
        with Connection(settings.amqp_uri, connect_timeout=PROBE_TIMEOUT) as conn:
            reach_any_node(conn, settings, timeout=PROBE_TIMEOUT * len(settings.amqp_uris))
        return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False


def database_reachable(settings: Settings) -> bool:
    try:
        with psycopg.connect(settings.libpq_url, connect_timeout=int(PROBE_TIMEOUT)) as conn:
            conn.execute("SELECT 1")
        return True
    except Exception:  # noqa: BLE001
        return False


class Index:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if wants_html(req):  # a browser opening the tracker's address gets the manager UI
            raise falcon.HTTPSeeOther(UI_PATH + "/")
        try:
            self.dispatcher.check_credentials(req)
        except Refused as exc:
            answer = exc.reply()
            send(resp, http_status(answer), http_body(answer))
            return
        except Replied as replied:
            send(resp, http_status(replied.reply), http_body(replied.reply))
            return
        send(resp, 200, envelope(True, {"name": "task_tracker", "version": __version__}))


class Health:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        send(resp, 200, envelope(True))


class Ready:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        state = {"broker": broker_reachable(self.settings), "database": database_reachable(self.settings)}
        ready = all(state.values())
        message = None if ready else "Not ready: " + ", ".join(k for k, v in state.items() if not v)
        send(resp, 200 if ready else 503, envelope(ready, state, message))
