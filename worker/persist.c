/*
 * persist.c -- the stream {T}:stream into PostgreSQL, exactly once.
 *
 * The worker reads with plain XREAD after the last id it persisted, kept
 * in PostgreSQL (stream_position, migration 0050).  Each batch is
 * checked entry by entry (a booking's compact demande, decoded by the
 * engine; else with yajl, an object with a string "type"), then written
 * inside ONE transaction by batch.c: with COPY when the batch holds
 * compact demandes only (the rush, copy.c), else as one JSON array by a few
 * set-based statements:
 *
 *   void   -> insert into voided_booking, delete those bookings;
 *   book   -> ONE statement: insert into demande ... on conflict do
 *             nothing, insert into booking ... on conflict do nothing,
 *             skipping ids present in voided_booking, and the e-mails;
 *   cancel -> booking_cancellation (booking_id or booking_ids, at_ms,
 *             billed), applied to booking: status 'cancelled';
 *   absence-> demande (kind 'justification'), booking_justification,
 *             applied to booking: justified;
 *   and one outbox row (an e-mail) per book, cancel and absence entry,
 *   unique (kind, ref): a replay queues nothing more.
 *
 * The same transaction moves stream_position from the id the batch was
 * read after to its last entry's (a compare-and-set): the rows and the
 * position commit together.  A crash before COMMIT reads the batch again
 * from the old position; after it, from the new one: each entry is
 * written once, with no pending list in Redis (a consumer group wrote an
 * XCLAIM per entry read and an XACK per batch to Redis's AOF, 12 % of a
 * booking's bytes there).  Two workers reading the same entries: the
 * second finds the position moved (batch.c returns -3), writes nothing,
 * and reads the position again.  Batches are serialized across workers
 * by an advisory lock (GCHB_LOCK_PERSIST).
 *
 * An entry PostgreSQL refuses on its own (a constraint) or that is not a
 * demande is tried again every GCHW_RETRY_MS, the entries after it
 * waiting (they are persisted in the stream's order); after max_attempts
 * attempts it is copied to the dead-letter stream with its error and the
 * position moves past it.  It shows in lag_ms meanwhile (stream.c, with
 * the dead letters and the trimming).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "gchw.h"


struct gchw_persist_s {
    const gchb_conf_t  *conf;
    int                 have_pos;         /* pos read from PostgreSQL */
    char                pos[64];          /* the last id persisted */
    char                fail_id[64];      /* the entry that failed last */
    int                 fails;            /* its attempts so far */
    int64_t             retry_ms;         /* its next attempt, not before */
    int64_t             check_ms;         /* the stream checked against
                                             pos, next (0: at once) */
    int                 wait_ms;          /* XREAD's BLOCK, 0: the
                                             setting batch_wait_ms */
    int64_t             gather_ms;        /* the next XREAD, not before
                                             (batch_gather_ms) */
};


/* See gchw.h. */
gchw_persist_t *
gchw_persist_new(const gchb_conf_t *conf)
{
    gchw_persist_t  *p;

    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return NULL;
    }

    p->conf = conf;

    return p;
}


/* See gchw.h. */
void
gchw_persist_wait(gchw_persist_t *p, int ms)
{
    p->wait_ms = ms;
}


/* See gchw.h; NULL is a no-op. */
void
gchw_persist_free(gchw_persist_t *p)
{
    free(p);
}


/* See gchw.h. */
const char *
gchw_persist_position(gchw_persist_t *p)
{
    return p->have_pos ? p->pos : NULL;
}


/* See gchw.h. */
int
gchw_position_read(PGconn *pg, char *out, size_t size)
{
    int        rc;
    PGresult  *res;

    res = PQexec(pg, "select last_id from stream_position where id = 1");

    rc = -1;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        gchb_log("error", "postgres: stream_position: %s",
                 PQerrorMessage(pg));

    } else if (PQntuples(res) != 1) {
        gchb_log("error", "postgres: stream_position has no row "
                 "(guichetctl migrate: 0050)");

    } else {
        snprintf(out, size, "%s", PQgetvalue(res, 0, 0));
        rc = 0;
    }

    PQclear(res);

    return rc;
}


/*
 * The position moved from "from" to "to" alone (an entry dead-lettered):
 * 1 moved, 0 moved already by another worker, -2 PostgreSQL error.
 */
