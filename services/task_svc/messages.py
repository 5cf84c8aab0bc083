"""Request shapes of the task routes (contract §6.5)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter, ValidationError, model_validator

from tracker.fields import INT63_MAX, Id, Int64h, Message, ModelRule, NonEmptyText, Text, core_typed_dict, text
from tracker.hashing import to_signed64, unique_string_hash
from tracker.routing import QueryParam, QueryText, QueryWord

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
NO_TASK = "No task available"  # the declined answer of a task get (Doc(declined=NoTask))
NOT_HOLDER = "Task was not marked as closed"  # a release by a worker that does not hold the task


# Rules read with .get: the fast path's dicts carry only the keys sent (absent = the default, which
# for these fields is falsy, as None is).
def _one_hash(item: Mapping) -> str | None:
    if item.get("hash64") is not None and item.get("hash_u64") is not None:
        return "invalid field 'hash_u64': give either 'hash64' or its alias 'hash_u64', not both"
    return None


def _unique_or_hash(item: Mapping) -> str | None:
    if item.get("unique_string") and (item.get("hash64") or item.get("hash_u64")):
        return "invalid field 'unique_string': cannot be combined with a non-zero 'hash64'"
    return None


_NON_ZERO = {"type": "integer", "not": {"const": 0}}
ONE_HASH = ModelRule(_one_hash, {"allOf": [
    {"not": {"required": ["hash64", "hash_u64"],
             "properties": {"hash64": {"type": "integer"}, "hash_u64": {"type": "integer"}}}}]})
UNIQUE_OR_HASH = ModelRule(_unique_or_hash, {"allOf": [
    {"not": {"required": ["unique_string"], "properties": {"unique_string": {"type": "string", "minLength": 1}},
             "anyOf": [{"required": ["hash64"], "properties": {"hash64": _NON_ZERO}},
                       {"required": ["hash_u64"], "properties": {"hash_u64": _NON_ZERO}}]}}]})


class SubmitTask(Message):
    rules = (ONE_HASH, UNIQUE_OR_HASH)
    project: Id
    recipe: NonEmptyText
    priority: SmallInt = 0
    max_retries: Count16 = 0
    max_assign_time: Seconds31 = 0
    verification_count: Count16 = 0
    hash64: Int64h | None = None
    hash_u64: Int64h | None = None
    unique_string: Text = ""

    def to_params(self) -> dict:
        return {"project": self.project, "row": task_row(self.__dict__)}


_DEFAULT = {name: info.default for name, info in SubmitTask.model_fields.items() if not info.is_required()}


def task_row(item: Mapping, priority: int = _DEFAULT["priority"], max_retries: int = _DEFAULT["max_retries"],
             max_assign_time: int = _DEFAULT["max_assign_time"],
             verification_count: int = _DEFAULT["verification_count"]) -> list:
    """The stored columns in TASK_ROW order (the compact form tasks travel in over RPC), from a
    SubmitTask's field values: the model's, or the fast path's validated dict, whose absent keys
    are the model's defaults (bound as this function's defaults: 10,000 calls per bulk)."""
    get = item.get
    unique, hash64 = get("unique_string"), get("hash64")
    if unique:
        hash64 = unique_string_hash(unique)
    else:
        if hash64 is None:
            hash64 = get("hash_u64") or 0
        if hash64 > INT63_MAX:
            hash64 = to_signed64(hash64)
    return [get("priority", priority), item["recipe"], get("max_retries", max_retries),
            get("max_assign_time", max_assign_time), max(1, get("verification_count", verification_count)), hash64]


TASK_ROW = ("priority", "recipe", "max_retries", "max_assign_time", "verification_count", "hash64")


class BulkSubmit(Message):
    """Every item must name the same project (else 400). Items duplicating a stored task's or an earlier item's hash64 are skipped."""  # noqa: E501 - the OpenAPI description

    requests: Annotated[list[SubmitTask], Field(min_length=1, max_length=10_000)]

    @model_validator(mode="after")
    def _one_project(self):
        first = self.requests[0].project
        for i, item in enumerate(self.requests):
            if item.project != first:
                raise ValueError(f"invalid field 'requests[{i}].project': every item must name the same project")
        return self

    def to_params(self) -> dict:
        return {"project": self.requests[0].project, "rows": [task_row(r.__dict__) for r in self.requests]}

    @classmethod
    def fast_params(cls, data: dict) -> dict | None:
        """10,000 items through the model cost ~19 ms of Python validators; through the same
        rules in pure-core form (derived from SubmitTask) ~6 ms. Anything unusual (an error, a
        broken cross-field rule) goes to the model, which words it."""
        try:
            items = _FAST_BULK.validate_python(data.get("requests"))
        except ValidationError:
            return None
        project, checks = items[0]["project"], _ITEM_CHECKS
        rows = []
        for item in items:
            if item["project"] != project:
                return None
            for check in checks:
                if check(item):
                    return None
            rows.append(task_row(item))
        return {"project": project, "rows": rows}


# SubmitTask's rules, derived: the bulk's item list with its own length limits, items in core form.
_FAST_BULK = TypeAdapter(Annotated[(list[core_typed_dict(SubmitTask)], *BulkSubmit.model_fields["requests"].metadata)])
_ITEM_CHECKS = tuple(rule.problem for rule in SubmitTask.rules)


class ReleaseTask(Message):
    task_id: Id
    result: Annotated[int, Field(ge=0, le=2)] = TR_OK
    verification: Int64h = 0


class ExtendTask(Message):
    task_id: Id
    seconds: Annotated[int, Field(ge=1, le=604_800)]


GET_QUERY = {"count": QueryParam(1, 100), "wait": QueryParam(0, 30)}


# --- task administration (contract §6.8) ----------------------------------------------------------
# The status filter's values, disjoint (services/task_svc/store.py STATUS_FILTERS says what each means).
FILTER_STATUSES = ("new", "awaiting", "assigned", "failed", "closed")
StatusFilter = Literal["new", "awaiting", "assigned", "failed", "closed"]
SearchText = text(256, min_chars=1)
LISTING_LIMIT = 500
LIST_QUERY = {
    "status": QueryWord(FILTER_STATUSES),
    "q": QueryText(1, 256),
    "assignee": QueryParam(1, INT63_MAX),
    "order": QueryWord(("asc", "desc")),
    "after": QueryParam(1, INT63_MAX),
    "limit": QueryParam(1, LISTING_LIMIT),
}
MAX_SELECTED_IDS = 10_000


class TaskFilter(Message):
    """The listing's filters, as a selection's ``filter`` (each optional; ``{}`` = every task)."""

    status: StatusFilter | None = None
    q: SearchText | None = Field(None, description="recipe contains it, case-insensitively")
    assignee: Id | None = Field(None, description="the row's assignee (for closed tasks: the closer)")


def _one_selection(values: Mapping) -> str | None:
    if (values.get("ids") is None) == (values.get("filter") is None):
        return "invalid body: give exactly one of 'ids' and 'filter'"
    return None


# In JSON Schema a present key may hold null, which counts as absent (§1.1): each branch names the type.
ONE_SELECTION = ModelRule(_one_selection, {"oneOf": [
    {"required": ["ids"], "properties": {"ids": {"type": "array"}}},
    {"required": ["filter"], "properties": {"filter": {"type": "object"}}}]})


class Selection(Message):
    """Exactly one of ``ids`` (tasks of other projects are ignored) or ``filter``."""

    rules = (ONE_SELECTION,)
    ids: Annotated[list[Id], Field(min_length=1, max_length=MAX_SELECTED_IDS)] | None = None
    filter: TaskFilter | None = None


def _update_something(values: Mapping) -> str | None:
    if values.get("priority") is None and values.get("move_to") is None:
        return "invalid body: give at least one of 'priority' and 'move_to'"
    return None


class UpdateTasks(Selection):
    """The selection, and at least one change. Only NEW and FAILED tasks change; with ``move_to``,
    tasks whose hash64 the target holds stay (``conflicts``), and ``priority`` applies to the moved
    ones only."""

    rules = (ONE_SELECTION, ModelRule(_update_something, {"anyOf": [
        {"required": [name], "properties": {name: {"type": "integer"}}} for name in ("priority", "move_to")]}))
    priority: SmallInt | None = None
    move_to: Id | None = Field(None, description="target project (MAINTENANCE needed there too)")


EDIT_FIELDS = ("recipe", "priority", "max_retries", "max_assign_time", "verification_count", "retry")
_EDIT_TYPES = {"recipe": "string", "retry": "boolean"}  # JSON types of the fields that are not integers


def _edit_something(values: Mapping) -> str | None:
    if all(values.get(name) is None for name in EDIT_FIELDS):
        return "invalid body: give at least one of " + ", ".join(f"'{name}'" for name in EDIT_FIELDS)
    return None


class EditTask(Message):
    """Any of the submit fields (same rules as /task/submit) and ``retry``; at least one."""

    partial = True
    rules = (ModelRule(_edit_something, {"anyOf": [
        {"required": [name], "properties": {name: {"type": _EDIT_TYPES.get(name, "integer")}}}
        for name in EDIT_FIELDS]}),)
    recipe: NonEmptyText | None = None
    priority: SmallInt | None = None
    max_retries: Count16 | None = None
    max_assign_time: Seconds31 | None = None
    verification_count: Count16 | None = None
    retry: bool | None = Field(None, description="also do what /project/retry_tasks does for this task")


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


class TaskRef(Message):
    id: int


class ListTasks(Message):
    """``GET /project/tasks/{id}``: the path id and LIST_QUERY's parameters (defaults here)."""

    id: int
    status: StatusFilter | None = None
    q: str | None = None
    assignee: int | None = None
    order: Literal["asc", "desc"] = "asc"
    after: int | None = None
    limit: int = 50


