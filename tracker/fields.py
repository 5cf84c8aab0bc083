"""Field types of the contract (§1.2) as pydantic annotations, shared by every service's messages.

Strict: an int field takes a JSON integer only (not 1.0, "1" or true); strings must be storable
in PostgreSQL text (no U+0000, no lone surrogates). Range errors name the field via the gateway.

Free-text fields carry the contract's length limits (§1.1), counted in characters (Unicode code
points: Python's ``len`` of a ``str``, and JSON Schema's ``maxLength``), so that no client can make
every later reader of a project, worker or log entry download megabytes.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

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


# Rates (contract §6.4): 0 = unlimited, else MIN_RATE … MAX_RATE tasks per second. A tinier rate
# made one token cost an infinite time (a 429 carrying Infinity, and a project locked for good).
MIN_RATE = 0.001
MAX_RATE = 1_000_000.0


def _rate(value: float) -> float:
    if value != 0 and not MIN_RATE <= value <= MAX_RATE:
        raise ValueError(f"must be 0 (unlimited) or a number of tasks per second in {MIN_RATE:g} … {MAX_RATE:.0f}")
    return value


Text = Annotated[str, AfterValidator(_storable)]
NonEmptyText = Annotated[str, AfterValidator(_storable), AfterValidator(_non_empty)]
Id = Annotated[int, Field(ge=1, le=INT63_MAX)]
Int64h = Annotated[int, Field(ge=-(1 << 63), le=(1 << 64) - 1), AfterValidator(to_signed64)]
Rate = Annotated[float, AfterValidator(_rate)]


def text(max_chars: int, *, min_chars: int = 0, non_empty: bool = False) -> Any:
    """A storable string of at most ``max_chars`` characters (and at least ``min_chars``).

    The length is checked first, so an oversized value is refused for its length, before any other
    rule looks at it; the gateway words the error ("must be at most N characters").
    """
    limits = Field(min_length=min_chars or None, max_length=max_chars)
    rules = [AfterValidator(_storable), *([AfterValidator(_non_empty)] if non_empty and not min_chars else [])]
    return Annotated[(str, limits, *rules)]


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

