"""``ttc``: the command line for workers and submitters.

Every command takes ``--url`` and ``--credentials PATH``; their defaults are the environment's
``TT_URL`` and ``TT_CREDENTIALS``, then (for the URL) the one stored in the credentials file, then
``http://127.0.0.1:3010`` and ``./worker.json``. Exit codes: 0 success, 1 an error answer or
an unreachable tracker, 2 bad usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from task_tracker_client.client import DEFAULT_URL, Client
from task_tracker_client.errors import TrackerError
from task_tracker_client.worker import Worker

LEVELS = {"fatal": 1, "panic": 2, "error": 3, "warn": 4, "warning": 4, "info": 5, "debug": 6, "trace": 7}
LEVEL_NAMES = {1: "FATAL", 2: "PANIC", 3: "ERROR", 4: "WARN", 5: "INFO", 6: "DEBUG", 7: "TRACE"}


class UsageError(Exception):
    pass


# --- argument parsing -------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS,
                        help=f"tracker URL (env TT_URL; default: the credentials' URL, then {DEFAULT_URL})")
    common.add_argument("--credentials", type=Path, default=argparse.SUPPRESS,
                        help="worker credentials file (env TT_CREDENTIALS; default ./worker.json)")
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log retries and lease keeping to stderr")

    p = argparse.ArgumentParser(prog="ttc", description="Task tracker client: workers and submitters.",
                                parents=[common])
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    worker = sub.add_parser("worker", help="worker accounts", parents=[common]).add_subparsers(
        dest="action", required=True, metavar="ACTION")
    create = worker.add_parser("create", help="create a worker and save its credentials (mode 0600)",
                               parents=[common])
    create.add_argument("--alias", required=True)
    create.add_argument("--save", type=Path, help="where to write the credentials (default: --credentials)")
    create.add_argument("--force", action="store_true", help="overwrite an existing credentials file")
    create.set_defaults(func=cmd_worker_create)

    project = sub.add_parser("project", help="read projects", parents=[common]).add_subparsers(
        dest="action", required=True, metavar="ACTION")
    project.add_parser("list", help="projects visible to this worker", parents=[common]).set_defaults(
        func=cmd_project_list)
    get = project.add_parser("get", help="one project as JSON", parents=[common])
    get.add_argument("id", type=int)
    get.set_defaults(func=cmd_project_get)

    access = sub.add_parser("access", help="project access", parents=[common]).add_subparsers(
        dest="action", required=True, metavar="ACTION")
    request = access.add_parser("request", help="ask a manager for access to a project", parents=[common])
    request.add_argument("project", type=int)
    request.add_argument("--assign", action="store_true", help="ask to take tasks (the default)")
    request.add_argument("--submit", action="store_true", help="ask to submit tasks")
    request.set_defaults(func=cmd_access_request)

    submit = sub.add_parser("submit", parents=[common], help="submit one task per line of FILE (- = stdin)",
                            description="Submit one task per line: plain text is the recipe, a JSON object the "
                            "submit fields. Resumable: re-running the same file submits nothing twice.")
    submit.add_argument("project", type=int)
    submit.add_argument("file")
    submit.add_argument("--unique-from-line", action="store_true",
                        help="each line's text is its unique_string (the server drops repeats forever)")
    submit.add_argument("--chunk", type=int, default=1000, help="tasks per bulk request (1…10000)")
    submit.add_argument("--priority", type=int, default=0)
    submit.add_argument("--max-retries", type=int, default=3)
    submit.add_argument("--max-assign-time", type=int, default=600, help="lease seconds (0 = never expires)")
    submit.add_argument("--verification-count", type=int, default=0)
    submit.add_argument("--progress-file", type=Path, default=None,
                        help="resume record (default FILE.ttc-progress; none for stdin)")
    submit.add_argument("--no-progress-file", action="store_true", help="keep no resume record")
    submit.add_argument("--quiet", action="store_true", help="no progress display")
    submit.set_defaults(func=cmd_submit)

    run = sub.add_parser("run", parents=[common], help="run COMMAND for each task (recipe on stdin)",
                         description="A drone: for each task, run COMMAND with the recipe on stdin and TT_TASK_ID, "
                         "TT_TASK_PRIORITY in its environment. Exit 0 → OK, non-zero → FAIL (last stderr lines "
                         "logged to the tracker). SIGINT/SIGTERM: tasks in flight finish, or after --grace "
                         "seconds are released SKIP; exit 0.",
                         usage="ttc run PROJECT [options] -- COMMAND [ARGS...]")
    run.add_argument("project", type=int)
    run.add_argument("--concurrency", type=int, default=1)
    run.add_argument("--until-empty", action="store_true", help="exit when the project has no task left")
    run.add_argument("--max-tasks", type=int, default=None)
    run.add_argument("--timeout", type=float, default=None, help="seconds before a command is killed (→ FAIL)")
    run.add_argument("--grace", type=float, default=30.0, help="seconds in-flight tasks get to finish on a stop")
    run.add_argument("--wait", type=int, default=10, help="long-poll seconds per task get (0…30)")
    run.add_argument("--verify-output", action="store_true",
                     help="capture stdout and use its hash as the verification")
    run.add_argument("--scope", default="ttc-run", help="log scope of failure reports")
    run.set_defaults(func=cmd_run)

    logs = sub.add_parser("logs", parents=[common], help="read the tracker's log entries")
    logs.add_argument("--level", default="info", help="this level and more severe (fatal…trace)")
    logs.add_argument("--since", default="1h",
                      help="unix seconds, an ISO time, or an age like 90s, 10m, 2h, 1d (default 1h)")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new entries")
    logs.add_argument("--interval", type=float, default=2.0, help="seconds between polls with --follow")
    logs.set_defaults(func=cmd_logs)
    return p


# --- connection -------------------------------------------------------------------------------------------
def credentials_path(args: argparse.Namespace) -> Path:
    return getattr(args, "credentials", None) or Path(os.environ.get("TT_CREDENTIALS") or "worker.json")


def explicit_url(args: argparse.Namespace) -> str | None:
    return getattr(args, "url", None) or os.environ.get("TT_URL") or None


def connect(args: argparse.Namespace, need_worker: bool = True) -> Client:
    path = credentials_path(args)
    if path.exists():
        return Client.load(path, url=explicit_url(args))
    if need_worker:
        raise UsageError(f"no credentials at {path}: create a worker with `ttc worker create --alias NAME` "
                         "or pass --credentials / TT_CREDENTIALS")
    return Client(explicit_url(args) or DEFAULT_URL)


# --- commands ---------------------------------------------------------------------------------------------
def cmd_worker_create(args: argparse.Namespace) -> int:
    target = args.save or credentials_path(args)
    if target.exists() and not args.force:
        raise UsageError(f"{target} exists (its worker's secret cannot be shown again): use --force or --save")
    client = Client.create_worker(explicit_url(args) or DEFAULT_URL, alias=args.alias)
    client.save(target)
    print(f"worker {client.worker_id} ({client.alias}) created; credentials saved to {target} (mode 0600)")
    return 0


def cmd_project_list(args: argparse.Namespace) -> int:
    with connect(args, need_worker=False) as client:
        for p in client.projects():
            flags = ",".join(f for f, on in (("public", p.public), ("hidden", p.hidden), ("paused", p.paused)) if on)
            print(f"{p.id}\t{p.name}\t{flags or '-'}\tversion={p.version or '-'}")
    return 0


def cmd_project_get(args: argparse.Namespace) -> int:
    with connect(args, need_worker=False) as client:
        print(json.dumps(client.project(args.id).raw, indent=2))
    return 0


def cmd_access_request(args: argparse.Namespace) -> int:
    assign = args.assign or not args.submit
    with connect(args) as client:
        created = client.request_access(args.project, assign=assign, submit=args.submit)
    print("access requested; a manager must accept it" if created
          else "a request or a granted access already exists for this project")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from task_tracker_client.submitfile import submit_file

    if args.file != "-" and not Path(args.file).is_file():
        raise UsageError(f"no such file: {args.file}")
    defaults = {"priority": args.priority, "max_retries": args.max_retries, "max_assign_time": args.max_assign_time,
                "verification_count": args.verification_count}
    state = False if args.no_progress_file else (args.progress_file or True)
    with connect(args) as client:
        result = submit_file(client, args.project, args.file, chunk=args.chunk, unique_from_line=args.unique_from_line,
                             defaults=defaults, progress=not args.quiet, state_path=state)
    print(f"submitted {result.submitted}, duplicates {result.duplicates}"
          + (f", {result.skipped_lines} lines already done by an earlier run" if result.skipped_lines else ""))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from task_tracker_client.drone import CommandRunner

    argv = args.cmd
    if not argv:
        raise UsageError("no command: ttc run PROJECT [options] -- COMMAND [ARGS...]")
    runner = CommandRunner(argv, timeout=args.timeout, verify_output=args.verify_output)
    with connect(args) as client:
        worker = Worker(client, args.project, runner, concurrency=args.concurrency, wait=args.wait,
                        grace=args.grace, scope=args.scope)
        runner.worker = worker
        try:
            stats = worker.run(max_tasks=args.max_tasks, until_empty=args.until_empty)
        finally:
            runner.kill_all()
    print(f"ttc run: ok {stats.ok}, failed {stats.failed}, skipped {stats.skipped}, "
          f"released on stop {stats.abandoned}", file=sys.stderr)
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    level = LEVELS.get(args.level.lower()) if not args.level.isdigit() else int(args.level)
    if level is None or not 1 <= level <= 7:
        raise UsageError(f"unknown level {args.level!r}: one of {', '.join(LEVELS)}")
    since = parse_since(args.since)
    seen: set[str] = set()
    with connect(args, need_worker=False) as client:
        while True:
            entries = []
            for lv in range(1, level + 1):
                entries += [dict(e, level=e.get("level", lv)) for e in client.logs(lv, since)]
            entries.sort(key=lambda e: e.get("timestamp", 0))
            newest = since
            for e in entries:
                ident = json.dumps(e, sort_keys=True)
                if ident not in seen:
                    seen.add(ident)
                    print(format_entry(e), flush=True)
                newest = max(newest, int(e.get("timestamp", 0)))
            if not args.follow:
                return 0
            # Entries share whole seconds: ask again from one second before the newest, drop repeats.
            since = max(since, newest - 1)
            seen = {s for s in seen if json.loads(s).get("timestamp", 0) >= since}
            time.sleep(args.interval)


def format_entry(e: dict) -> str:
    ts = datetime.fromtimestamp(int(e.get("timestamp", 0)), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    data = e.get("data") or ""
    try:
        doc = json.loads(data) if isinstance(data, str) and data else {}
    except ValueError:
        doc = {}
    who = f"{doc.get('scope', '-')}@worker:{doc.get('worker', '-')}" if isinstance(doc, dict) and doc else "-"
    return f"{ts} {LEVEL_NAMES.get(e.get('level'), e.get('level'))} {who} {e.get('message', '')}"


def parse_since(text: str) -> int:
    """Unix seconds, an ISO 8601 time, or an age (``90s``, ``10m``, ``2h``, ``1d``) before now."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhd])", text)
    if m:
        return max(1, int(time.time() - float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]))
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since {text!r}: give unix seconds, an ISO time or an age like 10m") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(1, int(when.timestamp()))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # ``ttc run … -- COMMAND ARGS``: everything after the first ``--`` is the command, options included.
    command: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, command = argv[:cut], argv[cut + 1:]
    args = build_parser().parse_args(argv)
    args.cmd = command
    verbose = getattr(args, "verbose", False)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="ttc: %(levelname)s %(message)s", stream=sys.stderr)
    if not verbose:
        logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"ttc: {exc}", file=sys.stderr)
        return 2
    except TrackerError as exc:
        print(f"ttc: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ttc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
