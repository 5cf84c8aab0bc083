"""Client text made safe for one service log line (contract §6.6).

A worker's log message is echoed to the service log. Written raw, a newline in it starts a second
line that looks exactly like one of ours (under Kubernetes no prefix tells them apart), and ANSI
escape sequences reach the operator's terminal. ``one_line`` escapes every character that could
end a line, move the cursor or hide text: C0/C1 controls (newline, carriage return, ESC, …),
Unicode line and paragraph separators, and format characters (bidirectional overrides, zero-width
characters). The backslash is escaped too, so an escaped newline (``\\n``) and a worker's literal
backslash-n (``\\\\n``) stay distinguishable. The stored log entry keeps the text as sent.
"""

from __future__ import annotations

import re
import unicodedata

_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}
# Candidates only (anything that is not printable ASCII, or a backslash); each is then judged by
# its Unicode category, so plain text costs one regex scan.
_CANDIDATE = re.compile(r"[^ -\[\]-~]")
_UNSAFE_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}


def _escape(match: re.Match) -> str:
    ch = match.group()
    if ch in _SHORT:
        return _SHORT[ch]
    if unicodedata.category(ch) not in _UNSAFE_CATEGORIES:
        return ch  # letters, symbols, emoji, non-ASCII spaces: kept as they are
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def one_line(text: str) -> str:
    """``text`` with every line-breaking, terminal-controlling or invisible character escaped."""
    return _CANDIDATE.sub(_escape, text)
