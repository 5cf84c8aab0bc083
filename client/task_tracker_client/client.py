"""The synchronous client: one worker identity, one pooled HTTP connection set, retries done right.

Retry rules (why they are safe):
- Connection errors, timeouts, and 502/503/504 answers are retried with exponential backoff and
  full jitter (sleep a uniform random time in [0, min(cap, base·2^attempt)]), so a fleet that lost a
  gateway does not come back in lock-step.
- Submits, bulk chunks, task gets and releases carry an ``Idempotency-Key`` that stays the same
  across the retries of one call: the server answers a retry with the first answer and changes
  nothing, so a retry never stores a task twice, never loses a release, and a get whose answer was
  lost hands the *same* tasks out again instead of stranding them under a lease.
- A 429 waits exactly the advertised ``rate_limit_delay`` plus a little jitter, then asks again; it
  does not count as a failed attempt.
- Every other 4xx raises a typed error (``errors.py``) carrying the status and the server's message.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpcore

from task_tracker_client.errors import (
    Conflict,
    NotFound,
    RateLimited,
    TrackerError,
    Unavailable,
    error_for,
)
from task_tracker_client.models import BulkResult, Project, Result, Task

DEFAULT_URL = "http://127.0.0.1:3010"
RETRY_STATUSES = frozenset({502, 503, 504})
LOG_LEVELS = {"trace": "trace", "debug": "trace", "info": "info", "warn": "warn", "warning": "warn",
              "error": "error", "critical": "error", "fatal": "error"}
MAX_BULK_ITEMS = 10_000            # contract §6.5
MAX_BULK_BYTES = 8 * 1024 * 1024   # half the server's 16 MiB body limit: a chunk is cut before it


@dataclass
class RetryPolicy:
    """How hard to try. ``attempts`` bounds tries on connection errors and 5xx; 429s are waited out
    as long as each advertised delay is at most ``max_rate_limit_wait`` seconds."""

    attempts: int = 10
    base: float = 0.1
    cap: float = 10.0
    max_rate_limit_wait: float = 300.0
    rate_limit_jitter: float = 0.05

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base·2^attempt)]."""
        return random.uniform(0.0, min(self.cap, self.base * (2 ** attempt)))

    def rate_limit_sleep(self, delay: float) -> float:
        """The advertised delay plus up to ``rate_limit_jitter`` (and at most 10 % of the delay)."""
        return delay + random.uniform(0.0, min(self.rate_limit_jitter, 0.1 * delay) if delay > 0 else 0.01)


@dataclass
class ClientStats:
    """Counters a program (or a test) can read: what the retry machinery actually did."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    rate_limit_sleep: float = 0.0
    max_rate_limit_sleep: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count_request(self) -> None:
        """The hot path's counter (one per HTTP request): no keyword dict, no loop."""
        with self._lock:
            self.requests += 1

    def add(self, **deltas: float) -> None:
        with self._lock:
            for name, value in deltas.items():
                setattr(self, name, getattr(self, name) + value)
            if "rate_limit_sleep" in deltas:
                self.max_rate_limit_sleep = max(self.max_rate_limit_sleep, deltas["rate_limit_sleep"])


