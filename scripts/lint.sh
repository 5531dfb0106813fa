#!/usr/bin/env bash
# lint.sh -- the project's static checks (make lint):
#   1. the engine stays free of nginx: no ngx_/NGX_ in engine/
#   2. scripts/check-docs.py: docs/errors.md lists exactly the error codes
#      and refusal reasons the code answers; docs/directives.md exactly the
#      module's directives and variables, all in
#      lua-free-config/production.conf
#   3. (same script) docs/worker.md lists exactly the settings of
#      backend/conf.c's table, all in worker/guichet-worker.conf.example
#   4. scripts/check-style.py: the C sources of every room keep to 80
#      columns, no tab, no blank at the end of a line, /* */ comments
#      (clang-format is not used: see check-style.py for why)
# Exit status 1 when one of 1-4 fails.
set -uo pipefail
cd "$(dirname "$0")/.."

fail=0
bad() { printf 'lint: %s\n' "$*"; fail=1; }

# 1
if hits=$(grep -rnE '\bngx_|\bNGX_' engine/ 2> /dev/null); then
    bad "engine/ mentions nginx:"
    printf '%s\n' "$hits" | sed 's/^/    /'
fi

# 2, 3: scripts/check-docs.py (TAP; only its failures are shown here)
if ! out=$(scripts/check-docs.py 2>&1); then
    bad "the documentation and the code disagree (scripts/check-docs.py):"
    printf '%s\n' "$out" | grep -vE '^(ok |1\.\.)' | sed 's/^/    /'
fi

# 4
if ! out=$(scripts/check-style.py 2>&1); then
    bad "the C sources leave the house style (scripts/check-style.py):"
    printf '%s\n' "$out" | sed 's/^/    /'
fi

[ "$fail" -eq 0 ] && echo "lint: ok"
exit "$fail"
