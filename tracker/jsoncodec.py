"""JSON for request bodies and RPC messages: orjson where it gives the standard library's answer,
the standard library where it would not.

Why: a 10,000-task bulk is about 1.4 MB of JSON, decoded by the gateway, encoded to task_svc and
decoded there; the standard library spent ~27 ms decoding and ~22 ms encoding it, orjson ~7 and ~2
(issue 17: bulk submit against COPY).

Where orjson and the standard library disagree, the standard library decides, so no answer and no
error message changes (tests/unit/test_jsoncodec.py):

- ``loads``: orjson rejects what ``json`` accepts or words differently (NaN/Infinity, lone
  surrogate escapes ``"\\ud800"``, nesting beyond 1,024, numbers beyond a double) — any orjson
  error hands the text to ``json``. Integers beyond 64 bits orjson returns as floats, silently: a
  body with a run of 19+ digits (rare: one map and one search, ~1 ms per MB) has its floats
  checked, and one of 2^63 or more goes to ``json``.
- ``dumps``: orjson refuses non-str keys, integers beyond 64 bits, lone surrogates and types it does
  not know (``TypeError``) — those go to ``json`` (ASCII-escaped, as before). orjson writes NaN and
  Infinity as ``null`` where ``json`` wrote ``NaN``; nothing sends them (every number field is
  validated finite at the gateway, and replies come from the database's integers).

The services' kombu ``json`` serializer is replaced by the same pair (``register_kombu``), under
the same name and content type, so the gateway and nameko keep speaking ``application/json``.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_DIGITS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))  # digit → "0", else " "
_LONG_RUN = b"0" * 19  # -9223372036854775809 (below int64) is 19 digits
_INT64_MIN, _UINT64_MAX = -(1 << 63), (1 << 64) - 1


def dumps(obj: Any) -> bytes:
    """UTF-8 JSON without spaces."""
    try:
        return orjson.dumps(obj, option=orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME)
    except TypeError:
        return json.dumps(obj, separators=(",", ":")).encode()


def dumps_str(obj: Any) -> str:
    return dumps(obj).decode()


def loads(raw: bytes | str, **stdlib: Any) -> Any:
    """``json.loads(raw, **stdlib)``'s result. ``stdlib`` (``parse_constant`` …) only matters where
    the standard library decides; with an ``object_hook`` it always does."""
    if stdlib.get("object_hook") is None:
        ok, data = _fast(raw)
        if ok:
            return data
    return json.loads(raw, **stdlib)


def _fast(raw: bytes | str) -> tuple[bool, Any]:
    """orjson's result and whether it is the standard library's too."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False, None
    return not (_may_hold_big_ints(raw) and _has_big_float(data)), data


def _may_hold_big_ints(raw: bytes | str) -> bool:
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    return _LONG_RUN in raw.translate(_DIGITS)


def _has_big_float(data: Any) -> bool:
    """A float orjson may have made of an integer beyond 64 bits. Iterative: nesting is up to
    orjson's 1,024 levels, more than Python's recursion limit."""
    stack = [data]
    pop, extend = stack.pop, stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind is dict:
            extend(item.values())
        elif kind is list:
            extend(item)
        elif kind is float and not _INT64_MIN < item < _UINT64_MAX:
            return True
    return False


def register_kombu() -> None:
    """Make kombu's ``json`` serializer (nameko's, for requests and replies) this module's, in this
    process. kombu's own decoder turns ``{"__type__", "__value__"}`` objects into datetimes, UUIDs …
    and its encoder does the reverse: a message with that marker, or a value orjson passes through
    (datetime, Decimal, bytes …), still goes through kombu's. One difference is left: orjson writes
    a UUID as a plain string where kombu wrote ``{"__type__": "uuid", …}``; no service sends one."""
    from kombu.serialization import registry
    from kombu.utils import json as kombu_json

    def encode(obj: Any) -> bytes | str:
        try:
            return orjson.dumps(obj, option=orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME)
        except TypeError:
            return kombu_json.dumps(obj)

    def decode(raw: bytes | str) -> Any:
        # kombu's hook acts on a "__type__" key, spelled out or with \u escapes
        marker, escape = (b'"__type__"', b"\\u") if isinstance(raw, bytes) else ('"__type__"', "\\u")
        if marker not in raw and escape not in raw:
            ok, data = _fast(raw)
            if ok:
                return data
        return kombu_json.loads(raw)

    registry.register("json", encode, decode, content_type="application/json", content_encoding="utf-8")

