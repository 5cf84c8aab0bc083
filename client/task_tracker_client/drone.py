"""``ttc run``: a drone that runs a command for each task.

The recipe goes to the command's stdin; ``TT_TASK_ID``, ``TT_TASK_PRIORITY``, ``TT_TASK_RETRIES``
and ``TT_PROJECT`` are in its environment. Exit code 0 → OK; non-zero → FAIL with the last lines
of its stderr logged to the tracker; running past ``--timeout`` → the command is killed and the
task FAILs. The Worker's lease keeper keeps the lease alive while the command runs.

Each command runs in its own session (process group): a Ctrl-C or SIGTERM meant for ``ttc`` does
not kill the commands in flight — they finish, and the drone releases them — and a timeout or the
end of the grace period kills the command's whole group, grandchildren included.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections import deque

from task_tracker_client.models import Task
from task_tracker_client.worker import Fail, Skip, Worker, verification_of


class CommandRunner:
    """The Worker handler: run ``argv`` for a task. ``verify_output``: capture stdout and use its
    hash as the verification (for projects that need several workers to agree)."""

    def __init__(self, argv: list[str], timeout: float | None = None, stderr_lines: int = 20,
                 verify_output: bool = False) -> None:
        self.argv = argv
        self.timeout = timeout
        self.stderr_lines = stderr_lines
        self.verify_output = verify_output
        self.worker: Worker | None = None
        self._procs: set[subprocess.Popen] = set()
        self._lock = threading.Lock()

    def __call__(self, task: Task) -> int:
        env = {**os.environ, "TT_TASK_ID": str(task.id), "TT_TASK_PRIORITY": str(task.priority),
               "TT_TASK_RETRIES": str(task.retries), "TT_PROJECT": str(task.project.id if task.project else "")}
        proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdout=subprocess.PIPE if self.verify_output else None, env=env,
                                start_new_session=True)
        with self._lock:
            self._procs.add(proc)
        timed_out = False
        try:
            try:
                out, err = proc.communicate(task.recipe.encode(), timeout=self.timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                kill_group(proc)
                out, err = proc.communicate()
        finally:
            with self._lock:
                self._procs.discard(proc)
        if err:
            sys.stderr.buffer.write(err)
            sys.stderr.flush()
        if out:
            sys.stdout.buffer.write(out)
            sys.stdout.flush()
        tail = "\n".join(deque(err.decode("utf-8", "replace").splitlines(), maxlen=self.stderr_lines))
        if timed_out:
            raise Fail(f"task {task.id}: {self._name()} timed out after {self.timeout:g} s; last stderr lines:\n{tail}")
        if proc.returncode == 0:
            return verification_of(out) if self.verify_output else 0
        if proc.returncode < 0 and self.worker is not None and self.worker.stopping:
            raise Skip()  # killed by our own stop: give the task back, it did not fail
        raise Fail(f"task {task.id}: {self._name()} exited with code {proc.returncode}; "
                   f"last stderr lines:\n{tail or '(none)'}")

    def _name(self) -> str:
        return os.path.basename(self.argv[0])

    def kill_all(self) -> None:
        """Kill the commands still running (the grace period is over; their tasks were released)."""
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            kill_group(proc)


def kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