static int
gchw_position_move(PGconn *pg, const char *from, const char *to)
{
    int           rc;
    PGresult     *res;
    const char   *params[2];

    params[0] = from;
    params[1] = to;

    res = PQexecParams(pg, "update stream_position set last_id = $2"
                       " where id = 1 and last_id = $1", 2, NULL, params,
                       NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        gchb_log("error", "postgres: stream_position: %s",
                 PQerrorMessage(pg));
        rc = -2;

    } else {
        rc = strcmp(PQcmdTuples(res), "1") == 0 ? 1 : 0;
    }

    PQclear(res);

    return rc;
}


/*
 * Is the entry's "d" a compact demande or an object with a string
 * "type"?  0 if not, else its GCHW_T_* bit (GCHW_T_ALL for a type of no
 * statement of ours).
 */
static int
gchw_entry_ok(const char *d, size_t len)
{
    int          ok;
    char         ebuf[128], *copy;
    yajl_val     v, t;
    const char  *path[] = { "type", NULL };

    if (len && d[0] == GCH_DM_MAGIC[0]) {
        /* a booking's compact demande (engine/src/demande.c); a swap's
         * released booking is a cancellation too (batch.c) */
        gch_dm_t  dm;
        size_t    i;

        if (gch_dm_decode(&dm, d, len, &gch_alloc_std) != GCH_OK) {
            return 0;
        }

        ok = GCHW_T_BOOK;
        for (i = 0; i < dm.ncells; i++) {
            if (dm.cells[i].released_len) {
                ok |= GCHW_T_CANCEL;
            }
        }

        gch_dm_free(&dm, &gch_alloc_std);
        return ok;
    }

    copy = malloc(len + 1);
    if (copy == NULL) {
        return 0;
    }
    memcpy(copy, d, len);
    copy[len] = '\0';

    v = yajl_tree_parse(copy, ebuf, sizeof(ebuf));
    free(copy);

    if (v == NULL) {
        return 0;
    }

    t = yajl_tree_get(v, path, yajl_t_string);
    ok = 0;

    if (YAJL_IS_OBJECT(v) && t != NULL) {
        ok = strcmp(t->u.string, "book") == 0 ? GCHW_T_BOOK
             : strcmp(t->u.string, "cancel") == 0 ? GCHW_T_CANCEL
             : strcmp(t->u.string, "absence") == 0 ? GCHW_T_ABSENCE
             : strcmp(t->u.string, "void") == 0 ? GCHW_T_VOID
             : GCHW_T_ALL;
    }

    yajl_tree_free(v);

    return ok;
}


/* The "d" field of one XREADGROUP/XAUTOCLAIM entry [id, [f, v, ...]]. */
static const redisReply *
gchw_entry_d(const redisReply *e)
{
    size_t             i;
    const redisReply  *f;

    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2
        || e->element[1]->type != REDIS_REPLY_ARRAY)
    {
        return NULL;                 /* deleted entry (nil fields) */
    }

    f = e->element[1];
    for (i = 0; i + 1 < f->elements; i += 2) {
        if (f->element[i]->type == REDIS_REPLY_STRING
            && strcmp(f->element[i]->str, "d") == 0
            && f->element[i + 1]->type == REDIS_REPLY_STRING)
        {
            return f->element[i + 1];
        }
    }

    return NULL;
}

/* The position is read again from PostgreSQL before the next batch. */
static void
gchw_position_lost(gchw_persist_t *p)
{
    p->have_pos = 0;
}


/*
 * The stream's last generated id below the position: the stream is not
 * the one the position was taken on.  Redis lost its data and the stream
 * was made again (its ids come from Redis's clock, which may be behind
 * the old one's), or a replica that had not every entry was promoted.
 * Entries with ids below the position would then never be read: the
 * position goes back to 0-0 and the whole stream is read again.  What
 * was persisted already (a promoted replica's entries) is a replay, which
 * writes nothing twice (the "on conflict" statements, batch.c).  Checked
 * at each new connection to Redis, before the stream is read or trimmed
 * on it, and once a second.  0, -1 Redis error, -2 PostgreSQL error.
 */
