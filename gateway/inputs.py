"""Turning HTTP input into validated parameters, with the contract's error messages (§1)."""

from __future__ import annotations

import json
import re
from typing import Any

import falcon
from pydantic import ValidationError

from tracker.errors import ApiError, bad_request
from tracker.fields import INT63_MAX, Message
from tracker.hashing import decode_worker_secret, digest
from tracker.routing import QueryParam, Route

_DECIMAL = re.compile(r"[0-9]+")
SESSION_COOKIE = "tt"


def read_body(req: falcon.Request, limit: int) -> bytes:
    """Step 2 of the check order: 413 above the limit, whatever the route."""
    length = req.content_length
    if length is not None and length > limit:
        raise ApiError(413, f"Request body larger than {limit} bytes")
    raw = req.bounded_stream.read(limit + 1)
    if len(raw) > limit:
        raise ApiError(413, f"Request body larger than {limit} bytes")
    return raw


def credentials(req: falcon.Request) -> dict:
    """Worker headers and session cookie as digests; malformed worker headers are a 401."""
    caller: dict[str, Any] = {}
    wid, secret = req.get_header("X-Worker-ID"), req.get_header("X-Secret")
    if wid is not None or secret is not None:
        wid = (wid or "").strip()
        raw_secret = decode_worker_secret(secret or "")
        if not _DECIMAL.fullmatch(wid) or not (1 <= int(wid) <= INT63_MAX) or not raw_secret:
            raise ApiError(401, "Invalid worker credentials")
        caller["worker_id"] = int(wid)
        caller["worker_digest"] = digest(raw_secret)
    cookies = req.get_cookie_values(SESSION_COOKIE)
    if cookies and cookies[0]:
        caller["session_digest"] = digest(cookies[0])
    return caller


def path_id(name: str, raw: str) -> int:
    if not _DECIMAL.fullmatch(raw) or not (1 <= int(raw) <= INT63_MAX):
        raise bad_request(f"invalid path parameter '{name}': must be an integer in 1 … 2^63−1")
    return int(raw)


def query_params(req: falcon.Request, spec: dict[str, QueryParam]) -> dict[str, int]:
    values: dict[str, int] = {}
    for name, rule in spec.items():
        raw = req.get_param(name)
        if raw is None or raw == "":
            if rule.required:
                raise bad_request(f"invalid query parameter '{name}': required")
            continue
        text = raw.strip()
        if not re.fullmatch(r"-?[0-9]+", text) or not (rule.lo <= int(text) <= rule.hi):
            raise bad_request(f"invalid query parameter '{name}': must be an integer in {rule.lo} … {rule.hi}")
        values[name] = int(text)
    return values


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(raw: bytes, route: Route) -> Any:
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        raise bad_request("malformed JSON body: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise bad_request(f"malformed JSON body: {exc}") from None
    if isinstance(data, list) and route.bare_list_key:
        return {route.bare_list_key: data}
    if not isinstance(data, dict):
        raise bad_request("request body must be a JSON object")
    return data


def _loc(parts: tuple) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _strip_nulls(value: Any) -> Any:
    """A field whose value is null counts as absent (contract §1.1), at every depth."""
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_nulls(v) for v in value]
    return value


def validate_body(model: type[Message], data: dict) -> dict:
    try:
        message = model.model_validate(_strip_nulls(data))
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        text = str(err["msg"]).removeprefix("Value error, ")
        if not err["loc"]:
            raise bad_request(text) from None
        field = _loc(err["loc"])
        if err["type"] == "missing":
            text = "required"
        raise bad_request(f"invalid field '{field}': {text}") from None
    return message.to_params()
