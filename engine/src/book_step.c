/*
 * book_step.c -- the booking saga's Redis steps: the commands of steps one,
 * two and three, and what their EXEC replies decide (the idempotency
 * verdict, each cell's outcome, the fence, the compensation).  See book.h.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "book.h"


/*
 * Step one's first command: SET the in-flight record "P <hash> <attempt>
 * <plan>" NX GET EX <inflight ttl> on {T}:f:<fid>:idem:<key>.
 */
static void
gch_step1_record(gch_book_t *b, gch_cmdlist_t *l)
{
    char        ttl[24];
    gch_buf_t   rec;
    const char *argv[7];
    size_t      argvlen[7];

    gch_buf_init(&rec, b->a);
    gch_buf_lit(&rec, "P ");
    gch_buf_add(&rec, b->hash, 32);
    gch_buf_lit(&rec, " ");
    gch_buf_add(&rec, gch_attempt_id(b), strlen(gch_attempt_id(b)));
    gch_buf_lit(&rec, " ");
    gch_plan_json(b, &rec);

    gch_lltoa(ttl, (long long) b->in.inflight_ttl_s);

    argv[0] = "SET"; argvlen[0] = 3;
    argv[1] = b->idem_rkey; argvlen[1] = strlen(b->idem_rkey);
    argv[2] = rec.data ? rec.data : ""; argvlen[2] = rec.len;
    argv[3] = "NX"; argvlen[3] = 2;
    argv[4] = "GET"; argvlen[4] = 3;
    argv[5] = "EX"; argvlen[5] = 2;
    argv[6] = ttl; argvlen[6] = strlen(ttl);
    if (rec.failed) {
        l->failed = 1;
    }
    gch_cmdlist_argv(l, 7, argv, argvlen);
    gch_buf_free(&rec);
}


/* unit dependencies: who holds the units a cell needs, before us */
static void
gch_step1_needs(gch_book_t *b, gch_cmdlist_t *l)
{
    int          q;
    char         key[GCH_KEY_MAX];
    size_t       i;
    gch_cell_t  *c;

    for (i = 0; i < b->ncells; i++) {
        c = &b->cells[i];
        if (c->reason || c->needs == 0) {
            continue;
        }

        c->needs_at = b->cells_at;

        for (q = 0; q < 32; q++) {
            if (!(c->needs & (1u << q))) {
                continue;
            }

            gch_dep_key(key, sizeof(key), b, c, q);
            gch_cmdlist_cmd(l, "GET", key, NULL);
            b->cells_at++;
        }
    }
}


/* {T}:f:<fid>:waits into key and its field "<sid> <cid>"; -1: too long */
static int
gch_waits_field(gch_book_t *b, const gch_cell_t *c, char *key, char *field)
{
    size_t  slen, clen;

    slen = strlen(c->session->id);
    clen = strlen(c->child->id);
    if (gch_key3(key, GCH_KEY_MAX, b->in.town->keys.f, b->in.family->id,
                 strlen(b->in.family->id), ":" GCH_KEY_WAITS) < 0
        || slen + clen + 2 > GCH_KEY_MAX)
    {
        return -1;
    }

    memcpy(field, c->session->id, slen);
    field[slen] = ' ';
    memcpy(field + slen + 1, c->child->id, clen + 1);

    return 0;
}


/*
 * A cell that asked for the waiting list ("waitlist": true), right after
 * its place's BITFIELD, in the same MULTI: whatever the BITFIELD says,
 * HSETNX {T}:s:<sid>:waiters <cid> "<bid> <fid> <at_ms>" (0: the child is
 * on the list already), RPUSH {T}:s:<sid>:wait <cid>, LPOS of the child
 * (its first place, from 0), SADD {T}:waiting <sid> (the sessions the
 * worker's promoter watches) and HSET {T}:f:<fid>:waits "<sid> <cid>"
 * <bid> (the family's places): an attempt whose step two never comes
 * leaves a list entry that is seen, promoted and shown.  The list's order
 * is the order in which Redis ran the step ones; step two takes the push
 * back unless the cell was refused full (a duplicate is taken back too:
 * the first place stays).
 */
