"""Secrets, digests and the dedupe hash; the only place that knows how credentials are stored."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from siphash24 import siphash24

from tracker.settings import get_settings

_SIPHASH_KEY = struct.pack("<QQ", 1, 2)  # k0 = 1, k1 = 2: identical to the original tracker


def to_signed64(value: int) -> int:
    """Unsigned and signed spellings of the same 64 bits are one value (contract §1.2, int64h)."""
    return value - (1 << 64) if value >= (1 << 63) else value


def unique_string_hash(text: str) -> int:
    return to_signed64(siphash24(text.encode("utf-8"), key=_SIPHASH_KEY).intdigest())


def new_worker_secret() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def decode_worker_secret(text: str) -> bytes | None:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


def digest(raw: bytes | str) -> str:
    """SHA-256 hex; fine for 256-bit random secrets and session tokens, which cannot be guessed."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    return hashlib.sha256(raw).hexdigest()


def digests_equal(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    return hmac.compare_digest(a.encode("ascii"), b.encode("ascii"))


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def new_webhook_secret() -> str:
    return secrets.token_hex(16)


@cache
def _password_hasher() -> PasswordHasher:
    s = get_settings()
    return PasswordHasher(time_cost=s.argon2_time_cost, memory_cost=s.argon2_memory_kib, parallelism=1)


def hash_password(password: str) -> str:
    return _password_hasher().hash(password)


@cache
def _dummy_hash() -> str:
    return _password_hasher().hash("timing-equaliser-not-a-password")


def verify_password(stored: str | None, password: str) -> bool:
    """Verify against a dummy hash for unknown users too, so both cases cost the same time."""
    try:
        return _password_hasher().verify(stored or _dummy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


@cache
def _hash_slots():
    """How many password hashes one service process runs at once (TT_PASSWORD_HASH_CONCURRENCY).

    Each argon2 hash holds its memory cost (19 MiB by default) for its whole run; unbounded, a
    login flood had every RPC worker of the process hashing at once (a review measured +95 MB).
    Callers beyond the bound wait their turn as sleeping greenthreads, holding no hash memory.

    eventlet's thread pool is sized to the same bound (it is used for nothing else here): glibc
    keeps a freed argon2 block in the arena of the thread that hashed, so with the default 20
    threads taking turns a process kept ~20 blocks (measured: 87 → 468 MiB under a flood).
    """
    from eventlet import tpool
    from eventlet.semaphore import Semaphore

    slots = get_settings().password_hash_concurrency
    tpool.set_num_threads(slots)  # effective before the pool's first use, which is offload's
    return Semaphore(slots)


def offload(fn, *args):
    """Run CPU-heavy work (argon2) off the eventlet hub when inside a service, inline elsewhere;
    at most TT_PASSWORD_HASH_CONCURRENCY at a time per process."""
    import sys

    if "eventlet" in sys.modules:
        from eventlet import patcher, tpool

        if patcher.is_monkey_patched("thread"):
            with _hash_slots():
                return tpool.execute(fn, *args)
    return fn(*args)
