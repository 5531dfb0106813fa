/*
 * migrate.c -- the Redis keys of the layout before towns, renamed to the
 * layout of a town (gch_keys.h): gchb_migrate_keys().
 *
 * Before towns (issue 21) the keys were "gch:<name>" (the stream was
 * gch:bookings) and the family, session and child keys were tagged by
 * their own id: "{f:<fid>}:<name>", "{s:<sid>}:<name>", "{c:<cid>}:<day>:
 * q<i>", an agent's tokens "{f:staff:<login>}:tokens".  This file is the
 * only place that still names them.  Each becomes the key of the town
 * this process serves:
 *
 *   gch:bookings[:dead]           {T}:stream[:dead]
 *   gch:<name>                    {T}:<name>
 *   {f:staff:<login>}:tokens      {T}:staff:<login>:tokens
 *   {f:<fid>}:<name>              {T}:f:<fid>:<name>
 *   {s:<sid>}:<name>              {T}:s:<sid>:<name>
 *   {c:<cid>}:<rest>              {T}:c:<cid>:<rest>
 *
 * One SCAN of the keyspace, one RENAMENX per old key: a key keeps its
 * value, type, TTL and (a stream) its consumer group, and nothing is
 * deleted.  Two values name keys too and are rewritten: the members of
 * {T}:inflight ("<record key>#<attempt>", "<cancel marker key>") and the
 * claim keys in the plan of a first attempt's record ("P ... [{"q":
 * ["{c:..."]}]"), which the reaper reads.  Safe to interrupt and to run
 * again: what is renamed no longer matches, what is left is found again.
 *
 * When the new name exists already (a program of the old layout wrote the
 * old key again after a first pass), the stream's entries are moved into
 * the new stream and the demande counter keeps the larger value; any
 * other such key is left as it is and counted (logged): nothing is lost,
 * nothing is overwritten.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gchb.h"


#define GCHB_MIG_KEY_MAX  1024


/*
 * The new name of an old-layout key into out (size bytes), its length;
 * 0 when key is not of the old layout, -1 when out is too small.
 */
int
gchb_migrate_name(const char *town, const char *key, size_t len, char *out,
    size_t size)
{
    int          n;
    size_t       idlen;
    const char  *id, *end, *rest;
    char         kind;

    if (len > 4 && memcmp(key, "gch:", 4) == 0) {
        key += 4;
        len -= 4;

        if (len >= 8 && memcmp(key, "bookings", 8) == 0
            && (len == 8 || key[8] == ':'))
        {
            n = snprintf(out, size, "{%s}:" GCH_N_STREAM "%.*s", town,
                         (int) (len - 8), key + 8);

        } else {
            n = snprintf(out, size, "{%s}:%.*s", town, (int) len, key);
        }

        return (n < 0 || (size_t) n >= size) ? -1 : n;
    }

    if (len < 6 || key[0] != '{' || key[2] != ':'
        || (key[1] != 'f' && key[1] != 's' && key[1] != 'c'))
    {
        return 0;
    }

    kind = key[1];
    id = key + 3;
    end = memchr(id, '}', len - 3);
    if (end == NULL || end == id || (size_t) (end - key) + 2 > len
        || end[1] != ':')
    {
        return 0;
    }

    idlen = end - id;
    rest = end + 2;

    if (kind == 'f' && idlen > 6 && memcmp(id, "staff:", 6) == 0
        && (size_t) (key + len - rest) == 6 && memcmp(rest, "tokens", 6) == 0)
    {
        n = snprintf(out, size, "{%s}:" GCH_N_STAFF ":%.*s:tokens", town,
                     (int) (idlen - 6), id + 6);

    } else {
        n = snprintf(out, size, "{%s}:%c:%.*s:%.*s", town, kind, (int) idlen,
                     id, (int) (key + len - rest), rest);
    }

    return (n < 0 || (size_t) n >= size) ? -1 : n;
}


static redisReply *
gchb_mig_cmd(redisContext *rc, int argc, const char **argv,
    const size_t *lens)
{
    redisReply  *r;

    r = redisCommandArgv(rc, argc, argv, lens);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        gchb_log("error", "redis: %s: %s", argv[0],
                 r ? r->str : rc->errstr);
        if (r) {
            freeReplyObject(r);
        }
        return NULL;
    }

    return r;
}


