/*
 * activity.c -- the back office's activities and sessions (issue 26):
 * create and change an activity, generate its sessions from a calendar,
 * change one session's places or label, without the town file.
 *
 * The catalogue table keeps the town as the engine writes it (every
 * session explicit); the booking path sees what the worker publishes of
 * it.  A change here is one transaction, under the lock of town loading
 * (GCHB_LOCK_INVOICE) and of publication (GCHB_LOCK_PUBLISH):
 *
 *   1. the catalogue's text, locked, is changed by PostgreSQL's jsonb (an
 *      activity added or replaced, a calendar laid over an activity, one
 *      session's places); the staff's activity was checked first, as it
 *      came, inside a one-activity town (gch_town_parse: strict, its
 *      errors named by their path from the activity: "$.prices[0].cents");
 *   2. the engine parses the whole new catalogue (ids unique town-wide,
 *      calendars expanded into sessions: public holidays skipped, existing
 *      sessions of the same day and unit kept) and writes it again
 *      (gch_town_write);
 *   3. the activity's rows, its price bands and sessions are stored by
 *      load-town's statements (gchb_catalogue_store, backend/catalogue.c);
 *   4. every published session whose places changed has its two live
 *      counters moved by the differences (gcho_act_shift, places.c:
 *      WATCH, read, MULTI, relative BITFIELD INCRBY; never set from a
 *      copy), or the change is refused, 409 `places_below_booked`,
 *      with what is booked and the least number of places that keeps
 *      it; the columns the
 *      publisher compares (places_published, onsite_published) take the
 *      new quotas, so it shifts nothing again;
 *   5. the new text and catalogue.version + 1 (the worker republishes),
 *      the audit row, COMMIT.  A failed commit moves the counters back.
 *
 * The locks of step 1 and the catalogue's text parsed, written and
 * stored are catalogue.c's, shared with the other rooms that change the
 * catalogue; the counters of step 4 are places.c's.
 *
 * Agents read (GET); creating and changing take the régie's role.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "office.h"


#define GCHO_ACT_SHIFT_MAX    1000       /* sessions moved by one change */
#define GCHO_ACT_CLOSED_MAX   60         /* closed periods of a calendar */


/* ------------------------------------------------------------------ */
/* the answer: one activity, its sessions and their live counters      */

/*
 * 200/201 {"activity": {... as in the town file, without sessions},
 * "sessions": [{"id", "date", "unit", "label", "places",
 * "places_online", "online_left", "onsite_left", "booked"}]}; "created"
 * when not negative.  online_left and onsite_left are Redis's live
 * counters (null before the first publication); booked counts
 * PostgreSQL's confirmed bookings (the persister's, a moment behind).
 */
