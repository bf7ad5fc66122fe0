"""FastAPI + fastapi-clerk-auth 0.0.9, written the way its README shows.

README "Basic Usage": ClerkConfig(jwks_url=<your Clerk JWKS endpoint>) and a
ClerkHTTPBearer guard as a route dependency; "Adding Auth Data to Request State" reads the
user id with credentials.decoded.get("sub"). CORS is FastAPI's own CORSMiddleware, as
FastAPI's CORS tutorial shows, for the SPA's origins.
"""

import os

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_clerk_auth import ClerkConfig, ClerkHTTPBearer, HTTPAuthorizationCredentials

app = FastAPI()

app.add_middleware(
    CORSMiddleware,
    allow_origins=[o for o in os.environ.get("CORS_ORIGINS", "").split(",") if o],
    allow_credentials=True,
    allow_methods=["*"],
    allow_headers=["*"],
)

# Use your Clerk JWKS endpoint: https://<your frontend API>/.well-known/jwks.json
clerk_config = ClerkConfig(jwks_url=os.environ["CLERK_JWKS_URL"])

clerk_auth_guard = ClerkHTTPBearer(config=clerk_config)


@app.get("/health")
async def health():
    return {"status": "ok"}


@app.get("/api/me")
async def me(credentials: HTTPAuthorizationCredentials = Depends(clerk_auth_guard)):
    return {"user_id": credentials.decoded.get("sub")}
