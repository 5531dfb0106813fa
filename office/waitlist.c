/*
 * waitlist.c -- the back office's view of a session's waiting list (issue
 * 23): GET /api/staff/sessions/{id}/waitlist, in the order the worker
 * promotes (docs/architecture.md, "Waiting lists"); staff move a child on
 * it (POST .../waitlist/{child}: up, down, first, last or to a position)
 * or remove it (DELETE), audited (waitlist.move).
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


/* The places offered (issue 23: an activity in offer mode) as JSON
 * [{"child_id","family_id","until_ms"}], from HGETALL offer and
 * waiters. */
static char *
gcho_offers_json(const redisReply *off, const redisReply *h)
{
    char           fid[GCHO_ID_MAX], *out;
    size_t         i, len;
    gch_jout_t     o;
    const char    *w, *sp;

    if (gch_jout_init(&o, &gch_alloc_std) != 0) {
        return NULL;
    }

    yajl_gen_array_open(o.g);

    for (i = 0; i + 1 < off->elements; i += 2) {
        if (off->element[i]->type != REDIS_REPLY_STRING
            || off->element[i + 1]->type != REDIS_REPLY_STRING)
        {
            continue;
        }

        w = gcho_waiter(h, off->element[i]->str);
        sp = w ? strchr(w, ' ') : NULL;
        if (sp == NULL || sscanf(sp + 1, "%63s", fid) != 1) {
            continue;
        }

        yajl_gen_map_open(o.g);
        gch_jout_cstr(&o, "child_id");
        gch_jout_cstr(&o, off->element[i]->str);
        gch_jout_cstr(&o, "family_id");
        gch_jout_cstr(&o, fid);
        gch_jout_cstr(&o, "until_ms");
        yajl_gen_integer(o.g, strtoll(off->element[i + 1]->str, NULL, 10));
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
    char          *json, *offers;
    redisReply    *r, *x;
    redisContext  *redis;
    const char    *p[3];

    redis = gcho_redis(rq);
    if (redis == NULL) {
        return 0;
    }

    redisAppendCommand(redis, "MULTI");
    redisAppendCommand(redis, "LRANGE " GCH_KEY_S(GCH_KEY_WAIT) " 0 -1",
                       gchb_town, rq->param[0]);
    redisAppendCommand(redis, "HGETALL " GCH_KEY_S(GCH_KEY_WAITERS),
                       gchb_town, rq->param[0]);
    redisAppendCommand(redis, "HGETALL " GCH_KEY_S(GCH_KEY_OFFER),
                       gchb_town, rq->param[0]);
    redisAppendCommand(redis, "EXEC");

    r = NULL;
    for (i = 0; i < 5; i++) {
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

    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3
        || r->element[0]->type != REDIS_REPLY_ARRAY
        || r->element[1]->type != REDIS_REPLY_ARRAY
        || r->element[2]->type != REDIS_REPLY_ARRAY)
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
    offers = gcho_offers_json(r->element[2], r->element[1]);
    freeReplyObject(r);
    if (json == NULL || offers == NULL) {
        free(json);
        free(offers);
        return -1;
    }

    p[0] = rq->param[0];
    p[1] = json;
    p[2] = offers;

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
        "    left join child c on c.id = w->>'child_id'), '[]'),"
        "  'offers', coalesce((select json_agg(json_build_object("
        "      'child_id', w->>'child_id', 'first_name', c.first_name,"
        "      'family_id', w->>'family_id',"
        "      'offer_until', to_char(to_timestamp("
        "        (w->>'until_ms')::bigint / 1000.0),"
        "        'YYYY-MM-DD\"T\"HH24:MI:SSTZH:TZM'))"
        "      order by (w->>'until_ms')::bigint)"
        "    from json_array_elements($3::json) w"
        "    left join child c on c.id = w->>'child_id'), '[]'))"
        " from session s where s.id = $1",
        3, p, "Cette séance n'existe pas.");

    free(json);
    free(offers);
    return rc;
}


/*
 * The list of session sid as GET shows it (a child's first place; a
 * child without its entry, a leftover, is left out), into ids[] (pointing
 * into *r, freeReplyObject(*r) after use): their number, or -1 (Redis).
 * Read under the caller's WATCH.
 */
