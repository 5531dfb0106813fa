#!/usr/bin/env bash
# render-conf.sh -- fills the placeholders of a lua-free-config template.
#
#   scripts/render-conf.sh TEMPLATE OUT MODULE VAR PORT REDIS SECRET \
#                          [INVOICES [OFFICE]]
#
# @ROOT@ becomes this repository; @INVOICES@ the worker's invoice_dir
# (default: "invoices" beside the secret file, where run.sh and stack.py
# put it); @OFFICE@ guichet-office's unix socket (default: "office.sock"
# beside the secret file).  Used by scripts/run.sh, tests/run-all
# and tests/integration/stack.py, so the three render the same way.
#
# @TLS_CERT@ and @TLS_KEY@ (production.conf only): $GUICHET_TLS_CERT and
# $GUICHET_TLS_KEY, by default tls.crt and tls.key beside the secret file;
# when the template names them and neither file exists, a self-signed
# pair for localhost is made there (openssl, EC P-256, 7 days), for
# nginx -t and the tests.  A real deployment passes its own.
#
# @TOWN@ becomes $GUICHET_TOWN_ID, default "main" (guichet_town: the town
# served; the worker's, guichetctl's and the office's setting town).
# A line holding @EXTRA_TOWNS@ (dev.conf) becomes one server block of
# lua-free-config/dev-town.conf per town id of $GUICHET_EXTRA_TOWNS
# (space-separated; none by default), on the host name <id>.localhost.
#
# @REDIS_AUTH@ becomes `guichet_redis_password "...";` with the password
# of $GUICHET_REDIS_PASSWORD, else of the file redis.pass beside the
# secret file, else a comment (no password: the tests' and make run's
# Redis on loopback).  @REDIS_PASSWORD@ (production.conf) is that
# password, which it requires: when there is none, a random one is made
# in redis.pass beside the secret file (mode 0600), for nginx -t and the
# tests; the operator's Redis must require the same (requirepass).  The
# rendered file is mode 0600: it may hold the password.
#
# $GUICHET_REDIS_CLUSTER (seed nodes "host:port,host:port...", make
# run-cluster): the line `guichet_redis @REDIS@;` becomes
# `guichet_redis_cluster host:port host:port ...;` (the two directives
# exclude each other); REDIS is then unused.
set -euo pipefail
[ $# -ge 7 ] && [ $# -le 9 ] || {
    echo "usage: $0 TEMPLATE OUT MODULE VAR PORT REDIS SECRET" \
         "[INVOICES [OFFICE]]" >&2
    exit 2
}
invoices=${8:-$(dirname "$7")/invoices}
office=${9:-$(dirname "$7")/office.sock}
tls_cert=${GUICHET_TLS_CERT:-$(dirname "$7")/tls.crt}
tls_key=${GUICHET_TLS_KEY:-$(dirname "$7")/tls.key}
if grep -q '@TLS_\(CERT\|KEY\)@' "$1" &&
   [ ! -e "$tls_cert" ] && [ ! -e "$tls_key" ]; then
    (umask 077 && openssl req -x509 -newkey ec \
        -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
        -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
        -keyout "$tls_key" -out "$tls_cert" 2> /dev/null) || {
        echo "$0: cannot make a test certificate $tls_cert" >&2
        exit 1
    }
fi
redis_pass_file=$(dirname "$7")/redis.pass
redis_password=${GUICHET_REDIS_PASSWORD:-}
if [ -z "$redis_password" ] && [ -s "$redis_pass_file" ]; then
    redis_password=$(cat "$redis_pass_file")
fi
if [ -z "$redis_password" ] && grep -q '@REDIS_PASSWORD@' "$1"; then
    (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=\n' \
        > "$redis_pass_file")
    redis_password=$(cat "$redis_pass_file")
fi
case $redis_password in
    *[!A-Za-z0-9._~-]*)
        echo "$0: the Redis password may hold only A-Za-z0-9._~-" >&2
        exit 1 ;;
esac
if [ -n "$redis_password" ]; then
    redis_auth="guichet_redis_password \"$redis_password\";"
else
    redis_auth="# no guichet_redis_password: Redis on loopback without one"
fi
redis_line=
if [ -n "${GUICHET_REDIS_CLUSTER:-}" ]; then
    redis_line="guichet_redis_cluster $(printf '%s' "$GUICHET_REDIS_CLUSTER" \
        | tr ',' ' ');"
fi
town=${GUICHET_TOWN_ID:-main}
case $town in
    ''|*[!a-z0-9-]*)
        echo "$0: GUICHET_TOWN_ID must be a town id: a-z, 0-9 and -" >&2
        exit 1 ;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
esc() { printf '%s' "$1" | sed 's/[&|\\]/\\&/g'; }
umask 077
# the template with its extra towns' server blocks
extra=$(mktemp)
trap 'rm -f "$extra"' EXIT
for t in ${GUICHET_EXTRA_TOWNS:-}; do
    case $t in
        *[!a-z0-9-]*)
            echo "$0: GUICHET_EXTRA_TOWNS: \"$t\" is not a town id" >&2
            exit 1 ;;
    esac
    grep -v '^#' "$root/lua-free-config/dev-town.conf" |
        sed "s|@XTOWN@|$t|g" >> "$extra"
done
template=$(mktemp)
trap 'rm -f "$extra" "$template"' EXIT
awk -v extra="$extra" '
    /@EXTRA_TOWNS@/ { while ((getline l < extra) > 0) print l; next }
    { print }' "$1" > "$template"
sed -e "${redis_line:+s|guichet_redis @REDIS@;|$(esc "$redis_line")|}" \
    -e "s|@ROOT@|$(esc "$root")|g" \
    -e "s|@MODULE@|$(esc "$3")|g" \
    -e "s|@VAR@|$(esc "$4")|g" \
    -e "s|@PORT@|$(esc "$5")|g" \
    -e "s|@REDIS@|$(esc "$6")|g" \
    -e "s|@SECRET@|$(esc "$7")|g" \
    -e "s|@INVOICES@|$(esc "$invoices")|g" \
    -e "s|@OFFICE@|$(esc "$office")|g" \
    -e "s|@TLS_CERT@|$(esc "$tls_cert")|g" \
    -e "s|@TLS_KEY@|$(esc "$tls_key")|g" \
    -e "s|@REDIS_AUTH@|$(esc "$redis_auth")|g" \
    -e "s|@TOWN@|$(esc "$town")|g" \
    -e "s|@REDIS_PASSWORD@|$(esc "$redis_password")|g" \
    "$template" > "$2.tmp"
if grep -n '@[A-Z]*@' "$2.tmp" >&2; then
    echo "$0: placeholders left in $1" >&2
    rm -f "$2.tmp"
    exit 1
fi
mv "$2.tmp" "$2"
