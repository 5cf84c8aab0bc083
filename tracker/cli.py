"""The ``tracker`` command: run the system, serve one part, migrate, administer.

A service adds its own commands through its plugin (tracker.plugins.Plugin.cli).
"""

from __future__ import annotations

import argparse
import os
import sys


def _scale(values: list[str]) -> dict[str, int]:
    out = {}
    for item in values:
        name, _, count = item.partition("=")
        if not count.isdigit() or int(count) < 1:
            raise SystemExit(f"--scale takes NAME=COUNT with COUNT ≥ 1, got {item!r}")
        out[name] = int(count)
    return out


def cmd_run(args: argparse.Namespace) -> int:
    from tracker.launcher import Supervisor, build_children, port_in_use
    from tracker.plugins import discover
    from tracker.preflight import PreflightError, check_backends, warn
    from tracker.settings import get_settings

    settings = get_settings()
    busy = port_in_use(settings.bind)
    if busy:
        print(f"tracker: cannot listen on {settings.bind}: {busy}. Stop what uses it, or set TT_BIND to "
              "another address.", file=sys.stderr)
        return 1
    try:
        warnings = check_backends(settings)
    except PreflightError as exc:
        print(f"tracker: {exc}", file=sys.stderr)
        return 1
    warn(warnings, skip=() if args.no_migrate else ("schema",))  # about to migrate: no need to warn
    scale = _scale(args.scale)
    unknown = set(scale) - set(discover())
    if unknown:
        print(f"tracker: unknown service(s) in --scale: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    from tracker.queues import QueueTypeConflict, ensure_queue_types

    try:
        for m in ensure_queue_types(settings, discover()):
            print(f"tracker: queue {m.queue!r} was not a {settings.queue_type} queue and nothing consumed it: "
                  f"deleted ({m.messages} stale request(s)); its service declares it again", flush=True)
    except QueueTypeConflict as exc:
        print(f"tracker: {exc}", file=sys.stderr)
        return 1
    if not args.no_migrate:
        from tracker.migrate import upgrade

        upgrade()
        print("tracker: database schema is up to date", flush=True)
    children = build_children(scale, args.replicas, args.gateway_workers)
    print(f"tracker: starting {len(children)} processes; gateway on http://{settings.bind}", flush=True)
    return Supervisor(children).run()


# Descriptors a gateway process needs besides its client connections: the listening socket, the
# broker and LISTEN connections, logs, gunicorn's heartbeat file, imported modules.
FD_MARGIN = 256


def fd_soft_limit(wanted: int, soft: int, hard: int, infinity: int = -1) -> int:
    """The soft RLIMIT_NOFILE that lets a process open ``wanted`` descriptors: raised up to the
    hard limit (which an unprivileged process cannot pass), never lowered."""
    if soft == infinity:
        return soft
    target = wanted if hard == infinity else min(wanted, hard)
    return max(soft, target)


def _raise_fd_limit(connections: int) -> None:
    """Every connection is a descriptor; soft limits are often 1,024 while the hard limit allows
    far more. gunicorn's master and workers inherit the limit through exec and fork."""
    import resource

    wanted = connections + FD_MARGIN
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = fd_soft_limit(wanted, soft, hard, resource.RLIM_INFINITY)
    if new != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    if new != resource.RLIM_INFINITY and new < connections:
        print(f"tracker: the file descriptor limit ({new}) allows fewer than TT_GATEWAY_CONNECTIONS="
              f"{connections} connections per gateway process; raise the hard limit (ulimit -Hn)",
              file=sys.stderr, flush=True)


def cmd_serve(args: argparse.Namespace) -> int:
    if args.name == "gateway":
        from tracker.settings import get_settings

        settings = get_settings()
        workers = str(args.workers or settings.gateway_workers)
        _raise_fd_limit(settings.gateway_connections)
        argv = [sys.executable, "-m", "gunicorn", "--config", "python:gateway.gunicorn_conf",
                "--worker-class", "gevent", "--workers", workers,
                # gunicorn's default, 1,000 per process, would leave parked long-polls and idle
                # keep-alive clients in the listen backlog (bench/many_clients.py)
                "--worker-connections", str(settings.gateway_connections),
                "--bind", settings.bind, "--graceful-timeout", "35", "--timeout", "60",
                # the time a new connection has to send its first request whole; the pause allowed
                # between two requests is TT_GATEWAY_KEEPALIVE (tracker/patches.py)
                "--keep-alive", "2",
                # one control socket path per user would be shared by every gateway on the machine
                "--no-control-socket",
                # no access log unless asked: even logging to /dev/null formats every line
                *(["--access-logfile", "-"] if os.environ.get("TT_ACCESS_LOG") else []),
                "gateway.app:create_app()"]
        os.execv(sys.executable, argv)
    from tracker.plugins import discover
    from tracker.serve import serve_service  # first: eventlet patches before anything else loads

    if args.name not in discover():
        print(f"tracker: unknown service {args.name!r}; known: gateway, {', '.join(discover())}",
              file=sys.stderr)
        return 2
    return serve_service(args.name)


def cmd_db(args: argparse.Namespace) -> int:
    from tracker.migrate import upgrade
    from tracker.preflight import PreflightError, check_backends, warn
    from tracker.settings import get_settings

    try:
        warn(check_backends(get_settings()), skip=("schema",))
    except PreflightError as exc:
        print(f"tracker: {exc}", file=sys.stderr)
        return 1
    upgrade(args.revision)
    print("tracker: database schema is up to date")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from tracker.doctor import main as doctor
    from tracker.settings import get_settings

    return doctor(get_settings())


def cmd_probe(args: argparse.Namespace) -> int:
    from tracker.probe import run

    return run(args.name, args.max_age, args.pid)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tracker", description="Distributed task tracker")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="migrate, then run every service and the gateway, supervised")
    run.add_argument("--replicas", type=int, default=1, help="processes per service (default 1)")
    run.add_argument("--scale", action="append", default=[], metavar="NAME=COUNT",
                     help="processes for one service, e.g. --scale task_svc=2")
    run.add_argument("--gateway-workers", type=int, default=None, help="gunicorn worker processes")
    run.add_argument("--no-migrate", action="store_true", help="do not apply migrations first")
    run.set_defaults(func=cmd_run)

    serve = sub.add_parser("serve", help="run one part: 'gateway' or a service name")
    serve.add_argument("name")
    serve.add_argument("--workers", type=int, default=None, help="gateway: gunicorn worker processes")
    serve.set_defaults(func=cmd_serve)

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="create the database if needed and apply migrations")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=cmd_db)

    doctor = sub.add_parser("doctor", help="check PostgreSQL, RabbitMQ, the virtual host and its permissions, "
                                           "the schema and the database settings; say how to fix each")
    doctor.set_defaults(func=cmd_doctor)

    probe = sub.add_parser("probe", help="health probe: exit 0 iff the service's processes are consuming")
    probe.add_argument("name", nargs="?", default=None,
                       help="a service, or 'gateway' (GET /readyz); default: the one part this container runs")
    probe.add_argument("--max-age", type=float, default=None,
                       help="seconds since the last good self-check (default TT_HEARTBEAT_MAX_AGE or 30)")
    probe.add_argument("--pid", type=int, default=None, help="check this process only (default: every replica)")
    probe.set_defaults(func=cmd_probe)

    from tracker.plugins import discover

    for plugin in discover().values():  # commands a service adds (manager_svc: ``admin create``)
        plugin.register_commands(sub)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