static int
gcho_waitlist_read(redisContext *redis, const char *sid, redisReply **r,
    const char **ids, int max)
{
    int          n, j;
    size_t       i;
    redisReply  *h;

    *r = redisCommand(redis, "LRANGE " GCH_KEY_S(GCH_KEY_WAIT) " 0 -1",
                      gchb_town, sid);
    if (*r == NULL || (*r)->type != REDIS_REPLY_ARRAY) {
        return -1;
    }

    h = redisCommand(redis, "HGETALL " GCH_KEY_S(GCH_KEY_WAITERS),
                     gchb_town, sid);
    if (h == NULL || h->type != REDIS_REPLY_ARRAY) {
        if (h) {
            freeReplyObject(h);
        }
        return -1;
    }

    n = 0;
    for (i = 0; i < (*r)->elements && n < max; i++) {
        if ((*r)->element[i]->type != REDIS_REPLY_STRING
            || gcho_waiter(h, (*r)->element[i]->str) == NULL)
        {
            continue;
        }
        for (j = 0; j < n; j++) {
            if (strcmp(ids[j], (*r)->element[i]->str) == 0) {
                break;
            }
        }
        if (j == n) {
            ids[n++] = (*r)->element[i]->str;
        }
    }

    freeReplyObject(h);
    return n;
}


#define GCHO_WAIT_MOVE_MAX    5000       /* children on one list */
#define GCHO_WAIT_TRIES       20         /* WATCH retries */


/*
 * POST /api/staff/sessions/{id}/waitlist/{child} {"move": "up" | "down" |
 * "first" | "last"} or {"position": N}, and DELETE (remove the child):
 * under WATCH of the list and its entries, the list written again in its
 * new order in one MULTI (a join or a promotion meanwhile aborts it: read
 * again), inside the transaction of the audit row (waitlist.move, detail
 * {"child_id","family_id","from","to"}, "to" null for a removal).  The
 * answer is the list as GET gives it.  404 not_found: the child is not on
 * the session's list.
 */
