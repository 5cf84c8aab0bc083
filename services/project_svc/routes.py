"""Gateway routes of project_svc: projects, worker access, manager roles on projects."""

from services.project_svc.messages import CreateProject, RequestAccess, SetRole, UpdateProject
from tracker.routing import Caller, Route

ROUTES = [
    Route("POST", "/project/create", "create", Caller.MANAGER, body=CreateProject, summary="Create a project"),
    Route("GET", "/project/get/{id}", "get", summary="One project"),
    Route("GET", "/project/list", "list_projects", summary="Projects the caller may read, by name"),
    Route("POST", "/project/update/{id}", "update", Caller.MANAGER, body=UpdateProject,
          summary="Change some fields of a project (EDIT)"),
    Route("POST", "/project/request_access", "request_access", Caller.WORKER, body=RequestAccess,
          summary="Ask for ASSIGN and/or SUBMIT on a project"),
    Route("POST", "/project/accept_request/{id}/{wid}", "accept_request", Caller.MANAGER,
          summary="Grant a worker's pending request (MANAGE_ACCESS)"),
    Route("POST", "/project/reject_request/{id}/{wid}", "reject_request", Caller.MANAGER,
          summary="Delete a worker's request or access (MANAGE_ACCESS)"),
    Route("GET", "/project/access_list/{id}", "access_list", Caller.MANAGER,
          summary="Granted accesses, then pending requests (MANAGE_ACCESS)"),
    Route("GET", "/manager/list_for_project/{id}", "managers_for_project", Caller.MANAGER,
          summary="Managers with a role on a project"),
    Route("POST", "/manager/set_role_for_project/{id}", "set_role", Caller.MANAGER, body=SetRole,
          summary="Set a manager's role bitmask on a project (MANAGE_ACCESS)"),
]
