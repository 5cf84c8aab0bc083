"""``ttc submit``: one task per line of a file (or stdin), in bulk chunks, resumable.

Re-running the same file submits nothing twice, by two mechanisms that cover each other:

1. **Deterministic Idempotency-Keys.** Chunk *i* is sent with the key
   ``ttc-submit-<sha256(project, i, the chunk's JSON)>``. The server answers a repeated key (same
   worker, same route, within 24 h) with its first answer and stores nothing. So a re-run — even
   one that re-reads the whole file, or reads stdin — stores each line once, including the chunk
   whose answer was lost when the first run was killed mid-request. A line's identity is its
   position and content: an edited file resubmits only the chunks that changed.
2. **A progress file** (``FILE.ttc-progress``, written after every acknowledged chunk) records
   the byte offset reached and a SHA-256 of the file up to it. A re-run whose file still starts
   with the same bytes skips straight past them: no request at all for work already done, and it
   keeps working after the server's 24 h key window. If the prefix changed, the progress file is
   ignored and (1) still applies.

``--unique-from-line`` additionally gives every task ``unique_string`` = the line, so the server's
own de-duplication (forever, across workers) drops repeats.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from task_tracker_client.client import Client, chunked
from task_tracker_client.models import BulkResult
from task_tracker_client.progress import reporter

STATE_VERSION = 1


@dataclass
class _Cursor:
    """Where the reader is: bytes consumed, lines read, running hash of the bytes consumed."""

    offset: int = 0
    lines: int = 0
    digest: Any = None

    def __post_init__(self) -> None:
        self.digest = self.digest or hashlib.sha256()


def parse_line(text: str, project: int, defaults: dict, unique_from_line: bool) -> dict | None:
    """A submit item from one line: a JSON object gives the submit fields, anything else is the
    recipe. Empty lines are skipped (None)."""
    if not text.strip():
        return None
    item: dict[str, Any] | None = None
    if text.lstrip().startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            item = {**defaults, **doc, "project": project}
    if item is None:
        item = {**defaults, "project": project, "recipe": text}
    if unique_from_line and not item.get("unique_string") and not item.get("hash64") and not item.get("hash_u64"):
        item["unique_string"] = text
    return item


def count_lines(path: Path) -> int | None:
    """Lines in a regular file (for the ETA); None for pipes."""
    if not path.is_file():
        return None
    n = 0
    last = b"\n"
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            n += block.count(b"\n")
            last = block[-1:]
    return n + (last != b"\n")


def chunk_key(worker_id: int | None, project: int, index: int, items: list[dict]) -> str:
    h = hashlib.sha256(f"{worker_id}\0{project}\0{index}\0".encode())
    h.update(json.dumps(items, separators=(",", ":"), sort_keys=True).encode())
    return "ttc-submit-" + h.hexdigest()[:48]


class ProgressFile:
    """The resume record next to the input file (see module docstring)."""

    def __init__(self, path: Path | None, identity: dict) -> None:
        self.path = path
        self.identity = identity
        self.broken = False

    def load(self) -> dict | None:
        if self.path is None or not self.path.exists():
            return None
        try:
            doc = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        if doc.get("version") != STATE_VERSION or doc.get("identity") != self.identity:
            return None
        return doc

    def save(self, cursor: _Cursor, chunks: int, submitted: int, duplicates: int) -> None:
        if self.path is None or self.broken:
            return
        doc = {"version": STATE_VERSION, "identity": self.identity, "offset": cursor.offset, "lines": cursor.lines,
               "chunks": chunks, "prefix_sha256": cursor.digest.copy().hexdigest(),
               "submitted": submitted, "duplicates": duplicates}
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(doc))
            os.replace(tmp, self.path)
        except OSError as exc:
            self.broken = True
            print(f"ttc: cannot write the progress file {self.path} ({exc}); continuing without it",
                  file=sys.stderr)


def _resume(stream: BinaryIO, state: dict) -> _Cursor | None:
    """Check that the file still starts with the bytes the progress file saw; position after them."""
    cursor = _Cursor()
    remaining = int(state["offset"])
    while remaining > 0:
        block = stream.read(min(remaining, 1 << 20))
        if not block:
            return None
        cursor.digest.update(block)
        remaining -= len(block)
    if cursor.digest.hexdigest() != state.get("prefix_sha256"):
        return None
    cursor.offset, cursor.lines = int(state["offset"]), int(state["lines"])
    return cursor


def _items(stream: BinaryIO, cursor: _Cursor, project: int, defaults: dict, unique_from_line: bool,
           marks: list) -> Iterator[dict]:
    """Items of the remaining lines. ``marks`` receives (item, offset after its line, lines) so a
    checkpoint can be taken exactly at a chunk's end."""
    for raw in stream:
        cursor.offset += len(raw)
        cursor.lines += 1
        cursor.digest.update(raw)
        text = raw.decode("utf-8").rstrip("\r\n")
        item = parse_line(text, project, defaults, unique_from_line)
        if item is not None:
            marks.append((cursor.offset, cursor.lines, cursor.digest.copy()))
            yield item


def submit_file(client: Client, project: int, source: str, *, chunk: int = 1000, unique_from_line: bool = False,
                defaults: dict | None = None, progress: bool = True, state_path: Path | None | bool = True
                ) -> BulkResult:
    """Submit every line of ``source`` (a path, or ``-`` for stdin) to ``project``."""
    defaults = {"max_retries": 3, "max_assign_time": 600, **(defaults or {})}
    from_stdin = source == "-"
    path = None if from_stdin else Path(source)
    if state_path is True:
        state_path = None if from_stdin else path.with_name(path.name + ".ttc-progress")
    identity = {"worker_id": client.worker_id, "project": project, "chunk": chunk, "unique_from_line": unique_from_line,
                "defaults": defaults}
    record = ProgressFile(state_path or None, identity)
    stream: BinaryIO = sys.stdin.buffer if from_stdin else path.open("rb")
    try:
        cursor, chunks, submitted, duplicates, skipped = _Cursor(), 0, 0, 0, 0
        state = record.load()
        if state is not None:
            resumed = _resume(stream, state)
            if resumed is None:  # the file changed: start over, the chunk keys still protect
                stream.seek(0)
            else:
                cursor, chunks, skipped = resumed, int(state["chunks"]), int(state["lines"])
        total = count_lines(path) if (progress and path is not None) else None
        report = reporter(progress, total, start=skipped)
        marks: list = []
        reported = skipped
        try:
            for items in chunked(_items(stream, cursor, project, defaults, unique_from_line, marks), chunk):
                key = chunk_key(client.worker_id, project, chunks, items)
                res = client.submit_chunk(items, idempotency_key=key)
                chunks += 1
                submitted += res.submitted or 0
                duplicates += res.duplicates or 0
                end_offset, end_lines, end_digest = marks[len(items) - 1]
                del marks[:len(items)]
                checkpoint = _Cursor(end_offset, end_lines, end_digest)
                record.save(checkpoint, chunks, submitted + int((state or {}).get("submitted", 0)),
                            duplicates + int((state or {}).get("duplicates", 0)))
                report(end_lines - reported, res)
                reported = end_lines
        finally:
            report.close()
        return BulkResult(submitted, duplicates, skipped_lines=skipped)
    finally:
        if not from_stdin:
            stream.close()
