"""Every operation that changes state stores its reply with its effect (exactly-once under broker
redelivery and client retries, tracker/idempotency.py); only reads may go without. Unit level."""

from __future__ import annotations

import pytest

from tracker.plugins import discover

# Operations that change nothing: a redelivery of one may simply run again.
READS = {
    ("git_svc", "ping"), ("log_svc", "query"), ("manager_svc", "account"), ("manager_svc", "list_managers"),
    ("project_svc", "get"), ("project_svc", "list_projects"), ("project_svc", "access_list"),
    ("project_svc", "managers_for_project"), ("project_svc", "get_secret"), ("project_svc", "get_webhook_secret"),
    ("project_svc", "monitoring"), ("project_svc", "monitoring_between"), ("task_svc", "assignees"),
    ("task_svc", "list_tasks"), ("task_svc", "view_task"),
    ("worker_svc", "identify"), ("worker_svc", "get"), ("worker_svc", "stats"),
}
# Operations that open their own transactions (tracker/service.py ``stepwise``) and say why.
STEPWISE = {("manager_svc", "login")}

OPERATIONS = [(name, op) for name, plugin in discover().items()
              for op in plugin.service_class().operations.values()]


@pytest.mark.parametrize(("service", "op"), OPERATIONS, ids=[f"{s}.{o.name}" for s, o in OPERATIONS])
def test_a_state_changing_operation_stores_its_reply(service, op):
    if (service, op.name) in READS:
        assert not op.once, "a read has no effect to pair its reply with"
    elif (service, op.name) in STEPWISE:
        assert op.stepwise
    else:
        assert op.once, f"{service}.{op.name} changes state: declare it @operation(once=True)"


def test_the_lists_name_real_operations():
    names = {(service, op.name) for service, op in OPERATIONS}
    assert names >= READS | STEPWISE
