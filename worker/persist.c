/*
 * persist.c -- the stream {T}:stream into PostgreSQL, exactly once.
 *
 * The worker reads with the consumer group "persist" (created at id 0, so
 * nothing written before the group existed is missed).  Each batch is
 * checked entry by entry (a booking's compact demande, decoded by the
 * engine; else with yajl, an object with a string "type"), then written
 * inside ONE transaction by batch.c: with COPY when the batch holds
 * compact demandes only (the rush), else as one JSON array by a few
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
 * Cancellations and justifications are applied whichever of them or the
 * booking arrives first (an entry may wait at a dead consumer while later
 * ones are read).  Batches are serialized across workers by an advisory
 * lock (GCHB_LOCK_PERSIST), so that two workers consuming at once cannot
 * each miss the other's uncommitted booking or cancellation.
 *
 * XACK is sent only after COMMIT.  A crash between the two redelivers the
 * batch, and the "on conflict do nothing" inserts make the replay a no-op:
 * at-least-once delivery plus idempotent writes = exactly-once effect.
 *
 * Entries first go to this consumer's pending list; after a PostgreSQL
 * error they are read again from there (XREADGROUP ... 0).  Entries of
 * dead consumers come back with XAUTOCLAIM once idle claim_idle_ms.  An
 * entry PostgreSQL refuses on its own (a constraint) or that is not JSON
 * stays pending, is logged, and is retried at each XAUTOCLAIM; it shows
 * in lag_ms (stream.c, with the dead letters and the trimming).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "gchw.h"


struct gchw_persist_s {
    const gchb_conf_t  *conf;
    int                 read_pending;     /* re-read our pending list */
    char                pending_from[64]; /* cursor in it */
    int64_t             next_claim_ms;
    char                claim_from[64];   /* XAUTOCLAIM cursor */
    int                 wait_ms;          /* XREADGROUP's BLOCK, 0: the
                                             setting batch_wait_ms */
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
    p->read_pending = 1;
    strcpy(p->pending_from, "0");
    strcpy(p->claim_from, "0-0");

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
int
gchw_persist_group(redisContext *rc)
{
    redisReply  *r;
    int          ok;

    r = redisCommand(rc, "XGROUP CREATE " GCHW_STREAM " " GCHW_GROUP
                     " 0 MKSTREAM", gchb_town);
    if (r == NULL) {
        gchb_log("error", "redis: %s", rc->errstr);
        return -1;
    }

    ok = r->type != REDIS_REPLY_ERROR
         || strncmp(r->str, "BUSYGROUP", 9) == 0;

    if (!ok) {
        gchb_log("error", "redis: XGROUP CREATE: %s", r->str);

    } else if (r->type != REDIS_REPLY_ERROR) {
        gchb_log("info", "created consumer group " GCHW_GROUP " on "
                 GCHW_STREAM, gchb_town);
    }

    freeReplyObject(r);

    return ok ? 0 : -1;
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


static int
gchw_ack(redisContext *rc, const char **ids, size_t n)
{
    size_t        i;
    const char  **argv;
    redisReply   *r;

    if (n == 0) {
        return 0;
    }

    argv = malloc((n + 3) * sizeof(char *));
    if (argv == NULL) {
        return -1;
    }

    argv[0] = "XACK";
    argv[1] = gchb_keys.stream;
    argv[2] = GCHW_GROUP;
    for (i = 0; i < n; i++) {
        argv[i + 3] = ids[i];
    }

    r = redisCommandArgv(rc, (int) n + 3, argv, NULL);
    free(argv);

    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        gchb_log("error", "redis: XACK: %s", r ? r->str : rc->errstr);
        if (r) {
            freeReplyObject(r);
        }
        return -1;
    }

    freeReplyObject(r);
    return 0;
}


/*
 * The delivery counter of a pending entry (XPENDING's extended form), 0
 * when it is not pending (any more), -1 on a Redis error.
 */
static long long
gchw_deliveries(redisContext *rc, const char *id)
{
    long long    n;
    redisReply  *r, *e;

    r = redisCommand(rc, "XPENDING " GCHW_STREAM " " GCHW_GROUP " %s %s 1",
                     gchb_town, id, id);
    if (r == NULL) {
        gchb_log("error", "redis: %s", rc->errstr);
        return -1;
    }

    n = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        e = r->element[0];
        if (e->type == REDIS_REPLY_ARRAY && e->elements == 4
            && e->element[3]->type == REDIS_REPLY_INTEGER)
        {
            n = e->element[3]->integer;
        }

    } else if (r->type == REDIS_REPLY_ERROR) {
        gchb_log("error", "redis: XPENDING: %s", r->str);
        n = -1;
    }

    freeReplyObject(r);
    return n;
}


/*
 * An entry failed on its own (not a demande, or refused by PostgreSQL).
 * Once delivered max_attempts times, it is copied to the dead-letter
 * stream with its error, then acknowledged: XADD first, XACK second, so a
 * crash in between leaves it pending and it is dead-lettered again (the
 * field "id" names the original entry: a duplicate is recognisable).
 * Returns 1 dead-lettered, 0 left pending, -1 Redis error.
 */