static void
gch_step1_wait(gch_book_t *b, gch_cmdlist_t *l, gch_cell_t *c)
{
    char         key[GCH_KEY_MAX], val[GCH_KEY_MAX], ms[24];
    size_t       flen, mlen;
    const char  *fid;

    fid = b->in.family->id;
    flen = strlen(fid);
    mlen = gch_lltoa(ms, (long long) b->in.now_ms);

    if (GCH_BID_LEN + flen + mlen + 3 > sizeof(val)) {
        l->failed = 1;
        return;
    }

    memcpy(val, c->bid, GCH_BID_LEN);
    val[GCH_BID_LEN] = ' ';
    memcpy(val + GCH_BID_LEN + 1, fid, flen);
    val[GCH_BID_LEN + 1 + flen] = ' ';
    memcpy(val + GCH_BID_LEN + 2 + flen, ms, mlen + 1);

    gch_place_key(key, sizeof(key), b, c->session, GCH_KEY_WAITERS);
    gch_cmdlist_cmd(l, "HSETNX", key, c->child->id, val, NULL);
    gch_place_key(key, sizeof(key), b, c->session, GCH_KEY_WAIT);
    gch_cmdlist_cmd(l, "RPUSH", key, c->child->id, NULL);
    gch_cmdlist_cmd(l, "LPOS", key, c->child->id, NULL);
    gch_cmdlist_cmd(l, "SADD", b->in.town->keys.waiting, c->session->id,
                    NULL);

    if (gch_waits_field(b, c, key, val) != 0) {
        l->failed = 1;
        return;
    }

    gch_cmdlist_cmd(l, "HSET", key, val, c->bid, NULL);
    c->wl = 1;
}


/*
 * The counter cell c takes its place from: {T}:s:<sid>:left, its u32 at
 * bit 0 (online) or at bit 32 (the counter), or, for an item accepting an
 * offer ("offer": true, issue 23), the place held for its child,
 * {T}:s:<sid>:hold:<cid> (1 while the offer stands: an acceptance racing
 * the offer's expiry takes it once, as any place).  The key into key, the
 * u32's bit offset returned.
 */
static const char *
gch_cell_place_key(char *key, size_t size, gch_book_t *b, gch_cell_t *c)
{
    char  post[GCH_KEY_MAX];

    if (c->item->offer && !b->in.onsite) {
        snprintf(post, sizeof(post), ":" GCH_KEY_HOLD ":%s", c->child->id);
        (void) gch_key3(key, size, b->in.town->keys.s, c->session->id,
                        strlen(c->session->id), post);
        return "0";
    }

    gch_place_key(key, size, b, c->session, GCH_KEY_LEFT);
    return GCH_LEFT_OFF(b);
}


/*
 * An open cell's claims, SET "<sid> <bid>" NX GET EXAT <the day after>,
 * one per quantum, then the decrement of its quota.
 */
static void
gch_step1_claims(gch_book_t *b, gch_cmdlist_t *l, gch_cell_t *c)
{
    int          q, klen;
    char         key[GCH_KEY_MAX], val[GCH_KEY_MAX], exat[24];
    size_t       n, slen;
    const char  *argv[7], *off;
    size_t       argvlen[7];

    /* claims expire the day after the session's day */
    gch_lltoa(exat, (long long) gch_paris_to_unix(c->session->date + 2,
                                                   0));

    /* "<sid> <bid>" */
    slen = strlen(c->session->id);
    n = slen + 1 + GCH_BID_LEN;
    if (n >= sizeof(val)) {
        l->failed = 1;
        return;
    }

    memcpy(val, c->session->id, slen);
    val[slen] = ' ';
    memcpy(val + slen + 1, c->bid, GCH_BID_LEN + 1);

    argv[0] = "SET"; argvlen[0] = 3;
    argv[1] = key;
    argv[2] = val; argvlen[2] = n;
    argv[3] = "NX"; argvlen[3] = 2;
    argv[4] = "GET"; argvlen[4] = 3;
    argv[5] = "EXAT"; argvlen[5] = 4;
    argv[6] = exat; argvlen[6] = strlen(exat);

    for (q = 0; q < 32; q++) {
        if (!(c->quanta & (1u << q))) {
            continue;
        }

        klen = gch_claim_key(key, sizeof(key), b, c, q);
        if (klen < 0) {
            l->failed = 1;
            continue;
        }

        argvlen[1] = (size_t) klen;
        gch_cmdlist_argv(l, 7, argv, argvlen);
    }

    off = gch_cell_place_key(key, sizeof(key), b, c);
    gch_cmdlist_cmd(l, "BITFIELD", key, "OVERFLOW", "FAIL", "INCRBY",
                    "u32", off, "-1", NULL);

    if (c->item->waitlist && !c->item->offer && !b->in.onsite) {
        gch_step1_wait(b, l, c);
    }
}


static void
gch_step1_build(gch_book_t *b)
{
    char            ms[24];
    size_t          i;
    gch_cmdlist_t  *l;

    l = &b->step1;
    gch_ids(b);

    if (gch_member(b) != 0) {
        l->failed = 1;
        return;
    }

    gch_lltoa(ms, (long long) b->in.now_ms);

    gch_cmdlist_cmd(l, "MULTI", NULL);
    gch_step1_record(b, l);
    gch_cmdlist_cmd(l, "INCR", b->in.town->keys.seq_demande, NULL);
    gch_cmdlist_cmd(l, "ZADD", b->in.town->keys.inflight, ms, b->member,
                    NULL);
    gch_cmdlist_cmd(l, "GET", b->in.town->keys.catalogue_gen, NULL);

    b->cells_at = GCH_STEP1_CELLS;
    gch_step1_needs(b, l);

    for (i = 0; i < b->ncells; i++) {
        if (b->cells[i].reason == GCH_REASON_NONE) {
            gch_step1_claims(b, l, &b->cells[i]);
        }
    }

    gch_swap_step1(b, l);

    gch_cmdlist_cmd(l, "EXEC", NULL);
}


