"""docs/ARCHITECTURE.md shows the one path of a task get and a release as the code says it: every
line it quotes is in the file it names, each run of lines between two ``…`` in the file's order;
under 100 lines of code, in at most three files."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## The one path of a task get and a release"


def _quoted() -> list[tuple[str, list[list[str]]]]:
    """(file, runs of quoted lines) per code block of the section."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    section = text[text.index(SECTION):]
    section = section[:section.index("\n## ", len(SECTION))]
    blocks = re.findall(r"^`([\w/.]+\.py)` — [^\n]*\n\n```python\n(.*?)```", section, re.S | re.M)
    out = []
    for path, code in blocks:
        runs: list[list[str]] = [[]]
        for line in code.splitlines():
            if line.strip() == "…":
                runs.append([])
            elif line.strip():
                runs[-1].append(line)
        out.append((path, [run for run in runs if run]))
    return out


def _in_order(source: list[str], run: list[str]) -> str | None:
    """The first line of ``run`` not found after the previous one, or None."""
    at = 0
    for line in run:
        found = next((i for i in range(at, len(source)) if source[i] == line), None)
        if found is None:
            return line
        at = found + 1
    return None


def test_the_path_is_short_and_in_three_files_at_most():
    quoted = _quoted()
    assert 2 <= len(quoted) <= 3
    assert sum(len(run) for _, runs in quoted for run in runs) < 100


def test_every_quoted_line_is_in_its_file_in_order():
    for path, runs in _quoted():
        source = (ROOT / path).read_text().splitlines()
        for run in runs:
            assert _in_order(source, run) is None, f"{path}: not found (in this order): {_in_order(source, run)!r}"


def test_the_check_sees_a_line_out_of_place():
    path, runs = _quoted()[1]
    source = (ROOT / path).read_text().splitlines()
    run = max(runs, key=len)
    assert _in_order(source, run) is None
    assert _in_order(source, list(reversed(run))) is not None
    assert _in_order(source, [*run, "    this line is in no file"]) is not None
