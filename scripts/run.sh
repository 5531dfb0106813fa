#!/usr/bin/env bash
# run.sh -- starts Guichet on this machine for a developer (make run):
# Redis on 127.0.0.1:6390, PostgreSQL 15 on 127.0.0.1:5440, guichet-worker,
# and nginx with the module on http://127.0.0.1:8080, all of their state in
# var/.  Loads the demo town (demo/amberieu.json).  Running it again keeps
# what already runs (Redis, PostgreSQL, the worker unless it was rebuilt)
# and restarts nginx (so that it loads the module just built); `make stop` (scripts/stop.sh) stops everything.
#
# Everything runs as the current user except PostgreSQL, which refuses to
# run as root: when root, initdb and pg_ctl run as the user postgres.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

VAR=$ROOT/var
PORT=${GUICHET_PORT:-8080}
REDIS_PORT=${GUICHET_REDIS_PORT:-6390}
PG_PORT=${GUICHET_PG_PORT:-5440}
PAYSIM_PORT=${GUICHET_PAYSIM_PORT:-8090}
PGBIN=/usr/lib/postgresql/15/bin
TOWN=${GUICHET_TOWN:-demo/amberieu.json}
MODULE=${GUICHET_MODULE:-$ROOT/build/ngx_http_guichet_module.so}
CTL=$ROOT/build/guichetctl

say() { printf '%s\n' "$*"; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }

for f in "$MODULE" "$CTL" "$ROOT/build/guichet-worker" \
         "$ROOT/build/guichet-office"; do
    [ -e "$f" ] || die "$f is missing: run 'make build' first"
done

mkdir -p "$VAR"/{redis,nginx,log}
chmod 755 "$VAR"

# pg_user_run CMD...: runs as postgres when we are root.
pg_user_run() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# PostgreSQL refuses root and must reach var/pg: every directory above it
# must be traversable by the user postgres.
if [ "$(id -u)" -eq 0 ]; then
    d=$VAR
    while [ "$d" != / ]; do
        chmod o+x "$d"
        d=$(dirname "$d")
    done
fi

# --- Redis ---------------------------------------------------------------
if redis-cli -p "$REDIS_PORT" ping > /dev/null 2>&1; then
    say "redis: already running on 127.0.0.1:$REDIS_PORT"
else
    redis-server "$ROOT/lua-free-config/redis.conf" \
        --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$VAR/redis" \
        --daemonize yes --pidfile "$VAR/redis/redis.pid" \
        --logfile "$VAR/log/redis.log"
    for _ in $(seq 50); do
        redis-cli -p "$REDIS_PORT" ping > /dev/null 2>&1 && break
        sleep 0.1
    done
    redis-cli -p "$REDIS_PORT" ping > /dev/null ||
        die "redis did not start (see var/log/redis.log)"
    say "redis: started on 127.0.0.1:$REDIS_PORT"
fi

