"""``tracker run``: every discovered service and the gateway as one supervised group.

Each process's output is prefixed with its name; a process that dies is restarted (with backoff);
Ctrl-C or SIGTERM stops them all gracefully (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from tracker.plugins import discover

GRACE_SECONDS = 15
COLOURS = ["36", "32", "33", "35", "34", "31", "96", "92", "93", "95"]


@dataclass
class Child:
    name: str
    argv: list[str]
    colour: str
    proc: subprocess.Popen | None = None
    restarts: int = 0
    started: float = field(default=0.0)


class Supervisor:
    def __init__(self, children: list[Child]) -> None:
        self.children = children
        self.stopping = threading.Event()
        self.width = max(len(c.name) for c in children)
        self.lock = threading.Lock()
        self.tty = sys.stdout.isatty()

    def _say(self, child: Child, line: str) -> None:
        label = child.name.ljust(self.width)
        if self.tty:
            label = f"\x1b[{child.colour}m{label}\x1b[0m"
        with self.lock:
            sys.stdout.write(f"{label} | {line}")
            if not line.endswith("\n"):
                sys.stdout.write("\n")
            sys.stdout.flush()

    def _pump(self, child: Child, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in iter(proc.stdout.readline, ""):
            self._say(child, line)

    def _start(self, child: Child) -> None:
        child.proc = subprocess.Popen(
            child.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops children in order
        )
        child.started = time.monotonic()
        threading.Thread(target=self._pump, args=(child, child.proc), daemon=True).start()

    def run(self) -> int:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stopping.set())
        for child in self.children:
            self._start(child)
        while not self.stopping.wait(0.5):
            for child in self.children:
                code = child.proc.poll() if child.proc else None
                if code is None:
                    continue
                ran = time.monotonic() - child.started
                child.restarts = 0 if ran > 30 else child.restarts + 1
                delay = min(10, 2 ** child.restarts) if child.restarts else 0.5
                self._say(child, f"exited with code {code}; restarting in {delay:g} s")
                if self.stopping.wait(delay):
                    break
                self._start(child)
        return self.shutdown()

    def shutdown(self) -> int:
        for child in self.children:
            if child.proc and child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        for child in self.children:
            if not child.proc:
                continue
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._say(child, "did not stop in time; killing")
                child.proc.kill()
                child.proc.wait()
        print("tracker: all processes stopped", flush=True)
        return 0


def build_children(scale: dict[str, int], replicas: int, gateway_workers: int | None) -> list[Child]:
    children: list[Child] = []
    python = sys.executable
    for i, name in enumerate(discover()):
        count = scale.get(name, replicas)
        for n in range(1, count + 1):
            label = name if count == 1 else f"{name}.{n}"
            children.append(Child(label, [python, "-m", "tracker", "serve", name], COLOURS[i % len(COLOURS)]))
    gw = [python, "-m", "tracker", "serve", "gateway"]
    if gateway_workers:
        gw += ["--workers", str(gateway_workers)]
    children.append(Child("gateway", gw, "97"))
    return children
