#!/usr/bin/env bash
# Start Debian's PostgreSQL and create the role and database the test suite and the benchmark
# use (postgresql://checkpoint_test:checkpoint_test@127.0.0.1:5432/checkpoint_test).
# Idempotent and quick when everything is already there. Used by `make test`, `make bench` and
# `.ci/run`. Without root (or sudo) it explains and exits 0: the PostgreSQL tests then skip with
# that reason, and everything else still runs.
set -euo pipefail

role=checkpoint_test
if [[ $EUID -eq 0 ]]; then
    as_postgres=(runuser -u postgres --)
    sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_postgres=(sudo -n -u postgres)
    sudo=(sudo -n)
else
    echo "test-postgres: not root and no sudo; PostgreSQL tests will be skipped" >&2
    exit 0
fi

if ! command -v pg_lsclusters >/dev/null 2>&1; then
    echo "test-postgres: PostgreSQL is not installed (provisioning/system-deps.sh installs it)" >&2
    exit 0
fi

read -r version cluster _port status _ < <(pg_lsclusters --no-header | head -n 1) || {
    echo "test-postgres: no PostgreSQL cluster; creating one" >&2
    "${sudo[@]}" pg_createcluster 15 main >/dev/null
    read -r version cluster _port status _ < <(pg_lsclusters --no-header | head -n 1)
}
if [[ "$status" != online* ]]; then
    "${sudo[@]}" pg_ctlcluster "$version" "$cluster" start
fi

psql=("${as_postgres[@]}" psql --quiet --no-psqlrc --set ON_ERROR_STOP=1 --tuples-only)
if [[ -z "$("${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = '$role'")" ]]; then
    "${psql[@]}" -c "CREATE ROLE $role LOGIN CREATEDB PASSWORD '$role'"
fi
if [[ -z "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$role'")" ]]; then
    "${psql[@]}" -c "CREATE DATABASE $role OWNER $role"
fi
# Each test drops its own database WITH (FORCE); an autovacuum worker still on it belongs to no
# role, and only pg_signal_backend lets the test role end it (else: InsufficientPrivilege).
"${psql[@]}" -c "GRANT pg_signal_backend TO $role" >/dev/null
