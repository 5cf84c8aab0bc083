"""Per-project rate limits through the real gateway (contract §5, §1.4 check order, §6.4 update, §6.5 costs).

Model: one shared "next free time" T per limiter. A request costing n arriving at t is admitted iff
t >= T, then T := max(T, t) + n / r; otherwise 429 with rate_limit_delay = T - t. Requests failing
before step 8 cost nothing; admitted requests that then fail (409, no task) are refunded.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import requests

from tests.harness import submitted

SLOW = 0.1  # tasks per second: one token every 10 s, so a wrongly spent token cannot come back mid-test
FAR_ID = 10 ** 12


def submit(w, pid, **fields):
    return w.post("/task/submit", {"project": pid, "recipe": fields.pop("recipe", "r"), **fields})


def bulk(w, pid, n, **fields):
    r = w.post("/task/bulk_submit", [{"project": pid, "recipe": f"b{i}", **fields} for i in range(n)])
    assert r.status_code == 200, r.text
    return r


def assert_limited(r, max_delay: float, min_delay: float = 0.0) -> float:
    """A 429 with the §5 body; returns its delay."""
    assert r.status_code == 429, r.text
    body = r.json()
    assert body["ok"] is False and body["message"] == "Too many requests", body
    assert set(body) == {"ok", "message", "rate_limit_delay"}, body
    delay = body["rate_limit_delay"]
    assert isinstance(delay, int | float) and not isinstance(delay, bool)
    assert min_delay < delay <= max_delay + 1e-3, body
    return delay


def assert_task(r) -> dict:
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is True and "rate_limit_delay" not in body, body
    return body["content"]["task"]


NO_TASK = {"ok": False, "message": "No task available"}


@pytest.fixture
def limited(api, make_project, grant):
    """make(assign_rate=…, submit_rate=…, public=…) → (project id, worker with ASSIGN+SUBMIT)."""

    def make(**fields):
        pid = make_project(**fields)
        w = api.new_worker("rl")
        grant(w, pid)
        return pid, w

    return make


def assigned_count(system, pid) -> int:
    return system.sql("SELECT count(*) FROM task WHERE project = %s AND assignee IS NOT NULL", pid)[0][0]


# --- the global limit across both gateway processes --------------------------------------------------
def test_assign_rate_holds_in_total_across_gateway_processes(api, limited, system):
    """assign_rate 5 for 4 s from 8 parallel connections: 20 ± 2 tasks handed out, the rest 429."""
    pid, owner = limited(public=True, assign_rate=5)
    bulk(owner, pid, 200)
    workers = [api.new_worker(f"hammer{i}") for i in range(8)]
    results: list[list[tuple[int, dict]]] = [[] for _ in workers]
    errors: list[BaseException] = []
    start = threading.Barrier(len(workers) + 1)
    duration = 4.0

    def hammer(i: int) -> None:
        # A new connection per request: kept-alive connections opened together all land on one gunicorn
        # process (measured), while fresh ones are accepted by both, so the limit is tested across them.
        session = requests.Session()
        session.headers.update({"X-Worker-ID": str(workers[i].id), "X-Secret": workers[i].secret,
                                "Connection": "close"})
        try:
            start.wait()
            end = time.monotonic() + duration
            while time.monotonic() < end:
                r = session.get(f"{system.url}/task/get/{pid}", timeout=30)
                results[i].append((r.status_code, r.json()))
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)
        finally:
            session.close()

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(len(workers))]
    for t in threads:
        t.start()
    start.wait()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    answers = [a for per_thread in results for a in per_thread]
    admitted = [body for code, body in answers if code == 200]
    refused = [body for code, body in answers if code == 429]
    assert {code for code, _ in answers} <= {200, 429}, {code for code, _ in answers}
    assert all(b["ok"] is True and b["content"]["task"]["project"]["id"] == pid for b in admitted), admitted[:3]
    for body in refused:
        assert body["ok"] is False and body["message"] == "Too many requests", body
        assert 0 < body["rate_limit_delay"] <= 0.2 + 0.1, body
    assert len(refused) > 0, "the hammering never hit the limit"
    assert 18 <= len(admitted) <= 22, (len(admitted), len(refused))
    ids = [b["content"]["task"]["id"] for b in admitted]
    assert len(set(ids)) == len(ids)
    assert assigned_count(system, pid) == len(admitted)  # a 429 hands out nothing


def test_limit_is_shared_by_fresh_connections(limited):
    """After one admitted get, gets on fresh connections (any gateway process) are all refused."""
    pid, w = limited(assign_rate=SLOW)
    bulk(w, pid, 5)
    assert_task(w.get(f"/task/get/{pid}"))
    headers = {"X-Worker-ID": str(w.id), "X-Secret": w.secret, "Connection": "close"}
    for _ in range(8):
        r = requests.get(f"{w.base}/task/get/{pid}", headers=headers, timeout=30)
        assert_limited(r, max_delay=10, min_delay=8)


# --- the model -----------------------------------------------------------------------------------------
def test_bulk_of_three_is_admitted_and_the_next_submit_waits_about_three_seconds(limited, system):
    pid, w = limited(submit_rate=1)
    r = w.post("/task/bulk_submit", [{"project": pid, "recipe": f"x{i}"} for i in range(3)])
    assert r.status_code == 200 and r.json() == {"ok": True, "content": {"submitted": 3, "duplicates": 0}}, r.text
    delay = assert_limited(submit(w, pid, recipe="next"), max_delay=3.0, min_delay=2.0)
    r = w.post("/task/bulk_submit", [{"project": pid, "recipe": "y"}])
    assert_limited(r, max_delay=3.0, min_delay=1.5)
    assert system.sql("SELECT count(*) FROM task WHERE project = %s", pid) == [(3,)]  # refused ones stored nothing
    time.sleep(delay + 0.2)
    r = submit(w, pid, recipe="after the delay")
    assert submitted(r), r.text


def test_bulk_costs_every_item_duplicates_included(limited):
    pid, w = limited(submit_rate=1)
    items = [{"project": pid, "recipe": "a", "hash64": 1}, {"project": pid, "recipe": "b", "hash64": 1},
             {"project": pid, "recipe": "c", "hash64": 2}]
    r = w.post("/task/bulk_submit", {"requests": items})
    assert r.status_code == 200 and r.json()["content"] == {"submitted": 2, "duplicates": 1}, r.text
    assert_limited(submit(w, pid), max_delay=3.0, min_delay=2.0)


def test_assign_rate_two_refuses_a_second_get_within_half_a_second(limited, system):
    pid, w = limited(assign_rate=2)
    bulk(w, pid, 5)
    t0 = time.monotonic()
    assert_task(w.get(f"/task/get/{pid}"))
    r = w.get(f"/task/get/{pid}")
    elapsed = time.monotonic() - t0
    assert elapsed < 0.5, f"machine too slow for this check: {elapsed:.3f} s"
    delay = assert_limited(r, max_delay=0.5)
    assert assigned_count(system, pid) == 1
    # the refused get spent nothing: waiting out its delay is enough
    time.sleep(delay + 0.05)
    assert_task(w.get(f"/task/get/{pid}"))
    assert assigned_count(system, pid) == 2


def test_get_that_hands_out_nothing_costs_nothing(limited):
    pid, w = limited(assign_rate=1)
    for _ in range(6):
        r = w.get(f"/task/get/{pid}")
        assert r.status_code == 200 and r.json() == NO_TASK, r.text
    for _ in range(3):
        r = w.get(f"/task/get/{pid}?count=5")
        assert r.status_code == 200, r.text
        assert r.json() == {**NO_TASK, "content": {"tasks": []}}
    bulk(w, pid, 2)
    assert_task(w.get(f"/task/get/{pid}"))  # nothing was spent by the empty gets
    assert_limited(w.get(f"/task/get/{pid}"), max_delay=1.0)  # and the limiter is really on


def test_paused_project_get_costs_nothing(admin, limited):
    pid, w = limited(assign_rate=SLOW)
    bulk(w, pid, 2)
    assert admin.post(f"/project/update/{pid}", {"paused": True}).status_code == 200
    for _ in range(3):
        r = w.get(f"/task/get/{pid}")
        assert r.status_code == 200 and r.json() == NO_TASK, r.text
    # un-pausing is an update, which resets the limiters anyway; the gets above must not have been 429
    assert admin.post(f"/project/update/{pid}", {"paused": False}).status_code == 200
    assert_task(w.get(f"/task/get/{pid}"))


def test_duplicate_submit_is_refunded(limited, system):
    pid, w = limited(submit_rate=1)
    x = int(uuid.uuid4().int % (2 ** 62)) + 1
    r = submit(w, pid, hash64=x)
    assert submitted(r), r.text
    time.sleep(1.2)  # T passed: the duplicate is admitted, then refunded (T stays where it was)
    r = submit(w, pid, hash64=x)
    assert r.status_code == 409 and r.json()["ok"] is False and "rate_limit_delay" not in r.json(), r.text
    r = submit(w, pid, recipe="new one")
    assert submitted(r), r.text  # would be 429 without the refund
    assert_limited(submit(w, pid, recipe="one too many"), max_delay=1.0)
    assert system.sql("SELECT count(*) FROM task WHERE project = %s", pid) == [(2,)]


def test_count_costs_the_number_handed_out(limited, system):
    pid, w = limited(assign_rate=1)
    bulk(w, pid, 10)
    r = w.get(f"/task/get/{pid}?count=3")
    assert r.status_code == 200 and len(r.json()["content"]["tasks"]) == 3, r.text
    assert_limited(w.get(f"/task/get/{pid}"), max_delay=3.0, min_delay=2.0)
    assert assigned_count(system, pid) == 3

    pid2, w2 = limited(assign_rate=1)
    bulk(w2, pid2, 2)
    r = w2.get(f"/task/get/{pid2}?count=5")
    assert r.status_code == 200 and len(r.json()["content"]["tasks"]) == 2, r.text
    assert_limited(w2.get(f"/task/get/{pid2}?count=5"), max_delay=2.0, min_delay=1.0)  # 2 handed out cost 2


def test_rejections_before_the_rate_limit_step_cost_nothing(api, admin, limited, system):
    """400 / 401 / 403 / 404 never consume tokens and never carry rate_limit_delay (§5, §1.4)."""
    pid, w = limited()  # private
    bulk(w, pid, 3)
    assert admin.post(f"/project/update/{pid}", {"assign_rate": SLOW, "submit_rate": SLOW}).status_code == 200
    stranger = api.new_worker("stranger")  # no access to the private project
    paused = api.new_worker("paused")
    grant_r = paused.post("/project/request_access", {"project": pid, "assign": True, "submit": True})
    assert grant_r.status_code == 200
    assert admin.post(f"/project/accept_request/{pid}/{paused.id}").status_code == 200
    assert admin.post("/worker/set_paused", {"worker": paused.id, "paused": True}).status_code == 200
    bad_auth = {"X-Worker-ID": str(w.id), "X-Secret": "AAAA"}
    rejected = [
        (400, lambda: w.post("/task/submit", {"project": pid, "recipe": ""})),
        (400, lambda: w.post("/task/submit", raw=b"{not json")),
        (400, lambda: w.post("/task/bulk_submit", [{"project": pid, "recipe": "ok"}, {"project": pid}])),
        (400, lambda: w.get(f"/task/get/{pid}?count=0")),
        (400, lambda: w.get(f"/task/get/{pid}?count=101")),
        (400, lambda: paused.get(f"/task/get/{pid}")),
        (401, lambda: api.post("/task/submit", {"project": pid, "recipe": "x"})),
        (401, lambda: api.get(f"/task/get/{pid}")),
        (401, lambda: api.post("/task/submit", {"project": pid, "recipe": "x"}, headers=bad_auth)),
        (401, lambda: api.get(f"/task/get/{pid}", headers=bad_auth)),
        (403, lambda: submit(stranger, pid)),
        (403, lambda: stranger.post("/task/bulk_submit", [{"project": pid, "recipe": "x"}])),
        (403, lambda: stranger.get(f"/task/get/{pid}")),
        (404, lambda: submit(w, FAR_ID)),
        (404, lambda: w.get(f"/task/get/{FAR_ID}")),
    ]
    for _ in range(2):
        for code, call in rejected:
            r = call()
            assert r.status_code == code, (code, r.status_code, r.text)
            body = r.json()
            assert body["ok"] is False and body["message"] and "rate_limit_delay" not in body, body
    # one token each (one every 10 s): the first real requests still pass, the second ones are limited
    r = submit(w, pid, recipe="first")
    assert submitted(r), r.text
    assert_task(w.get(f"/task/get/{pid}"))
    assert_limited(submit(w, pid), max_delay=10, min_delay=8)
    assert_limited(w.get(f"/task/get/{pid}"), max_delay=10, min_delay=8)
    assert system.sql("SELECT count(*) FROM task WHERE project = %s", pid) == [(4,)]


def test_limited_request_never_reaches_conflict_check(limited):
    """Rate limit (step 8) comes before conflicts (step 9): a duplicate that is rate limited is 429."""
    pid, w = limited(submit_rate=SLOW)
    assert submit(w, pid, hash64=4242).status_code == 200
    assert_limited(submit(w, pid, hash64=4242), max_delay=10, min_delay=8)


def test_rate_limited_does_not_hide_permission_errors(api, limited):
    """Permission (step 7) comes before the rate limit: a limited project still answers 403 to a stranger."""
    pid, w = limited(submit_rate=SLOW, assign_rate=SLOW)
    assert submit(w, pid).status_code == 200
    assert_task(w.get(f"/task/get/{pid}"))
    stranger = api.new_worker()
    for r in (submit(stranger, pid), stranger.get(f"/task/get/{pid}")):
        assert r.status_code == 403 and "rate_limit_delay" not in r.json(), r.text


# --- update resets, unlimited ------------------------------------------------------------------------
@pytest.mark.parametrize("update", [{"assign_rate": SLOW, "submit_rate": SLOW}, {"assign_rate": SLOW},
                                    {"motd": "changed"}], ids=["both-rates", "assign-rate", "other-field"])
def test_project_update_resets_both_limiters(admin, limited, update):
    pid, w = limited(assign_rate=SLOW, submit_rate=SLOW)
    assert submit(w, pid, recipe="a").status_code == 200
    assert submit(w, pid, recipe="b").status_code == 429
    assert_task(w.get(f"/task/get/{pid}"))
    assert_limited(w.get(f"/task/get/{pid}"), max_delay=10)
    r = admin.post(f"/project/update/{pid}", update)
    assert r.status_code == 200 and r.json() == {"ok": True}, r.text
    r = submit(w, pid, recipe="c")
    assert submitted(r), r.text
    assert_task(w.get(f"/task/get/{pid}"))
    # fresh limiters, same slow rate: limited again right away
    assert_limited(submit(w, pid, recipe="d"), max_delay=10, min_delay=8)
    assert_limited(w.get(f"/task/get/{pid}"), max_delay=10, min_delay=8)


def test_update_applies_the_new_rate(admin, limited):
    pid, w = limited(assign_rate=SLOW)
    bulk(w, pid, 5)
    assert_task(w.get(f"/task/get/{pid}"))
    assert_limited(w.get(f"/task/get/{pid}"), max_delay=10, min_delay=8)
    assert admin.post(f"/project/update/{pid}", {"assign_rate": 2}).status_code == 200
    assert_task(w.get(f"/task/get/{pid}"))
    assert_limited(w.get(f"/task/get/{pid}"), max_delay=0.5)


def test_zero_rate_is_unlimited(api, admin, limited, system):
    pid, w = limited(assign_rate=0, submit_rate=0)
    for i in range(25):
        r = submit(w, pid, recipe=f"t{i}")
        assert submitted(r), r.text
    r = w.post("/task/bulk_submit", [{"project": pid, "recipe": f"b{i}"} for i in range(50)])
    assert r.status_code == 200 and r.json()["content"] == {"submitted": 50, "duplicates": 0}, r.text
    for _ in range(25):
        assert_task(w.get(f"/task/get/{pid}"))
    r = w.get(f"/task/get/{pid}?count=50")
    assert r.status_code == 200 and len(r.json()["content"]["tasks"]) == 50, r.text
    assert assigned_count(system, pid) == 75


def test_update_to_zero_lifts_the_limit(admin, limited):
    pid, w = limited(assign_rate=SLOW, submit_rate=SLOW)
    assert submit(w, pid).status_code == 200
    assert submit(w, pid).status_code == 429
    assert admin.post(f"/project/update/{pid}", {"assign_rate": 0, "submit_rate": 0}).status_code == 200
    p = admin.get(f"/project/get/{pid}").json()["content"]["project"]
    assert p["assign_rate"] == 0 and p["submit_rate"] == 0
    for i in range(10):
        assert submit(w, pid, recipe=f"u{i}").status_code == 200
    for _ in range(10):
        assert_task(w.get(f"/task/get/{pid}"))


def test_limiters_are_per_project_and_per_direction(limited):
    pid, w = limited(assign_rate=SLOW, submit_rate=SLOW)
    other, w2 = limited(assign_rate=SLOW, submit_rate=SLOW)
    assert submit(w, pid).status_code == 200
    assert_limited(submit(w, pid), max_delay=10)
    assert_task(w.get(f"/task/get/{pid}"))  # the assign limiter is untouched by submits
    assert submit(w2, other).status_code == 200  # another project has its own limiters
    assert_task(w2.get(f"/task/get/{other}"))
