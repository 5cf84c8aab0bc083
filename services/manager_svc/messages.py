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
