"""``tracker probe NAME``: is this service process really consuming its RPC queue?

A nameko service has no port to probe, and "the process exists" says nothing about whether it still
takes requests (a lost broker connection, a stalled consume loop). So the service checks itself:
every few seconds a green thread inside it (tracker/serve.py) asks the nameko queue consumer whether
it is connected and consuming, and only then refreshes a heartbeat file. This module owns that file's
format on both sides; it imports nothing heavy because probes run every few seconds in every pod.

Files: ``<TT_HEARTBEAT_FILE>.<pid>``, where TT_HEARTBEAT_FILE may contain ``{service}`` and defaults
to ``/tmp/tt-heartbeat-{service}``. The pid suffix lets several replicas of one service share a
machine (``tracker run --scale task_svc=2``) without sharing a file; in a container there is one.
The file's mtime is the last time the service was seen consuming; its JSON body says why not, if not.
``tracker probe task_svc`` passes iff every live task_svc process (at least one) has a fresh file.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TEMPLATE = "/tmp/tt-heartbeat-{service}"
DEFAULT_MAX_AGE = 30.0
INTERVAL = 5.0  # seconds between two self-checks inside the service
GATEWAY = "gateway"


def heartbeat_base(service: str) -> Path:
    template = os.environ.get("TT_HEARTBEAT_FILE") or DEFAULT_TEMPLATE
    return Path(template.replace("{service}", service))


def heartbeat_path(service: str, pid: int | None = None) -> Path:
    base = heartbeat_base(service)
    return base.with_name(f"{base.name}.{pid or os.getpid()}")


def max_age_default() -> float:
    return float(os.environ.get("TT_HEARTBEAT_MAX_AGE") or DEFAULT_MAX_AGE)


class Heartbeat:
    """The service side: one file per process, rewritten atomically after every self-check."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.path = heartbeat_path(service)

    def start(self) -> None:
        """A file left by an earlier process with the same pid (pid 1 in a restarted container with a
        persistent /tmp) must not vouch for this one: start as 'never consuming' (mtime 0). Files of
        processes that are gone (killed, so they could not clean up) are removed on the way."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for path, pid in _heartbeat_files(heartbeat_base(self.service)):
            if not _alive(pid):
                path.unlink(missing_ok=True)
        self.beat("starting")

    def beat(self, problem: str | None) -> None:
        """Record one self-check. Consuming: the mtime becomes now. Not consuming: the body says why
        and the mtime keeps the last time it was consuming, so the probe's age check still holds."""
        last_ok = 0.0
        if problem is not None:
            with contextlib.suppress(FileNotFoundError):
                last_ok = self.path.stat().st_mtime
        body = {"service": self.service, "pid": os.getpid(), "consuming": problem is None,
                "problem": problem, "checked_at": time.time()}
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(body))
        if problem is not None:
            os.utime(tmp, (time.time(), last_ok))
        os.replace(tmp, self.path)

    def remove(self) -> None:
        for path in (self.path, self.path.with_name(self.path.name + ".tmp")):
            path.unlink(missing_ok=True)


@dataclass(frozen=True)
class Beat:
    pid: int
    age: float
    problem: str | None


def _heartbeat_files(base: Path) -> list[tuple[Path, int]]:
    return [(path, int(path.name[len(base.name) + 1:])) for path in base.parent.glob(base.name + ".*")
            if path.name[len(base.name) + 1:].isdigit()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, another user's
    return True


def _runs(pid: int, service: str) -> bool:
    """Is ``pid`` a live process serving ``service``? A file whose process died (killed -9, so it
    could not clean up) or whose pid now belongs to another program is a leftover, not a failure."""
    if not _alive(pid):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no procfs (macOS): trust the pid
    except OSError:
        return True
    return service.encode() in argv


def read_beats(service: str, pid: int | None = None) -> list[Beat]:
    files = [(heartbeat_path(service, pid), pid)] if pid else _heartbeat_files(heartbeat_base(service))
    beats = []
    for path, owner in files:
        if not _runs(owner, service):
            continue
        try:
            mtime = path.stat().st_mtime
            body = json.loads(path.read_text() or "{}")
        except (OSError, ValueError):
            continue  # vanished between listing and reading (process exiting)
        beats.append(Beat(owner, time.time() - mtime, body.get("problem")))
    return sorted(beats, key=lambda b: b.pid)


def check_service(service: str, max_age: float, pid: int | None = None) -> tuple[bool, list[str]]:
    beats = read_beats(service, pid)
    if not beats:
        where = heartbeat_path(service, pid) if pid else f"{heartbeat_base(service)}.<pid>"
        return False, [f"{service}: no running process has a heartbeat file ({where}); not started yet?"]
    lines, ok = [], True
    for beat in beats:
        if beat.age <= max_age:
            lines.append(f"{service} pid {beat.pid}: consuming (checked {beat.age:.0f} s ago)")
            continue
        ok = False
        since = "never" if beat.age > time.time() - 1 else f"not for {beat.age:.0f} s"
        why = beat.problem or f"no self-check for {beat.age:.0f} s (process stuck?)"
        lines.append(f"{service} pid {beat.pid}: NOT consuming ({since}; max {max_age:g} s): {why}")
    return ok, lines


def check_gateway(timeout: float = 3.0) -> tuple[bool, list[str]]:
    """For Docker/compose health checks (Kubernetes probes the gateway with httpGet directly)."""
    from tracker.settings import get_settings

    host, _, port = get_settings().bind.rpartition(":")
    host = "127.0.0.1" if host in ("", "0.0.0.0", "[::]") else host
    url = f"http://{host}:{port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - local fixed URL
            return resp.status == 200, [f"gateway: {url} answered {resp.status}"]
    except Exception as exc:  # noqa: BLE001 - refused, timeout, 503: all mean "not ready"
        return False, [f"gateway: {url} failed: {exc}"]


def detect_roles() -> set[str]:
    """The parts running here, read from the process table: ``tracker serve NAME`` (a service) or
    gunicorn with the gateway app. In a container that is one, so one image-wide HEALTHCHECK
    (``tracker probe`` without a name) serves the gateway, every service and the migration job."""
    roles: set[str] = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = [a.decode(errors="replace") for a in cmdline.read_bytes().split(b"\0") if a]
        except OSError:
            continue
        if "gateway.app:create_app()" in argv:
            roles.add(GATEWAY)
        for i, arg in enumerate(argv[:-2]):
            if arg.endswith("tracker") and argv[i + 1] == "serve":
                roles.add(argv[i + 2])
    return roles


def run(name: str | None, max_age: float | None, pid: int | None) -> int:
    if name is None:
        roles = detect_roles()
        if not roles:
            print("tracker probe: no `tracker serve` process here (a one-shot job?); nothing to probe")
            return 0
        if len(roles) > 1:
            print(f"tracker probe: several parts run here ({', '.join(sorted(roles))}); name one", file=sys.stderr)
            return 2
        name = roles.pop()
    if name == GATEWAY:
        ok, lines = check_gateway()
    else:
        ok, lines = check_service(name, max_age if max_age is not None else max_age_default(), pid)
    print("\n".join(lines), file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1
