"""Every field rule of every route, broken on purpose: each message is plain English for the
field's type — strings in characters, lists in items, numbers with their range — names the field,
and never repeats a validation library's phrase (contract §1.4; gateway/inputs.py words them).

A unit test: it builds each route's request model from the plugins and validates in-process, the
same ``validate_body`` the gateway runs; tests/test_conventions.py checks the messages end to end.
"""

from __future__ import annotations

import re

import pytest

from gateway.inputs import _unwrap, validate_body
from tracker.errors import Invalid, Refused
from tracker.fields import Message
from tracker.plugins import discover

LIBRARY_PHRASES = ("Input should", "validation", "Value error", "Value should", "List should", "String should",
                   "pydantic", "items after", "type=", "https://", "Assertion failed")
PLAIN = [
    r"required",
    r"must be an integer( in -?[−0-9^]+ … [−0-9^]+| ≥ [−0-9^]+| ≤ [−0-9^]+)?",
    r"must be a finite number( in .+ … .+)?",
    r"must be 0 \(unlimited\) or a number of tasks per second in 0\.001 … 1000000",
    r"must be true or false",
    r"must be a string",
    r"must be a non-empty string",
    r"must be (at most|at least) \d+ characters?",
    r"must not contain U\+0000",
    r"must be a list",
    r"must be a non-empty list",
    r"must have (at most|at least) \d+ items?",
    r"must be a JSON object",
]
BAD_VALUES = ["text", 1.5, True, {}, [], None]  # None: the field left out


def routes_with_bodies() -> list[tuple[str, type[Message]]]:
    return [(f"{route.method} {route.path}", route.body) for plugin in discover().values()
            for route in plugin.route_list() if route.body is not None]


def _sample(base, metadata: list):
    """A valid value of a field's type and constraints."""
    if base is bool:
        return True
    if base is int:
        lo = next((m.ge for m in metadata if getattr(m, "ge", None) is not None), 1)
        return max(lo, 1) if lo < 1 <= next((m.le for m in metadata if getattr(m, "le", None)), 1 << 62) else lo
    if base is float:
        return 1.0
    if base is str:
        lo = next((m.min_length for m in metadata if getattr(m, "min_length", None)), 8)
        return "v" * max(lo, 8)
    if isinstance(base, type) and issubclass(base, Message):
        return valid_body(base)
    if getattr(base, "__origin__", None) is list:
        return [_sample(*_unwrap_type(base.__args__[0]))]
    raise AssertionError(f"no sample for {base}")


def _unwrap_type(annotation):
    class Info:
        pass

    info = Info()
    info.annotation, info.metadata = annotation, []
    return _unwrap(info)


def valid_body(model: type[Message]) -> dict:
    return {name: _sample(*_unwrap(info)) for name, info in model.model_fields.items() if info.is_required()}


def violations(model: type[Message]):
    """(field path, body) pairs, each body breaking one rule of one field."""
    valid = valid_body(model)
    for name, info in model.model_fields.items():
        base, metadata = _unwrap(info)
        for bad in BAD_VALUES:
            if bad is None and not info.is_required():
                continue
            body = {k: v for k, v in valid.items() if k != name}
            if bad is not None:
                body[name] = bad
            yield name, bad, body
        for m in metadata:
            for attr, step in (("ge", -1), ("le", 1)):
                bound = getattr(m, attr, None)
                if bound is not None and base in (int, float):
                    yield name, bound + step, {**valid, name: bound + step}
            if getattr(m, "max_length", None) is not None and base is str:
                yield name, "long", {**valid, name: "x" * (m.max_length + 1)}
            if getattr(m, "min_length", None) and base is str:
                yield name, "short", {**valid, name: "x" * (m.min_length - 1)}
        if base is str:
            yield name, "NUL", {**valid, name: "a\x00b"}
        if getattr(base, "__origin__", None) is list:
            item = _unwrap_type(base.__args__[0])[0]
            if isinstance(item, type) and issubclass(item, Message):
                for field, _bad, item_body in violations(item):
                    yield f"{name}[0].{field}", _bad, {**valid, name: [item_body]}


CASES = [(route, model, field, bad, body) for route, model in routes_with_bodies()
         for field, bad, body in violations(model)]


def test_the_walk_covers_every_route_with_a_body():
    covered = {route for route, *_ in CASES}
    assert covered == {route for route, _ in routes_with_bodies()}
    assert len(CASES) > 300


@pytest.mark.parametrize("route, model, field, bad, body", CASES,
                         ids=[f"{c[0]}:{c[2]}={c[3]!r}"[:90] for c in CASES])
def test_message_is_plain_english(route, model, field, bad, body):
    try:
        validate_body(model, body)
    except Refused as exc:
        assert isinstance(exc, Invalid)
        message = exc.message
    else:
        return  # a value this field accepts (e.g. an int where a bool is also allowed): nothing to word
    assert not any(phrase in message for phrase in LIBRARY_PHRASES), message
    match = re.fullmatch(r"invalid field '([^']+)': (.+)", message)
    if match is None:  # a cross-field rule names its fields in its own sentence
        assert "invalid field '" in message or message.startswith("invalid"), message
        return
    path, text = match.groups()
    assert path.split(".")[-1].split("[")[0] in field.split(".")[-1] or field.startswith(path.split("[")[0]), message
    if text not in ("required",) and not any(re.fullmatch(rule, text) for rule in PLAIN):
        # field-specific rules written by hand (usernames, aliases, hashes…): plain words, a verb
        assert text.startswith(("must", "give", "cannot", "may")), message