/* The old stream, written again after its first rename: its entries are
 * appended to the new one (new ids, the same fields), then it goes. */
/*
 * One step of a SCAN (of the keys matching match, NULL: of every key)
 * from cursor, which it moves on: the reply, whose element[1] is the
 * step's keys, or NULL after logging.
 */
static redisReply *
gchb_mig_scan(redisContext *rc, char *cursor, size_t len, const char *match)
{
    redisReply  *r;

    r = match ? redisCommand(rc, "SCAN %s MATCH %s COUNT 1000", cursor, match)
              : redisCommand(rc, "SCAN %s COUNT 1000", cursor);

    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2
        || r->element[0]->type != REDIS_REPLY_STRING
        || r->element[1]->type != REDIS_REPLY_ARRAY)
    {
        gchb_log("error", "redis: SCAN: %s",
                 r ? (r->str ? r->str : "bad reply") : rc->errstr);
        if (r) {
            freeReplyObject(r);
        }
        return NULL;
    }

    snprintf(cursor, len, "%s", r->element[0]->str);

    return r;
}


static long
gchb_mig_stream(redisContext *rc, const char *old, const char *new)
{
    long         moved;
    size_t       i, j, n, lens[64];
    const char  *argv[64];
    redisReply  *r, *e, *f, *x;

    r = redisCommand(rc, "XRANGE %s - +", old);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        if (r) {
            freeReplyObject(r);
        }
        return -1;
    }

    moved = 0;

    for (i = 0; i < r->elements; i++) {
        e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2) {
            continue;
        }

        f = e->element[1];
        if (f->elements > 60) {
            continue;
        }

        argv[0] = "XADD"; lens[0] = 4;
        argv[1] = new; lens[1] = strlen(new);
        argv[2] = "*"; lens[2] = 1;
        n = 3;
        for (j = 0; j < f->elements; j++) {
            argv[n] = f->element[j]->str;
            lens[n++] = f->element[j]->len;
        }

        x = gchb_mig_cmd(rc, (int) n, argv, lens);
        if (x == NULL) {
            freeReplyObject(r);
            return -1;
        }
        freeReplyObject(x);

        x = redisCommand(rc, "XDEL %s %s", old, e->element[0]->str);
        if (x) {
            freeReplyObject(x);
        }
        moved++;
    }

    freeReplyObject(r);

    x = redisCommand(rc, "XLEN %s", old);
    if (x && x->type == REDIS_REPLY_INTEGER && x->integer == 0) {
        freeReplyObject(x);
        x = redisCommand(rc, "DEL %s", old);
    }
    if (x) {
        freeReplyObject(x);
    }

    gchb_log("warn", "redis: %ld entries of %s written after its migration "
             "moved to %s", moved, old, new);

    return moved;
}


/* The demande counter, incremented under its old name after the first
 * pass: the larger value wins, so that no number is given twice. */
static int
gchb_mig_counter(redisContext *rc, const char *old, const char *new)
{
    long long    a, b;
    redisReply  *r;

    r = redisCommand(rc, "MGET %s %s", old, new);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        if (r) {
            freeReplyObject(r);
        }
        return -1;
    }

    a = r->element[0]->str ? atoll(r->element[0]->str) : 0;
    b = r->element[1]->str ? atoll(r->element[1]->str) : 0;
    freeReplyObject(r);

    r = redisCommand(rc, "SET %s %lld", new, a > b ? a : b);
    if (r) {
        freeReplyObject(r);
    }
    r = redisCommand(rc, "DEL %s", old);
    if (r) {
        freeReplyObject(r);
    }

    return 0;
}


