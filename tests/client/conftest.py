"""Fixtures for the client tests: real workers of the Python client (``task_tracker_client``) on the
session's tracker, with access granted the way a manager would."""

from __future__ import annotations

import pytest
from task_tracker_client import Client, RetryPolicy

from tests.harness import Api


def as_api(system, client: Client) -> Api:
    """The harness's raw HTTP view of a client's worker (for ``grant`` and raw checks)."""
    api = Api(system.url, {"X-Worker-ID": str(client.worker_id), "X-Secret": client.secret})
    api.id, api.secret = client.worker_id, client.secret
    return api


@pytest.fixture
def new_client(system, grant):
    """``new_client(project=None, assign=True, submit=True, url=None, **client_kwargs)``: a freshly
    created worker as a ``Client``, with access granted on ``project``. Closed at teardown."""
    made: list[Client] = []

    def make(project: int | None = None, assign: bool = True, submit: bool = True, url: str | None = None,
             alias: str = "client-test", **kwargs) -> Client:
        kwargs.setdefault("retry", RetryPolicy(attempts=12, base=0.05, cap=2.0))
        client = Client.create_worker(system.url, alias=alias, **kwargs)
        if project is not None:
            grant(as_api(system, client), project, assign=assign, submit=submit)
        if url is not None:  # same identity, another address (e.g. a lossy proxy)
            other = Client(url, client.worker_id, client.secret, **kwargs)
            client.close()
            client = other
        made.append(client)
        return client

    yield make
    for c in made:
        c.close()


def task_rows(system, project: int) -> list[tuple]:
    """(id, status, assignee, held) of every task of the project, by id."""
    return system.sql("SELECT id, status, assignee, status = 1 AND assignee IS NOT NULL AND "
                      "(lease_deadline IS NULL OR lease_deadline > now()) FROM task WHERE project = %s ORDER BY id",
                      project)