static int
gchw_stream_check(gchw_persist_t *p, redisContext *rc, PGconn *pg)
{
    int           moved;
    char          last[64];
    size_t        i;
    redisReply   *r;

    r = redisCommand(rc, "XINFO STREAM " GCHW_STREAM, gchb_town);
    if (r == NULL) {
        gchb_log("error", "redis: %s", rc->errstr);
        return -1;
    }

    strcpy(last, "0-0");                     /* no stream: none */

    if (r->type == REDIS_REPLY_ARRAY) {
        for (i = 0; i + 1 < r->elements; i += 2) {
            if (r->element[i]->type == REDIS_REPLY_STRING
                && strcmp(r->element[i]->str, "last-generated-id") == 0
                && r->element[i + 1]->type == REDIS_REPLY_STRING)
            {
                snprintf(last, sizeof(last), "%s", r->element[i + 1]->str);
            }
        }

    } else if (r->type == REDIS_REPLY_ERROR
               && strstr(r->str, "no such key") == NULL)
    {
        gchb_log("error", "redis: XINFO STREAM: %s", r->str);
        freeReplyObject(r);
        return -1;
    }

    freeReplyObject(r);

    if (gchw_id_cmp(last, p->pos) >= 0) {
        return 0;
    }

    moved = gchw_position_move(pg, p->pos, "0-0");
    if (moved != 1) {
        gchw_position_lost(p);
        return moved < 0 ? -2 : 0;
    }

    gchb_log("warn", "stream position %s is past the stream's last id %s "
             "(Redis lost its data, or a replica was promoted): the stream "
             "is read again from its start", p->pos, last);
    strcpy(p->pos, "0-0");

    return 0;
}


/*
 * The position a worker from before 0050 left in its consumer group
 * "persist" (XREADGROUP, XACK after COMMIT): every entry up to the
 * group's last delivered id was acknowledged, so persisted, but for those
 * still pending (read by a worker that may have died before its COMMIT).
 * So the position is the id just before the first pending entry, or the
 * last delivered id when none is pending.  Taken once, when the position
 * is still 0-0 and the group exists (the first start after the upgrade);
 * then the group is destroyed (its pending list and the XCLAIMs it would
 * cost are gone).  Without it the upgrade read the whole stream left (a
 * day of entries, stream_keep_ms) again as replays: 758,826 entries of a
 * bench town took minutes, and new bookings waited behind them.
 * 0, -1 Redis error, -2 PostgreSQL error.
 */
static int
gchw_position_from_group(gchw_persist_t *p, redisContext *rc, PGconn *pg)
{
    int                 moved;
    char                to[64];
    size_t              i, j;
    long long           pending;
    unsigned long long  ms, seq;
    redisReply         *r, *x;
    const redisReply   *g;
    const char         *last;

    r = redisCommand(rc, "XINFO GROUPS " GCHW_STREAM, gchb_town);
    if (r == NULL) {
        gchb_log("error", "redis: %s", rc->errstr);
        return -1;
    }

    last = NULL;
    pending = 0;

    for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        g = r->element[i];
        if (g->type != REDIS_REPLY_ARRAY) {
            continue;
        }
        for (j = 0; j + 1 < g->elements; j += 2) {
            if (g->element[j]->type != REDIS_REPLY_STRING) {
                continue;
            }
            if (strcmp(g->element[j]->str, "name") == 0
                && (g->element[j + 1]->type != REDIS_REPLY_STRING
                    || strcmp(g->element[j + 1]->str, "persist") != 0))
            {
                break;                              /* another group */
            }
            if (strcmp(g->element[j]->str, "pending") == 0
                && g->element[j + 1]->type == REDIS_REPLY_INTEGER)
            {
                pending = g->element[j + 1]->integer;
            }
            if (strcmp(g->element[j]->str, "last-delivered-id") == 0
                && g->element[j + 1]->type == REDIS_REPLY_STRING)
            {
                last = g->element[j + 1]->str;
            }
        }
        if (last != NULL) {
            break;
        }
    }

    if (last == NULL) {                 /* no stream, or no such group */
        freeReplyObject(r);
        return 0;
    }

    snprintf(to, sizeof(to), "%s", last);
    freeReplyObject(r);

    if (pending > 0) {
        x = redisCommand(rc, "XPENDING " GCHW_STREAM " persist", gchb_town);
        if (x == NULL) {
            gchb_log("error", "redis: %s", rc->errstr);
            return -1;
        }
        if (x->type != REDIS_REPLY_ARRAY || x->elements < 2
            || x->element[1]->type != REDIS_REPLY_STRING
            || sscanf(x->element[1]->str, "%llu-%llu", &ms, &seq) != 2)
        {
            gchb_log("error", "redis: XPENDING persist: unexpected reply");
            freeReplyObject(x);
            return -1;
        }
        freeReplyObject(x);

        /* the id just before the first pending one */
        if (seq > 0) {
            snprintf(to, sizeof(to), "%llu-%llu", ms, seq - 1);
        } else if (ms > 0) {
            snprintf(to, sizeof(to), "%llu-18446744073709551615", ms - 1);
        } else {
            strcpy(to, "0-0");
        }
    }

    moved = gchw_position_move(pg, "0-0", to);
    if (moved != 1) {
        gchw_position_lost(p);
        return moved < 0 ? -2 : 0;
    }

    gchb_log("info", "stream position taken from the consumer group "
             "persist of the worker before 0050: %s (%lld entries pending "
             "are read again); the group is destroyed", to, pending);
    strcpy(p->pos, to);

    x = redisCommand(rc, "XGROUP DESTROY " GCHW_STREAM " persist",
                     gchb_town);
    if (x == NULL) {
        gchb_log("error", "redis: %s", rc->errstr);
        return -1;
    }
    freeReplyObject(x);

    return 0;
}


