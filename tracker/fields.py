"""Field types of the contract (§1.2) as pydantic annotations, shared by every service's messages.

Strict: an int field takes a JSON integer only (not 1.0, "1" or true); strings must be storable
in PostgreSQL text (no U+0000, no lone surrogates). Range errors name the field via the gateway.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from tracker.hashing import to_signed64

INT63_MAX = (1 << 63) - 1


def _storable(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain U+0000")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (lone surrogate)") from None
    return value


def _non_empty(value: str) -> str:
    if value == "":
        raise ValueError("must be a non-empty string")
    return value


Text = Annotated[str, AfterValidator(_storable)]
NonEmptyText = Annotated[str, AfterValidator(_storable), AfterValidator(_non_empty)]
Id = Annotated[int, Field(ge=1, le=INT63_MAX)]
Int64h = Annotated[int, Field(ge=-(1 << 63), le=(1 << 64) - 1), AfterValidator(to_signed64)]
Rate = Annotated[float, Field(ge=0)]


class Message(BaseModel):
    """Base of every request body: strict types, unknown fields ignored, no NaN/Infinity."""

    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False, frozen=True)
    partial: ClassVar[bool] = False  # True for updates: only the fields given reach the service

    def to_params(self) -> dict:
        """What the service receives over RPC (plain JSON types)."""
        return self.model_dump(exclude_unset=self.partial)

    @classmethod
    def fast_params(cls, data: dict) -> dict | None:
        """Optional shortcut for big bodies: the params of a body this model would accept, or None
        to validate with the model (which then also words any error). Must never accept what the
        model refuses, nor answer other params."""
        return None

