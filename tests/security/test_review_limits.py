"""Findings 4, 6 and 10 (worker creation) of the adversarial review, replayed on a system of its own,
started with the abuse limits on (the shared test system turns the per-address ones off, contract §7).

- 4, no login throttle: §6.2 — failed logins per (username, client address) and per address over a
  sliding 10-minute window, 429 with ``rate_limit_delay`` even with the right password, 429s not
  counted, a success clears its pair; the client address behind trusted proxies; no hashing for a
  throttled attempt.
- 6, no admin left: §6.2 — two admins demoting each other at the same moment: one 204, one 409.
- 10, unlimited anonymous worker creation: §6.3 — per address per 10 minutes, 429.

Its gateway trusts 127.0.0.1 as a proxy, so ``X-Forwarded-For`` names the client: each test acts from
addresses of its own. Password hashing is made slow (argon2id, 64 MiB, 3 passes) so that an attempt that
hashes and one that does not are told apart by their time.
"""

from __future__ import annotations

import itertools
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import requests

from services.manager_svc.store import ADMIN_CHANGE_LOCK
from tests.harness import ROOT, Api, System
from tests.security.util import assert_error, assert_ok, sql, uname, unchanged
from tracker.throttle import subject

PAIR_LIMIT, ADDRESS_LIMIT, WORKER_LIMIT = 10, 40, 20
PASSWORD = "tt-test-password"
PUBLIC_ORIGIN = "https://tracker.example"
_addresses = itertools.count(1)


def new_address() -> str:
    """A client address no other test uses (198.18.0.0/15, the benchmarking range)."""
    n = next(_addresses)
    return f"198.18.{n // 250}.{n % 250 + 1}"


@pytest.fixture(scope="module")
def limited(request, tmp_path_factory):
    replicas = request.config.getoption("--tt-replicas")
    gateways = request.config.getoption("--tt-gateways")
    sysm = System.create(
        tmp_path_factory.mktemp("limits"),
        TT_LOGIN_FAILURES_PER_PAIR=str(PAIR_LIMIT), TT_LOGIN_FAILURES_PER_ADDRESS=str(ADDRESS_LIMIT),
        TT_WORKER_CREATIONS_PER_ADDRESS=str(WORKER_LIMIT), TT_TRUSTED_PROXIES="127.0.0.1, ::1",
        TT_PUBLIC_ORIGINS=PUBLIC_ORIGIN, TT_ARGON2_TIME_COST="3", TT_ARGON2_MEMORY_KIB="65536",
    )
    try:
        sysm.start("--replicas", str(replicas), "--gateway-workers", str(gateways))
        sysm.admin = Api(sysm.url).new_manager("admin", PASSWORD)  # the first manager: tracker admin
        yield sysm
    finally:
        sysm.destroy_later()


def login(system: System, name: str, password: str, address: str | None = None) -> requests.Response:
    headers = {"X-Forwarded-For": address} if address else {}
    return requests.post(system.url + "/login", json={"username": name, "password": password}, headers=headers,
                         timeout=60)


def manager(system: System) -> Api:
    return Api(system.url).new_manager(uname("m"), PASSWORD)


def events(system: System, key: str | None = None) -> int:
    if key is None:
        return sql(system, "SELECT count(*) FROM throttle_event")[0][0]
    return sql(system, "SELECT count(*) FROM throttle_event WHERE subject = %s", key)[0][0]


def sessions(system: System, manager_id: int) -> int:
    return sql(system, "SELECT count(*) FROM manager_session WHERE manager_id = %s", manager_id)[0][0]


def assert_throttled(r: requests.Response, low: float = 590, high: float = 600, since: float | None = None) -> float:
    """A 429 whose delay is what is left of the 10-minute window. ``since``: ``time.monotonic()`` before
    the first counted failure; slow hashing on a loaded machine may spread the failures over more
    than the 10 s ``low`` allows, and the window then has that much less left (1 s slack)."""
    if since is not None:
        low = min(low, 600 - (time.monotonic() - since) - 1)
    body = assert_error(r, 429)
    assert low < body["rate_limit_delay"] <= high, body
    assert "tt=" not in r.headers.get("Set-Cookie", "")
    return body["rate_limit_delay"]


