"""Request shapes of the manager account routes (contract §6.2)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from tracker import accounts
from tracker.fields import Id, Message, Rule, Text


def _valid_username(name: str) -> str:
    """NFKC first, then the rules (tracker/accounts.py); the normalised name is what is stored."""
    name = accounts.normalise_username(name)
    problem = accounts.username_problem(name)
    if problem:
        raise ValueError(problem)
    return name


def _uncommon_password(password: str) -> str:
    problem = accounts.password_problem(password)
    if problem:
        raise ValueError(problem)
    return password


Username = Annotated[Text, Rule(_valid_username, {
    # The length counts after NFKC normalisation, which no schema keyword can express: described, not bounded.
    "description": f"{accounts.USERNAME_MIN}–{accounts.USERNAME_MAX} characters after NFKC normalisation (stored "
                   "normalised); Unicode letters (of one script), decimal digits and '_', '.', '-' only; unique"})]
Password = Annotated[Text, Field(min_length=accounts.PASSWORD_MIN, max_length=accounts.PASSWORD_MAX),
                     Rule(_uncommon_password,
                          {"description": "not one of the 10,000 most common passwords (compared lower-cased)"})]


def _login_name(name: str) -> str:
    """Login looks the name up as /register stored it; anything else simply matches nobody (401)."""
    return accounts.normalise_username(name)


LoginName = Annotated[Text, Rule(_login_name, {"description": "NFKC-normalised before the lookup, as /register "
                                                              "stores it"})]


class Register(Message):
    username: Username
    password: Password


class Login(Message):
    username: LoginName
    password: Text


# --- what manager_svc's operations receive over RPC (validated again there: tracker/service.py) --
class NewSession(Message):
    """The session a successful register or login opens (OpenSession): the digest of the cookie
    the gateway sets, and its lifetime in seconds."""

    new_session_digest: str
    session_lifetime: int


class Registration(Register, NewSession):
    """/register's body and the new session."""


class LoginAttempt(Login, NewSession):
    """/login's body, the new session, and the client address failures are counted by (ClientAddress)."""

    client: str = ""


class Logout(Message):
    """The digest of the session cookie to close (CloseSession); None without a cookie."""

    session_digest: str | None = None


class ManagerRef(Message):
    """A path's manager id."""

    id: Id


# --- reply shapes (OpenAPI) ---------------------------------------------------------------------
# What the routes answer in ``content``: the service builds it through them (tracker.shapes.content) and
# gateway/openapi.py documents them.
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
