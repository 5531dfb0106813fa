#!/usr/bin/env bash
# stop.sh -- stops what scripts/run.sh started (make stop): nginx, the
# worker, Redis and PostgreSQL of var/.  Quiet about what is not running.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VAR=$ROOT/var
PGBIN=/usr/lib/postgresql/15/bin

# stop_pid NAME PIDFILE: TERM, then wait up to 10 s.
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
        echo "$1: stopped"
    fi
    rm -f "$2"
}

stop_pid nginx "$VAR/nginx/nginx.pid"
stop_pid worker "$VAR/worker.pid"
stop_pid redis "$VAR/redis/redis.pid"

if [ -f "$VAR/pg/data/postmaster.pid" ]; then
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$VAR/pg/data" -m fast -w stop > /dev/null
    else
        "$PGBIN/pg_ctl" -D "$VAR/pg/data" -m fast -w stop > /dev/null
    fi && echo "postgres: stopped"
fi
exit 0