/* 1 renamed, 0 kept (new name taken), 2 gone meanwhile, -1 error */
static int
gchb_mig_rename(redisContext *rc, const char *town, const char *key,
    size_t len)
{
    int          n, ret;
    char         new[GCHB_MIG_KEY_MAX], seq[GCHB_KEY_MAX];
    char         stream[GCHB_KEY_MAX];
    size_t       lens[3];
    const char  *argv[3];
    redisReply  *r;

    n = gchb_migrate_name(town, key, len, new, sizeof(new));
    if (n <= 0) {
        if (n < 0) {
            gchb_log("warn", "redis: key %.*s too long to migrate", (int) len,
                     key);
        }
        return 0;
    }

    argv[0] = "RENAMENX"; lens[0] = 8;
    argv[1] = key; lens[1] = len;
    argv[2] = new; lens[2] = (size_t) n;

    r = redisCommandArgv(rc, 3, argv, lens);
    if (r != NULL && r->type == REDIS_REPLY_ERROR
        && strncmp(r->str, "ERR no such key", 15) == 0)
    {
        /* gone since the SCAN: renamed by another migration running at
         * the same time (the worker at its start, make run's guichetctl)
         * or expired; nothing left to do for it */
        freeReplyObject(r);
        return 2;
    }
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        gchb_log("error", "redis: RENAMENX: %s", r ? r->str : rc->errstr);
        if (r) {
            freeReplyObject(r);
        }
        return -1;
    }

    ret = (r->type == REDIS_REPLY_INTEGER && r->integer == 1) ? 1 : 0;
    freeReplyObject(r);

    if (ret == 1) {
        return 1;
    }

    /* the new name exists: the cases that can be merged safely */

    snprintf(seq, sizeof(seq), GCH_KEY_SEQ_DEMANDE, town);
    snprintf(stream, sizeof(stream), GCH_KEY_STREAM, town);

    if (strcmp(new, stream) == 0) {
        return gchb_mig_stream(rc, "gch:bookings", new) < 0 ? -1 : 1;
    }

    if (strcmp(new, seq) == 0) {
        return gchb_mig_counter(rc, "gch:seq:demande", new) < 0 ? -1 : 1;
    }

    gchb_log("warn", "redis: %.*s kept: %s exists already", (int) len, key,
             new);

    return 0;
}


/* The claim keys in a first attempt's plan: "{c:<cid>}:" becomes
 * "{T}:c:<cid>:".  The record is rewritten only if it did not change in
 * between (WATCH). */
static int
gchb_mig_record(redisContext *rc, const char *town, const char *rkey)
{
    char        *buf, *p, *q, *end;
    size_t       tlen, cap;
    redisReply  *r, *x;

    x = redisCommand(rc, "WATCH %s", rkey);
    if (x) {
        freeReplyObject(x);
    }

    r = redisCommand(rc, "GET %s", rkey);
    if (r == NULL || r->type != REDIS_REPLY_STRING || r->len < 2
        || r->str[0] != 'P' || strstr(r->str, "\"{c:") == NULL)
    {
        if (r) {
            freeReplyObject(r);
        }
        x = redisCommand(rc, "UNWATCH");
        if (x) {
            freeReplyObject(x);
        }
        return 0;
    }

    tlen = strlen(town);
    cap = r->len * 2 + 64 * tlen + 1;
    buf = malloc(cap);
    if (buf == NULL) {
        freeReplyObject(r);
        return -1;
    }

    q = buf;
    end = buf + cap - 1;

    for (p = r->str; *p && q + tlen + 8 < end; ) {
        if (strncmp(p, "\"{c:", 4) == 0 && strchr(p + 4, '}')) {
            q += sprintf(q, "\"{%s}:c:", town);
            p += 4;
            while (*p && *p != '}' && q < end) {
                *q++ = *p++;
            }
            if (*p == '}') {
                p++;                    /* "}:" becomes ":" */
            }
            continue;
        }
        *q++ = *p++;
    }
    *q = '\0';

    freeReplyObject(r);

    x = redisCommand(rc, "MULTI");
    if (x) {
        freeReplyObject(x);
    }
    x = redisCommand(rc, "SET %s %s KEEPTTL XX", rkey, buf);
    if (x) {
        freeReplyObject(x);
    }
    x = redisCommand(rc, "EXEC");
    if (x) {
        freeReplyObject(x);
    }

    free(buf);
    return 1;
}


/* {T}:inflight: members naming old keys get their new names (same
 * score); every first attempt's record gets its plan's new claim keys. */
