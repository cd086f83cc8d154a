#!/usr/bin/env bash
# Installs (from Debian packages) and starts the servers the tests use, on 127.0.0.1:
# PostgreSQL, MariaDB, Redis (one node and a 6-node cluster) and etcd.
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
command -v redis-server >/dev/null 2>&1 || need+=(redis-server redis-tools)
command -v etcd >/dev/null 2>&1 || need+=(etcd-server etcd-client)
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
# XA branches end in PREPARE TRANSACTION, which PostgreSQL refuses unless this is above 0 (the
# default); the setting needs a restart.
if [ "$(su postgres -c "psql -tAc 'SHOW max_prepared_transactions'")" = "0" ]; then
  log "PostgreSQL: max_prepared_transactions = 100 (restart)"
  su postgres -c "psql -q -c 'ALTER SYSTEM SET max_prepared_transactions = 100'" >&2
  pg_ctlcluster "$pg_version" main restart >&2
  wait_for PostgreSQL pg_isready -h 127.0.0.1 -p 5432
fi

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

# Redis: a plain instance without persistence (tests use their own key prefixes).
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "starting Redis"
  redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no --daemonize yes >&2
fi
wait_for Redis redis-cli -h 127.0.0.1 -p 6379 ping

# A Redis Cluster: 3 masters and 3 replicas on 7001-7006 (cluster bus on 17001-17006), no
# persistence; the replicas take over a master that dies.
CLUSTER_PORTS=(7001 7002 7003 7004 7005 7006)
cluster_ok() { redis-cli -p 7001 cluster info 2>/dev/null | grep -q '^cluster_state:ok'; }
if ! cluster_ok; then
  log "starting a Redis Cluster on ${CLUSTER_PORTS[*]}"
  for port in "${CLUSTER_PORTS[@]}"; do
    dir=/var/lib/redis-cluster-ci/$port
    mkdir -p "$dir"
    # A nodes.conf left by an earlier machine names a cluster whose data is gone (no
    # persistence): start afresh rather than half-rejoin it.
    redis-cli -p "$port" ping >/dev/null 2>&1 || { rm -f "$dir/nodes.conf"; redis-server \
      --bind 127.0.0.1 --port "$port" --dir "$dir" --cluster-enabled yes \
      --cluster-config-file nodes.conf --cluster-node-timeout 2000 --save '' --appendonly no \
      --daemonize yes >&2; }
  done
  for port in "${CLUSTER_PORTS[@]}"; do wait_for "Redis :$port" redis-cli -p "$port" ping; done
  # Nodes still running from a broken cluster: empty them (masters first flush, since a master
  # holding keys refuses the reset) so that `--cluster create` accepts them.
  for port in "${CLUSTER_PORTS[@]}"; do
    if [ "$(redis-cli -p "$port" cluster info | grep -c '^cluster_known_nodes:1')" = 0 ] \
      || [ "$(redis-cli -p "$port" dbsize)" != 0 ]; then
      log "Redis :$port belongs to an old cluster: reset"
      redis-cli -p "$port" flushall >/dev/null 2>&1 || true
      redis-cli -p "$port" cluster reset hard >&2
    fi
  done
  redis-cli --cluster create $(printf '127.0.0.1:%s ' "${CLUSTER_PORTS[@]}") \
    --cluster-replicas 1 --cluster-yes >&2
fi
wait_for "Redis Cluster" cluster_ok

# etcd: one member with its data under /var/lib/etcd-ci (the Debian unit is not used: no systemd
# in containers). Tests use their own key prefixes.
if ! etcdctl --endpoints=127.0.0.1:2379 endpoint health >/dev/null 2>&1; then
  log "starting etcd"
  mkdir -p /var/lib/etcd-ci
  (etcd --data-dir /var/lib/etcd-ci/default.etcd \
     --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
     --listen-peer-urls http://127.0.0.1:2380 >/var/lib/etcd-ci/etcd.log 2>&1 &)
fi
wait_for etcd etcdctl --endpoints=127.0.0.1:2379 endpoint health

echo "export TEST_PG_URL=postgres://dtm:dtm@127.0.0.1:5432/postgres"
echo "export TEST_MYSQL_URL=mysql://dtm:dtm@127.0.0.1:3306/mysql"
echo "export TEST_REDIS_URL=redis://127.0.0.1:6379"
echo "export TEST_REDIS_CLUSTER_URL=$(printf 'redis://127.0.0.1:%s,' "${CLUSTER_PORTS[@]:0:3}" | sed 's/,$//')"
echo "export TEST_ETCD_ENDPOINTS=127.0.0.1:2379"
