"""A throwaway tracker for the benchmark (tests.harness.System: own database, own AMQP vhost, own
port, started with ``tracker run``) and the fixtures the parts need: an admin, public projects,
worker accounts, submit grants, and queued tasks loaded directly into the database."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from bench import floor
from bench.cpu import CpuProbe
from tests.harness import Api, System

# The configuration ./run.sh runs on the local broker (classic service queues, run.sh), unless the
# environment chooses (TT_QUEUE_TYPE=quorum ./bench/run.sh …).
RUN_SH_ENV = {} if os.environ.get("TT_QUEUE_TYPE") else {"TT_QUEUE_TYPE": "classic"}


class BenchSystem:
    def __init__(self, run_args: list[str], log=print) -> None:
        self.run_args = run_args
        self.log = log
        self.tmp = Path(tempfile.mkdtemp(prefix="tt-bench-"))
        self.system: System | None = None
        self.admin: Api | None = None
        self._workers: list[tuple[int, str]] = []

    # --- lifecycle --------------------------------------------------------------------------------
    def __enter__(self) -> BenchSystem:
        self.system = System.create(self.tmp, **RUN_SH_ENV)
        self.log(f"  starting tracker run {' '.join(self.run_args)} (db/vhost {self.system.name})")
        started = time.monotonic()
        try:
            self.system.start(*self.run_args)
        except BaseException:
            self.system.destroy()
            raise
        self.log(f"  ready in {time.monotonic() - started:.1f} s")
        try:
            self.admin = self._admin()
        except BaseException as exc:
            self.__exit__(type(exc), exc, None)
            raise
        return self

    def _admin(self) -> Api:
        """The first manager ever registered is the tracker admin, who alone may create public projects.

        A freshly started system on a busy machine can answer its first calls with 503; retry, and
        log in if an earlier attempt registered after all."""
        api = Api(self.system.url)
        body = {"username": "benchadmin", "password": "benchpassword"}
        for _ in range(10):
            r = api.post("/register", body)
            if r.status_code == 409:
                r = api.post("/login", body)
            if r.status_code == 200:
                api.id = r.json()["content"]["manager"]["id"]
                return api
            time.sleep(2)
        raise RuntimeError(f"could not create the admin: {r.status_code} {r.text}")

    @staticmethod
    def _retry(call):
        """Setup calls retried on 503 (a busy machine); benchmarks measure, setup must just work."""
        for attempt in range(10):
            r = call()
            if r.status_code != 503 or attempt == 9:
                assert r.status_code == 200, r.text
                return r
            time.sleep(2)

    def __exit__(self, *exc) -> None:
        if self.system:
            if exc[0] is not None and self.system.log_path.exists():
                self.log("  system log tail:\n" + self.system.log_path.read_text()[-3000:])
            self.system.destroy()
        if exc[0] is None:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # --- handles -----------------------------------------------------------------------------------
    @property
    def dsn(self) -> str:
        return self.system.db_url

    @property
    def target(self) -> dict:
        return {"host": "127.0.0.1", "port": self.system.port}

    def probe(self) -> CpuProbe:
        return CpuProbe(self.system.proc.pid, self.system.name, self.dsn)

    # --- fixtures ----------------------------------------------------------------------------------
    def project(self, label: str) -> int:
        body = {"name": f"{label}-{uuid.uuid4().hex[:6]}", "public": True}
        return self._retry(lambda: self.admin.post("/project/create", body)).json()["content"]["id"]

    def workers(self, n: int) -> list[tuple[int, str]]:
        """``n`` worker accounts (id, secret), created on first need and reused by every part."""
        api = Api(self.system.url)
        while len(self._workers) < n:
            alias = f"bench-{len(self._workers)}"
            w = self._retry(lambda a=alias: api.post("/worker/create", {"alias": a})).json()["content"]["worker"]
            self._workers.append((w["id"], w["secret"]))
        return self._workers[:n]

    def submitter(self, projects: list[int]) -> tuple[int, str]:
        """A worker with SUBMIT on each project (requested, then accepted by the admin)."""
        api = Api(self.system.url)
        w = self._retry(lambda: api.post("/worker/create", {"alias": "bench-submitter"})).json()["content"]["worker"]
        worker = Api(self.system.url, {"X-Worker-ID": str(w["id"]), "X-Secret": w["secret"]})
        for p in projects:
            body = {"project": p, "assign": True, "submit": True}
            r = worker.post("/project/request_access", body)
            if r.status_code == 503:  # it may have been stored anyway: 409 then
                time.sleep(2)
                r = worker.post("/project/request_access", body)
            assert r.status_code in (200, 409), r.text
            self._retry(lambda p=p: self.admin.post(f"/project/accept_request/{p}/{w['id']}"))
        return w["id"], w["secret"]

    def top_up(self, project: int, target: int, max_assign_time: int) -> int:
        """Bring the project's queued (NEW, unassigned) tasks back to ``target``; returns rows added."""
        missing = target - floor.queued(self.dsn, project)
        if missing > 0:
            floor.fill(self.dsn, project, missing, max_assign_time, label=f"p{project}", progress=self.log)
        return max(0, missing)
