"""``tracker admin create USERNAME`` (contract §7): straight to the database, no gateway needed."""

from __future__ import annotations

import sys
from typing import TextIO

from pydantic import ValidationError

from services.manager_svc import store
from services.manager_svc.messages import Register
from tracker.db import transaction
from tracker.hashing import hash_password


def create_admin_from_cli(username: str, stdin: TextIO) -> int:
    line = stdin.readline()
    password = line[:-1] if line.endswith("\n") else line
    if password.endswith("\r"):
        password = password[:-1]
    if not password:
        print("tracker: no password on standard input", file=sys.stderr)
        return 2
    try:
        checked = Register.model_validate({"username": username, "password": password})
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        rule = str(error["msg"]).removeprefix("Value error, ")
        print(f"tracker: invalid {error['loc'][0]}: {rule}", file=sys.stderr)
        return 2
    username = checked.username  # NFKC-normalised, as /register stores it
    with transaction() as conn:
        row = store.create(conn, username, hash_password(password), admin=True)
    if row is None:
        print(f"tracker: manager {username!r} already exists; nothing changed", file=sys.stderr)
        return 1
    print(f"tracker: created tracker admin {username!r} (id {row['id']})")
    return 0
