"""Every operation declares the message its params are validated into (tracker/service.py), and the
params the gateway sends for each route — path ids, query, the body's ``to_params()``, the extras'
params — validate into it, every key a declared field (the messages ignore unknown keys, so an
undeclared one would silently never reach the handler). Unit level: no system needed."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from gateway.inputs import validate_body
from gateway.routes import IDENTIFY
from services.git_svc.service import version_call
from tracker.fields import Message
from tracker.plugins import discover
from tracker.routing import Route

# A valid body of every route's body model (a new body model needs one here: see test_every_body_has_a_sample).
SAMPLE_BODIES: dict[str, dict] = {
    "CreateWorker": {"alias": "w1"},
    "UpdateWorker": {"alias": "w2"},
    "SetPaused": {"worker": 3, "paused": True},
    "Register": {"username": "sample_user", "password": "quiet-harbour-lantern-42"},
    "Login": {"username": "sample_user", "password": "anything"},
    "CreateProject": {"name": "p", "public": False, "assign_rate": 1, "submit_rate": 0.5, "chain": 0},
    "UpdateProject": {"motd": "hello", "assign_rate": 2},  # partial: only these two
    "RequestAccess": {"project": 4, "assign": True},
    "SetRole": {"manager": 5, "role": 3},
    "SetSecret": {"secret": "s"},
    "SetWebhookSecret": {"webhook_secret": "at-least-8"},
    "WorkerLog": {"scope": "sc", "message": "m", "timestamp": 1_700_000_000},
    "LogQuery": {"level": 5, "since": 1},
    "SubmitTask": {"project": 6, "recipe": "r", "unique_string": "u"},
    "BulkSubmit": {"requests": [{"project": 6, "recipe": "r"}, {"project": 6, "recipe": "s", "hash64": 9}]},
    "ReleaseTask": {"task_id": 7, "result": 1},
    "ExtendTask": {"task_id": 7, "seconds": 60},
    "Selection": {"filter": {"status": "failed", "q": "50%_off"}},
    "UpdateTasks": {"ids": [8, 9], "priority": -3, "move_to": 10},
    "EditTask": {"recipe": "r2", "retry": True},  # partial: only these two
}
CALLERS = ({}, {"session_digest": "d" * 64, "worker_id": 1, "worker_digest": "e" * 64})

PLUGINS = discover()
SERVICES = {name: plugin.service_class() for name, plugin in PLUGINS.items()}
OPERATIONS = [(name, op) for name, service in SERVICES.items() for op in service.operations.values()]
ROUTES = [(name, route) for name, plugin in PLUGINS.items() for route in plugin.route_list()]


@dataclass
class FakeRequest:
    """What an extra reads of the request (tracker.routing.Request)."""

    caller: dict
    req: SimpleNamespace = field(default_factory=lambda: SimpleNamespace(
        headers={"X-Hub-Signature-256": "sha256=" + "ab" * 32, "Content-Type": "application/json"}))
    settings: SimpleNamespace = field(default_factory=lambda: SimpleNamespace(session_lifetime=3600))
    state: dict = field(default_factory=dict)

    def client_address(self) -> str:
        return "192.0.2.7"


def path_names(route: Route) -> list[str]:
    return re.findall(r"{(\w+)}", route.path)


def gateway_params(route: Route, caller: dict, optional_query: bool) -> tuple[dict, dict]:
    """The params the gateway sends for a sample valid request (gateway/routes.py ``_params`` and
    the extras), after their JSON trip over RPC; and the body's own params."""
    request = FakeRequest(caller)
    params: dict = {name: i for i, name in enumerate(path_names(route), start=11)}
    params.update({name: rule.sample for name, rule in route.query.items() if rule.required or optional_query})
    body: dict = {}
    for extra in route.extras:
        raw = extra.body(request, b'{"repository": {"full_name": "o/r"}}')
        if raw is not None:
            body = raw
            break
    else:
        if route.body is not None:
            body = validate_body(route.body, SAMPLE_BODIES[route.body.__name__])
    params.update(body)
    for extra in route.extras:
        params.update(extra.params(request))
    return json.loads(json.dumps(params)), body


def accepted_keys(message: type[Message]) -> set[str]:
    return {info.alias or name for name, info in message.model_fields.items()}


@pytest.mark.parametrize(("service", "op"), OPERATIONS, ids=[f"{s}.{o.name}" for s, o in OPERATIONS])
def test_every_operation_declares_its_message(service, op):
    assert op.message is not None, f"{service}.{op.name}: declare @operation(Message, …)"
    assert issubclass(op.message, Message), f"{service}.{op.name}: a message is a tracker.fields.Message"


@pytest.mark.parametrize(("plugin", "route"), ROUTES, ids=[f"{r.method} {r.path}" for _, r in ROUTES])
def test_a_routes_params_validate_into_its_operations_message(plugin, route):
    op = SERVICES[plugin].operations.get(route.rpc)
    assert op is not None, f"{route.path} names no operation {plugin}.{route.rpc}"
    for caller in CALLERS:
        for optional_query in (True, False):
            params, body = gateway_params(route, caller, optional_query)
            assert set(params) <= accepted_keys(op.message), \
                f"{plugin}.{route.rpc} would drop {set(params) - accepted_keys(op.message)}"
            message = op.message.model_validate(params)
            if route.body is not None and route.body.partial:
                # the handler still knows which fields were sent (§6.4): exactly the body's
                assert message.model_fields_set - set(path_names(route)) == set(body)
    for name in path_names(route):  # a path id is required, never a silent default
        params, _ = gateway_params(route, CALLERS[1], True)
        with pytest.raises(ValidationError):
            op.message.model_validate({k: v for k, v in params.items() if k != name})


def test_a_partial_update_hands_on_only_the_fields_sent():
    message_type = SERVICES["project_svc"].operations["update"].message
    sent = message_type.model_validate({"id": 3, "motd": "m", "hidden": False})
    assert sent.changes() == {"motd": "m", "hidden": False}
    assert message_type.model_validate({"id": 3}).changes() == {}


def test_every_body_has_a_sample():
    bodies = {route.body.__name__ for _, route in ROUTES if route.body is not None}
    assert bodies <= set(SAMPLE_BODIES), f"add a sample body of {bodies - set(SAMPLE_BODIES)}"


def test_internal_calls_validate_into_their_messages():
    """Calls no route makes: the gateway's credential check, and git_svc's version update."""
    service, name = IDENTIFY
    SERVICES[service].operations[name].message.model_validate({})
    for delivery in (None, "d-1"):
        _caller, op_name, params = json.loads(json.dumps(version_call([2, 5], "abc123", delivery, None)))
        message = SERVICES["project_svc"].operations[op_name].message.model_validate(params)
        assert (message.projects, message.version) == ([2, 5], "abc123")
