"""``tracker doctor``: is everything the system relies on in place? Each check says what to do.

The same checks guard ``tracker run`` (tracker/preflight.py): a check that makes starting pointless
(a backend unreachable, refused credentials, a missing virtual host) stops it with the fix; the
others (schema not at head — ``tracker run`` migrates it —, database settings) are printed as
warnings and the system starts anyway.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import psycopg
from amqp.exceptions import AccessRefused, NotAllowed
from kombu import Connection, Exchange, Queue

from tracker.queues import reach_any_node
from tracker.settings import Settings

START_POSTGRES = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
START_RABBITMQ = "rabbitmq-server -detached"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    fatal: bool = True  # False: the system can start, but something it relies on is off


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


# --- PostgreSQL ----------------------------------------------------------------------------------

def _pg_params(settings: Settings) -> dict:
    return psycopg.conninfo.conninfo_to_dict(settings.libpq_url)


def check_postgres(settings: Settings) -> Check:
    """The server answers and accepts our credentials (on its ``postgres`` database)."""
    params = _pg_params(settings)
    where = settings.database_address
    try:
        with psycopg.connect(**{**params, "dbname": "postgres"}, connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        reason = _first_line(exc)
        text = str(exc)
        if "password authentication failed" in text or "role" in text and "does not exist" in text:
            return Check("PostgreSQL", False, f"{where} refused user {params.get('user', '?')!r} ({reason})",
                         "fix the user or password in TT_DATABASE_URL, or create that role")
        return Check("PostgreSQL", False, f"not reachable at {where} ({reason})",
                     f"start it (e.g. `{START_POSTGRES}`) or point TT_DATABASE_URL at a running server")
    return Check("PostgreSQL", True, f"{where} accepts user {params.get('user', '?')!r}")


def check_schema(settings: Settings) -> Check:
    """The system's database exists and its schema is at the newest migration."""
    from alembic.script import ScriptDirectory

    from tracker.migrate import alembic_config

    params = _pg_params(settings)
    name = params.get("dbname", "?")
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    fix = "run `tracker db upgrade` (`./run.sh` and `tracker run` do it before starting)"
    try:
        with psycopg.connect(**params, connect_timeout=3) as conn:
            row = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()
            current = conn.execute("SELECT version_num FROM alembic_version").fetchone() if row[0] else None
    except psycopg.OperationalError as exc:
        if "does not exist" in str(exc):
            return Check("schema", False, f"database {name!r} does not exist yet", fix, fatal=False)
        return Check("schema", False, f"cannot read database {name!r} ({_first_line(exc)})", fix, fatal=False)
    if current is None or current[0] != head:
        have = current[0] if current else "none"
        return Check("schema", False, f"database {name!r} is at migration {have}, the code needs {head}", fix,
                     fatal=False)
    return Check("schema", True, f"database {name!r} is at the newest migration ({head})")


def check_database_settings(settings: Settings) -> Check:
    """Autovacuum (with track_counts, which it needs) keeps the queue's statistics fresh and its
    dead rows reclaimed; without it a busy task table slows down and big imports go unanalysed."""
    params = _pg_params(settings)
    fix = ("turn it on: `psql -c \"ALTER SYSTEM SET autovacuum = on\" -c \"ALTER SYSTEM SET track_counts = on\" "
           "-c \"SELECT pg_reload_conf()\"` as a superuser (or in postgresql.conf)")
    try:
        with psycopg.connect(**{**params, "dbname": "postgres"}, connect_timeout=3) as conn:
            values = {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in ("autovacuum", "track_counts")}
    except psycopg.OperationalError as exc:
        return Check("database settings", False, f"cannot read them ({_first_line(exc)})", fix, fatal=False)
    off = [name for name, value in values.items() if value != "on"]
    if off:
        return Check("database settings", False, f"{' and '.join(off)} is off: the task table's statistics go "
                     "stale and its dead rows pile up", fix, fatal=False)
    return Check("database settings", True, "autovacuum and track_counts are on")


# --- RabbitMQ ------------------------------------------------------------------------------------

def _vhost_and_user(settings: Settings) -> tuple[str, str]:
    parts = urlsplit(settings.amqp_uri.split(";")[0])
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    return vhost, unquote(parts.username or "guest")


