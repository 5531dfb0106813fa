/*
 * release.c -- on-site places released online: an activity whose
 * release_onsite_at has come gives its sessions' unused on-site places
 * (the u32 at bit 32 of {T}:s:<sid>:left) to the online quota (bit 0),
 * once per session, marked by {T}:s:<sid>:released (the reaper's turn,
 * gchw_release_onsite(), with the reaper's catalogue: reaper.c).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gchw.h"
#include "gchw_reaper.h"


/*
 * Releases the unused on-site places of one session to online, once:
 * WATCH its counters ({s}:left), read the on-site one (bit 32), and in
 * one MULTI zero it, add it to the online one (bit 0) and mark the
 * session released.  A booking in between aborts the EXEC: tried again
 * next second.  1 done, 0 retry.
 */
static int
gchw_release_session(redisContext *rc, const gch_session_t *s)
{
    char         left[512], mark[512], n[32];
    redisReply  *x;
    long long    free_places;

    snprintf(left, sizeof(left), GCH_KEY_S(GCH_KEY_LEFT), gchb_town, s->id);
    snprintf(mark, sizeof(mark), GCH_KEY_S(GCH_KEY_RELEASED), gchb_town, s->id);

    x = redisCommand(rc, "EXISTS %s", mark);
    if (x == NULL) {
        return 0;
    }

    free_places = (x->type == REDIS_REPLY_INTEGER && x->integer) ? -1 : 0;
    freeReplyObject(x);

    if (free_places < 0) {
        return 1;                     /* released before */
    }

    /*
     * An on-site counter of the layout before not merged yet (a rush kept
     * its session moving, backend/migrate.c): its places are still there,
     * released once merged.  Watched with the counter: a module of the
     * layout before that recreates it between this check and the EXEC
     * (a cancellation at the counter) aborts the release, instead of the
     * merge bringing a place back on site after it.
     */
    freeReplyObject(redisCommand(rc, "WATCH %s " GCH_KEY_S(GCH_KEY_ONSITE_OLD),
                                 left, gchb_town, s->id));

    x = redisCommand(rc, "EXISTS " GCH_KEY_S(GCH_KEY_ONSITE_OLD), gchb_town,
                     s->id);
    if (x == NULL) {
        return 0;
    }

    free_places = (x->type == REDIS_REPLY_INTEGER && x->integer) ? -1 : 0;
    freeReplyObject(x);

    if (free_places < 0) {
        freeReplyObject(redisCommand(rc, "UNWATCH"));
        return 0;
    }

    x = redisCommand(rc, "BITFIELD %s GET u32 " GCH_OFF_ONSITE, left);
    if (x == NULL || x->type != REDIS_REPLY_ARRAY || x->elements != 1) {
        if (x) {
            freeReplyObject(x);
        }
        freeReplyObject(redisCommand(rc, "UNWATCH"));
        return 0;
    }

    free_places = x->element[0]->integer;
    freeReplyObject(x);
    snprintf(n, sizeof(n), "%lld", free_places);

    freeReplyObject(redisCommand(rc, "MULTI"));
    freeReplyObject(redisCommand(rc, "BITFIELD %s SET u32 " GCH_OFF_ONSITE
                                 " 0 OVERFLOW SAT INCRBY u32 " GCH_OFF_LEFT
                                 " %s", left, n));
    freeReplyObject(redisCommand(rc, "SET %s %s", mark, n));
    x = redisCommand(rc, "EXEC");

    if (x == NULL || x->type != REDIS_REPLY_ARRAY) {
        if (x) {
            freeReplyObject(x);
        }
        return 0;                     /* the counter moved: next time */
    }

    freeReplyObject(x);

    if (free_places > 0) {
        gchb_log("info", "session %s: %lld on-site places released online",
                 s->id, free_places);
    }

    return 1;
}


/*
 * See gchw.h.  Activities whose release_onsite_at has come give their
 * sessions' unused on-site places to the online quota (sessions still to
 * come only).  After a data loss the rebuild recreates the on-site
 * counters and this releases them again.
 */
int
gchw_release_onsite(gchw_reaper_t *r, redisContext *rc, int64_t now_ms)
{
    int                    done;
    size_t                 a, i;
    gch_day_t              today;
    int                    minute;
    const gch_session_t   *s;
    const gch_activity_t  *act;

    if (gchw_reaper_town(r, rc) != 0 || r->town == NULL) {
        return 0;
    }

    gch_unix_to_paris(now_ms / 1000, &today, &minute, NULL);

    for (a = 0; a < r->town->nactivities; a++) {
        act = &r->town->activities[a];

        if (r->released[a] || act->release_onsite_at == 0
            || now_ms / 1000 < act->release_onsite_at)
        {
            continue;
        }

        done = 1;

        for (i = 0; i < r->town->nsessions; i++) {
            s = &r->town->sessions[i];

            if (s->activity == act && s->date >= today
                && gchw_release_session(rc, s) == 0)
            {
                done = 0;
            }
        }

        r->released[a] = (char) done;
    }

    return 0;
}