static int
gcho_act_answer(gcho_req_t *rq, int status, const char *id, long created)
{
    int            i, n, rv;
    char           key[512], num[32];
    PGresult      *res;
    gchb_arr_t     a[3];
    redisReply    *r;
    const char    *p[4];
    redisContext  *rc;

    p[0] = id;
    res = gcho_sql(rq, "select id from session where activity_id = $1"
                       " order by id", 1, p);
    if (res == NULL) {
        return 0;
    }

    n = PQntuples(res);
    memset(a, 0, sizeof(a));

    rc = n ? gcho_redis(NULL) : NULL;

    for (i = 0; rc != NULL && i < n; i++) {
        snprintf(key, sizeof(key), GCH_KEY_S(GCH_KEY_LEFT),
                 gchb_town, PQgetvalue(res, i, 0));
        redisAppendCommand(rc, "BITFIELD %s GET u32 0", key);
        redisAppendCommand(rc, "EXISTS %s", key);
        /* the on-site one: the same key's u32 at bit 32 */
        redisAppendCommand(rc, "BITFIELD %s GET u32 " GCH_OFF_ONSITE, key);
        redisAppendCommand(rc, "EXISTS %s", key);
    }

    for (i = 0; rc != NULL && i < n; i++) {
        long long  l, e, o, eo;

        l = e = o = eo = -1;
        if (redisGetReply(rc, (void **) &r) == REDIS_OK) {
            l = gcho_act_u32(r);
            freeReplyObject(r);
        }
        if (redisGetReply(rc, (void **) &r) == REDIS_OK) {
            e = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
            freeReplyObject(r);
        }
        if (redisGetReply(rc, (void **) &r) == REDIS_OK) {
            o = gcho_act_u32(r);
            freeReplyObject(r);
        }
        if (redisGetReply(rc, (void **) &r) == REDIS_OK) {
            eo = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
            freeReplyObject(r);
        }
        if (rc->err) {
            break;
        }
        if (e == 1) {
            gchb_arr_str(&a[0], PQgetvalue(res, i, 0));
            gchb_arr_int(&a[1], l);
            if (eo == 1) {
                gchb_arr_int(&a[2], o);
            } else {
                gchb_arr_str(&a[2], NULL);     /* not yet published */
            }
        }
    }

    gcho_redis_drop_broken();
    PQclear(res);

    p[1] = gchb_arr_end(&a[0]);
    p[2] = gchb_arr_end(&a[1]);
    p[3] = gchb_arr_end(&a[2]);
    snprintf(num, sizeof(num), "%ld", created);

    if (p[1] == NULL || p[2] == NULL || p[3] == NULL) {
        gchb_arr_free(a, 3);
        return gcho_error(rq, 500, "internal",
                          "Une erreur interne est survenue.");
    }

    {
        const char  *q[5] = { p[0], p[1], p[2], p[3], num };

        rv = gcho_reply_row(rq, status,
            "select json_build_object("
            "  'activity', t.a - 'sessions',"
            "  'sessions', (select coalesce(json_agg(json_build_object("
            "      'id', s.id, 'date', s.date, 'unit', s.unit_code,"
            "      'label', s.label, 'places', s.places,"
            "      'places_online', s.places_online,"
            "      'online_left', v.l, 'onsite_left', v.o,"
            "      'booked', (select count(*) from booking b"
            "                 where b.session_id = s.id"
            "                   and b.status = 'confirmed'))"
            "      order by s.date, s.unit_code, s.id), '[]')"
            "    from session s left join unnest($2::text[], $3::int[],"
            "      $4::int[]) v(id, l, o) on v.id = s.id"
            "    where s.activity_id = $1))::jsonb"
            "  || case when $5::int >= 0"
            "       then jsonb_build_object('created', $5::int)"
            "       else '{}' end"
            " from catalogue c,"
            "   jsonb_array_elements(c.json::jsonb -> 'activities') t(a)"
            " where t.a ->> 'id' = $1", 5, q,
            "Cette activité n'existe pas.");
    }

    gchb_arr_free(a, 3);

    return rv;
}


/* ------------------------------------------------------------------ */
/* checking the staff's activity, applying a change                     */

/*
 * The staff's activity (the body, one JSON object) checked on its own by
 * the engine, as the only activity of a town with the catalogue's units
 * (units_json): unknown, duplicate and missing fields, types, ranges,
 * dates, prices.  The body's members (sessions / calendar) are refused
 * when !with_sessions.  GCHO_GO, or the answer (400).
 */
