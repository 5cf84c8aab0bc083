"""nameko entrypoints of project_svc: projects, worker access requests, manager roles, secrets,
and the monitoring snapshots (a timer on every replica; one of them takes each snapshot)."""

from __future__ import annotations

import logging

from nameko.timer import timer

from services.project_svc import store
from services.project_svc.messages import (
    AccessList,
    AccessRef,
    CreateProject,
    MonitoringQuery,
    MonitoringRange,
    ProjectCreated,
    ProjectId,
    ProjectList,
    ProjectManagers,
    ProjectRecord,
    ProjectSecret,
    ProjectUpdate,
    ProjectWebhookSecret,
    RequestAccess,
    RoleChange,
    SecretChange,
    Snapshots,
    VersionChange,
    WebhookSecretChange,
)
from tracker.access import (
    ROLE_ALL,
    ROLE_EDIT,
    ROLE_MANAGE_ACCESS,
    ROLE_SECRET,
    ProjectAccess,
    project_access,
)
from tracker.db import transaction
from tracker.errors import Conflict, Forbidden, Invalid, NotFound, ok
from tracker.fields import NoParams
from tracker.hashing import new_webhook_secret
from tracker.service import Service, operation
from tracker.settings import get_settings
from tracker.shapes import content
from tracker.views import public_project

log = logging.getLogger("project_svc.monitoring")
_SETTINGS = get_settings()
# Tick several times per interval so that some replica claims every slot even if one is busy;
# a tick that finds its slot already claimed costs one indexed UPDATE of one row.
SNAPSHOT_TICK = max(0.2, min(_SETTINGS.monitoring_interval / 4, 10.0))


def _require_role(acc: ProjectAccess, ident, bit: int, what: str) -> None:
    if not acc.has_role(bit):
        raise ident.denied(f"{what} role required on this project")