# --- finding 4: the login flood ------------------------------------------------------------------------


def test_ten_failures_then_429_even_with_the_right_password(limited):
    m, address = manager(limited), new_address()
    since = time.monotonic()
    for _ in range(PAIR_LIMIT):
        assert_error(login(limited, m.username, "wrong-password", address), 401, "Invalid username/password")
    counted = events(limited)
    with unchanged(limited):
        assert_throttled(login(limited, m.username, "wrong-password", address), since=since)
        assert_throttled(login(limited, m.username, PASSWORD, address), since=since)  # the review: right password → 200
        assert_throttled(login(limited, m.username, PASSWORD, address), since=since)
    assert events(limited) == counted  # 429 answers are not counted
    assert sessions(limited, m.id) == 1  # the registration's
    # Other usernames from the same address, and the same username from another address, go on.
    other = manager(limited)
    assert_ok(login(limited, other.username, PASSWORD, address))
    assert_ok(login(limited, m.username, PASSWORD, new_address()))
    assert_throttled(login(limited, m.username, PASSWORD, address))  # that success cleared its own pair only


def test_the_window_slides_and_a_success_clears_the_pair(limited):
    m, address = manager(limited), new_address()
    pair = subject("login-pair", address, m.username)
    for _ in range(PAIR_LIMIT):
        assert_error(login(limited, m.username, "wrong-password", address), 401)
    assert events(limited, pair) == PAIR_LIMIT
    # Five minutes later (the failures moved back in time): about five minutes still to wait.
    sql(limited, "UPDATE throttle_event SET at = at - interval '300 seconds' WHERE subject = %s", pair)
    assert_throttled(login(limited, m.username, PASSWORD, address), 290, 300)
    # The oldest failure leaves the window: 9 counted, the next attempt is checked, and it succeeds.
    sql(limited, "UPDATE throttle_event SET at = at - interval '301 seconds' WHERE id = "
                 "(SELECT min(id) FROM throttle_event WHERE subject = %s)", pair)
    assert_ok(login(limited, m.username, PASSWORD, address))
    assert events(limited, pair) == 0  # cleared
    for _ in range(PAIR_LIMIT):
        assert_error(login(limited, m.username, "wrong-password", address), 401)
    assert_throttled(login(limited, m.username, PASSWORD, address))


def test_a_concurrent_flood_is_counted_exactly(limited):
    """The review's flood: 20 threads. Exactly 10 attempts are checked; every other one is a 429."""
    m, address = manager(limited), new_address()

    def attempt(_):
        return login(limited, m.username, "wrong-password", address).status_code

    with ThreadPoolExecutor(20) as pool:
        statuses = Counter(pool.map(attempt, range(60)))
    assert statuses == {401: PAIR_LIMIT, 429: 60 - PAIR_LIMIT}, statuses
    assert events(limited, subject("login-pair", address, m.username)) == PAIR_LIMIT
    assert_throttled(login(limited, m.username, PASSWORD, address))


def test_throttled_attempts_are_not_hashed(limited):
    """With a 64 MiB, 3-pass argon2id, a checked attempt costs a hash; a throttled one must not."""
    m, address = manager(limited), new_address()
    checked, throttled = [], []
    for _ in range(PAIR_LIMIT):
        start = time.perf_counter()
        assert_error(login(limited, m.username, "wrong-password", address), 401)
        checked.append(time.perf_counter() - start)
    for password in ["wrong-password", PASSWORD] * 5:
        start = time.perf_counter()
        assert_throttled(login(limited, m.username, password, address))
        throttled.append(time.perf_counter() - start)
    assert statistics.median(throttled) < statistics.median(checked) / 3, (checked, throttled)