static long
gchb_mig_inflight(redisContext *rc, const char *town)
{
    int          n;
    long         done;
    char         key[GCHB_KEY_MAX], new[GCHB_MIG_KEY_MAX];
    char         rkey[GCHB_MIG_KEY_MAX];
    size_t       i, len, mlen;
    const char  *m, *hash;
    redisReply  *r, *x;

    snprintf(key, sizeof(key), GCH_KEY_INFLIGHT, town);

    r = redisCommand(rc, "ZRANGE %s 0 -1 WITHSCORES", key);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        if (r) {
            freeReplyObject(r);
        }
        return -1;
    }

    done = 0;

    for (i = 0; i + 1 < r->elements; i += 2) {
        m = r->element[i]->str;
        mlen = r->element[i]->len;
        hash = memchr(m, '#', mlen);
        len = hash ? (size_t) (hash - m) : mlen;

        n = gchb_migrate_name(town, m, len, new, sizeof(new));

        if (n > 0 && (size_t) n + (mlen - len) < sizeof(new)) {
            memcpy(new + n, m + len, mlen - len);
            new[n + (mlen - len)] = '\0';

            x = redisCommand(rc, "MULTI");
            if (x) {
                freeReplyObject(x);
            }
            x = redisCommand(rc, "ZADD %s NX %s %s", key,
                             r->element[i + 1]->str, new);
            if (x) {
                freeReplyObject(x);
            }
            x = redisCommand(rc, "ZREM %s %b", key, m, mlen);
            if (x) {
                freeReplyObject(x);
            }
            x = redisCommand(rc, "EXEC");
            if (x) {
                freeReplyObject(x);
            }
            done++;

            snprintf(rkey, sizeof(rkey), "%.*s", n, new);

        } else {
            snprintf(rkey, sizeof(rkey), "%.*s", (int) len, m);
        }

        if (strstr(rkey, ":idem:") != NULL && gchb_mig_record(rc, town, rkey)
            > 0)
        {
            done++;
        }
    }

    freeReplyObject(r);

    return done;
}


/* See gchb.h. */
int
gchb_migrate_keys(redisContext *rc, const char *town, long *renamed)
{
    int          rv;
    long         moved, kept, members;
    char         cursor[32];
    size_t       i;
    redisReply  *r, *k;

    moved = 0;
    kept = 0;
    rv = 0;
    strcpy(cursor, "0");

    do {
        r = gchb_mig_scan(rc, cursor, sizeof(cursor), NULL);
        if (r == NULL) {
            return -1;
        }

        for (i = 0; i < r->element[1]->elements; i++) {
            k = r->element[1]->element[i];

            switch (gchb_mig_rename(rc, town, k->str, k->len)) {
            case 1:
                moved++;
                break;
            case 2:
                break;
            case 0:
                if (gchb_migrate_name(town, k->str, k->len, NULL, 0) != 0) {
                    kept++;
                }
                break;
            default:
                rv = -1;
            }
        }

        freeReplyObject(r);

    } while (rv == 0 && strcmp(cursor, "0") != 0);

    members = gchb_mig_inflight(rc, town);
    if (members < 0) {
        rv = -1;
    }

    if (moved || kept || members > 0) {
        gchb_log(kept ? "warn" : "info", "redis: keys of the layout before "
                 "towns: %ld renamed to town \"%s\", %ld kept (new name "
                 "taken), %ld in-flight attempts rewritten", moved, town,
                 kept, members > 0 ? members : 0);
    }

    if (renamed) {
        *renamed = moved;
    }

    return rv;
}


/*
 * The on-site counters of the layout before issue 20's fifth pass: one
 * batch of SCAN's keys ({T}:s:<sid>:onsite, a 4-byte big-endian u32)
 * added into the u32 at bit 32 of the session's {T}:s:<sid>:left and
 * deleted, in one MULTI under WATCH of both keys of every session of the
 * batch: a booking, a cancellation or a publication in between aborts
 * the EXEC and the batch is read again.  A key whose :left does not exist
 * (nothing was ever published for it) or that is not 4 bytes is left as
 * it is (*kept).  Adding, not setting: an old on-site key written again
 * after a first pass (a module of the old layout still answering) joins
 * what was merged before.  The number merged; -2 when a key kept moving
 * (tries EXECs aborted: a rush books these sessions), nothing merged;
 * -1 when Redis failed.
 */