static int
gcho_act_check(gcho_req_t *rq, const char *units_json, int with_sessions,
    const char *id)
{
    int                 rc;
    char               *town;
    size_t              len;
    gch_json_t          doc;
    gch_town_t         *t;
    gch_error_t         err;
    const gch_jnode_t  *m;

    memset(&err, 0, sizeof(err));

    rc = (rq->body == NULL || rq->body_len == 0)
         ? GCH_EBADJSON
         : gch_json_parse(&doc, rq->body, rq->body_len, 8, &gch_alloc_std,
                          &err);

    if (rc == GCH_ENOMEM) {
        return gcho_error(rq, 500, "internal",
                          "Mémoire insuffisante : rien n'a été enregistré.");
    }

    if (rc != GCH_OK) {
        return gcho_error(rq, 400, "bad_json",
                          "Le corps de la demande n'est pas du JSON valide.");
    }

    if (doc.root->type != GCH_J_OBJECT) {
        gch_json_free(&doc);
        return gcho_error(rq, 400, "invalid_field",
                          "$ : objet attendu (une activité).");
    }

    for (m = doc.root->child; m != NULL; m = m->next) {
        if (!with_sessions
            && ((m->klen == 8 && memcmp(m->key, "sessions", 8) == 0)
                || (m->klen == 8 && memcmp(m->key, "calendar", 8) == 0)))
        {
            gch_json_free(&doc);
            return gcho_error(rq, 400, "invalid_field",
                              "$.sessions : les séances se changent une à "
                              "une (PUT /api/staff/sessions/{id}) ou se "
                              "créent par un calendrier (POST "
                              "/api/staff/activities/{id}/sessions).");
        }
        if (id != NULL && m->klen == 2 && memcmp(m->key, "id", 2) == 0
            && (m->type != GCH_J_STRING || m->len != strlen(id)
                || memcmp(m->str, id, m->len) != 0))
        {
            gch_json_free(&doc);
            return gcho_error(rq, 400, "invalid_field",
                              "$.id : l'identifiant d'une activité ne "
                              "change pas.");
        }
    }

    gch_json_free(&doc);

    len = strlen(units_json) + rq->body_len + 64;
    town = malloc(len);
    if (town == NULL) {
        return gcho_error(rq, 500, "internal",
                          "Une erreur interne est survenue.");
    }

    len = snprintf(town, len, "{\"town\":{\"name\":\"v\"},\"units\":%s,"
                   "\"activities\":[%s]}", units_json, rq->body);

    t = NULL;
    memset(&err, 0, sizeof(err));
    rc = gch_town_parse(&t, town, len, &gch_alloc_std, &err);
    free(town);

    if (rc == GCH_ENOMEM) {
        return gcho_error(rq, 500, "internal",
                          "Mémoire insuffisante : rien n'a été enregistré.");
    }

    if (rc != GCH_OK) {
        gcho_cat_path(err.message, "activities", 0, 0);
        return gcho_error(rq, 400, "invalid_field",
                          err.message[0] ? err.message
                                         : "Activité invalide.");
    }

    gch_town_free(t);

    return GCHO_GO;
}


/* A change's description. */
typedef struct {
    const char  *sql;          /* $1 the catalogue's text, $2... params;
                                  one row: the new text (null: nothing to
                                  change it in), the activity's index and
                                  id */
    const char  *params[4];    /* $2... */
    int          nparams;
    const char  *missing;      /* 404 message when the row is null */
    int          calendar;     /* engine paths: drop ".calendar[k]" */
    const char  *action;       /* audit */
    int          status;       /* of the answer */
    int          count;        /* answer "created": sessions added */
} gcho_act_change_t;


/* Steps 2 to 5 of the file's comment once the new text is known; the
 * shifts' array is the caller's to free.  0 (answered) or -1. */
