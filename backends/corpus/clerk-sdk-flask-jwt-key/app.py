"""Flask + Clerk's official Python SDK (clerk-backend-api 7.0.0), networkless.

authenticate_request(request, AuthenticateRequestOptions(jwt_key=…)) as the SDK documents
it ("Networkless if the options.jwt_key is provided", security/authenticaterequest.py), with
the instance's PEM public key from CLERK_JWT_KEY (Clerk dashboard, API keys, "JWT public
key"). CORS is flask-cors, as its README shows.
"""

import os

from clerk_backend_api.security import authenticate_request
from clerk_backend_api.security.types import AuthenticateRequestOptions
from flask import Flask, jsonify, request
from flask_cors import CORS

app = Flask(__name__)
CORS(app, origins=[o for o in os.getenv("CORS_ORIGINS", "").split(",") if o], supports_credentials=True)

AUTHORIZED_PARTIES = [p for p in os.getenv("CLERK_AUTHORIZED_PARTIES", "").split(",") if p]


@app.get("/health")
def health():
    return {"status": "ok"}


@app.get("/api/me")
def me():
    request_state = authenticate_request(
        request,
        AuthenticateRequestOptions(jwt_key=os.getenv("CLERK_JWT_KEY"), authorized_parties=AUTHORIZED_PARTIES),
    )
    if not request_state.is_signed_in:
        return jsonify(detail=request_state.message), 401
    return {"user_id": request_state.payload.get("sub")}