/* See gch.h: NULL when memory is short (answer 503, nothing was sent). */
const gch_cmds_t *
gch_book_step1(gch_book_t *b)
{
    if (!b->step1_built) {
        b->step1_built = 1;
        gch_step1_build(b);
    }

    if (b->step1.failed) {
        return NULL;
    }

    b->state = GCH_BOOK_STEP1;
    return &b->step1.list;
}


/*
 * Step two's part of the waiting list (gch_step1_wait): a cell refused
 * full stays as step one left it; otherwise our push is taken back (LREM
 * ... -1: the last, the child's first place stays) and the entry and the
 * family's field too when they were ours; a booked cell takes the child
 * off the list altogether (an earlier place of it too).
 */
static void
gch_undo_wait(gch_book_t *b, gch_cmdlist_t *l, gch_cell_t *c)
{
    char     key[GCH_KEY_MAX], field[GCH_KEY_MAX];

    if (gch_waits_field(b, c, key, field) != 0) {
        l->failed = 1;
        return;
    }

    if (c->reason == GCH_REASON_NONE) {
        /* booked: the child leaves the list, an earlier place too */
        gch_cmdlist_cmd(l, "HDEL", key, field, NULL);
        gch_place_key(key, sizeof(key), b, c->session, GCH_KEY_WAIT);
        gch_cmdlist_cmd(l, "LREM", key, "0", c->child->id, NULL);
        gch_place_key(key, sizeof(key), b, c->session, GCH_KEY_WAITERS);
        gch_cmdlist_cmd(l, "HDEL", key, c->child->id, NULL);
        return;
    }

    if (GCH_WAITLISTED(c) && c->wl_new) {
        return;                          /* it stays, as step one left it */
    }

    gch_place_key(key, sizeof(key), b, c->session, GCH_KEY_WAIT);
    gch_cmdlist_cmd(l, "LREM", key, "-1", c->child->id, NULL);

    if (!GCH_WAITLISTED(c) && c->wl_new) {
        /* refused otherwise: the entry step one made goes too */
        gch_place_key(key, sizeof(key), b, c->session, GCH_KEY_WAITERS);
        gch_cmdlist_cmd(l, "HDEL", key, c->child->id, NULL);
        if (gch_waits_field(b, c, key, field) == 0) {
            gch_cmdlist_cmd(l, "HDEL", key, field, NULL);
        }
    }
}


/* Undo what step one took for cell c (claims set, place taken). */
static void
gch_undo_cell(gch_book_t *b, gch_cmdlist_t *l, gch_cell_t *c)
{
    int          q;
    char         key[GCH_KEY_MAX];
    const char  *off;

    for (q = 0; q < 32; q++) {
        if ((c->claimed & (1u << q))
            && gch_claim_key(key, sizeof(key), b, c, q) > 0)
        {
            gch_cmdlist_cmd(l, "DEL", key, NULL);
        }
    }

    if (c->took_place) {
        off = gch_cell_place_key(key, sizeof(key), b, c);
        gch_cmdlist_cmd(l, "BITFIELD", key, "OVERFLOW", "FAIL", "INCRBY",
                        "u32", off, "1", NULL);
    }

    if (c->wl) {
        gch_undo_wait(b, l, c);
    }

    gch_swap_unlock(b, l, c);            /* a swap's marker, if taken */
}


/*
 * Reads one cell's claim and place replies (starting at *k in the EXEC
 * array) and decides its outcome.  Returns -1 on an unexpected reply.
 */
