"""Test tiers, and the shared fixtures of the end-to-end tier.

Tiers (markers, set here from where a test lives; README "Test it"):
- ``unit``: tests/unit, no broker and no system: the gateway in-process with a fake RPC client,
  stores inside a rolled-back transaction. Seconds.
- ``e2e``: every other test of the default run, against real systems started with ``tracker run``.
- ``fuzz``, ``chaos``, ``slow``: the long parts, left out of a plain run. Selected by ``-m`` (e.g.
  ``./test.sh -m fuzz``), by ``--all``, or by naming their directory or file on the command line.

The end-to-end fixtures: one real tracker per pytest process (``./test.sh`` runs two, with
pytest-xdist), 2 gateway processes and 2 replicas of every service by default (the scaled-out
shape of a deployment).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests.harness import Api, System, join_teardowns

HERE = Path(__file__).resolve().parent
TIERS = {
    "unit": "no broker, no system: in-process gateway with a fake RPC client, stores in a rolled-back transaction",
    "e2e": "end to end against a real system (the default run's other tests)",
    "fuzz": "schemathesis against the live /openapi.json (tests/fuzz; long, not in the default run)",
    "chaos": "kills replicas and restarts private servers under load (tests/chaos; long, not in the default run)",
    "slow": "long end-to-end checks (floods, throttle windows, long waits; not in the default run)",
}
LONG = ("fuzz", "chaos", "slow")
DIRECTORIES = {"unit": HERE / "unit", "fuzz": HERE / "fuzz", "chaos": HERE / "chaos"}
# Run by one process when the suite runs in several (pytest-xdist): the long tiers, whose private
# servers and floods are not made to run side by side, and the browser tests, which share one
# system and one Chromium.
BROWSER = HERE / "browser"


def pytest_configure(config):
    for name, text in TIERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")


def _tier_of(path: Path) -> str | None:
    return next((tier for tier, directory in DIRECTORIES.items() if directory in path.parents), None)


def _named(config) -> list[Path]:
    """Files and directories named on the command line (a ``file::test`` counts as its file)."""
    named = []
    for arg in config.invocation_params.args:
        if not arg.startswith("-"):
            path = Path(config.invocation_params.dir, arg.split("::", 1)[0]).resolve()
            if path.exists():
                named.append(path)
    return named


def _asked_for(item, tier: str, named: list[Path]) -> bool:
    """A long test runs when its file is named, or a directory inside its tier's (``pytest tests/chaos``)."""
    path = Path(str(item.fspath)).resolve()
    directory = DIRECTORIES.get(tier)
    return any(p == path or (directory is not None and p.is_dir() and (p == directory or directory in p.parents))
               for p in named)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Mark each test with its tier; without ``-m`` or ``--all``, leave the long tiers out."""
    for item in items:
        path = Path(str(item.fspath)).resolve()
        tier = _tier_of(path)
        if tier is not None:
            item.add_marker(tier)
        elif not any(item.get_closest_marker(t) for t in LONG):
            item.add_marker("e2e")
        group = tier if tier in LONG else ("browser" if BROWSER in path.parents else None)
        if group is not None:  # one pytest-xdist process takes the whole group (./test.sh: --dist loadgroup)
            item.add_marker(pytest.mark.xdist_group(group))
    if config.getoption("--all") or config.option.markexpr:
        return
    named = _named(config)
    kept, left_out = [], []
    for item in items:
        tier = next((t for t in LONG if item.get_closest_marker(t)), None)
        (left_out if tier and not _asked_for(item, tier, named) else kept).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


def pytest_sessionfinish(session):
    join_teardowns()  # systems of single modules stop in the background (System.destroy_later)


def pytest_addoption(parser):
    parser.addoption("--all", action="store_true", help="run every tier, the long ones (fuzz, chaos, slow) too")
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
