"""Reliability under chaos: workers cycle tasks while a submitter adds 10,000 of them, and meanwhile
a task_svc replica and a gateway worker are SIGKILLed, RabbitMQ is restarted and PostgreSQL is
restarted (all private to this test, see infra.py).

The workload, its clients and the checks are workload.py's (README.md lists them). The counts are
printed (``-s``), written to ``<tmp>/chaos_summary.json`` and shown in pytest's terminal summary;
every response is in ``<tmp>/responses.jsonl`` and the tracker's output in ``<tmp>/system.log``
(both under the test's tmp dir, printed at the end).
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.chaos.workload import Run, Sizes, run_chaos, wait_recovered
from tests.harness import gateway_worker_pids, service_pids

SIZES = Sizes.from_env()
EVENT_AT = [float(x) for x in os.environ.get("TT_CHAOS_EVENT_AT", "8,22,36,52").split(",")]
EVENTS = os.environ.get("TT_CHAOS_EVENTS", "kill_task_svc,kill_gateway_worker,restart_rabbitmq,restart_postgres")


# --- chaos ---------------------------------------------------------------------------------------
def chaos_loop(run: Run, stack, t0: float, results: list[dict]) -> None:
    system = stack.system

    def kill_task_svc():
        victim = service_pids(system, "task_svc")[0]
        os.kill(victim, signal.SIGKILL)

        def replaced():
            pids = service_pids(system, "task_svc")
            return None if victim not in pids and len(pids) >= system.replicas else "task_svc not replaced yet"

        return {"pid": victim}, replaced

    def kill_gateway_worker():
        victim = gateway_worker_pids(system)[0]
        os.kill(victim, signal.SIGKILL)

        def replaced():
            pids = gateway_worker_pids(system)
            return None if victim not in pids and len(pids) >= system.gateway_workers else "gateway worker missing"

        return {"pid": victim}, replaced

    def restart_rabbitmq():
        stack.rabbit.stop()
        time.sleep(3)
        stack.rabbit.start()
        return {}, None

    def crash_rabbitmq():
        stack.rabbit.kill()
        time.sleep(3)
        stack.rabbit.start()
        return {}, None

    def restart_postgres():
        stack.pg.stop("fast")
        time.sleep(3)
        stack.pg.start()
        return {}, None

    def crash_postgres():
        stack.pg.kill()
        time.sleep(3)
        stack.pg.start()
        return {}, None

    actions = {f.__name__: f for f in (kill_task_svc, kill_gateway_worker, restart_rabbitmq, crash_rabbitmq,
                                       restart_postgres, crash_postgres)}
    names = [n.strip() for n in EVENTS.split(",") if n.strip()]
    at = EVENT_AT + [EVENT_AT[-1] + 14 * (i + 1) for i in range(len(names) - len(EVENT_AT))]
    for name, when in zip(names, at, strict=True):
        pause = t0 + when - time.monotonic()
        if pause > 0 and run.stop.wait(pause):
            return
        started = time.monotonic()
        begin = run.rec.event(name)
        try:
            info, replaced = actions[name]()
        except Exception as exc:  # noqa: BLE001 - the injection itself failed: report it
            results.append(run.rec.event(f"{name}: injection failed", error=repr(exc)))
            continue
        run.rec.event(f"{name}: done", seconds=round(time.monotonic() - started, 2), **info)
        done = wait_recovered(stack, run.rec, name, started, replaced)
        results.append({**begin, "recovery": done})
        time.sleep(3)  # let the retries of this event settle before the next one


def test_chaos(chaos_stack, tmp_path, chaos_summary):
    run_chaos(chaos_stack, tmp_path, chaos_summary, chaos_loop, SIZES, EVENTS)


pytestmark = pytest.mark.timeout(int(SIZES.run_limit) + 600)
