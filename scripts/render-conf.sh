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
set -euo pipefail
[ $# -ge 7 ] && [ $# -le 9 ] || {
    echo "usage: $0 TEMPLATE OUT MODULE VAR PORT REDIS SECRET" \
         "[INVOICES [OFFICE]]" >&2
    exit 2
}
invoices=${8:-$(dirname "$7")/invoices}
office=${9:-$(dirname "$7")/office.sock}
root=$(cd "$(dirname "$0")/.." && pwd)
esc() { printf '%s' "$1" | sed 's/[&|\\]/\\&/g'; }
sed -e "s|@ROOT@|$(esc "$root")|g" \
    -e "s|@MODULE@|$(esc "$3")|g" \
    -e "s|@VAR@|$(esc "$4")|g" \
    -e "s|@PORT@|$(esc "$5")|g" \
    -e "s|@REDIS@|$(esc "$6")|g" \
    -e "s|@SECRET@|$(esc "$7")|g" \
    -e "s|@INVOICES@|$(esc "$invoices")|g" \
    -e "s|@OFFICE@|$(esc "$office")|g" \
    "$1" > "$2.tmp"
if grep -n '@[A-Z]*@' "$2.tmp" >&2; then
    echo "$0: placeholders left in $1" >&2
    rm -f "$2.tmp"
    exit 1
fi
mv "$2.tmp" "$2"
