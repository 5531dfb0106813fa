#!/usr/bin/env bash
# run.sh -- starts Guichet on this machine for a developer (make run):
# Redis on 127.0.0.1:6390, PostgreSQL 15 on 127.0.0.1:5440, guichet-worker,
# guichet-office and nginx with the module on http://127.0.0.1:8080, all of
# their state in var/.
#
# Idempotent, and it never destroys state: running it again (after a
# reboot, after one process died, after `make build`) starts what does not
# run and leaves alone what runs.  nginx is never stopped: reloaded (HUP)
# when its rendered configuration changed, upgraded in place (USR2 to the
# master, then QUIT to the old one: a reload would keep the old module
# mapped) when the module was rebuilt since its master started; open
# connections are not cut.  The worker and the office are restarted only
# when rebuilt (or when var/worker.conf changed).  The demo town
# (demo/amberieu.json, or GUICHET_TOWN=FILE) is loaded only into an empty
# database; loading another town over a loaded one is `guichetctl
# load-town FILE --replace` (docs/worker.md).  A second demo town
# (demo/bellerive.json, or GUICHET_TOWN2=FILE) is served beside it on
# http://bellerive.localhost:8080/ (its town.id before .localhost), from
# the same database, worker and office (issue 21); it too is loaded only
# once, into its empty schema.  The secret key, var/worker.conf
# (rewritten only when its content would change, mode 0600) and everything
# else in var/ are kept.  `make stop` (scripts/stop.sh) stops everything.
#
# Overrides (tests/ops runs a second stack with them): GUICHET_VAR (the
# state directory, default var/), GUICHET_PORT, GUICHET_REDIS_PORT,
# GUICHET_PG_PORT, GUICHET_PAYSIM_PORT, GUICHET_TOWN, GUICHET_TOWN2,
# GUICHET_MODULE.
#
# GUICHET_REDIS=cluster (make run-cluster, state in var/cluster/ unless
# GUICHET_VAR says): a Redis Cluster of 3 masters and 3 replicas on
# 127.0.0.1:7001-7006 (GUICHET_CLUSTER_PORT; scripts/redis-cluster.sh)
# instead of the one Redis; the worker, guichetctl and the office get
# redis_cluster, nginx guichet_redis_cluster (scripts/render-conf.sh).
#
# Everything runs as the current user except PostgreSQL, which refuses to
# run as root: when root, initdb and pg_ctl run as the user postgres.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

VAR=${GUICHET_VAR:-$ROOT/var}
PORT=${GUICHET_PORT:-8080}
REDIS_PORT=${GUICHET_REDIS_PORT:-6390}
REDIS_MODE=${GUICHET_REDIS:-single}
PG_PORT=${GUICHET_PG_PORT:-5440}
PAYSIM_PORT=${GUICHET_PAYSIM_PORT:-8090}
PGBIN=/usr/lib/postgresql/15/bin
TOWN=${GUICHET_TOWN:-demo/amberieu.json}
TOWN2=${GUICHET_TOWN2:-demo/bellerive.json}
MODULE=${GUICHET_MODULE:-$ROOT/build/ngx_http_guichet_module.so}
CTL=$ROOT/build/guichetctl

say() { printf '%s\n' "$*"; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }

for f in "$MODULE" "$CTL" "$ROOT/build/guichet-worker" \
         "$ROOT/build/guichet-office"; do
    [ -e "$f" ] || die "$f is missing: run 'make build' first"
done

mkdir -p "$VAR"/{redis,nginx,log}
VAR=$(cd "$VAR" && pwd)
export GUICHET_VAR=$VAR         # for scripts/stop.sh, called below
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
rcli() { redis-cli -p "$REDIS_PORT" "$@" 2> /dev/null; }

