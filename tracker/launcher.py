"""``tracker run``: every discovered service and the gateway as one supervised group.

Each process's output is prefixed with its name; a process that dies is restarted (with backoff);
Ctrl-C or SIGTERM stops them all gracefully (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import errno
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from tracker.plugins import discover

GRACE_SECONDS = 15
BIND_FAILURE = "Address already in use"  # what gunicorn prints while it retries a busy port
COLOURS = ["36", "32", "33", "35", "34", "31", "96", "92", "93", "95"]


@dataclass
class Child:
    name: str
    argv: list[str]
    colour: str
    proc: subprocess.Popen | None = None
    restarts: int = 0
    started: float = field(default=0.0)


def port_in_use(bind: str) -> str | None:
    """Why the gateway could not listen on ``host:port`` now, or None. Bound with SO_REUSEADDR as
    gunicorn binds, so a port left in TIME_WAIT by a previous run is not reported busy."""
    host, _, port = bind.rpartition(":")
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host.strip("[]") or "0.0.0.0", int(port)))
        except OSError as exc:
            return "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
    return None


class Supervisor:
    def __init__(self, children: list[Child]) -> None:
        self.children = children
        self.stopping = threading.Event()
        self.width = max(len(c.name) for c in children)
        self.lock = threading.Lock()
        self.tty = sys.stdout.isatty()
        self.failure: str | None = None  # set when the group must stop with an error

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
            if child.name == "gateway" and BIND_FAILURE in line and not self.stopping.is_set():
                # Taken since the start-up check: retrying would only restart it forever.
                self.failure = "the gateway cannot listen: address already in use. Stop what uses it, or set TT_BIND."
                self.stopping.set()

    def _start(self, child: Child) -> None:
        child.proc = subprocess.Popen(
            child.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops children in order
        )
        child.started = time.monotonic()
        threading.Thread(target=self._pump, args=(child, child.proc), daemon=True).start()

    def run(self) -> int:
        previous = {sig: signal.signal(sig, lambda *_: self.stopping.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            return self._run()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _run(self) -> int:
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
        if self.failure:
            print(f"tracker: {self.failure}", file=sys.stderr, flush=True)
            return 1
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
