"""The README's getting-started block, run as a new user would paste it, against a test system."""

from __future__ import annotations

import json
import re
import subprocess

from tests.harness import ROOT


def getting_started_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Getting started", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the Getting started section has exactly one bash block"
    return blocks[0]


def test_getting_started_block_takes_a_task_from_submit_to_closed(system, tmp_path):
    script = getting_started_block()
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, env={"PATH": "/usr/bin:/bin", "TT": system.url})
    assert out.returncode == 0, out.stdout + out.stderr
    answers = [line for line in out.stdout.splitlines() if line.strip()]
    # register, request_access, accept, submit, release, closed count, log, the last log entry
    assert len(answers) == 8, answers
    register, access, accept, submitted, released, closed, logged, last_log = answers
    assert json.loads(register)["content"]["manager"]["username"] == "alice"
    assert json.loads(access) == {"ok": True} and json.loads(accept) == {"ok": True}
    assert isinstance(json.loads(submitted)["content"]["id"], int)
    assert json.loads(released) == {"ok": True, "content": {"updated": True}}
    assert closed == "1"
    assert json.loads(logged) == {"ok": True}
    entry = json.loads(last_log)
    assert entry["level"] == 5 and re.fullmatch(r"task \d+ done", entry["message"])
    assert (tmp_path / "cookies.txt").exists()
