/*
 * merge.c -- an admin merges a duplicate family into the one kept (issue
 * 26, docs/office.md "Merging duplicate families").
 *
 * POST /api/staff/families/{A}/merge {"from": B}: B's children (their ids
 * kept, so their enrolments and attendance follow), bookings, their
 * cancellations and justifications, invoices, payments, credit notes and
 * refunds, mandates (B's active one ended), documents, messages,
 * entourage and QF change requests move to A; B is archived (login,
 * password, e-mail, contact details, calendar feed, activation codes and
 * reset links erased; its QF history, demandes and e-mails kept under
 * B).  In the catalogue B's children join A's object and B's object
 * goes (the booking path no longer knows B, its tokens are refused):
 * catalogue.version + 1, so guichet-worker's publisher republishes it.
 *
 * Refused, nothing changed, while it would not be safe (409
 * merge_refused, the message says why): B has bookings to come (their
 * Redis records are B's: cancel them first), bookings the booking path
 * took that PostgreSQL does not hold yet (in flight: try again in a
 * moment), an online payment pending, or an invoice of a month A was
 * invoiced for too (one invoice per family and month).  One
 * transaction, under the catalogue's locks, with its audit row; after
 * the commit B's attachments never sent are unlinked (queued in
 * upload_erasure by the transaction: a merge retried after a crash,
 * answered 409 family_archived, unlinks them), B's Redis records of past
 * bookings and documents move to A, and both families' invoices are
 * republished.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "office.h"


/* What moves from B ($2) to A ($1). */
static const char *const  gcho_merge_moves[] = {
    "update child set family_id = $1 where family_id = $2",
    "update booking set family_id = $1 where family_id = $2",
    "update booking_cancellation set family_id = $1 where family_id = $2",
    "update booking_justification set family_id = $1 where family_id = $2",
    "update invoice set family_id = $1 where family_id = $2",
    "update payment_operation set family_id = $1 where family_id = $2",
    "update counter_payment set family_id = $1 where family_id = $2",
    "update refund set family_id = $1 where family_id = $2",
    "update direct_debit_mandate set ended_at = now(), family_id = $1"
    " where family_id = $2 and ended_at is null",
    "update direct_debit_mandate set family_id = $1 where family_id = $2",
    "update document set family_id = $1 where family_id = $2",
    "update message_thread set family_id = $1 where family_id = $2",
    "update entourage_person set family_id = $1 where family_id = $2",
    "update qf_change set family_id = $1 where family_id = $2",
    NULL
};

/* B ($1) archived by $2: what identifies its account goes (the first
 * takes both). */
static const char *const  gcho_merge_erase[] = {
    "update family set login = null, password_hash = null,"
    "   archived_at = now(), archived_by = $2 where id = $1",
    "delete from family_email where family_id = $1",
    "delete from family_contact where family_id = $1",
    "delete from address_change where family_id = $1",
    "delete from calendar_feed where family_id = $1",
    "delete from family_code where family_id = $1",
    "delete from account_activation where family_id = $1",
    "delete from password_reset where family_id = $1",
    /* a file asked online: parents' names, e-mail, login, hash chosen */
    "delete from family_request where family_id = $1",
    NULL
};


/* The ids of B's bookings the booking path holds (Redis), as a text[]
 * literal (malloc'ed), or NULL after answering 503 or 500. */
static char *
gcho_merge_redis_ids(gcho_req_t *rq, const char *from)
{
    size_t       i;
    char         key[512], *out;
    gchb_arr_t   a;
    const char  *lit;
    redisReply  *r;

    if (gcho_redis(rq) == NULL) {
        return NULL;
    }

    snprintf(key, sizeof(key), GCH_KEY_F(GCH_KEY_BOOKINGS), gchb_town,
             from);
    r = redisCommand(gcho_ctx.redis, "HKEYS %s", key);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        if (r != NULL) {
            freeReplyObject(r);
        }
        gcho_redis_drop_broken();
        gcho_unavailable(rq);
        return NULL;
    }

    memset(&a, 0, sizeof(a));
    for (i = 0; i < r->elements; i++) {
        gchb_arr_str(&a, r->element[i]->str);
    }
    freeReplyObject(r);

    lit = gchb_arr_end(&a);
    out = lit ? strdup(lit) : NULL;
    gchb_arr_free(&a, 1);
    if (out == NULL) {
        gcho_error(rq, 500, "internal", "Une erreur interne est survenue.");
    }

    return out;
}


