/*
 * book_swap.c -- a swap: a booking cell that replaces one the family
 * holds (the item's "replaces"), inside the booking saga (book_step.c).
 * See docs/architecture.md, "Swap".
 *
 *   step one    HGET the old booking's planning entry, read only, and take
 *               its marker "{T}:f:<fid>:cancel:<old bid>" = "s ..." (SET
 *               NX GET EX 60): until this swap's step two no DELETE nor
 *               other swap of the old booking gets past its own step one,
 *               so none deletes a claim this swap adopts; a claim the old
 *               booking holds is "adopted" by the new cell (the same
 *               afternoon, another workshop) instead of a conflict;
 *   decide      the old entry must be the same child's, on a session the
 *               catalogue knows, and the marker ours (else
 *               "replaced_unknown"); its release is billed when its
 *               cancellation deadline has passed;
 *   step two    only for a confirmed new cell, with the booking's own
 *               writes: the adopted claims rewritten to the new booking,
 *               the guard of a cancellation (SREM the old booking from
 *               its session, HDEL its planning entry) and the marker
 *               rewritten "S ..." in {T}:inflight; a refused cell gives
 *               the marker back (DEL) with the rest of its step one;
 *   step three  the guard's winner gives the old place back, deletes the
 *               old claims not adopted, keeps the billed ones in
 *               {T}:f:<fid>:billed, and drops the marker; a fenced step
 *               two puts the old booking back instead.
 *
 * The stream's book entry names the released booking (its item's
 * "released"): the worker cancels it in the batch that inserts the new
 * one.  A refused cell (full, conflict...) never touches the old booking.
 */

#include <stdio.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "book.h"


/* "{T}:f:<fid>:cancel:<old bid>"; its length or -1. */
int
gch_swap_marker(char *buf, size_t size, const gch_book_t *b,
    const gch_cell_t *c)
{
    int    n;
    char   post[GCH_KEY_MAX];

    n = snprintf(post, sizeof(post), ":" GCH_KEY_CANCEL ":%.*s",
                 (int) c->item->replaces_len, c->item->replaces);
    if (n < 0 || (size_t) n >= sizeof(post)) {
        return -1;
    }

    return gch_key3(buf, size, b->in.town->keys.f, b->in.family->id,
                    strlen(b->in.family->id), post);
}


/*
 * The old booking's booked set (booked: 1) or its quota, online or the
 * counter's: both in {T}:s:<sid>:left, the u32 at the bit returned.
 */
static const char *
gch_old_key(char *buf, size_t size, const gch_book_t *b,
    const gch_cell_t *c, int booked)
{
    if (booked) {
        gch_place_key(buf, size, b, c->old,
                      c->old_onsite ? GCH_KEY_BOOKED_ONSITE : GCH_KEY_BOOKED);
        return NULL;
    }

    gch_place_key(buf, size, b, c->old, GCH_KEY_LEFT);

    return c->old_onsite ? GCH_OFF_ONSITE : GCH_OFF_LEFT;
}


/*
 * Step one: HGET the planning entry of each open swap cell, and take the
 * old booking's marker, "s <ms> <new bid>" (SET NX GET).
 */
