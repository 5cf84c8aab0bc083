"""Reliability under chaos: workers cycle tasks while a submitter adds 10,000 of them, and meanwhile
a task_svc replica and a gateway worker are SIGKILLed, RabbitMQ is restarted and PostgreSQL is
restarted (all private to this test, see infra.py).

Clients behave like real ones: a 503, a connection error or a timeout is retried; submits and
releases carry an ``Idempotency-Key`` header and a retry resends the SAME request with the SAME key
until a definitive answer arrives. Every response is recorded. At the end (queue drained, or no
progress any more) the test checks the §8 guarantees:

- every task of a bulk answered 200 exists exactly once (by hash64), none that was not accepted;
- the bulk answers add up (``submitted`` sums to the stored tasks, no ``duplicates``: all hashes are
  unique, so a replayed bulk must answer its first reply);
- every task is CLOSED; the project's ``closed_task_count`` and the workers' counters equal the
  number of CLOSED tasks, and each closure was answered ``updated: true`` to exactly one release;
- no task was held by two workers at once, none was handed out after it closed;
- no response was a 500, no other unexpected status.

The counts are printed (``-s``), written to ``<tmp>/chaos_summary.json`` and shown in pytest's
terminal summary; every response is in ``<tmp>/responses.jsonl`` and the tracker's output in
``<tmp>/system.log`` (both under the test's tmp dir, printed at the end).
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.chaos.workload import Run, Sizes, cast, failure_details, print_compact, run_workload, wait_recovered
from tests.harness import gateway_worker_pids, service_pids

SIZES = Sizes.from_env("TT_CHAOS")
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
    stack = chaos_stack
    system = stack.system
    people = cast(system, SIZES.workers)
    assert system.consumers()["task_svc"] >= 2

    setup = {"workers": SIZES.workers, "bulks": SIZES.bulks, "bulk_size": SIZES.bulk_size,
             "replicas": system.replicas, "gateway_workers": system.gateway_workers, "events": EVENTS}
    outcome = run_workload(system, people, SIZES, lambda run, t0, results: chaos_loop(run, stack, t0, results),
                           tmp_path=tmp_path, setup=setup)
    summary, checks = outcome.summary, outcome.checks
    path = chaos_summary(summary, tmp_path / "chaos_summary.json")
    print_compact(summary, path)
    failed = [name for name, ok in checks.items() if not ok]
    assert not failed, f"chaos checks failed: {failed}; {failure_details(summary)}; summary: {path}"


pytestmark = pytest.mark.timeout(int(SIZES.limit) + 600)
