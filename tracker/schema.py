"""The database schema: one shared ``MetaData``, the tables each service declares, and the
infrastructure tables of tracker/ itself.

Each service declares its own tables in ``services/<svc>/tables.py`` on ``metadata`` (the plugin
names that module: tracker.plugins.Plugin.tables). ``merged()`` imports every plugin's tables module
through plugin discovery, so Alembic (migrations/env.py) and anything that reads another service's
table by name (``table()``) see the whole schema without importing a service module directly.

Ownership (docs/ARCHITECTURE.md, enforced by tests/test_ownership.py): a table is written by the
service that declares it; the tables below by the tracker/ module named with each. Reads of another
service's tables are allowed only where docs/ARCHITECTURE.md lists them.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module

from sqlalchemy import BigInteger, Column, Index, MetaData, Table, Text, text
from sqlalchemy.dialects.postgresql import TIMESTAMP

metadata = MetaData()
C_TEXT = Text(collation="C")

# --- shared: outcomes of state-changing calls (tracker/idempotency.py) --------------------------
# The reply of each state-changing RPC, stored in the transaction of its effect: a redelivered
# request (a replica died after commit, before the broker's ack) or a client retry with the same
# Idempotency-Key finds it and gets the first answer instead of a second effect.
rpc_outcome = Table(
    "rpc_outcome",
    metadata,
    Column("request", Text, primary_key=True),
    Column("reply", Text, nullable=False),
    Column("expires", TIMESTAMP(timezone=True), nullable=False),
)
Index("rpc_outcome_expires", rpc_outcome.c.expires)

# --- shared: abuse throttles (tracker/throttle.py) ----------------------------------------------
# One row per counted event (a failed login, a worker creation), keyed by what is throttled (a
# digest of "kind, subject"), so a sliding 10-minute window is a count over an index range and
# every replica sees the same counts. manager_svc writes login failures, worker_svc creations.
throttle_event = Table(
    "throttle_event",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("subject", Text, nullable=False),
    Column("at", TIMESTAMP(timezone=True), nullable=False, server_default=text("clock_timestamp()")),
)
Index("throttle_event_subject_at", throttle_event.c.subject, throttle_event.c.at)
Index("throttle_event_at", throttle_event.c.at)


# Owner of each table declared here: tracker/ infrastructure that every service uses in its own
# transaction (the reply store of every exactly-once call, the abuse throttles).
INFRASTRUCTURE = {"rpc_outcome": "tracker/idempotency.py", "throttle_event": "tracker/throttle.py"}


@cache
def owners() -> dict[str, str]:
    """Table name -> the plugin that declares it (or ``tracker`` for the tables above)."""
    from tracker.plugins import discover

    found = {name: "tracker" for name in INFRASTRUCTURE}
    for plugin in discover().values():
        if plugin.tables is None:
            continue
        for value in vars(import_module(plugin.tables)).values():
            mine = isinstance(value, Table) and value.metadata is metadata
            if mine and found.setdefault(value.name, plugin.name) != plugin.name:
                raise RuntimeError(f"table {value.name!r} declared by {found[value.name]} and {plugin.name}")
    undeclared = set(metadata.tables) - set(found)
    if undeclared:
        raise RuntimeError(f"tables on the shared metadata that no plugin's tables module names: {sorted(undeclared)}")
    return found


def merged() -> MetaData:
    """``metadata`` with every plugin's tables declared on it (for Alembic and drift checks)."""
    owners()
    return metadata


def table(name: str) -> Table:
    """A table of the merged schema by name: how tracker/ and a service read a table another
    service declares, without importing that service (reads listed in docs/ARCHITECTURE.md)."""
    return merged().tables[name]
