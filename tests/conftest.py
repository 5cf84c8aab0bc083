"""Shared fixtures: one real tracker per test session: 2 gateway processes and 2 replicas of every
service by default (the scaled-out shape of a deployment), so the whole suite proves it."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.harness import Api, System


def pytest_addoption(parser):
    parser.addoption("--tt-replicas", type=int, default=int(os.environ.get("TT_TEST_REPLICAS", "2")),
                     help="processes per service in the test system (task_svc gets at least 2)")
    parser.addoption("--tt-gateways", type=int, default=int(os.environ.get("TT_TEST_GATEWAYS", "2")),
                     help="gunicorn worker processes of the test gateway")


@pytest.fixture(scope="session")
def system(request, tmp_path_factory):
    replicas = request.config.getoption("--tt-replicas")
    gateways = request.config.getoption("--tt-gateways")
    sysm = System.create(tmp_path_factory.mktemp("tracker"))
    try:
        sysm.start("--replicas", str(replicas), "--scale", f"task_svc={max(2, replicas)}",
                   "--gateway-workers", str(gateways))
        # The first manager ever registered is the tracker admin: claim it before any test runs.
        sysm.admin = Api(sysm.url).new_manager("admin")
        yield sysm
    finally:
        sysm.destroy()


@pytest.fixture
def api(system) -> Api:
    return Api(system.url)


@pytest.fixture
def admin(system) -> Api:
    return system.admin


@pytest.fixture
def make_project(admin):
    """Create a project as the admin; returns its id. Fields default to a unique private project."""

    def make(**fields) -> int:
        body = {"name": "p-" + uuid.uuid4().hex[:12], **fields}
        r = admin.post("/project/create", body)
        assert r.status_code == 200, r.text
        return r.json()["content"]["id"]

    return make


@pytest.fixture
def grant(admin):
    """Give a worker a granted access row on a project (request, then accept as admin)."""

    def do(worker: Api, project: int, assign: bool = True, submit: bool = True) -> None:
        r = worker.post("/project/request_access", {"project": project, "assign": assign, "submit": submit})
        assert r.status_code == 200, r.text
        r = admin.post(f"/project/accept_request/{project}/{worker.id}")
        assert r.status_code == 200, r.text

    return do


@pytest.fixture
def feeder(api, make_project, grant):
    """A fresh private project and a worker that may assign from and submit to it: (id, worker)."""
    pid = make_project()
    worker = api.new_worker("feeder")
    grant(worker, pid)
    return pid, worker
