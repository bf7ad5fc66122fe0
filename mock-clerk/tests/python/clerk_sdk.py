"""Drive Clerk's official Python SDK (clerk-backend-api) against the mock, exactly as a backend
calls it. Used by mock-clerk/tests/python_sdk.rs; the venv comes from clerk-sdk-venv.sh.

    python clerk_sdk.py < commands.json

stdin is a JSON list of commands; stdout one JSON result per command, in order:

    {"op": "users_list", "api_url": ..., "secret_key": ..., "request": {...}}
        -> {"ids": [...]}                     Clerk(...).users.list(request=...)
    {"op": "authenticate", "headers": {...}, "options": {...}}
        -> {"status", "reason", "payload"}    security.authenticate_request(...)
    {"op": "verify_token", "token": ..., "options": {...}}
        -> {"payload"} or {"reason"}          security.verify_token(...)

Errors of the SDK are results ({"error": "..."}), not crashes; diagnostics go to stderr.
"""

import json
import sys
import traceback

import httpx
from clerk_backend_api import Clerk
from clerk_backend_api.security import authenticate_request, verify_token
from clerk_backend_api.security.types import AuthenticateRequestOptions, TokenVerificationError, VerifyTokenOptions


def reason_name(reason):
    if reason is None:
        return None
    value = reason.value
    return value[0] if isinstance(value, tuple) else value


def run(cmd):
    op = cmd["op"]
    if op == "users_list":
        with Clerk(bearer_auth=cmd["secret_key"], server_url=cmd["api_url"] + "/v1") as clerk:
            users = clerk.users.list(request=cmd["request"])
            return {"ids": [u.id for u in users]}
    if op == "authenticate":
        request = httpx.Request("GET", "http://backend.test/api", headers=cmd["headers"])
        state = authenticate_request(request, AuthenticateRequestOptions(**cmd["options"]))
        return {"status": state.status.value, "reason": reason_name(state.reason), "payload": state.payload}
    if op == "verify_token":
        try:
            return {"payload": verify_token(cmd["token"], VerifyTokenOptions(**cmd["options"]))}
        except TokenVerificationError as e:
            return {"reason": reason_name(e.reason)}
    raise ValueError(f"unknown op {op!r}")


def main():
    import importlib.metadata

    print(f"clerk-backend-api {importlib.metadata.version('clerk-backend-api')}, python {sys.version.split()[0]}", file=sys.stderr)
    for cmd in json.load(sys.stdin):
        try:
            result = run(cmd)
        except Exception as e:  # reported to the test, which shows stderr on failure
            traceback.print_exc(file=sys.stderr)
            result = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
