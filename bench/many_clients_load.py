"""The client side of ``bench.many_clients``: thousands of parked long-polls and slow connections
from one process, on raw asyncio streams (a thread or an ``http.client`` per connection would make
the load generator, not the gateway, the thing measured).

Runs in a child process (``run``), so its event loop never delays the normal requests the parent
times. The parent steers it with three shared objects: ``open_slow`` (open the slow connections
now), ``submit_at`` (the ``time.monotonic()`` at which tasks were submitted to the parked project;
0 = not yet; the clock is system-wide) and ``stop``. It reports a progress dict every second and a
final one, through a queue.

A long-poll loops on one keep-alive connection: ``GET /task/get/P?wait=S``; "No task available"
(the wait ran out) before the submit is a re-ask; a task (the project is empty until the submit),
or "No task available" after the submit (the tasks are gone and its wait ran out), is that
connection's outcome and ends it.
A slow connection either sends nothing (idle) or trickles a request one byte per second; when the
gateway closes it, it connects again after ``slow_pause`` s, as a slowloris client would.
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import time
from collections import Counter
from dataclasses import dataclass, field

TRICKLE_REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def classify(status: int, body: bytes) -> tuple[str, int | None]:
    """A task get's answer: ``("task", id)``, ``("no-task", None)``, ``("status N", None)`` for
    any other HTTP status, ``("bad-body", None)`` for a 200 that is neither."""
    if status != 200:
        return f"status {status}", None
    try:
        doc = json.loads(body)
    except ValueError:
        return "bad-body", None
    if not isinstance(doc, dict):
        return "bad-body", None
    if doc.get("ok") is True:
        task = (doc.get("content") or {}).get("task") or {}
        return ("task", task["id"]) if isinstance(task.get("id"), int) else ("bad-body", None)
    if doc.get("ok") is False and doc.get("message") == "No task available":
        return "no-task", None
    return "bad-body", None


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 answer with a Content-Length (every answer of this gateway has one)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, (await reader.readexactly(length) if length else b"")


@dataclass
class Tally:
    """Everything the child counts; ``snapshot`` is what the parent receives."""

    lp_connected: int = 0  # long-poll connections that have sent their first request
    lp_in_flight: int = 0  # long-poll requests sent and not answered yet (≈ parked in the gateway)
    lp_sent: int = 0
    reasks: int = 0  # "No task available" before the submit: a wait ran out, the client asks again
    before: Counter = field(default_factory=Counter)  # other answers before the submit ("status 503", …)
    errors: Counter = field(default_factory=Counter)  # exceptions: connection refused/reset, timeouts
    final: Counter = field(default_factory=Counter)  # each connection's first answer after the submit
    task_ids: list = field(default_factory=list)
    task_after_s: list = field(default_factory=list)  # submit → answer with a task, seconds
    no_task_after_s: list = field(default_factory=list)
    other_after_s: list = field(default_factory=list)  # (kind, seconds after the submit) of any other answer
    slow_open: int = 0
    slow_connects: int = 0
    slow_closed: int = 0  # closed by the gateway (EOF or reset)
    slow_lifetimes: list = field(default_factory=list)  # seconds from connect to the gateway's close
    slow_bytes: list = field(default_factory=list)  # bytes a trickling connection had sent when closed
    slow_answers: Counter = field(default_factory=Counter)  # a trickle that completed its request
    slow_errors: Counter = field(default_factory=Counter)
    unresolved: int = 0  # long-polls without an answer after the submit when the parent stopped waiting

    def snapshot(self, done: bool = False) -> dict:
        out = {k: (dict(v) if isinstance(v, Counter) else v) for k, v in self.__dict__.items()
               if k not in ("task_ids", "task_after_s", "no_task_after_s", "other_after_s", "slow_lifetimes",
                            "slow_bytes")}
        out["final_answered"] = sum(self.final.values())
        if done:
            out.update(task_ids=self.task_ids, task_after_s=self.task_after_s,
                       no_task_after_s=self.no_task_after_s, other_after_s=self.other_after_s,
                       slow_lifetimes=self.slow_lifetimes,
                       slow_bytes=self.slow_bytes)
        return out


class Load:
    def __init__(self, cfg: dict, stop, open_slow, submit_at) -> None:
        self.cfg = cfg
        self.stop, self.open_slow, self.submit_at = stop, open_slow, submit_at
        self.tally = Tally()
        self.connect_gate = asyncio.Semaphore(cfg["connect_concurrency"])

    def submitted(self) -> float:
        return self.submit_at.value

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with self.connect_gate:
            return await asyncio.wait_for(asyncio.open_connection(self.cfg["host"], self.cfg["port"]), 30)

    async def long_poll(self, request: bytes) -> None:
        t = self.tally
        first = True
        writer = None
        while not self.stop.is_set():
            try:
                if writer is None:
                    reader, writer = await self._connect()
                writer.write(request)
                t.lp_sent += 1
                t.lp_in_flight += 1
                if first:
                    t.lp_connected += 1
                    first = False
                try:
                    status, body = await asyncio.wait_for(read_response(reader), self.cfg["wait"] + 30)
                finally:
                    t.lp_in_flight -= 1
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
                t.errors[type(exc).__name__] += 1
                if writer is not None:
                    writer.close()
                    writer = None
                await asyncio.sleep(1.0)
                continue
            kind, task_id = classify(status, body)
            now = time.monotonic()
            submit = self.submitted()  # set once the submit has committed (its answer came back)
            if kind == "task":  # the project is empty until the submit: any task is from it
                t.final[kind] += 1
                t.task_ids.append(task_id)
                t.task_after_s.append(now - submit if submit else 0.0)
                break
            if submit and now >= submit:
                t.final[kind] += 1
                if kind == "no-task":
                    t.no_task_after_s.append(now - submit)
                    break
                t.other_after_s.append((kind, round(now - submit, 3)))
                await asyncio.sleep(0.5)
            elif kind == "no-task":
                t.reasks += 1
            else:
                t.before[kind] += 1
                await asyncio.sleep(0.5)
        if writer is not None:
            writer.close()

    async def slow(self, trickle: bool) -> None:
        """Hold a connection open without finishing a request; when the gateway closes it, again."""
        t = self.tally
        await asyncio.sleep(random.uniform(0, 2.0))  # spread, so the gateway's closes do not come in waves
        while not self.stop.is_set():
            try:
                reader, writer = await self._connect()
            except (OSError, TimeoutError) as exc:
                t.slow_errors[type(exc).__name__] += 1
                await asyncio.sleep(1.0)
                continue
            t.slow_connects += 1
            t.slow_open += 1
            opened = time.monotonic()
            sent = 0
            closed_by_gateway = False
            try:
                reading = asyncio.ensure_future(read_response(reader))
                while not self.stop.is_set() and not reading.done():
                    if trickle:
                        writer.write(TRICKLE_REQUEST[sent % len(TRICKLE_REQUEST):][:1])
                        sent += 1
                    await asyncio.wait([reading], timeout=1.0)
                if reading.done():
                    try:
                        status, _ = reading.result()
                        t.slow_answers[f"status {status}"] += 1
                    except (asyncio.IncompleteReadError, OSError):
                        closed_by_gateway = True
                else:
                    reading.cancel()
            except OSError as exc:
                t.slow_errors[type(exc).__name__] += 1
                closed_by_gateway = True
            finally:
                t.slow_open -= 1
                writer.close()
            if closed_by_gateway:
                t.slow_closed += 1
                t.slow_lifetimes.append(time.monotonic() - opened)
                if trickle:
                    t.slow_bytes.append(sent)
            await asyncio.sleep(self.cfg["slow_pause"] * random.uniform(0.5, 1.5))

    async def report(self, out) -> None:
        start = time.monotonic()
        while not self.stop.is_set():
            snap = self.tally.snapshot()
            snap["t"] = round(time.monotonic() - start, 1)
            out.put(("progress", snap))
            await asyncio.sleep(1.0)

    async def main(self, out) -> None:
        cfg = self.cfg
        reporter = asyncio.ensure_future(self.report(out))
        requests = [(f"GET /task/get/{cfg['project']}?wait={cfg['wait']} HTTP/1.1\r\nHost: {cfg['host']}\r\n"
                     f"X-Worker-ID: {wid}\r\nX-Secret: {secret}\r\n\r\n").encode() for wid, secret in cfg["idents"]]
        polls = [asyncio.ensure_future(self.long_poll(requests[i % len(requests)])) for i in range(cfg["parked"])]
        while not self.open_slow.is_set() and not self.stop.is_set():
            await asyncio.sleep(0.2)
        idle = round(cfg["slow"] * cfg["idle_share"])
        slows = [asyncio.ensure_future(self.slow(trickle=i >= idle)) for i in range(cfg["slow"])]
        # long-polls end on their first answer after the submit; the parent sets stop at its deadline
        pending = set(polls)
        while pending and not self.stop.is_set():
            _, pending = await asyncio.wait(pending, timeout=0.5)
        self.tally.unresolved = len(pending)
        for poll in pending:
            poll.cancel()
        self.stop.set()
        await asyncio.gather(*slows, return_exceptions=True)
        reporter.cancel()
        out.put(("done", self.tally.snapshot(done=True)))


def run(cfg: dict, out, stop, open_slow, submit_at) -> None:
    """Child process entry point (multiprocessing, spawn)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = cfg["parked"] + cfg["slow"] + 256
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))
    load = Load(cfg, stop, open_slow, submit_at)
    asyncio.run(load.main(out))