static int
gch_cell_outcome(gch_book_t *b, gch_cell_t *c, const redisReply *exec,
    size_t *k)
{
    int                q;
    const char        *sp;
    const redisReply  *r, *bf;
    const char        *held;

    held = NULL;

    for (q = 0; q < 32; q++) {
        if (!(c->quanta & (1u << q))) {
            continue;
        }

        if (*k >= exec->elements) {
            return -1;
        }

        r = exec->element[(*k)++];

        if (r->type == REDIS_REPLY_NIL) {
            c->claimed |= 1u << q;

        } else if (r->type == REDIS_REPLY_STRING
                   && gch_swap_adopts(c, r->str, r->len)
                   && !(r->len > strlen(c->session->id)
                        && r->str[strlen(c->session->id)] == ' '
                        && memcmp(r->str, c->session->id,
                                  strlen(c->session->id)) == 0))
        {
            /* the booking this cell replaces holds it: kept, not a
             * conflict (step two names the new booking in it) */
            c->adopted |= 1u << q;

        } else if (r->type == REDIS_REPLY_STRING) {
            held = r->str;

            /* "<sid> <bid>": the same session means already booked */
            sp = strrchr(r->str, ' ');
            if (sp && (size_t) (sp - r->str) == strlen(c->session->id)
                && memcmp(r->str, c->session->id, sp - r->str) == 0)
            {
                c->reason = GCH_REASON_ALREADY_BOOKED;
            }

        } else {
            return -1;
        }
    }

    if (*k >= exec->elements) {
        return -1;
    }

    bf = exec->element[(*k)++];
    if (bf->type != REDIS_REPLY_ARRAY || bf->elements != 1) {
        return -1;
    }

    c->took_place = (bf->element[0]->type == REDIS_REPLY_INTEGER);

    if (c->wl) {
        /* HSETNX, RPUSH, LPOS, SADD, HSET (gch_step1_wait) */
        if (*k + 5 > exec->elements
            || exec->element[*k]->type != REDIS_REPLY_INTEGER)
        {
            return -1;
        }

        c->wl_new = (exec->element[*k]->integer == 1);
        r = exec->element[*k + 2];
        c->position = (r->type == REDIS_REPLY_INTEGER) ? r->integer + 1 : 0;
        *k += 5;
    }

    if (held && c->reason == GCH_REASON_NONE) {
        c->reason = GCH_REASON_CONFLICT;

    } else if (!held && !c->took_place) {
        c->reason = GCH_REASON_FULL;
    }

    (void) b;
    return 0;
}


/*
 * How long the answer is kept for a retry: a request with no cell
 * confirmed keeps nothing else and may be kept less (refused_ttl_s).
 */
static int64_t
gch_answer_ttl(const gch_book_t *b)
{
    size_t  i;

    if (b->in.refused_ttl_s <= 0
        || b->in.refused_ttl_s >= b->in.idem_ttl_s)
    {
        return b->in.idem_ttl_s;
    }

    for (i = 0; i < b->ncells; i++) {
        if (b->cells[i].reason == GCH_REASON_NONE) {
            return b->in.idem_ttl_s;
        }
    }

    return b->in.refused_ttl_s;
}


/*
 * A cell entered in a draw (docs/architecture.md, "Opening by draw"):
 * HSET {T}:a:<aid>:entries "<fid> <cid> <sid>" "<at_ms> <idx> <0|1>",
 * so that a family's second request for the same cell replaces its
 * first; with the answer's record, in the same MULTI.
 */
static void
gch_step2_entry(gch_book_t *b, gch_cmdlist_t *l, gch_cell_t *c, size_t i)
{
    int          n;
    char         key[GCH_KEY_MAX], field[GCH_KEY_MAX], value[64];

    n = snprintf(key, sizeof(key), GCH_KEY_A(GCH_KEY_ENTRIES),
                 b->in.town->id, c->session->activity->id);
    if (n < 0 || (size_t) n >= sizeof(key)
        || gch_draw_field(field, sizeof(field), b->in.family->id,
                          c->child->id, strlen(c->child->id),
                          c->session->id, strlen(c->session->id)) < 0)
    {
        l->failed = 1;
        return;
    }

    snprintf(value, sizeof(value), "%lld %zu %d",
             (long long) b->in.now_ms, i, c->item->waitlist ? 1 : 0);

    gch_cmdlist_cmd(l, "HSET", key, field, value, NULL);
}


/*
 * A confirmed cell that accepted an offer: the offer is over (its place
 * counter, its end, its member of {T}:offers, the session's count of held
 * places) and the child leaves the list's entries, in step two's MULTI.
 */
static void
gch_offer_done(gch_book_t *b, gch_cmdlist_t *l, gch_cell_t *c)
{
    char  key[GCH_KEY_MAX], member[GCH_KEY_MAX];

    gch_cell_place_key(key, sizeof(key), b, c);
    gch_cmdlist_cmd(l, "DEL", key, NULL);
    gch_place_key(key, sizeof(key), b, c->session, GCH_KEY_HELD);
    gch_cmdlist_cmd(l, "DECR", key, NULL);
    gch_place_key(key, sizeof(key), b, c->session, GCH_KEY_OFFER);
    gch_cmdlist_cmd(l, "HDEL", key, c->child->id, NULL);
    gch_place_key(key, sizeof(key), b, c->session, GCH_KEY_WAITTRY);
    gch_cmdlist_cmd(l, "HDEL", key, c->child->id, NULL);
    snprintf(key, sizeof(key), GCH_KEY_OFFERS, b->in.town->id);
    snprintf(member, sizeof(member), "%s %s", c->session->id, c->child->id);
    gch_cmdlist_cmd(l, "ZREM", key, member, NULL);

    if (!c->wl) {
        gch_undo_wait(b, l, c);          /* waiters, the family's waits */
    }
}