void
gch_swap_step1(gch_book_t *b, gch_cmdlist_t *l)
{
    int          flen, mlen;
    char         fkey[GCH_KEY_MAX], mark[GCH_KEY_MAX], val[64];
    size_t       i, n;
    gch_cell_t  *c;
    const char  *argv[7];
    size_t       argvlen[7];

    flen = gch_key3(fkey, sizeof(fkey), b->in.town->keys.f,
                    b->in.family->id, strlen(b->in.family->id),
                    ":" GCH_KEY_BOOKINGS);

    for (i = 0; i < b->ncells; i++) {
        c = &b->cells[i];
        if (c->reason || c->item->replaces == NULL) {
            continue;
        }

        if (flen < 0) {
            l->failed = 1;
            return;
        }

        /* replies are numbered without the MULTI */
        c->hget_at = l->list.ncmds - 1;

        argv[0] = "HGET"; argvlen[0] = 4;
        argv[1] = fkey; argvlen[1] = (size_t) flen;
        argv[2] = c->item->replaces; argvlen[2] = c->item->replaces_len;
        gch_cmdlist_argv(l, 3, argv, argvlen);

        mlen = gch_swap_marker(mark, sizeof(mark), b, c);
        n = (size_t) snprintf(val, sizeof(val), "s %lld %s",
                              (long long) b->in.now_ms, c->bid);
        if (mlen < 0 || n >= sizeof(val)) {
            l->failed = 1;
            return;
        }

        argv[0] = "SET"; argvlen[0] = 3;
        argv[1] = mark; argvlen[1] = (size_t) mlen;
        argv[2] = val; argvlen[2] = n;
        argv[3] = "NX"; argvlen[3] = 2;
        argv[4] = "GET"; argvlen[4] = 3;
        argv[5] = "EX"; argvlen[5] = 2;
        argv[6] = GCH_CANCEL_LOCK_TTL;
        argvlen[6] = sizeof(GCH_CANCEL_LOCK_TTL) - 1;
        gch_cmdlist_argv(l, 7, argv, argvlen);
    }
}


/*
 * The markers step one asked for: c->locked when this attempt took it
 * (nil: nobody held it).  0, or -1 on an unexpected reply.  Read on every
 * path after step one, refusals and compensations included, so that what
 * was taken is given back.
 */
int
gch_swap_locks(gch_book_t *b, const redisReply *exec)
{
    size_t              i;
    gch_cell_t         *c;
    const redisReply   *r;

    for (i = 0; i < b->ncells; i++) {
        c = &b->cells[i];
        if (c->hget_at == 0) {
            continue;
        }

        if (c->hget_at + 1 >= exec->elements) {
            return -1;
        }

        r = exec->element[c->hget_at + 1];
        if (r->type != REDIS_REPLY_NIL && r->type != REDIS_REPLY_STRING) {
            return -1;
        }

        c->locked = (r->type == REDIS_REPLY_NIL);
    }

    return 0;
}


/* Gives back the marker step one took for c (a refusal, an abort). */
void
gch_swap_unlock(gch_book_t *b, gch_cmdlist_t *l, gch_cell_t *c)
{
    char  mark[GCH_KEY_MAX];

    if (!c->locked) {
        return;
    }

    if (gch_swap_marker(mark, sizeof(mark), b, c) < 0) {
        l->failed = 1;
        return;
    }

    gch_cmdlist_cmd(l, "DEL", mark, NULL);
}


/* 1 when the claim value held ("<sid> <bid>") is the replaced booking's. */
int
gch_swap_adopts(const gch_cell_t *c, const char *held, size_t len)
{
    const char  *sp;

    if (c->item->replaces == NULL) {
        return 0;
    }

    /* the booking id after the last space, as gch_cell_outcome() reads
     * the session before it */
    sp = held + len;
    while (sp > held && sp[-1] != ' ') {
        sp--;
    }

    if (sp == held) {
        return 0;
    }

    return (size_t) (held + len - sp) == c->item->replaces_len
           && memcmp(sp, c->item->replaces, c->item->replaces_len) == 0;
}


/* The old booking of c from its planning entry r; 0 or -1 (unknown). */
static int
gch_swap_old(gch_book_t *b, gch_cell_t *c, const redisReply *r)
{
    int           starts;
    int64_t       deadline;
    yajl_val      doc;
    const char   *sid, *cid, *ch;

    if (r->type != REDIS_REPLY_STRING) {
        return -1;
    }

    doc = gch_planning_doc(r->str, r->len, b->a);
    if (doc == NULL) {
        return -1;
    }

    sid = gch_doc_str(doc, "session_id");
    cid = gch_doc_str(doc, "child_id");
    ch = gch_doc_str(doc, "channel");

    c->old = sid ? gch_town_session(b->in.town, sid, strlen(sid)) : NULL;
    c->old_onsite = ch != NULL && strcmp(ch, "onsite") == 0;

    /* the same child's booking: a swap moves a child, not a place */
    if (cid == NULL || strcmp(cid, c->child->id) != 0) {
        c->old = NULL;
    }

    yajl_tree_free(doc);

    if (c->old == NULL) {
        return -1;
    }

    c->old_entry = b->a->alloc(b->a->ctx, r->len + 1);
    if (c->old_entry == NULL) {
        c->old = NULL;
        return -2;
    }

    memcpy(c->old_entry, r->str, r->len + 1);
    c->old_entry_len = r->len;

    /* released as DELETE would: billed once its cancellation deadline
     * has passed (docs/rules.md) */
    starts = b->in.town->units[c->old->unit].starts_min;
    deadline = gch_deadline_instant(&c->old->activity->cancel_deadline,
                                    c->old->date, starts);
    c->billed = b->in.now_ms / 1000 >= deadline;

    return 0;
}


