"""Request shapes of the worker routes (contract §6.3)."""

from __future__ import annotations

from typing import Annotated

from tracker.fields import Id, Message, Rule, text

RESERVED_ALIAS = "unassigned"  # the assignee report's name for tasks nobody holds


MAX_ALIAS = 256  # characters (contract §1.1)


def _not_reserved(alias: str) -> str:
    if alias == RESERVED_ALIAS:
        raise ValueError(f"'{RESERVED_ALIAS}' is reserved")
    return alias


NOT_RESERVED = Rule(_not_reserved, {"not": {"const": RESERVED_ALIAS}})
Alias = Annotated[text(MAX_ALIAS), NOT_RESERVED]
NonEmptyAlias = Annotated[text(MAX_ALIAS, non_empty=True), NOT_RESERVED]


class CreateWorker(Message):
    alias: Alias = ""


class UpdateWorker(Message):
    alias: NonEmptyAlias


class SetPaused(Message):
    worker: Id
    paused: bool


# --- what worker_svc's operations receive over RPC (validated again there: tracker/service.py) ---
class WorkerCreate(CreateWorker):
    """/worker/create's body, and the client address the creations are counted by (ClientAddress)."""

    client: str = ""


class WorkerRef(Message):
    """A path's worker id."""

    id: Id


# --- reply shapes (OpenAPI) ---------------------------------------------------------------------
# What the routes answer in ``content``: the service builds it through them (tracker.shapes.content) and
# gateway/openapi.py documents them.
from pydantic import Field  # noqa: E402

from tracker.shapes import Count, Shape, Worker  # noqa: E402


class NewWorker(Worker):
    secret: str = Field(description="base64 of 32 random bytes; shown only in this answer")


class WorkerCreated(Shape):
    worker: NewWorker


class WorkerRecord(Shape):
    worker: Worker


class WorkerStat(Shape):
    id: int
    alias: str
    closed_task_count: Count
    paused: bool


class WorkerStats(Shape):
    stats: list[WorkerStat]
