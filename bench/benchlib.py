"""benchlib.py -- what the bench scripts share: their log line and a
process's CPU time from /proc.  Imported by the scripts of bench/ (their
directory is first on sys.path when they run)."""

import os
import time


def say(*a):
    print("[%s]" % time.strftime("%H:%M:%S"), *a, flush=True)


def proc_cpu(pid):
    """CPU seconds (user + system) of a process, from /proc (0: gone)."""
    try:
        with open("/proc/%d/stat" % pid) as fh:
            f = fh.read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0
