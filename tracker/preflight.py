"""Before starting anything: are PostgreSQL and RabbitMQ there? Say which is not, and how to fix it."""

from __future__ import annotations

import psycopg
from kombu import Connection

from tracker.settings import Settings

HOW_TO_START = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "RabbitMQ": "rabbitmq-server -detached",
}


class PreflightError(Exception):
    pass


def check_backends(settings: Settings) -> None:
    try:
        info = psycopg.conninfo.conninfo_to_dict(settings.libpq_url)
        with psycopg.connect(**{**info, "dbname": "postgres"}, connect_timeout=3):
            pass
    except Exception as exc:  # noqa: BLE001
        raise PreflightError(_explain("PostgreSQL", settings.database_address, exc)) from None
    try:
        with Connection(settings.amqp_uri, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
    except Exception as exc:  # noqa: BLE001
        raise PreflightError(_explain("RabbitMQ", settings.amqp_address, exc)) from None


def _explain(what: str, address: str, exc: Exception) -> str:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    return (
        f"{what} is not reachable at {address} ({reason}).\n"
        f"Start it (e.g. `{HOW_TO_START[what]}`) or point "
        f"{'TT_DATABASE_URL' if what == 'PostgreSQL' else 'TT_AMQP_URI'} at a running one."
    )
