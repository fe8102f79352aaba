#!/bin/sh
# The entrypoint of the local stand-in for postgres:16-bookworm (deploy/containers.sh builds it when no registry
# answers): Debian bookworm's PostgreSQL 15, keeping the part of the official image's contract that
# deploy/compose.yaml relies on.
#
#   POSTGRES_USER, POSTGRES_PASSWORD  the superuser and its password (scram-sha-256 over TCP; trust on the socket)
#   POSTGRES_DB                        a database made at init (default: POSTGRES_USER), as the official image does
#   /docker-entrypoint-initdb.d/*.sql  run once, in order, on an empty data directory
#   TCP only after init                initialisation runs on a socket-only server, so `pg_isready -h 127.0.0.1`
#                                      (the compose health check) answers only once the init scripts ran
#   listen_addresses='*'               on port 5432; PGDATA /var/lib/postgresql/data (the compose volume)
#
# It is a stand-in on PostgreSQL 15, not the official image: the node needs nothing of 16.
set -eu

PGDATA=${PGDATA:-/var/lib/postgresql/data}
SOCKETS=/var/run/postgresql
export PGDATA

if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" "$SOCKETS"
    chown -R postgres:postgres "$PGDATA" "$SOCKETS"
    chmod 0700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?the stand-in, like the official image, needs POSTGRES_PASSWORD}"
    user=${POSTGRES_USER:-postgres}
    database=${POSTGRES_DB:-$user}
    password_file=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$password_file"
    initdb --username="$user" --pwfile="$password_file" --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$password_file"
    printf 'host all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"

    # Socket only while the init scripts run. Debian's psql wrapper would pick a cluster's port: these are the
    # binaries themselves (on PATH), given the port and socket folder.
    pg_ctl --silent --wait --options="-c listen_addresses='' -p 5432 -k $SOCKETS" start
    psql() { command psql -v ON_ERROR_STOP=1 --no-psqlrc -p 5432 -h "$SOCKETS" --username="$user" "$@"; }
    if [ "$database" != postgres ]; then
        psql --dbname=postgres --quiet --command="CREATE DATABASE \"$database\";"
    fi
    for script in /docker-entrypoint-initdb.d/*.sql; do
        [ -e "$script" ] || continue
        printf 'stand-in postgres: running %s\n' "$script"
        psql --dbname="$database" --quiet --file="$script"
    done
    pg_ctl --silent --wait --mode=fast stop
    printf 'stand-in postgres: initialised %s\n' "$PGDATA"
fi

exec postgres -c listen_addresses='*' -p 5432 -k "$SOCKETS" "$@"
