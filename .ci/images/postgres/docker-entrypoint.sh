#!/usr/bin/env bash
# Entrypoint of clerk-harness/postgres:15, built from Debian's postgresql-15.
#
# It follows the contract of the official `postgres` image (docker-library/postgres), which
# testcontainers-modules' `Postgres` relies on:
#   - env POSTGRES_USER (default postgres), POSTGRES_PASSWORD (required unless
#     POSTGRES_HOST_AUTH_METHOD=trust), POSTGRES_DB (default $POSTGRES_USER),
#     POSTGRES_INITDB_ARGS, POSTGRES_INITDB_WALDIR, POSTGRES_HOST_AUTH_METHOD, PGDATA;
#   - an empty $PGDATA is initialised on first start (initdb, then a temporary server bound to
#     the unix socket only, CREATE DATABASE, /docker-entrypoint-initdb.d/*, stop);
#   - arguments starting with `-` are handed to `postgres` (`-c fsync=off`);
#   - the temporary server logs to STDOUT and the final server to STDERR, so "database system is
#     ready to accept connections" appears once on each stream;
#   - the final server listens on 0.0.0.0:5432 with password auth (scram-sha-256) for the network.
set -Eeuo pipefail

log() { printf '%s\n' "$*"; }
err() { printf 'clerk-harness/postgres: error: %s\n' "$*" >&2; }

# `docker run IMAGE -c fsync=off` → `postgres -c fsync=off`
if [ "${1:0:1}" = '-' ]; then
	set -- postgres "$@"
fi

# Any other command (`psql`, `bash`, …) runs as is.
if [ "$1" != 'postgres' ]; then
	exec "$@"
fi

: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA

if [ "$(id -u)" = '0' ]; then
	# Directories the server needs, owned by postgres: the data dir (possibly a fresh volume) and
	# the socket/lock dir (without it: "could not create lock file /var/run/postgresql/.s.PGSQL.5432.lock").
	mkdir -p "$PGDATA" /var/run/postgresql
	chmod 00700 "$PGDATA" || :
	chown -R postgres:postgres "$PGDATA" 2>/dev/null || :
	chown postgres:postgres /var/run/postgresql
	chmod 03775 /var/run/postgresql
	if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
		mkdir -p "$POSTGRES_INITDB_WALDIR"
		chown -R postgres:postgres "$POSTGRES_INITDB_WALDIR"
		chmod 700 "$POSTGRES_INITDB_WALDIR"
	fi
	# Drop privileges and run this script again as postgres.
	exec setpriv --reuid=postgres --regid=postgres --init-groups -- "${BASH_SOURCE[0]}" "$@"
fi

# --- from here on we are the postgres user -------------------------------------------------

: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${POSTGRES_INITDB_ARGS:=}"
export POSTGRES_USER POSTGRES_DB

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "${POSTGRES_HOST_AUTH_METHOD:-}" != 'trust' ]; then
		err "the database is uninitialised and POSTGRES_PASSWORD is not set."
		err "Set it with '-e POSTGRES_PASSWORD=password' (or POSTGRES_HOST_AUTH_METHOD=trust to allow"
		err "all connections without a password — not recommended)."
		exit 1
	fi

	# initdb: superuser $POSTGRES_USER with the given password; locale from LANG (C.UTF-8).
	if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
		POSTGRES_INITDB_ARGS="--waldir $POSTGRES_INITDB_WALDIR $POSTGRES_INITDB_ARGS"
	fi
	eval 'initdb --username="$POSTGRES_USER" --pwfile=<(printf "%s\n" "${POSTGRES_PASSWORD:-}") '"$POSTGRES_INITDB_ARGS"

	# Listen on every address; password auth (or what POSTGRES_HOST_AUTH_METHOD says) for the network.
	printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
	auth="${POSTGRES_HOST_AUTH_METHOD:-}"
	if [ -z "$auth" ]; then
		auth="$(postgres -C password_encryption "${@:2}")"
	fi
	printf '\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"

	# Temporary server on the unix socket only. pg_ctl without -l sends the server's output to
	# pg_ctl's stdout: the first "ready to accept connections" lands on STDOUT.
	tmp_args=("${@:2}" -c "listen_addresses=" -p "${PGPORT:-5432}")
	PGUSER="${PGUSER:-$POSTGRES_USER}" pg_ctl -D "$PGDATA" -o "$(printf '%q ' "${tmp_args[@]}")" -w start

	psql_local=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
	if [ "$POSTGRES_DB" != 'postgres' ]; then
		exists="$(PGHOST= PGHOSTADDR= "${psql_local[@]}" --dbname postgres -tA \
			--set db="$POSTGRES_DB" <<<"SELECT 1 FROM pg_database WHERE datname = :'db'")"
		if [ -z "$exists" ]; then
			PGHOST= PGHOSTADDR= "${psql_local[@]}" --dbname postgres --set db="$POSTGRES_DB" \
				<<<'CREATE DATABASE :"db" ;'
			log
		fi
	fi

	# Init scripts, as in the official image.
	shopt -s nullglob
	for f in /docker-entrypoint-initdb.d/*; do
		case "$f" in
			*.sh)
				if [ -x "$f" ]; then log "$0: running $f"; "$f"; else log "$0: sourcing $f"; . "$f"; fi ;;
			*.sql) log "$0: running $f"; PGHOST= PGHOSTADDR= "${psql_local[@]}" --dbname "$POSTGRES_DB" -f "$f"; log ;;
			*.sql.gz) log "$0: running $f"; gunzip -c "$f" | PGHOST= PGHOSTADDR= "${psql_local[@]}" --dbname "$POSTGRES_DB"; log ;;
			*) log "$0: ignoring $f" ;;
		esac
	done
	shopt -u nullglob

	PGUSER="${PGUSER:-$POSTGRES_USER}" pg_ctl -D "$PGDATA" -m fast -w stop
	log
	log 'PostgreSQL init process complete; ready for start up.'
	log
else
	log
	log 'PostgreSQL Database directory appears to contain a database; Skipping initialization'
	log
fi

# Final server: logs on STDERR (log_destination=stderr, no logging collector).
exec "$@"
