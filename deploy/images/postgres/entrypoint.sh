#!/bin/sh
# First start: a cluster with the user and database the variables name. Then the server, in
# the foreground, as the postgres user, listening on every interface with passwords.
set -eu
user="${POSTGRES_USER:-postgres}" db="${POSTGRES_DB:-${POSTGRES_USER:-postgres}}"
mkdir -p "$PGDATA" /run/postgresql
chown -R postgres:postgres "$PGDATA" /run/postgresql
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp)
  printf '%s' "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}" > "$pwfile"
  chown postgres "$pwfile"
  su postgres -c "initdb -D '$PGDATA' -U '$user' --pwfile='$pwfile' -A scram-sha-256" >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  if [ "$db" != "postgres" ]; then
    su postgres -c "postgres -D '$PGDATA' -c listen_addresses='' -k /run/postgresql" &
    until su postgres -c "pg_isready -q -h /run/postgresql"; do sleep 0.2; done
    PGPASSWORD="$POSTGRES_PASSWORD" su postgres -c "createdb -h /run/postgresql -U '$user' '$db'"
    su postgres -c "pg_ctl -D '$PGDATA' -m fast -w stop" >/dev/null
  fi
fi
exec su postgres -c "exec postgres -D '$PGDATA' -c listen_addresses='*' -k /run/postgresql"
