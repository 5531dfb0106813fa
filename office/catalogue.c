/*
 * catalogue.c -- the catalogue's text as the back office changes it: the
 * room every change of the town's activities, sessions, families and
 * units goes through (activity.c, family.c, archive.c, merge.c,
 * request.c, town.c), apart from what each of them changes.
 *
 * The catalogue table keeps the town as the engine writes it; the booking
 * path sees what guichet-worker publishes of it.  A change is one
 * transaction: gcho_catalogue_lock() takes the locks of town loading
 * (GCHB_LOCK_INVOICE) and of publication (GCHB_LOCK_PUBLISH) and the
 * catalogue's row; the caller makes the new text (PostgreSQL's jsonb);
 * gcho_catalogue_put() has the engine parse it (gch_town_parse: strict,
 * its errors named from the caller's object by gcho_cat_path()), write it
 * again (gcho_cat_write(): each opening by draw keeps its seed) and
 * stores it with catalogue.version + 1, so the worker republishes it.
 * The rows of the activities are load-town's (backend/catalogue.c).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "office.h"


/* See office.h. */
void
gcho_cat_path(char *msg, const char *member, long index, int calendar)
{
    char    prefix[48], *rest;
    size_t  n;

    n = snprintf(prefix, sizeof(prefix), "$.%s[%ld]", member, index);
    if (strncmp(msg, prefix, n) != 0) {
        return;
    }

    rest = msg + n;
    if (calendar && strncmp(rest, ".calendar[", 10) == 0
        && strchr(rest, ']') != NULL)
    {
        rest = strchr(rest, ']') + 1;
    }

    memmove(msg + 1, rest, strlen(rest) + 1);
}


/* See office.h. */
int
gcho_catalogue_lock(gcho_req_t *rq, PGresult **cat)
{
    PGresult  *res;

    if (gcho_begin(rq) != 0) {
        return 0;
    }

    if (gcho_sql_do(rq, "select pg_advisory_xact_lock(" GCHB_LOCK_INVOICE
                        "), pg_advisory_xact_lock(" GCHB_LOCK_PUBLISH ")",
                    0, NULL) != 0)
    {
        return 0;
    }

    res = gcho_sql(rq, "select json, (json::jsonb -> 'units')::text"
                       " from catalogue where id = 1 for update", 0, NULL);
    if (res == NULL) {
        return 0;
    }

    if (PQntuples(res) != 1) {
        PQclear(res);
        gcho_rollback();
        return gcho_error(rq, 409, "no_town",
                          "Aucune commune n'est chargée : le premier "
                          "chargement (guichetctl load-town) donne son nom "
                          "et ses unités horaires.");
    }

    *cat = res;
    return GCHO_GO;
}


/* See office.h. */
int
gcho_cat_write(gch_town_t *t, char **cat, size_t *len)
{
    int     rc;
    char  **seeds;
    size_t  i;

    seeds = calloc(t->nactivities + 1, sizeof(char *));
    if (seeds == NULL) {
        return GCH_ENOMEM;
    }

    rc = gchb_draw_seeds(gcho_ctx.pg, t, seeds) == 0
         ? gch_town_write(t, cat, len, &gch_alloc_std) : GCH_ENOMEM;

    /* the seeds lent to t, taken back */
    for (i = 0; i < t->nactivities; i++) {
        if (seeds[i]) {
            t->activities[i].draw_seed = NULL;
            free(seeds[i]);
        }
    }
    free(seeds);

    return rc;
}


/* See office.h. */
int
gcho_catalogue_put(gcho_req_t *rq, const char *text, const char *member,
    long index, gch_town_t **out)
{
    int           rc;
    char         *cat;
    size_t        len;
    gch_town_t   *t;
    gch_error_t   err;
    const char   *p[1];

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
        gcho_cat_path(err.message, member, index, 0);
        return gcho_error(rq, 400, "invalid_field",
                          err.message[0] ? err.message
                                         : "Catalogue invalide.");
    }

    cat = NULL;
    if (gcho_cat_write(t, &cat, &len) != GCH_OK) {
        gch_town_free(t);
        gcho_rollback();
        return gcho_error(rq, 500, "internal",
                          "Une erreur interne est survenue.");
    }

    p[0] = cat;
    rc = gcho_sql_do(rq, "update catalogue set json = $1,"
                         " version = version + 1, updated_at = now()"
                         " where id = 1", 1, p);
    gch_alloc_std.free(gch_alloc_std.ctx, cat);
    if (rc != 0) {
        gch_town_free(t);
        gcho_rollback();
        return 0;
    }

    *out = t;
    return GCHO_GO;
}