/*
 * The entry at the head of what is left to persist failed on its own (not
 * a demande, or refused by PostgreSQL).  Tried again after GCHW_RETRY_MS,
 * the entries after it waiting; its max_attempts-th failure copies it to
 * the dead-letter stream with its error, then moves the position past it:
 * XADD first, the position second, so a crash in between dead-letters it
 * again (the field "id" names the original entry: a duplicate is
 * recognisable).  Returns 1 dead-lettered (the position moved), 0 left
 * for a later attempt (or moved by another worker), -1 Redis error, -2
 * PostgreSQL error.
 */
static int
gchw_dead_letter(gchw_persist_t *p, redisContext *rc, PGconn *pg,
    const redisReply *e, const redisReply *d, const char *error)
{
    int           i, moved;
    char          nbuf[24], tbuf[24];
    const char   *id, *argv[13];
    size_t        lens[13];
    redisReply   *r;

    id = e->element[0]->str;

    if (strcmp(p->fail_id, id) != 0) {
        snprintf(p->fail_id, sizeof(p->fail_id), "%s", id);
        p->fails = 0;
    }
    p->fails++;

    if (p->fails < p->conf->max_attempts) {
        gchb_log("error", "stream entry %s failed (attempt %d of %d): "
                 "%s; tried again in %d ms, the entries after it waiting",
                 id, p->fails, p->conf->max_attempts, error, GCHW_RETRY_MS);
        p->retry_ms = gchb_now_ms() + GCHW_RETRY_MS;
        return 0;
    }

    snprintf(nbuf, sizeof(nbuf), "%d", p->fails);
    snprintf(tbuf, sizeof(tbuf), "%lld", (long long) gchb_now_ms());

    argv[0] = "XADD";       argv[1] = gchb_keys.stream_dead; argv[2] = "*";
    argv[3] = "id";         argv[4] = id;
    argv[5] = "error";      argv[6] = error;
    argv[7] = "deliveries"; argv[8] = nbuf;
    argv[9] = "at_ms";      argv[10] = tbuf;
    argv[11] = "d";         argv[12] = d ? d->str : "";
    for (i = 0; i < 12; i++) {
        lens[i] = strlen(argv[i]);
    }
    lens[12] = d ? d->len : 0;

    r = redisCommandArgv(rc, 13, argv, lens);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        gchb_log("error", "redis: XADD " GCHW_DEAD ": %s", gchb_town,
                 r ? r->str : rc->errstr);
        if (r) {
            freeReplyObject(r);
        }
        return -1;
    }
    freeReplyObject(r);

    moved = gchw_position_move(pg, p->pos, id);
    if (moved != 1) {
        gchw_position_lost(p);
        return moved;
    }

    gchb_log("error", "stream entry %s moved to " GCHW_DEAD " after %d "
             "attempts: %s", id, gchb_town, p->fails, error);

    snprintf(p->pos, sizeof(p->pos), "%s", id);
    p->fail_id[0] = '\0';
    p->fails = 0;

    return 1;
}


