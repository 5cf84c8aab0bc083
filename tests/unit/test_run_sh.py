"""``./run.sh`` picks classic service queues for the local single-node broker, and only there."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

RUN_SH = Path(__file__).resolve().parents[2] / "run.sh"


def _queue_type_after_run_sh(env: dict[str, str]) -> str:
    """Run run.sh's queue-type rule (its ``if … fi`` block) in bash with ``env``; the result."""
    block = re.search(r"^if .*TT_QUEUE_TYPE.*?^fi$", RUN_SH.read_text(), re.S | re.M)
    assert block, "run.sh no longer chooses the queue type"
    clean = {k: v for k, v in os.environ.items() if k not in ("TT_QUEUE_TYPE", "TT_AMQP_URI")}
    out = subprocess.run(["bash", "-c", f"set -euo pipefail\n{block.group(0)}\necho \"${{TT_QUEUE_TYPE:-}}\""],
                         env={**clean, **env}, capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.mark.parametrize(("env", "expected"), [
    ({}, "classic"),  # the local broker: one node
    ({"TT_QUEUE_TYPE": "quorum"}, "quorum"),  # told
    ({"TT_AMQP_URI": "amqp://a:5672/;amqp://b:5672/"}, ""),  # a broker of its own: tracker's default
])
def test_run_sh_queue_type(env, expected):
    assert _queue_type_after_run_sh(env) == expected


def test_run_sh_starts_tracker_run_after_the_rule():
    text = RUN_SH.read_text()
    assert text.index("export TT_QUEUE_TYPE=classic") < text.index('exec .venv/bin/tracker run "$@"')