def test_per_address_limit(limited):
    """Failures of any usernames from one address, known or not, count toward its limit (40 here)."""
    address, m = new_address(), manager(limited)
    since = time.monotonic()
    for i in range(ADDRESS_LIMIT):
        assert_error(login(limited, f"nobody-{i}", "wrong-password", address), 401)
    with unchanged(limited):
        assert_throttled(login(limited, m.username, PASSWORD, address), since=since)
        assert_throttled(login(limited, uname("n"), "wrong-password", address), since=since)
    assert sessions(limited, m.id) == 1
    assert_ok(login(limited, m.username, PASSWORD, new_address()))  # another address is not affected


def test_forwarded_for_behind_a_trusted_proxy(limited):
    """The client is the nearest X-Forwarded-For hop that is not a trusted proxy (127.0.0.1 here)."""
    m, address = manager(limited), new_address()
    for _ in range(PAIR_LIMIT):
        assert_error(login(limited, m.username, "wrong-password", address), 401)
    spoofed = f"{new_address()}, {address}"  # a client's own X-Forwarded-For, then the proxy's hop
    assert_throttled(login(limited, m.username, PASSWORD, spoofed))
    assert_throttled(login(limited, m.username, PASSWORD, f"{address}, 127.0.0.1"))  # two trusted hops
    assert_throttled(login(limited, m.username, PASSWORD, f"{address} ,127.0.0.1 ,"))
    assert_ok(login(limited, m.username, PASSWORD, f"{address}, {new_address()}"))  # the nearest hop differs
    assert_ok(login(limited, m.username, PASSWORD))  # no header: the peer itself


# --- finding 10: unlimited anonymous worker creation -------------------------------------------------------


def create_worker(system: System, address: str) -> requests.Response:
    return requests.post(system.url + "/worker/create", json={"alias": "flood"},
                         headers={"X-Forwarded-For": address}, timeout=60)


def test_worker_creation_per_address(limited):
    address = new_address()
    for _ in range(WORKER_LIMIT):
        assert_ok(create_worker(limited, address))
    workers = sql(limited, "SELECT count(*) FROM worker")[0][0]
    with unchanged(limited):
        for _ in range(3):
            body = assert_error(create_worker(limited, address), 429)
            assert 590 < body["rate_limit_delay"] <= 600, body
    assert sql(limited, "SELECT count(*) FROM worker")[0][0] == workers
    assert_ok(create_worker(limited, new_address()))
    # The window slides: once the oldest creation is 10 minutes old, one more is allowed (429s were not counted).
    key = subject("worker-create", address)
    assert events(limited, key) == WORKER_LIMIT
    sql(limited, "UPDATE throttle_event SET at = at - interval '601 seconds' WHERE id = "
                 "(SELECT min(id) FROM throttle_event WHERE subject = %s)", key)
    assert_ok(create_worker(limited, address))
    assert_error(create_worker(limited, address), 429)


def test_worker_creation_counts_an_ipv6_client_per_64(limited):
    prefix = f"2001:db8:{next(_addresses):x}:"
    for i in range(WORKER_LIMIT):
        assert_ok(create_worker(limited, f"{prefix}0:{i:x}::1"))
    with unchanged(limited):
        assert_error(create_worker(limited, f"{prefix}0:ffff::2"), 429)
    assert_ok(create_worker(limited, f"{prefix}1::1"))  # another /64


def test_concurrent_worker_creation_is_counted_exactly(limited):
    address = new_address()
    with ThreadPoolExecutor(10) as pool:
        statuses = Counter(pool.map(lambda _: create_worker(limited, address).status_code, range(30)))
    assert statuses == {200: WORKER_LIMIT, 429: 30 - WORKER_LIMIT}, statuses


# --- finding 6: two admins demoting each other at once ------------------------------------------------------


def admins(system: System) -> list[int]:
    return [row[0] for row in sql(system, "SELECT id FROM manager WHERE tracker_admin ORDER BY id")]


