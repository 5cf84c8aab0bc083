"""Field types of the contract (§1.2) as pydantic annotations, shared by every service's messages.

Strict: an int field takes a JSON integer only (not 1.0, "1" or true); strings must be storable
in PostgreSQL text (no U+0000, no lone surrogates). Range errors name the field via the gateway.

Free-text fields carry the contract's length limits (§1.1), counted in characters (Unicode code
points: Python's ``len`` of a ``str``, and JSON Schema's ``maxLength``), so that no client can make
every later reader of a project, worker or log entry download megabytes.
"""

from __future__ import annotations

import copy
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, NotRequired

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import core_schema
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from tracker.hashing import to_signed64

INT63_MAX = (1 << 63) - 1
_INTEGER = re.compile(r"(-?)0*([0-9]{1,20})")  # ≤ 20 significant digits: int() never sees a huge string


def parse_int(text: str, lo: int, hi: int) -> int | None:
    """A decimal integer in lo … hi, else None; bounded so that no input can make int() raise
    (path ids, worker headers, query parameters)."""
    match = _INTEGER.fullmatch(text)
    if match is None:
        return None
    value = -int(match.group(2)) if match.group(1) else int(match.group(2))
    return value if lo <= value <= hi else None


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


def merge_schema(schema: dict, extra: dict) -> dict:
    """``extra`` added to a JSON Schema: a lower bound keeps the stricter one, ``allOf`` lists add up."""
    for key, value in copy.deepcopy(extra).items():
        if key == "minLength":
            schema[key] = max(schema.get(key, 0), value)
        elif key == "allOf" and key in schema:
            schema[key] = [*schema[key], *value]
        else:
            schema[key] = value
    return schema


@dataclass(frozen=True, eq=False)
class Rule:
    """One field rule, declared once with everything that states it.

    ``check`` is what the model runs (an after-validator: it raises ValueError with the gateway's
    wording, or converts); ``schema`` is what it adds to the field's JSON Schema (the OpenAPI
    document, gateway/openapi.py); ``core`` is pure pydantic-core metadata with the same verdict, so
    a big body can be validated without a Python call per item (``core_typed_dict``): ``()`` for a
    conversion that refuses nothing (its builder applies it again), None when there is no such form.
    """

    check: Callable[[Any], Any]
    schema: Mapping[str, Any] = field(default_factory=dict)
    core: tuple | None = None

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> dict:
        return merge_schema(handler(schema), dict(self.schema))


@dataclass(frozen=True, eq=False)
class ModelRule:
    """A rule across a model's fields: ``problem`` reads the field values (the model's, or a
    validated dict of the same fields) and answers the 400 message, or None when they are fine;
    ``schema`` is the same rule in JSON Schema, added to the model's schema. ``needs``: the rule
    can break only when the values hold at least one of these fields (empty: always may), so a
    bulk's validated items holding none of them skip the call (10,000 items: two calls each;
    tests/test_bulk_validation.py checks the claim)."""

    problem: Callable[[Mapping[str, Any]], str | None]
    schema: Mapping[str, Any] = field(default_factory=dict)
    needs: frozenset[str] = frozenset()


# PostgreSQL text cannot hold U+0000 (contract §1.2). In core form a pattern refuses it, and any
# constrained str refuses lone surrogates in pydantic-core by itself.
NO_NUL = "^[^\\u0000]*$"  # JSON Schema spelling
STORABLE = Rule(_storable, {"pattern": NO_NUL}, core=(Field(pattern=r"^[^\x00]*$"),))
NON_EMPTY = Rule(_non_empty, {"minLength": 1}, core=(Field(min_length=1),))
SIGNED64 = Rule(to_signed64, core=())  # a conversion: 2^63 … 2^64−1 name the same bits as negatives
# 0 (= unlimited) or MIN_RATE … MAX_RATE; the "not" leaves null alone (an optional field's null is absent).
RATE = Rule(_rate, {"minimum": 0, "maximum": MAX_RATE,
                    "not": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": MIN_RATE},
                    "description": f"tasks per second: 0 = unlimited, else {MIN_RATE:g} … {MAX_RATE:.0f}"})

