/*
 * overlay.c -- PostgreSQL's facts laid over the town file before it is
 * published.
 *
 * The catalogue table keeps the town file as `load-town` stored it
 * (gch_town_write of the file: the town's word).  What the booking path
 * must obey also changes outside the file: staff validate enrolment
 * requests and accept documents in guichet-office, invoices fall due,
 * families subscribe to direct debit.  So the publisher (publish.c) does
 * not SET the stored text as it is: gchw_overlay() parses it with the
 * engine, replaces per family
 *
 *   enrolments       := the family's rows of the enrolment table (the town
 *                       file's, upserted by load-town, and the office's
 *                       requests and decisions, with their status);
 *   documents        := the town file's documents + the accepted rows of
 *                       the document table (type, valid_from, valid_to,
 *                       child_id: a child's covers that child only) that
 *                       have not expired;
 *   unpaid_invoices  := the town file's count + the family's unpaid
 *                       invoices whose due date has passed;
 *   direct_debit     := family.direct_debit;
 *   resident         := family.resident (the town file's, or what an
 *                       agent decided validating a new address);
 *   (per activity) drawn := a draw_run of it was decided (0070: the
 *                       draw is over, first come, first served begins);
 *   qf               := the latest family_qf whose effective_from has
 *                       come, when the office recorded one (issue 26: the
 *                       back office's QF, or a qf_change an agent
 *                       validated, issue 25);
 *
 * and writes the result back with gch_town_write.  The arrays laid over
 * are malloc'ed here and point at strings of the PGresults (kept until
 * the text is written); the parsed town's own arrays are put back before
 * gch_town_free, which owns only those.
 *
 * and, for every activity,
 *
 *   required_documents += the types the town requires of every family
 *                       and that block bookings (family_document_type,
 *                       blocks 'reservation', issue 25): only a family's
 *                       document without a child meets them (the engine
 *                       counts a family's document for every child);
 *
 * The engine refuses a catalogue with more than 64 documents or 1000
 * enrolments per family: beyond that, the newest documents and the
 * latest enrolments are kept and a warning is logged.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gchw.h"


#define GCHW_OV_DOCS_MAX     64
#define GCHW_OV_ENROL_MAX    1000
#define GCHW_OV_UNPAID_MAX   100000
#define GCHW_OV_REQ_MAX      16         /* the engine's per activity */


/* What the overlay changed of one family, to put the town's back. */
typedef struct {
    gch_enrolment_t  *enrolments;        /* the town's (arena) */
    size_t            nenrolments;
    gch_document_t   *documents;
    size_t            ndocuments;
    gch_enrolment_t  *new_enrolments;    /* malloc'ed here */
    gch_document_t   *new_documents;
} gchw_ov_fam_t;


/* What the overlay changed of one activity. */
typedef struct {
    const char      **required;          /* the town's (arena) */
    size_t            nrequired;
    const char      **new_required;      /* malloc'ed here */
} gchw_ov_act_t;


/*
 * Rows (type) of the family documents that block bookings: appended to
 * every activity's required documents, each once, at most
 * GCHW_OV_REQ_MAX in all (the engine's limit; the rest is left out with a
 * warning: the office still blocks the enrolment requests).
 */
static int
gchw_ov_required(gch_town_t *t, gchw_ov_act_t *act, PGresult *res)
{
    int              row, nrows;
    size_t           i, j, n;
    const char      *type;
    gch_activity_t  *a;

    nrows = PQntuples(res);
    if (nrows == 0) {
        return 0;
    }

    for (i = 0; i < t->nactivities; i++) {
        a = &t->activities[i];
        act[i].new_required = malloc((a->nrequired_documents + nrows)
                                     * sizeof(const char *));
        if (act[i].new_required == NULL) {
            return -1;
        }

        n = a->nrequired_documents;
        memcpy(act[i].new_required, a->required_documents,
               n * sizeof(const char *));

        for (row = 0; row < nrows; row++) {
            type = PQgetvalue(res, row, 0);
            for (j = 0; j < n; j++) {
                if (strcmp(act[i].new_required[j], type) == 0) {
                    break;
                }
            }
            if (j < n) {
                continue;
            }
            if (n == GCHW_OV_REQ_MAX) {
                gchb_log("warn", "overlay: activity %s requires %d "
                         "documents, family document %s left out",
                         a->id, GCHW_OV_REQ_MAX, type);
                continue;
            }
            act[i].new_required[n++] = type;
        }

        a->required_documents = act[i].new_required;
        a->nrequired_documents = n;
    }

    return 0;
}


