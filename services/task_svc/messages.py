"""Request shapes of the task routes (contract §6.5)."""

from __future__ import annotations

from enum import IntEnum
from typing import Annotated, NotRequired

from pydantic import ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError, model_validator
from typing_extensions import TypedDict

from tracker.fields import Id, Int64h, Message, NonEmptyText, Text
from tracker.hashing import unique_string_hash
from tracker.routing import QueryParam

SmallInt = Annotated[int, Field(ge=-32768, le=32767)]
Count16 = Annotated[int, Field(ge=0, le=32767)]
Seconds31 = Annotated[int, Field(ge=0, le=(1 << 31) - 1)]



class TaskStatus(IntEnum):
    """A task's ``status`` column and reply field (contract §3); SQL takes its values from here."""

    NEW = 1
    FAILED = 2
    CLOSED = 3


class TaskResult(IntEnum):
    """``result`` of a release (contract §6.5)."""

    OK = 0
    FAIL = 1
    SKIP = 2


class ReleaseOutcome(IntEnum):
    """What a release came to (``tt_release_many``, migration 0008)."""

    CLOSED = 0
    FAILED = 1
    SKIPPED = 2
    AWAITING = 3  # a quorum vote recorded; the task waits for more agreeing workers
    NOT_HOLDER = 4
    MISSING = 5


TR_OK, TR_FAIL, TR_SKIP = TaskResult.OK.value, TaskResult.FAIL.value, TaskResult.SKIP.value


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
        return {"project": self.project, "row": self.row()}

    def row(self) -> list:
        """The stored columns in TASK_ROW order: the compact form tasks travel in over RPC."""
        if self.unique_string:
            hash64 = unique_string_hash(self.unique_string)
        else:
            hash64 = self.hash64 if self.hash64 is not None else (self.hash_u64 or 0)
        return [self.priority, self.recipe, self.max_retries, self.max_assign_time,
                max(1, self.verification_count), hash64]


TASK_ROW = ("priority", "recipe", "max_retries", "max_assign_time", "verification_count", "hash64")
_STORABLE = r"^[^\x00]*$"  # pydantic-core refuses lone surrogates in any str by itself


class _FastItem(TypedDict):
    """SubmitTask's field rules as pure pydantic-core constraints (no Python call per item)."""

    __pydantic_config__ = ConfigDict(strict=True, extra="ignore")  # type: ignore[misc]
    project: Annotated[int, Field(ge=1, le=(1 << 63) - 1)]
    recipe: Annotated[str, StringConstraints(min_length=1, pattern=_STORABLE)]
    priority: NotRequired[SmallInt]
    max_retries: NotRequired[Count16]
    max_assign_time: NotRequired[Seconds31]
    verification_count: NotRequired[Count16]
    hash64: NotRequired[Annotated[int, Field(ge=-(1 << 63), le=(1 << 64) - 1)]]
    hash_u64: NotRequired[Annotated[int, Field(ge=-(1 << 63), le=(1 << 64) - 1)]]
    unique_string: NotRequired[Annotated[str, StringConstraints(pattern=_STORABLE)]]


_FAST_BULK = TypeAdapter(Annotated[list[_FastItem], Field(min_length=1, max_length=10_000)])


def _fast_row(item: dict) -> list | None:
    """An item's row, or None where SubmitTask's cross-field rules need the model's wording."""
    h64, hu64, unique = item.get("hash64"), item.get("hash_u64"), item.get("unique_string")
    if h64 is not None and hu64 is not None:
        return None
    h = h64 if h64 is not None else (hu64 or 0)
    if unique:
        if h:
            return None
        h = unique_string_hash(unique)
    elif h >= 1 << 63:
        h -= 1 << 64  # to_signed64
    return [item.get("priority", 0), item["recipe"], item.get("max_retries", 0), item.get("max_assign_time", 0),
            max(1, item.get("verification_count", 0)), h]


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
        return {"project": self.requests[0].project, "rows": [r.row() for r in self.requests]}

    @classmethod
    def fast_params(cls, data: dict) -> dict | None:
        """10,000 items through the model cost ~32 ms of Python validators; through these
        pure-core rules ~6 ms. Anything unusual (an error, a cross-field rule) goes to the model."""
        try:
            items = _FAST_BULK.validate_python(data.get("requests"))
        except ValidationError:
            return None
        project = items[0]["project"]
        rows = []
        for item in items:
            row = _fast_row(item)
            if row is None or item["project"] != project:
                return None
            rows.append(row)
        return {"project": project, "rows": rows}


class ReleaseTask(Message):
    task_id: Id
    result: Annotated[int, Field(ge=0, le=2)] = TR_OK
    verification: Int64h = 0


class ExtendTask(Message):
    task_id: Id
    seconds: Annotated[int, Field(ge=1, le=604_800)]


GET_QUERY = {"count": QueryParam(1, 100), "wait": QueryParam(0, 30)}


# --- what task_svc's operations receive over RPC (validated again there: tracker/service.py) -----
class GetTasks(Message):
    """A task get: path ``project``, query ``count`` (absent: the one-task form) and ``wait``."""

    project: int
    count: int | None = None
    wait: int | None = None


class SubmitRow(Message):
    project: int
    row: list  # TASK_ROW order, validated by SubmitTask at the gateway


class SubmitRows(Message):
    project: int
    rows: list  # of TASK_ROW rows, validated by BulkSubmit at the gateway


class ProjectRef(Message):
    id: int


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


class Submitted(Shape):
    id: int = Field(description="the stored task's id (extension)")


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