static long
gchb_merge_batch(redisContext *rc, redisReply *keys, long *kept, int tries)
{
    int          t;
    long        *ok;
    char         left[GCHB_MIG_KEY_MAX], v[24];
    size_t       i, n, len, base;
    long         merged;
    uint32_t     val;
    const char  *k;
    redisReply  *r;
    void        *p;

    n = keys->elements;
    if (n == 0) {
        return 0;
    }

    ok = calloc(n, sizeof(long));
    if (ok == NULL) {
        return -1;
    }

    for (t = 0; t < tries; t++) {

        /* WATCH both keys of every session of the batch, then read */
        for (i = 0; i < n; i++) {
            k = keys->element[i]->str;
            len = keys->element[i]->len;
            base = len - (sizeof(GCH_KEY_ONSITE_OLD) - 1);
            snprintf(left, sizeof(left), "%.*s" GCH_KEY_LEFT, (int) base, k);
            redisAppendCommand(rc, "WATCH %b %s", k, len, left);
            redisAppendCommand(rc, "GET %b", k, len);
            redisAppendCommand(rc, "EXISTS %s", left);
        }

        for (i = 0; i < n; i++) {
            if (redisGetReply(rc, &p) != REDIS_OK) {
                goto failed;
            }
            freeReplyObject(p);

            ok[i] = 0;                          /* gone meanwhile */
            if (redisGetReply(rc, &p) != REDIS_OK) {
                goto failed;
            }
            r = p;
            if (r->type == REDIS_REPLY_STRING && r->len == 4) {
                val = ((uint32_t) (unsigned char) r->str[0] << 24)
                      | ((uint32_t) (unsigned char) r->str[1] << 16)
                      | ((uint32_t) (unsigned char) r->str[2] << 8)
                      | (uint32_t) (unsigned char) r->str[3];
                ok[i] = 1 + (long) val;
            } else if (r->type == REDIS_REPLY_STRING) {
                ok[i] = -1;                     /* not a counter: kept */
            }
            freeReplyObject(r);

            if (redisGetReply(rc, &p) != REDIS_OK) {
                goto failed;
            }
            r = p;
            if (ok[i] > 0 && !(r->type == REDIS_REPLY_INTEGER
                               && r->integer == 1))
            {
                ok[i] = -1;                     /* no :left: kept */
            }
            freeReplyObject(r);
        }

        redisAppendCommand(rc, "MULTI");
        for (i = 0; i < n; i++) {
            if (ok[i] <= 0) {
                continue;
            }
            k = keys->element[i]->str;
            len = keys->element[i]->len;
            base = len - (sizeof(GCH_KEY_ONSITE_OLD) - 1);
            snprintf(left, sizeof(left), "%.*s" GCH_KEY_LEFT, (int) base, k);
            snprintf(v, sizeof(v), "%ld", ok[i] - 1);
            redisAppendCommand(rc, "BITFIELD %s OVERFLOW SAT INCRBY u32 "
                               GCH_OFF_ONSITE " %s", left, v);
            redisAppendCommand(rc, "DEL %b", k, len);
        }
        redisAppendCommand(rc, "EXEC");

        if (redisGetReply(rc, &p) != REDIS_OK) {            /* MULTI */
            goto failed;
        }
        freeReplyObject(p);
        for (i = 0; i < n; i++) {
            if (ok[i] <= 0) {
                continue;
            }
            if (redisGetReply(rc, &p) != REDIS_OK) {        /* QUEUED */
                goto failed;
            }
            freeReplyObject(p);
            if (redisGetReply(rc, &p) != REDIS_OK) {
                goto failed;
            }
            freeReplyObject(p);
        }
        if (redisGetReply(rc, &p) != REDIS_OK) {            /* EXEC */
            goto failed;
        }
        r = p;

        if (r->type == REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            merged = 0;
            for (i = 0; i < n; i++) {
                merged += ok[i] > 0;
                *kept += ok[i] < 0;
            }
            free(ok);
            return merged;
        }

        if (r->type == REDIS_REPLY_ERROR) {
            gchb_log("error", "redis: merging on-site counters: %s", r->str);
            freeReplyObject(r);
            free(ok);
            return -1;
        }

        freeReplyObject(r);             /* nil: a key moved: again */
    }

    free(ok);
    return -2;

failed:

    gchb_log("error", "redis: merging on-site counters: %s", rc->errstr);
    free(ok);
    return -1;
}


/*
 * The keys of a SCAN MATCH *:onsite batch that name a :left fitting
 * GCHB_MIG_KEY_MAX, into fit (its element, keys->elements long, given
 * by the caller); the others are counted in *kept and logged, so that
 * one key of the pattern that no session ever had (a name of 1 KB or
 * more) does not stop the merge of the others.
 */
