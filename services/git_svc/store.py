"""SQL of git_svc: reads ``project`` (id, git_repo, webhook_secret) and writes only ``project.version``.

``project`` is otherwise project_svc's table. The webhook is the one exception to "one writer per
table": git_svc updates the ``version`` column of the projects a signed push names, and nothing
else — no other column of ``project``, no other table.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Row, func, select, update

from tracker.schema import project


def projects_for_repo(conn: Connection, full_name: str) -> Sequence[Row]:
    """Projects whose ``git_repo`` equals ``full_name`` case-insensitively: rows of (id, webhook_secret)."""
    return conn.execute(
        select(project.c.id, project.c.webhook_secret)
        .where(func.lower(project.c.git_repo) == func.lower(full_name))
        .order_by(project.c.id)
    ).all()


def set_version(conn: Connection, project_ids: Sequence[int], version: str) -> None:
    conn.execute(update(project).where(project.c.id.in_(list(project_ids))).values(version=version))
