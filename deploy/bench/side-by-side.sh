#!/usr/bin/env bash
# Side by side: completed 2-step HTTP sagas per second of this coordinator and of dtmrs 0.13 (the
# other Rust DTM coordinator, from crates.io), one after the other in one run: the same nginx
# branch stub (busi-nginx.conf: every /api/busi/* answers SUCCESS), the same wrk load
# (saga-submit.lua: fresh sagas; ceiling.lua: the two branch POSTs alone), the same store.
#
# usage (from the project root):
#   deploy/bench/side-by-side.sh target/release/coordinator [PATH/TO/dtmrs]
#   env: STORE  sqlite (default) | postgres | mysql | redis | redis-cluster — servers from
#               deploy/ci/servers.sh (TEST_PG_URL, TEST_MYSQL_URL, TEST_REDIS_URL,
#               TEST_REDIS_CLUSTER_URL); a fresh database per run
#        COORDINATORS  processes of this coordinator on the one store (1), each on its own
#               ports, each loaded by its own wrk with CONNS/COORDINATORS connections (figures
#               summed; p50/p99 the worst of them); dtmrs runs only with 1 and not on a cluster
#        DUR    seconds of load per line (10)   CONNS  connection counts ("16 64 256")
#        SYNC   this coordinator's Store.Synchronous (normal)
# dtmrs, once (about 4 minutes):
#   cargo install dtmrs --version 0.13.0 --locked --features full --root "$HOME/.cache/dtmrs"
# Each line: wrk's submit rate and latency, then completed sagas / (load + drain time), the
# coordinators' CPU per completed saga and their peak RSS (summed); for this coordinator also the
# branch calls beyond two per saga (rounds driven twice: 0 expected) and the poller's lost lease
# races, from its metrics; on Redis the CPU per saga of the Redis node or the cluster's masters
# (summed). dtmrs ignores wait_result, so it runs
# with wait=0; this coordinator with wait=1 (the submit returns when the saga is final), and once
# with wait=0. Figures move between runs on a shared machine: compare within one run.
set -u
ours=${1:?usage: side-by-side.sh PATH/TO/coordinator [PATH/TO/dtmrs]}; peer=${2:-}
ours=$(cd "$(dirname "$ours")" && pwd)/$(basename "$ours")
[ -n "$peer" ] && peer=$(cd "$(dirname "$peer")" && pwd)/$(basename "$peer")
D=$(cd "$(dirname "$0")" && pwd)
proj=$PWD; [ -d "$proj/app/coordinator/configs" ] || { echo "run it from the project root"; exit 1; }
for t in nginx wrk sqlite3; do command -v $t >/dev/null || apt-get install -y -q nginx wrk sqlite3 >/dev/null; done
STORE=${STORE:-sqlite}; DUR=${DUR:-10}; P=36789; GP=$((P+1)); N=${COORDINATORS:-1}
[ "$N" = 1 ] && [ "$STORE" != redis-cluster ] || peer=""
W=$(mktemp -d); mkdir -p $W/logs; cp $D/busi-nginx.conf $W/
nginx -p $W -c busi-nginx.conf || { echo "nginx failed (port 18081 taken?)"; exit 1; }
trap 'kill $(cat $W/nginx.pid) 2>/dev/null' EXIT
sleep 0.5
echo "cores: $(nproc), store: $STORE, coordinators: $N"
wrk -t2 -c64 -d5s -s $D/ceiling.lua http://127.0.0.1:18081 | grep ceiling
cpu() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14+$15}' /proc/$p/stat))); done; echo $t; }
# The cluster's masters' ports (a test may have failed one over).
masters() { redis-cli -p ${TEST_REDIS_CLUSTER_URL##*:} cluster nodes | awk '$3 ~ /master/ && $3 !~ /fail/ && NF > 8 {split($2, a, "[:@]"); print a[2]}'; }

# The Redis servers holding the data (the node, or the cluster's masters), to count their CPU.
store_pids() {
  local port ports=()
  case $STORE in
    redis) ports=(${TEST_REDIS_URL##*:}) ;;
    redis-cluster) ports=($(masters)) ;;
  esac
  for port in "${ports[@]}"; do pgrep -f "redis-server 127.0.0.1:$port( |\$)"; done
}

# A fresh store per run: URL for this coordinator, URL for dtmrs, and how to count statuses.
fresh() {
  local name=$1 n=b$RANDOM$RANDOM
  case $STORE in
    sqlite) DB=$W/$name-$n.db; OURS_URL=sqlite://$DB; PEER_URL="sqlite:$DB?mode=rwc" ;;
    postgres)
      psql -q "${TEST_PG_URL:?run deploy/ci/servers.sh}" -c "CREATE DATABASE $n" >/dev/null
      OURS_URL=${TEST_PG_URL%/*}/$n; PEER_URL=$OURS_URL ;;
    mysql)
      mysql -h127.0.0.1 -udtm -pdtm -e "CREATE DATABASE $n" 2>/dev/null
      OURS_URL=${TEST_MYSQL_URL:?run deploy/ci/servers.sh}; OURS_URL=${OURS_URL%/*}/$n; PEER_URL=$OURS_URL ;;
    redis)
      redis-cli -u "${TEST_REDIS_URL:?run deploy/ci/servers.sh}" FLUSHALL >/dev/null
      OURS_URL=$TEST_REDIS_URL; PEER_URL=$TEST_REDIS_URL ;;
    redis-cluster)
      for m in $(masters); do redis-cli -p $m FLUSHALL >/dev/null; done
      OURS_URL=${TEST_REDIS_CLUSTER_URL:?run deploy/ci/servers.sh}; PEER_URL= ;;
    *) echo "STORE: sqlite, postgres, mysql, redis or redis-cluster"; exit 1 ;;
  esac
  NAME=$n
}
# count succeed|open: transactions in that state now.
count() {
  local what=$1 cond
  [ $what = succeed ] && cond="status = 'succeed'" || cond="status NOT IN ('succeed', 'failed')"
  case $STORE in
    sqlite) sqlite3 "$DB" "SELECT COUNT(*) FROM trans_global WHERE $cond;" 2>/dev/null ;;
    postgres) psql -tA "${TEST_PG_URL%/*}/$NAME" -c "SELECT COUNT(*) FROM trans_global WHERE $cond;" 2>/dev/null ;;
    mysql) mysql -N -h127.0.0.1 -udtm -pdtm $NAME -e "SELECT COUNT(*) FROM trans_global WHERE $cond;" 2>/dev/null ;;
    redis) # ours: <prefix>_g_<gid>, dtmrs: dtmrs:g:<gid>; both hashes with a status field
      redis-cli -u "$TEST_REDIS_URL" EVAL "local n = 0
        for _, p in ipairs({'{a}_g_*', 'dtmrs:g:*'}) do
          for _, k in ipairs(redis.call('KEYS', p)) do
            local s = redis.call('HGET', k, 'status')
            if (ARGV[1] == 'succeed') == (s == 'succeed') and (ARGV[1] == 'succeed' or s ~= 'failed') then n = n + 1 end
          end
        end
        return n" 0 $what ;;
    redis-cluster) # ours, every shard: {a:<s>}_g_<gid> on every master
      local m t=0
      for m in $(masters); do
        t=$((t + $(redis-cli -p $m EVAL "local n = 0
          for _, k in ipairs(redis.call('KEYS', '{a:*}_g_*')) do
            local s = redis.call('HGET', k, 'status')
            if (ARGV[1] == 'succeed') == (s == 'succeed') and (ARGV[1] == 'succeed' or s ~= 'failed') then n = n + 1 end
          end
          return n" 0 $what)))
      done; echo $t ;;
  esac || echo 1
}
start() {
  local name=$1
  fresh $name
  PIDS=(); PORTS=()
  if [ $name = ours ]; then
    local driver=$STORE cluster=false k
    [ $STORE = redis-cluster ] && driver=redis cluster=true
    for k in $(seq 0 $((N - 1))); do
      local hp=$((P + 2 * k))
      (cd $proj/app/coordinator && RUST_LOG=warn HTTP_PORT=$hp GRPC_PORT=$((hp + 1)) STORE_DRIVER=$driver \
        STORE_SOURCE=$OURS_URL STORE_REDIS_CLUSTER=$cluster STORE_SYNCHRONOUS=${SYNC:-normal} \
        exec $ours -conf configs >$W/$name-$k.log 2>&1) & PIDS+=($!); PORTS+=($hp)
    done
  else
    (DTMRS_DB=$PEER_URL DTMRS_ADDR=127.0.0.1:$P DTMRS_GRPC_ADDR=127.0.0.1:$GP RUST_LOG=warn exec $peer >$W/$name.log 2>&1) & PIDS+=($!); PORTS+=($P)
  fi
  local port
  for port in "${PORTS[@]}"; do
    for i in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  done
  sleep 0.5
}
one() { # name dialect wait conns
  local name=$1 dialect=$2 wait=$3 c=$4
  start $name
  local spids=($(store_pids)) s0=0 s1=0
  [ ${#spids[@]} -gt 0 ] && s0=$(cpu "${spids[@]}")
  local c0=$(cpu "${PIDS[@]}") t0=$(date +%s.%N) k per=$(( (c + ${#PORTS[@]} - 1) / ${#PORTS[@]} ))
  local wrks=()
  for k in "${!PORTS[@]}"; do
    DIALECT=$dialect WAIT=$wait TAG=$k wrk -t$([ $per -ge 2 ] && echo 2 || echo 1) -c$per -d${DUR}s \
      -s $D/saga-submit.lua http://127.0.0.1:${PORTS[$k]} | grep sagas >$W/wrk-$k.txt & wrks+=($!)
  done
  wait "${wrks[@]}"
  # Summed rates and errors, the worst p50 and p99 of the wrk processes.
  local line=$(cat $W/wrk-*.txt | awk '{r += $2; if ($4 > p50) p50 = $4; if ($7 > p99) p99 = $7; e += $10; x += $12}
    END {printf "sagas/s %.0f  p50 %.2f ms  p99 %.2f ms  errors %d  non2xx %d", r, p50, p99, e, x}')
  rm -f $W/wrk-*.txt
  local open=1 i=0
  while [ $i -lt 600 ]; do open=$(count open); [ "$open" = 0 ] && break; sleep 0.1; i=$((i+1)); done
  local t1=$(date +%s.%N) c1=$(cpu "${PIDS[@]}") n=$(count succeed) rss=0 pid port extra=""
  for pid in "${PIDS[@]}"; do rss=$((rss + $(awk '/VmHWM/{print $2}' /proc/$pid/status))); done
  if [ $name = ours ]; then
    # Each saga calls its two actions once: calls beyond that were rounds driven twice. And the
    # poller's lost lease races.
    local calls=0 raced=0 c r
    for port in "${PORTS[@]}"; do
      read -r c r < <(curl -s 127.0.0.1:$port/api/metrics | awk '/^dtm_branch_process_total/ {c += $2}
        /^dtm_poller_leases_total\{result="raced"\}/ {r += $2} END {print c + 0, r + 0}')
      calls=$((calls + c)); raced=$((raced + r))
    done
    extra=", calls beyond 2/saga $((calls - 2 * n)), leases raced $raced"
  fi
  if [ ${#spids[@]} -gt 0 ]; then
    s1=$(cpu "${spids[@]}")
    extra="$extra$(awk -v d=$((s1 - s0)) -v n=$n -v m=${#spids[@]} 'BEGIN {printf ", Redis CPU %.3f ms/saga over %d server(s)", d * 10 / (n > 0 ? n : 1), m}')"
  fi
  awk -v name=$name -v w=$wait -v c=$c -v n=$n -v t0=$t0 -v t1=$t1 -v c0=$c0 -v c1=$c1 -v open=$open -v rss=$rss -v line="$line" -v extra="$extra" 'BEGIN{e=t1-t0; printf "%-6s wait=%s c=%-4s | %s | completed %d in %.1fs = %.0f/s, open %s, cpu %.3f ms/saga, peak RSS %d MB%s\n", name, w, c, line, n, e, n/e, open, (c1-c0)*10/(n>0?n:1), rss/1024, extra}'
  kill "${PIDS[@]}"; wait "${PIDS[@]}" 2>/dev/null
}
for c in ${CONNS:-16 64 256}; do
  one ours dtm 1 $c
  [ -n "$peer" ] && one dtmrs dtmrs 0 $c
done
one ours dtm 0 64
