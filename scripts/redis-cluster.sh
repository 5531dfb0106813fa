#!/usr/bin/env bash
# redis-cluster.sh -- a Redis Cluster on this machine for make run-cluster:
# 3 masters and 3 replicas of Debian's redis-server 7.0 on 127.0.0.1,
# ports GUICHET_CLUSTER_PORT .. +5 (default 7001-7006; each also uses its
# port + 10000, the cluster bus: keep both below the kernel's ephemeral
# ports, 32768 and up), the settings of lua-free-config/redis.conf
# plus cluster-enabled, a 2 s cluster-node-timeout; data and nodes.conf in
# $GUICHET_VAR/redis/<port>/ (default var/cluster/redis/), logs in
# $GUICHET_VAR/log/.
#
#   scripts/redis-cluster.sh start    start what does not run; the first
#                                     time, join them (redis-cli --cluster
#                                     create --cluster-replicas 1); wait
#                                     until every node says cluster_state:ok
#   scripts/redis-cluster.sh stop     stop every node of $GUICHET_VAR/redis/
#                                     (SIGTERM: AOF complete)
#   scripts/redis-cluster.sh seeds    print "127.0.0.1:7001,...,127.0.0.1:7006"
#   scripts/redis-cluster.sh status   redis-cli --cluster check
#
# Idempotent like run.sh: running start again keeps the data and the
# cluster (a node restarted rejoins with its nodes.conf); the first port
# is kept in $GUICHET_VAR/redis/first-port.  Try a failover:
# `kill -9 $(cat $GUICHET_VAR/redis/7001/redis.pid)` (a master: its
# replica takes over in a few seconds), then `scripts/redis-cluster.sh
# status`, and start again to bring the node back as a replica.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VAR=${GUICHET_VAR:-$ROOT/var/cluster}
# the first port: as given, else as the first start chose (kept beside
# the nodes), else 7001
BASE=${GUICHET_CLUSTER_PORT:-$(cat "$VAR/redis/first-port" 2> /dev/null ||
                               echo 7001)}
PORTS=$(seq "$BASE" $((BASE + 5)))

say() { printf '%s\n' "$*"; }
die() { printf 'redis-cluster.sh: %s\n' "$*" >&2; exit 1; }
rcli() { redis-cli -p "$1" "${@:2}" 2> /dev/null; }

seeds() {
    local p out=
    for p in $PORTS; do
        out=${out:+$out,}127.0.0.1:$p
    done
    echo "$out"
}

# state_ok PORT: the node says cluster_state:ok
state_ok() { rcli "$1" cluster info | grep -q '^cluster_state:ok'; }

start() {
    local p started=0 all_ok
    mkdir -p "$VAR/log" "$VAR/redis"
    if [ -f "$VAR/redis/first-port" ] &&
       [ "$(cat "$VAR/redis/first-port")" != "$BASE" ]; then
        die "$VAR/redis holds the cluster of port" \
            "$(cat "$VAR/redis/first-port"), not $BASE"
    fi
    echo "$BASE" > "$VAR/redis/first-port"
    for p in $PORTS; do
        mkdir -p "$VAR/redis/$p"
        if [ -n "$(rcli "$p" ping)" ]; then
            continue
        fi
        # its bus port too: redis-server would exit at once without it
        if (exec 3<> "/dev/tcp/127.0.0.1/$((p + 10000))") 2> /dev/null; then
            die "port $((p + 10000)) (the cluster bus of $p) is taken:" \
                "choose GUICHET_CLUSTER_PORT"
        fi
        redis-server "$ROOT/lua-free-config/redis.conf" \
            --bind 127.0.0.1 --port "$p" --dir "$VAR/redis/$p" \
            --cluster-enabled yes --cluster-config-file nodes.conf \
            --cluster-node-timeout 2000 \
            --daemonize yes --pidfile "$VAR/redis/$p/redis.pid" \
            --logfile "$VAR/log/redis-$p.log"
        started=$((started + 1))
    done
    for p in $PORTS; do
        for _ in $(seq 100); do
            [ "$(rcli "$p" ping)" = PONG ] && break
            sleep 0.1
        done
        [ "$(rcli "$p" ping)" = PONG ] ||
            die "redis on 127.0.0.1:$p does not answer" \
                "(see $VAR/log/redis-$p.log)"
    done

    # never joined: a fresh node knows only itself and serves no slot
    if rcli "$BASE" cluster info | grep -q '^cluster_known_nodes:1'; then
        # shellcheck disable=SC2046
        redis-cli --cluster create $(seeds | tr , ' ') \
            --cluster-replicas 1 --cluster-yes > "$VAR/log/cluster-create.log" 2>&1 ||
            die "redis-cli --cluster create failed" \
                "(see $VAR/log/cluster-create.log)"
        say "redis cluster: created, 3 masters and 3 replicas on" \
            "127.0.0.1:$BASE-$((BASE + 5))"
    elif [ "$started" -gt 0 ]; then
        say "redis cluster: $started node(s) started again on" \
            "127.0.0.1:$BASE-$((BASE + 5))"
    else
        say "redis cluster: already running on 127.0.0.1:$BASE-$((BASE + 5))"
    fi

    for _ in $(seq 300); do
        all_ok=1
        for p in $PORTS; do
            state_ok "$p" || { all_ok=0; break; }
        done
        [ $all_ok -eq 1 ] && return 0
        sleep 0.1
    done
    die "the cluster is not ok after 30 s (redis-cli -p $BASE cluster info;" \
        "logs in $VAR/log/redis-*.log)"
}

stop() {
    local f p pid
    for f in "$VAR"/redis/*/redis.pid; do
        [ -f "$f" ] || continue
        p=$(basename "$(dirname "$f")")
        pid=$(cat "$f")
        if kill -0 "$pid" 2> /dev/null; then
            kill "$pid"
            for _ in $(seq 100); do
                kill -0 "$pid" 2> /dev/null || break
                sleep 0.1
            done
            kill -0 "$pid" 2> /dev/null && kill -KILL "$pid"
            say "redis $p: stopped"
        fi
        rm -f "$f"
    done
}

case ${1:-} in
start)  start ;;
stop)   stop ;;
seeds)  seeds ;;
status)
    for p in $PORTS; do
        if [ -n "$(rcli "$p" ping)" ]; then
            exec redis-cli --cluster check "127.0.0.1:$p"
        fi
    done
    die "no node of 127.0.0.1:$BASE-$((BASE + 5)) answers" ;;
*)      echo "usage: $0 start|stop|seeds|status" >&2; exit 2 ;;
esac