static void
gch_step2_build(gch_book_t *b)
{
    int             flen;
    char            key[GCH_KEY_MAX], fkey[GCH_KEY_MAX], ttl[24];
    char           *plan;
    size_t          i, len;
    gch_cell_t     *c;
    gch_cmdlist_t  *l;
    const char     *argv[8];
    size_t          argvlen[8];

    l = &b->step2;
    gch_lltoa(ttl, (long long) gch_answer_ttl(b));
    flen = gch_key3(fkey, sizeof(fkey), b->in.town->keys.f,
                    b->in.family->id, strlen(b->in.family->id),
                    ":" GCH_KEY_BOOKINGS);
    if (flen < 0) {
        l->failed = 1;
        return;
    }

    gch_cmdlist_cmd(l, "MULTI", NULL);

    argv[0] = "SET"; argvlen[0] = 3;
    argv[1] = b->idem_rkey; argvlen[1] = strlen(b->idem_rkey);
    argv[2] = b->stored; argvlen[2] = b->stored_len;
    argv[3] = "XX"; argvlen[3] = 2;
    argv[4] = "GET"; argvlen[4] = 3;
    argv[5] = "EX"; argvlen[5] = 2;
    argv[6] = ttl; argvlen[6] = strlen(ttl);
    gch_cmdlist_argv(l, 7, argv, argvlen);

    gch_cmdlist_cmd(l, "ZREM", b->in.town->keys.inflight, b->member, NULL);

    for (i = 0; i < b->ncells; i++) {
        c = &b->cells[i];

        if (c->session == NULL) {
            continue;
        }

        if (c->reason == GCH_REASON_ENTERED) {
            gch_step2_entry(b, l, c, i);
            continue;
        }

        if (c->reason) {
            gch_undo_cell(b, l, c);
            continue;
        }

        if (c->wl) {
            gch_undo_wait(b, l, c);      /* booked: off the list */
        }

        if (c->item->offer && !b->in.onsite) {
            gch_offer_done(b, l, c);
        }

        gch_place_key(key, sizeof(key), b, c->session, GCH_BOOKED(b));
        gch_cmdlist_cmd(l, "SADD", key, c->bid, NULL);

        plan = gch_planning_json(b, c, &len);
        if (plan == NULL) {
            l->failed = 1;
            continue;
        }

        argv[0] = "HSET"; argvlen[0] = 4;
        argv[1] = fkey; argvlen[1] = (size_t) flen;
        argv[2] = c->bid; argvlen[2] = GCH_BID_LEN;
        argv[3] = plan; argvlen[3] = len;
        gch_cmdlist_argv(l, 4, argv, argvlen);
        b->a->free(b->a->ctx, plan);

        gch_swap_step2(b, l, c, fkey, (size_t) flen);
    }

    /* the compact demande, whole: in the stream and the family's demande
     * list (the record's is bare) */
    argv[0] = "XADD"; argvlen[0] = 4;
    argv[1] = b->in.town->keys.stream;
    argvlen[1] = b->in.town->keys.stream_len;
    argv[2] = "*"; argvlen[2] = 1;
    argv[3] = "d"; argvlen[3] = 1;
    argv[4] = b->entry; argvlen[4] = b->entry_len;
    gch_cmdlist_argv(l, 5, argv, argvlen);

    (void) gch_demandes_key(key, sizeof(key), b);
    argv[0] = "LPUSH"; argvlen[0] = 5;
    argv[1] = key; argvlen[1] = strlen(key);
    argv[2] = b->entry; argvlen[2] = b->entry_len;
    gch_cmdlist_argv(l, 3, argv, argvlen);

    gch_cmdlist_cmd(l, "EXEC", NULL);
}


/* Replays, 409 and 422: give back whatever step one took. */
static void
gch_compensate_all(gch_book_t *b)
{
    size_t       i, before;
    gch_cell_t  *c;

    gch_cmdlist_cmd(&b->step2, "MULTI", NULL);
    before = b->step2.list.ncmds;

    for (i = 0; i < b->ncells; i++) {
        c = &b->cells[i];
        if (c->session) {
            c->position = 0;             /* nothing stays on a list */
            gch_undo_cell(b, &b->step2, c);
        }
    }

    if (b->step2.list.ncmds == before) {
        gch_cmdlist_free(&b->step2);     /* nothing to undo */
        return;
    }

    gch_cmdlist_cmd(&b->step2, "EXEC", NULL);
}


/* Reads claim and place replies only to learn what to undo. */
static int
gch_scan_taken(gch_book_t *b, const redisReply *exec)
{
    size_t       i, k;
    gch_cell_t  *c;

    k = b->cells_at;
    for (i = 0; i < b->ncells; i++) {
        c = &b->cells[i];
        if (c->reason) {
            continue;
        }

        if (gch_cell_outcome(b, c, exec, &k) != 0) {
            return -1;
        }
    }

    return gch_swap_locks(b, exec);
}


