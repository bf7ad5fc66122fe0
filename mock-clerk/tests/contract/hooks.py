"""Corrections to Clerk's OpenAPI specs, applied as schemathesis loads them (run.py sets
SCHEMATHESIS_HOOKS=hooks). Each one is a place where the spec disagrees with what Clerk's
API does and the mock copies; the evidence is in its docstring. Checks switched off for an
operation are in bapi.toml / fapi.toml, each with its reason.
"""

from __future__ import annotations

import ast
import os
import threading

import schemathesis

# CPython 3.11's `ast.parse` can fail when two threads parse at once ("SystemError: AST
# constructor recursion depth mismatch", seen here with `--workers 2`); hypothesis parses source
# to describe its filters, from each schemathesis worker. One lock makes that a non-event.
_AST_LOCK = threading.Lock()
_ast_parse = ast.parse


def _locked_parse(*args, **kwargs):
    with _AST_LOCK:
        return _ast_parse(*args, **kwargs)


ast.parse = _locked_parse

CLERK_ERRORS = {"description": "Request was not successful", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ClerkErrors"}}}}
METHODS = ("get", "put", "post", "patch", "delete")


def operations(raw_schema: dict):
    for path, item in raw_schema.get("paths", {}).items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def add_status(operation: dict, status: str) -> None:
    operation.setdefault("responses", {}).setdefault(status, CLERK_ERRORS)


def bapi_401_everywhere(raw_schema: dict) -> None:
    """Every Backend API operation answers 401 without a valid secret key.

    Evidence: the spec's one global `security` is `bearerAuth` (no operation opts out) and its
    `AuthenticationInvalid` response is Clerk's 401; yet only 110 of the 239 operations list
    a 401 (GET /jwks, DELETE /organizations/{id} … do not). schemathesis sends requests
    without the key and would report each 401 as undocumented.
    """
    for _, _, operation in operations(raw_schema):
        add_status(operation, "401")


def bapi_422_on_implemented(raw_schema: dict, implemented: set[str]) -> None:
    """Clerk refuses an unknown or invalid parameter with 422 `form_param_unknown` /
    `form_param_value_invalid` on every operation, listed in the spec or not.

    Evidence: the spec documents 422 with those codes on 123 of the 239 operations (GET /users, POST
    /organizations …) but not on GET /jwt_templates, GET /organizations/{id}, POST
    /sessions/{id}/tokens (whose `expires_in_seconds` has bounds 30…315360000 that a request
    can break) and others that take the same kind of parameters.
    """
    for _, _, operation in operations(raw_schema):
        if operation.get("operationId") in implemented:
            add_status(operation, "422")


def bapi_404_on_implemented(raw_schema: dict, implemented: set[str]) -> None:
    """An id Clerk does not know — in the path or the body — is a 404 `resource_not_found`.

    Evidence: the spec's `ResourceNotFound` response is listed on 161 of the 239 operations,
    but not on GET /organizations/{id}/memberships, GET /users/{id}/organization_memberships
    or POST /api_keys (whose `subject` names a user or organisation), which look ids up the same way.
    """
    for _, _, operation in operations(raw_schema):
        if operation.get("operationId") in implemented:
            add_status(operation, "404")


def paginated_envelope(raw_schema: dict) -> None:
    """`paginated=true` answers `{"data": [...], "total_count": n}`, not the bare array.

    Evidence: the spec's own `Paginated` parameter ("If true, the results will be
    paginated") changes the shape, but the 200 schema of GET /sessions and GET /jwt_templates
    is only the array; Clerk's SDKs read `data`/`totalCount` when they pass it
    (`@clerk/backend` `sessions.getSessionList` with `paginated: true`).
    """
    responses = raw_schema.get("components", {}).get("responses", {})
    for _, _, operation in operations(raw_schema):
        names = [p.get("$ref", "").rsplit("/", 1)[-1] for p in operation.get("parameters", [])]
        ok = operation.get("responses", {}).get("200")
        if "Paginated" not in names or ok is None:
            continue
        if "$ref" in ok:
            ok = responses[ok["$ref"].rsplit("/", 1)[-1]]
        content = ok.get("content", {}).get("application/json")
        if content is None:
            continue
        array = content["schema"]
        envelope = {"type": "object", "required": ["data", "total_count"], "properties": {"data": array, "total_count": {"type": "integer"}}}
        operation["responses"]["200"] = {"description": ok.get("description", "OK"), "content": {"application/json": {"schema": {"anyOf": [array, envelope]}}}}


def fapi_tokens_need_a_client(raw_schema: dict) -> None:
    """A session token is minted only for the requesting client: no anonymous access.

    Evidence: the spec's global `security` starts with `{}` (anonymous), which these operations
    inherit, yet it describes them as "Create a session JWT for the authenticated requested
    user" and lists the 401 that Clerk answers without a client; clerk-js always sends its dev
    browser (`__clerk_db_jwt`) or the `__client` cookie with them. With the anonymous option
    gone, schemathesis's `ignored_auth` check sends them without the credential and wants 401.
    """
    for _, _, operation in operations(raw_schema):
        if operation.get("operationId") in ("createSessionToken", "createSessionTokenWithTemplate"):
            operation["security"] = [{"DevBrowser": []}, {"ProductionBrowser": []}]


@schemathesis.hook
def before_load_schema(context, raw_schema: dict) -> None:
    implemented = set(filter(None, os.environ.get("CONTRACT_IMPLEMENTED", "").split(",")))
    if raw_schema.get("info", {}).get("title", "").startswith("Clerk Backend API"):
        bapi_401_everywhere(raw_schema)
        bapi_422_on_implemented(raw_schema, implemented)
        bapi_404_on_implemented(raw_schema, implemented)
        paginated_envelope(raw_schema)
    elif raw_schema.get("info", {}).get("title", "").startswith("Clerk Frontend API"):
        fapi_tokens_need_a_client(raw_schema)