static void
gchb_mig_onsite_keys(redisReply *keys, redisReply *fit, long *kept)
{
    size_t  i, len;

    fit->type = REDIS_REPLY_ARRAY;
    fit->elements = 0;

    for (i = 0; i < keys->elements; i++) {
        len = keys->element[i]->len;
        if (keys->element[i]->type != REDIS_REPLY_STRING
            || len < sizeof(GCH_KEY_ONSITE_OLD)
            || len + sizeof(GCH_KEY_LEFT) >= GCHB_MIG_KEY_MAX)
        {
            gchb_log("warn", "redis: merging on-site counters: a key of "
                     "%zu bytes kept as it is (not a session's)", len);
            (*kept)++;
            continue;
        }

        fit->element[fit->elements++] = keys->element[i];
    }
}


/* See gchb.h. */
int
gchb_merge_counter(redisContext *rc, const char *town, const char *sid)
{
    int          n;
    long         kept, m;
    char         key[GCHB_MIG_KEY_MAX];
    redisReply   one, el, *elp;

    n = snprintf(key, sizeof(key), GCH_KEY_S(GCH_KEY_ONSITE_OLD), town, sid);
    if (n < 0 || (size_t) n + sizeof(GCH_KEY_LEFT) >= sizeof(key)) {
        gchb_log("error", "redis: merging the on-site counter of session "
                 "%s: id too long", sid);
        return -1;
    }

    memset(&el, 0, sizeof(el));
    el.type = REDIS_REPLY_STRING;
    el.str = key;
    el.len = (size_t) n;
    elp = &el;

    memset(&one, 0, sizeof(one));
    one.type = REDIS_REPLY_ARRAY;
    one.elements = 1;
    one.element = &elp;

    kept = 0;
    m = gchb_merge_batch(rc, &one, &kept, 10);

    if (m > 0) {
        gchb_log("info", "redis: town \"%s\": the on-site counter of "
                 "session %s merged into " GCH_KEY_S(GCH_KEY_LEFT) " at bit "
                 GCH_OFF_ONSITE, town, sid, town, sid);
    }

    return m == -1 ? -1 : (m == -2 ? 1 : 0);
}


/* See gchb.h. */
int
gchb_merge_counters(redisContext *rc, const char *town, long *merged)
{
    int          rv;
    long         n, kept, m, m1, busy;
    char         cursor[32], match[GCHB_MIG_KEY_MAX];
    size_t       i;
    redisReply  *r, one, fit;

    memset(&one, 0, sizeof(one));
    memset(&fit, 0, sizeof(fit));
    n = 0;
    kept = 0;
    busy = 0;
    rv = 0;
    strcpy(cursor, "0");
    snprintf(match, sizeof(match), GCH_KEY_T(GCH_N_S "*:" GCH_KEY_ONSITE_OLD),
             town);

    do {
        r = gchb_mig_scan(rc, cursor, sizeof(cursor), match);
        if (r == NULL) {
            return -1;
        }

        fit.element = r->element[1]->elements
                      ? malloc(r->element[1]->elements
                               * sizeof(redisReply *))
                      : NULL;
        if (r->element[1]->elements && fit.element == NULL) {
            freeReplyObject(r);
            return -1;
        }

        gchb_mig_onsite_keys(r->element[1], &fit, &kept);
        m = gchb_merge_batch(rc, &fit, &kept, 3);

        /* a batch that kept moving: one session at a time, and one that
         * still moves is left for the next run */
        for (i = 0; m == -2 && i < fit.elements; i++) {
            one.type = REDIS_REPLY_ARRAY;
            one.elements = 1;
            one.element = &fit.element[i];
            m1 = gchb_merge_batch(rc, &one, &kept, 10);
            if (m1 == -1) {
                m = -1;
            } else if (m1 == -2) {
                busy++;
            } else {
                n += m1;
            }
        }

        if (m == -1) {
            rv = -1;
        } else if (m > 0) {
            n += m;
        }

        free(fit.element);
        freeReplyObject(r);

    } while (rv == 0 && strcmp(cursor, "0") != 0);

    if (n || kept || busy) {
        gchb_log(kept || busy ? "warn" : "info", "redis: town \"%s\": %ld "
                 "on-site counters merged into " GCH_KEY_S(GCH_KEY_LEFT)
                 " at bit " GCH_OFF_ONSITE ", %ld kept (no :left, or not a "
                 "u32), %ld left for a later run (their sessions kept "
                 "moving)", town, n, town, "<sid>", kept, busy);
    }

    if (merged) {
        *merged = n;
    }

    return rv < 0 ? -1 : (busy ? 1 : 0);
}
