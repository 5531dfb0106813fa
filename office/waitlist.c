/*
 * waitlist.c -- the back office's view of a session's waiting list (issue
 * 23): GET /api/staff/sessions/{id}/waitlist, in the order the worker
 * promotes (docs/architecture.md, "Waiting lists").
 *
 * The list lives in Redis ({T}:s:<sid>:wait, the order; {T}:s:<sid>:waiters,
 * who): read in one MULTI, then PostgreSQL names the children.  A child
 * whose entry is gone (a leftover the promoter removes) is not shown; a
 * child pushed twice (an nginx worker died between a request's steps)
 * once, at its first place.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "office.h"


/* "<bid> <fid> <at_ms>" of child cid in the HGETALL reply h, or NULL */
static const char *
gcho_waiter(const redisReply *h, const char *cid)
{
    size_t  i;

    for (i = 0; i + 1 < h->elements; i += 2) {
        if (h->element[i]->type == REDIS_REPLY_STRING
            && h->element[i + 1]->type == REDIS_REPLY_STRING
            && strcmp(h->element[i]->str, cid) == 0)
        {
            return h->element[i + 1]->str;
        }
    }

    return NULL;
}


/* The list as JSON [{"position","child_id","family_id","joined_ms"}]. */
static char *
gcho_waitlist_json(const redisReply *list, const redisReply *h)
{
    char           fid[GCHO_ID_MAX], *out;
    size_t         i, j, len;
    long long      pos, ms;
    gch_jout_t     o;
    const char    *w, *sp, *cid;

    if (gch_jout_init(&o, &gch_alloc_std) != 0) {
        return NULL;
    }

    yajl_gen_array_open(o.g);
    pos = 0;

    for (i = 0; i < list->elements; i++) {
        if (list->element[i]->type != REDIS_REPLY_STRING) {
            continue;
        }

        cid = list->element[i]->str;
        for (j = 0; j < i; j++) {
            if (list->element[j]->type == REDIS_REPLY_STRING
                && strcmp(list->element[j]->str, cid) == 0)
            {
                break;
            }
        }

        w = (j == i) ? gcho_waiter(h, cid) : NULL;
        sp = w ? strchr(w, ' ') : NULL;
        if (sp == NULL
            || sscanf(sp + 1, "%63s %lld", fid, &ms) != 2)
        {
            continue;
        }

        yajl_gen_map_open(o.g);
        gch_jout_cstr(&o, "position");
        yajl_gen_integer(o.g, ++pos);
        gch_jout_cstr(&o, "child_id");
        gch_jout_cstr(&o, cid);
        gch_jout_cstr(&o, "family_id");
        gch_jout_cstr(&o, fid);
        gch_jout_cstr(&o, "joined_ms");
        yajl_gen_integer(o.g, ms);
        yajl_gen_map_close(o.g);
    }

    yajl_gen_array_close(o.g);

    if (gch_jout_detach(&o, &out, &len) != 0) {
        return NULL;
    }

    return out;
}


/* GET /api/staff/sessions/{id}/waitlist */
static int
gcho_waitlist_list(gcho_req_t *rq)
{
    int            rc, i;
    char          *json;
    redisReply    *r, *x;
    redisContext  *redis;
    const char    *p[2];

    redis = gcho_redis(rq);
    if (redis == NULL) {
        return 0;
    }

    redisAppendCommand(redis, "MULTI");
    redisAppendCommand(redis, "LRANGE " GCH_KEY_S(GCH_KEY_WAIT) " 0 -1",
                       gchb_town, rq->param[0]);
    redisAppendCommand(redis, "HGETALL " GCH_KEY_S(GCH_KEY_WAITERS),
                       gchb_town, rq->param[0]);
    redisAppendCommand(redis, "EXEC");

    r = NULL;
    for (i = 0; i < 4; i++) {
        if (redisGetReply(redis, (void **) &x) != REDIS_OK) {
            x = NULL;
        }
        if (r) {
            freeReplyObject(r);
        }
        r = x;
        if (r == NULL) {
            break;
        }
    }

    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2
        || r->element[0]->type != REDIS_REPLY_ARRAY
        || r->element[1]->type != REDIS_REPLY_ARRAY)
    {
        gchb_log("error", "office: redis: waiting list of %s: %s",
                 rq->param[0], redis->errstr[0] ? redis->errstr : "?");
        if (r) {
            freeReplyObject(r);
        }
        gcho_redis_drop_broken();
        return gcho_error(rq, 503, "unavailable",
                          "Le service est momentanément indisponible.");
    }

    json = gcho_waitlist_json(r->element[0], r->element[1]);
    freeReplyObject(r);
    if (json == NULL) {
        return -1;
    }

    p[0] = rq->param[0];
    p[1] = json;

    rc = gcho_reply_row(rq, 200,
        "select json_build_object('session_id', s.id,"
        "  'activity_id', s.activity_id, 'date', s.date,"
        "  'unit', s.unit_code, 'places', s.places,"
        "  'waitlist', coalesce((select json_agg(json_build_object("
        "      'position', (w->>'position')::int,"
        "      'child_id', w->>'child_id', 'first_name', c.first_name,"
        "      'family_id', w->>'family_id',"
        "      'joined_at', to_char(to_timestamp((w->>'joined_ms')::bigint"
        "        / 1000.0), 'YYYY-MM-DD\"T\"HH24:MI:SSTZH:TZM'))"
        "      order by (w->>'position')::int)"
        "    from json_array_elements($2::json) w"
        "    left join child c on c.id = w->>'child_id'), '[]'))"
        " from session s where s.id = $1",
        2, p, "Cette séance n'existe pas.");

    free(json);
    return rc;
}


const gcho_route_t  gcho_waitlist_routes[] = {
    { "GET", "/api/staff/sessions/*/waitlist", GCHO_STAFF, GCHO_AGENT, 0,
      gcho_waitlist_list },
    { NULL, NULL, 0, 0, 0, NULL }
};