static int
gcho_act_store(gcho_req_t *rq, const gcho_act_change_t *ch,
    const char *text, long index, const char *id, gcho_act_shift_t **shp)
{
    int                   rc, i, n, k;
    char                 *cat, target[GCHO_ID_MAX + 16], num[32];
    long                  changed, before, d_on, d_off, pub_on, pub_off;
    size_t                cat_len, j, nsh;
    PGresult             *res, *rows;
    gchb_arr_t            ids;
    gch_town_t           *t;
    gch_error_t           err;
    const char           *p[2], *kv[4];
    redisContext         *rc2;
    gcho_act_shift_t     *sh;
    const gch_session_t  *s;

    sh = NULL;
    nsh = 0;
    cat = NULL;
    t = NULL;
    memset(&err, 0, sizeof(err));
    rc = gch_town_parse(&t, text, strlen(text), &gch_alloc_std, &err);
    if (rc == GCH_ENOMEM) {
        gcho_rollback();
        return gcho_error(rq, 500, "internal",
                          "Mémoire insuffisante : rien n'a été enregistré.");
    }
    if (rc != GCH_OK) {
        gcho_rollback();
        gcho_cat_path(err.message, "activities", index, ch->calendar);
        return gcho_error(rq, 400, "invalid_field",
                          err.message[0] ? err.message
                                         : "Catalogue invalide.");
    }

    cat = NULL;
    if (gcho_cat_write(t, &cat, &cat_len) != GCH_OK) {
        gch_town_free(t);
        gcho_rollback();
        return gcho_error(rq, 500, "internal",
                          "Une erreur interne est survenue.");
    }

    p[0] = id;
    /* no key update: the persister's bookings (their foreign key to the
     * session) are not held up */
    rows = gcho_sql(rq, "select id, places_published, onsite_published,"
                        "   places, places_online from session"
                        " where activity_id = $1 for no key update", 1, p);
    if (rows == NULL) {
        goto failed;
    }

    before = PQntuples(rows);
    changed = 0;

    if (gchb_catalogue_store(gcho_ctx.pg, t, id, &changed) != 0) {
        PQclear(rows);
        gcho_rollback();
        gcho_unavailable(rq);
        goto failed;
    }

    /* the published sessions whose quotas changed */
    sh = calloc(PQntuples(rows) + 1, sizeof(gcho_act_shift_t));
    *shp = sh;
    if (sh == NULL) {
        PQclear(rows);
        gcho_rollback();
        gcho_error(rq, 500, "internal", "Une erreur interne est survenue.");
        goto failed;
    }

    nsh = 0;
    n = PQntuples(rows);
    memset(&ids, 0, sizeof(ids));

    for (j = 0; j < t->nsessions; j++) {
        s = &t->sessions[j];
        if (strcmp(s->activity->id, id) != 0) {
            continue;
        }

        for (i = 0; i < n; i++) {
            if (strcmp(PQgetvalue(rows, i, 0), s->id) == 0) {
                break;
            }
        }

        if (i == n || PQgetisnull(rows, i, 1)) {
            continue;                     /* new, or never published */
        }

        pub_on = atol(PQgetvalue(rows, i, 1));
        pub_off = PQgetisnull(rows, i, 2)
                  ? atol(PQgetvalue(rows, i, 3)) - atol(PQgetvalue(rows, i, 4))
                  : atol(PQgetvalue(rows, i, 2));
        d_on = s->places_online - pub_on;
        d_off = (s->places - s->places_online) - pub_off;

        if (d_on == 0 && d_off == 0) {
            continue;
        }

        if (nsh == GCHO_ACT_SHIFT_MAX) {
            PQclear(rows);
            gchb_arr_free(&ids, 1);
            gcho_rollback();
            gcho_error(rq, 400, "invalid_field", "Ce changement touche plus "
                       "de 1000 séances déjà publiées : faites-le en "
                       "plusieurs fois.");
            goto failed;
        }

        sh[nsh].id = s->id;
        sh[nsh].d_online = d_on;
        sh[nsh].d_onsite = d_off;
        sh[nsh].booked_online = -1;
        sh[nsh].share = s->activity->online_share_percent;
        sh[nsh].date = s->date;
        sh[nsh].unit = t->units[s->unit].label;

        rc2 = gcho_redis(NULL);
        k = rc2 ? gcho_act_shift(rc2, &sh[nsh], pub_on, pub_off) : -1;
        nsh++;

        if (k < 0) {
            gcho_redis_drop_broken();
            PQclear(rows);
            gchb_arr_free(&ids, 1);
            gcho_act_unshift(sh, nsh);
            gcho_rollback();
            gcho_unavailable(rq);
            goto failed;
        }

        if (k == 0) {
            /* refused: the others are moved back, nothing is changed */
            PQclear(rows);
            gchb_arr_free(&ids, 1);
            gcho_act_unshift(sh, nsh);
            gcho_rollback();
            gcho_act_refuse(rq, 409, "places_below_booked", sh, nsh);
            goto failed;
        }

        gchb_arr_str(&ids, s->id);
    }

    PQclear(rows);

    /* what the counters are now built on: the publisher shifts nothing */
    p[0] = gchb_arr_end(&ids);
    res = p[0] ? gcho_sql(rq,
                     "update session set places_published = places_online,"
                     "   onsite_published = places - places_online"
                     " where id = any($1::text[])", 1, p)
               : NULL;
    gchb_arr_free(&ids, 1);
    if (res == NULL) {
        goto undo;
    }
    PQclear(res);

    p[0] = cat;
    if (gcho_sql_do(rq, "update catalogue set json = $1,"
                        " version = version + 1, updated_at = now()"
                        " where id = 1", 1, p) != 0)
    {
        goto undo;
    }

    if (strncmp(ch->action, "session.", 8) == 0) {
        snprintf(target, sizeof(target), "session:%s", rq->param[0]);
    } else {
        snprintf(target, sizeof(target), "activity:%s", id);
    }
    snprintf(num, sizeof(num), "%zu", nsh);
    kv[0] = "change";
    kv[1] = rq->body;
    kv[2] = "counters_moved";
    kv[3] = num;

    if (gcho_audit_kv(rq, ch->action, target, kv, 2) != 0) {
        goto undo;
    }

    res = gcho_sql(rq, "select count(*) from session"
                       " where activity_id = $1", 1, &id);
    if (res == NULL) {
        goto undo;
    }
    changed = atol(PQgetvalue(res, 0, 0)) - before;
    PQclear(res);

    if (gcho_commit(rq) != 0) {
        goto undo;
    }

    gch_alloc_std.free(gch_alloc_std.ctx, cat);
    gch_town_free(t);

    return gcho_act_answer(rq, ch->status, id, ch->count ? changed : -1);

undo:

    gcho_rollback();
    gcho_act_unshift(sh, nsh);

failed:

    gcho_rollback();
    gch_alloc_std.free(gch_alloc_std.ctx, cat);
    gch_town_free(t);

    return 0;
}