/*
 * After the cells' outcomes: each open swap cell's old booking.  Not
 * found (cancelled, swapped already, another child's) or held by a
 * DELETE or another swap between their steps (the marker not ours): the
 * cell is refused "replaced_unknown" and what its step one took is
 * undone.
 * 0, -1 on an unexpected reply, GCH_ENOMEM.
 */
int
gch_swap_outcome(gch_book_t *b, const redisReply *exec)
{
    int          rc;
    size_t       i;
    gch_cell_t  *c;

    if (gch_swap_locks(b, exec) != 0) {
        return -1;
    }

    for (i = 0; i < b->ncells; i++) {
        c = &b->cells[i];
        if (c->hget_at == 0) {
            continue;
        }

        if (c->reason) {
            continue;                    /* refused: the old one stays */
        }

        if (!c->locked) {
            /* a DELETE or another swap of the old booking is under way */
            c->reason = GCH_REASON_REPLACED_UNKNOWN;
            continue;
        }

        rc = gch_swap_old(b, c, exec->element[c->hget_at]);
        if (rc == -2) {
            return GCH_ENOMEM;
        }

        if (rc != 0) {
            c->reason = GCH_REASON_REPLACED_UNKNOWN;
        }
    }

    return 0;
}


/* Step two, for a confirmed swap cell: the adopted claims, the guard. */
void
gch_swap_step2(gch_book_t *b, gch_cmdlist_t *l, gch_cell_t *c,
    const char *fkey, size_t flen)
{
    int          q, klen;
    char         key[GCH_KEY_MAX], val[GCH_KEY_MAX], exat[24], ms[24];
    char         mark[GCH_KEY_MAX];
    size_t       n, slen;
    const char  *argv[7];
    size_t       argvlen[7];

    if (c->old == NULL) {
        return;
    }

    /* the claims the old booking held now name the new one */
    slen = strlen(c->session->id);
    n = slen + 1 + GCH_BID_LEN;
    if (n >= sizeof(val)) {
        l->failed = 1;
        return;
    }

    memcpy(val, c->session->id, slen);
    val[slen] = ' ';
    memcpy(val + slen + 1, c->bid, GCH_BID_LEN + 1);
    gch_lltoa(exat, (long long) gch_paris_to_unix(c->session->date + 2, 0));

    argv[0] = "SET"; argvlen[0] = 3;
    argv[1] = key;
    argv[2] = val; argvlen[2] = n;
    argv[3] = "XX"; argvlen[3] = 2;
    argv[4] = "EXAT"; argvlen[4] = 4;
    argv[5] = exat; argvlen[5] = strlen(exat);

    for (q = 0; q < 32; q++) {
        if (!(c->adopted & (1u << q))) {
            continue;
        }

        klen = gch_claim_key(key, sizeof(key), b, c, q);
        if (klen < 0) {
            l->failed = 1;
            continue;
        }

        argvlen[1] = (size_t) klen;
        gch_cmdlist_argv(l, 6, argv, argvlen);
    }

    /* the guard, as a cancellation's step two: one winner */
    gch_old_key(key, sizeof(key), b, c, 1);
    argv[0] = "SREM"; argvlen[0] = 4;
    argv[1] = key; argvlen[1] = strlen(key);
    argv[2] = c->item->replaces; argvlen[2] = c->item->replaces_len;
    c->srem_at = l->list.ncmds - 1;       /* without the MULTI */
    gch_cmdlist_argv(l, 3, argv, argvlen);

    argv[0] = "HDEL"; argvlen[0] = 4;
    argv[1] = fkey; argvlen[1] = flen;
    gch_cmdlist_argv(l, 3, argv, argvlen);

    /* the marker for the reaper, should step three never come:
     * "S <ms> <billed> <old bid> <child> <old session>[ onsite]" */
    if (gch_swap_marker(mark, sizeof(mark), b, c) < 0) {
        l->failed = 1;
        return;
    }

    n = (size_t) snprintf(val, sizeof(val), "S %lld %d %.*s %s %s%s",
                          (long long) b->in.now_ms, c->billed,
                          (int) c->item->replaces_len, c->item->replaces,
                          c->child->id, c->old->id,
                          c->old_onsite ? " onsite" : "");
    if (n >= sizeof(val)) {
        l->failed = 1;
        return;
    }

    gch_lltoa(ms, (long long) b->in.now_ms);
    gch_cmdlist_cmd(l, "SET", mark, val, "EX", "3600", NULL);
    gch_cmdlist_cmd(l, "ZADD", b->in.town->keys.inflight, "NX", ms, mark,
                    NULL);
}