# --- PostgreSQL ----------------------------------------------------------
PGDATA=$VAR/pg/data
if [ ! -f "$PGDATA/PG_VERSION" ]; then
    rm -rf "$VAR/pg"
    mkdir -p "$VAR/pg/run"
    [ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$VAR/pg"
    pg_user_run "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust \
        -E UTF8 --locale=C.UTF-8 > "$VAR/log/initdb.log" 2>&1 ||
        die "initdb failed (see var/log/initdb.log)"
fi
[ "$(id -u)" -eq 0 ] && touch "$VAR/log/postgres.log" &&
    chown postgres:postgres "$VAR/log/postgres.log"
if pg_user_run "$PGBIN/pg_ctl" -D "$PGDATA" status > /dev/null 2>&1; then
    say "postgres: already running on 127.0.0.1:$PG_PORT"
else
    pg_user_run "$PGBIN/pg_ctl" -D "$PGDATA" -w -t 30 \
        -l "$VAR/log/postgres.log" \
        -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $VAR/pg/run" \
        start > /dev/null || die "postgres did not start (see var/log/postgres.log)"
    say "postgres: started on 127.0.0.1:$PG_PORT"
fi
psql_() { psql -h "$VAR/pg/run" -p "$PG_PORT" -U postgres -X -q "$@"; }
if [ -z "$(psql_ -d postgres -tAc "select 1 from pg_database where datname = 'guichet'")" ]; then
    psql_ -d postgres -c 'create database guichet'
fi

# --- settings, secret, schema, demo town ---------------------------------
cat > "$VAR/worker.conf" <<CONF
# written by scripts/run.sh; settings: docs/worker.md
redis = 127.0.0.1:$REDIS_PORT
postgres = "host=$VAR/pg/run port=$PG_PORT dbname=guichet user=postgres"
secret_file = $VAR/secret.key
invoice_dir = $VAR/invoices
migrations_dir = $ROOT/sql/migrations
office_listen = unix:$VAR/office.sock
office_upload_dir = $VAR/uploads
site_url = http://127.0.0.1:$PORT
payfip_url = http://127.0.0.1:$PAYSIM_PORT
sepa_creditor_name = "Régie de démonstration"
sepa_creditor_iban = FR1420041010050500013M02606
sepa_creditor_bic = PSSTFRPPXXX
sepa_creditor_id = FR12ZZZ123456
CONF
# office.sock is 0660 (office_socket_mode): nginx's workers, which run as
# nobody:nogroup when root starts nginx without a user directive, need its
# group
if [ "$(id -u)" = 0 ]; then
    echo "office_socket_group = nogroup" >> "$VAR/worker.conf"
fi
[ -f "$VAR/secret.key" ] || "$CTL" init-secret "$VAR/secret.key"
"$CTL" -c "$VAR/worker.conf" migrate
"$CTL" -c "$VAR/worker.conf" load-town "$TOWN"
# the demo's back-office account (created or updated, audited)
echo "secret-demo" | "$CTL" -c "$VAR/worker.conf" staff-add admin admin \
    "Agent de démonstration" > /dev/null

# daemon NAME FILE COMMAND...: starts COMMAND in the background (pid in
# var/NAME.pid, log in var/log/NAME.log) unless it already runs; restarts
# it when FILE (its program) was rebuilt since it started.
daemon() {
    local name=$1 file=$2 pidf=$VAR/$1.pid
    shift 2
    if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2> /dev/null &&
       [ "$file" -nt "$pidf" ]; then
        scripts/stop.sh "$name"     # rebuilt since it started
    fi
    if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2> /dev/null; then
        say "$name: already running (pid $(cat "$pidf"))"
        return
    fi
    nohup "$@" >> "$VAR/log/$name.log" 2>&1 < /dev/null &
    echo $! > "$pidf"
    sleep 0.3
    kill -0 "$(cat "$pidf")" 2> /dev/null ||
        die "$name exited at once (see var/log/$name.log)"
    say "$name: started (pid $(cat "$pidf"))"
}

# the worker; the payment simulator (PayFiP stand-in, dev only,
# docs/office.md) on 127.0.0.1:$PAYSIM_PORT; the office (the family space
# and the back office)
daemon worker "$ROOT/build/guichet-worker" \
    "$ROOT/build/guichet-worker" -c "$VAR/worker.conf"
daemon paysim "$ROOT/office/paysim/paysim.py" \
    python3 office/paysim/paysim.py --port "$PAYSIM_PORT"
daemon office "$ROOT/build/guichet-office" \
    "$ROOT/build/guichet-office" -c "$VAR/worker.conf"

# --- nginx ----------------------------------------------------------------
NGINX_CONF=$VAR/nginx/nginx.conf
scripts/render-conf.sh lua-free-config/dev.conf "$NGINX_CONF" "$MODULE" \
    "$VAR/nginx" "$PORT" "127.0.0.1:$REDIS_PORT" "$VAR/secret.key" \
    "$VAR/invoices" "$VAR/office.sock"
nginx_=(/usr/sbin/nginx -p "$VAR/nginx" -c "$NGINX_CONF" -e "$VAR/nginx/error.log")
"${nginx_[@]}" -t -q || die "nginx -t failed"
# Restarted rather than reloaded: a reload would keep the module already
# loaded, not the one just built.
scripts/stop.sh nginx
"${nginx_[@]}"
say "nginx: started"
for _ in $(seq 50); do
    curl -fs -o /dev/null "http://127.0.0.1:$PORT/api/health" && break
    sleep 0.1
done

# --- what to do now --------------------------------------------------------
URL=http://127.0.0.1:$PORT
logins=$(/usr/bin/python3 - "$TOWN" <<'PY'
import json, sys
town = json.load(open(sys.argv[1]))
for f in town["families"]:
    if f.get("password"):
        kids = ", ".join(c["first_name"] for c in f.get("children", []))
        print(f"    {f['login']:<10} {f['password']:<14} ({kids})")
PY
)
cat <<MSG

Guichet runs: $URL/
  Espace Famille (website)  $URL/
  back office (town staff)  $URL/agent/  (admin / secret-demo)
  API                        $URL/api/  (docs/api.md)
  health                     curl $URL/api/health

Demo logins ($TOWN):
$logins

Book a place from the shell:
  T=\$(curl -s $URL/api/session -H 'Content-Type: application/json' \\
        -d '{"login":"martin","password":"secret-demo"}' | sed 's/.*"token":"\\([^"]*\\)".*/\\1/')
  curl -s $URL/api/bookings -H "Authorization: Bearer \$T" \\
       -H 'Content-Type: application/json' -H "Idempotency-Key: demo-\$RANDOM" \\
       -d '{"items":[{"child_id":"c-lea","session_id":"klub-0707-danse"}]}'

Logs in var/log/ and var/nginx/error.log.  Stop everything: make stop
MSG
