"""Request shapes of the manager account routes (contract §6.2)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from tracker.fields import Message, Text

Username = Annotated[Text, Field(min_length=3, max_length=16)]
Password = Annotated[Text, Field(min_length=8, max_length=128)]


class Register(Message):
    username: Username
    password: Password


class Login(Message):
    username: Text
    password: Text


# --- reply shapes (OpenAPI) ---------------------------------------------------------------------
# What the routes answer in ``content`` (gateway/openapi.py documents them; nothing validates with them).
from typing import Literal  # noqa: E402

from tracker.shapes import Manager, Shape  # noqa: E402


class ManagerRecord(Shape):
    manager: Manager


class Account(Shape):
    logged_in: Literal[True]
    manager: Manager


class LoggedOut(Shape):
    """`content` of /account's 401 (not logged in)."""

    logged_in: Literal[False]


class ManagerList(Shape):
    managers: list[Manager]