/* Runs a change (see gcho_act_change_t).  0 or -1. */
static int
gcho_act_apply(gcho_req_t *rq, const gcho_act_change_t *ch,
    int check_body, int with_sessions, const char *same_id)
{
    int                rc;
    char              *text, id[GCHO_ID_MAX];
    long               index;
    PGresult          *cat, *res;
    const char        *p[5];
    gcho_act_shift_t  *sh;

    cat = NULL;
    rc = gcho_catalogue_lock(rq, &cat);
    if (rc != GCHO_GO) {
        return rc;
    }

    if (check_body) {
        rc = gcho_act_check(rq, PQgetvalue(cat, 0, 1), with_sessions,
                            same_id);
        if (rc != GCHO_GO) {
            PQclear(cat);
            gcho_rollback();
            return rc;
        }
    }

    p[0] = PQgetvalue(cat, 0, 0);
    memcpy(&p[1], ch->params, ch->nparams * sizeof(char *));

    res = gcho_sql(rq, ch->sql, 1 + ch->nparams, p);
    PQclear(cat);
    if (res == NULL) {
        return 0;
    }

    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
        PQclear(res);
        gcho_rollback();
        return ch->status == 201
               ? gcho_error(rq, 409, "already_exists", ch->missing)
               : gcho_error(rq, 404, "not_found", ch->missing);
    }

    text = strdup(PQgetvalue(res, 0, 0));
    index = atol(PQgetvalue(res, 0, 1));
    snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 2));
    PQclear(res);

    if (text == NULL) {
        gcho_rollback();
        return gcho_error(rq, 500, "internal",
                          "Une erreur interne est survenue.");
    }

    sh = NULL;
    rc = gcho_act_store(rq, ch, text, index, id, &sh);
    free(text);
    free(sh);

    return rc;
}


/* ------------------------------------------------------------------ */
/* handlers                                                             */

/* GET /api/staff/activities: the town's units and its activities, from
 * the tables (the catalogue's text is not parsed for a list). */
static int
gcho_act_list(gcho_req_t *rq)
{
    return gcho_reply_row(rq, 200,
        "select json_build_object("
        "  'units', (select coalesce(json_agg(json_build_object("
        "      'code', u.code, 'label', u.label,"
        "      'starts', to_char(make_time(u.starts_min / 60,"
        "        u.starts_min % 60, 0), 'HH24:MI'),"
        "      'ends', case when u.ends_min = 1440 then '24:00' else"
        "        to_char(make_time(u.ends_min / 60, u.ends_min % 60, 0),"
        "        'HH24:MI') end)"
        "      order by u.starts_min, u.code), '[]') from unit u),"
        "  'activities', (select coalesce(json_agg(json_build_object("
        "      'id', a.id, 'name', a.name, 'site', a.site,"
        "      'booking_opens_at', a.booking_opens_at,"
        "      'sessions', s.n, 'first', s.first, 'last', s.last)"
        "      order by a.name, a.id), '[]')"
        "    from activity a left join lateral (select count(*) n,"
        "      min(date) first, max(date) last from session"
        "      where activity_id = a.id) s on true))"
        " from catalogue c where c.id = 1", 0, NULL,
        "Aucune commune n'est chargée.");
}


/* GET /api/staff/activities/{id} */
static int
gcho_act_get(gcho_req_t *rq)
{
    return gcho_act_answer(rq, 200, rq->param[0], -1);
}


/* POST /api/staff/activities: a new activity, as in the town file
 * (sessions and calendar allowed). */
