"""Configuration from environment variables (12-factor), with defaults that work on a dev machine.

Every process (gateway, each service, the CLI) reads the same variables, so one environment
describes one whole system; two systems with different database names and AMQP virtual hosts run
side by side without seeing each other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "")
    return value if value != "" else default


def _bool(name: str, default: bool) -> bool:
    raw = _env(name, "1" if default else "0").strip().lower()
    return raw in {"1", "true", "yes", "on"}


def _list(name: str) -> tuple[str, ...]:
    """A comma-separated list; blanks around items and empty items are ignored."""
    return tuple(item.strip() for item in os.environ.get(name, "").split(",") if item.strip())


QUEUE_TYPES = ("quorum", "classic")


def _queue_type(name: str, default: str) -> str:
    """The RabbitMQ type of the service queues: ``quorum`` (replicated across the cluster's nodes,
    survives the loss of a minority of them) or ``classic`` (on one node)."""
    value = _env(name, default).strip().lower()
    if value not in QUEUE_TYPES:
        raise ValueError(f"{name} must be one of {', '.join(QUEUE_TYPES)}, not {value!r}")
    return value


def _netloc_hosts(url: str) -> tuple[str, list[tuple[str, str]]]:
    """A URL's userinfo (with its ``@``, or "") and its ``host[:port]`` entries as (host, port),
    port "" where none is given. libpq URLs may name several hosts, comma-separated
    (``h1:5432,h2:5432``), which ``urlsplit().port`` cannot parse."""
    userinfo, at, hosts = urlsplit(url).netloc.rpartition("@")
    entries = []
    for entry in hosts.split(","):
        if entry.startswith("["):  # IPv6 literal: [::1]:5432
            host, _, rest = entry[1:].partition("]")
            port = rest[1:]
        else:
            host, _, port = entry.partition(":")
        entries.append((unquote(host), port))
    return userinfo + at, entries


def _multihost_for_sqlalchemy(url: str) -> str:
    """SQLAlchemy's URL parser takes one host in the netloc (``h1:5432,h2:5432`` fails as a port),
    but passes ``?host=h1,h2&port=5432,5432`` on to psycopg, which hands libpq the same lists the
    netloc form gives it. So a multi-host URL moves its hosts into the query; others are unchanged."""
    userinfo, entries = _netloc_hosts(url)
    if len(entries) < 2:
        return url
    parts = urlsplit(url)
    query = [("host", ",".join(host for host, _ in entries))]
    if any(port for _, port in entries):
        query.append(("port", ",".join(port for _, port in entries)))  # "" = libpq's default port
    query += parse_qsl(parts.query, keep_blank_values=True)
    return urlunsplit(parts._replace(netloc=userinfo, query=urlencode(query, safe=",:")))


@dataclass(frozen=True)
class Settings:
    database_url: str
    amqp_uri: str
    rpc_exchange: str
    queue_type: str  # the service queues' RabbitMQ type: quorum | classic (QUEUE_TYPES)
    bind: str
    rpc_timeout: float
    admin_rpc_timeout: float  # the routes declared slow (bulk task administration, maintenance)
    session_lifetime: int
    gateway_workers: int
    gateway_connections: int  # open connections one gateway process serves at once (parked long-polls count)
    gateway_keepalive: int  # seconds an idle keep-alive connection stays open
    service_max_workers: int
    db_pool_size: int
    public_logs: bool
    secure_cookies: bool
    argon2_time_cost: int
    argon2_memory_kib: int
    max_body_bytes: int
    monitoring_interval: float
    gateway_batching: bool
    monitoring_retention_hours: float
    # Abuse limits (contract §6.2, §6.3, §7), each counted per 10 minutes; 0 = no limit.
    login_failures_per_pair: int
    login_failures_per_address: int
    worker_creations_per_address: int
    trusted_proxies: tuple[str, ...]  # addresses or CIDRs whose X-Forwarded-For is believed
    public_origins: tuple[str, ...]  # origins the cross-origin guard accepts besides the request's own
    password_hash_concurrency: int  # argon2 hashes in flight per service process

    @property
    def sqlalchemy_url(self) -> str:
        """SQLAlchemy wants the driver named; operators write plain libpq URLs, possibly with
        several hosts (``h1:5432,h2:5432/db?target_session_attrs=read-write``: libpq tries each
        until one is the primary), which SQLAlchemy takes only in its query form."""
        url = self.database_url
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                url = "postgresql+psycopg://" + url[len(prefix):]
                break
        return _multihost_for_sqlalchemy(url)

    @property
    def libpq_url(self) -> str:
        """The URL as libpq reads it (psycopg.connect, conninfo_to_dict): several hosts included."""
        return self.database_url.replace("postgresql+psycopg://", "postgresql://", 1)

    @property
    def database_address(self) -> str:
        """Every host:port of the URL, comma-separated (for messages)."""
        _, entries = _netloc_hosts(self.libpq_url)
        return ",".join(f"{f'[{host}]' if ':' in host else host or 'localhost'}:{port or 5432}"
                        for host, port in entries)

    @property
    def amqp_address(self) -> str:
        """Every host:port of the broker URL, comma-separated (for messages): ``TT_AMQP_URI`` may
        list several URLs separated by ``;``, which kombu fails over between."""
        addresses = []
        for uri in self.amqp_uris:
            parts = urlsplit(uri)
            addresses.append(f"{parts.hostname or 'localhost'}:{parts.port or 5672}")
        return ",".join(addresses)

    def rpc_queue(self, service: str) -> str:
        """Service queues are named after the exchange, so two systems sharing one virtual host
        but not one exchange never consume each other's requests (nameko alone names them
        ``rpc-<service>`` whatever the exchange)."""
        return f"{self.rpc_exchange}.{service}"

    @property
    def amqp_uris(self) -> list[str]:
        """Each broker URL of ``TT_AMQP_URI`` (several are separated by ``;``), blanks dropped:
        kombu takes them as its failover alternates, in this order."""
        return [uri.strip() for uri in self.amqp_uri.split(";") if uri.strip()]

    @property
    def rpc_queue_arguments(self) -> dict[str, str]:
        """The ``x-`` arguments the service queues are declared with. A classic queue gets none,
        as before queue types were configurable, so an existing one still matches its declaration
        (RabbitMQ refuses a declaration whose arguments differ: PRECONDITION_FAILED)."""
        return {"x-queue-type": "quorum"} if self.queue_type == "quorum" else {}

    def nameko_config(self) -> dict:
        return {
            "AMQP_URI": ";".join(self.amqp_uris),
            "rpc_queue_arguments": self.rpc_queue_arguments,
            "rpc_exchange": self.rpc_exchange,
            "max_workers": self.service_max_workers,
            "serializer": "json",
        }


@cache
def get_settings() -> Settings:
    return Settings(
        database_url=_env("TT_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/task_tracker"),
        amqp_uri=_env("TT_AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/"),
        rpc_exchange=_env("TT_RPC_EXCHANGE", "tt-rpc"),
        queue_type=_queue_type("TT_QUEUE_TYPE", "quorum"),
        bind=_env("TT_BIND", "127.0.0.1:3010"),
        rpc_timeout=float(_env("TT_RPC_TIMEOUT", "10")),
        admin_rpc_timeout=float(_env("TT_ADMIN_RPC_TIMEOUT", "600")),
        session_lifetime=int(_env("TT_SESSION_LIFETIME", str(8 * 3600))),
        gateway_workers=int(_env("TT_GATEWAY_WORKERS", "1")),
        gateway_connections=int(_env("TT_GATEWAY_CONNECTIONS", "20000")),
        gateway_keepalive=int(_env("TT_GATEWAY_KEEPALIVE", "75")),
        service_max_workers=int(_env("TT_SERVICE_MAX_WORKERS", "16")),
        db_pool_size=int(_env("TT_DB_POOL_SIZE", "16")),
        public_logs=_bool("TT_PUBLIC_LOGS", True),
        secure_cookies=_bool("TT_SECURE_COOKIES", False),
        argon2_time_cost=int(_env("TT_ARGON2_TIME_COST", "2")),
        argon2_memory_kib=int(_env("TT_ARGON2_MEMORY_KIB", str(19 * 1024))),
        max_body_bytes=int(_env("TT_MAX_BODY_BYTES", str(16 * 1024 * 1024))),
        monitoring_interval=float(_env("TT_MONITORING_INTERVAL", "120")),
        gateway_batching=_bool("TT_GATEWAY_BATCHING", True),
        monitoring_retention_hours=float(_env("TT_MONITORING_RETENTION_HOURS", "400")),
        login_failures_per_pair=int(_env("TT_LOGIN_FAILURES_PER_PAIR", "10")),
        login_failures_per_address=int(_env("TT_LOGIN_FAILURES_PER_ADDRESS", "1000")),
        worker_creations_per_address=int(_env("TT_WORKER_CREATIONS_PER_ADDRESS", "600")),
        trusted_proxies=_list("TT_TRUSTED_PROXIES"),
        public_origins=_list("TT_PUBLIC_ORIGINS"),
        password_hash_concurrency=max(1, int(_env("TT_PASSWORD_HASH_CONCURRENCY", "2"))),
    )