static PGresult *
gchw_ov_query(PGconn *pg, const char *sql)
{
    PGresult  *res;

    res = PQexec(pg, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        gchb_log("error", "overlay: postgres: %s", PQerrorMessage(pg));
        PQclear(res);
        return NULL;
    }

    return res;
}


static gch_family_t *
gchw_ov_family(gch_town_t *t, const char *id)
{
    const gch_family_t  *f;

    f = gch_town_family(t, id, strlen(id));
    if (f == NULL) {
        return NULL;
    }

    return &t->families[f - t->families];
}


static int
gchw_ov_day(const char *s, gch_day_t *d, gch_day_t dflt)
{
    if (s == NULL || *s == '\0') {
        *d = dflt;
        return 0;
    }

    return gch_day_parse(d, s, strlen(s)) == GCH_OK ? 0 : -1;
}


/*
 * Rows (family_id, child_id, activity_id, from, to, status), ordered by
 * family then from.  Every family of the town gets its enrolments from
 * here (none when it has no row).
 */
static int
gchw_ov_enrolments(gch_town_t *t, gchw_ov_fam_t *fam, PGresult *res)
{
    int                    row, n, first, cnt, skipped;
    size_t                 fi;
    gch_family_t          *f;
    gch_enrolment_t       *en;
    const char            *st;
    const gch_child_t     *c;
    const gch_activity_t  *act;

    for (fi = 0; fi < t->nfamilies; fi++) {
        fam[fi].new_enrolments = NULL;
        t->families[fi].enrolments = NULL;
        t->families[fi].nenrolments = 0;
    }

    n = PQntuples(res);
    skipped = 0;

    for (first = 0; first < n; first = row) {
        for (row = first + 1;
             row < n && strcmp(PQgetvalue(res, row, 0),
                               PQgetvalue(res, first, 0)) == 0;
             row++)
        {
            /* rows of the same family */
        }

        f = gchw_ov_family(t, PQgetvalue(res, first, 0));
        if (f == NULL) {
            continue;                    /* gone from the town file */
        }

        fi = f - t->families;
        cnt = row - first;
        if (cnt > GCHW_OV_ENROL_MAX) {
            gchb_log("warn", "overlay: family %s has %d enrolments, only "
                     "the latest %d are published", f->id, cnt,
                     GCHW_OV_ENROL_MAX);
            first = row - GCHW_OV_ENROL_MAX;
            cnt = GCHW_OV_ENROL_MAX;
        }

        fam[fi].new_enrolments = calloc(cnt + 1, sizeof(gch_enrolment_t));
        if (fam[fi].new_enrolments == NULL) {
            return -1;
        }
        f->enrolments = fam[fi].new_enrolments;

        for ( ; first < row; first++) {
            c = gch_family_child(f, PQgetvalue(res, first, 1),
                                 PQgetlength(res, first, 1));
            act = gch_town_activity(t, PQgetvalue(res, first, 2),
                                    PQgetlength(res, first, 2));
            if (c == NULL || act == NULL) {
                skipped++;               /* child or activity left the file */
                continue;
            }

            en = &f->enrolments[f->nenrolments];
            en->child_id = c->id;
            en->activity = act;

            if (gchw_ov_day(PQgetvalue(res, first, 3), &en->from, 0) != 0
                || gchw_ov_day(PQgetvalue(res, first, 4), &en->to, 0) != 0)
            {
                gchb_log("error", "overlay: bad enrolment dates of %s",
                         f->id);
                return -1;
            }

            st = PQgetvalue(res, first, 5);
            en->status = strcmp(st, "validee") == 0 ? GCH_ENROL_VALIDEE
                         : strcmp(st, "refusee") == 0 ? GCH_ENROL_REFUSEE
                         : GCH_ENROL_DEMANDEE;

            f->nenrolments++;
        }
    }

    if (skipped) {
        gchb_log("info", "overlay: %d enrolment%s of children or activities "
                 "no longer in the town file left out", skipped,
                 skipped == 1 ? "" : "s");
    }

    return 0;
}


/* Rows (family_id, type, valid_from, valid_to, child_id), ordered by
 * family then newest first: appended to the town's documents of the
 * family (a child's document counts for that child only). */