/* After the commit: B's hash of bookings and set of documents in Redis
 * join A's (the booking path's history and the documents an absence may
 * cite), B's co-responsables' logins (cors) go; failures are logged (the
 * worker's rebuild makes them from PostgreSQL). */
static void
gcho_merge_redis(const char *to, const char *from, PGresult *cors)
{
    size_t       i;
    char         kf[512], kt[512];
    redisReply  *r, *x;

    if (gcho_redis(NULL) == NULL) {
        gchb_log("warn", "office: merge %s into %s: redis records not "
                 "moved", from, to);
        return;
    }

    snprintf(kf, sizeof(kf), GCH_KEY_F(GCH_KEY_BOOKINGS), gchb_town, from);
    snprintf(kt, sizeof(kt), GCH_KEY_F(GCH_KEY_BOOKINGS), gchb_town, to);
    r = redisCommand(gcho_ctx.redis, "HGETALL %s", kf);
    if (r != NULL && r->type == REDIS_REPLY_ARRAY) {
        for (i = 0; i + 1 < r->elements; i += 2) {
            x = redisCommand(gcho_ctx.redis, "HSET %s %b %b", kt,
                             r->element[i]->str, r->element[i]->len,
                             r->element[i + 1]->str,
                             r->element[i + 1]->len);
            if (x != NULL) {
                freeReplyObject(x);
            }
        }
        freeReplyObject(redisCommand(gcho_ctx.redis, "DEL %s", kf));
    }
    if (r != NULL) {
        freeReplyObject(r);
    }

    snprintf(kf, sizeof(kf), GCH_KEY_F(GCH_KEY_DOCUMENTS), gchb_town, from);
    snprintf(kt, sizeof(kt), GCH_KEY_F(GCH_KEY_DOCUMENTS), gchb_town, to);
    r = redisCommand(gcho_ctx.redis, "SMEMBERS %s", kf);
    if (r != NULL && r->type == REDIS_REPLY_ARRAY) {
        for (i = 0; i < r->elements; i++) {
            x = redisCommand(gcho_ctx.redis, "SADD %s %b", kt,
                             r->element[i]->str, r->element[i]->len);
            if (x != NULL) {
                freeReplyObject(x);
            }
        }
        freeReplyObject(redisCommand(gcho_ctx.redis, "DEL %s", kf));
    }
    if (r != NULL) {
        freeReplyObject(r);
    }

    snprintf(kf, sizeof(kf), GCH_KEY_F(GCH_KEY_CONNECTIONS), gchb_town,
             from);
    freeReplyObject(redisCommand(gcho_ctx.redis, "DEL %s", kf));

    if (gchb_invoice_publish_family(gcho_ctx.pg, gcho_ctx.redis, NULL, to)
        < 0)
    {
        gchb_log("warn", "office: invoices of %s not republished after "
                 "merge (the next invoicing run will)", to);
    }
    snprintf(kf, sizeof(kf), GCH_KEY_F(GCH_KEY_INVOICES), gchb_town, from);
    freeReplyObject(redisCommand(gcho_ctx.redis, "DEL %s", kf));

    for (i = 0; i < (size_t) PQntuples(cors); i++) {
        if (!PQgetisnull(cors, (int) i, 0)) {
            freeReplyObject(redisCommand(gcho_ctx.redis,
                                         "HDEL " GCH_KEY_LOGINS " %s",
                                         gchb_town,
                                         PQgetvalue(cors, (int) i, 0)));
        }
    }

    gcho_redis_drop_broken();
}


/*
 * POST /api/staff/families/{id}/merge (admin): {"from": B}.  200 {"id",
 * "merged": B, "children": [...]}.
 */