# redis_loaded: after a restart Redis reads its AOF (seconds for a large
# one) and answers LOADING to every command meanwhile: waits for the end,
# with one progress line (updated in place on a terminal).
redis_loaded() {
    local info perc shown=0
    while :; do
        info=$(rcli info persistence | tr -d '\r') ||
            die "redis on 127.0.0.1:$REDIS_PORT stopped answering (see $VAR/log/redis.log)"
        [ -n "$info" ] ||
            die "redis on 127.0.0.1:$REDIS_PORT does not answer (see $VAR/log/redis.log)"
        grep -q '^loading:1' <<< "$info" || break
        perc=$(sed -n 's/^loading_loaded_perc:\([0-9]*\).*/\1/p' <<< "$info")
        if [ -t 1 ]; then
            printf '\rredis: loading its data: %3s%%, waiting' "${perc:-0}"
        elif [ $shown -eq 0 ]; then
            say "redis: loading its data (${perc:-0}%), waiting"
        fi
        shown=1
        sleep 0.2
    done
    if [ $shown -eq 1 ] && [ -t 1 ]; then
        printf '\rredis: loading its data: done          \n'
    fi
}

if [ "$REDIS_MODE" = cluster ]; then
    scripts/redis-cluster.sh start
    SEEDS=$(scripts/redis-cluster.sh seeds)
elif [ -n "$(rcli info server)" ]; then
    say "redis: already running on 127.0.0.1:$REDIS_PORT"
else
    redis-server "$ROOT/lua-free-config/redis.conf" \
        --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$VAR/redis" \
        --daemonize yes --pidfile "$VAR/redis/redis.pid" \
        --logfile "$VAR/log/redis.log"
    for _ in $(seq 50); do
        [ -n "$(rcli info server)" ] && break
        sleep 0.1
    done
    [ -n "$(rcli info server)" ] ||
        die "redis did not start (see $VAR/log/redis.log)"
    say "redis: started on 127.0.0.1:$REDIS_PORT"
fi
[ "$REDIS_MODE" = cluster ] || redis_loaded

