"""What the fuzz sent, per identity, and the summary printed at the end of the run (tests/fuzz/conftest.py)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

SLOW = 5.0  # seconds: answers slower than this are listed (a parked ?wait= excepted, it is meant to wait)


@dataclass
class IdentityStats:
    operations: set[str] = field(default_factory=set)  # labels of the operations requests were sent to
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    by_operation: dict[str, Counter] = field(default_factory=dict)  # operation label -> statuses
    failed: dict[str, str] = field(default_factory=dict)  # operation label -> failed checks (answer status)
    slow: list[tuple[float, str, int]] = field(default_factory=list)  # (seconds, "METHOD url", status)
    seconds: float = 0.0
    last_status: int | None = None  # of the latest request: what a failure was about


@dataclass
class FuzzStats:
    total_operations: int = 0
    examples: int = 0
    identities: dict[str, IdentityStats] = field(default_factory=dict)

    def of(self, identity: str) -> IdentityStats:
        return self.identities.setdefault(identity, IdentityStats())

    def lines(self, verbose: bool = False) -> list[str]:
        out = [f"examples per operation and identity (TT_FUZZ_EXAMPLES): {self.examples}; "
               f"operations in the document: {self.total_operations}"]
        for name, s in self.identities.items():
            codes = " ".join(f"{code}:{n}" for code, n in sorted(s.statuses.items()))
            out.append(f"{name:>9}: operations {len(s.operations)}/{self.total_operations}, requests {s.requests}, "
                       f"failures {len(s.failed)}, {s.seconds:.0f} s; statuses {codes}")
            never = sorted(label for label, c in s.by_operation.items() if not any(200 <= k < 300 for k in c))
            if never:  # expected for routes of other callers (401) and for the unsignable webhook
                listed = f": {', '.join(never)}" if verbose else " (TT_FUZZ_VERBOSE=1 lists them)"
                out.append(f"{'':>11}operations without a 2xx answer: {len(never)}{listed}")
            if verbose:
                out += [f"{'':>11}{label}: {dict(sorted(c.items()))}" for label, c in sorted(s.by_operation.items())]
            out += [f"{'':>11}FAILED {label}: {first}" for label, first in sorted(s.failed.items())]
            out += [f"{'':>11}slow {sec:.1f} s {req} -> {status}" for sec, req, status in sorted(s.slow)[-5:]]
        ops = set().union(*(s.operations for s in self.identities.values())) if self.identities else set()
        out.append(f"    total: operations {len(ops)}/{self.total_operations}, identities {len(self.identities)}, "
                   f"requests {sum(s.requests for s in self.identities.values())}, "
                   f"failures {sum(len(s.failed) for s in self.identities.values())}")
        return out
