"""Object shapes of the contract (§3) that several services return, for the OpenAPI document only.

Plain pydantic models (not the strict request ``Message``): they describe what the services send,
are never used to validate or build an answer, and are left open (unknown keys allowed), so a
later addition to an object cannot make the document reject a real answer. Each service's own
reply shapes sit at the end of its ``messages.py``; gateway/openapi.py turns them into JSON Schema.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

UnixTime = Annotated[int, Field(description="unix seconds")]
Count = Annotated[int, Field(ge=0)]


class Shape(BaseModel):
    """Base of every reply shape (open: extra keys are allowed)."""


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