/* 1 when step two's guard for c returned 1 (this swap released it). */
static int
gch_swap_won(const gch_cell_t *c, const redisReply *exec)
{
    const redisReply  *r;

    if (c->old == NULL || c->srem_at == 0 || c->srem_at >= exec->elements) {
        return 0;
    }

    r = exec->element[c->srem_at];

    return r->type == REDIS_REPLY_INTEGER && r->integer == 1;
}


static void
gch_swap_unmark(gch_book_t *b, gch_cmdlist_t *l, gch_cell_t *c)
{
    char  mark[GCH_KEY_MAX];

    if (gch_swap_marker(mark, sizeof(mark), b, c) < 0) {
        l->failed = 1;
        return;
    }

    gch_cmdlist_cmd(l, "DEL", mark, NULL);
    gch_cmdlist_cmd(l, "ZREM", b->in.town->keys.inflight, mark, NULL);
}


/*
 * Step three after a step two that was not fenced: the old places back
 * (the guard's winner only: a concurrent cancellation that won gives it
 * back itself), the claims not adopted deleted, the markers dropped.
 * Appended to b->step3 as one MULTI/EXEC; nothing when no swap.
 */
void
gch_swap_step3(gch_book_t *b, const redisReply *exec)
{
    int             q;
    char            key[GCH_KEY_MAX], day[11];
    size_t          i, before;
    uint32_t        quanta;
    gch_cell_t     *c;
    gch_cmdlist_t  *l;
    const char     *argv[4], *off;
    size_t          argvlen[4];

    /* a booking without a confirmed swap writes nothing here (the hot
     * path: not even a MULTI taken back) */
    for (i = 0; i < b->ncells; i++) {
        if (b->cells[i].reason == GCH_REASON_NONE && b->cells[i].old) {
            break;
        }
    }

    if (i == b->ncells) {
        return;
    }

    l = &b->step3;
    before = l->list.ncmds;
    gch_cmdlist_cmd(l, "MULTI", NULL);

    for (i = 0; i < b->ncells; i++) {
        c = &b->cells[i];
        if (c->reason || c->old == NULL) {
            continue;
        }

        if (gch_swap_won(c, exec)) {
            /* the place back online: the same event as a cancellation's
             * (cancel.c); the waiting list of issue 23 takes it here */
            off = gch_old_key(key, sizeof(key), b, c, 0);
            gch_cmdlist_cmd(l, "BITFIELD", key, "OVERFLOW", "FAIL", "INCRBY",
                            "u32", off, "1", NULL);

            gch_day_format(c->old->date, day);
            quanta = b->in.town->units[c->old->unit].quanta;

            for (q = 0; q < 32; q++) {
                if ((quanta & (1u << q)) && !(c->adopted & (1u << q))
                    && gch_claim_key_of(key, sizeof(key), b->in.town,
                                        c->child->id, c->old->date, q) > 0)
                {
                    gch_cmdlist_cmd(l, "DEL", key, NULL);
                }
            }

            if (c->billed) {
                /* still on the invoice: a medical certificate may lift
                 * it, as after a late DELETE */
                if (gch_key3(key, sizeof(key), b->in.town->keys.f,
                             b->in.family->id, strlen(b->in.family->id),
                             ":" GCH_KEY_BILLED) < 0)
                {
                    l->failed = 1;
                } else {
                    argv[0] = "HSET"; argvlen[0] = 4;
                    argv[1] = key; argvlen[1] = strlen(key);
                    argv[2] = c->item->replaces;
                    argvlen[2] = c->item->replaces_len;
                    argv[3] = c->old->id; argvlen[3] = strlen(c->old->id);
                    gch_cmdlist_argv(l, 4, argv, argvlen);
                }
            }
        }

        gch_swap_unmark(b, l, c);
    }

    if (l->list.ncmds == before + 1) {
        /* no swap: take the MULTI back */
        b->a->free(b->a->ctx, l->list.cmds[--l->list.ncmds].data);
        return;
    }

    gch_cmdlist_cmd(l, "EXEC", NULL);
    b->swap_step3 = 1;
}


