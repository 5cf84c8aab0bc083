"""Login flood (review finding 4): what a flood of wrong passwords costs manager_svc, and what it leaves.

    .venv/bin/python -m bench.login_flood [--seconds 15] [--threads 20] [--replicas 1]

Starts a throwaway system per scenario with the test harness (``tests.harness.System``: own database,
AMQP vhost and port), with the production password hashing cost (argon2id, 2 passes, 19 MiB) and the
contract's default limits (10 failures per (username, address), 1,000 per address, per 10 minutes). Its
gateway trusts 127.0.0.1 as a proxy, so ``X-Forwarded-For`` names the client. Two scenarios:

- ``same-address``: every wrong password for one username from one address (the review's flood).
  The pair is throttled after 10 failures; the right password afterwards must answer **429**.
- ``spread``: every attempt from a fresh ``X-Forwarded-For`` address, so neither the pair limit nor
  the address limit ever applies and every attempt is hashed: the worst case for manager_svc's CPU and
  memory, which the bound on concurrent hashes (TT_PASSWORD_HASH_CONCURRENCY) must contain. The right
  password afterwards, from an address of its own, must answer **200**.

``--baseline`` adds a third run with the limits off and 16 concurrent hashes per process (as before the
fix: every attempt hashed, as many at once as the service has RPC workers), for comparison.

For each: manager_svc RSS (sum over its processes) idle, peak during and after the flood; ``GET /account``
p50 idle and during the flood (a manager polling it all along); attempts and status counts. Prints a
table and writes ``bench/results/login-flood-<stamp>.json``. A benchmark: exit 0 whatever it finds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # tests.harness lives at the repository root
    sys.path.insert(0, str(ROOT))

from tests.harness import Api, System  # noqa: E402

MiB = 1024 * 1024
PASSWORD = "bench-flood-password"
LIMITS = {"TT_LOGIN_FAILURES_PER_PAIR": "10", "TT_LOGIN_FAILURES_PER_ADDRESS": "1000",
          "TT_WORKER_CREATIONS_PER_ADDRESS": "600"}


def log(msg: str) -> None:
    print(msg, flush=True)


def manager_svc_rss(system: System) -> int:
    """Bytes: the RSS of every ``tracker serve manager_svc`` process of this system."""
    total = 0
    for proc in psutil.Process(system.proc.pid).children(recursive=True):
        try:
            cmd = proc.cmdline()
            if "serve" in cmd and cmd[cmd.index("serve") + 1:cmd.index("serve") + 2] == ["manager_svc"]:
                total += proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
            continue
    return total


def p50_account(session: requests.Session, url: str, n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        try:
            ok = session.get(url + "/account", timeout=60).status_code == 200
        except requests.ConnectionError:  # a reset keep-alive connection: not the service's latency
            continue
        if ok:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


class Poller(threading.Thread):
    """Polls ``/account`` and samples manager_svc's RSS until stopped."""

    def __init__(self, system: System, session: requests.Session) -> None:
        super().__init__(daemon=True)
        self.system, self.session = system, session
        self.halt = threading.Event()
        self.latencies: list[float] = []
        self.peak_rss = 0

    def run(self) -> None:
        last_sample = 0.0
        while not self.halt.is_set():
            start = time.perf_counter()
            try:
                r = self.session.get(self.system.url + "/account", timeout=60)
                if r.status_code == 200:
                    self.latencies.append(time.perf_counter() - start)
            except requests.ConnectionError:
                pass
            if start - last_sample > 0.5:
                self.peak_rss = max(self.peak_rss, manager_svc_rss(self.system))
                last_sample = start
            time.sleep(0.05)