/*
 * Writes the n entries (up to the one whose id is "to") in one
 * transaction that moves the position there.  0 written, -1 refused by
 * PostgreSQL (err), -2 PostgreSQL error, -3 the position had moved (read
 * again, nothing written).
 */
static int
gchw_write(gchw_persist_t *p, PGconn *pg, const gchw_entry_t *e,
    size_t n, int types, const char *to, char *err, size_t errlen)
{
    int              rc;
    gchw_position_t  pos;

    pos.from = p->pos;
    pos.to = to;

    rc = gchw_batch_write(pg, e, n, types, &pos, err, errlen);

    if (rc == 0) {
        snprintf(p->pos, sizeof(p->pos), "%s", to);
        p->fail_id[0] = '\0';
        p->fails = 0;

    } else if (rc == -3) {
        gchb_log("info", "stream position %s moved by another worker: "
                 "read again", p->pos);
        gchw_position_lost(p);

    } else if (rc == -2) {
        gchw_position_lost(p);
    }

    return rc;
}


/*
 * What to do with each entry of list: ok[i] 0 not a demande, 1 to write.
 * The ones to write go into ents (*nok of them), their types or'ed into
 * *types.
 */
static void
gchw_entries_sort(const redisReply *list, unsigned char *ok, size_t *nok,
    int *types, gchw_entry_t *ents)
{
    int                 t;
    size_t              i;
    const redisReply   *d, *e;

    for (i = 0; i < list->elements; i++) {
        e = list->element[i];
        d = gchw_entry_d(e);
        t = d ? gchw_entry_ok(d->str, d->len) : 0;
        if (t == 0) {
            continue;
        }

        ok[i] = 1;
        *types |= t;
        ents[*nok].d = d->str;
        ents[*nok].len = d->len;
        ents[*nok].type = t;
        (*nok)++;
    }
}


/*
 * The batch had a data error or an entry that is not a demande: one
 * transaction per entry, in order, until one fails (tried again later, or
 * dead-lettered).  The number persisted, or -1 (Redis) or -2
 * (PostgreSQL's connection).
 */
static int
gchw_entries_one_by_one(gchw_persist_t *p, redisContext *rc, PGconn *pg,
    const redisReply *list, const unsigned char *ok,
    const gchw_entry_t *ents)
{
    int                 rc2, done;
    char                err[512];
    size_t              i, k;
    const redisReply   *d, *e;

    done = 0;
    k = 0;                           /* ents[k]: the next entry to write */

    for (i = 0; i < list->elements; i++) {
        e = list->element[i];
        d = gchw_entry_d(e);

        if (ok[i] != 1) {
            rc2 = gchw_dead_letter(p, rc, pg, e, d,
                                   "not a demande: field d must be a JSON "
                                   "object with a string \"type\"");
            if (rc2 != 1) {
                return rc2 == 0 ? done : rc2;
            }
            continue;
        }

        rc2 = gchw_write(p, pg, &ents[k], 1, ents[k].type,
                         e->element[0]->str, err, sizeof(err));
        k++;
        if (rc2 == -2) {
            return -2;
        }

        if (rc2 == -3) {
            return done;
        }

        if (rc2 == -1) {
            rc2 = gchw_dead_letter(p, rc, pg, e, d, err);
            if (rc2 != 1) {
                return rc2 == 0 ? done : rc2;
            }
            continue;
        }

        done++;
    }

    return done;
}


/*
 * Persists the entries of XREAD's entry list: in one transaction when
 * every one is a demande and PostgreSQL takes them, else one by one.
 * Returns entries persisted, -1 Redis error, -2 PostgreSQL connection
 * error.
 */
