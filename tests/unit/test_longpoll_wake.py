"""gateway/longpoll.py's wake-ups: a notification wakes a bounded number of parked requests, oldest
first, and a woken request that was handed something wakes the next one.

Waking every parked request on every notification made a submit to a project with 10,000 parked
long-polls cost 10,000 asks, which queued in the batcher past the RPC deadline and answered 503
(bench/many_clients.py); tests/test_longpoll.py checks the same end to end.
"""

from __future__ import annotations

import pytest

from gateway.longpoll import WAKE_AT_ONCE, Waiters
from tracker.settings import get_settings

PROJECT = 7


@pytest.fixture
def waiters() -> Waiters:
    w = Waiters(get_settings())
    w._started = True  # no LISTEN connection: these tests call the wake-ups themselves
    return w


def test_a_notification_wakes_the_oldest_few_only(waiters):
    events = [waiters.park(PROJECT) for _ in range(3 * WAKE_AT_ONCE)]
    other = waiters.park(PROJECT + 1)
    waiters._wake(PROJECT)
    assert [e.is_set() for e in events] == [True] * WAKE_AT_ONCE + [False] * (2 * WAKE_AT_ONCE)
    assert not other.is_set()
    waiters._wake(PROJECT)  # the next notification: the next oldest, not the same ones again
    assert sum(e.is_set() for e in events) == 2 * WAKE_AT_ONCE
    assert all(e.is_set() for e in events[:2 * WAKE_AT_ONCE])


def test_pass_on_wakes_exactly_the_next_one(waiters):
    events = [waiters.park(PROJECT) for _ in range(WAKE_AT_ONCE + 5)]
    waiters._wake(PROJECT)
    waiters.pass_on(PROJECT)
    assert [e.is_set() for e in events] == [True] * (WAKE_AT_ONCE + 1) + [False] * 4


def test_a_request_woken_and_parked_again_queues_at_the_back(waiters):
    first, second = waiters.park(PROJECT), waiters.park(PROJECT)
    waiters.pass_on(PROJECT)
    assert first.is_set() and not second.is_set()
    waiters.unpark(PROJECT, first)  # leaves the loop iteration (already out of the queue: harmless)
    again = waiters.park(PROJECT)  # asks again, parked first
    waiters.pass_on(PROJECT)
    assert second.is_set() and not again.is_set()


def test_losing_the_listener_wakes_everyone(waiters):
    events = [waiters.park(p) for p in (PROJECT, PROJECT + 1) for _ in range(2 * WAKE_AT_ONCE)]
    waiters._wake_all(None)
    assert all(e.is_set() for e in events)


def test_unparked_requests_are_forgotten(waiters):
    event = waiters.park(PROJECT)
    waiters.unpark(PROJECT, event)
    assert PROJECT not in waiters._parked
    waiters._wake(PROJECT)  # nothing parked: nothing to do
    waiters.pass_on(PROJECT + 5)
    assert not event.is_set()
