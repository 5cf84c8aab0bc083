"""``pip install ./client`` into a fresh virtual environment: the client arrives with its two small
dependencies and nothing of the server (no nameko, kombu, SQLAlchemy, task-tracker), and both
entry points work there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER_ONLY = {"nameko", "kombu", "sqlalchemy", "task-tracker", "eventlet", "psycopg", "falcon", "gunicorn"}


@pytest.mark.slow  # a new virtual environment and a pip install: long, and no server involved
def test_client_installs_alone_in_a_fresh_venv(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    install = subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                              "-c", str(ROOT / "requirements.lock"), str(ROOT / "client")],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    listed = subprocess.run([str(py), "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
                            capture_output=True, text=True, check=True, timeout=60).stdout
    names = {line.split("==")[0].lower() for line in listed.splitlines() if "==" in line}
    assert "task-tracker-client" in names and "httpx" in names and "rich" in names, names
    assert not names & SERVER_ONLY, names & SERVER_ONLY

    cli = subprocess.run([str(venv / "bin" / "ttc"), "--help"], capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0 and "ttc" in cli.stdout and "submit" in cli.stdout, cli.stderr
    imported = subprocess.run([str(py), "-c", "import task_tracker_client as t; print(t.Client, t.Worker)"],
                              capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert imported.returncode == 0 and "Worker" in imported.stdout, imported.stderr