static int
gch_idem_verdict(gch_book_t *b, const redisReply *r)
{
    const char  *p;
    size_t       n;

    /* "P <hash> ..." or "D <hash> <answer>" */

    if (r->len < 35 || r->str[1] != ' ' || r->str[34] != ' ') {
        gch_error_body(b, 503, "unavailable",
                       "Le service est momentanément indisponible.");
        return -1;
    }

    if (memcmp(r->str + 2, b->hash, 32) != 0) {
        gch_error_body(b, 422, "idempotency_key_reused",
                       "Cette clé Idempotency-Key a déjà servi pour une "
                       "autre demande.");
        return 0;
    }

    if (r->str[0] == 'P') {
        gch_error_body(b, 409, "request_in_progress",
                       "Cette demande est déjà en cours de traitement.");
        return 0;
    }

    /* the compact demande (or the JSON answer of a record written
     * before it) */
    p = r->str + 35;
    n = r->len - 35;

    b->body = gch_dm_json_in(p, n, GCH_DM_ANSWER, b->in.family->id,
                             b->in.idem_key, b->in.idem_len, b->a,
                             &b->body_len);
    if (b->body == NULL) {
        if (b->body_len == 0) {
            gch_error_body(b, 503, "unavailable",
                           "Le service est momentanément indisponible.");
            return -1;
        }

        b->body_len = 0;
        return -1;
    }

    b->status = gch_dm_all_entered(p, n, b->a) ? 202 : 200;
    b->replayed = 1;

    return 0;
}


/*
 * Redis lost its data (no catalogue generation) or went back in time (an
 * older one than the catalogue this request was planned with): nothing
 * may be sold on counters that are not the truth.
 */
static int
gch_data_lost(gch_book_t *b, const redisReply *gen)
{
    long long  g;

    if (gen->type != REDIS_REPLY_STRING) {
        return 1;
    }

    g = strtoll(gen->str, NULL, 10);

    return g <= 0 || g < b->in.catalogue_gen;
}


/* Undo all of step one (its record too) and answer this error. */
static int
gch_abort(gch_book_t *b, const redisReply *exec, int status,
    const char *code, const char *message)
{
    b->state = GCH_BOOK_DONE;

    if (gch_scan_taken(b, exec) != 0) {
        return GCH_EREDIS;
    }

    gch_compensate_all(b);

    if (exec->element[0]->type == REDIS_REPLY_NIL) {
        /* the record step one created */
        if (b->step2.list.ncmds == 0) {
            gch_cmdlist_cmd(&b->step2, "MULTI", NULL);
        } else {
            b->a->free(b->a->ctx, b->step2.list.cmds[--b->step2.list.ncmds]
                                      .data);    /* reopen before EXEC */
        }

        gch_cmdlist_cmd(&b->step2, "DEL", b->idem_rkey, NULL);
        gch_cmdlist_cmd(&b->step2, "ZREM", b->in.town->keys.inflight,
                        b->member, NULL);
        gch_cmdlist_cmd(&b->step2, "EXEC", NULL);
    }

    gch_error_body(b, status, code, message);

    return b->step2.failed ? GCH_ENOMEM : GCH_OK;
}


/* Undo all of step one and answer 503 until the worker has rebuilt. */
static int
gch_fail_closed(gch_book_t *b, const redisReply *exec)
{
    return gch_abort(b, exec, 503, "unavailable",
                     "Le guichet se remet d'une panne : rien n'a été "
                     "réservé. Réessayez dans un instant.");
}


/*
 * See gch.h: instead of step one, the family is past its budget
 * (gch_family_charge()): 429 rate_limited, nothing sent, nothing kept.
 */
int
gch_book_over_budget(gch_book_t *b, long long retry_after)
{
    b->state = GCH_BOOK_DONE;
    b->retry_after = retry_after > 0 ? retry_after : GCH_FAMILY_WINDOW_S;

    gch_error_body(b, 429, "rate_limited",
                   "Trop de demandes de réservation pour cette "
                   "famille en peu de temps : rien n'a été "
                   "réservé. Réessayez dans un moment.");

    return b->body ? GCH_OK : GCH_ENOMEM;
}


/* "D-%06lld" of the demande number */
static void
gch_request_id(gch_book_t *b)
{
    char    num[24];
    size_t  n, pad;

    n = gch_lltoa(num, b->number);
    pad = (b->number >= 0 && n < 6) ? 6 - n : 0;

    memcpy(b->request_id, "D-", 2);
    memset(b->request_id + 2, '0', pad);
    memcpy(b->request_id + 2 + pad, num, n + 1);
}


/*
 * See gch.h.  Returns GCH_EREDIS on an unexpected reply (the answer is
 * then 503), GCH_ENOMEM when memory is short.
 */
