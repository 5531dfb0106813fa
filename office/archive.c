/*
 * archive.c -- an admin archives a family (RGPD; issue 26, docs/office.md
 * "Families", *Archiving*): POST /api/staff/families/{id}/archive.
 *
 * A room of its own, apart from family.c's record and changes: archiving
 * erases rather than changes.  Refused while the family still has
 * business with the town (unpaid invoices, bookings to come, an online
 * payment pending).  Otherwise one transaction under the catalogue's
 * locks (gcho_catalogue_lock/_put of catalogue.c) takes the family out of
 * the catalogue, so that the booking path no longer knows it, and erases
 * what identifies it and its people, and its words in the rows kept (the
 * audit log's free text: audit_log_erase(), migration 0140; refusal
 * reasons, attendance notes), keeping what accounting needs; after the
 * commit the files of its documents and attachments go (queued in
 * upload_erasure by the transaction, so that an archiving retried after a
 * crash finishes them), and its keys of Redis (connections, documents,
 * its co-responsables' logins).  The
 * answer is the family's record as family.c gives it (gcho_fam_answer).
 * merge.c archives the duplicate it merges its own way.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "office.h"


/* What archiving erases ($1 the family; the first also $2 the staff). */
static const char *const  gcho_fam_erase[] = {
    "update family set login = null, password_hash = null,"
    "   archived_at = now(), archived_by = $2 where id = $1",
    "update child set first_name = 'Archivé', allergies = null"
    " where family_id = $1",
    "delete from family_email where family_id = $1",
    "delete from family_contact where family_id = $1",
    "delete from address_change where family_id = $1",
    "delete from entourage_person where family_id = $1",
    "delete from password_reset where family_id = $1",
    "delete from calendar_feed where family_id = $1",
    "delete from family_code where family_id = $1",
    "delete from account_activation where family_id = $1",
    /* a file asked online: parents' names, e-mail, login, hash chosen */
    "delete from family_request where family_id = $1",
    /* its requests of a new QF: its comment on its situation, the
     * refusal's reason (the QF in effect stays in family_qf) */
    "delete from qf_change where family_id = $1",
    "delete from message where thread_id in (select id from"
    "   message_thread where family_id = $1)",
    "delete from message_thread where family_id = $1",
    "delete from outbox where family_id = $1",
    /* the staff's free text about it in the rows kept (migration 0140) */
    "update enrolment set reason = 'effacé à l''archivage'"
    " where reason is not null and child_id in"
    "   (select id from child where family_id = $1)",
    "update booking_justification set refusal_reason ="
    "   'effacé à l''archivage'"
    " where family_id = $1 and refusal_reason is not null",
    "update attendance set note = '' where note <> '' and booking_id in"
    "   (select id from booking where family_id = $1)",
    NULL
};


/*
 * After the archiving's commit (fid, its co-responsables' logins in cors,
 * or NULL): the files its transaction queued in upload_erasure are
 * unlinked (their rows deleted), its connection history and document
 * list leave Redis, the logins leave {T}:logins.  Run again by an
 * archiving retried (409 family_archived), it finishes what a crash after
 * the commit left.  Errors are logged: the answer is the archiving's.
 */
static void
gcho_fam_archive_finish(const char *fid, PGresult *cors)
{
    int    i;
    char   key[512];

    gcho_upload_erase(fid, "archive");

    if (gcho_redis(NULL) != NULL) {
        snprintf(key, sizeof(key), GCH_KEY_F(GCH_KEY_CONNECTIONS),
                 gchb_town, fid);
        freeReplyObject(redisCommand(gcho_ctx.redis, "DEL %s", key));
        snprintf(key, sizeof(key), GCH_KEY_F(GCH_KEY_DOCUMENTS),
                 gchb_town, fid);
        freeReplyObject(redisCommand(gcho_ctx.redis, "DEL %s", key));
        for (i = 0; cors != NULL && i < PQntuples(cors); i++) {
            if (!PQgetisnull(cors, i, 0)) {
                freeReplyObject(redisCommand(gcho_ctx.redis,
                                             "HDEL " GCH_KEY_LOGINS " %s",
                                             gchb_town,
                                             PQgetvalue(cors, i, 0)));
            }
        }
        gcho_redis_drop_broken();
    }
}


/*
 * POST /api/staff/families/{id}/archive (admin): refused (409
 * family_active) while the family has unpaid invoices, bookings to come
 * or an online payment pending.  Otherwise, in one transaction: the
 * family leaves the catalogue (the booking path no longer knows it, its
 * sessions end), its login, password, e-mail, entourage, reset links,
 * messages, e-mails, documents (rows, then files) and its children's
 * first names and allergies are erased, and its words in the rows kept:
 * the audit log's free text (audit_log_erase(), migration 0140: who did
 * what and when stays), refusal reasons and attendance notes; what
 * accounting needs is kept (docs/office.md, *Families*).
 */
