"""Request shapes of the log routes (contract §6.6)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from tracker.fields import INT63_MAX, Message, NonEmptyText

Timestamp = Annotated[int, Field(ge=1, le=INT63_MAX)]


class WorkerLog(Message):
    scope: NonEmptyText
    message: NonEmptyText
    timestamp: Timestamp


class LogQuery(Message):
    level: Annotated[int, Field(ge=1, le=7)]
    since: Timestamp
