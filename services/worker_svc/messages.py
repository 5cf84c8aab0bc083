"""Request shapes of the worker routes (contract §6.3)."""

from __future__ import annotations

from pydantic import field_validator

from tracker.fields import Id, Message, text

RESERVED_ALIAS = "unassigned"  # the assignee report's name for tasks nobody holds


MAX_ALIAS = 256  # characters (contract §1.1)
Alias = text(MAX_ALIAS)
NonEmptyAlias = text(MAX_ALIAS, non_empty=True)


def _not_reserved(alias: str) -> str:
    if alias == RESERVED_ALIAS:
        raise ValueError(f"'{RESERVED_ALIAS}' is reserved")
    return alias


class CreateWorker(Message):
    alias: Alias = ""

    _alias = field_validator("alias")(_not_reserved)


class UpdateWorker(Message):
    alias: NonEmptyAlias

    _alias = field_validator("alias")(_not_reserved)


class SetPaused(Message):
    worker: Id
    paused: bool


# --- reply shapes (OpenAPI) ---------------------------------------------------------------------
# What the routes answer in ``content`` (gateway/openapi.py documents them; nothing validates with them).
from pydantic import Field  # noqa: E402

from tracker.shapes import Count, Shape, Worker  # noqa: E402

# JSON Schema for request-body rules that a pydantic schema does not carry (validators), keyed by
# the validator function or the model whose validator it is.
OPENAPI_RULES: dict = {
    _not_reserved: {"not": {"const": RESERVED_ALIAS}},
}


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
