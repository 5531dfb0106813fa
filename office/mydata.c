/*
 * mydata.c -- the family's right of access (RGPD, article 15; issue 25):
 *
 *   GET /api/my-data      everything the town holds on the family's file,
 *                         as one JSON download
 *
 * Each part is the family's rows as they are stored (to_jsonb of the
 * row), so that a column added later is exported without a change here;
 * only secrets are left out: password and code hashes, the tokens of
 * activation links, invitations, password resets and calendar feeds,
 * and the names of the stored files (the documents are listed, their
 * files are downloaded one by one from Mes documents).  The connections are the
 * module's list in Redis (account.c).  The export is itself audited
 * (action "family.data_export") in the transaction that reads the rows,
 * so that the family's journal says when its data left.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "office.h"


/* The rows of table t (alias a) where w, as a JSON array in order o. */
#define GCHO_MD_ROWS(t, a, w, o)                                             \
    "coalesce((select json_agg(to_jsonb(" a ") order by " o ")"              \
    " from " t " " a " where " w "), '[]'::json)"

/* The message attachments where w, without their name on disk. */
#define GCHO_MD_FILES(w)                                                     \
    "coalesce((select json_agg(to_jsonb(a) - 'stored_name' order by a.id)"   \
    " from message_attachment a where " w "), '[]'::json)"

/* The family's own rows of table t. */
#define GCHO_MD_OWN(t, o)                                                    \
    GCHO_MD_ROWS(t, "x", "x.family_id = $1", o)


static const char  gcho_my_data_sql[] =
    "select json_build_object("
    " 'format', 'guichet-my-data/1',"
    " 'exported_at', now(),"
    " 'family', (select to_jsonb(f) - 'password_hash'"
    "   from family f where f.id = $1),"
    " 'email', (select to_jsonb(x) from family_email x"
    "   where x.family_id = $1),"
    " 'contact', (select to_jsonb(x) from family_contact x"
    "   where x.family_id = $1),"
    " 'file_request', (select to_jsonb(x) - 'password_hash'"
    "   - 'confirm_hash' from family_request x where x.family_id = $1),"
    " 'address_changes', " GCHO_MD_OWN("address_change", "x.id") ","
    " 'children', " GCHO_MD_OWN("child", "x.birth_date, x.id") ","
    " 'entourage', " GCHO_MD_OWN("entourage_person", "x.id") ","
    " 'co_responsables', coalesce((select json_agg(to_jsonb(x)"
    "   - 'password_hash' - 'invite_hash' order by x.id)"
    "   from co_responsable x where x.family_id = $1), '[]'::json),"
    " 'quotient', json_build_object("
    "   'recorded', " GCHO_MD_OWN("family_qf", "x.id") ","
    "   'requests', " GCHO_MD_OWN("qf_change", "x.id") "),"
    " 'enrolments', "
    GCHO_MD_ROWS("enrolment", "x",
                 "x.child_id in (select id from child where family_id = $1)",
                 "x.from_date, x.child_id, x.activity_id") ","
    " 'documents', coalesce((select json_agg(to_jsonb(x) - 'stored_name'"
    "   order by x.id) from document x where x.family_id = $1),"
    "   '[]'::json),"
    " 'bookings', " GCHO_MD_OWN("booking", "x.created_at, x.id") ","
    " 'demandes', " GCHO_MD_OWN("demande", "x.number") ","
    " 'invoices', coalesce((select json_agg(to_jsonb(x)"
    "   || jsonb_build_object('lines', "
    GCHO_MD_ROWS("invoice_line", "l", "l.invoice_id = x.id",
                 "l.date, l.child_id, l.unit_code") ")"
    "   order by x.number) from invoice x where x.family_id = $1),"
    "   '[]'::json),"
    " 'payments', json_build_object("
    "   'online', coalesce((select json_agg(to_jsonb(x)"
    "     || jsonb_build_object('invoices', (select coalesce(json_agg("
    "       pi.invoice_id order by pi.invoice_id), '[]'::json)"
    "       from payment_operation_invoice pi"
    "       where pi.operation_id = x.id)) order by x.created_at)"
    "     from payment_operation x where x.family_id = $1), '[]'::json),"
    "   'counter', " GCHO_MD_OWN("counter_payment", "x.id") "),"
    " 'direct_debit_mandates', "
    GCHO_MD_OWN("direct_debit_mandate", "x.id") ","
    " 'justifications', "
    GCHO_MD_OWN("booking_justification", "x.justified_at, x.booking_id") ","
    " 'messages', coalesce((select json_agg(to_jsonb(x)"
    "   || jsonb_build_object('messages', coalesce((select json_agg("
    "     to_jsonb(m) || jsonb_build_object('attachments', "
    GCHO_MD_FILES("a.message_id = m.id") ") order by m.id)"
    "     from message m where m.thread_id = x.id), '[]'::json))"
    "   order by x.id) from message_thread x where x.family_id = $1),"
    "   '[]'::json),"
    " 'attachments_not_sent', "
    GCHO_MD_FILES("a.family_id = $1 and a.message_id is null") ","
    " 'calendar_feed', (select to_jsonb(x) - 'token_hash'"
    "   from calendar_feed x where x.family_id = $1),"
    " 'connections', $2::json)::text";


/* GET /api/my-data */
static int
gcho_my_data(gcho_req_t *rq)
{
    int          rc;
    char        *conns, *text, disp[GCHO_ID_MAX + 64];
    PGresult    *res;
    const char  *p[2];

    /* every connection the module keeps (its last GCHO_CONNECTIONS) */
    rc = gcho_history_connections(rq, "0000-00-00", "9999-99-99", &conns);
    if (rc != GCHO_GO) {
        return rc;
    }

    if (gcho_begin(rq) != 0) {
        free(conns);
        return 0;
    }

    p[0] = rq->family_id;
    p[1] = conns;

    res = gcho_sql(rq, gcho_my_data_sql, 2, p);
    free(conns);

    if (res == NULL) {
        return 0;
    }

    if (gcho_audit(rq, "family.data_export", rq->family_id, NULL) != 0
        || gcho_commit(rq) != 0)
    {
        PQclear(res);
        gcho_rollback();
        return 0;
    }

    snprintf(disp, sizeof(disp),
             "attachment; filename=\"mes-donnees-%s.json\"", rq->family_id);
    gcho_add_header(rq, "Content-Disposition", disp);

    text = PQgetvalue(res, 0, 0);
    rc = gcho_reply(rq, 200, text, strlen(text));
    PQclear(res);

    return rc;
}


const gcho_route_t  gcho_mydata_routes[] = {
    { "GET", "/api/my-data", GCHO_FAMILY, 0, 0, gcho_my_data },
    { NULL, NULL, 0, 0, 0, NULL }
};
