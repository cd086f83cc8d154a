#!/usr/bin/env bash
# CI's check of the docker-compose demo: builds the images, brings the stack up, waits for every
# service to be healthy, places orders through the published ports, checks what happened, and
# tears everything down (also on failure). Installs docker.io + docker-compose from Debian and
# starts dockerd when missing; base images come from deploy/ci/base-images.sh (no registry here).
set -euo pipefail
cd "$(dirname "$0")/../.."

log() { echo "compose.sh: $*" >&2; }

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || need+=(docker-compose)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  (dockerd >/tmp/dockerd.log 2>&1 &)
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { log "dockerd did not start"; tail -20 /tmp/dockerd.log >&2; exit 1; }
fi

images_env=$(bash deploy/ci/base-images.sh)
eval "$images_env"
export BUILDER_IMAGE RUNTIME_IMAGE REDIS_IMAGE
if docker compose version >/dev/null 2>&1; then compose=(docker compose); else compose=(docker-compose); fi
compose+=(-p kratos-dtm-ci -f deploy/docker-compose/docker-compose.yaml)

down() {
  local rc=$?
  if [ $rc -ne 0 ]; then log "failed; service logs:"; "${compose[@]}" logs --no-color --tail 40 >&2 || true; fi
  "${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
  exit $rc
}
trap down EXIT

# Two optional profiles use public images that cannot be pulled here: check that their config
# resolves (services, env files, mounts). The third, redis-cluster, runs below on a local image.
for profile in backends observability redis-cluster; do
  "${compose[@]}" --env-file "deploy/docker-compose/$profile.env" config -q
  log "profile $profile: config ok"
done

log "building the images"
# The classic builder takes FROM images from the local store as they are (BuildKit may try a
# registry); the three images share one cached build stage.
DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0 "${compose[@]}" build
log "starting the stack"
"${compose[@]}" up -d

# healthy SERVICE: waits (120 s at most) for the container's healthcheck to pass.
healthy() {
  local id state
  id=$("${compose[@]}" ps -q "$1")
  for _ in $(seq 1 240); do
    state=$(docker inspect -f '{{.State.Health.Status}}' "$id")
    [ "$state" = healthy ] && { log "$1 is healthy"; return 0; }
    sleep 0.5
  done
  log "$1 is $state after 120 s"; return 1
}
for s in $(awk '!/^#/ && NF { print $1 }' deploy/apps.txt); do healthy "$s"; done

# place TRANSPORT QUANTITY: a saga through the published order port; prints the reply.
place() {
  curl -sS --fail-with-body localhost:8002/api/order/v1/orders \
    -d "{\"user_id\":1,\"sku\":\"SKU-APPLE\",\"quantity\":$2,\"transport\":\"$1\"}"
}
expect() { # expect WHAT SEEN WANT
  if [ "$2" = "$3" ]; then log "ok: $1 = $2"; else log "FAIL: $1 = $2, want $3"; return 1; fi
}
json() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# orders COORDINATOR_PORT: a saga over each transport, both succeed, and the coordinator on that
# port has the first one's record; then SKU-APPLE has 95 left (of 100).
orders() {
  local reply gid
  reply=$(place TRANSPORT_HTTP 2); log "saga over HTTP: $reply"
  expect "saga over HTTP" "$(json status <<<"$reply")" succeed
  gid=$(json gid <<<"$reply")
  expect "the record of $gid on :$1" \
    "$(curl -sS "localhost:$1/api/dtmsvr/query?gid=$gid" | python3 -c 'import json,sys; print(json.load(sys.stdin)["transaction"]["status"])')" succeed
  reply=$(place TRANSPORT_GRPC 3); log "saga over gRPC: $reply"
  expect "saga over gRPC" "$(json status <<<"$reply")" succeed
  expect "SKU-APPLE available" "$(curl -sS localhost:8001/api/stock/v1/stocks/SKU-APPLE | json available)" 95
}

orders 36789
log "compose demo passed"

# The profile redis-cluster: two coordinators on a 3-master cluster (REDIS_IMAGE, built locally).
log "profile redis-cluster: starting"
"${compose[@]}" down -v --remove-orphans >/dev/null 2>&1
compose+=(--env-file deploy/docker-compose/redis-cluster.env)
# The coordinators first, the cluster after: start-up waits for its store (Store.ConnectTimeout)
# instead of exiting, which Docker would count as unhealthy (order depends on it).
"${compose[@]}" up -d coordinator coordinator-2
waiting() { "${compose[@]}" logs --no-color coordinator 2>/dev/null | grep -q "not reachable yet"; }
for _ in $(seq 1 60); do waiting && break; sleep 0.5; done
waiting || { log "the coordinator does not wait for its store"; exit 1; }
log "the coordinators wait for the cluster"
"${compose[@]}" up -d
for s in $(awk '!/^#/ && NF { print $1 }' deploy/apps.txt); do healthy "$s"; done
# Writes wait for a replica (STORE_REDIS_WAIT_REPLICAS=1): until each master of the new cluster
# has its replica online, they fail with a 5xx, as they should. Wait for that, and for
# coordinator-2.
replicated() {
  "${compose[@]}" exec -T redis-1 sh -c \
    'for n in 1 2 3 4 5 6; do redis-cli -h redis-$n info replication; done' | tr -d '\r' |
    awk '/^role:master/ {m++} /^slave[0-9]+:.*state=online/ {o++} END {exit !(m == 3 && o == 3)}'
}
for _ in $(seq 1 240); do
  replicated && curl -sf localhost:36791/api/dtmsvr/newGid >/dev/null && break
  sleep 0.5
done
replicated || { log "the cluster's replicas did not come online"; exit 1; }
log "3 masters, each with its replica online"
# Placed through the first coordinator, read back from the second: one store.
orders 36791
expect "the cluster's state" \
  "$("${compose[@]}" exec -T redis-1 redis-cli cluster info | tr -d '\r' | awk -F: '/^cluster_state/ {print $2}')" ok
log "profile redis-cluster passed"