@pytest.fixture
def two_admins(limited):
    """The system's admins are exactly two: the first manager and one it promotes."""
    first = limited.admin
    second = manager(limited)
    assert limited.admin.get(f"/manager/promote/{second.id}").status_code == 204
    assert admins(limited) == sorted([first.id, second.id])
    yield first, second
    sql(limited, "UPDATE manager SET tracker_admin = (id = %s)", first.id)  # the first manager alone, again


def demote_each_other(a: Api, b: Api, before_both=None) -> list[int]:
    barrier = threading.Barrier(2)

    def demote(me: Api, other: Api) -> int:
        barrier.wait()
        return me.get(f"/manager/demote/{other.id}").status_code

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(demote, a, b), pool.submit(demote, b, a)]
        if before_both:
            before_both()
        return [f.result() for f in futures]


def _next_round(system: System, a: Api, b: Api) -> tuple[Api, Api]:
    (survivor,) = admins(system)
    winner, loser = (a, b) if survivor == a.id else (b, a)
    assert winner.get(f"/manager/promote/{loser.id}").status_code == 204
    return winner, loser


def test_two_admins_demoting_each_other_at_the_same_moment(limited, two_admins):
    """Both demotions are held at the admin-change lock until both wait there (they were checked as
    admins before either acted): exactly one succeeds, the other is the contract's 409."""
    a, b = two_admins
    lock_key = ADMIN_CHANGE_LOCK
    for _ in range(5):
        with psycopg.connect(limited.db_url, autocommit=True) as holder:
            holder.execute("SELECT pg_advisory_lock(%s)", (lock_key,))

            def release_when_both_wait():
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    waiting = holder.execute(
                        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
                        " WHERE d.datname = current_database() AND l.locktype = 'advisory' AND NOT l.granted"
                        " AND l.objid = %s AND l.objsubid = 1", (lock_key & 0xFFFFFFFF,)).fetchone()[0]
                    if waiting == 2:
                        break
                    time.sleep(0.02)
                holder.execute("SELECT pg_advisory_unlock(%s)", (lock_key,))
                assert waiting == 2, "both demotions should have reached the lock"

            statuses = demote_each_other(a, b, release_when_both_wait)
        assert sorted(statuses) == [204, 409], statuses
        assert len(admins(limited)) == 1
        a, b = _next_round(limited, a, b)


def test_two_admins_racing_without_help_keep_one_admin(limited, two_admins):
    """The review's race, unaided and repeated: never both 204, never no admin."""
    a, b = two_admins
    seen = Counter()
    for _ in range(10):
        statuses = demote_each_other(a, b)
        seen.update(statuses)
        assert sorted(statuses) in ([204, 403], [204, 409]), statuses  # 403: the second came after the first
        assert len(admins(limited)) == 1, statuses
        a, b = _next_round(limited, a, b)
    assert seen[204] == 10, seen


# --- finding 3, configured public origins --------------------------------------------------------------------


def test_configured_public_origin_is_accepted(limited):
    m = manager(limited)
    admin = limited.admin
    for origin in (PUBLIC_ORIGIN, PUBLIC_ORIGIN + ":443", PUBLIC_ORIGIN.upper()):
        assert admin.get(f"/manager/promote/{m.id}", headers={"Origin": origin}).status_code == 204, origin
        assert admin.get(f"/manager/demote/{m.id}", headers={"Origin": origin}).status_code == 204, origin
    with unchanged(limited):
        for origin in ("http://tracker.example", PUBLIC_ORIGIN + ":8443", "https://evil.tracker.example"):
            r = admin.get(f"/manager/promote/{m.id}", headers={"Origin": origin})
            assert_error(r, 403, "Cross-origin request refused")


# --- the settings' defaults are the contract's ------------------------------------------------------------------


def test_default_limits_are_the_contracts():
    env = {k: v for k, v in os.environ.items() if not k.startswith("TT_")}
    script = ("from tracker.settings import get_settings as g; s = g(); print(s.login_failures_per_pair, "
              "s.login_failures_per_address, s.worker_creations_per_address, s.trusted_proxies, s.public_origins)")
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.split("\n")[0] == "10 1000 600 () ()", out.stderr
