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


def redis_mem(r):
    """Redis's memory now, with what is transient in it: client output
    (omem) and query (qbuf) buffers, an AOF rewrite under way, and the
    main dict's hash table (MEMORY STATS, overhead.hashtable.main: 8
    bytes a slot, a power of two >= the keys; twice during a rehash)."""
    m = r.info("memory")
    p = r.info("persistence")
    cl = r.client_list()
    st = r.memory_stats()
    db = st.get("db.0") or {}
    keys = r.dbsize()
    ht = db.get("overhead.hashtable.main")
    # Redis 7.0 counts 40 bytes an entry (dictEntry and the value's robj)
    # and 8 a slot of each table: slots not a power of two are two tables,
    # a rehash under way (the old one is freed when it ends: a bucket a
    # command, and ~1 ms of buckets in the cron ten times a second)
    slots = (ht - 40 * keys) // 8 if ht is not None else None
    return {"used_memory": m["used_memory"],
            "used_memory_dataset": m["used_memory_dataset"],
            "mem_clients_normal": m.get("mem_clients_normal"),
            "hashtable_main": db.get("overhead.hashtable.main"),
            "clients_omem_max": max([int(c.get("omem", 0)) for c in cl]
                                    or [0]),
            "clients_qbuf_max": max([int(c.get("qbuf", 0)) for c in cl]
                                    or [0]),
            "aof_rewriting": bool(p.get("aof_rewrite_in_progress")
                                  or p.get("aof_rewrite_scheduled")),
            "main_slots": slots,
            "rehashing": bool(slots and slots > 0 and slots & (slots - 1)),
            "keys": keys}


def redis_settle(r, timeout=180):
    """redis_mem() once nothing transient is left: no AOF rewrite in
    progress or scheduled, no client buffer over 64 KB (a 100 MB
    catalogue's GET by an nginx worker sits in its output buffer until
    sent), the main dict not rehashing (both tables counted meanwhile),
    used_memory within 64 KB over one second.  Its "settle_s" says how
    long that took (None: it did not, in timeout seconds)."""
    t = time.monotonic()
    last = None
    while time.monotonic() - t < timeout:
        m = redis_mem(r)
        quiet = (not m["aof_rewriting"] and not m["rehashing"]
                 and m["clients_omem_max"] <= 65536
                 and m["clients_qbuf_max"] <= 65536)
        if (quiet and last is not None
                and abs(m["used_memory"] - last["used_memory"]) < 65536):
            m["settle_s"] = round(time.monotonic() - t, 1)
            return m
        last = m if quiet else None
        time.sleep(1)
    m = redis_mem(r)
    m["settle_s"] = None                # did not settle: say so
    return m


def session_key_bytes(r, tag, sids):
    """MEMORY USAGE (SAMPLES 0) of the counter keys of sessions sids,
    averaged: {":left": bytes, ":onsite": bytes (0 when absent)}."""
    out = {}
    for kind in ("left", "onsite"):
        p = r.pipeline(transaction=False)
        for sid in sids:
            p.memory_usage("%s:s:%s:%s" % (tag, sid, kind), samples=0)
        got = [x or 0 for x in p.execute()]
        out[":" + kind] = round(sum(got) / max(1, len(got)), 1)
    return out
