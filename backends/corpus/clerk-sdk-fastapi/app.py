"""FastAPI + Clerk's official Python SDK (clerk-backend-api 7.0.0), as its README shows.

README "Request Authentication": sdk = Clerk(bearer_auth=os.getenv('CLERK_SECRET_KEY')),
then sdk.authenticate_request(request, AuthenticateRequestOptions(authorized_parties=[…]))
and request_state.is_signed_in. With the secret key the SDK fetches
https://api.clerk.com/v1/jwks. The 401 is FastAPI's HTTPException with
WWW-Authenticate: Bearer, as FastAPI's security tutorial writes it.

GET /api/profile keeps a local user table (schema.sql): when no row has the token's Clerk
user id, the user is fetched with the SDK's sdk.users.get(user_id=…) (README "Available
Resources and Operations", called with the SDK's defaults) and upserted (INSERT … ON CONFLICT
on the unique Clerk id, Postgres's answer to two first requests at once). psycopg 3, one
connection per request (psycopg's "basic module usage": the with block commits).
"""

import os

import psycopg
from clerk_backend_api import Clerk
from clerk_backend_api.security.types import AuthenticateRequestOptions
from fastapi import FastAPI, HTTPException, Request
from fastapi.middleware.cors import CORSMiddleware

DATABASE_URL = os.environ["DATABASE_URL"]

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


def signed_in_claims(request: Request) -> dict:
    request_state = sdk.authenticate_request(
        request,
        AuthenticateRequestOptions(authorized_parties=AUTHORIZED_PARTIES),
    )
    if not request_state.is_signed_in:
        raise HTTPException(status_code=401, detail=request_state.message, headers={"WWW-Authenticate": "Bearer"})
    return request_state.payload


@app.get("/health")
def health():
    return {"status": "ok"}


@app.get("/api/me")
def me(request: Request):
    return {"user_id": signed_in_claims(request).get("sub")}


@app.get("/api/profile")
def profile(request: Request):
    clerk_user_id = signed_in_claims(request).get("sub")
    with psycopg.connect(DATABASE_URL) as conn:
        row = conn.execute(
            "SELECT id, clerk_user_id, email, first_name, last_name FROM users WHERE clerk_user_id = %s",
            (clerk_user_id,),
        ).fetchone()
        if row is None:
            user = sdk.users.get(user_id=clerk_user_id)
            email = next((e.email_address for e in user.email_addresses if e.id == user.primary_email_address_id), None)
            row = conn.execute(
                "INSERT INTO users (clerk_user_id, email, first_name, last_name) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (clerk_user_id) DO UPDATE"
                " SET email = EXCLUDED.email, first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name"
                " RETURNING id, clerk_user_id, email, first_name, last_name",
                (clerk_user_id, email, user.first_name, user.last_name),
            ).fetchone()
    user_id, clerk_user_id, email, first_name, last_name = row
    return {"id": user_id, "clerk_user_id": clerk_user_id, "email": email, "first_name": first_name, "last_name": last_name}