static int
gchw_ov_documents(gch_town_t *t, gchw_ov_fam_t *fam, PGresult *res)
{
    int              row, n, first;
    size_t           fi, room;
    gch_family_t    *f;
    gch_document_t  *d;

    for (fi = 0; fi < t->nfamilies; fi++) {
        fam[fi].new_documents = NULL;
    }

    n = PQntuples(res);

    for (first = 0; first < n; first = row) {
        for (row = first + 1;
             row < n && strcmp(PQgetvalue(res, row, 0),
                               PQgetvalue(res, first, 0)) == 0;
             row++)
        {
            /* rows of the same family */
        }

        f = gchw_ov_family(t, PQgetvalue(res, first, 0));
        if (f == NULL) {
            continue;
        }

        fi = f - t->families;
        room = f->ndocuments < GCHW_OV_DOCS_MAX
               ? GCHW_OV_DOCS_MAX - f->ndocuments : 0;
        if ((size_t) (row - first) > room) {
            gchb_log("warn", "overlay: family %s has %d accepted documents, "
                     "only the newest %zu are published", f->id,
                     row - first, room);
        }

        d = calloc(f->ndocuments + (row - first) + 1,
                   sizeof(gch_document_t));
        if (d == NULL) {
            return -1;
        }

        if (f->ndocuments) {
            memcpy(d, f->documents, f->ndocuments * sizeof(*d));
        }

        fam[fi].new_documents = d;
        f->documents = d;

        for ( ; first < row && room; first++, room--) {
            d = &f->documents[f->ndocuments];
            d->type = PQgetvalue(res, first, 1);
            d->child_id = NULL;

            if (!PQgetisnull(res, first, 4)) {
                d->child_id = PQgetvalue(res, first, 4);

                /* a child the town file no longer has: the catalogue
                 * would be refused; the document covers no one */
                if (gch_family_child(f, d->child_id, strlen(d->child_id))
                    == NULL)
                {
                    room++;
                    continue;
                }
            }

            if (gchw_ov_day(PQgetvalue(res, first, 2), &d->valid_from,
                            INT32_MIN) != 0
                || gchw_ov_day(PQgetvalue(res, first, 3), &d->valid_to,
                               INT32_MAX) != 0)
            {
                gchb_log("error", "overlay: bad document dates of %s",
                         f->id);
                return -1;
            }

            f->ndocuments++;
        }
    }

    return 0;
}


/* Rows (family_id, unpaid due invoices, direct_debit, resident, has a
 * recorded QF, that QF or null). */
static void
gchw_ov_money(gch_town_t *t, PGresult *res)
{
    int            row, n;
    long           unpaid;
    gch_family_t  *f;

    n = PQntuples(res);

    for (row = 0; row < n; row++) {
        f = gchw_ov_family(t, PQgetvalue(res, row, 0));
        if (f == NULL) {
            continue;
        }

        unpaid = f->unpaid_invoices + strtol(PQgetvalue(res, row, 1), NULL,
                                             10);
        f->unpaid_invoices = unpaid > GCHW_OV_UNPAID_MAX
                             ? GCHW_OV_UNPAID_MAX : (int) unpaid;
        f->direct_debit = strcmp(PQgetvalue(res, row, 2), "t") == 0;
        f->resident = strcmp(PQgetvalue(res, row, 3), "t") == 0;
        if (strcmp(PQgetvalue(res, row, 4), "t") == 0) {
            f->qf = PQgetisnull(res, row, 5)
                    ? -1 : atoi(PQgetvalue(res, row, 5));
        }
    }
}


/* See gchw.h. */
/* The draws decided (draw.c): their activities are "drawn". */
static void
gchw_ov_drawn(gch_town_t *t, PGresult *res)
{
    int     r;
    size_t  i;

    for (r = 0; r < PQntuples(res); r++) {
        for (i = 0; i < t->nactivities; i++) {
            if (t->activities[i].draw
                && strcmp(t->activities[i].id, PQgetvalue(res, r, 0)) == 0)
            {
                t->activities[i].drawn = 1;
            }
        }
    }
}


