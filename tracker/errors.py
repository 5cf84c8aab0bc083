"""The response envelope (contract §1.3) and the one exception type that carries an HTTP answer.

Services return plain dicts ``{"status": int, "body": envelope, ...}`` over RPC; the gateway relays
them unchanged, so every service speaks the same reply shape.
"""

from __future__ import annotations

from typing import Any


def envelope(ok: bool, content: Any = None, message: str | None = None, **extra: Any) -> dict:
    body: dict[str, Any] = {"ok": ok}
    if message:
        body["message"] = message
    if content is not None:
        body["content"] = content
    body.update(extra)
    return body


def reply(status: int, body: dict, **extra: Any) -> dict:
    return {"status": status, "body": body, **extra}


def ok(content: Any = None, message: str | None = None, status: int = 200) -> dict:
    return reply(status, envelope(True, content, message))


def with_counts(answer: dict, **counts: int) -> dict:
    """Attach what the operation did (tasks submitted, assigned, closed) for the gateway's metrics."""
    answer["counts"] = counts
    return answer


class ApiError(Exception):
    """An answer other than success; raised anywhere, turned into a reply at the edge."""

    def __init__(self, status: int, message: str, content: Any = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.content = content
        self.extra = extra

    def as_reply(self) -> dict:
        return reply(self.status, envelope(False, self.content, self.message, **self.extra))


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def unauthorized(message: str = "Unauthorized", content: Any = None) -> ApiError:
    return ApiError(401, message, content)


def forbidden(message: str = "Forbidden") -> ApiError:
    return ApiError(403, message)


def not_found(message: str = "Not found") -> ApiError:
    return ApiError(404, message)


def conflict(message: str = "Conflict") -> ApiError:
    return ApiError(409, message)


UNAVAILABLE = reply(503, envelope(False, message="Service unavailable"))