static int
gchw_dead_letter(gchw_persist_t *p, redisContext *rc, const redisReply *e,
    const redisReply *d, const char *error)
{
    int           i;
    char          nbuf[24], tbuf[24];
    long long     n;
    const char   *id, *argv[13];
    size_t        lens[13];
    redisReply   *r;

    id = e->element[0]->str;

    n = gchw_deliveries(rc, id);
    if (n < 0) {
        return -1;
    }

    if (n < p->conf->max_attempts) {
        gchb_log("error", "stream entry %s failed (delivery %lld of %d): "
                 "%s; left pending", id, n, p->conf->max_attempts, error);
        return 0;
    }

    snprintf(nbuf, sizeof(nbuf), "%lld", n);
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

    if (gchw_ack(rc, &id, 1) != 0) {
        return -1;
    }

    gchb_log("error", "stream entry %s moved to " GCHW_DEAD " after %lld "
             "deliveries: %s", id, gchb_town, n, error);

    return 1;
}


/*
 * What to do with each entry of list: ok[i] 0 not a demande, 1 to write
 * (ty[i] its type), 2 deleted from the stream.  The ones to write go into
 * ents, their ids into ids (*nok of them), their types or'ed into *types.
 */
static void
gchw_entries_sort(const redisReply *list, unsigned char *ok,
    unsigned char *ty, const char **ids, size_t *nok, int *types,
    gchw_entry_t *ents)
{
    int                 t;
    size_t              i;
    const redisReply   *d, *e;

    for (i = 0; i < list->elements; i++) {
        e = list->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 1) {
            continue;
        }

        if (e->elements != 2 || e->element[1]->type != REDIS_REPLY_ARRAY) {
            ok[i] = 2;               /* deleted: nothing to persist */
            continue;
        }

        d = gchw_entry_d(e);
        t = d ? gchw_entry_ok(d->str, d->len) : 0;
        if (t == 0) {
            continue;
        }

        ok[i] = 1;
        ty[i] = (unsigned char) t;
        *types |= t;
        ents[*nok].d = d->str;
        ents[*nok].len = d->len;
        ents[*nok].type = t;
        ids[(*nok)++] = e->element[0]->str;
    }
}


/*
 * The batch had a data error: one transaction per entry to write, the
 * refused ones to the dead letters.  The number persisted, or -1 (Redis)
 * or -2 (PostgreSQL's connection).
 */
static int
gchw_entries_one_by_one(gchw_persist_t *p, redisContext *rc, PGconn *pg,
    const redisReply *list, const unsigned char *ok,
    const unsigned char *ty, const char **ids)
{
    int                 rc2, done;
    char                err[512];
    size_t              i;
    gchw_entry_t        one;
    const redisReply   *d, *e;

    done = 0;

    for (i = 0; i < list->elements; i++) {
        if (ok[i] != 1) {
            continue;
        }

        e = list->element[i];
        d = gchw_entry_d(e);
        one.d = d->str;
        one.len = d->len;
        one.type = ty[i];

        rc2 = gchw_batch_write(pg, &one, 1, ty[i], NULL, err, sizeof(err));
        if (rc2 == -2) {
            return -2;
        }

        if (rc2 == -1) {
            if (gchw_dead_letter(p, rc, e, d, err) < 0) {
                return -1;
            }
            continue;
        }

        ids[0] = e->element[0]->str;
        if (gchw_ack(rc, ids, 1) != 0) {
            return -1;
        }
        done++;
    }

    return done;
}


/* The entries not to write: deleted ones acknowledged, the ones that are
 * not demandes to the dead letters.  0 or -1 (Redis). */
static int
gchw_entries_others(gchw_persist_t *p, redisContext *rc,
    const redisReply *list, const unsigned char *ok, const char **ids)
{
    size_t              i;
    const redisReply   *e;

    for (i = 0; i < list->elements; i++) {
        e = list->element[i];
        if (ok[i] == 2) {
            ids[0] = e->element[0]->str;
            if (gchw_ack(rc, ids, 1) != 0) {
                return -1;
            }

        } else if (ok[i] == 0 && e->type == REDIS_REPLY_ARRAY
                   && e->elements >= 1)
        {
            if (gchw_dead_letter(p, rc, e, gchw_entry_d(e),
                                 "not a demande: field d must be a JSON "
                                 "object with a string \"type\"") < 0)
            {
                return -1;
            }
        }
    }

    return 0;
}


/*
 * Persists the entries of an array reply (XREADGROUP's or XAUTOCLAIM's
 * entry list): the demandes in one transaction (one by one when it has a
 * data error), acknowledged after COMMIT; then the others.  Returns
 * entries persisted, -1 Redis error, -2 PostgreSQL connection error.
 */
