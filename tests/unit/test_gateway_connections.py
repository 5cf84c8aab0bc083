"""How many connections one gateway process serves (TT_GATEWAY_CONNECTIONS): gunicorn's gevent worker
accepts at most ``worker_connections`` at once (1,000 unless told), and each needs a file descriptor;
parked long-polls and idle keep-alive clients hold theirs (bench/many_clients.py)."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from tracker import cli
from tracker.cli import FD_MARGIN, fd_soft_limit
from tracker.settings import get_settings

INF = -1


@pytest.mark.parametrize(("wanted", "soft", "hard", "expected"), [
    (20_256, 1_024, 1_048_576, 20_256),  # raised to what is wanted
    (20_256, 1_024, 4_096, 4_096),  # no further than the hard limit
    (20_256, 65_536, 1_048_576, 65_536),  # never lowered
    (20_256, 1_024, INF, 20_256),
    (20_256, INF, INF, INF),
])
def test_fd_soft_limit(wanted, soft, hard, expected):
    assert fd_soft_limit(wanted, soft, hard, INF) == expected


class Exec(Exception):
    """os.execv never returns: the fake stops cmd_serve the same way (what follows the exec
    imports tracker.serve, whose eventlet monkey-patching would change every later test)."""


def test_the_gateway_is_started_with_the_configured_worker_connections(monkeypatch):
    monkeypatch.setenv("TT_GATEWAY_CONNECTIONS", "300")  # below any soft limit: nothing to raise
    get_settings.cache_clear()

    def execv(path, argv):
        raise Exec(argv)

    monkeypatch.setattr(os, "execv", execv)
    try:
        with pytest.raises(Exec) as started:
            cli.cmd_serve(SimpleNamespace(name="gateway", workers=None))
    finally:
        get_settings.cache_clear()
    argv = started.value.args[0]
    assert argv[argv.index("--worker-connections") + 1] == "300"
    assert argv[argv.index("--worker-class") + 1] == "gevent"


def test_the_default_is_far_above_gunicorns(monkeypatch):
    monkeypatch.delenv("TT_GATEWAY_CONNECTIONS", raising=False)
    get_settings.cache_clear()
    try:
        assert get_settings().gateway_connections >= 20_000 > 1_000
    finally:
        get_settings.cache_clear()
    assert FD_MARGIN > 0