class _Connections:
    """Keep-alive HTTP/1.1 connections to the tracker, handed out last-in first-out.

    A request takes an idle connection (or opens one), sends, reads the whole answer and gives it
    back; at most ``size`` requests are in flight (more wait for a connection, as in httpcore's
    pool). A connection the server closed or that idled past ``keepalive_expiry`` is dropped when
    taken, as httpcore's pool does. The cost is one uncontended lock per request instead of a scan
    of the whole pool."""

    errors = (httpcore.NetworkError, httpcore.TimeoutException, httpcore.RemoteProtocolError)

    def __init__(self, url: str, size: int, keepalive_expiry: float = 30.0) -> None:
        base = httpcore.URL(url)
        if base.scheme not in (b"http", b"https") or not base.host:
            raise ValueError(f"the tracker URL must be http(s)://host[:port][/prefix], not {url!r}")
        self.origin = base.origin
        self.scheme, self.host, self.port = base.scheme, base.host, base.port
        self.prefix = base.target.rstrip(b"/")
        self.host_header = _host_header(url)
        self.size = max(1, int(size))
        self.keepalive_expiry = keepalive_expiry
        self._idle: list[httpcore.HTTPConnection] = []
        self._busy = 0
        self._cond = threading.Condition(threading.Lock())

    def request(self, method: str, target: str, headers: list, content: bytes | None,
                extensions: dict) -> tuple[int, bytes]:
        """Send one request; returns (status, body). Raises httpcore's exceptions."""
        url = httpcore.URL(scheme=self.scheme, host=self.host, port=self.port,
                           target=self.prefix + target.encode())
        req = httpcore.Request(method, url, headers=headers, content=content, extensions=extensions)
        conn = self._take(extensions["timeout"]["pool"])
        try:
            resp = conn.handle_request(req)
            try:
                data = resp.read()
            finally:
                resp.close()
        except BaseException:
            conn.close()
            self._give_back(None)
            raise
        self._give_back(conn)
        return resp.status, data

    def _take(self, timeout: float) -> httpcore.HTTPConnection:
        with self._cond:
            if self._busy >= self.size and not self._cond.wait_for(lambda: self._busy < self.size, timeout):
                raise httpcore.PoolTimeout(f"no free connection in {timeout:g} s (pool_size {self.size})")
            self._busy += 1
            while self._idle:
                conn = self._idle.pop()
                if not conn.has_expired():
                    return conn
                conn.close()
        return httpcore.HTTPConnection(self.origin, keepalive_expiry=self.keepalive_expiry)

    def _give_back(self, conn: httpcore.HTTPConnection | None) -> None:
        with self._cond:
            self._busy -= 1
            if conn is not None:
                if conn.is_idle():
                    self._idle.append(conn)
                else:
                    conn.close()
            self._cond.notify()

    def close(self) -> None:
        """Close the idle connections (a later request opens a new one, as with httpcore's pool)."""
        with self._cond:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _host_header(url: str) -> bytes:
    """The Host header: the URL's host (IPv6 in brackets) and its port unless it is the default."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    default = 443 if parts.scheme == "https" else 80
    return (host if parts.port in (None, default) else f"{host}:{parts.port}").encode("idna")


_dumps = json.JSONEncoder(separators=(",", ":")).encode


def new_key() -> str:
    """A fresh Idempotency-Key (random, 32 hex characters: 128 bits from the OS, like a uuid4 minus
    its fixed version bits, at a fifth of the cost)."""
    return os.urandom(16).hex()


class Client:
    """A worker's connection to the tracker. Thread-safe: one instance serves many threads."""

    def __init__(self, url: str = DEFAULT_URL, worker_id: int | None = None, secret: str | None = None, *,
                 alias: str | None = None, timeout: float = 30.0, retry: RetryPolicy | None = None,
                 pool_size: int = 64, sleep: Callable[[float], None] = time.sleep) -> None:
        self.url = url.rstrip("/")
        self.worker_id = worker_id
        self.secret = secret
        self.alias = alias
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.stats = ClientStats()
        self._sleep = sleep
        self._default_timeouts: tuple[float, dict] | None = None
        headers = [(b"User-Agent", b"task-tracker-client/0.1"), (b"Accept", b"application/json")]
        if worker_id is not None and secret is not None:
            headers += [(b"X-Worker-ID", str(worker_id).encode()), (b"X-Secret", secret.encode())]
        # httpcore is the connection layer httpx is built on (same project, installed with it). The
        # client drives its HTTP/1.1 connections directly: httpx's request/response model cost twice
        # the CPU per request, and httpcore's ConnectionPool scans every connection of the pool for
        # every request under one lock (a third of a 16-thread worker's CPU); a worker fleet's client
        # shares the machine with the tracker.
        self._http = _Connections(self.url, pool_size)
        self._headers = [(b"Host", self._http.host_header), *headers]

    # --- identity -------------------------------------------------------------------------------------
    @classmethod
    def create_worker(cls, url: str = DEFAULT_URL, alias: str | None = None, **kwargs: Any) -> Client:
        """Create a new worker account (its secret is shown only now: ``save`` it)."""
        anonymous = cls(url, **kwargs)
        try:
            body = anonymous.request("POST", "/worker/create", {"alias": alias} if alias else {})
        finally:
            anonymous.close()
        worker = body["content"]["worker"]
        return cls(url, worker["id"], worker["secret"], alias=worker.get("alias"), **kwargs)

    def save(self, path: str | os.PathLike) -> None:
        """Write the credentials as JSON, readable by the owner only (mode 0600), atomically."""
        path = Path(path)
        doc = {"url": self.url, "worker_id": self.worker_id, "secret": self.secret, "alias": self.alias}
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # also when the umask or an old file said otherwise
            os.write(fd, (json.dumps(doc, indent=2) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike, url: str | None = None, **kwargs: Any) -> Client:
        """Credentials written by ``save`` (``url`` overrides the stored one)."""
        doc = json.loads(Path(path).read_text())
        return cls(url or doc.get("url") or DEFAULT_URL, int(doc["worker_id"]), doc["secret"],
                   alias=doc.get("alias"), **kwargs)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the one request loop -------------------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None, *, params: dict | None = None,
                idempotency_key: str | None = None, read_timeout: float | None = None,
                retry: bool = True) -> dict:
        """Send one logical request (retried as the module docstring says); returns the envelope.

        ``body``: a JSON-able value, or ``bytes`` of JSON already encoded (the hot path's release).
        Raises a ``TrackerError`` subclass for error answers, ``Unavailable`` when the tracker stayed
        unreachable or 5xx through every attempt.
        """
        target = path if not params else f"{path}?{urlencode(params)}"
        headers = self._headers
        if idempotency_key:
            headers = [*headers, (b"Idempotency-Key", idempotency_key.encode())]
        content = body if body is None or isinstance(body, bytes) else _dumps(body).encode()
        if content is not None:
            headers = [*headers, (b"Content-Type", b"application/json"), (b"Content-Length", b"%d" % len(content))]
        extensions = self._timeouts(read_timeout)
        policy = self.retry
        attempt = 0
        while True:
            self.stats.count_request()
            try:
                status, data = self._http.request(method, target, headers, content, extensions)
            except self._http.errors as exc:
                if not retry or attempt + 1 >= policy.attempts:
                    raise Unavailable(0, f"{type(exc).__name__}: {exc or 'connection failed'}") from exc
                self._backoff(attempt)
                attempt += 1
                continue
            doc = _envelope(status, data)
            if status < 400:
                return doc
            message = str(doc.get("message") or f"HTTP {status}")
            if status in RETRY_STATUSES and retry and attempt + 1 < policy.attempts:
                self._backoff(attempt)
                attempt += 1
                continue
            if status == 429 and retry:
                delay = doc.get("rate_limit_delay")
                if isinstance(delay, (int, float)) and 0 <= delay <= policy.max_rate_limit_wait:
                    pause = policy.rate_limit_sleep(float(delay))
                    self.stats.add(rate_limited=1, rate_limit_sleep=pause)
                    self._sleep(pause)
                    continue
                if delay is None and attempt + 1 < policy.attempts:  # a 429 without a delay: back off
                    self.stats.add(rate_limited=1)
                    self._backoff(attempt)
                    attempt += 1
                    continue
            raise error_for(status, message, doc)

    def _timeouts(self, read_timeout: float | None) -> dict:
        """httpcore's timeout extension; the common one (no per-call read timeout) is built once."""
        if read_timeout is None:
            cached = self._default_timeouts
            if cached is not None and cached[0] == self.timeout:
                return cached[1]
        read = float(read_timeout or self.timeout)
        extensions = {"timeout": {"connect": 10.0, "read": read, "write": read, "pool": read}}
        if read_timeout is None:
            self._default_timeouts = (self.timeout, extensions)
        return extensions

    def _backoff(self, attempt: int) -> None:
        self.stats.add(retries=1)
        self._sleep(self.retry.backoff(attempt))

    # --- tasks ----------------------------------------------------------------------------------------
    def submit(self, project: int, recipe: str, *, priority: int = 0, max_retries: int = 3,
               max_assign_time: int = 600, verification_count: int = 0, unique_string: str | None = None,
               hash64: int | None = None, idempotency_key: str | None = None) -> int | None:
        """Submit one task; returns its id (``None`` from the original tracker, which does not say).
        Raises ``Conflict`` when the project already stores a task with this hash."""
        item = task_item(project, recipe, priority=priority, max_retries=max_retries,
                         max_assign_time=max_assign_time, verification_count=verification_count,
                         unique_string=unique_string, hash64=hash64)
        doc = self.request("POST", "/task/submit", item, idempotency_key=idempotency_key or new_key())
        return (doc.get("content") or {}).get("id")

    def submit_chunk(self, items: list[dict], idempotency_key: str | None = None) -> BulkResult:
        """One ``/task/bulk_submit`` request of prepared items (each with its ``project``)."""
        doc = self.request("POST", "/task/bulk_submit", {"requests": items},
                           idempotency_key=idempotency_key or new_key())
        content = doc.get("content") or {}
        return BulkResult(content.get("submitted"), content.get("duplicates"))

    def bulk_submit(self, project: int, tasks: Iterable[str | dict], *, chunk: int = 1000,
                    progress: bool | Callable[[int, int], None] = False, total: int | None = None,
                    **defaults: Any) -> BulkResult:
        """Submit many tasks in chunks of at most ``chunk`` items (one request each, retried with its
        own Idempotency-Key). Items are recipes (str) or dicts of submit fields; ``defaults`` (e.g.
        ``max_retries=3``) apply to every item that does not set them. ``progress=True`` shows a bar
        on a terminal (plain lines otherwise); a callable gets ``(tasks_done, chunk_result)``."""
        from task_tracker_client.progress import reporter  # rich is imported only when needed

        fields = {"max_retries": 3, "max_assign_time": 600, **defaults}
        submitted = duplicates = 0
        known = True
        report = reporter(progress, total)
        try:
            for items in chunked((prepare_item(project, t, fields) for t in tasks), chunk):
                res = self.submit_chunk(items)
                if res.submitted is None:
                    known = False
                else:
                    submitted += res.submitted
                    duplicates += res.duplicates or 0
                report(len(items), res)
        finally:
            report.close()
        return BulkResult(submitted if known else None, duplicates if known else None)

    def get_task(self, project: int, wait: int | None = None) -> Task | None:
        """One task, or ``None`` when none is available (after long-polling ``wait`` s, max 30)."""
        tasks = self._get(project, None, wait)
        return tasks[0] if tasks else None

    def get_tasks(self, project: int, count: int = 10, wait: int | None = None) -> list[Task]:
        """Up to ``count`` (1…100) tasks in one request; ``[]`` when none is available."""
        return self._get(project, count, wait)

    def _get(self, project: int, count: int | None, wait: int | None) -> list[Task]:
        path = f"/task/get/{int(project)}"
        if count is not None:
            path += f"?count={int(count)}&wait={int(wait)}" if wait else f"?count={int(count)}"
        elif wait:
            path += f"?wait={int(wait)}"
        doc = self.request("GET", path, idempotency_key=new_key(), read_timeout=self.timeout + (wait or 0))
        if not doc.get("ok"):
            return []
        content = doc.get("content") or {}
        if "tasks" in content:
            return [Task.from_json(t) for t in content["tasks"] or ()]
        task = content.get("task") or doc.get("task")  # the original's first versions: top-level task
        return [Task.from_json(task)] if task else []

    def release(self, task_id: int, result: Result | int | str = Result.OK, verification: int = 0) -> bool:
        """Release a held task; returns the contract's ``updated`` (False: not the holder any more,
        or an OK that awaits more verifications)."""
        result = result if type(result) is Result else Result.parse(result)
        body = b'{"task_id":%d,"result":%d,"verification":%d}' % (int(task_id), result, int(verification))
        try:
            doc = self.request("POST", "/task/release", body, idempotency_key=new_key())
        except NotFound:
            return False  # the task was deleted (hard reset): nothing left to release
        content = doc.get("content") or {}
        return bool(content.get("updated", doc.get("updated", False)))

    def extend(self, task_id: int, seconds: int) -> bool:
        """Move the lease deadline to now + ``seconds``; False when the caller no longer holds it.
        Raises ``NotFound`` against a tracker without ``/task/extend`` (the original)."""
        doc = self.request("POST", "/task/extend", {"task_id": int(task_id), "seconds": int(seconds)})
        return bool((doc.get("content") or {}).get("updated"))

    # --- logs -----------------------------------------------------------------------------------------
    def log(self, level: str, message: str, scope: str = "client", timestamp: int | None = None) -> None:
        """Store a log entry in the tracker (``/log/trace|info|warn|error``)."""
        route = LOG_LEVELS.get(level.lower())
        if route is None:
            raise ValueError(f"unknown log level {level!r}: use one of {', '.join(LOG_LEVELS)}")
        body = {"scope": scope or "client", "message": message or "-", "timestamp": int(timestamp or time.time())}
        self.request("POST", f"/log/{route}", body)

    def logs(self, level: int, since: int) -> list[dict]:
        """Entries of exactly ``level`` (1 FATAL … 7 TRACE) newer than ``since`` (unix s), oldest first."""
        doc = self.request("POST", "/logs", {"level": int(level), "since": int(since)})
        return list((doc.get("content") or {}).get("logs") or [])

    # --- projects and access --------------------------------------------------------------------------
    def request_access(self, project: int, assign: bool = True, submit: bool = False) -> bool:
        """Ask a manager for access; True when a request was created, False when one (or a granted
        access) already exists."""
        try:
            self.request("POST", "/project/request_access",
                         {"project": int(project), "assign": bool(assign), "submit": bool(submit)})
        except Conflict:
            return False
        return True

    def project(self, project_id: int) -> Project:
        doc = self.request("GET", f"/project/get/{int(project_id)}")
        content = doc.get("content") or {}
        return Project.from_json(content.get("project") or content)

    def projects(self) -> list[Project]:
        doc = self.request("GET", "/project/list")
        return [Project.from_json(p) for p in (doc.get("content") or {}).get("projects") or ()]

    def worker(self, worker_id: int | None = None) -> dict:
        """A worker's public record (this client's own by default)."""
        doc = self.request("GET", f"/worker/get/{int(worker_id or self.worker_id)}")
        return doc["content"]["worker"]


