"""FastAPI + Clerk's official Python SDK (clerk-backend-api 7.0.0), as its README shows.

README "Request Authentication": sdk = Clerk(bearer_auth=os.getenv('CLERK_SECRET_KEY')),
then sdk.authenticate_request(request, AuthenticateRequestOptions(authorized_parties=[…]))
and request_state.is_signed_in. With the secret key the SDK fetches
https://api.clerk.com/v1/jwks. The 401 is FastAPI's HTTPException with
WWW-Authenticate: Bearer, as FastAPI's security tutorial writes it.
"""

import os

from clerk_backend_api import Clerk
from clerk_backend_api.security.types import AuthenticateRequestOptions
from fastapi import FastAPI, HTTPException, Request
from fastapi.middleware.cors import CORSMiddleware

app = FastAPI()

app.add_middleware(
    CORSMiddleware,
    allow_origins=[o for o in os.environ.get("CORS_ORIGINS", "").split(",") if o],
    allow_credentials=True,
    allow_methods=["*"],
    allow_headers=["*"],
)

sdk = Clerk(bearer_auth=os.getenv("CLERK_SECRET_KEY"))
AUTHORIZED_PARTIES = [p for p in os.getenv("CLERK_AUTHORIZED_PARTIES", "").split(",") if p]


@app.get("/health")
def health():
    return {"status": "ok"}


@app.get("/api/me")
def me(request: Request):
    request_state = sdk.authenticate_request(
        request,
        AuthenticateRequestOptions(authorized_parties=AUTHORIZED_PARTIES),
    )
    if not request_state.is_signed_in:
        raise HTTPException(status_code=401, detail=request_state.message, headers={"WWW-Authenticate": "Bearer"})
    return {"user_id": request_state.payload.get("sub")}
