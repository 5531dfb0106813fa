/*
 * decision.c -- a staff decision on a family's pending item: one flow.
 *
 * An agent validates or refuses an enrolment request (enrolment.c),
 * accepts or refuses a deposited document (document.c).  Both run, in one
 * transaction: the item's row locked (404 when there is none, 409
 * `already_decided` when it is no longer pending), the update that
 * records the decision and returns its time, the audit_log row, the
 * e-mail to the family (its ref is "<id>:<that time>": one per decision),
 * the catalogue version when the decision changes what the module shows,
 * then COMMIT.  The feature files keep their SQL, their texts and their
 * answers.
 */

#include <stdio.h>
#include <string.h>

#include "office.h"


/* See office.h. */
PGresult *
gcho_decision_open(gcho_req_t *rq, const char *sql, const char *pending,
    const char *not_found, const char *decided)
{
    PGresult    *res;
    const char  *p[1];

    if (gcho_begin(rq) != 0) {
        return NULL;
    }

    p[0] = rq->param[0];
    if (gcho_sql_row(rq, &res, not_found, sql, 1, p) != GCHO_GO) {
        return NULL;
    }

    if (strcmp(PQgetvalue(res, 0, 0), pending) != 0) {
        PQclear(res);
        gcho_rollback();
        gcho_error(rq, 409, "already_decided", decided);
        return NULL;
    }

    snprintf(rq->family_id, sizeof(rq->family_id), "%s",
             PQgetvalue(res, 0, 1));

    return res;
}


/* See office.h. */
int
gcho_decision_word(gcho_req_t *rq, const char *decision,
    const char *accepted, const char *reason)
{
    char  msg[64];

    if (strcmp(decision, accepted) != 0 && strcmp(decision, "refusee") != 0)
    {
        snprintf(msg, sizeof(msg), "Le champ decision vaut %s ou refusee.",
                 accepted);
        (void) gcho_error(rq, 400, "invalid_field", msg);
        return -1;
    }

    if (decision[0] != 'r') {
        return 0;
    }

    if (reason[strspn(reason, " \t\r\n")] == '\0') {
        (void) gcho_error(rq, 400, "invalid_field",
                          "Le champ reason est obligatoire pour refuser.");
        return -1;
    }

    return 1;
}


/* See office.h. */
int
gcho_decision_close(gcho_req_t *rq, const gcho_decision_t *d, int refused,
    const char *const *params, const char *const *kv, const char *body)
{
    char       action[32], ref[192], target[GCHO_ID_MAX + 16];
    PGresult  *res;

    res = gcho_sql(rq, d->update, d->nparams, params);
    if (res == NULL) {
        return -1;
    }
    snprintf(ref, sizeof(ref), "%s:%s", rq->param[0], PQgetvalue(res, 0, 0));
    PQclear(res);

    /* the actor is the staff login (rq->staff); the family the addressee */
    snprintf(action, sizeof(action), "%s.decision", d->kind);
    snprintf(target, sizeof(target), "%s:%s", d->kind, rq->param[0]);

    refused = refused != 0;

    if (gcho_audit_kv(rq, action, target, kv, d->nkv) != 0
        || gcho_mail(rq, rq->family_id, d->mail_kind[refused], ref,
                     d->subject[refused], body) != 0
        || (d->catalogue[refused] && gcho_catalogue_changed(rq) != 0)
        || gcho_commit(rq) != 0)
    {
        return -1;
    }

    return 0;
}
