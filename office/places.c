/*
 * places.c -- the live counters of the back office's sessions (issue
 * 26), apart from the activity editor (activity.c): when a change of an
 * activity or a session moves the places of published sessions, each
 * session's two live counters (the two u32 of {s}:left, and
 * {s}:released once its on-site places went online) are moved by the
 * differences under WATCH, never set from a copy; the change is refused,
 * 409 `places_below_booked`, when a counter would go below zero, with
 * what each session holds and the least number of places that keeps it;
 * a change that fails after moving them moves them back.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "office.h"


#define GCHO_ACT_WATCH_TRIES  20


/* ------------------------------------------------------------------ */
/* Redis: the live counters                                             */

long long
gcho_act_u32(redisReply *r)
{
    if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1
        && r->element[0]->type == REDIS_REPLY_INTEGER)
    {
        return r->element[0]->integer;
    }

    return -1;
}


static void
gcho_act_free_replies(redisReply **r, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (r[i] != NULL) {
            freeReplyObject(r[i]);
        }
    }
}


/*
 * Moves the live counters of one session by sh->d_online and
 * sh->d_onsite: WATCH both and the release mark, read them, then one
 * MULTI of relative INCRBYs (a booking in between aborts the EXEC: read
 * again).  A session whose on-site places went online (release.c) has
 * both differences added to the online u32 of {s}:left, the on-site one to
 * {s}:released (the on-site places now online, which guichetctl check
 * and the reaper's recount add to the online quota); the on-site
 * bookings, quota - released, must still fit.  No {s}:left: nothing to
 * move (the
 * publisher makes the counters from PostgreSQL).  1 moved or nothing to
 * move, 0 refused (a counter would go below zero: sh->booked_* filled),
 * -1 Redis failed.
 */
int
gcho_act_shift(redisContext *rc, gcho_act_shift_t *sh, long pub_online,
    long pub_onsite)
{
    int          tries, k;
    char         left[512], rel[512], dl[32], dn[32], dr[32];
    long         d_left, d_onsite, released;
    long long    l, o;
    redisReply  *r[5], *x;

    snprintf(left, sizeof(left), GCH_KEY_S(GCH_KEY_LEFT), gchb_town, sh->id);
    snprintf(rel, sizeof(rel), GCH_KEY_S(GCH_KEY_RELEASED), gchb_town, sh->id);

    for (tries = 0; tries < GCHO_ACT_WATCH_TRIES; tries++) {
        redisAppendCommand(rc, "WATCH %s %s", left, rel);
        redisAppendCommand(rc, "EXISTS %s", left);
        redisAppendCommand(rc, "BITFIELD %s GET u32 " GCH_OFF_LEFT, left);
        redisAppendCommand(rc, "BITFIELD %s GET u32 " GCH_OFF_ONSITE, left);
        redisAppendCommand(rc, "GET %s", rel);

        memset(r, 0, sizeof(r));
        for (l = 0; l < 5; l++) {
            if (redisGetReply(rc, (void **) &r[l]) != REDIS_OK) {
                gcho_act_free_replies(r, 5);
                return -1;
            }
        }

        if (r[1]->type != REDIS_REPLY_INTEGER) {
            gcho_act_free_replies(r, 5);
            return -1;
        }

        if (r[1]->integer == 0) {
            gcho_act_free_replies(r, 5);
            freeReplyObject(redisCommand(rc, "UNWATCH"));
            return 1;
        }

        l = gcho_act_u32(r[2]);
        o = gcho_act_u32(r[3]);
        released = r[4]->type == REDIS_REPLY_STRING ? atol(r[4]->str) : -1;
        gcho_act_free_replies(r, 5);

        if (l < 0 || o < 0) {
            freeReplyObject(redisCommand(rc, "UNWATCH"));
            return -1;
        }

        if (released >= 0) {
            d_left = sh->d_online + sh->d_onsite;
            d_onsite = 0;
        } else {
            d_left = sh->d_online;
            d_onsite = sh->d_onsite;
        }

        if (l + d_left < 0 || o + d_onsite < 0
            || (released >= 0 && released + sh->d_onsite < 0))
        {
            freeReplyObject(redisCommand(rc, "UNWATCH"));
            if (released >= 0) {
                sh->booked_online = pub_online + released - l;
                sh->booked_onsite = pub_onsite - released - o;
            } else {
                sh->booked_online = pub_online - l;
                sh->booked_onsite = pub_onsite - o;
            }
            if (sh->booked_onsite < 0) {
                sh->booked_onsite = 0;
            }
            return 0;
        }

        snprintf(dl, sizeof(dl), "%ld", d_left);
        snprintf(dn, sizeof(dn), "%ld", d_onsite);
        snprintf(dr, sizeof(dr), "%ld", sh->d_onsite);

        redisAppendCommand(rc, "MULTI");
        redisAppendCommand(rc, "BITFIELD %s OVERFLOW FAIL INCRBY u32 "
                           GCH_OFF_LEFT " %s", left, dl);
        redisAppendCommand(rc, "BITFIELD %s OVERFLOW FAIL INCRBY u32 "
                           GCH_OFF_ONSITE " %s", left, dn);
        k = 4;
        if (released >= 0) {
            redisAppendCommand(rc, "INCRBY %s %s", rel, dr);
            k = 5;
        }
        redisAppendCommand(rc, "EXEC");

        memset(r, 0, sizeof(r));
        for (l = 0; l < k; l++) {
            if (redisGetReply(rc, (void **) &r[l]) != REDIS_OK) {
                gcho_act_free_replies(r, k);
                return -1;
            }
        }

        x = r[k - 1];
        if (x->type == REDIS_REPLY_ARRAY) {
            gcho_act_free_replies(r, k);
            sh->moved_left = d_left;
            sh->moved_onsite = d_onsite;
            sh->moved_released = released >= 0 ? sh->d_onsite : 0;
            sh->done = 1;
            return 1;
        }

        gcho_act_free_replies(r, k);

        if (x->type != REDIS_REPLY_NIL) {
            return -1;
        }
        /* a booking moved a counter meanwhile: read them again */
    }

    gchb_log("error", "office: session %s: counters kept moving", sh->id);
    return -1;
}


