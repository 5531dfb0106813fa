#!/usr/bin/env bash
# stop.sh -- stops what scripts/run.sh started (make stop): nginx, the
# worker, the office, the payment simulator, Redis (or the Redis Cluster of
# make run-cluster) and PostgreSQL of var/ (or of $GUICHET_VAR, as run.sh).
# Quiet about what is not running.
#
#   scripts/stop.sh [nginx|worker|office|paysim|redis|postgres ...]
#   (default: all)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VAR=${GUICHET_VAR:-$ROOT/var}
PGBIN=/usr/lib/postgresql/15/bin

# stop_pid NAME PIDFILE: TERM, wait up to 10 s, then KILL.
stop_pid() {
    local pid
    [ -f "$2" ] || return 0
    pid=$(cat "$2")
    if kill -0 "$pid" 2> /dev/null; then
        kill "$pid"
        for _ in $(seq 100); do
            kill -0 "$pid" 2> /dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2> /dev/null && kill -KILL "$pid" && sleep 0.2
        echo "$1: stopped"
    fi
    rm -f "$2"
}

stop_postgres() {
    [ -f "$VAR/pg/data/postmaster.pid" ] || return 0
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$VAR/pg/data" -m fast -w stop > /dev/null
    else
        "$PGBIN/pg_ctl" -D "$VAR/pg/data" -m fast -w stop > /dev/null
    fi && echo "postgres: stopped"
}

[ $# -gt 0 ] || set -- nginx office paysim worker redis postgres
for what in "$@"; do
    case $what in
    nginx)    stop_pid nginx "$VAR/nginx/nginx.pid" ;;
    worker)   stop_pid worker "$VAR/worker.pid" ;;
    office)   stop_pid office "$VAR/office.pid" ;;
    paysim)   stop_pid paysim "$VAR/paysim.pid" ;;
    redis)    stop_pid redis "$VAR/redis/redis.pid"
              if ls "$VAR"/redis/*/nodes.conf > /dev/null 2>&1; then
                  GUICHET_VAR=$VAR "$ROOT/scripts/redis-cluster.sh" stop
              fi ;;
    postgres) stop_postgres ;;
    *)        echo "usage: $0 [nginx|worker|office|paysim|redis|postgres ...]" >&2; exit 2 ;;
    esac
done
exit 0
