"""Words and names that several layers use are spelled once, in tracker/wording.py (or a service's
messages.py when only that service and its routes use them). Unit level: reads the source."""

from __future__ import annotations

import ast
from pathlib import Path

from tracker import wording

ROOT = Path(__file__).resolve().parent.parent
SHARED = {value: name for name, value in vars(wording).items() if name.isupper() and isinstance(value, str)}
PENDING: set[str] = set()  # modules allowed to spell them for a while (none)


def _spellings(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
            and any(value == node.value or (len(value) > 6 and value in node.value and "SELECT" in node.value)
                    for value in SHARED)]


def test_shared_words_are_spelled_only_in_tracker_wording():
    found = []
    for package in ("gateway", "tracker", "services"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel == "tracker/wording.py" or rel in PENDING:
                continue
            found += [f"{rel}:{line}: {text!r}" for line, text in _spellings(path)]
    assert not found, "spell these through tracker.wording:\n" + "\n".join(found)


def test_the_check_sees_a_spelling(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(f'MESSAGE = {wording.PAUSED!r}\nSQL = "SELECT pg_notify(\'{wording.TASK_READY_CHANNEL}\', 1)"\n')
    assert [text for _, text in _spellings(sample)] == [wording.PAUSED,
                                                        f"SELECT pg_notify('{wording.TASK_READY_CHANNEL}', 1)"]