def flood(system: System, username: str, seconds: float, threads: int, spread: bool) -> dict:
    addresses = itertools.count(1)
    lock = threading.Lock()
    statuses: Counter = Counter()
    end = time.monotonic() + seconds

    def next_address() -> str:
        with lock:
            n = next(addresses)
        return f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"

    def attacker(k: int) -> None:
        http = requests.Session()
        while time.monotonic() < end:
            headers = {"X-Forwarded-For": next_address() if spread else "192.0.2.66"}
            try:
                r = http.post(system.url + "/login", json={"username": username, "password": f"guess-{k}"},
                              headers=headers, timeout=60)
                status = r.status_code
            except requests.RequestException as exc:
                status = type(exc).__name__
            with lock:
                statuses[status] += 1

    workers = [threading.Thread(target=attacker, args=(k,), daemon=True) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return {"attempts": sum(statuses.values()), "statuses": dict(sorted(statuses.items(), key=str)),
            "last_address": "192.0.2.66" if not spread else None}


BASELINE = {"TT_LOGIN_FAILURES_PER_PAIR": "0", "TT_LOGIN_FAILURES_PER_ADDRESS": "0",
            "TT_PASSWORD_HASH_CONCURRENCY": "16"}


def scenario(name: str, spread: bool, args, env: dict | None = None) -> dict:
    env = {**LIMITS, **(env or {})}
    log(f"== {name}: starting a system ({args.replicas} manager_svc replica(s), argon2id 2 passes 19 MiB, {env})")
    system = System.create(Path(tempfile.mkdtemp(prefix="login-flood-")), TT_ARGON2_TIME_COST="2",
                           TT_ARGON2_MEMORY_KIB="19456", TT_DB_POOL_SIZE="16", TT_TRUSTED_PROXIES="127.0.0.1",
                           **env)
    try:
        system.start("--replicas", str(args.replicas), "--gateway-workers", "1")
        target = Api(system.url).new_manager("flooded", PASSWORD)
        watcher = Api(system.url).new_manager("watcher", PASSWORD)
        time.sleep(2)
        p50_idle = p50_account(watcher.http, system.url, 100)
        rss_idle = manager_svc_rss(system)
        log(f"   idle: manager_svc RSS {rss_idle / MiB:.0f} MiB, /account p50 {p50_idle * 1000:.1f} ms")
        poller = Poller(system, watcher.http)
        poller.start()
        started = time.monotonic()
        result = flood(system, target.username, args.seconds, args.threads, spread)
        elapsed = time.monotonic() - started
        poller.halt.set()
        poller.join()
        rss_after = manager_svc_rss(system)
        address = result.pop("last_address") or "198.51.100.200"  # spread: a fresh address
        right = requests.post(system.url + "/login", json={"username": target.username, "password": PASSWORD},
                              headers={"X-Forwarded-For": address}, timeout=60)
        throttled = env["TT_LOGIN_FAILURES_PER_PAIR"] != "0" and not spread
        expected = 429 if throttled else 200
        out = {
            "scenario": name, "env": env, "seconds": round(elapsed, 1), "threads": args.threads, **result,
            "attempts_per_s": round(result["attempts"] / elapsed, 1),
            "manager_svc_rss_mib": {"idle": round(rss_idle / MiB, 1), "peak_during": round(poller.peak_rss / MiB, 1),
                                    "after": round(rss_after / MiB, 1)},
            "account_p50_ms": {"idle": round(p50_idle * 1000, 1),
                               "during": round(statistics.median(poller.latencies) * 1000, 1)
                               if poller.latencies else None},
            "account_requests_during": len(poller.latencies),
            "right_password_after": {"status": right.status_code, "expected": expected,
                                     "rate_limit_delay": right.json().get("rate_limit_delay"),
                                     "as_contract_says": right.status_code == expected},
        }
        log(json.dumps(out, indent=2))
        return out
    finally:
        system.destroy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--threads", type=int, default=20)
    parser.add_argument("--replicas", type=int, default=1, help="processes per service")
    parser.add_argument("--baseline", action="store_true", help="also run with the limits off (as before the fix)")
    args = parser.parse_args()
    results = [scenario("same-address", False, args), scenario("spread", True, args)]
    if args.baseline:
        results.append(scenario("no-limits", False, args, BASELINE))
    log("\nscenario      attempts  statuses                      RSS idle/peak/after MiB   /account p50 idle→during"
        "   right password after")
    for r in results:
        rss, p50 = r["manager_svc_rss_mib"], r["account_p50_ms"]
        right = r["right_password_after"]
        log(f"{r['scenario']:<13} {r['attempts']:>8}  {json.dumps(r['statuses']):<29} "
            f"{rss['idle']:>6}/{rss['peak_during']}/{rss['after']:<12} {p50['idle']:>6} → {p50['during']} ms"
            f"   {right['status']} (contract: {right['expected']})")
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"login-flood-{stamp}.json"
    path.write_text(json.dumps({"limits": LIMITS, "trusted_proxies": "127.0.0.1", "results": results}, indent=2))
    log(f"written: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
