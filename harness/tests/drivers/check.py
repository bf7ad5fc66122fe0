"""Connects to the database with every Python driver, each with the URL form meant for it,
and writes what each saw to $DRIVERS_RESULT (JSON). Run by the database_drivers test as a
profile setup step, so the URLs are exactly what a backend's environment gets.

Exit status 1 (with the error on stderr) when any driver fails: the setup step then fails."""

import asyncio
import json
import os
import sys

env = os.environ
results = {"urls": {k: env[k] for k in ("DATABASE_URL", "DATABASE_URL_ASYNCPG", "DATABASE_URL_PSYCOPG")}}
QUERY = "SELECT current_database()"


def psycopg2_url():
    import psycopg2

    with psycopg2.connect(env["DATABASE_URL"]) as conn, conn.cursor() as cur:
        cur.execute(QUERY)
        return cur.fetchone()[0]


def psycopg2_parts():
    import psycopg2

    parts = dict(host=env["DB_HOST"], port=env["DB_PORT"], dbname=env["DB_NAME"], user=env["DB_USER"], password=env["DB_PASSWORD"])
    with psycopg2.connect(**parts) as conn, conn.cursor() as cur:
        cur.execute(QUERY)
        return cur.fetchone()[0]


def psycopg3_url():
    import psycopg

    with psycopg.connect(env["DATABASE_URL"]) as conn:
        return conn.execute(QUERY).fetchone()[0]


def sqlalchemy_sync(url):
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            return f"{engine.dialect.driver}:{conn.execute(sqlalchemy.text(QUERY)).scalar()}"
    finally:
        engine.dispose()


def sqlalchemy_asyncpg():
    import sqlalchemy
    from sqlalchemy.ext.asyncio import create_async_engine

    async def run():
        engine = create_async_engine(env["DATABASE_URL_ASYNCPG"])
        try:
            async with engine.connect() as conn:
                return f"{engine.dialect.driver}:{(await conn.execute(sqlalchemy.text(QUERY))).scalar()}"
        finally:
            await engine.dispose()

    return asyncio.run(run())


def asyncpg_url():
    import asyncpg

    async def run():
        conn = await asyncpg.connect(env["DATABASE_URL"])
        try:
            return await conn.fetchval(QUERY)
        finally:
            await conn.close()

    return asyncio.run(run())


def sqlalchemy_refuses_postgres_scheme():
    """The control: the short scheme the harness used to hand out is refused by SQLAlchemy."""
    import sqlalchemy
    from sqlalchemy.exc import NoSuchModuleError

    short = "postgres://" + env["DATABASE_URL"].split("://", 1)[1]
    try:
        sqlalchemy.create_engine(short)
    except NoSuchModuleError as e:
        return f"refused: {e}"
    return "accepted"


checks = {
    "psycopg2": psycopg2_url,
    "psycopg2_parts": psycopg2_parts,
    "psycopg3": psycopg3_url,
    "sqlalchemy_psycopg2": lambda: sqlalchemy_sync(env["DATABASE_URL"]),
    "sqlalchemy_psycopg3": lambda: sqlalchemy_sync(env["DATABASE_URL_PSYCOPG"]),
    "sqlalchemy_asyncpg": sqlalchemy_asyncpg,
    "asyncpg": asyncpg_url,
    "sqlalchemy_postgres_scheme": sqlalchemy_refuses_postgres_scheme,
}
failed = False
for name, check in checks.items():
    try:
        results[name] = check()
    except Exception as e:  # report every driver, not only the first failure
        results[name] = f"error: {type(e).__name__}: {e}"
        print(f"{name}: {results[name]}", file=sys.stderr)
        failed = True
with open(env["DRIVERS_RESULT"], "w") as f:
    json.dump(results, f)
sys.exit(1 if failed else 0)