static int
gchw_persist_entries(gchw_persist_t *p, redisContext *rc, PGconn *pg,
    const redisReply *list)
{
    int                 rc2, done, types;
    char                err[512];
    size_t              n, nok;
    const char        **ids;
    gchw_entry_t       *ents;
    unsigned char      *ok, *ty;

    n = list->elements;
    if (n == 0) {
        return 0;
    }

    ids = calloc(n, sizeof(char *));
    ok = calloc(n, 1);
    ty = calloc(n, 1);
    ents = calloc(n, sizeof(gchw_entry_t));
    types = 0;
    nok = 0;

    if (ids == NULL || ok == NULL || ty == NULL || ents == NULL) {
        rc2 = -1;
        goto done;
    }

    gchw_entries_sort(list, ok, ty, ids, &nok, &types, ents);

    done = 0;

    if (nok) {
        rc2 = gchw_batch_write(pg, ents, nok, types, NULL, err,
                               sizeof(err));

        if (rc2 == -2) {
            goto done;
        }

        if (rc2 == 0) {
            done = (int) nok;
            if (gchw_ack(rc, ids, nok) != 0) {
                rc2 = -1;
                goto done;
            }

        } else {
            rc2 = gchw_entries_one_by_one(p, rc, pg, list, ok, ty, ids);
            if (rc2 < 0) {
                goto done;
            }
            done = rc2;
        }
    }

    rc2 = gchw_entries_others(p, rc, list, ok, ids) == 0 ? done : -1;

done:

    free(ents);
    free(ids);
    free(ok);
    free(ty);

    return rc2;
}


/* See gchw.h. */
void
gchw_persist_reread(gchw_persist_t *p)
{
    p->read_pending = 1;
    strcpy(p->pending_from, "0");
}


/* See gchw.h. */
int
gchw_persist_round(gchw_persist_t *p, redisContext *rc, PGconn *pg)
{
    int                n;
    int64_t            now;
    redisReply        *r;
    const redisReply  *list;
    const gchb_conf_t *conf;

    conf = p->conf;
    now = gchb_now_ms();

    if (p->read_pending) {
        r = redisCommand(rc, "XREADGROUP GROUP " GCHW_GROUP " %s COUNT %d"
                         " STREAMS " GCHW_STREAM " %s", conf->consumer,
                         conf->batch_size, gchb_town, p->pending_from);

    } else if (now >= p->next_claim_ms) {
        p->next_claim_ms = now + 1000;
        r = redisCommand(rc, "XAUTOCLAIM " GCHW_STREAM " " GCHW_GROUP
                         " %s %d %s COUNT %d", gchb_town, conf->consumer,
                         conf->claim_idle_ms, p->claim_from, conf->batch_size);

    } else {
        r = redisCommand(rc, "XREADGROUP GROUP " GCHW_GROUP " %s COUNT %d"
                         " BLOCK %d STREAMS " GCHW_STREAM " >",
                         conf->consumer, conf->batch_size,
                         p->wait_ms ? p->wait_ms : conf->batch_wait_ms,
                         gchb_town);
    }

    if (r == NULL) {
        gchb_log("error", "redis: %s", rc->errstr);
        return -1;
    }

    if (r->type == REDIS_REPLY_ERROR) {
        if (strncmp(r->str, "NOGROUP", 7) == 0) {
            freeReplyObject(r);
            return gchw_persist_group(rc) == 0 ? 0 : -1;
        }
        gchb_log("error", "redis: %s", r->str);
        freeReplyObject(r);
        return -1;
    }

    list = NULL;

    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2
        && r->element[0]->type == REDIS_REPLY_STRING
        && r->element[1]->type == REDIS_REPLY_ARRAY)
    {
        /* XAUTOCLAIM: [next cursor, entries, (deleted ids)] */
        snprintf(p->claim_from, sizeof(p->claim_from), "%s",
                 r->element[0]->str);
        list = r->element[1];
        if (list->elements) {
            gchb_log("info", "claimed %zu idle entries of other consumers",
                     list->elements);
        }

    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 1
               && r->element[0]->type == REDIS_REPLY_ARRAY
               && r->element[0]->elements == 2)
    {
        /* XREADGROUP: [[stream, entries]] */
        list = r->element[0]->element[1];
    }

    if (list == NULL || list->type != REDIS_REPLY_ARRAY) {
        /* nil: BLOCK timed out */
        if (p->read_pending) {
            p->read_pending = 0;
        }
        freeReplyObject(r);
        return 0;
    }

    if (p->read_pending) {
        if (list->elements == 0) {
            p->read_pending = 0;
            strcpy(p->pending_from, "0");

        } else {
            snprintf(p->pending_from, sizeof(p->pending_from), "%s",
                     list->element[list->elements - 1]->element[0]->str);
        }
    }

    n = gchw_persist_entries(p, rc, pg, list);

    if (n == -2) {
        /* everything stays pending: read it again after reconnecting */
        gchw_persist_reread(p);
    }

    freeReplyObject(r);

    return n;
}

