"""Reference backend: the orientor auth contract, correct by default, with seeded faults.

Modules: ``config`` (env + faults), ``clock``, ``errors`` (one JSON error shape), ``jwks``
(remote key cache), ``tokens`` (Clerk token verification), ``clerk_api`` (Backend API user
fetch), ``db`` (schema + user sync), ``webhooks`` (Svix-verified events), ``cors`` and
``main`` (``create_app``).
"""
