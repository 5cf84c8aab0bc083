"""Plain data objects for the tracker's JSON shapes (contract §3). Unknown keys are kept in ``raw``
so a newer server never breaks an older client; missing keys (the original tracker lacks some)
take neutral defaults."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Result(enum.IntEnum):
    """Release results (contract §3.2)."""

    OK = 0
    FAIL = 1
    SKIP = 2

    @classmethod
    def parse(cls, value: Result | int | str) -> Result:
        """Accept ``Result.OK``, ``0`` or ``"ok"`` (any case)."""
        if isinstance(value, str):
            try:
                return cls[value.strip().upper()]
            except KeyError:
                raise ValueError(f"unknown release result {value!r}: use ok, fail or skip") from None
        return cls(value)


@dataclass(frozen=True)
class Project:
    id: int
    name: str = ""
    priority: int = 0
    version: str = ""
    motd: str = ""
    public: bool = False
    hidden: bool = False
    paused: bool = False
    chain: int = 0
    assign_rate: float = 0
    submit_rate: float = 0
    closed_task_count: int = 0
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Project:
        names = cls.__dataclass_fields__.keys() - {"raw"}
        return cls(**{k: doc[k] for k in names if doc.get(k) is not None}, raw=doc)


@dataclass(frozen=True)
class Task:
    id: int
    recipe: str
    priority: int = 0
    project: Project | None = None
    retries: int = 0
    max_retries: int = 0
    max_assign_time: int = 0
    assign_time: int = 0
    verification_count: int = 1
    status: int = 1
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Task:
        project = doc.get("project")
        return cls(
            id=doc["id"], recipe=doc.get("recipe", ""), priority=doc.get("priority") or 0,
            project=Project.from_json(project) if isinstance(project, dict) else None,
            retries=doc.get("retries") or 0, max_retries=doc.get("max_retries") or 0,
            max_assign_time=doc.get("max_assign_time") or 0, assign_time=doc.get("assign_time") or 0,
            verification_count=doc.get("verification_count") or 1, status=doc.get("status") or 1, raw=doc,
        )


@dataclass(frozen=True)
class BulkResult:
    """Outcome of a bulk submit. ``None`` counts: the server did not say (the original tracker)."""

    submitted: int | None
    duplicates: int | None
    skipped_lines: int = 0  # lines a resumed ``ttc submit`` did not send again

    def __str__(self) -> str:
        text = f"submitted {self.submitted}, duplicates {self.duplicates}"
        return text + (f" ({self.skipped_lines} lines already done earlier)" if self.skipped_lines else "")