class ProjectService(Service):
    name = "project_svc"

    # --- projects ---------------------------------------------------------------------------
    def _check_chain(self, conn, ident, chain: int, own_id: int | None) -> None:
        """Stored-data validation of ``chain``: an existing other project the caller may EDIT."""
        if chain == 0:
            return
        if chain == own_id or not store.exists_(conn, chain):
            raise Invalid("invalid field 'chain': must be 0 or the id of another existing project")
        if not project_access(conn, ident, chain).has_role(ROLE_EDIT):
            raise Forbidden("EDIT role required on the chain target project")

    @operation(CreateProject, once=True)
    def create(self, conn, ident, params: CreateProject):
        manager_id = ident.require_manager()
        if params.public and not ident.admin:
            raise Forbidden("Only a tracker admin may create a public project")
        self._check_chain(conn, ident, params.chain, None)
        project_id = store.create(conn, params.model_dump(), new_webhook_secret())
        if project_id is None:
            raise Conflict("Project name already taken")
        store.set_role(conn, manager_id, project_id, ROLE_ALL)
        store.first_snapshot(conn, project_id)
        return ok(content(ProjectCreated, id=project_id))

    @operation(ProjectId)
    def get(self, conn, ident, params: ProjectId):
        acc = project_access(conn, ident, params.id)
        if not acc.can_read:
            raise ident.denied("You may not read this project")
        return ok(content(ProjectRecord, project=public_project(acc.project)))

    @operation(NoParams)
    def list_projects(self, conn, ident, params):
        return ok(content(ProjectList, projects=store.list_readable(conn, ident.manager_id, ident.admin)))

    @operation(ProjectUpdate, once=True)
    def update(self, conn, ident, params: ProjectUpdate):
        project_id, changes = params.id, params.changes()
        ident.require_manager()
        acc = project_access(conn, ident, project_id, lock=True)
        _require_role(acc, ident, ROLE_EDIT, "EDIT")
        current = acc.project
        merged = {**current, **changes}
        if merged["public"] and not current["public"] and not ident.admin:
            raise Forbidden("Only a tracker admin may make a project public")
        # The chain target's EDIT check is a permission (step 7 of §1.4), so it comes before
        # the merged-result validation, which needs stored data and therefore runs at step 9.
        if "chain" in changes and changes["chain"] != current["chain"]:
            self._check_chain(conn, ident, changes["chain"], project_id)
        if merged["public"] and merged["hidden"]:
            raise Invalid("invalid field 'hidden': a project cannot be both public and hidden")
        if not store.update_fields(conn, project_id, changes):
            raise Conflict("Project name already taken")
        store.reset_rate_limits(conn, project_id)
        return ok()

    # --- worker access ----------------------------------------------------------------------
    @operation(RequestAccess, once=True)
    def request_access(self, conn, ident, params: RequestAccess):
        worker_id = ident.require_worker()
        if not store.exists_(conn, params.project):
            raise NotFound("Project not found")
        if not store.add_request(conn, worker_id, params.project, params.assign, params.submit):
            raise Conflict("You already have a request or an access on this project")
        return ok()

    def _access_target(self, conn, ident, params: AccessRef) -> None:
        """404 for an unknown project, worker or row, then 403 without MANAGE_ACCESS."""
        ident.require_manager()
        acc = project_access(conn, ident, params.id)
        if not store.worker_exists(conn, params.wid):
            raise NotFound("Worker not found")
        if store.access_row(conn, params.wid, params.id) is None:
            raise NotFound("No access request for this worker on this project")
        _require_role(acc, ident, ROLE_MANAGE_ACCESS, "MANAGE_ACCESS")

    @operation(AccessRef, once=True)
    def accept_request(self, conn, ident, params: AccessRef):
        self._access_target(conn, ident, params)
        store.grant(conn, params.wid, params.id)
        return ok()

    @operation(AccessRef, once=True)
    def reject_request(self, conn, ident, params: AccessRef):
        self._access_target(conn, ident, params)
        store.revoke(conn, params.wid, params.id)
        return ok()

    @operation(ProjectId)
    def access_list(self, conn, ident, params: ProjectId):
        ident.require_manager()
        acc = project_access(conn, ident, params.id)
        _require_role(acc, ident, ROLE_MANAGE_ACCESS, "MANAGE_ACCESS")
        return ok(content(AccessList, accesses=store.access_list(conn, params.id)))

    # --- manager roles ----------------------------------------------------------------------
    @operation(ProjectId)
    def managers_for_project(self, conn, ident, params: ProjectId):
        ident.require_manager()
        if not store.exists_(conn, params.id):
            raise NotFound("Project not found")
        return ok(content(ProjectManagers, managers=store.managers_with_role(conn, params.id)))

    @operation(RoleChange, once=True)
    def set_role(self, conn, ident, params: RoleChange):
        ident.require_manager()
        # The project row stays locked to the end, so role changes on one project run one at a
        # time and the roles read below (after the lock) are the ones the change applies to.
        acc = project_access(conn, ident, params.id, lock=True)
        if not store.manager_exists(conn, params.manager):
            raise NotFound("Manager not found")
        _require_role(acc, ident, ROLE_MANAGE_ACCESS, "MANAGE_ACCESS")
        if not ident.admin:
            self._check_delegation(conn, ident.manager_id, params)
        store.set_role(conn, params.manager, params.id, params.role)
        return ok()

    @staticmethod
    def _check_delegation(conn, caller: int, params: RoleChange) -> None:
        """A manager who is not a tracker admin hands on only what it holds (contract §6.2)."""
        mine = store.role_of(conn, caller, params.id)
        if not mine & ROLE_MANAGE_ACCESS:
            raise Forbidden("MANAGE_ACCESS role required on this project")
        if params.manager == caller:
            raise Forbidden("You cannot change your own role")
        theirs = store.role_of(conn, params.manager, params.id)
        if theirs & ~mine:
            raise Forbidden("That manager holds a role you lack on this project")
        if (theirs ^ params.role) & ~mine:
            raise Forbidden("You may only grant or remove roles you hold on this project")

    # --- secrets ----------------------------------------------------------------------------
    @operation(ProjectId)
    def get_secret(self, conn, ident, params: ProjectId):
        acc = project_access(conn, ident, params.id)
        if not (acc.granted or acc.has_role(ROLE_SECRET)):
            raise ident.denied("A granted access or the SECRET role is required")
        return ok(content(ProjectSecret, secret=acc.project["secret"]))

    def _secret_keeper(self, conn, ident, project_id: int) -> ProjectAccess:
        ident.require_manager()
        acc = project_access(conn, ident, project_id)
        _require_role(acc, ident, ROLE_SECRET, "SECRET")
        return acc

    @operation(SecretChange, once=True)
    def set_secret(self, conn, ident, params: SecretChange):
        self._secret_keeper(conn, ident, params.id)
        store.update_fields(conn, params.id, {"secret": params.secret})
        return ok()

    @operation(ProjectId)
    def get_webhook_secret(self, conn, ident, params: ProjectId):
        acc = self._secret_keeper(conn, ident, params.id)
        return ok(content(ProjectWebhookSecret, webhook_secret=acc.project["webhook_secret"]))

    @operation(WebhookSecretChange, once=True)
    def set_webhook_secret(self, conn, ident, params: WebhookSecretChange):
        self._secret_keeper(conn, ident, params.id)
        store.update_fields(conn, params.id, {"webhook_secret": params.webhook_secret})
        return ok()

    # --- versions (git_svc's webhook) ----------------------------------------------------------
    @operation(VersionChange, once=True)
    def set_version(self, conn, ident, params: VersionChange):
        """Set ``version`` of ``params.projects``: asked by git_svc for a signed push (contract
        §6.7), the only writer of ``project`` besides this service's routes. No gateway route names
        it. git_svc names the call after the push's delivery id, so a rerun of a delivery whose
        first run committed here replays this reply instead of setting the version again."""
        store.set_version(conn, params.projects, params.version)
        return ok()

    # --- monitoring -------------------------------------------------------------------------
    def _readable(self, conn, ident, project_id: int) -> None:
        if not project_access(conn, ident, project_id).can_read:
            raise ident.denied("You may not read this project")

    @operation(MonitoringQuery)
    def monitoring(self, conn, ident, params: MonitoringQuery):
        self._readable(conn, ident, params.id)
        return ok(content(Snapshots, snapshots=store.snapshots(conn, params.id, limit=params.count)))

    @operation(MonitoringRange)
    def monitoring_between(self, conn, ident, params: MonitoringRange):
        self._readable(conn, ident, params.id)
        return ok(content(Snapshots, snapshots=store.snapshots(conn, params.id, since=params.since,
                                                              until=params.until)))

    @timer(interval=SNAPSHOT_TICK, eager=True)
    def snapshot_tick(self):
        """Every replica ticks, the first time as it starts (so a system just started has its
        snapshot at once); the one that advances the shared clock takes the snapshot."""
        try:
            with transaction() as conn:
                taken = store.take_snapshot(conn, _SETTINGS.monitoring_interval,
                                            _SETTINGS.monitoring_retention_hours)
            if taken is not None:
                log.debug("monitoring snapshot of %d projects", taken)
        except Exception as exc:  # noqa: BLE001 - a missed tick is retried by the next one
            log.warning("monitoring snapshot failed: %s", exc.__class__.__name__)