Text = Annotated[str, STORABLE]
NonEmptyText = Annotated[str, STORABLE, NON_EMPTY]
Id = Annotated[int, Field(ge=1, le=INT63_MAX)]
Int64h = Annotated[int, Field(ge=-(1 << 63), le=(1 << 64) - 1), SIGNED64]
Rate = Annotated[float, RATE]


def text(max_chars: int, *, min_chars: int = 0, non_empty: bool = False) -> Any:
    """A storable string of at most ``max_chars`` characters (and at least ``min_chars``).

    The length is checked first, so an oversized value is refused for its length, before any other
    rule looks at it; the gateway words the error ("must be at most N characters").
    """
    limits = Field(min_length=min_chars or None, max_length=max_chars)
    rules = [STORABLE, *([NON_EMPTY] if non_empty and not min_chars else [])]
    return Annotated[(str, limits, *rules)]


def _rules_schema(schema: dict, cls: type) -> None:
    for rule in getattr(cls, "rules", ()):
        merge_schema(schema, dict(rule.schema))


class Message(BaseModel):
    """Base of every request body: strict types, unknown fields ignored, no NaN/Infinity."""

    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False, frozen=True,
                              json_schema_extra=_rules_schema)
    partial: ClassVar[bool] = False  # True for updates: only the fields given reach the service
    rules: ClassVar[tuple[ModelRule, ...]] = ()  # rules across fields, checked after the fields

    @model_validator(mode="after")
    def _model_rules(self):
        for rule in self.rules:
            problem = rule.problem(self.__dict__)
            if problem:
                raise ValueError(problem)
        return self

    @classmethod
    def problem(cls, values: Mapping[str, Any]) -> str | None:
        """The first cross-field rule ``values`` break (their message), or None."""
        for rule in cls.rules:
            found = rule.problem(values)
            if found:
                return found
        return None

    def to_params(self) -> dict:
        """What the service receives over RPC (plain JSON types)."""
        return self.model_dump(exclude_unset=self.partial)

    @classmethod
    def fast_params(cls, data: dict) -> dict | None:
        """Optional shortcut for big bodies: the params of a body this model would accept, or None
        to validate with the model (which then also words any error). Must never accept what the
        model refuses, nor answer other params."""
        return None


class NoParams(Message):
    """The params of an operation that takes none (a read of the caller's own view, or a list):
    declared all the same, so that every operation validates what it receives."""


def unwrap(info: Any) -> tuple[Any, list]:
    """A field's base type and every constraint on it, through ``X | None`` and nested Annotated."""
    annotation, metadata = getattr(info, "annotation", None), list(getattr(info, "metadata", ()))
    while True:
        args = typing.get_args(annotation)
        if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
            annotation = next(arg for arg in args if arg is not type(None))
        elif typing.get_origin(annotation) is typing.Annotated:
            annotation = args[0]
            for extra in args[1:]:
                metadata.extend(getattr(extra, "metadata", None) or [extra])
        else:
            return annotation, metadata


def core_typed_dict(model: type[Message]) -> type:
    """The model's field rules as a TypedDict that pydantic-core validates without calling Python:
    each ``Rule`` replaced by its ``core`` form. Derived, never written: the model stays the one
    declaration. Not in it: defaults (an absent key stays absent: filling them costs ~40 % more
    core time), cross-field rules (``Message.rules``, called on the dict), and conversions
    (``Rule(core=())``), which whoever builds from the dict applies."""
    shape: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        base, metadata = unwrap(info)
        core: list = []
        for item in metadata:
            if isinstance(item, Rule):
                if item.core is None:
                    raise TypeError(f"{model.__name__}.{name}: {item.check.__name__} has no pure-core form")
                core += item.core
            elif hasattr(item, "func") or hasattr(item, "__get_pydantic_core_schema__"):
                raise TypeError(f"{model.__name__}.{name}: {item!r} has no pure-core form")
            else:
                core.append(item)
        annotation = Annotated[(base, *core)] if core else base
        shape[name] = annotation if info.is_required() else NotRequired[annotation]
    typed = TypedDict(f"{model.__name__}Core", shape)  # type: ignore[operator]
    typed.__pydantic_config__ = ConfigDict(strict=model.model_config.get("strict", False),  # type: ignore[attr-defined]
                                           extra="ignore", allow_inf_nan=model.model_config.get("allow_inf_nan", True))
    return typed
