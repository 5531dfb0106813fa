#!/usr/bin/env python3
"""check-style.py -- the house style's checkable rules on the C sources
(make lint, scripts/lint.sh): at most 80 columns (characters, not bytes:
the French texts are UTF-8), no tab, no blank at the end of a line, /* */
comments only (no line starting with //).

The rest of nginx's style (4 spaces, the return type on its own line, two
blank lines between functions, declarations aligned with the '*' hanging
left of the names) is kept by hand: clang-format 14 cannot say it (its
alignment leaves one blank where nginx leaves two, and it moves '*'),
and on this tree it would rewrite about 4,700 lines of 46 files.

One line per deviation, "file:line: what"; exit status 1 when there is
one.
"""

import glob
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

ROOMS = ("engine/src", "engine/include", "engine/tests", "backend", "worker",
         "ctl", "office", "ngx_module", "fuzz", "bench")


def main():
    bad = 0
    for room in ROOMS:
        for path in sorted(glob.glob(os.path.join(ROOT, room, "*.[ch]"))):
            rel = os.path.relpath(path, ROOT)
            with open(path, encoding="utf-8") as f:
                for n, line in enumerate(f.read().split("\n"), 1):
                    why = []
                    if len(line) > 80:
                        why.append("longer than 80 columns (%d)" % len(line))
                    if "\t" in line:
                        why.append("a tab")
                    if line != line.rstrip():
                        why.append("blanks at the end")
                    if line.lstrip().startswith("//"):
                        why.append("a // comment (/* */ only)")
                    for w in why:
                        print("%s:%d: %s" % (rel, n, w))
                        bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
