"""Entry point: ``uvicorn app:app --host H --port P`` (run from this folder).

``python app.py setup`` creates the schema (idempotent; needs only DATABASE_URL) and exits.
Configuration errors (a missing required variable, an unknown REFERENCE_FAULTS name) exit with
status 2 before anything is served, naming the variable on stderr. The environment is checked
before the heavy imports, so such an exit takes a fraction of a second.
"""

from __future__ import annotations

import os
import sys

from refbackend.config import ConfigError, load_settings, setup_logging, sqlalchemy_url


def _fail(message: str):  # noqa: ANN202
    print(f"reference backend: configuration error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def build_app():  # noqa: ANN201
    setup_logging()
    try:
        settings = load_settings(os.environ)
        from refbackend.main import create_app

        return create_app(settings)
    except ConfigError as exc:
        _fail(str(exc))


def setup() -> None:
    setup_logging()
    url = (os.environ.get("DATABASE_URL") or "").strip()
    if not url:
        _fail("DATABASE_URL is not set: the setup command needs it")
    try:
        url = sqlalchemy_url(url)
    except ConfigError as exc:
        _fail(str(exc))
    from refbackend.db import create_schema, make_engine

    engine = make_engine(url)
    create_schema(engine)
    engine.dispose()
    print("reference backend: schema ready", file=sys.stderr)


if __name__ == "__main__":
    if sys.argv[1:] == ["setup"]:
        setup()
    else:
        print("usage: python app.py setup   (to serve: uvicorn app:app --host H --port P)", file=sys.stderr)
        raise SystemExit(64)
else:
    app = build_app()
