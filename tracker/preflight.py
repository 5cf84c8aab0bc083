"""Before starting anything: are PostgreSQL and RabbitMQ there and open to us? Say what is wrong
and how to fix it (the checks are tracker doctor's, tracker/doctor.py)."""

from __future__ import annotations

from tracker.doctor import Check, report, run_checks
from tracker.settings import Settings


class PreflightError(Exception):
    pass


def check_backends(settings: Settings) -> list[Check]:
    """Raise PreflightError with the fix of the first fatal failure; return the warnings."""
    results = list(run_checks(settings))
    fatal = [c for c in results if not c.ok and c.fatal]
    if fatal:
        raise PreflightError("\n".join(f"{c.name}: {c.detail}.\n  → {c.fix}" for c in fatal))
    return [c for c in results if not c.ok and not c.detail.startswith("not checked")]


def warn(warnings: list[Check], skip: tuple[str, ...] = ()) -> None:
    for check in warnings:
        if check.name not in skip:
            print("tracker: warning: " + report(check).split("] ", 1)[1], flush=True)