# --- helpers shared with the command line --------------------------------------------------------------
def task_item(project: int, recipe: str, *, priority: int = 0, max_retries: int = 3, max_assign_time: int = 600,
              verification_count: int = 0, unique_string: str | None = None, hash64: int | None = None) -> dict:
    """The JSON object of one submit."""
    item: dict[str, Any] = {"project": int(project), "recipe": recipe, "priority": priority,
                            "max_retries": max_retries, "max_assign_time": max_assign_time,
                            "verification_count": verification_count}
    if unique_string:
        item["unique_string"] = unique_string
    if hash64:
        item["hash64"] = hash64
    return item


def prepare_item(project: int, task: str | dict, defaults: dict) -> dict:
    """A bulk item from a recipe or a dict of submit fields; ``project`` is always this project."""
    if isinstance(task, str):
        return {"project": project, "recipe": task, **defaults}
    if not isinstance(task, dict):
        raise TypeError(f"a task is a recipe string or a dict of submit fields, not {type(task).__name__}")
    return {**defaults, **task, "project": project}


def chunked(items: Iterable[dict], size: int) -> Iterator[list[dict]]:
    """Groups of at most ``size`` items (≤ 10,000) and about 8 MiB of recipes each."""
    size = max(1, min(int(size), MAX_BULK_ITEMS))
    batch: list[dict] = []
    weight = 0
    for item in items:
        cost = len(item.get("recipe") or "") + 200
        if batch and weight + cost > MAX_BULK_BYTES:
            yield batch
            batch, weight = [], 0
        batch.append(item)
        weight += cost
        if len(batch) >= size:
            yield batch
            batch, weight = [], 0
    if batch:
        yield batch


def _envelope(status: int, content: bytes) -> dict:
    """The JSON envelope, or a synthetic one for empty (204) and non-JSON (original 404) bodies."""
    if not content:
        return {"ok": status < 400}
    try:
        doc = json.loads(content.decode())  # str: json skips sniffing the encoding (the server sends UTF-8)
    except ValueError:
        return {"ok": False, "message": content.decode("utf-8", "replace").strip()[:500] or f"HTTP {status}"}
    return doc if isinstance(doc, dict) else {"ok": status < 400, "content": doc}


__all__ = ["Client", "ClientStats", "RetryPolicy", "DEFAULT_URL", "new_key", "RateLimited", "TrackerError"]
