"""Replies are built through the shapes the OpenAPI document shows (tracker.shapes.content), so the
documented shape is the built shape. Unit level: no system needed."""

from __future__ import annotations

import ast
import inspect
import textwrap

import pytest
from pydantic import ValidationError

from services.manager_svc.messages import Account, LoggedOut
from services.task_svc.messages import Extended
from services.worker_svc.messages import WorkerRecord
from tracker.plugins import discover
from tracker.shapes import content

WORKER = {"id": 1, "created": 1_700_000_000, "alias": "w", "paused": False}
# task_svc's service is being rewritten to build its replies the same way; until then it is the
# one exception (remove it from here when it does).
NOT_YET: set[str] = set()  # services whose handlers do not build their replies yet (none)


def test_content_is_the_documented_shape():
    assert content(WorkerRecord, worker=WORKER) == {"worker": WORKER}
    assert content(Account, logged_in=True, manager={"id": 2, "username": "m", "tracker_admin": True,
                                                      "register_time": 5}) == {
        "logged_in": True, "manager": {"id": 2, "username": "m", "tracker_admin": True, "register_time": 5}}


def test_content_refuses_what_the_document_does_not_allow():
    with pytest.raises(ValidationError):
        content(WorkerRecord, worker={k: v for k, v in WORKER.items() if k != "alias"})  # missing
    with pytest.raises(ValidationError):
        content(WorkerRecord, worker={**WORKER, "id": "one"})  # mistyped
    with pytest.raises(ValidationError):
        content(LoggedOut, logged_in=True)  # the 401's content says logged_in false


def test_content_sends_only_what_was_given_and_the_shape_names():
    assert content(WorkerRecord, worker={**WORKER, "secret_digest": "x"}) == {"worker": WORKER}
    assert content(Extended, updated=False) == {"updated": False}  # no default 'expires' added


def _built_shapes(method, owner=None, seen: set | None = None) -> set[str]:
    """Names of the shapes a handler builds with ``content(Shape, …)``, itself or in the helpers
    it calls (``self._x(…)``, or a function of its module)."""
    seen = set() if seen is None else seen
    function = inspect.unwrap(method)
    if function in seen:
        return set()
    seen.add(function)
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    built = {node.args[0].id for node in ast.walk(tree)
             if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "content"
             and node.args and isinstance(node.args[0], ast.Name)}
    module = inspect.getmodule(function)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        helper = None
        if isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) \
                and node.func.value.id == "self" and owner is not None:
            helper = getattr(owner, node.func.attr, None)
        elif isinstance(node.func, ast.Name):
            helper = getattr(module, node.func.id, None)
        if inspect.isfunction(helper) and inspect.getmodule(helper) is module:
            built |= _built_shapes(helper, owner, seen)
    return built


ROUTES = [(name, route) for name, plugin in discover().items() for route in plugin.route_list()
          if name not in NOT_YET and (route.doc.reply or route.doc.unauthorized)]


@pytest.mark.parametrize(("plugin", "route"), ROUTES, ids=[f"{r.method} {r.path}" for _, r in ROUTES])
def test_every_documented_reply_is_built_through_its_shape(plugin, route):
    service = discover()[plugin].service_class()
    built = _built_shapes(getattr(service, route.rpc), service)
    for shape in (route.doc.reply, route.doc.unauthorized):
        if shape is not None:
            assert shape.__name__ in built, f"{plugin}.{route.rpc} does not build its documented {shape.__name__}"


def test_the_walk_covers_the_documented_routes():
    assert len(ROUTES) >= 15