static int
gchw_persist_entries(gchw_persist_t *p, redisContext *rc, PGconn *pg,
    const redisReply *list)
{
    int                 rc2, types;
    char                err[512];
    size_t              n, nok;
    unsigned char      *ok;
    gchw_entry_t       *ents;
    const redisReply   *last;

    n = list->elements;
    if (n == 0) {
        return 0;
    }

    ok = calloc(n, 1);
    ents = calloc(n, sizeof(gchw_entry_t));
    types = 0;
    nok = 0;

    if (ok == NULL || ents == NULL) {
        rc2 = -1;
        goto done;
    }

    gchw_entries_sort(list, ok, &nok, &types, ents);

    if (nok == n) {
        last = list->element[n - 1];
        rc2 = gchw_write(p, pg, ents, nok, types, last->element[0]->str,
                         err, sizeof(err));
        if (rc2 == 0) {
            rc2 = (int) nok;
            goto done;
        }

        if (rc2 == -3) {
            rc2 = 0;
            goto done;
        }

        if (rc2 == -2) {
            goto done;
        }
    }

    rc2 = gchw_entries_one_by_one(p, rc, pg, list, ok, ents);

done:

    free(ok);
    free(ents);

    return rc2;
}


/* See gchw.h. */
void
gchw_persist_reread(gchw_persist_t *p)
{
    gchw_position_lost(p);
    p->check_ms = 0;
}


/* See gchw.h. */
int
gchw_persist_round(gchw_persist_t *p, redisContext *rc, PGconn *pg)
{
    int                n, wait;
    int64_t            now;
    redisReply        *r;
    const redisReply  *list;
    const gchb_conf_t *conf;

    conf = p->conf;
    wait = p->wait_ms ? p->wait_ms : conf->batch_wait_ms;

    if (!p->have_pos) {
        if (gchw_position_read(pg, p->pos, sizeof(p->pos)) != 0) {
            return -2;
        }
        p->have_pos = 1;

        if (strcmp(p->pos, "0-0") == 0) {
            n = gchw_position_from_group(p, rc, pg);
            if (n != 0) {
                return n;
            }
            if (!p->have_pos) {
                return 0;            /* moved by another worker: reread */
            }
        }
    }

    now = gchb_now_ms();
    if (now >= p->check_ms) {
        n = gchw_stream_check(p, rc, pg);
        if (n != 0) {
            return n;
        }
        p->check_ms = now + 1000;
        if (!p->have_pos) {
            return 0;                /* moved by another worker: reread */
        }
    }

    if (p->fails) {
        /* an entry failed: its next attempt not before retry_ms */
        if (now < p->retry_ms) {
            gchb_sleep_ms(p->retry_ms - now < wait
                          ? (int) (p->retry_ms - now) : wait);
            return 0;
        }
    }

    if (p->gather_ms > now + conf->batch_gather_ms) {
        p->gather_ms = 0;       /* the clock went back: read at once */
    }

    if (now < p->gather_ms) {
        /* a busy stream: its entries gather into the next batch */
        gchb_sleep_ms(p->gather_ms - now < wait
                      ? (int) (p->gather_ms - now) : wait);
        return 0;
    }

    r = redisCommand(rc, "XREAD COUNT %d BLOCK %d STREAMS " GCHW_STREAM
                     " %s", conf->batch_size, wait, gchb_town, p->pos);

    if (r == NULL) {
        gchb_log("error", "redis: %s", rc->errstr);
        return -1;
    }

    if (r->type == REDIS_REPLY_ERROR) {
        gchb_log("error", "redis: %s", r->str);
        freeReplyObject(r);
        return -1;
    }

    list = NULL;

    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1
        && r->element[0]->type == REDIS_REPLY_ARRAY
        && r->element[0]->elements == 2)
    {
        /* XREAD: [[stream, entries]] */
        list = r->element[0]->element[1];
    }

    if (list == NULL || list->type != REDIS_REPLY_ARRAY) {
        /* nil: BLOCK timed out */
        freeReplyObject(r);
        return 0;
    }

    /*
     * Entries came but fewer than a batch: the stream is busy and the
     * worker keeps up.  The next read waits until batch_gather_ms after
     * this one, so that a rush is persisted in a few big transactions (a
     * commit, its WAL flush and fdatasync, a few per second instead of
     * hundreds) rather than as fast as PostgreSQL commits.  A full batch
     * (the worker lags) or an idle stream (XREAD blocks) reads at once.
     */
    p->gather_ms = 0;
    if (conf->batch_gather_ms > 0 && list->elements > 0
        && list->elements < (size_t) conf->batch_size)
    {
        p->gather_ms = now + conf->batch_gather_ms;
    }

    n = gchw_persist_entries(p, rc, pg, list);

    freeReplyObject(r);

    return n;
}