# --- PostgreSQL ----------------------------------------------------------
PGDATA=$VAR/pg/data
if [ ! -f "$PGDATA/PG_VERSION" ]; then
    rm -rf "$VAR/pg"
    mkdir -p "$VAR/pg/run"
    [ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$VAR/pg"
    pg_user_run "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust \
        -E UTF8 --locale=C.UTF-8 > "$VAR/log/initdb.log" 2>&1 ||
        die "initdb failed (see $VAR/log/initdb.log)"
fi
[ "$(id -u)" -eq 0 ] && touch "$VAR/log/postgres.log" &&
    chown postgres:postgres "$VAR/log/postgres.log"
if pg_user_run "$PGBIN/pg_ctl" -D "$PGDATA" status > /dev/null 2>&1; then
    say "postgres: already running on 127.0.0.1:$PG_PORT"
else
    pg_user_run "$PGBIN/pg_ctl" -D "$PGDATA" -w -t 30 \
        -l "$VAR/log/postgres.log" \
        -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $VAR/pg/run" \
        start > /dev/null || die "postgres did not start (see $VAR/log/postgres.log)"
    say "postgres: started on 127.0.0.1:$PG_PORT"
fi
psql_() { psql -h "$VAR/pg/run" -p "$PG_PORT" -U postgres -X -q "$@"; }
if [ -z "$(psql_ -d postgres -tAc "select 1 from pg_database where datname = 'guichet'")" ]; then
    psql_ -d postgres -c 'create database guichet'
fi

# --- settings, secret, schema, the demo town -----------------------------
# worker.conf: rewritten only when its content changes (the worker and the
# office then restart below), never readable by others (it may hold
# redis_password).
CONF=$VAR/worker.conf
(umask 077 && cat > "$CONF.new") <<CONF
# written by scripts/run.sh; settings: docs/worker.md
$(if [ "$REDIS_MODE" = cluster ]; then echo "redis_cluster = $SEEDS";
  else echo "redis = 127.0.0.1:$REDIS_PORT"; fi)
postgres = "host=$VAR/pg/run port=$PG_PORT dbname=guichet user=postgres"
secret_file = $VAR/secret.key
invoice_dir = $VAR/invoices
migrations_dir = $ROOT/sql/migrations
office_listen = unix:$VAR/office.sock
office_upload_dir = $VAR/uploads
site_url = http://127.0.0.1:$PORT
town_site_url = http://{town}.localhost:$PORT
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
    echo "office_socket_group = nogroup" >> "$CONF.new"
fi
if cmp -s "$CONF.new" "$CONF"; then
    rm -f "$CONF.new"
else
    mv -f "$CONF.new" "$CONF"
    say "settings: $CONF written"
fi
chmod 600 "$CONF"
[ -f "$VAR/secret.key" ] || "$CTL" init-secret "$VAR/secret.key"
"$CTL" -c "$CONF" migrate > /dev/null

# The town: loaded only into an empty database.  Loading another one over
# it is explicit (guichetctl load-town FILE --replace).
loaded=$(psql_ -d guichet -tAc 'select name from town')
if [ -z "$loaded" ]; then
    "$CTL" -c "$CONF" load-town "$TOWN" > /dev/null
    loaded=$(psql_ -d guichet -tAc 'select name from town')
    say "town: $TOWN loaded ($loaded)"
    # the demo's back-office account (created once, audited)
    echo "secret-demo" | "$CTL" -c "$CONF" staff-add admin admin \
        "Agent de démonstration" > /dev/null
else
    say "town: $loaded already loaded, kept"
    if [ -n "${GUICHET_TOWN:-}" ]; then
        say "town: GUICHET_TOWN=$GUICHET_TOWN not loaded over it (make" \
            "stop, remove $VAR/pg, make run; or: build/guichetctl" \
            "load-town $GUICHET_TOWN --replace)"
    fi
fi

# The second town: its schema made (guichetctl --town ID migrate) and its
# file loaded once, like the first; its own back-office account.
TOWN2_ID=$(/usr/bin/python3 -c 'import json, sys
print(json.load(open(sys.argv[1]))["town"]["id"])' "$TOWN2") ||
    die "$TOWN2: no town.id (a second town needs its own)"
"$CTL" -c "$CONF" --town "$TOWN2_ID" migrate > /dev/null
loaded2=$(psql_ -d guichet -tAc "select name from town_${TOWN2_ID//-/_}.town")
if [ -z "$loaded2" ]; then
    "$CTL" -c "$CONF" --town "$TOWN2_ID" load-town "$TOWN2" > /dev/null
    loaded2=$(psql_ -d guichet -tAc \
              "select name from town_${TOWN2_ID//-/_}.town")
    say "town: $TOWN2 loaded ($loaded2, town $TOWN2_ID)"
    echo "secret-demo" | "$CTL" -c "$CONF" --town "$TOWN2_ID" staff-add \
        admin admin "Agent de démonstration" > /dev/null
else
    say "town: $loaded2 (town $TOWN2_ID) already loaded, kept"
fi

# daemon NAME FILE COMMAND...: starts COMMAND in the background (pid in
# var/NAME.pid, log in var/log/NAME.log) unless it already runs; restarts
# it when FILE (its program) or var/worker.conf changed since it started.
daemon() {
    local name=$1 file=$2 pidf=$VAR/$1.pid
    shift 2
    if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2> /dev/null &&
       { [ "$file" -nt "$pidf" ] || [ "$CONF" -nt "$pidf" ]; }; then
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
        die "$name exited at once (see $VAR/log/$name.log)"
    say "$name: started (pid $(cat "$pidf"))"
}

# the worker; the payment simulator (PayFiP stand-in, dev only,
# docs/office.md) on 127.0.0.1:$PAYSIM_PORT; the office (the family space
# and the back office)
daemon worker "$ROOT/build/guichet-worker" \
    "$ROOT/build/guichet-worker" -c "$CONF"
daemon paysim "$ROOT/office/paysim/paysim.py" \
    python3 office/paysim/paysim.py --port "$PAYSIM_PORT"
daemon office "$ROOT/build/guichet-office" \
    "$ROOT/build/guichet-office" -c "$CONF"

# Redis keys of the layout before towns (a stack started by an older make
# run): renamed to the town's ({main}:..., docs/worker.md) before nginx's
# new module reads them.  The worker does it at its start too; run again
# below once an old master upgraded away has finished.
"$CTL" -c "$CONF" migrate-keys > /dev/null

# --- nginx ----------------------------------------------------------------
# Never stopped when it runs: its open connections would be cut (a rush's
# clients see resets).
NGINX_CONF=$VAR/nginx/nginx.conf
NGINX_PID=$VAR/nginx/nginx.pid
[ "$REDIS_MODE" = cluster ] && export GUICHET_REDIS_CLUSTER=$SEEDS
GUICHET_EXTRA_TOWNS=$TOWN2_ID \
scripts/render-conf.sh lua-free-config/dev.conf "$NGINX_CONF.new" "$MODULE" \
    "$VAR/nginx" "$PORT" "127.0.0.1:$REDIS_PORT" "$VAR/secret.key" \
    "$VAR/invoices" "$VAR/office.sock"
nginx_=(/usr/sbin/nginx -p "$VAR/nginx" -c "$NGINX_CONF" -e "$VAR/nginx/error.log")
/usr/sbin/nginx -p "$VAR/nginx" -c "$NGINX_CONF.new" \
    -e "$VAR/nginx/error.log" -t -q || die "nginx -t failed"
conf_changed=1
if cmp -s "$NGINX_CONF.new" "$NGINX_CONF"; then
    conf_changed=0
    rm -f "$NGINX_CONF.new"
else
    mv -f "$NGINX_CONF.new" "$NGINX_CONF"
fi

# pid_from FILE: the pid it holds when that process lives, else nothing.
pid_from() {
    local pid
    pid=$(cat "$1" 2> /dev/null) || return 0
    [ -n "$pid" ] && kill -0 "$pid" 2> /dev/null && echo "$pid"
    return 0
}

# The module a master loaded: its inode and modification time, recorded
# in var/nginx/module.loaded when run.sh starts a master (make build
# replaces the .so by a rename: a new inode).
STAMP=$VAR/nginx/module.loaded
module_id() { stat -L -c '%i %.9Y' "$MODULE"; }

# module_rebuilt PID: the module changed since that master loaded it.  A
# master run.sh did not start has no stamp: the module's mtime is compared
# with the master's start (1 s granularity: /proc/stat's btime).
module_rebuilt() {
    local ticks btime started
    if [ -f "$STAMP" ] && [ "$(sed -n 1p "$STAMP")" = "$1" ]; then
        [ "$(sed -n 2p "$STAMP")" != "$(module_id)" ]
        return
    fi
    ticks=$(awk '{ print $22 }' "/proc/$1/stat")
    btime=$(awk '$1 == "btime" { print $2 }' /proc/stat)
    started=$((btime + ticks / $(getconf CLK_TCK) + 1))
    [ "$(stat -L -c %Y "$MODULE")" -gt "$started" ]
}

master=$(pid_from "$NGINX_PID")
if [ -z "$master" ]; then
    so_id=$(module_id)
    "${nginx_[@]}"
    for _ in $(seq 50); do
        master=$(pid_from "$NGINX_PID")
        [ -n "$master" ] && break
        sleep 0.1
    done
    printf '%s\n%s\n' "$master" "$so_id" > "$STAMP"
    say "nginx: started on 127.0.0.1:$PORT"

elif module_rebuilt "$master"; then
    # The module was rebuilt: a new master (the same binary, the new .so,
    # the listening sockets inherited), then the old one finishes its
    # requests and leaves.
    so_id=$(module_id)
    kill -USR2 "$master"
    new=
    for _ in $(seq 300); do
        if [ "$(pid_from "$NGINX_PID.oldbin")" = "$master" ]; then
            new=$(pid_from "$NGINX_PID")
            [ -n "$new" ] && [ "$new" != "$master" ] && break
        fi
        new=
        sleep 0.1
    done
    [ -n "$new" ] || die "nginx: the binary upgrade did not start a new" \
        "master; the old one ($master) still runs (see $VAR/nginx/error.log)"
    # the new master's workers accept before the old ones stop
    for _ in $(seq 100); do
        [ -n "$(pgrep -P "$new" 2> /dev/null)" ] && break
        sleep 0.1
    done
    kill -QUIT "$master"
    printf '%s\n%s\n' "$new" "$so_id" > "$STAMP"
    # what its last requests wrote under the old names (if it was a
    # module of the layout before towns) joins the town's keys
    for _ in $(seq 100); do
        kill -0 "$master" 2> /dev/null || break
        sleep 0.1
    done
    "$CTL" -c "$CONF" migrate-keys > /dev/null
    say "nginx: upgraded to the rebuilt module (master $master -> $new," \
        "no connection cut)"

elif [ $conf_changed -eq 1 ]; then
    kill -HUP "$master"
    say "nginx: configuration changed, reloaded (pid $master)"

else
    say "nginx: already running (pid $master)"
fi
for _ in $(seq 50); do
    curl -fs -o /dev/null "http://127.0.0.1:$PORT/api/health" && break
    sleep 0.1
done

# --- what to do now --------------------------------------------------------
URL=http://127.0.0.1:$PORT
URL2=http://$TOWN2_ID.localhost:$PORT
# the demo's logins, when the loaded town is the file's
logins=$(/usr/bin/python3 - "$TOWN" "$loaded" <<'PY'
import json, sys
town = json.load(open(sys.argv[1]))
if town["town"]["name"] == sys.argv[2]:
    print("Demo logins (%s):" % sys.argv[1])
    for f in town["families"]:
        if f.get("password"):
            kids = ", ".join(c["first_name"] for c in f.get("children", []))
            print(f"    {f['login']:<10} {f['password']:<14} ({kids})")
    new = [f["id"] for f in town["families"] if not f.get("login")]
    if new:
        print("  without an account yet: %s (README, *Try it*: "
              "guichetctl invite --letter %s)" % (", ".join(new), new[0]))
else:
    print("The town loaded is %s (its logins are in its town file)."
          % sys.argv[2])
PY
)
# guichetctl finds var/worker.conf by itself (docs/worker.md); another
# state directory is named by GUICHET_CONF
if [ "$VAR" = "$ROOT/var" ]; then
    ctl="build/guichetctl"
    stop="make stop"
else
    ctl="GUICHET_CONF=$CONF build/guichetctl"
    stop="GUICHET_VAR=$VAR make stop"
fi
cat <<MSG

Guichet runs: $URL/
  Espace Famille (website)  $URL/
  back office (town staff)  $URL/agent/  (admin / secret-demo)
  API                        $URL/api/  (docs/api.md)
  health                     curl $URL/api/health
  operators' tool            $ctl check   (settings: $CONF)

$logins

Book a place from the shell:
  T=\$(curl -s $URL/api/session -H 'Content-Type: application/json' \\
        -d '{"login":"martin","password":"secret-demo"}' | sed 's/.*"token":"\\([^"]*\\)".*/\\1/')
  curl -s $URL/api/bookings -H "Authorization: Bearer \$T" \\
       -H 'Content-Type: application/json' -H "Idempotency-Key: demo-\$RANDOM" \\
       -d '{"items":[{"child_id":"c-lea","session_id":"klub-0707-danse"}]}'

A second town, $loaded2, on its own host name (same ports, same
database, worker and office; its logins in $TOWN2):
  $URL2/   (a browser resolves *.localhost to 127.0.0.1;
           curl: --resolve $TOWN2_ID.localhost:$PORT:127.0.0.1)
  back office  $URL2/agent/  (admin / secret-demo)
  operators' tool  $ctl --town $TOWN2_ID check

Logs in $VAR/log/ and $VAR/nginx/error.log.
Running make run again keeps everything (it starts only what stopped).
Stop everything: $stop
MSG
