"""Request shapes of the worker routes (contract §6.3)."""

from __future__ import annotations

from pydantic import field_validator

from tracker.fields import Id, Message, NonEmptyText, Text

RESERVED_ALIAS = "unassigned"  # the assignee report's name for tasks nobody holds


def _not_reserved(alias: str) -> str:
    if alias == RESERVED_ALIAS:
        raise ValueError(f"'{RESERVED_ALIAS}' is reserved")
    return alias


class CreateWorker(Message):
    alias: Text = ""

    _alias = field_validator("alias")(_not_reserved)


class UpdateWorker(Message):
    alias: NonEmptyText

    _alias = field_validator("alias")(_not_reserved)


class SetPaused(Message):
    worker: Id
    paused: bool