int
gchw_overlay(PGconn *pg, const char *json, size_t len, char **out,
    size_t *out_len)
{
    int             rc;
    size_t          i;
    PGresult       *en, *doc, *money, *req, *drawn;
    gch_town_t     *t;
    gch_error_t     err;
    gchw_ov_fam_t  *fam;
    gchw_ov_act_t  *act;

    *out = NULL;
    *out_len = 0;

    memset(&err, 0, sizeof(err));
    if (gch_town_parse(&t, json, len, &gch_alloc_std, &err) != GCH_OK) {
        gchb_log("error", "overlay: stored catalogue refused by the engine: "
                 "%s", err.message);
        return -1;
    }

    rc = -1;
    en = doc = money = req = drawn = NULL;

    fam = calloc(t->nfamilies + 1, sizeof(gchw_ov_fam_t));
    act = calloc(t->nactivities + 1, sizeof(gchw_ov_act_t));
    if (fam == NULL || act == NULL) {
        free(fam);
        free(act);
        gch_town_free(t);
        return -1;
    }

    for (i = 0; i < t->nactivities; i++) {
        act[i].required = t->activities[i].required_documents;
        act[i].nrequired = t->activities[i].nrequired_documents;
    }

    for (i = 0; i < t->nfamilies; i++) {
        fam[i].enrolments = t->families[i].enrolments;
        fam[i].nenrolments = t->families[i].nenrolments;
        fam[i].documents = t->families[i].documents;
        fam[i].ndocuments = t->families[i].ndocuments;
    }

    en = gchw_ov_query(pg,
        "select c.family_id, e.child_id, e.activity_id,"
        "   to_char(e.from_date, 'YYYY-MM-DD'),"
        "   to_char(e.to_date, 'YYYY-MM-DD'), e.status"
        " from enrolment e join child c on c.id = e.child_id"
        " order by c.family_id, e.from_date, e.id");

    doc = gchw_ov_query(pg,
        "select family_id, type, to_char(valid_from, 'YYYY-MM-DD'),"
        "   to_char(valid_to, 'YYYY-MM-DD'), child_id"
        " from document"
        " where status = 'acceptee' and (valid_to is null or valid_to >="
        "   (now() at time zone 'Europe/Paris')::date)"
        " order by family_id, valid_to desc nulls first, id desc");

    money = gchw_ov_query(pg,
        "select f.id, (select count(*) from invoice i"
        "   where i.family_id = f.id and not i.paid and i.due_date <"
        "   (now() at time zone 'Europe/Paris')::date), f.direct_debit,"
        "   f.resident, q.id is not null, q.qf"
        " from family f left join lateral (select id, qf from family_qf"
        "   where family_id = f.id and effective_from <="
        "     (now() at time zone 'Europe/Paris')::date"
        "   order by effective_from desc, id desc limit 1) q on true");

    req = gchw_ov_query(pg,
        "select type from family_document_type"
        " where blocks = 'reservation' order by position");

    drawn = gchw_ov_query(pg,
        "select activity_id from draw_run where decided_at is not null");

    if (en == NULL || doc == NULL || money == NULL || req == NULL
        || drawn == NULL)
    {
        goto done;
    }

    if (gchw_ov_enrolments(t, fam, en) != 0
        || gchw_ov_documents(t, fam, doc) != 0
        || gchw_ov_required(t, act, req) != 0)
    {
        gchb_log("error", "overlay: out of memory or bad rows");
        goto done;
    }

    gchw_ov_money(t, money);
    gchw_ov_drawn(t, drawn);

    if (gch_town_write(t, out, out_len, &gch_alloc_std) != GCH_OK) {
        gchb_log("error", "overlay: cannot write the catalogue");
        *out = NULL;
        *out_len = 0;
        goto done;
    }

    rc = 0;

done:

    /* the town's own arrays back, for gch_town_free */
    for (i = 0; i < t->nfamilies; i++) {
        t->families[i].enrolments = fam[i].enrolments;
        t->families[i].nenrolments = fam[i].nenrolments;
        t->families[i].documents = fam[i].documents;
        t->families[i].ndocuments = fam[i].ndocuments;
        free(fam[i].new_enrolments);
        free(fam[i].new_documents);
    }

    for (i = 0; i < t->nactivities; i++) {
        t->activities[i].required_documents = act[i].required;
        t->activities[i].nrequired_documents = act[i].nrequired;
        free(act[i].new_required);
    }

    free(fam);
    free(act);
    gch_town_free(t);
    PQclear(en);
    PQclear(doc);
    PQclear(money);
    PQclear(req);
    PQclear(drawn);

    return rc;
}
