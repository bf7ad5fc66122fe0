"""The active organization of a session token, read as Clerk issues it.

Session tokens v2 carry it as ``o``: ``{"id", "slg", "rol", "per", "fpm"}``, the role without
its ``org:`` prefix (``org:admin`` is ``"rol": "admin"``), as ``@clerk/backend``'s
``jwtPayloadParser`` reads it (``orgRole = `org:${o.rol}` ``). The v1 names (``org_id``,
``org_role``, ``org_permissions``) are gone from v2 tokens; the ``org_claims_v1`` fault reads
only those.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import ApiError


@dataclass(frozen=True)
class Organization:
    id: str
    slug: str | None
    role: str


def active_organization(claims: dict[str, Any], *, v1: bool = False) -> Organization | None:
    if v1:
        org_id, role = claims.get("org_id"), claims.get("org_role")
        if not isinstance(org_id, str) or not isinstance(role, str):
            return None
        return Organization(org_id, claims.get("org_slug"), role)
    o = claims.get("o")
    if not isinstance(o, dict) or not isinstance(o.get("id"), str) or not isinstance(o.get("rol"), str):
        return None
    role = o["rol"] if o["rol"].startswith("org:") else f"org:{o['rol']}"
    return Organization(o["id"], o.get("slg"), role)


def require_role(claims: dict[str, Any], role: str, *, v1: bool = False) -> Organization:
    """The active organization if the user holds ``role`` in it; else 403 (the token is valid:
    never 401, which would make the SPA refresh and sign out)."""
    org = active_organization(claims, v1=v1)
    if org is None:
        raise ApiError(403, "organization-required", "no active organization: select one (setActive({ organization }))")
    if org.role != role:
        raise ApiError(403, "organization-role-required", f"{role} required in organization {org.id} (you are {org.role})")
    return org