static int
gcho_merge(gcho_req_t *rq)
{
    static const gch_jfield_t  f[] = {
        { "from", GCH_J_STRING, 1 },
    };

    int                 rc, i;
    char                from[GCHO_ID_MAX], msg[512], *ids;
    PGresult           *cat, *res, *cors;
    gch_json_t          doc;
    gch_town_t         *t;
    const char         *p[4];
    const gch_jnode_t  *v[1];

    if (gcho_body_json(rq, &doc, f, 1, v) != 0) {
        return 0;
    }
    if (gcho_str(rq, "from", v[0], from, sizeof(from), 1) != 0) {
        gch_json_free(&doc);
        return 0;
    }
    gch_json_free(&doc);

    if (strcmp(from, rq->param[0]) == 0) {
        return gcho_error(rq, 400, "invalid_field", "$.from : une autre "
                          "famille que celle gardée");
    }

    ids = gcho_merge_redis_ids(rq, from);
    if (ids == NULL) {
        return 0;
    }

    rc = gcho_catalogue_lock(rq, &cat);
    if (rc != GCHO_GO) {
        free(ids);
        return rc;
    }

    p[0] = rq->param[0];
    p[1] = from;
    if (gcho_sql_do(rq, "select 1 from family where id in ($1, $2)"
                        " order by id for no key update", 2, p) != 0)
    {
        free(ids);
        PQclear(cat);
        return 0;
    }

    p[2] = ids;
    res = gcho_sql(rq,
        "select (select count(*) from family where id in ($1, $2)),"
        "  (select count(*) from family where id in ($1, $2)"
        "     and archived_at is not null),"
        "  (select count(*) from booking b join session s"
        "     on s.id = b.session_id where b.family_id = $2"
        "     and b.status = 'confirmed' and s.date >="
        "       (now() at time zone 'Europe/Paris')::date),"
        "  (select count(*) from unnest($3::text[]) x where not exists"
        "     (select 1 from booking b where b.id = x)),"
        "  (select count(*) from payment_operation o"
        "     where o.family_id = $2 and o.status = 'pending'),"
        "  (select coalesce(string_agg(to_char(b.month, 'MM/YYYY'), ', '"
        "     order by b.month), '') from invoice a join invoice b"
        "     on a.month = b.month where a.family_id = $1"
        "     and b.family_id = $2)", 3, p);
    free(ids);
    if (res == NULL) {
        PQclear(cat);
        return 0;
    }

    rc = 0;
    if (strcmp(PQgetvalue(res, 0, 0), "2") != 0) {
        rc = 404;
        snprintf(msg, sizeof(msg), "Une de ces familles n'existe pas.");
    } else if (strcmp(PQgetvalue(res, 0, 1), "0") != 0) {
        rc = 4090;
        snprintf(msg, sizeof(msg), "Une de ces familles est archivée.");
    } else if (strcmp(PQgetvalue(res, 0, 2), "0") != 0) {
        rc = 409;
        snprintf(msg, sizeof(msg), "La famille %s a %s réservation(s) à "
                 "venir : annulez-les (et refaites-les pour la famille "
                 "gardée) avant de fusionner.", from,
                 PQgetvalue(res, 0, 2));
    } else if (strcmp(PQgetvalue(res, 0, 3), "0") != 0) {
        rc = 409;
        snprintf(msg, sizeof(msg), "La famille %s a %s réservation(s) en "
                 "cours d'enregistrement : réessayez dans un instant.",
                 from, PQgetvalue(res, 0, 3));
    } else if (strcmp(PQgetvalue(res, 0, 4), "0") != 0) {
        rc = 409;
        snprintf(msg, sizeof(msg), "La famille %s a un paiement en ligne "
                 "en cours : attendez qu'il se termine.", from);
    } else if (PQgetvalue(res, 0, 5)[0] != '\0') {
        rc = 409;
        snprintf(msg, sizeof(msg), "Les deux familles ont une facture pour "
                 "le même mois (%s) : une facture par famille et par mois.",
                 PQgetvalue(res, 0, 5));
    }
    PQclear(res);

    if (rc != 0) {
        PQclear(cat);
        gcho_rollback();
        if (rc == 4090) {
            /* a merge retried after a crash between its commit and its
             * unlinks: the files it queued go (either family's, the
             * archived one's) */
            gcho_upload_erase(rq->param[0], "merge");
            gcho_upload_erase(from, "merge");
        }
        return rc == 404 ? gcho_error(rq, 404, "not_found", msg)
               : rc == 4090 ? gcho_error(rq, 409, "family_archived", msg)
               : gcho_error(rq, 409, "merge_refused", msg);
    }

    /* the catalogue: B's children join A's object, B's object goes */
    p[0] = PQgetvalue(cat, 0, 0);
    p[1] = rq->param[0];
    p[2] = from;
    res = gcho_sql(rq,
        "select jsonb_set(c, '{families}', coalesce(("
        "   select jsonb_agg(case when e ->> 'id' = $2"
        "     then jsonb_set(e, '{children}',"
        "       coalesce(e -> 'children', '[]') || coalesce(("
        "         select e2 -> 'children'"
        "         from jsonb_array_elements(c -> 'families') e2"
        "         where e2 ->> 'id' = $3), '[]'))"
        "     else e end order by i)"
        "   from jsonb_array_elements(c -> 'families')"
        "     with ordinality t(e, i)"
        "   where e ->> 'id' <> $3), '[]'))::text"
        " from (select $1::jsonb c) x", 3, p);
    PQclear(cat);
    if (res == NULL) {
        return 0;
    }

    t = NULL;
    rc = gcho_catalogue_put(rq, PQgetvalue(res, 0, 0), "families", -1, &t);
    PQclear(res);
    if (rc != GCHO_GO) {
        return rc;
    }
    gch_town_free(t);

    p[0] = rq->param[0];
    p[1] = from;
    p[2] = rq->staff;
    for (i = 0; gcho_merge_moves[i] != NULL; i++) {
        if (gcho_sql_do(rq, gcho_merge_moves[i], 2, p) != 0) {
            return 0;
        }
    }
    for (i = 0; gcho_merge_erase[i] != NULL; i++) {
        if (gcho_sql_do(rq, gcho_merge_erase[i], i == 0 ? 2 : 1, p + 1) != 0) {
            return 0;
        }
    }

    /* B's co-responsables, invited or active, as archiving erases them
     * (their login opened a session on B's archived file; the family
     * kept may invite them again); their logins leave Redis after the
     * commit */
    cors = gcho_sql(rq, "delete from co_responsable where family_id = $1"
                        " returning case when removed_at is null"
                        " then login end", 1, p + 1);
    if (cors == NULL) {
        return 0;
    }

    /* B's attachments never sent: nobody may send nor see them now (a
     * sent one follows its thread); their files after the commit, queued
     * in upload_erasure so that a crash in between leaves them to the
     * merge retried (as archive.c's) */
    if (gcho_sql_do(rq, "with d as (delete from message_attachment"
                        "   where family_id = $1 and message_id is null"
                        "   returning stored_name)"
                        " insert into upload_erasure (stored_name, family_id)"
                        " select stored_name, $1 from d"
                        " on conflict do nothing", 1, p + 1) != 0)
    {
        PQclear(cors);
        return 0;
    }

    {
        char         target[GCHO_ID_MAX + 8];
        const char  *kv[2] = { "from", from };

        snprintf(target, sizeof(target), "family:%s", rq->param[0]);
        if (gcho_audit_kv(rq, "family.merge", target, kv, 1) != 0
            || gcho_commit(rq) != 0)
        {
            PQclear(cors);
            return 0;
        }
    }

    gcho_upload_erase(from, "merge");

    gcho_merge_redis(rq->param[0], from, cors);
    PQclear(cors);

    p[0] = rq->param[0];
    p[1] = from;
    return gcho_reply_row(rq, 200,
        "select json_build_object('id', $1::text, 'merged', $2::text,"
        "  'children', (select coalesce(json_agg(c.id order by c.id), '[]')"
        "    from child c where c.family_id = $1))", 2, p, "");
}


const gcho_route_t  gcho_merge_routes[] = {
    { "POST", "/api/staff/families/*/merge", GCHO_STAFF, GCHO_ADMIN,
      GCHO_BODY_JSON, gcho_merge },
    { NULL, NULL, 0, 0, 0, NULL }
};
