"""Turning HTTP input into validated parameters, with the contract's error messages (§1)."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from functools import cache
from typing import Any

import falcon
from pydantic import ValidationError

from tracker import jsoncodec
from tracker.errors import Invalid, TooLarge, Unauthorized
from tracker.fields import INT63_MAX, Message, parse_int
from tracker.fields import unwrap as _unwrap
from tracker.hashing import decode_worker_secret, digest
from tracker.routing import QueryRule, Route
from tracker.wording import INVALID_WORKER_CREDENTIALS, SECRET_HEADER, SESSION_COOKIE, WORKER_ID_HEADER


def read_body(req: falcon.Request, limit: int) -> bytes:
    """Step 2 of the check order: 413 above the limit, whatever the route.

    A chunked body has no Content-Length, and Falcon's bounded stream then reads nothing; the raw
    WSGI input (gunicorn's chunked reader, which ends at the last chunk) is read instead.
    """
    length = req.content_length
    if length is not None and length > limit:
        raise TooLarge(f"Request body larger than {limit} bytes")
    chunked = length is None and "chunked" in (req.get_header("Transfer-Encoding") or "").lower()
    stream = req.stream if chunked else req.bounded_stream
    parts, size = [], 0
    while size <= limit:
        part = stream.read(limit + 1 - size)
        if not part:
            break
        parts.append(part)
        size += len(part)
    if size > limit:
        raise TooLarge(f"Request body larger than {limit} bytes")
    return b"".join(parts)


def credentials(req: falcon.Request) -> dict:
    """Worker headers and session cookie as digests; malformed worker headers are a 401."""
    caller: dict[str, Any] = {}
    wid, secret = req.get_header(WORKER_ID_HEADER), req.get_header(SECRET_HEADER)
    if wid is not None or secret is not None:
        worker_id = parse_int((wid or "").strip(), 1, INT63_MAX)
        raw_secret = decode_worker_secret(secret or "")
        if worker_id is None or not raw_secret:
            raise Unauthorized(INVALID_WORKER_CREDENTIALS)
        caller["worker_id"] = worker_id
        caller["worker_digest"] = digest(raw_secret)
    cookies = req.get_cookie_values(SESSION_COOKIE)
    if cookies and cookies[0]:
        caller["session_digest"] = digest(cookies[0])
    return caller


def path_id(name: str, raw: str) -> int:
    value = parse_int(raw, 1, INT63_MAX) if raw[:1].isdigit() else None
    if value is None:
        raise Invalid(f"invalid path parameter '{name}': must be an integer in 1 … 2^63−1")
    return value


def query_params(req: falcon.Request, spec: dict[str, QueryRule]) -> dict[str, Any]:
    """The route's query parameters (unknown ones ignored), each by its rule (tracker/routing.py)."""
    values: dict[str, Any] = {}
    for name, rule in spec.items():
        raw = req.get_param(name)
        if raw is None:
            if rule.required:
                raise Invalid(f"invalid query parameter '{name}': required")
            continue
        value = rule.parse(raw)
        if value is None:
            raise Invalid(f"invalid query parameter '{name}': {rule.rule}")
        values[name] = value
    return values


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _without_nulls(obj: dict) -> dict:
    """A field whose value is null counts as absent (contract §1.1), at every depth.

    Applied by the decoder to each object as it is built, so no recursion of ours can overflow
    on a deeply nested body (a recursive pass answered 500 at ~600 levels).
    """
    return {k: v for k, v in obj.items() if v is not None} if None in obj.values() else obj


def parse_json(raw: bytes, route: Route) -> Any:
    if not raw.strip():
        return {}
    try:
        # Strict UTF-8 first: json.loads on bytes would let encoded surrogates through.
        # The null-dropping hook costs a Python call per object; a body without "null" needs none
        # (and goes through orjson, tracker/jsoncodec.py, which answers as json does).
        hook = _without_nulls if b"null" in raw else None
        data = jsoncodec.loads(raw.decode("utf-8"), parse_constant=_reject_constant, object_hook=hook)
    except RecursionError:
        raise Invalid("malformed JSON body: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise Invalid(f"malformed JSON body: {exc}") from None
    for extra in route.extras:
        data = extra.json(data)
    if not isinstance(data, dict):
        raise Invalid("request body must be a JSON object")
    return data


def _loc(parts: tuple) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass(frozen=True)
class _Names:
    """A model's field names, for matching a body's keys case-insensitively (contract §1.1)."""

    exact: frozenset[str]
    by_lower: dict[str, str]
    nested: dict[str, tuple[bool, type[Message]]]  # field → (is a list of, item model)


@cache
def _names(model: type[Message]) -> _Names:
    nested: dict[str, tuple[bool, type[Message]]] = {}
    for name, info in model.model_fields.items():
        annotation = _unwrap(info)[0]  # through ``X | None``: an optional nested object folds too
        is_list = typing.get_origin(annotation) is list
        inner = typing.get_args(annotation)[0] if is_list else annotation
        if isinstance(inner, type) and issubclass(inner, Message):
            nested[name] = (is_list, inner)
    fields = frozenset(model.model_fields)
    return _Names(fields, {name.lower(): name for name in fields}, nested)


def fold_keys(model: type[Message], data: dict) -> dict:
    """The body with each key spelled as the model's field it matches case-insensitively, as the
    original's Go decoder matched them (its own client sends ``{"Message": …}`` to ``/log/*``).

    An exactly-cased key wins over other spellings of the same field; among only differently-cased
    ones the last in the body wins. Losing spellings are dropped, never validated. Nested models
    (bulk items) fold the same way. A body already spelled exactly is returned as it is.
    """
    names = _names(model)
    if not data.keys() <= names.exact:
        folded: dict = {}
        for key, value in data.items():
            name = key if key in names.exact else names.by_lower.get(key.lower())
            if name is None or (name != key and name in data):
                continue  # unknown (ignored anyway), or an exactly-cased spelling wins
            folded[name] = value
        data = folded
    for name, (is_list, item_model) in names.nested.items():
        value = data.get(name)
        if is_list and isinstance(value, list):
            if not _keys_within(value, _names(item_model).exact):
                data = {**data, name: [fold_keys(item_model, item) if isinstance(item, dict) else item
                                       for item in value]}
        elif isinstance(value, dict):
            data = {**data, name: fold_keys(item_model, value)}
    return data


def _keys_within(items: list, names: frozenset[str]) -> bool:
    """Whether every object in ``items`` spells only ``names`` (other items are validation's
    business). A bulk of objects is checked at C speed: a Python loop over 10,000 items cost
    ~4 ms."""
    if set(map(type, items)) <= {dict}:
        return set().union(*items) <= names
    return all(item.keys() <= names for item in items if isinstance(item, dict))


_POWERS = {(1 << k) + d: f"{sign}2^{k}{tail}" for k in (31, 32, 63, 64)
           for d, sign, tail in ((-1, "", "−1"), (0, "", ""))} | {-(1 << 63): "−2^63", -(1 << 31): "−2^31"}


def _number(value: float) -> str:
    return _POWERS.get(value, f"{value:g}" if isinstance(value, float) else str(value))


def _field_info(model: type[Message], loc: tuple) -> Any:
    """The FieldInfo an error location names (list indices skipped), or None."""
    info = None
    for part in loc:
        if isinstance(part, int):
            continue
        if model is None or part not in model.model_fields:
            return None
        info = model.model_fields[part]
        annotation = info.annotation
        inner = typing.get_args(annotation)[0] if typing.get_origin(annotation) is list else annotation
        model = inner if isinstance(inner, type) and issubclass(inner, Message) else None
    return info


def _range(metadata: list) -> str:
    """``LO … HI`` (or ``≥ LO`` / ``≤ HI``) from a field's bounds, '' without any."""
    lo = next((m.ge for m in metadata if getattr(m, "ge", None) is not None), None)
    hi = next((m.le for m in metadata if getattr(m, "le", None) is not None), None)
    if lo is not None and hi is not None:
        return f" in {_number(lo)} … {_number(hi)}"
    if lo is not None:
        return f" ≥ {_number(lo)}"
    return f" ≤ {_number(hi)}" if hi is not None else ""


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _wording(err: dict, model: type[Message]) -> str:
    """The rule an error breaks, in plain words for its type — strings in characters, lists in
    items, numbers with their range — never a validation library's phrase (contract §1.4)."""
    kind, ctx = err["type"], err.get("ctx") or {}
    base, metadata = _unwrap(_field_info(model, err["loc"]))
    if kind == "missing":
        return "required"
    if kind in ("value_error", "assertion_error"):
        return str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind.startswith("int_") or (kind in _BOUND_ERRORS and base is int):
        return "must be an integer" + _range(metadata)
    if kind.startswith("float_") or kind == "finite_number" or kind in _BOUND_ERRORS:
        return "must be a finite number" + _range(metadata)
    if kind.startswith("bool_"):
        return "must be true or false"
    text = base is str or kind.startswith("string_")  # strings count characters, lists items
    if kind in ("string_too_long", "too_long"):
        limit = ctx["max_length"]
        unit = "be at most " + _plural(limit, "character") if text else "have at most " + _plural(limit, "item")
        return "must " + unit
    if kind in ("string_too_short", "too_short"):
        limit = ctx.get("min_length", 1)
        if limit == 1:
            return "must be a non-empty string" if text else "must be a non-empty list"
        unit = "be at least " + _plural(limit, "character") if text else "have at least " + _plural(limit, "item")
        return "must " + unit
    if kind == "string_pattern_mismatch":
        return "must not contain U+0000"
    if kind.startswith("string_"):
        return "must be a string"
    if kind == "list_type":
        return "must be a list"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "must be a JSON object"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', 'the listed values')}"
    return "is not valid"


_BOUND_ERRORS = frozenset({"greater_than_equal", "less_than_equal", "greater_than", "less_than"})


def validate_body(model: type[Message], data: dict) -> dict:
    data = fold_keys(model, data)
    fast = model.fast_params(data)
    if fast is not None:
        return fast
    try:
        message = model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False)[0]
        text = _wording(err, model)
        if not err["loc"]:
            raise Invalid(text) from None
        raise Invalid(f"invalid field '{_loc(err['loc'])}': {text}") from None
    return message.to_params()
