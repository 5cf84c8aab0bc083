"""Request shapes of the log routes (contract §6.6)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from tracker.fields import INT63_MAX, Message, text

Timestamp = Annotated[int, Field(ge=1, le=INT63_MAX)]
Scope = text(256, non_empty=True)  # characters (contract §1.1)
LogText = text(65536, non_empty=True)


class WorkerLog(Message):
    scope: Scope
    message: LogText
    timestamp: Timestamp


class LogQuery(Message):
    level: Annotated[int, Field(ge=1, le=7)]
    since: Timestamp


# --- reply shapes (OpenAPI) ---------------------------------------------------------------------
# What the routes answer in ``content``: the service builds it through them (tracker.shapes.content) and
# gateway/openapi.py documents them.
from tracker.shapes import Shape  # noqa: E402


class LogEntry(Shape):
    level: Annotated[int, Field(ge=1, le=7, description="FATAL 1 … TRACE 7")]
    message: str
    timestamp: int
    data: str = Field(description='JSON-encoded object; for worker logs {"scope": string, "worker": int}')


class LogEntries(Shape):
    logs: list[LogEntry]
