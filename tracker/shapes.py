"""Object shapes of the contract (§3) that several services return, and how a reply is built from one.

Plain pydantic models (not the strict request ``Message``): each route's ``Doc(reply=…)`` names the
shape of its ``content``; the service builds that content through the same model (``content``), and
gateway/openapi.py turns it into JSON Schema, so the documented shape is the built shape. The
document leaves them open (unknown keys allowed), so a later addition to an object cannot make it
reject a real answer. Each service's own reply shapes sit at the end of its ``messages.py``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

UnixTime = Annotated[int, Field(description="unix seconds")]
Count = Annotated[int, Field(ge=0)]


class Shape(BaseModel):
    """Base of every reply shape (open: extra keys are allowed)."""


def content(shape: type[Shape], /, **fields: Any) -> dict:
    """A reply's ``content`` built through its documented shape: a missing or mistyped field fails
    here, in the service, instead of reaching a client; keys the shape does not name are not sent,
    nor defaults of fields not given."""
    return shape.model_validate(fields).model_dump(exclude_unset=True)


class Worker(Shape):
    """A worker's public record (contract §3); its secret is never shown again after creation."""

    id: int
    created: UnixTime
    alias: str
    paused: bool


class Manager(Shape):
    id: int
    username: str
    tracker_admin: bool
    register_time: UnixTime


class Project(Shape):
    """A project (contract §3); its secrets are never part of it."""

    # The same keys as tracker.views.PROJECT_PUBLIC (tests/test_openapi.py checks it).

    id: int
    priority: Count
    name: str
    clone_url: str
    git_repo: str
    version: str
    motd: str
    public: bool
    hidden: bool
    chain: Annotated[int, Field(ge=0, description="id of the project receiving closed-task copies; 0 = none")]
    paused: bool
    assign_rate: Annotated[float, Field(ge=0, description="tasks per second; 0 = unlimited")]
    submit_rate: Annotated[float, Field(ge=0, description="tasks per second; 0 = unlimited")]
    closed_task_count: Count