/*
 * A fenced step two (the reaper released the attempt first) wrote the
 * guard anyway: put the old bookings back as they were -- booked set,
 * planning entry, adopted claims -- drop the markers, and name them in
 * the void entry (o, inside its JSON object) so that the worker keeps
 * them.  Appended to b->step3, inside its MULTI.
 */
void
gch_swap_restore(gch_book_t *b, const redisReply *exec, gch_buf_t *o)
{
    int             q, n, flen;
    char            key[GCH_KEY_MAX], fkey[GCH_KEY_MAX], val[GCH_KEY_MAX];
    size_t          i, vlen;
    gch_cell_t     *c;
    gch_cmdlist_t  *l;
    const char     *argv[6];
    size_t          argvlen[6];

    l = &b->step3;
    flen = gch_key3(fkey, sizeof(fkey), b->in.town->keys.f,
                    b->in.family->id, strlen(b->in.family->id),
                    ":" GCH_KEY_BOOKINGS);
    n = 0;

    for (i = 0; i < b->ncells; i++) {
        c = &b->cells[i];
        if (c->reason || c->old == NULL) {
            continue;
        }

        if (gch_swap_won(c, exec) && flen > 0) {
            if (n++ == 0) {
                gch_buf_lit(o, ",\"restore\":[");
            } else {
                gch_buf_lit(o, ",");
            }
            gch_buf_jstr(o, c->item->replaces, c->item->replaces_len);

            gch_old_key(key, sizeof(key), b, c, 1);
            argv[0] = "SADD"; argvlen[0] = 4;
            argv[1] = key; argvlen[1] = strlen(key);
            argv[2] = c->item->replaces; argvlen[2] = c->item->replaces_len;
            gch_cmdlist_argv(l, 3, argv, argvlen);

            argv[0] = "HSET"; argvlen[0] = 4;
            argv[1] = fkey; argvlen[1] = (size_t) flen;
            argv[3] = c->old_entry; argvlen[3] = c->old_entry_len;
            gch_cmdlist_argv(l, 4, argv, argvlen);

            vlen = (size_t) snprintf(val, sizeof(val), "%s %.*s",
                                     c->old->id,
                                     (int) c->item->replaces_len,
                                     c->item->replaces);
            for (q = 0; q < 32 && vlen < sizeof(val); q++) {
                if ((c->adopted & (1u << q))
                    && gch_claim_key(key, sizeof(key), b, c, q) > 0)
                {
                    argv[0] = "SET"; argvlen[0] = 3;
                    argv[1] = key; argvlen[1] = strlen(key);
                    argv[2] = val; argvlen[2] = vlen;
                    argv[3] = "XX"; argvlen[3] = 2;
                    argv[4] = "KEEPTTL"; argvlen[4] = 7;
                    gch_cmdlist_argv(l, 5, argv, argvlen);
                }
            }
        }

        gch_swap_unmark(b, l, c);
    }

    if (n) {
        gch_buf_lit(o, "]");
    }
}