static int
gcho_act_create(gcho_req_t *rq)
{
    gcho_act_change_t  ch;

    memset(&ch, 0, sizeof(ch));
    ch.sql =
        "select case when exists (select 1 from"
        "     jsonb_array_elements(c -> 'activities') e"
        "     where e ->> 'id' = $2::jsonb ->> 'id') then null"
        "   else jsonb_set(c, '{activities}',"
        "     (c -> 'activities') || jsonb_build_array($2::jsonb))::text end,"
        "   jsonb_array_length(c -> 'activities'), $2::jsonb ->> 'id'"
        " from (select $1::jsonb c) x";
    ch.params[0] = rq->body;
    ch.nparams = 1;
    ch.missing = "Une activité porte déjà cet identifiant.";
    ch.action = "activity.create";
    ch.status = 201;
    ch.count = 1;

    return gcho_act_apply(rq, &ch, 1, 1, NULL);
}


/* PUT /api/staff/activities/{id}: the activity's settings, its sessions
 * kept (their online quotas follow online_share_percent). */
static int
gcho_act_update(gcho_req_t *rq)
{
    gcho_act_change_t  ch;

    memset(&ch, 0, sizeof(ch));
    ch.sql =
        "select jsonb_set(c, array['activities', (t.i - 1)::text],"
        "     $2::jsonb || jsonb_build_object('sessions',"
        "                    coalesce(t.a -> 'sessions', '[]')))::text,"
        "   t.i - 1, t.a ->> 'id'"
        " from (select $1::jsonb c) x,"
        "   jsonb_array_elements(c -> 'activities') with ordinality t(a, i)"
        " where t.a ->> 'id' = $3";
    ch.params[0] = rq->body;
    ch.params[1] = rq->param[0];
    ch.nparams = 2;
    ch.missing = "Cette activité n'existe pas.";
    ch.action = "activity.update";
    ch.status = 200;

    return gcho_act_apply(rq, &ch, 1, 0, rq->param[0]);
}


/* Writes the periods of [from, to] outside the closed ones (sorted
 * days) as calendar objects.  The number of periods. */
static int
gcho_act_periods(gch_jout_t *o, gch_day_t from, gch_day_t to,
    const gch_day_t *cf, const gch_day_t *ct, size_t nc,
    const gch_jnode_t *weekdays, const gch_jnode_t *units, long places)
{
    int                 n, closed;
    char                buf[11];
    size_t              i;
    gch_day_t           d, start;
    const gch_jnode_t  *e;

    n = 0;
    start = -1;

    for (d = from; d <= to + 1; d++) {
        closed = d > to;
        for (i = 0; i < nc && !closed; i++) {
            closed = d >= cf[i] && d <= ct[i];
        }

        if (!closed && start < 0) {
            start = d;
            continue;
        }

        if (!closed || start < 0) {
            continue;
        }

        yajl_gen_map_open(o->g);
        gch_jout_cstr(o, "from");
        gch_day_format(start, buf);
        gch_jout_cstr(o, buf);
        gch_jout_cstr(o, "to");
        gch_day_format(d - 1, buf);
        gch_jout_cstr(o, buf);
        gch_jout_cstr(o, "weekdays");
        yajl_gen_array_open(o->g);
        for (e = weekdays->child; e != NULL; e = e->next) {
            yajl_gen_number(o->g, e->str, e->len);
        }
        yajl_gen_array_close(o->g);
        gch_jout_cstr(o, "units");
        yajl_gen_array_open(o->g);
        for (e = units->child; e != NULL; e = e->next) {
            gch_jout_str(o, e->str, e->len);
        }
        yajl_gen_array_close(o->g);
        gch_jout_cstr(o, "places");
        yajl_gen_integer(o->g, places);
        yajl_gen_map_close(o->g);

        n++;
        start = -1;
    }

    return n;
}


/*
 * POST /api/staff/activities/{id}/sessions: {"from", "to", "weekdays",
 * "units", "places", "closed": [{"from", "to"}]}: one session per day of
 * [from, to] on the weekdays, outside the closed periods (school
 * holidays, closed days) and the public holidays, times each unit; a day
 * and unit that already has a session keeps it.  Answers the activity
 * with "created".
 */
