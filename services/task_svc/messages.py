"""Request shapes of the task routes (contract §6.5)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from tracker.fields import Id, Int64h, Message, NonEmptyText, Text
from tracker.hashing import unique_string_hash
from tracker.routing import QueryParam

SmallInt = Annotated[int, Field(ge=-32768, le=32767)]
Count16 = Annotated[int, Field(ge=0, le=32767)]
Seconds31 = Annotated[int, Field(ge=0, le=(1 << 31) - 1)]

TR_OK, TR_FAIL, TR_SKIP = 0, 1, 2


class SubmitTask(Message):
    project: Id
    recipe: NonEmptyText
    priority: SmallInt = 0
    max_retries: Count16 = 0
    max_assign_time: Seconds31 = 0
    verification_count: Count16 = 0
    hash64: Int64h | None = None
    hash_u64: Int64h | None = None
    unique_string: Text = ""

    @model_validator(mode="after")
    def _one_hash(self):
        if self.hash64 is not None and self.hash_u64 is not None:
            raise ValueError("invalid field 'hash_u64': give either 'hash64' or its alias 'hash_u64', not both")
        if self.unique_string and (self.hash64 or self.hash_u64):
            raise ValueError("invalid field 'unique_string': cannot be combined with a non-zero 'hash64'")
        return self

    def to_params(self) -> dict:
        if self.unique_string:
            hash64 = unique_string_hash(self.unique_string)
        else:
            hash64 = self.hash64 if self.hash64 is not None else (self.hash_u64 or 0)
        return {
            "project": self.project, "recipe": self.recipe, "priority": self.priority,
            "max_retries": self.max_retries, "max_assign_time": self.max_assign_time,
            "verification_count": max(1, self.verification_count), "hash64": hash64,
        }


class BulkSubmit(Message):
    requests: Annotated[list[SubmitTask], Field(min_length=1, max_length=10_000)]

    @model_validator(mode="after")
    def _one_project(self):
        first = self.requests[0].project
        for i, item in enumerate(self.requests):
            if item.project != first:
                raise ValueError(f"invalid field 'requests[{i}].project': every item must name the same project")
        return self

    def to_params(self) -> dict:
        return {"project": self.requests[0].project, "tasks": [r.to_params() for r in self.requests]}


class ReleaseTask(Message):
    task_id: Id
    result: Annotated[int, Field(ge=0, le=2)] = TR_OK
    verification: Int64h = 0


class ExtendTask(Message):
    task_id: Id
    seconds: Annotated[int, Field(ge=1, le=604_800)]


GET_QUERY = {"count": QueryParam(1, 100), "wait": QueryParam(0, 30)}


# --- reply shapes (OpenAPI) ---------------------------------------------------------------------
# What the routes answer in ``content`` (gateway/openapi.py documents them; nothing validates with them).
from pydantic import RootModel  # noqa: E402

from tracker.shapes import Count, Project, Shape  # noqa: E402

_NON_ZERO = {"type": "integer", "not": {"const": 0}}
# JSON Schema for request-body rules that a pydantic schema does not carry (model validators).
OPENAPI_RULES: dict = {
    SubmitTask: {"allOf": [
        {"not": {"required": ["hash64", "hash_u64"],
                 "properties": {"hash64": {"type": "integer"}, "hash_u64": {"type": "integer"}}}},
        {"not": {"required": ["unique_string"], "properties": {"unique_string": {"type": "string", "minLength": 1}},
                 "anyOf": [{"required": ["hash64"], "properties": {"hash64": _NON_ZERO}},
                           {"required": ["hash_u64"], "properties": {"hash_u64": _NON_ZERO}}]}},
    ]},
    BulkSubmit: {"description": "Every item must name the same project (else 400). Items duplicating a stored "
                                "task's or an earlier item's hash64 are skipped."},
}


class Task(Shape):
    id: int
    priority: SmallInt
    project: Project
    assignee: Annotated[int, Field(ge=0, description="the holder's worker id; 0 = nobody")]
    retries: Count
    max_retries: Count
    status: Annotated[int, Field(ge=1, le=3, description="NEW 1, FAILED 2, CLOSED 3")]
    recipe: str
    max_assign_time: Annotated[int, Field(ge=0, description="lease seconds; 0 = the lease never expires")]
    assign_time: Annotated[int, Field(description="unix seconds of the current assignment")]
    verification_count: Count


class OneTask(Shape):
    task: Task


class TaskBatch(Shape):
    """The answer to `?count=N`: the tasks in choice order."""

    tasks: Annotated[list[Task], Field(min_length=1, max_length=100)]


class Assignment(RootModel[OneTask | TaskBatch]):
    """`{"task": Task}`, or `{"tasks": [Task…]}` with `?count=N`."""


class NoTask(Shape):
    """`content` of "No task available" with `?count=N` (absent without it)."""

    tasks: Annotated[list[Task], Field(max_length=0)]


class BulkSubmitted(Shape):
    submitted: Count
    duplicates: Count


class Released(Shape):
    updated: bool = Field(description="false: nothing changed (not the holder), or awaiting verification")


class Extended(Shape):
    updated: bool
    expires: int = Field(0, description="new lease deadline, unix seconds (0: the lease never expires); "
                                        "present when updated")


class AssigneeCount(Shape):
    assignee: str = Field(description='the holder\'s alias, or "unassigned"')
    task_count: Count


class Assignees(Shape):
    assignees: Annotated[list[AssigneeCount], Field(max_length=16)]


class AffectedTasks(Shape):
    affected_tasks: Count