def check_rabbitmq(settings: Settings) -> Check:
    """The broker answers, accepts our credentials, and has our virtual host open to us."""
    where = settings.amqp_address
    vhost, user = _vhost_and_user(settings)
    try:
        with Connection(settings.amqp_uri, connect_timeout=3) as conn:
            reach_any_node(conn, settings, timeout=3 * len(settings.amqp_uris))
    except AccessRefused:
        return Check("RabbitMQ", False, f"{where} refused the credentials of user {user!r}",
                     "fix the user or password in TT_AMQP_URI (or create the user: "
                     f"`rabbitmqctl add_user {user} PASSWORD`)")
    except NotAllowed as exc:
        reason = _first_line(exc)
        if "not found" in reason:
            return Check("RabbitMQ", False, f"virtual host {vhost!r} does not exist on {where}",
                         f"create it: `rabbitmqctl add_vhost {vhost}` then "
                         f"`rabbitmqctl set_permissions -p {vhost} {user} '.*' '.*' '.*'`")
        return Check("RabbitMQ", False, f"user {user!r} may not use virtual host {vhost!r} on {where} ({reason})",
                     f"grant it: `rabbitmqctl set_permissions -p {vhost} {user} '.*' '.*' '.*'`")
    except Exception as exc:  # noqa: BLE001 - any connection failure: unreachable
        return Check("RabbitMQ", False, f"not reachable at {where} ({_first_line(exc)})",
                     f"start it (e.g. `{START_RABBITMQ}`) or point TT_AMQP_URI at a running broker")
    return Check("RabbitMQ", True, f"{where} accepts user {user!r} on virtual host {vhost!r}")


def check_permissions(settings: Settings) -> Check:
    """Configure, write and read: declare the RPC exchange and a throwaway queue, publish to it
    and read it back, as the services and the gateway do."""
    vhost, user = _vhost_and_user(settings)
    fix = f"grant them: `rabbitmqctl set_permissions -p {vhost} {user} '.*' '.*' '.*'`"
    name = f"{settings.rpc_exchange}.doctor-{uuid.uuid4().hex[:8]}"
    try:
        with Connection(settings.amqp_uri, connect_timeout=3) as conn:
            channel = conn.channel()
            Exchange(settings.rpc_exchange, type="topic", durable=True)(channel).declare()
            queue = Queue(name, exclusive=True, auto_delete=True)(channel)
            queue.declare()
            producer = conn.Producer(channel)
            producer.publish(b"doctor", routing_key=name, exchange="")
            for _ in range(100):  # basic.get polls; the message is there within milliseconds
                if queue.get(no_ack=True) is not None:
                    break
                time.sleep(0.01)
            else:
                return Check("permissions", False, f"a message published on {vhost!r} could not be read back", fix)
    except (AccessRefused, NotAllowed) as exc:
        return Check("permissions", False, f"user {user!r} lacks a permission on {vhost!r} ({_first_line(exc)})",
                     fix)
    except Exception as exc:  # noqa: BLE001
        return Check("permissions", False, f"could not try them ({_first_line(exc)})", fix)
    return Check("permissions", True, f"user {user!r} may configure, write and read on {vhost!r}")


def check_queue_types(settings: Settings) -> Check:
    """The service queues that exist have the configured type (TT_QUEUE_TYPE): RabbitMQ refuses to
    declare a queue with another type than it has (tracker/queues.py)."""
    from tracker.plugins import discover
    from tracker.queues import fix_for, mismatched

    try:
        found = mismatched(settings, discover())
    except Exception as exc:  # noqa: BLE001
        return Check("queue types", False, f"could not look ({_first_line(exc)})", fatal=False)
    busy = [m for m in found if m.consumers]
    if busy:
        return Check("queue types", False, f"queue {busy[0].queue!r} is not a {settings.queue_type} queue "
                     "and is consumed", fix_for(settings, busy[0]))
    if found:
        return Check("queue types", False, f"{', '.join(m.queue for m in found)} not {settings.queue_type} "
                     "queue(s), unused", "`tracker run` (or `tracker serve <service>`) deletes and re-creates them",
                     fatal=False)
    return Check("queue types", True, f"service queues are {settings.queue_type} queues (or not declared yet)")


# --- all of them ---------------------------------------------------------------------------------

CHECKS: list[tuple[str, Callable[[Settings], Check], str | None]] = [
    # (name, check, the earlier check it needs)
    ("PostgreSQL", check_postgres, None),
    ("schema", check_schema, "PostgreSQL"),
    ("database settings", check_database_settings, "PostgreSQL"),
    ("RabbitMQ", check_rabbitmq, None),
    ("permissions", check_permissions, "RabbitMQ"),
    ("queue types", check_queue_types, "permissions"),
]


def run_checks(settings: Settings) -> Iterator[Check]:
    passed: dict[str, bool] = {}
    for name, check, needs in CHECKS:
        if needs is not None and not passed.get(needs):
            result = Check(name, False, f"not checked: {needs} failed", fatal=False)
        else:
            result = check(settings)
        passed[name] = result.ok
        yield result


def report(check: Check) -> str:
    mark = "ok  " if check.ok else ("FAIL" if check.fatal else "WARN")
    line = f"[{mark}] {check.name}: {check.detail}"
    return line + (f"\n       → {check.fix}" if check.fix and not check.ok else "")


def main(settings: Settings) -> int:
    """Every check, printed; 1 if any failed (a warning counts: something the system relies on is off)."""
    results = []
    for check in run_checks(settings):
        print(report(check), flush=True)
        results.append(check)
    failed = [c for c in results if not c.ok]
    print(f"tracker doctor: {len(results) - len(failed)} of {len(results)} checks passed", flush=True)
    return 1 if failed else 0
