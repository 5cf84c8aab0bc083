"""Public object shapes read by more than one service (contract §3)."""

from __future__ import annotations

from sqlalchemy import func, select

from tracker.schema import table

# project_svc's project with task_svc's closure counter: the Project object (contract §3).
project, project_closures = table("project"), table("project_closures")

PROJECT_PUBLIC = ("id", "priority", "name", "clone_url", "git_repo", "version", "motd", "public", "hidden",
                  "chain", "paused", "assign_rate", "submit_rate", "closed_task_count")

_CLOSED = func.coalesce(project_closures.c.closed_task_count, 0).label("closed_task_count")
_WITH_COUNTER = project.outerjoin(project_closures, project_closures.c.project_id == project.c.id)


def project_query(*extra):
    """The Project object's columns (plus ``extra``), counter included."""
    cols = [project.c[name] for name in PROJECT_PUBLIC if name != "closed_task_count"]
    return select(*cols, _CLOSED, *extra).select_from(_WITH_COUNTER)


def project_full_query():
    """Every stored project column plus the counter: for permission checks that also need secrets."""
    return select(project, _CLOSED).select_from(_WITH_COUNTER)


def public_project(row) -> dict:
    return {name: row[name] for name in PROJECT_PUBLIC}
