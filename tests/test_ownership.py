"""Ownership the code must keep (docs/ARCHITECTURE.md, "Who owns which table"): fast, no system.

- A module of services/X imports no module of another service; tracker/ and gateway/ import no
  service module at all (they reach services only through plugin discovery, by import strings).
- Each table is declared by exactly one owner (a service's tables module, or tracker/ for the
  infrastructure tables), and merged for Alembic.
- The SQL of services/X (and of tracker/'s shared modules) touches tables of others only where
  docs/ARCHITECTURE.md lists it: the doc's two tables ("Reads of other services' tables", "Writes
  outside the owner") and the code must agree both ways, so the doc cannot go stale either.

SQL is found in two forms: string constants (``FROM t``, ``JOIN t``, ``UPDATE t``, ``INSERT INTO t``,
``DELETE FROM t``) and SQLAlchemy tables obtained by name (``tracker.schema.table("t")``), written
when passed to ``insert``/``update``/``delete``. The migrations holding the current bodies of a
service's PL/pgSQL functions (``FUNCTIONS``) are scanned as that service's code.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tracker.plugins import discover
from tracker.schema import INFRASTRUCTURE, owners

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "ARCHITECTURE.md"

WRITE_SQL = re.compile(r"\b(?:UPDATE|INSERT\s+INTO|DELETE\s+FROM)\s+([a-z_][a-z0-9_]*)", re.I)
READ_SQL = re.compile(r"\b(?:FROM|JOIN)\s+([a-z_][a-z0-9_]*)", re.I)
WRITERS = {"insert", "update", "delete"}


def _modules(top: str) -> list[Path]:
    return sorted(p for p in (ROOT / top).rglob("*.py") if ".venv" not in p.parts)


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _who(path: Path) -> str:
    """The party a module acts for: its service, or the module itself for tracker/ and gateway/."""
    parts = path.relative_to(ROOT).parts
    return parts[1] if parts[0] == "services" else _rel(path)


def _imports(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


def _strings(tree: ast.AST) -> list[str]:
    """Every string constant, f-strings as their literal parts joined (placeholders dropped)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            out.append(" ".join(v.value for v in node.values if isinstance(v, ast.Constant)))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.append(node.value)
    return out


def _by_name(tree: ast.AST) -> tuple[set[str], set[str]]:
    """Tables obtained with ``table("t")``: (read, written through insert/update/delete)."""
    bound: dict[str, str] = {}
    read: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "table" and node.args \
                and isinstance(node.args[0], ast.Constant):
            read.add(node.args[0].value)
        if isinstance(node, ast.Assign):
            targets = [t for tgt in node.targets for t in (tgt.elts if isinstance(tgt, ast.Tuple) else [tgt])]
            values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
            for target, value in zip(targets, values, strict=False):
                if isinstance(target, ast.Name) and isinstance(value, ast.Call) \
                        and getattr(value.func, "id", None) == "table" and isinstance(value.args[0], ast.Constant):
                    bound[target.id] = value.args[0].value
    written = {bound[node.args[0].id] for node in ast.walk(tree)
               if isinstance(node, ast.Call) and getattr(node.func, "id", None) in WRITERS and node.args
               and isinstance(node.args[0], ast.Name) and node.args[0].id in bound}
    return read, written


def _accesses(path: Path) -> tuple[set[str], set[str]]:
    """(tables read, tables written) by one module."""
    tables = set(owners())
    tree = ast.parse(path.read_text())
    read, written = _by_name(tree)
    for sql in _strings(tree):
        written |= {m.group(1) for m in WRITE_SQL.finditer(sql)} & tables
        reads_only = WRITE_SQL.sub(" ", sql)  # "DELETE FROM t" is a write, not also a read
        read |= {m.group(1) for m in READ_SQL.finditer(reads_only)} & tables
    return read & tables, written & tables


# Where the current bodies of each service's database functions are defined (the hot path's
# tt_assign, tt_assign_many, tt_release_many, tt_extend_many, tt_chain_copy).
FUNCTIONS = {"migrations/versions/0007_plans_without_statistics.py": "task_svc",
             "migrations/versions/0008_one_path.py": "task_svc",
             "migrations/versions/0011_bounded_pick.py": "task_svc"}


