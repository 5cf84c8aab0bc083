"""``GET /openapi.json`` (contract §6.1): the OpenAPI 3.0.3 document of every route, generated.

Nothing here is written twice. Paths, methods, summaries, path/query parameters, credentials and
request bodies come from the plugins' ``Route`` declarations — the very objects gateway/routes.py
wires and validates with — and from the strict request models (``Message``), through pydantic's
JSON Schema generator. Reply shapes come from each route's ``reply``/``declined``/``unauthorized``
models (plain pydantic models at the end of each service's ``messages.py`` and in
``tracker/shapes.py``). The gateway's own routes (``/``, ``/healthz``, ``/readyz``, ``/metrics``,
``/openapi.json``, ``/docs``) are described below, next to the resources app.py wires.

OpenAPI 3.0.3, deliberately, not 3.1: the contract's int accepts a JSON integer only, never
``1.0`` (§1.2). Since JSON Schema draft 6 (so OpenAPI 3.1), ``1.0`` *is* an integer, and tools
generate it (schemathesis sends ``2.0`` for integer fields of 3.1 documents); the draft-4-based
schemas of OpenAPI 3.0 keep "integer" to numbers without a fraction, which is what the gateway
accepts. pydantic emits JSON Schema 2020-12, so the document is built in that form and converted
at the end (``_oas30``): ``anyOf [X, null]`` → ``X`` + ``nullable``, ``const`` → ``enum``, numeric
``exclusiveMinimum`` → the boolean form.

What the request models do not say by themselves, added here so the document accepts what the
gateway accepts and rejects what it rejects (contract §1.1, §1.2):
- a ``null`` field counts as absent, so every optional field of a request body also accepts null;
- every other rule is declared once, with its JSON Schema next to its check: a field's
  ``tracker.fields.Rule`` (storable, non-empty, rate, a reserved alias…) adds its ``schema`` to the
  field, a model's ``ModelRule`` (across fields) to the model; length limits and bounds are pydantic
  constraints, which pydantic writes as ``maxLength``/``minimum`` itself.
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from typing import Annotated, Any, Literal

import falcon
from pydantic import BaseModel, Field, ValidationError
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from gateway import routes as dispatch
from gateway.security import CROSS_ORIGIN_MESSAGE, SECURITY_HEADERS
from tracker import __version__
from tracker.fields import INT63_MAX, Message
from tracker.plugins import Plugin, discover
from tracker.routing import BareList, Caller, CloseSession, OpenSession, RawBody, Route
from tracker.shapes import Shape
from tracker.wording import IDEMPOTENCY_HEADER, SECRET_HEADER, SESSION_COOKIE, WORKER_ID_HEADER

OPENAPI_VERSION = "3.0.3"
PATH = "/openapi.json"
COMPONENTS = "#/components/schemas/"
# Any plugin route may answer these (contract §1.4), plus 414/431, which gunicorn answers itself
# (as a JSON envelope, gateway/gunicorn_conf.py) for a request line or headers over its limits.
COMMON_ERRORS = (400, 401, 404, 413, 414, 431, 503)
# The Idempotency-Key header of routes declared with ``idempotency_key`` (gateway/routes.py checks it).
IDEMPOTENCY_KEY = {"type": "string", "minLength": 1, "maxLength": dispatch.MAX_IDEMPOTENCY_KEY,
                   "pattern": "^[!-~]([ -~]*[!-~])?$"}  # printable ASCII (no edge spaces: HTTP strips them)

STATUS_TEXT = {
    400: "Malformed JSON, wrong type, missing or invalid field, path or query parameter (`message` names it)",
    401: "Credentials missing or invalid (worker headers, session cookie, webhook signature header)",
    403: "Authenticated but not permitted",
    404: "Unknown project, worker, task, manager or access request",
    409: "Conflict with existing data",
    413: "Request body larger than the limit (16 MiB by default)",
    414: "Request line longer than the HTTP server's limit (answered by gunicorn, JSON envelope)",
    431: "Request headers over the HTTP server's limits (answered by gunicorn, JSON envelope)",
    429: "Rate limited: retry after `rate_limit_delay` seconds",
    503: "A backend (broker, service, database) did not answer in time",
}
# Statuses whose meaning on some routes needs more than the common text.
GUARDED_403 = (f"Authenticated but not permitted; or `{CROSS_ORIGIN_MESSAGE}` (cross-origin refusal, answered right "
               "after the route match, before any other check, changing nothing)")
CROSS_ORIGIN = (f"Cross-origin refusal (contract §2): **403** `{CROSS_ORIGIN_MESSAGE}`, before any other check, when "
                "`Sec-Fetch-Site` is present and not `same-origin` or `none`, or `Origin` is present and neither the "
                "request's own origin (scheme, host, port) nor a configured public origin (`TT_PUBLIC_ORIGINS`). "
                "Requests with neither header are not affected.")

# --- the gateway's own reply shapes ------------------------------------------------------------
class Index(Shape):
    name: Literal["task_tracker"]
    version: Annotated[str, Field(min_length=1)]


class Readiness(Shape):
    broker: bool = Field(description="the broker answered")
    database: bool = Field(description="the database answered")


# --- JSON Schema of the models -------------------------------------------------------------------
def _allows_null(schema: dict) -> bool:
    if schema.get("type") == "null" or (isinstance(schema.get("type"), list) and "null" in schema["type"]):
        return True
    return any(_allows_null(s) for s in [*schema.get("anyOf", ()), *schema.get("oneOf", ())])


_META = ("title", "description", "default", "examples")


def _null_counts_as_absent(schema: dict) -> None:
    """Contract §1.1: a field whose value is null counts as absent, so optional fields accept null."""
    required = set(schema.get("required", ()))
    for name, prop in schema.get("properties", {}).items():
        if name in required or _allows_null(prop):
            continue
        meta = {k: prop.pop(k) for k in _META if k in prop}
        schema["properties"][name] = {"anyOf": [prop, {"type": "null"}], **meta}


class _Generator(GenerateJsonSchema):
    def field_title_should_be_set(self, schema) -> bool:
        return False  # property names say it; models keep their titles

    def model_schema(self, schema):
        out = super().model_schema(schema)
        if issubclass(schema["cls"], Message):
            _null_counts_as_absent(out)
        return out


def _models(routes: list[tuple[str, Route]]) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = [Index, Readiness]
    for _, route in routes:
        raw, doc = route.extra(RawBody), route.doc
        candidates = (route.body, raw.schema if raw else None, doc.reply, doc.unauthorized,
                      doc.declined if isinstance(doc.declined, type) else None)
        found += [m for m in candidates if m is not None and m not in found]
    return found


# --- envelopes (contract §1.3) ---------------------------------------------------------------------
def _envelope(ok: bool, content: dict | None = None, content_required: bool = True) -> dict:
    props: dict[str, Any] = {"ok": {"const": ok}, "message": {"type": "string"}}
    required = ["ok"]
    if not ok:
        props["message"] = {"type": "string", "minLength": 1}
        required.append("message")
    if content is not None:
        props["content"] = content
        if content_required:
            required.append("content")
    return {"type": "object", "required": required, "properties": props}


ERROR = {
    "description": "Error envelope: ok false, a non-empty message; some errors carry content",
    "type": "object",
    "required": ["ok", "message"],
    "properties": {
        "ok": {"const": False},
        "message": {"type": "string", "minLength": 1},
        "content": {"type": "object"},
        "rate_limit_delay": {"type": "number", "exclusiveMinimum": 0,
                             "description": "only on 429: seconds before the same request can succeed"},
    },
}
RATE_LIMITED = {"allOf": [{"$ref": COMPONENTS + "Error"}], "required": ["rate_limit_delay"]}


def _json(schema: dict, description: str, headers: dict | None = None) -> dict:
    out: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


def _error(status: int, content: dict | None = None, description: str | None = None) -> dict:
    schema = {"$ref": COMPONENTS + ("RateLimited" if status == 429 else "Error")}
    if content is not None:
        schema = {"allOf": [schema], "required": ["content"], "properties": {"content": content}}
    return _json(schema, description or STATUS_TEXT[status])


SET_COOKIE = {"Set-Cookie": {"description": "the session cookie `tt` (Path=/; HttpOnly; SameSite=Strict; Secure when "
                                            "the deployment serves TLS)",
                             "schema": {"type": "string"}}}
# Every answer of the gateway carries these (gateway/security.py), errors included. A page with a
# fuller policy of its own (/docs) sends that instead, which forbids framing as well.
RESPONSE_HEADERS = {name: {"description": "browser safety: sent on every answer", "required": True,
                           "schema": {"type": "string", "enum": [value]} if name != "Content-Security-Policy"
                           else {"type": "string", "pattern": "frame-ancestors 'none'"}}
                    for name, value in SECURITY_HEADERS.items()}
EXPIRE_COOKIE = {"Set-Cookie": {"description": "expires the session cookie `tt`", "schema": {"type": "string"}}}


# --- operations ------------------------------------------------------------------------------------
SECURITY_SCHEMES = {
    "workerId": {"type": "apiKey", "in": "header", "name": WORKER_ID_HEADER,
                 "description": f"worker id (decimal); always sent together with {SECRET_HEADER}"},
    "workerSecret": {"type": "apiKey", "in": "header", "name": SECRET_HEADER,
                     "description": "the worker's base64 secret, shown once by /worker/create"},
    "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE,
                "description": "manager session cookie set by /register and /login"},
}
WORKER = {"workerId": [], "workerSecret": []}
SESSION = {"session": []}
SECURITY = {Caller.WORKER: [WORKER], Caller.MANAGER: [SESSION], Caller.ANYONE: [{}, WORKER, SESSION]}

_PATH_PARAM = re.compile(r"\{(\w+)\}")
PATH_ID = {"type": "integer", "minimum": 1, "maximum": INT63_MAX}


def _parameters(route: Route) -> list[dict]:
    params = [{"name": name, "in": "path", "required": True, "schema": dict(PATH_ID),
               "description": "decimal integer in 1 … 2^63−1 (else 400 naming it)"}
              for name in _PATH_PARAM.findall(route.path)]
    params += [{"name": name, "in": "query", "required": rule.required,
                "schema": rule.schema}
               for name, rule in route.query.items()]
    raw = route.extra(RawBody)
    if raw and raw.signature_headers:
        params += [{"name": name, "in": "header", "required": False, "schema": {"type": "string"},
                    "description": "signature of the raw body: HMAC-SHA256 keyed with the project's "
                                   "webhook_secret, hex, optionally prefixed `sha256=`; the first present of "
                                   f"{', '.join(raw.signature_headers)} is used, none present is a 401"}
                   for name in raw.signature_headers]
    params += [{"name": name, "in": "header", "required": False, "schema": {"type": "string"},
                "description": description}
               for name, description in (raw.optional_headers if raw else ())]
    if route.idempotency_key:
        params.append({"name": IDEMPOTENCY_HEADER, "in": "header", "required": False, "schema": IDEMPOTENCY_KEY,
                       "description": "(extension) a retry with the same key by the same worker within 24 h "
                                      "answers the first reply and changes nothing. The caller is authenticated "
                                      "before any stored answer is looked up: wrong or missing credentials are "
                                      "401 whatever the key, and a key never returns another worker's answer"})
    return params


def _accepts_empty(model: type[Message]) -> bool:
    """Whether an empty body (which counts as ``{}``) is valid: not when a field is required, nor
    when a rule between fields needs one (``ids`` or ``filter``; at least one field to edit). A body
    the document calls optional would be left out by a client reading it, and refused."""
    try:
        model.model_validate({})
    except ValidationError:
        return False
    return True


def _request_body(route: Route, refs: dict, defs: dict) -> dict | None:
    raw, bare_list = route.extra(RawBody), route.extra(BareList)
    if raw:
        schema = refs[raw.schema] if raw.schema else {"type": "object"}
        return {"required": True, "description": "Any JSON object; the signature covers these exact bytes",
                "content": {"application/json": {"schema": schema}}}
    if route.body is None:
        return None
    schema = refs[route.body]
    required = not _accepts_empty(route.body)
    if bare_list:
        # A bare JSON array is accepted as {key: array} (gateway/inputs.parse_json).
        listed = defs[schema["$ref"].removeprefix(COMPONENTS)]["properties"][bare_list.key]
        schema = {"oneOf": [schema, copy.deepcopy(listed)]}
    return {"required": required, "content": {"application/json": {"schema": schema}},
            "description": "JSON, whatever the Content-Type says; an empty body counts as {}"}


def _success(route: Route, refs: dict) -> dict:
    doc = route.doc
    closes = route.extra(CloseSession) is not None
    if doc.status == 204:
        out: dict[str, Any] = {"description": "Success, no body"}
        if closes:
            out["headers"] = EXPIRE_COOKIE
        return out
    schema = _envelope(True, refs[doc.reply] if doc.reply else None)
    if doc.declined is not False:
        content = refs[doc.declined] if isinstance(doc.declined, type) else None
        declined = _envelope(False, content, content_required=False)
        if doc.declined_messages:
            declined["properties"]["message"] = {"type": "string", "enum": list(doc.declined_messages)}
        schema = {"oneOf": [schema, declined]}
    headers = SET_COOKIE if route.extra(OpenSession) else EXPIRE_COOKIE if closes else None
    description = "Success" + (", or a negative answer that is not an error (ok false)" if doc.declined else "")
    return _json(schema, description, headers)


def _operation(plugin: str, route: Route, refs: dict, defs: dict) -> dict:
    op: dict[str, Any] = {"operationId": f"{plugin}.{route.rpc}", "tags": [plugin]}
    doc = route.doc
    if doc.summary:
        op["summary"] = doc.summary
    notes = [text for text in (doc.description, CROSS_ORIGIN if route.guarded else None) if text]
    if notes:
        op["description"] = "\n\n".join(notes)
    if route.guarded:
        op["x-cross-origin-refused"] = True  # machine-readable: this operation refuses cross-origin requests
    params = _parameters(route)
    if params:
        op["parameters"] = params
    body = _request_body(route, refs, defs)
    if body:
        op["requestBody"] = body
    op["security"] = SECURITY[route.caller]
    responses = {str(doc.status): _success(route, refs)}
    for status in sorted(set(COMMON_ERRORS) | set(doc.errors) | ({403} if route.guarded else set())):
        content = refs[doc.unauthorized] if status == 401 and doc.unauthorized else None
        responses[str(status)] = _error(status, content, GUARDED_403 if status == 403 and route.guarded else None)
    op["responses"] = responses
    return op


def _gateway_paths(refs: dict) -> dict:
    """The routes gateway/app.py wires itself (not plugins')."""
    tag = ["gateway"]
    return {
        "/": {"get": {
            "operationId": "gateway.index", "tags": tag, "summary": "Name and version of the tracker",
            "security": [{}, WORKER],
            "responses": {"200": _json(_envelope(True, refs[Index]), "Success"),
                          "401": _error(401), "503": _error(503)}}},
        "/healthz": {"get": {
            "operationId": "gateway.healthz", "tags": tag, "summary": "(extension) Liveness; touches no dependency",
            "responses": {"200": _json(_envelope(True), "Alive")}}},
        "/readyz": {"get": {
            "operationId": "gateway.readyz", "tags": tag,
            "summary": "(extension) Readiness: broker and database reachable",
            "responses": {"200": _json(_envelope(True, refs[Readiness]), "Ready"),
                          "503": _json(_envelope(False, refs[Readiness]), "Not ready: the failing part is false")}}},
        "/metrics": {"get": {
            "operationId": "gateway.metrics", "tags": tag, "summary": "(extension) Prometheus metrics",
            "responses": {"200": {"description": "Prometheus text exposition format 0.0.4",
                                  "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        "/docs": {"get": {
            "operationId": "gateway.docs", "tags": tag,
            "summary": "(extension) Interactive reference of this document (Redoc, served by the gateway itself)",
            "responses": {"200": {"description": "HTML page; its scripts are under /docs/, nothing from elsewhere",
                                  "content": {"text/html": {"schema": {"type": "string"}}}}}}},
        "/ui/": {"get": {
            "operationId": "gateway.ui", "tags": tag,
            "summary": "(extension) The manager web UI (a single page over this API; served by the gateway itself)",
            "responses": {"200": {"description": "HTML page; its files are under /ui/, nothing from elsewhere",
                                  "content": {"text/html": {"schema": {"type": "string"}}}}}}},
        PATH: {"get": {
            "operationId": "gateway.openapi", "tags": tag, "summary": "(extension) This OpenAPI document",
            "responses": {"200": _json({"type": "object", "required": ["openapi", "info", "paths"]},
                                       "The OpenAPI document, raw (no envelope)")}}},
    }


def build(plugins: dict[str, Plugin] | None = None) -> dict:
    """The document for these plugins (all installed ones by default)."""
    routes = [(name, route) for name, plugin in (plugins or discover()).items() for route in plugin.route_list()]
    models = _models(routes)
    mapping, top = models_json_schema([(m, "validation") for m in models], ref_template=COMPONENTS + "{model}",
                                      schema_generator=_Generator)
    refs = {model: mapping[(model, "validation")] for model in models}
    defs = top.get("$defs", {})
    paths = _gateway_paths(refs)
    for plugin, route in routes:
        operations = paths.setdefault(route.path, {})
        method = route.method.lower()
        if method in operations:
            raise RuntimeError(f"two routes declare {route.method} {route.path}")
        operations[method] = _operation(plugin, route, refs, defs)
    schemas = {**defs, "Error": ERROR, "RateLimited": RATE_LIMITED}
    for operations in paths.values():
        for operation in operations.values():
            for response in operation["responses"].values():
                response["headers"] = {**response.get("headers", {}), **copy.deepcopy(RESPONSE_HEADERS)}
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "task_tracker",
            "version": __version__,
            "description": " ".join((
                "Distributed task tracker (wire-compatible with simon987/task_tracker API v1.1).",
                "Every answer is a JSON envelope {ok, message?, content?, rate_limit_delay?} except 204",
                "answers, /metrics, /docs and this document. Extensions: ?count and ?wait on task get,",
                "/task/extend, Idempotency-Key, /healthz, /readyz, /metrics, /openapi.json, /docs, the task",
                "id in the /task/submit answer. Field names in request bodies (bulk items included) match",
                "case-insensitively, as the original's decoder did: the exactly-cased key wins when a body",
                "spells a field several ways, else the last spelling; losing spellings are ignored. Query",
                "parameters and header names are not folded.",
            )),
        },
        "tags": [{"name": "gateway"}, *({"name": name} for name in sorted({p for p, _ in routes}))],
        "paths": _oas30(dict(sorted(paths.items()))),
        "components": {"schemas": {name: _schema30(schema) for name, schema in sorted(schemas.items())},
                       "securitySchemes": SECURITY_SCHEMES},
    }


# --- JSON Schema 2020-12 → OpenAPI 3.0 Schema Object -------------------------------------------------
_SUBSCHEMA = ("items", "not", "additionalProperties")
_SUBSCHEMAS = ("allOf", "anyOf", "oneOf")
_NAMED_SUBSCHEMAS = ("properties", "patternProperties")
_CONST_TYPE = {bool: "boolean", str: "string", int: "integer", float: "number"}


def _is_null(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "null"


def _schema30(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _NAMED_SUBSCHEMAS:
            out[key] = {name: _schema30(sub) for name, sub in value.items()}
        elif key in _SUBSCHEMA:
            out[key] = _schema30(value)
        elif key in _SUBSCHEMAS:
            out[key] = [_schema30(sub) for sub in value]
        else:
            out[key] = copy.deepcopy(value)
    if "anyOf" in out and any(_is_null(s) for s in out["anyOf"]):
        others = [s for s in out.pop("anyOf") if not _is_null(s)]
        if len(others) == 1 and "$ref" in others[0]:
            # OpenAPI 3.0 has no nullable reference (``nullable`` works only beside a ``type``, not
            # through a ``$ref``): the object, or a schema that admits null and nothing else.
            return {**out, "anyOf": [others[0], {"type": "object", "nullable": True, "enum": [None]}]}
        if len(others) != 1 or "type" not in others[0]:
            raise RuntimeError(f"cannot express this nullable schema in OpenAPI 3.0: {schema}")
        out = {**others[0], **out, "nullable": True}
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]  # OpenAPI 3.0.3: a nullable enum lists null
    if isinstance(out.get("type"), list):  # (a lone {"type": "null"} is a member its parent's anyOf removes)
        raise RuntimeError(f"cannot express this type in OpenAPI 3.0: {schema}")
    if "const" in out:
        value = out.pop("const")
        out["enum"] = [value]
        if type(value) in _CONST_TYPE:
            out.setdefault("type", _CONST_TYPE[type(value)])
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), int | float) and not isinstance(out[bound], bool):
            out[plain] = out[bound]
            out[bound] = True
    if "examples" in out:
        out["example"] = out.pop("examples")[0]
    return out


def _oas30(node: Any) -> Any:
    """Every ``schema`` of the document (parameters, bodies, responses, headers) in 3.0 form."""
    if isinstance(node, dict):
        return {key: _schema30(value) if key == "schema" else _oas30(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_oas30(item) for item in node]
    return node


@cache
def document_bytes() -> bytes:
    """The document of the installed plugins, built once per process."""
    return json.dumps(build(), ensure_ascii=False, indent=None).encode("utf-8")


class OpenApiResource:
    """``GET /openapi.json``: the raw document (no envelope), anonymous; of the installed plugins
    unless the app was made with others (tests)."""

    def __init__(self, plugins: dict[str, Plugin] | None = None) -> None:
        self.plugins = plugins

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        if self.plugins is None:
            resp.data = document_bytes()
        else:
            resp.data = json.dumps(build(self.plugins), ensure_ascii=False).encode("utf-8")