int
gch_book_on_step1(gch_book_t *b, const redisReply *exec)
{
    char         prefix[35];
    size_t       i, k, len;
    gch_cell_t  *c;
    const redisReply  *r;

    if (exec == NULL || exec->type != REDIS_REPLY_ARRAY
        || exec->elements < b->cells_at)
    {
        b->state = GCH_BOOK_DONE;
        return GCH_EREDIS;
    }

    if (gch_data_lost(b, exec->element[3])) {
        return gch_fail_closed(b, exec);
    }

    r = exec->element[0];

    if (r->type != REDIS_REPLY_NIL) {

        /* the key was known: replay, in progress or reused */

        b->state = GCH_BOOK_DONE;

        if (!gch_reply_is_str(r) || gch_scan_taken(b, exec) != 0) {
            return GCH_EREDIS;
        }

        if (gch_idem_verdict(b, r) != 0) {
            return b->body ? GCH_EREDIS : GCH_ENOMEM;
        }

        gch_compensate_all(b);

        /* this attempt's own member in {T}:inflight, with what it undoes
         * (the first attempt's member, if it is live, is its own) */
        if (b->step2.list.ncmds == 0) {
            gch_cmdlist_cmd(&b->step2, "MULTI", NULL);
        } else {
            b->a->free(b->a->ctx,
                       b->step2.list.cmds[--b->step2.list.ncmds].data);
        }

        gch_cmdlist_cmd(&b->step2, "ZREM", b->in.town->keys.inflight,
                        b->member, NULL);
        gch_cmdlist_cmd(&b->step2, "EXEC", NULL);

        return b->step2.failed ? GCH_ENOMEM : GCH_OK;
    }

    if (exec->element[1]->type != REDIS_REPLY_INTEGER) {
        b->state = GCH_BOOK_DONE;
        return GCH_EREDIS;
    }

    b->number = exec->element[1]->integer;
    gch_request_id(b);

    k = b->cells_at;
    for (i = 0; i < b->ncells; i++) {
        c = &b->cells[i];
        if (c->reason) {
            continue;
        }

        if (gch_cell_outcome(b, c, exec, &k) != 0) {
            b->state = GCH_BOOK_DONE;
            return GCH_EREDIS;
        }
    }

    switch (gch_swap_outcome(b, exec)) {
    case 0:
        break;
    case GCH_ENOMEM:
        return GCH_ENOMEM;
    default:
        b->state = GCH_BOOK_DONE;
        return GCH_EREDIS;
    }

    gch_needs_outcome(b, exec);
    gch_week_outcome(b);

    /* the stored record "D <hash> <compact demande>", and the answer */

    memcpy(prefix, "D ", 2);
    memcpy(prefix + 2, b->hash, 32);
    prefix[34] = ' ';

    b->stored = gch_compact(b, prefix, 35, 1, &len);
    if (b->stored == NULL) {
        return GCH_ENOMEM;
    }

    b->stored_len = len;
    b->entry = gch_compact(b, "", 0, 0, &b->entry_len);
    if (b->entry == NULL) {
        return GCH_ENOMEM;
    }

    b->body = gch_answer_json(b, &b->body_len);
    if (b->body == NULL) {
        return GCH_ENOMEM;
    }

    b->status = 200;
    for (i = 0; i < b->ncells; i++) {
        if (b->cells[i].reason != GCH_REASON_ENTERED) {
            break;
        }
    }
    if (b->ncells && i == b->ncells) {
        b->status = 202;               /* every item entered in a draw */
    }

    gch_step2_build(b);

    return b->step2.failed ? GCH_ENOMEM : GCH_OK;
}


const gch_cmds_t *
gch_book_step2(gch_book_t *b)
{
    if (b->step2.list.ncmds == 0) {
        return NULL;
    }

    if (b->state == GCH_BOOK_STEP1) {
        b->state = GCH_BOOK_STEP2;
    }

    return &b->step2.list;
}


static void
gch_step3_build(gch_book_t *b, const redisReply *exec)
{
    int             n;
    char            key[GCH_KEY_MAX], fkey[GCH_KEY_MAX];
    size_t          i;
    char           *entry;
    gch_buf_t       o;
    gch_cell_t     *c;
    gch_cmdlist_t  *l;

    l = &b->step3;
    gch_cmdlist_cmd(l, "MULTI", NULL);

    (void) gch_key3(fkey, sizeof(fkey), b->in.town->keys.f,
                    b->in.family->id, strlen(b->in.family->id),
                    ":" GCH_KEY_BOOKINGS);

    gch_buf_init(&o, b->a);
    gch_buf_lit(&o, "{\"type\":\"void\",\"family_id\":");
    gch_buf_jstrz(&o, b->in.family->id);
    gch_buf_lit(&o, ",\"idem\":");
    gch_buf_jstr(&o, b->in.idem_key, b->in.idem_len);
    gch_buf_lit(&o, ",\"booking_ids\":[");

    n = 0;

    for (i = 0; i < b->ncells; i++) {
        c = &b->cells[i];
        if (c->reason) {
            continue;
        }

        if (n++) {
            gch_buf_lit(&o, ",");
        }

        gch_buf_jstrz(&o, c->bid);

        gch_place_key(key, sizeof(key), b, c->session, GCH_BOOKED(b));
        gch_cmdlist_cmd(l, "SREM", key, c->bid, NULL);
        gch_cmdlist_cmd(l, "HDEL", fkey, c->bid, NULL);
    }

    gch_buf_lit(&o, "]");
    gch_swap_restore(b, exec, &o);
    gch_buf_lit(&o, "}");

    entry = gch_buf_detach(&o, NULL);
    if (entry == NULL) {
        l->failed = 1;
        return;
    }

    gch_cmdlist_cmd(l, "XADD", b->in.town->keys.stream, "*", "d", entry,
                    NULL);
    b->a->free(b->a->ctx, entry);

    gch_cmdlist_cmd(l, "DEL", b->idem_rkey, NULL);
    gch_cmdlist_cmd(l, "EXEC", NULL);
}