static int
gcho_waitlist_change(gcho_req_t *rq)
{
    static const gch_jfield_t  f[] = {
        { "move", GCH_J_STRING, 0 },
        { "position", GCH_J_NUMBER, 0 },
    };

    int                 n, from, to, i, k, tries, remove, ok;
    char                fid[GCHO_ID_MAX], bid[64], sfrom[16], sto[16],
                        field[2 * GCHO_ID_MAX + 2];
    long long           pos;
    gch_jcx_t           cx;
    gch_json_t          doc;
    gch_error_t         err;
    redisReply         *r, *w, *x;
    redisContext       *redis;
    const char         *sid = rq->param[0], *cid = rq->param[1], *tmp;
    const char        **ids;
    const char         *kv[8];
    const gch_jnode_t  *v[2];

    remove = strcmp(rq->method, "DELETE") == 0;
    to = 0;
    pos = 0;

    if (!remove) {
        if (gcho_body_json(rq, &doc, f, 2, v) != 0) {
            return 0;
        }

        memset(&err, 0, sizeof(err));
        gch_jcx_init(&cx, &err);

        if ((v[0] == NULL) == (v[1] == NULL)) {
            gch_json_free(&doc);
            return gcho_error(rq, 400, "invalid_field",
                              "$ : « move » ou « position », l'un des "
                              "deux.");
        }

        if (v[1] && gch_json_int(&cx, "position", v[1], 1, 100000, &pos)
                    != 0)
        {
            gch_json_free(&doc);
            return gcho_error(rq, 400, "invalid_field", err.message);
        }

        if (v[0]) {
            to = (v[0]->len == 2 && memcmp(v[0]->str, "up", 2) == 0) ? -1
                 : (v[0]->len == 4 && memcmp(v[0]->str, "down", 4) == 0)
                   ? -2
                 : (v[0]->len == 5 && memcmp(v[0]->str, "first", 5) == 0)
                   ? -3
                 : (v[0]->len == 4 && memcmp(v[0]->str, "last", 4) == 0)
                   ? -4 : 0;
            if (to == 0) {
                gch_json_free(&doc);
                return gcho_error(rq, 400, "invalid_field",
                                  "$.move : « up », « down », « first » "
                                  "ou « last ».");
            }
        }

        gch_json_free(&doc);
    }

    redis = gcho_redis(rq);
    if (redis == NULL) {
        return 0;
    }

    ids = malloc(GCHO_WAIT_MOVE_MAX * sizeof(char *));
    if (ids == NULL) {
        return -1;
    }

    for (tries = 0; tries < GCHO_WAIT_TRIES; tries++) {

        freeReplyObject(redisCommand(redis, "WATCH " GCH_KEY_S(GCH_KEY_WAIT)
                                     " " GCH_KEY_S(GCH_KEY_WAITERS),
                                     gchb_town, sid, gchb_town, sid));

        n = gcho_waitlist_read(redis, sid, &r, ids, GCHO_WAIT_MOVE_MAX);
        if (n < 0) {
            goto redis_failed;
        }

        for (from = 0; from < n && strcmp(ids[from], cid) != 0; from++) {
            /* void */
        }

        w = redisCommand(redis, "HGET " GCH_KEY_S(GCH_KEY_WAITERS) " %s",
                         gchb_town, sid, cid);
        if (w == NULL) {
            freeReplyObject(r);
            goto redis_failed;
        }

        if (from == n || w->type != REDIS_REPLY_STRING
            || sscanf(w->str, "%63s %127s", bid, fid) != 2)
        {
            freeReplyObject(w);
            freeReplyObject(r);
            freeReplyObject(redisCommand(redis, "UNWATCH"));
            free(ids);
            return gcho_error(rq, 404, "not_found",
                              "Cet enfant n'est pas sur la liste d'attente "
                              "de cette séance.");
        }
        freeReplyObject(w);

        /* the new place, from 0 */
        k = remove ? -1
            : to == -1 ? (from > 0 ? from - 1 : 0)
            : to == -2 ? (from < n - 1 ? from + 1 : n - 1)
            : to == -3 ? 0
            : to == -4 ? n - 1
            : (pos > n ? n - 1 : (int) pos - 1);

        snprintf(sfrom, sizeof(sfrom), "%d", from + 1);
        snprintf(sto, sizeof(sto), "%d", k + 1);

        if (gcho_begin(rq) != 0) {
            freeReplyObject(r);
            freeReplyObject(redisCommand(redis, "UNWATCH"));
            free(ids);
            return 0;
        }

        kv[0] = "child_id"; kv[1] = cid;
        kv[2] = "family_id"; kv[3] = fid;
        kv[4] = "from"; kv[5] = sfrom;
        kv[6] = "to"; kv[7] = remove ? NULL : sto;

        if (gcho_audit_kv(rq, "waitlist.move", sid, kv, 4) != 0) {
            freeReplyObject(r);
            freeReplyObject(redisCommand(redis, "UNWATCH"));
            free(ids);
            return 0;
        }

        /* the order: cid taken out, put back at k */
        tmp = ids[from];
        for (i = from; i < n - 1; i++) {
            ids[i] = ids[i + 1];
        }
        if (!remove) {
            for (i = n - 1; i > k; i--) {
                ids[i] = ids[i - 1];
            }
            ids[k] = tmp;
        }

        redisAppendCommand(redis, "MULTI");
        redisAppendCommand(redis, "DEL " GCH_KEY_S(GCH_KEY_WAIT), gchb_town,
                           sid);
        for (i = 0; i < (remove ? n - 1 : n); i++) {
            redisAppendCommand(redis, "RPUSH " GCH_KEY_S(GCH_KEY_WAIT) " %s",
                               gchb_town, sid, ids[i]);
        }
        if (remove) {
            snprintf(field, sizeof(field), "%s %s", sid, cid);
            redisAppendCommand(redis, "HDEL " GCH_KEY_S(GCH_KEY_WAITERS)
                               " %s", gchb_town, sid, cid);
            redisAppendCommand(redis, "HDEL " GCH_KEY_S(GCH_KEY_WAITTRY)
                               " %s", gchb_town, sid, cid);
            redisAppendCommand(redis, "HDEL " GCH_KEY_F(GCH_KEY_WAITS) " %s",
                               gchb_town, fid, field);
        }
        redisAppendCommand(redis, "EXEC");

        k = 2 + (remove ? n - 1 + 3 : n) + 1;
        ok = 0;
        for (i = 0; i < k; i++) {
            if (redisGetReply(redis, (void **) &x) != REDIS_OK) {
                freeReplyObject(r);
                gcho_rollback();
                goto redis_failed;
            }
            if (i == k - 1) {
                ok = (x->type == REDIS_REPLY_ARRAY);
            }
            freeReplyObject(x);
        }
        freeReplyObject(r);

        if (!ok) {
            gcho_rollback();               /* changed meanwhile: again */
            continue;
        }

        free(ids);

        if (gcho_commit(rq) != 0) {
            return 0;
        }

        return gcho_waitlist_list(rq);
    }

    free(ids);
    return gcho_error(rq, 503, "unavailable",
                      "La liste d'attente change sans cesse : réessayez.");

redis_failed:

    free(ids);
    gchb_log("error", "office: redis: waiting list of %s: %s", sid,
             redis->errstr[0] ? redis->errstr : "?");
    gcho_redis_drop_broken();
    return gcho_error(rq, 503, "unavailable",
                      "Le service est momentanément indisponible.");
}


const gcho_route_t  gcho_waitlist_routes[] = {
    { "GET", "/api/staff/sessions/*/waitlist", GCHO_STAFF, GCHO_AGENT, 0,
      gcho_waitlist_list },
    { "POST", "/api/staff/sessions/*/waitlist/*", GCHO_STAFF, GCHO_AGENT,
      GCHO_BODY_JSON, gcho_waitlist_change },
    { "DELETE", "/api/staff/sessions/*/waitlist/*", GCHO_STAFF, GCHO_AGENT,
      0, gcho_waitlist_change },
    { NULL, NULL, 0, 0, 0, NULL }
};