static int
gcho_fam_archive(gcho_req_t *rq)
{
    int          rc, i;
    PGresult    *cat, *res, *files, *atts, *cors;
    gch_town_t  *t;
    const char  *p[2];

    rc = gcho_catalogue_lock(rq, &cat);
    if (rc != GCHO_GO) {
        return rc;
    }

    p[0] = rq->param[0];
    res = gcho_sql(rq,
        "select f.archived_at is not null,"
        "  (select count(*) from invoice i where i.family_id = f.id"
        "     and not i.paid),"
        "  (select count(*) from booking b join session s"
        "     on s.id = b.session_id where b.family_id = f.id"
        "     and b.status = 'confirmed' and s.date >="
        "       (now() at time zone 'Europe/Paris')::date),"
        "  (select count(*) from payment_operation o"
        "     where o.family_id = f.id and o.status = 'pending')"
        " from family f where f.id = $1 for no key update", 1, p);
    if (res == NULL) {
        PQclear(cat);
        return 0;
    }

    if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
        rc = PQntuples(res);
        PQclear(res);
        PQclear(cat);
        gcho_rollback();
        if (rc == 0) {
            return gcho_error(rq, 404, "not_found",
                              "Cette famille n'existe pas.");
        }
        gcho_fam_archive_finish(rq->param[0], NULL);
        return gcho_error(rq, 409, "family_archived",
                          "Cette famille est déjà archivée.");
    }

    if (strcmp(PQgetvalue(res, 0, 1), "0") || strcmp(PQgetvalue(res, 0, 2),
                                                     "0")
        || strcmp(PQgetvalue(res, 0, 3), "0"))
    {
        char  msg[256];

        snprintf(msg, sizeof(msg), "Cette famille a encore %s facture(s) "
                 "non payée(s), %s réservation(s) à venir et %s paiement(s) "
                 "en cours : réglez-les avant de l'archiver.",
                 PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2),
                 PQgetvalue(res, 0, 3));
        PQclear(res);
        PQclear(cat);
        gcho_rollback();
        return gcho_error(rq, 409, "family_active", msg);
    }
    PQclear(res);

    /* out of the catalogue */
    p[0] = PQgetvalue(cat, 0, 0);
    p[1] = rq->param[0];
    res = gcho_sql(rq, "select jsonb_set(c, '{families}', coalesce(("
                       "   select jsonb_agg(e order by i) from"
                       "   jsonb_array_elements(c -> 'families')"
                       "     with ordinality t(e, i)"
                       "   where e ->> 'id' <> $2), '[]'))::text"
                       " from (select $1::jsonb c) x", 2, p);
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
    p[1] = rq->staff;

    /* the documents' rows; their files are unlinked after the commit,
     * queued in upload_erasure so that a crash in between leaves them to
     * the archiving retried (gcho_fam_archive_finish()) */
    files = gcho_sql(rq, "with d as (delete from document"
                         "   where family_id = $1 returning stored_name),"
                         " q as (insert into upload_erasure"
                         "   (stored_name, family_id)"
                         "   select stored_name, $1 from d"
                         "   on conflict do nothing)"
                         " select stored_name from d", 1, p);
    if (files == NULL) {
        return 0;
    }

    /* the messages' attachments, the family's and the staff's on its
     * threads, and the family's not yet sent (before the messages they
     * point at; their files after the commit, as the documents') */
    atts = gcho_sql(rq, "with d as (delete from message_attachment"
                        "   where family_id = $1 or message_id in"
                        "     (select m.id from message m"
                        "      join message_thread t on t.id = m.thread_id"
                        "      where t.family_id = $1)"
                        "   returning stored_name),"
                        " q as (insert into upload_erasure"
                        "   (stored_name, family_id)"
                        "   select stored_name, $1 from d"
                        "   on conflict do nothing)"
                        " select stored_name from d", 1, p);
    if (atts == NULL) {
        PQclear(files);
        return 0;
    }

    /* the co-responsables, invited or active (their logins leave Redis
     * after the commit, as the worker would drop them) */
    cors = gcho_sql(rq, "delete from co_responsable where family_id = $1"
                        " returning case when removed_at is null"
                        " then login end", 1, p);
    if (cors == NULL) {
        PQclear(files);
        PQclear(atts);
        return 0;
    }

    for (i = 0; gcho_fam_erase[i] != NULL; i++) {
        if (gcho_sql_do(rq, gcho_fam_erase[i], i == 0 ? 2 : 1, p) != 0) {
            PQclear(files);
            PQclear(atts);
            PQclear(cors);
            return 0;
        }
    }

    {
        char         target[GCHO_ID_MAX + 8], nd[16], na[24];
        const char  *kv[4] = { "documents_erased", nd, "audit_erased", na };

        /* its words in the audit log: who did what and when stays (0140) */
        snprintf(nd, sizeof(nd), "%d", PQntuples(files));
        snprintf(target, sizeof(target), "family:%s", rq->param[0]);
        if (gcho_sql_value(rq, na, sizeof(na), "select audit_log_erase($1)",
                           1, p) < 0
            || gcho_audit_kv(rq, "family.archive", target, kv, 2) != 0
            || gcho_commit(rq) != 0)
        {
            PQclear(files);
            PQclear(atts);
            PQclear(cors);
            return 0;
        }
    }

    /* after the commit: the files, the family's keys of Redis */
    PQclear(files);
    PQclear(atts);
    gcho_fam_archive_finish(rq->param[0], cors);
    PQclear(cors);

    return gcho_fam_answer(rq, 200, rq->param[0]);
}


const gcho_route_t  gcho_archive_routes[] = {
    { "POST", "/api/staff/families/*/archive", GCHO_STAFF, GCHO_ADMIN, 0,
      gcho_fam_archive },
    { NULL, NULL, 0, 0, 0, NULL }
};