/* Moves back what the shifts moved (a commit that failed, or a refusal
 * of another session), saturating at 0. */
void
gcho_act_unshift(gcho_act_shift_t *sh, size_t n)
{
    char           key[512], d[32];
    size_t         i;
    redisContext  *rc;

    rc = gcho_redis(NULL);
    if (rc == NULL) {
        gchb_log("error", "office: cannot move counters back: no Redis");
        return;
    }

    for (i = 0; i < n; i++) {
        if (!sh[i].done) {
            continue;
        }

        snprintf(key, sizeof(key), GCH_KEY_S(GCH_KEY_LEFT),
                 gchb_town, sh[i].id);
        snprintf(d, sizeof(d), "%ld", -sh[i].moved_left);
        freeReplyObject(redisCommand(rc, "BITFIELD %s OVERFLOW SAT INCRBY"
                                     " u32 " GCH_OFF_LEFT " %s", key, d));
        snprintf(d, sizeof(d), "%ld", -sh[i].moved_onsite);
        freeReplyObject(redisCommand(rc, "BITFIELD %s OVERFLOW SAT INCRBY"
                                     " u32 " GCH_OFF_ONSITE " %s", key, d));
        if (sh[i].moved_released != 0) {
            snprintf(key, sizeof(key), GCH_KEY_S(GCH_KEY_RELEASED),
                     gchb_town, sh[i].id);
            snprintf(d, sizeof(d), "%ld", -sh[i].moved_released);
            freeReplyObject(redisCommand(rc, "INCRBY %s %s", key, d));
        }
        sh[i].done = 0;
    }

    gcho_redis_drop_broken();
}


/* The least number of places whose online and on-site quotas (share %
 * online, rounded down) hold what is booked. */
static long
gcho_act_min_places(long online, long onsite, int share)
{
    long  p, on;

    for (p = online + onsite; p <= 100000; p++) {
        on = p * share / 100;
        if (on >= online && p - on >= onsite) {
            return p;
        }
    }

    return -1;
}


/* The error (409 places_below_booked) with the refused sessions, what
 * each holds. */
int
gcho_act_refuse(gcho_req_t *rq, int status, const char *code,
    gcho_act_shift_t *sh, size_t n)
{
    int          first;
    char         msg[512], date[11], num[32];
    size_t       i, len;
    gch_jout_t   o;

    msg[0] = '\0';
    len = 0;
    first = 1;

    if (gch_jout_init(&o, &gch_alloc_std) != 0) {
        return -1;
    }

    yajl_gen_map_open(o.g);
    gch_jout_cstr(&o, "error");
    yajl_gen_map_open(o.g);
    gch_jout_cstr(&o, "code");
    gch_jout_cstr(&o, code);
    gch_jout_cstr(&o, "sessions");
    yajl_gen_array_open(o.g);

    for (i = 0; i < n; i++) {
        if (sh[i].booked_online < 0) {
            continue;
        }

        gch_day_format(sh[i].date, date);

        if (first && len < sizeof(msg)) {
            len += snprintf(msg + len, sizeof(msg) - len,
                "La séance du %.2s/%.2s/%.4s (%s) a déjà %ld place%s "
                "réservée%s en ligne et %ld au guichet : il lui faut au "
                "moins %ld places.  Rien n'a été changé.",
                date + 8, date + 5, date, sh[i].unit, sh[i].booked_online,
                sh[i].booked_online > 1 ? "s" : "",
                sh[i].booked_online > 1 ? "s" : "", sh[i].booked_onsite,
                gcho_act_min_places(sh[i].booked_online,
                                    sh[i].booked_onsite, sh[i].share));
            first = 0;
        }

        yajl_gen_map_open(o.g);
        gch_jout_cstr(&o, "id");
        gch_jout_cstr(&o, sh[i].id);
        gch_jout_cstr(&o, "date");
        gch_jout_cstr(&o, date);
        gch_jout_cstr(&o, "unit");
        gch_jout_cstr(&o, sh[i].unit);
        gch_jout_cstr(&o, "booked_online");
        yajl_gen_integer(o.g, sh[i].booked_online);
        gch_jout_cstr(&o, "booked_onsite");
        yajl_gen_integer(o.g, sh[i].booked_onsite);
        gch_jout_cstr(&o, "min_places");
        snprintf(num, sizeof(num), "%ld",
                 gcho_act_min_places(sh[i].booked_online,
                                     sh[i].booked_onsite, sh[i].share));
        yajl_gen_number(o.g, num, strlen(num));
        yajl_gen_map_close(o.g);
    }

    yajl_gen_array_close(o.g);
    gch_jout_cstr(&o, "message");
    gch_jout_cstr(&o, msg);
    yajl_gen_map_close(o.g);
    yajl_gen_map_close(o.g);

    return gcho_reply_jout(rq, status, &o);
}

