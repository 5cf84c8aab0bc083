"""Request shapes of the project, access and role routes (contract §6.2, §6.4)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from tracker.fields import INT63_MAX, Id, Message, ModelRule, Rate, text
from tracker.routing import QueryParam

Priority = Annotated[int, Field(ge=0, le=(1 << 31) - 1)]
Chain = Annotated[int, Field(ge=0, le=INT63_MAX)]
# Length limits of contract §1.1, in characters.
Name = text(256, non_empty=True)
CloneUrl = text(2048)
GitRepo = text(512)
Version = text(256)
Motd = text(4096)
Secret = text(65536)
WebhookSecret = text(1024, min_chars=8)


def _not_public_and_hidden(values) -> str | None:
    if values["public"] and values["hidden"]:
        return "invalid field 'hidden': a project cannot be both public and hidden"
    return None


NOT_PUBLIC_AND_HIDDEN = ModelRule(_not_public_and_hidden, {
    "not": {"required": ["public", "hidden"], "properties": {"public": {"const": True}, "hidden": {"const": True}}}})


def _asks_something(values) -> str | None:
    if not (values["assign"] or values["submit"]):
        return "invalid field 'assign': at least one of 'assign' and 'submit' must be true"
    return None


ASKS_SOMETHING = ModelRule(_asks_something, {
    "anyOf": [{"required": ["assign"], "properties": {"assign": {"const": True}}},
              {"required": ["submit"], "properties": {"submit": {"const": True}}}]})


class CreateProject(Message):
    rules = (NOT_PUBLIC_AND_HIDDEN,)
    name: Name
    clone_url: CloneUrl = ""
    git_repo: GitRepo = ""
    version: Version = ""
    motd: Motd = ""
    priority: Priority = 0
    public: bool = False
    hidden: bool = False
    chain: Chain = 0
    assign_rate: Rate = 0.0
    submit_rate: Rate = 0.0


class UpdateProject(Message):
    """Partial update: absent (or null) fields keep their value. The merged project is validated (public and hidden together, chain, name taken)."""  # noqa: E501 - the OpenAPI description

    partial = True
    name: Name | None = None
    clone_url: CloneUrl | None = None
    git_repo: GitRepo | None = None
    version: Version | None = None
    motd: Motd | None = None
    priority: Priority | None = None
    public: bool | None = None
    hidden: bool | None = None
    chain: Chain | None = None
    assign_rate: Rate | None = None
    submit_rate: Rate | None = None
    paused: bool | None = None


class RequestAccess(Message):
    rules = (ASKS_SOMETHING,)
    project: Id
    assign: bool = False
    submit: bool = False


class SetRole(Message):
    manager: Id
    role: Annotated[int, Field(ge=0, le=31)]


class SetSecret(Message):
    secret: Secret


class SetWebhookSecret(Message):
    webhook_secret: WebhookSecret


UNIX_TIME = (1, (1 << 31) - 1)
MONITORING_QUERY = {"count": QueryParam(1, 999, required=True)}
MONITORING_BETWEEN_QUERY = {"from": QueryParam(*UNIX_TIME, required=True), "to": QueryParam(*UNIX_TIME, required=True)}


# --- what project_svc's operations receive over RPC (validated again there: tracker/service.py) --
class ProjectId(Message):
    """A path's project id."""

    id: Id


class ProjectUpdate(UpdateProject, ProjectId):
    """/project/update/{id}: the project and the fields sent; ``model_fields_set`` says which
    (absent ones keep their value, contract §6.4)."""

    def changes(self) -> dict:
        """The fields sent, as the project's column values."""
        return self.model_dump(include=self.model_fields_set - {"id"})


class AccessRef(ProjectId):
    """A worker's access row on a project: the path's project ``id`` and worker ``wid``."""

    wid: Id


class RoleChange(SetRole, ProjectId):
    """/manager/set_role_for_project/{id}."""


class SecretChange(SetSecret, ProjectId):
    """POST /project/secret/{id}."""


class WebhookSecretChange(SetWebhookSecret, ProjectId):
    """POST /project/webhook_secret/{id}."""


class VersionChange(Message):
    """git_svc's call for a signed push (contract §6.7): the projects it signed and their new version."""

    projects: list[Id]
    version: Version


class MonitoringQuery(ProjectId):
    """/project/monitoring/{id}?count=N (MONITORING_QUERY)."""

    count: int


class MonitoringRange(ProjectId):
    """/project/monitoring-between/{id}?from=T&to=T (MONITORING_BETWEEN_QUERY); ``from`` is a
    Python keyword, hence ``since``/``until``."""

    since: int = Field(alias="from")
    until: int = Field(alias="to")


# --- reply shapes (OpenAPI) ---------------------------------------------------------------------
# What the routes answer in ``content``: the service builds it through them (tracker.shapes.content) and
# gateway/openapi.py documents them.
from tracker.shapes import Count, Manager, Project, Shape, UnixTime, Worker  # noqa: E402


class ProjectCreated(Shape):
    id: int


class ProjectRecord(Shape):
    project: Project


class ProjectList(Shape):
    projects: list[Project]


class WorkerAccess(Shape):
    worker: Worker
    project: int
    assign: bool
    submit: bool
    request: bool = Field(description="true: a pending request, which grants nothing")


class AccessList(Shape):
    accesses: list[WorkerAccess]


class ManagerRole(Shape):
    manager: Manager
    role: Annotated[int, Field(ge=1, le=31, description="READ 1, EDIT 2, MANAGE_ACCESS 4, SECRET 8, MAINTENANCE 16")]


class ProjectManagers(Shape):
    managers: list[ManagerRole]


class ProjectSecret(Shape):
    secret: str


class ProjectWebhookSecret(Shape):
    webhook_secret: str


class Snapshot(Shape):
    new_task_count: Count
    failed_task_count: Count
    closed_task_count: Count
    worker_access_count: Count
    awaiting_verification_count: Count
    time_stamp: UnixTime


class Snapshots(Shape):
    snapshots: list[Snapshot]
