"""Several database hosts and several broker addresses in one setting (deploy/README.md, "Losing a
node"): the URLs must reach libpq and kombu with every address, since they do the failing over.

A multi-host libpq URL (``h1:5432,h2:5432/db?target_session_attrs=read-write``) is what an operator
writes; SQLAlchemy cannot parse its netloc, so tracker/settings.py rewrites it into SQLAlchemy's
query form. These tests check that psycopg then receives exactly what libpq reads from the
original URL, and that a real connection skips a host that is down and honours
``target_session_attrs``.
"""

from __future__ import annotations

import dataclasses

import psycopg
import pytest
from kombu import Connection
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from sqlalchemy import create_engine, pool, text
from sqlalchemy.exc import OperationalError

from tests.harness import PG_ADMIN
from tracker.settings import Settings, get_settings

MULTI_HOST = ("postgresql://tracker:p%40ss%2Fw@db-a:5432,db-b:5433,[::1]/task_tracker"
              "?target_session_attrs=read-write&connect_timeout=3")


def _settings(**changes) -> Settings:
    return dataclasses.replace(get_settings(), **changes)


def _psycopg_receives(settings: Settings) -> dict:
    """What SQLAlchemy's psycopg dialect passes to psycopg.connect for this URL, as libpq reads it."""
    engine = create_engine(settings.sqlalchemy_url, poolclass=pool.NullPool)
    _, kwargs = engine.dialect.create_connect_args(engine.url)
    kwargs.pop("context", None)  # psycopg's adapters, not a connection parameter
    return conninfo_to_dict(make_conninfo("", **kwargs))


@pytest.mark.parametrize("url", [
    MULTI_HOST,
    "postgres://tracker@db-a,db-b/task_tracker?target_session_attrs=primary",  # no ports at all
    "postgresql://tracker:pw@db-a:6432,db-b/task_tracker?target_session_attrs=read-write",  # one port missing
])
def test_a_multi_host_url_reaches_psycopg_intact(url):
    settings = _settings(database_url=url)
    expected = conninfo_to_dict(settings.libpq_url)  # libpq's own reading of the URL
    assert len(expected["host"].split(",")) >= 2 and expected["target_session_attrs"]
    assert _psycopg_receives(settings) == expected


def test_a_single_host_url_only_names_the_driver():
    url = "postgresql://tracker:p%40ss@db:5432/task_tracker?sslmode=require"
    settings = _settings(database_url=url)
    assert settings.sqlalchemy_url == "postgresql+psycopg://tracker:p%40ss@db:5432/task_tracker?sslmode=require"
    assert _psycopg_receives(settings) == conninfo_to_dict(url)


def test_addresses_in_messages_name_every_host():
    assert _settings(database_url=MULTI_HOST).database_address == "db-a:5432,db-b:5433,[::1]:5432"
    uri = "amqp://u:p@mq-0:5672/;amqp://u:p@mq-1/"
    assert _settings(amqp_uri=uri).amqp_address == "mq-0:5672,mq-1:5672"


def _with_hosts(first: str, attrs: str) -> str:
    """The test server's URL with an extra host in front and a target_session_attrs."""
    info = conninfo_to_dict(PG_ADMIN)
    host, port = info.get("host", "127.0.0.1"), info.get("port", "5432")
    auth = info.get("user", "postgres") + (":" + info["password"] if info.get("password") else "")
    return f"postgresql://{auth}@{first},{host}:{port}/{info.get('dbname', 'postgres')}?target_session_attrs={attrs}"


def test_libpq_fails_over_through_sqlalchemy():
    """A refused first host is skipped and the second, a writable server, is used; asking for a
    standby instead fails, so the attribute reached libpq (the test server is a primary)."""
    down = "127.0.0.1:1"  # nothing listens on port 1
    settings = _settings(database_url=_with_hosts(down, "read-write"))
    engine = create_engine(settings.sqlalchemy_url, poolclass=pool.NullPool, connect_args={"connect_timeout": 5})
    with engine.connect() as conn:
        port = conn.execute(text("SELECT current_setting('port')")).scalar_one()
        read_only = conn.execute(text("SELECT pg_is_in_recovery()")).scalar_one()
    assert port == conninfo_to_dict(PG_ADMIN).get("port", "5432") and read_only is False
    with psycopg.connect(settings.libpq_url, connect_timeout=5) as raw:  # the gateway's listener, migrate
        assert raw.info.port == int(port)

    standby_only = _settings(database_url=_with_hosts(down, "standby"))
    engine = create_engine(standby_only.sqlalchemy_url, poolclass=pool.NullPool, connect_args={"connect_timeout": 5})
    with pytest.raises(OperationalError), engine.connect():
        pass


def test_kombu_gets_every_broker_address_as_a_failover_alternate():
    """The services' nameko config and the gateway pass TT_AMQP_URI to kombu as it is; kombu splits
    it on ';' and cycles through the addresses on connection errors (no broker needed here)."""
    uris = [f"amqp://tracker:pw@tt-rabbitmq-server-{i}.tt-rabbitmq-nodes:5672/" for i in range(3)]
    settings = _settings(amqp_uri=";".join(uris))
    assert settings.nameko_config()["AMQP_URI"] == settings.amqp_uri
    conn = Connection(settings.nameko_config()["AMQP_URI"])
    assert conn.alt == uris and conn.hostname == "tt-rabbitmq-server-0.tt-rabbitmq-nodes"
    visited = []
    for _ in range(len(uris)):
        conn.maybe_switch_next()  # what kombu does after each failed connection attempt
        visited.append(conn.hostname)
    assert visited == ["tt-rabbitmq-server-1.tt-rabbitmq-nodes", "tt-rabbitmq-server-2.tt-rabbitmq-nodes",
                       "tt-rabbitmq-server-0.tt-rabbitmq-nodes"]
    assert (conn.userid, conn.password, conn.virtual_host, conn.port) == ("tracker", "pw", "/", 5672)