def _code_accesses() -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    reads, writes = set(), set()
    functions = [ROOT / path for path in FUNCTIONS]
    for path in _modules("services") + _modules("tracker") + _modules("gateway") + functions:
        who = FUNCTIONS.get(_rel(path)) or _who(path)
        read, written = _accesses(path)
        writes |= {(who, t) for t in written if owners()[t] != who and INFRASTRUCTURE.get(t) != who}
        reads |= {(who, t) for t in read - written if owners()[t] not in (who, "tracker")}
    return reads, writes


def _doc_table(title: str) -> set[tuple[str, str]]:
    """Rows ``| `who` | `t1`, `t2` | why |`` of the markdown table under the heading ``title``."""
    text = DOC.read_text()
    start = text.index(f"### {title}")
    rows = set()
    for line in text[start:].splitlines()[1:]:
        if line.startswith("#"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cells) < 2 or set(cells[0]) <= {"-", " "} or not cells[0].startswith("`"):
            continue
        (who,) = re.findall(r"`([^`]+)`", cells[0])
        rows |= {(who, t) for t in re.findall(r"`([^`]+)`", cells[1])}
    return rows


# --- imports -----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", _modules("services"), ids=_rel)
def test_a_service_imports_no_other_service(path):
    mine = _who(path)
    others = [m for m in _imports(ast.parse(path.read_text()))
              if m.startswith("services.") and m.split(".")[1] != mine]
    assert not others, f"{_rel(path)} imports another service: {others}"


@pytest.mark.parametrize("path", _modules("tracker") + _modules("gateway"), ids=_rel)
def test_tracker_and_gateway_import_no_service(path):
    found = [m for m in _imports(ast.parse(path.read_text())) if m == "services" or m.startswith("services.")]
    assert not found, f"{_rel(path)} imports a service module directly (use tracker.plugins.discover): {found}"


# --- declarations ------------------------------------------------------------------------------

def test_every_plugin_declares_its_tables_and_each_table_has_one_owner():
    found = owners()
    assert set(found.values()) == set(discover()) | {"tracker"}  # every service owns at least one table
    for owner in set(found.values()) - {"tracker"}:
        assert discover()[owner].tables == f"services.{owner}.tables"


# --- SQL against the doc -----------------------------------------------------------------------

def test_the_scanner_sees_reads_and_writes():
    """The scan itself can fail: it finds task_svc's own writes and git_svc's read of project."""
    read, written = _accesses(ROOT / "services" / "task_svc" / "store.py")
    assert {"task", "project_closures", "worker_closures"} <= written
    assert "worker" in read  # the assignees' aliases
    read, written = _accesses(ROOT / "migrations" / "versions" / "0008_one_path.py")
    assert {"task", "task_verification", "rate_limit"} <= written
    assert "project" in read  # a closure's chain
    assert "project" in _accesses(ROOT / "services" / "git_svc" / "store.py")[0]


def test_reads_of_other_services_tables_are_the_ones_the_doc_lists():
    reads, _ = _code_accesses()
    listed = _doc_table("Reads of other services' tables")
    assert reads - listed == set(), "reads missing from docs/ARCHITECTURE.md"
    assert listed - reads == set(), "docs/ARCHITECTURE.md lists reads the code does not do"


def test_writes_outside_the_owner_are_the_ones_the_doc_lists():
    _, writes = _code_accesses()
    listed = _doc_table("Writes outside the owner")
    assert writes - listed == set(), "writes of another owner's table missing from docs/ARCHITECTURE.md"
    assert listed - writes == set(), "docs/ARCHITECTURE.md lists writes the code does not do"


def test_the_doc_names_each_tables_owner():
    text = DOC.read_text()
    for name, owner in owners().items():
        row = next((line for line in text.splitlines() if line.startswith(f"| `{owner}")), "")
        if owner == "tracker":
            row = next((line for line in text.splitlines() if line.startswith(f"| `{INFRASTRUCTURE[name]}`")), "")
        assert f"`{name}`" in row, f"docs/ARCHITECTURE.md does not give {name} to {owner}"


def test_only_task_svc_uses_the_rate_limit_library():
    """tracker/ratelimit.py writes task_svc's table: listed above as task_svc's library, so true only
    while task_svc alone imports it."""
    def uses(tree: ast.AST) -> bool:
        return "tracker.ratelimit" in _imports(tree) or any(
            isinstance(n, ast.ImportFrom) and n.module == "tracker" and any(a.name == "ratelimit" for a in n.names)
            for n in ast.walk(tree))

    users = {_who(p) for p in _modules("services") + _modules("tracker") + _modules("gateway")
             if uses(ast.parse(p.read_text()))}
    assert users == {"task_svc"}
