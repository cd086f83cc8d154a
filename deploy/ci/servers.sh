#!/usr/bin/env bash
# Installs (from Debian packages) and starts the database servers the tests use, on 127.0.0.1.
# Idempotent and quick when everything already runs. Logs go to stderr; stdout is only the
# `export TEST_…=…` lines, so callers do:  eval "$(bash deploy/ci/servers.sh)"
set -euo pipefail

log() { echo "servers.sh: $*" >&2; }

# wait_for NAME CMD…: polls CMD until it succeeds, for at most 60 s.
wait_for() {
  local name=$1; shift
  for _ in $(seq 1 120); do
    if "$@" >/dev/null 2>&1; then log "$name is up"; return 0; fi
    sleep 0.5
  done
  log "$name did not come up"; return 1
}

need=()
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)
command -v mariadbd >/dev/null 2>&1 || command -v mysqld >/dev/null 2>&1 || need+=(mariadb-server)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

# PostgreSQL: the cluster the Debian package created, a `dtm` superuser with a password.
pg_version=$(ls /etc/postgresql | sort -V | tail -n 1)
if ! pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
  log "starting PostgreSQL $pg_version"
  pg_ctlcluster "$pg_version" main start >&2 || true
fi
wait_for PostgreSQL pg_isready -h 127.0.0.1 -p 5432
su postgres -c "psql -q -v ON_ERROR_STOP=1" >&2 <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dtm') THEN
    CREATE ROLE dtm LOGIN SUPERUSER PASSWORD 'dtm';
  END IF;
END $$;
SQL

# MariaDB: a `dtm` user with every privilege (tests create a database each).
if ! mysqladmin --protocol=tcp -h 127.0.0.1 -udtm -pdtm ping >/dev/null 2>&1; then
  if ! mysqladmin ping >/dev/null 2>&1; then
    log "starting MariaDB"
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
    (mysqld_safe --bind-address=127.0.0.1 >/dev/null 2>&1 &)
  fi
  wait_for MariaDB mysqladmin ping
  mysql >&2 <<'SQL'
CREATE USER IF NOT EXISTS 'dtm'@'localhost' IDENTIFIED BY 'dtm';
CREATE USER IF NOT EXISTS 'dtm'@'%' IDENTIFIED BY 'dtm';
GRANT ALL PRIVILEGES ON *.* TO 'dtm'@'localhost';
GRANT ALL PRIVILEGES ON *.* TO 'dtm'@'%';
FLUSH PRIVILEGES;
SQL
fi
wait_for "MariaDB (dtm user)" mysqladmin --protocol=tcp -h 127.0.0.1 -udtm -pdtm ping

echo "export TEST_PG_URL=postgres://dtm:dtm@127.0.0.1:5432/postgres"
echo "export TEST_MYSQL_URL=mysql://dtm:dtm@127.0.0.1:3306/mysql"
