#!/usr/bin/env bash
# lint.sh -- the project's static checks (make lint):
#   1. the engine stays free of nginx: no ngx_/NGX_ in engine/
#   2. every directive and variable the module names (ngx_string("guichet_*"))
#      is documented in docs/directives.md and present in
#      lua-free-config/production.conf
#   3. every worker setting (the table of worker/conf.c) is documented in
#      docs/worker.md
#   4. clang-format --dry-run on engine/ and worker/ (warning only)
# Exit status 1 when one of 1-3 fails.
set -uo pipefail
cd "$(dirname "$0")/.."

fail=0
bad() { printf 'lint: %s\n' "$*"; fail=1; }

# 1
if hits=$(grep -rnE '\bngx_|\bNGX_' engine/ 2> /dev/null); then
    bad "engine/ mentions nginx:"
    printf '%s\n' "$hits" | sed 's/^/    /'
fi

# 2
names=$(grep -ohE 'ngx_string\("guichet_[a-z0-9_]+"\)' ngx_module/*.c 2> /dev/null |
        sed -E 's/ngx_string\("(.*)"\)/\1/' | sort -u)
[ -n "$names" ] || bad "no guichet_* directive found in ngx_module/*.c"
for n in $names; do
    grep -qw -- "$n" docs/directives.md 2> /dev/null ||
        bad "$n is not documented in docs/directives.md"
    grep -qw -- "$n" lua-free-config/production.conf ||
        bad "$n is missing from lua-free-config/production.conf"
done

# 3
settings=$(sed -nE 's/^[[:space:]]*\{ "([a-z0-9_]+)",[[:space:]]*GCHW_.*/\1/p' \
           worker/conf.c 2> /dev/null | sort -u)
[ -n "$settings" ] || bad "no setting table found in worker/conf.c"
for s in $settings; do
    grep -qw -- "$s" docs/worker.md 2> /dev/null ||
        bad "worker setting $s is not documented in docs/worker.md"
done

# 4
if command -v clang-format > /dev/null; then
    files=$(ls engine/src/*.[ch] engine/include/*.h worker/*.[ch] 2> /dev/null)
    n=0
    for f in $files; do
        # the whole output first: grep -q closing the pipe early made
        # clang-format die of SIGPIPE and pipefail miss most files
        out=$(clang-format --dry-run "$f" 2>&1)
        case $out in *warning*) n=$((n + 1)) ;; esac
    done
    [ "$n" -eq 0 ] ||
        echo "lint: warning: clang-format would change $n file(s) of engine/ and worker/"
fi

[ "$fail" -eq 0 ] && echo "lint: ok"
exit "$fail"