static int
gcho_act_generate(gcho_req_t *rq)
{
    static const gch_jfield_t  f[] = {
        { "from", GCH_J_STRING, 1 },
        { "to", GCH_J_STRING, 1 },
        { "weekdays", GCH_J_ARRAY, 1 },
        { "units", GCH_J_ARRAY, 1 },
        { "places", GCH_J_NUMBER, 1 },
        { "closed", GCH_J_ARRAY, 0 },
    };

    int                 rc, n;
    char               *periods, msg[256];
    size_t              len, nc;
    long long           places;
    gch_day_t           from, to, cf[GCHO_ACT_CLOSED_MAX],
                        ct[GCHO_ACT_CLOSED_MAX];
    gch_jcx_t           cx;
    gch_json_t          doc;
    gch_jout_t          o;
    gch_error_t         err;
    const gch_jnode_t  *v[6], *e, *m;
    gcho_act_change_t   ch;

    if (gcho_body_json(rq, &doc, f, 6, v) != 0) {
        return 0;
    }

    memset(&err, 0, sizeof(err));
    gch_jcx_init(&cx, &err);
    rc = -1;

    if (gch_day_parse(&from, v[0]->str, v[0]->len) != 0) {
        snprintf(msg, sizeof(msg), "$.from : date invalide (AAAA-MM-JJ)");
    } else if (gch_day_parse(&to, v[1]->str, v[1]->len) != 0 || to < from) {
        snprintf(msg, sizeof(msg), "$.to : date invalide (AAAA-MM-JJ), "
                 "au plus tôt « from »");
    } else if (gch_json_int(&cx, "places", v[4], 0, 100000, &places) != 0) {
        snprintf(msg, sizeof(msg), "%s", err.message);
    } else if (v[5] != NULL && v[5]->len > GCHO_ACT_CLOSED_MAX) {
        snprintf(msg, sizeof(msg), "$.closed : au plus %d périodes",
                 GCHO_ACT_CLOSED_MAX);
    } else {
        rc = 0;
    }

    for (e = v[2]->child; rc == 0 && e != NULL; e = e->next) {
        if (e->type != GCH_J_NUMBER) {
            snprintf(msg, sizeof(msg), "$.weekdays : jours de 1 (lundi) "
                     "à 7 (dimanche) attendus");
            rc = -1;
        }
    }

    for (e = v[3]->child; rc == 0 && e != NULL; e = e->next) {
        if (e->type != GCH_J_STRING) {
            snprintf(msg, sizeof(msg), "$.units : codes d'unités attendus");
            rc = -1;
        }
    }

    nc = 0;
    for (e = v[5] ? v[5]->child : NULL; rc == 0 && e != NULL; e = e->next) {
        const gch_jnode_t  *a, *b;

        a = b = NULL;
        for (m = e->type == GCH_J_OBJECT ? e->child : NULL; m; m = m->next) {
            if (m->klen == 4 && memcmp(m->key, "from", 4) == 0) {
                a = m;
            } else if (m->klen == 2 && memcmp(m->key, "to", 2) == 0) {
                b = m;
            } else {
                a = b = NULL;
                break;
            }
        }

        if (a == NULL || b == NULL || a->type != GCH_J_STRING
            || b->type != GCH_J_STRING
            || gch_day_parse(&cf[nc], a->str, a->len) != 0
            || gch_day_parse(&ct[nc], b->str, b->len) != 0
            || ct[nc] < cf[nc])
        {
            snprintf(msg, sizeof(msg), "$.closed[%zu] : {\"from\": date, "
                     "\"to\": date} attendu (AAAA-MM-JJ, to ≥ from)", nc);
            rc = -1;
            break;
        }
        nc++;
    }

    if (rc != 0) {
        gch_json_free(&doc);
        return gcho_error(rq, 400, "invalid_field", msg);
    }

    if (gch_jout_init(&o, &gch_alloc_std) != 0) {
        gch_json_free(&doc);
        return gcho_error(rq, 500, "internal",
                          "Une erreur interne est survenue.");
    }

    yajl_gen_array_open(o.g);
    n = gcho_act_periods(&o, from, to, cf, ct, nc, v[2], v[3], places);
    yajl_gen_array_close(o.g);
    gch_json_free(&doc);

    if (gch_jout_detach(&o, &periods, &len) != 0) {
        return gcho_error(rq, 500, "internal",
                          "Une erreur interne est survenue.");
    }

    if (n == 0) {
        gch_alloc_std.free(gch_alloc_std.ctx, periods);
        return gcho_error(rq, 400, "invalid_field",
                          "$.closed : toute la période est fermée.");
    }

    memset(&ch, 0, sizeof(ch));
    ch.sql =
        "select jsonb_set(c, array['activities', (t.i - 1)::text],"
        "     t.a || jsonb_build_object('calendar', $2::jsonb))::text,"
        "   t.i - 1, t.a ->> 'id'"
        " from (select $1::jsonb c) x,"
        "   jsonb_array_elements(c -> 'activities') with ordinality t(a, i)"
        " where t.a ->> 'id' = $3";
    ch.params[0] = periods;
    ch.params[1] = rq->param[0];
    ch.nparams = 2;
    ch.missing = "Cette activité n'existe pas.";
    ch.calendar = 1;
    ch.action = "activity.sessions";
    ch.status = 200;
    ch.count = 1;

    rc = gcho_act_apply(rq, &ch, 0, 1, NULL);
    gch_alloc_std.free(gch_alloc_std.ctx, periods);

    return rc;
}