class SelectTasks(Selection):
    id: int


class UpdateSelected(UpdateTasks):
    id: int


class EditFields(EditTask):
    id: int


# --- reply shapes (OpenAPI) ---------------------------------------------------------------------
# What the routes answer in ``content``: the service builds it through them (tracker.shapes.content) and
# gateway/openapi.py documents them.
from pydantic import RootModel  # noqa: E402

from tracker.shapes import Count, Project, Shape  # noqa: E402


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
    """`content` of "No task available" with `?count=N` (absent without it)."""  # NO_TASK

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


class TaskRow(Shape):
    """A task as task administration shows it (contract §6.8)."""

    id: int
    project: int
    priority: SmallInt
    assignee: Annotated[int, Field(ge=0, description="the last holder's worker id (for CLOSED: the closer); "
                                                     "0 = none. Shown whether or not its lease is live")]
    retries: Count
    max_retries: Count
    status: Annotated[int, Field(ge=1, le=3, description="NEW 1, FAILED 2, CLOSED 3")]
    recipe: str = Field(description="in listings its first 1,000 characters; whole in /task/view and /task/edit")
    recipe_length: Annotated[int, Field(ge=0, description="the whole recipe's length in characters")]
    max_assign_time: Annotated[int, Field(ge=0, description="lease seconds; 0 = the lease never expires")]
    assign_time: Annotated[int, Field(ge=0, description="unix seconds of the last assignment; 0 = never assigned")]
    verification_count: Count
    hash64: int = Field(description="the stored signed value; 0 = none")
    lease_expires: Annotated[int, Field(ge=0, description="unix second the lease ends (past when it expired); "
                                                          "0 when not held or the lease never expires")]
    verifications: Annotated[int, Field(ge=0, description="verification records (quorum progress)")]


class TaskPage(Shape):
    tasks: Annotated[list[TaskRow], Field(max_length=LISTING_LIMIT)]
    next: int | None = Field(description="the `after` of the next page; null when no further task matches")


class OneTaskRow(Shape):
    task: TaskRow


class UpdatedTasks(Shape):
    affected_tasks: Count
    conflicts: Count = Field(0, description="tasks left behind: the target holds their hash64; "
                                            "present when move_to is given")
