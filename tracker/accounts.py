"""Rules of manager usernames and passwords (contract §6.2), shared by /register, /login and
``tracker admin create``.

Usernames are NFKC-normalised first, then checked and stored, so ``ｒｏｏｔ１`` *is* ``root1`` and
two compositions of ``röot1`` are one name. After normalisation a name has 3–16 characters, each a
Unicode letter (general category L*), a decimal digit (Nd) or one of ``_ . -``: no spaces, control,
format (zero-width, bidirectional marks) or combining characters.

Beyond the contract, the letters of a name must all come from one script (Chinese, Japanese and
Korean scripts count as one, as they are written together), so a look-alike built by swapping one
letter for another script's twin (Cyrillic ``о`` in ``rоot1``) is refused. Names written wholly in
another script that merely look Latin are not caught; that would need the Unicode confusables
table (UTS #39).

Passwords: 8–128 characters, every one significant, and not one of the 10,000 most common passwords
(``tracker/data/common-passwords.txt.gz``, lower-cased, so compared lower-cased).
"""

from __future__ import annotations

import gzip
import unicodedata
from functools import cache
from importlib import resources

USERNAME_MIN, USERNAME_MAX = 3, 16
PASSWORD_MIN, PASSWORD_MAX = 8, 128
PUNCTUATION = frozenset("_.-")
# Scripts written together in one name: each maps to one group.
_SCRIPT_GROUPS = {name: "CJK" for name in ("CJK", "HIRAGANA", "KATAKANA", "KATAKANA-HIRAGANA", "HANGUL",
                                           "BOPOMOFO", "IDEOGRAPHIC")}



def normalise_username(name: str) -> str:
    return unicodedata.normalize("NFKC", name)


def _script(letter: str) -> str:
    """The script of a letter, from its Unicode name ("CYRILLIC SMALL LETTER O" → CYRILLIC)."""
    word = unicodedata.name(letter, "UNKNOWN").split(" ", 1)[0]
    return _SCRIPT_GROUPS.get(word, word)


def username_problem(name: str) -> str | None:
    """What is wrong with an already normalised username, or None if it is acceptable."""
    if not USERNAME_MIN <= len(name) <= USERNAME_MAX:
        return f"must be {USERNAME_MIN}–{USERNAME_MAX} characters (after NFKC normalisation)"
    scripts = set()
    for char in name:
        category = unicodedata.category(char)
        if category.startswith("L"):
            scripts.add(_script(char))
        elif category != "Nd" and char not in PUNCTUATION:
            return f"may contain only letters, digits, '_', '.' and '-' (not U+{ord(char):04X})"
    if len(scripts) > 1:
        return f"must not mix letters of several scripts ({', '.join(sorted(scripts))})"
    return None


@cache
def common_passwords() -> frozenset[str]:
    data = resources.files("tracker").joinpath("data", "common-passwords.txt.gz").read_bytes()
    return frozenset(gzip.decompress(data).decode("utf-8").splitlines())


def password_problem(password: str) -> str | None:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        return f"must be {PASSWORD_MIN}–{PASSWORD_MAX} characters"
    if password.lower() in common_passwords():
        return "is one of the 10,000 most common passwords; choose another"
    return None