/*
 * See gch.h.  GCH_EFENCED: the reaper released this attempt before step
 * two ran; send gch_book_step3() and answer 503.
 */
int
gch_book_on_step2(gch_book_t *b, const redisReply *exec)
{
    const redisReply  *r;

    b->state = GCH_BOOK_DONE;

    if (b->replayed || (b->status != 200 && b->status != 202)
        || b->stored == NULL)
    {
        return GCH_OK;                   /* a compensation: no verdict */
    }

    if (exec == NULL || exec->type != REDIS_REPLY_ARRAY
        || exec->elements < 1)
    {
        return GCH_EREDIS;
    }

    r = exec->element[0];

    /* our own "P <hash> <attempt id> ...": not another attempt's with the
     * same body, which owns the key since the reaper released ours */
    if (!gch_reply_is_str(r) || !gch_own_record(b, r->str, r->len)) {
        gch_step3_build(b, exec);
        gch_body_release(b);
        gch_error_body(b, 503, "unavailable",
                       "Le service est momentanément indisponible, "
                       "rien n'a été réservé. Réessayez.");
        return GCH_EFENCED;
    }

    /* a swap's old bookings: their places back, the markers dropped */
    gch_swap_step3(b, exec);

    /* the last reply is LPUSH's: the length of the demande list */
    r = exec->element[exec->elements - 1];
    if (r->type == REDIS_REPLY_INTEGER && r->integer > GCH_DEMANDES_TRIM) {
        char  key[GCH_KEY_MAX];

        if (gch_demandes_key(key, sizeof(key), b) >= 0) {
            gch_cmdlist_cmd(&b->step3, "LTRIM", key, "0", GCH_DEMANDES_LAST,
                            NULL);
        }
    }

    return GCH_OK;
}


const gch_cmds_t *
gch_book_step3(gch_book_t *b)
{
    /* a step three cut short by memory would leave a MULTI open */
    return (b->step3.list.ncmds && !b->step3.failed) ? &b->step3.list
                                                      : NULL;
}


int
gch_book_answer_after_step3(const gch_book_t *b)
{
    return b->swap_step3 && gch_book_step3((gch_book_t *) b) != NULL;
}


/* ----- a draw's batches (worker/draw.c) ------------------------------ */

/* See gch.h. */
int
gch_book_gives_back(const gch_book_t *b, const gch_session_t *s)
{
    size_t             i;
    const gch_cell_t  *c;
    int                fresh;

    fresh = (b->status == 200 || b->status == 202) && !b->replayed;

    for (i = 0; i < b->ncells; i++) {
        c = &b->cells[i];
        if (c->session == NULL || (s != NULL && c->session != s)) {
            continue;
        }

        if (!fresh) {
            /* a replay, 409 or 422: step two gives back all it took */
            if (c->took_place || c->wl) {
                return 1;
            }
            continue;
        }

        if ((c->reason != GCH_REASON_NONE && c->took_place)
            || (c->wl && !(GCH_WAITLISTED(c) && c->wl_new)))
        {
            return 1;
        }
    }

    return 0;
}


/* See gch.h. */
int
gch_book_wants(const gch_book_t *b, const gch_session_t *s)
{
    size_t  i;

    if ((b->status != 200 && b->status != 202) || b->replayed) {
        return 0;
    }

    for (i = 0; i < b->ncells; i++) {
        if (b->cells[i].session == s
            && b->cells[i].reason == GCH_REASON_FULL)
        {
            return 1;
        }
    }

    return 0;
}


/* See gch.h. */
const gch_cmds_t *
gch_book_abandon(gch_book_t *b)
{
    size_t       i;
    gch_cell_t  *c;

    gch_cmdlist_free(&b->step2);
    gch_cmdlist_cmd(&b->step2, "MULTI", NULL);

    for (i = 0; i < b->ncells; i++) {
        c = &b->cells[i];
        if (c->session) {
            c->position = 0;             /* nothing stays on a list */
            gch_undo_cell(b, &b->step2, c);
        }
    }

    gch_cmdlist_cmd(&b->step2, "DEL", b->idem_rkey, NULL);
    gch_cmdlist_cmd(&b->step2, "ZREM", b->in.town->keys.inflight, b->member,
                    NULL);
    gch_cmdlist_cmd(&b->step2, "EXEC", NULL);

    b->state = GCH_BOOK_DONE;

    return b->step2.failed ? NULL : &b->step2.list;
}
