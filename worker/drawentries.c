/*
 * drawentries.c -- a draw's entries taken from Redis (draw.c): the
 * entries' hash {T}:a:<aid>:entries renamed atomically for the draw (or
 * for its late entries), and step 1 of the draw, its entries written to
 * PostgreSQL (draw_run, draw_entry) in one transaction.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gchw.h"
#include "gchw_draw.h"


/*
 * RENAMENX {T}:a:<aid>:entries to the key fmt names (town, activity):
 * atomic with respect to every step two, each of which wrote its entry
 * before (it is in the renamed hash) or writes it after (into a new
 * {T}:a:<aid>:entries).  1 renamed, 0 nothing to rename (no entries, or
 * the target is still there from an earlier turn), -1 Redis.
 */
int
gchw_draw_rename(redisContext *rc, const gch_activity_t *act,
    const char *fmt)
{
    int          ret;
    char         to[512];
    redisReply  *x;

    if (snprintf(to, sizeof(to), fmt, gchb_town, act->id)
        >= (int) sizeof(to))
    {
        return -1;
    }

    x = redisCommand(rc, "RENAMENX " GCH_KEY_A(GCH_KEY_ENTRIES) " %s",
                     gchb_town, act->id, to);
    if (x == NULL) {
        gchb_log("error", "draw: RENAMENX entries of %s: %s", act->id,
                 rc->errstr);
        return -1;
    }

    if (x->type == REDIS_REPLY_INTEGER) {
        ret = x->integer == 1;

    } else if (x->type == REDIS_REPLY_ERROR && x->str
               && strstr(x->str, "no such key"))
    {
        ret = 0;                        /* no entry (yet) */

    } else {
        gchb_log("error", "draw: RENAMENX entries of %s: %s", act->id,
                 x->str ? x->str : "bad reply");
        ret = -1;
    }

    freeReplyObject(x);
    return ret;
}


/*
 * Step 1: Redis's entries into PostgreSQL, unless this draw already
 * started (its entries are those it wrote).  0 or -1.
 */
int
gchw_draw_snapshot(redisContext *rc, PGconn *pg, const gch_activity_t *act)
{
    int                 ok;
    long                changed;
    size_t              i;
    char                count[24];
    const char         *p[3];
    redisReply         *x;
    gchb_arr_t          a[7];
    gch_draw_entry_t    e;
    char               *field;

    /* the entries are the draw's from this instant on: a step two that
     * comes later writes into a new hash, decided after the draw
     * (gchw_draw_late); a snapshot taken by a run that failed before
     * PostgreSQL's commit stays (RENAMENX) */
    if (gchw_draw_rename(rc, act, GCH_KEY_A(GCH_KEY_ENTRIES_DRAW)) < 0) {
        return -1;
    }

    x = redisCommand(rc, "HGETALL " GCH_KEY_A(GCH_KEY_ENTRIES_DRAW),
                     gchb_town, act->id);
    if (x == NULL || x->type != REDIS_REPLY_ARRAY) {
        gchb_log("error", "draw: HGETALL entries of %s: %s", act->id,
                 x ? (x->str ? x->str : "bad reply") : rc->errstr);
        if (x) {
            freeReplyObject(x);
        }
        return -1;
    }

    memset(a, 0, sizeof(a));
    changed = 0;

    for (i = 0; i + 1 < x->elements; i += 2) {
        field = x->element[i]->str;
        if (gch_draw_entry_parse(&e, field, x->element[i + 1]->str) != 0) {
            gchb_log("warn", "draw: %s: entry \"%s\" is not one: skipped",
                     act->id, x->element[i]->str);
            continue;
        }

        gchb_arr_str(&a[0], act->id);
        gchb_arr_str(&a[1], e.family);
        gchb_arr_str(&a[2], e.child);
        gchb_arr_str(&a[3], e.session);
        gchb_arr_int(&a[4], e.at_ms);
        gchb_arr_int(&a[5], e.idx);
        gchb_arr_str(&a[6], e.waitlist ? "true" : "false");
    }

    snprintf(count, sizeof(count), "%zu", x->elements / 2);
    freeReplyObject(x);

    ok = gchb_pg_exec(pg, "begin") == 0;

    p[0] = act->id;
    p[1] = act->draw_seed;
    p[2] = count;

    ok = ok
         && gchw_draw_exec(pg,
                "insert into draw_run (activity_id, seed, entries, families)"
                " values ($1, $2, $3, 0)", 3, p) == 0
         && gchb_arr_exec(pg, "draw_entry",
                "insert into draw_entry (activity_id, family_id, child_id,"
                "   session_id, at_ms, idx, waitlist)"
                " select * from unnest($1::text[], $2::text[], $3::text[],"
                "   $4::text[], $5::bigint[], $6::int[], $7::boolean[])",
                a, 7, &changed) == 0
         && gchw_draw_exec(pg,
                "update draw_run set entries = (select count(*) from"
                "   draw_entry where activity_id = $1), families = (select"
                "   count(distinct family_id) from draw_entry"
                "   where activity_id = $1) where activity_id = $1",
                1, p) == 0
         && gchb_pg_exec(pg, "commit") == 0;

    gchb_arr_free(a, 7);

    if (!ok) {
        gchb_pg_exec(pg, "rollback");
        return -1;
    }

    gchb_log("info", "draw of %s: %ld entries persisted, seed %s", act->id,
             changed, act->draw_seed);
    return 0;
}
