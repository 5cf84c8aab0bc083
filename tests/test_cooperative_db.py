"""Service processes must not block on the database: psycopg 3 under eventlet (measured trap).

Ten concurrent ``pg_sleep(0.5)`` queries through the services' own engine, in a process patched
exactly as ``tracker serve`` patches it, must overlap (≈0.5 s), not queue up (≈5 s). The control
run, with psycopg's blocking C wait function forced, shows that the check can fail.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.harness import ROOT

PROBE = """
import time
import tracker.serve  # noqa: F401 - eventlet patching exactly as a service process
import eventlet
from sqlalchemy import text
from tracker.db import get_engine

def sleep_query():
    with get_engine().connect() as conn:
        conn.execute(text("SELECT pg_sleep(0.5)"))

sleep_query()  # warm the pool's first connection
pool = eventlet.GreenPool()
start = time.monotonic()
for _ in range(10):
    pool.spawn(sleep_query)
pool.waitall()
print(f"{time.monotonic() - start:.3f}")
"""


def run_probe(system, wait_func: str | None) -> float:
    env = {**system.env, "TT_DB_POOL_SIZE": "12"}
    env.pop("PSYCOPG_WAIT_FUNC", None)
    if wait_func:
        env["PSYCOPG_WAIT_FUNC"] = wait_func
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return float(out.stdout.strip().splitlines()[-1])


def test_service_database_calls_are_cooperative(system):
    elapsed = run_probe(system, None)  # the services' own default
    assert elapsed < 2.0, f"10 × pg_sleep(0.5) took {elapsed:.2f} s: database calls block the process"


@pytest.mark.slow  # the control experiment (seconds of a blocked process); the check itself runs by default
def test_control_blocking_wait_function_is_detected(system):
    if os.environ.get("TT_SKIP_CONTROL"):
        return
    elapsed = run_probe(system, "wait_c")
    assert elapsed > 3.0, f"the blocking control took only {elapsed:.2f} s; the probe cannot tell"
