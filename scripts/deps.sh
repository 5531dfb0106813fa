#!/usr/bin/env bash
# deps.sh -- installs, with apt, the Debian 12 packages Guichet needs that
# are missing.  Does nothing (and does not touch the network) when all are
# installed.  Run as root, or as a user with sudo.
#
# The distribution's nginx, redis-server and postgresql services may start on
# their usual ports (80, 6379, 5432) when installed; Guichet never uses those
# ports (make run: 8080, 6390, 5440; tests: free ports), so they do not
# collide.
set -euo pipefail

packages=(
    build-essential pkg-config
    nginx nginx-dev
    libhiredis-dev libyajl-dev libsodium-dev libpq-dev libhpdf-dev
    libmicrohttpd-dev libcurl4-openssl-dev libsystemd-dev
    redis-server postgresql-15 postgresql-contrib
    python3-pytest python3-pytest-xdist python3-redis python3-psycopg2
    python3-aiosmtpd python3-icalendar
    poppler-utils iproute2 iptables
    debhelper lintian systemd
    wrk valgrind gdb clang clang-format gnuplot-nox curl
    chromium nodejs npm
)

# A package counts as present when dpkg has it, or, for node and npm, when
# the command exists (NodeSource's nodejs ships npm and conflicts with
# Debian's npm package).
declare -A command_of=([nodejs]=node [npm]=npm)

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] && continue
    c=${command_of[$p]:-}
    [ -n "$c" ] && command -v "$c" > /dev/null && continue
    missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo)
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    > /tmp/guichet-apt.log 2>&1 || {
    tail -n 40 /tmp/guichet-apt.log
    echo "deps: apt-get install failed (full log: /tmp/guichet-apt.log)" >&2
    exit 1
}
echo "deps: done"
