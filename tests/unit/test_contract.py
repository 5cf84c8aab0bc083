"""The typed RPC contract (tracker/contract.py) and its one table at the edge (gateway/replies.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.replies import HTTP_STATUS, http_body, http_status
from tracker.contract import Caller, Outcome, Reply
from tracker.errors import (
    UNAVAILABLE,
    Conflict,
    Forbidden,
    Internal,
    Invalid,
    NotFound,
    RateLimited,
    Refused,
    TooLarge,
    Unauthorized,
    Unavailable,
    declined,
    ok,
)


def test_every_outcome_but_ok_has_one_status():
    assert set(HTTP_STATUS) == set(Outcome) - {Outcome.OK}
    assert http_status(ok(), 204) == 204 and http_status(ok()) == 200


@pytest.mark.parametrize(("error", "status"), [
    (Invalid, 400), (Unauthorized, 401), (Forbidden, 403), (NotFound, 404), (Conflict, 409), (TooLarge, 413),
    (RateLimited, 429), (Internal, 500), (Unavailable, 503)])
def test_each_domain_error_maps_to_the_contracts_status(error, status):
    reply = error("why").reply()
    assert http_status(reply) == status
    assert http_body(reply) == {"ok": False, "message": "why"}


def test_every_refusal_is_covered():
    assert {cls.outcome for cls in Refused.__subclasses__()} == set(HTTP_STATUS) - {Outcome.DECLINED}


def test_envelope_extras_and_declined_answers():
    limited = RateLimited("Too many requests", rate_limit_delay=1.5).reply()
    assert http_body(limited) == {"ok": False, "message": "Too many requests", "rate_limit_delay": 1.5}
    no_task = declined("No task available", {"tasks": []}, park=True, retry_in=0.5)
    assert (http_status(no_task), http_body(no_task)) == (200, {"ok": False, "message": "No task available",
                                                               "content": {"tasks": []}})


def test_replies_and_callers_cross_the_wire_unchanged():
    reply = ok({"task": {"id": 1}}, "hi")
    reply.counts = {"assigned": 1}
    assert Reply.model_validate(reply.wire()) == reply
    assert UNAVAILABLE.wire() == {"outcome": "unavailable", "message": "Service unavailable"}
    caller = Caller(worker_id=3, worker_digest="d", request="r", keyed=True, deadline=1.0)
    assert Caller.model_validate(caller.wire()) == caller


def test_the_contract_refuses_what_it_does_not_name():
    with pytest.raises(ValidationError):
        Caller.model_validate({"worker_id": 3, "worker_secret": "raw"})  # a raw secret never travels
    with pytest.raises(ValidationError):
        Reply.model_validate({"outcome": "teapot"})
    with pytest.raises(ValidationError):
        Reply.model_validate({"status": 200, "body": {}})  # the old untyped shape