/*
 * PUT /api/staff/sessions/{id}: {"places": n, "label": "..."} (either):
 * the session's places (its online quota follows the activity's share),
 * its label.  Answers the session's activity.
 */
static int
gcho_act_session(gcho_req_t *rq)
{
    static const gch_jfield_t  f[] = {
        { "places", GCH_J_NUMBER, 0 },
        { "label", GCH_J_STRING | GCH_J_NULL, 0 },
    };

    char                places[32], label[256];
    long long           n;
    gch_jcx_t           cx;
    gch_json_t          doc;
    gch_error_t         err;
    const gch_jnode_t  *v[2];
    gcho_act_change_t   ch;

    if (gcho_body_json(rq, &doc, f, 2, v) != 0) {
        return 0;
    }

    memset(&err, 0, sizeof(err));
    gch_jcx_init(&cx, &err);
    places[0] = '\0';
    label[0] = '\0';

    if ((v[0] == NULL && (v[1] == NULL || v[1]->type == GCH_J_NULL))
        || (v[0] != NULL
            && gch_json_int(&cx, "places", v[0], 0, 100000, &n) != 0))
    {
        gch_json_free(&doc);
        return gcho_error(rq, 400, "invalid_field",
                          err.message[0] ? err.message
                          : "$.places : nombre de places attendu.");
    }

    if (v[0] != NULL) {
        snprintf(places, sizeof(places), "%lld", n);
    }

    if (v[1] != NULL && v[1]->type == GCH_J_STRING
        && gcho_str(rq, "label", v[1], label, 201, 1) != 0)
    {
        gch_json_free(&doc);
        return 0;
    }

    gch_json_free(&doc);

    memset(&ch, 0, sizeof(ch));
    ch.sql =
        "select jsonb_set(c, array['activities', (t.i - 1)::text,"
        "     'sessions', (u.j - 1)::text],"
        "     u.s || jsonb_strip_nulls(jsonb_build_object("
        "       'places', $2::int, 'label', $3::text)))::text,"
        "   t.i - 1, t.a ->> 'id'"
        " from (select $1::jsonb c) x,"
        "   jsonb_array_elements(c -> 'activities') with ordinality t(a, i),"
        "   jsonb_array_elements(t.a -> 'sessions') with ordinality u(s, j)"
        " where u.s ->> 'id' = $4";
    ch.params[0] = places[0] ? places : NULL;
    ch.params[1] = label[0] ? label : NULL;
    ch.params[2] = rq->param[0];
    ch.nparams = 3;
    ch.missing = "Cette séance n'existe pas.";
    ch.action = "session.update";
    ch.status = 200;

    return gcho_act_apply(rq, &ch, 0, 0, NULL);
}


const gcho_route_t  gcho_activity_routes[] = {
    { "GET", "/api/staff/activities", GCHO_STAFF, GCHO_AGENT, 0,
      gcho_act_list },
    { "POST", "/api/staff/activities", GCHO_STAFF, GCHO_REGIE,
      GCHO_BODY_JSON, gcho_act_create },
    { "GET", "/api/staff/activities/*", GCHO_STAFF, GCHO_AGENT, 0,
      gcho_act_get },
    { "PUT", "/api/staff/activities/*", GCHO_STAFF, GCHO_REGIE,
      GCHO_BODY_JSON, gcho_act_update },
    { "POST", "/api/staff/activities/*/sessions", GCHO_STAFF, GCHO_REGIE,
      GCHO_BODY_JSON, gcho_act_generate },
    { "PUT", "/api/staff/sessions/*", GCHO_STAFF, GCHO_REGIE,
      GCHO_BODY_JSON, gcho_act_session },
    { NULL, NULL, 0, 0, 0, NULL }
};
