/*
 * draw.c -- guichetctl draw-verify ACTIVITY: recomputes a draw's order
 * from PostgreSQL alone (its seed in draw_run, its entries in
 * draw_entry, 0070) with the public rule (docs/rules.md, "Opening by
 * draw"; the engine's gch_draw_order) and compares it with the decisions
 * the worker made (the family's demandes with the Idempotency-Key
 * "dr.<activity>", numbered in the order they were decided):
 *
 *   - every family with entries has exactly one decision, and no other
 *     family has one;
 *   - the decisions' numbers follow the families' order;
 *   - each decision holds the family's entries, in its requests' order.
 *
 * Prints the order (position, rank, family, demande, each cell's
 * outcome) and a last line; 0 when everything agrees, 1 otherwise.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gchc.h"


/* The decision of one family: its number and "<child> <session>,..." */
typedef struct {
    const char  *family;
    long long    number;
    const char  *request_id;
    const char  *cells;          /* "<cid> <sid> <status>[ <reason>]|..." */
    const char  *asked;          /* "<cid> <sid>|..." */
    int          seen;
} gchc_decision_t;


static gchc_decision_t *
gchc_decision(gchc_decision_t *d, int n, const char *family)
{
    int  i;

    for (i = 0; i < n; i++) {
        if (strcmp(d[i].family, family) == 0) {
            return &d[i];
        }
    }

    return NULL;
}


/* See gchc.h. */
int
gchc_draw_verify(PGconn *pg, const char *aid)
{
    int                 i, nd, ne, diff, pos;
    char                asked[8192];
    size_t              j, k, len;
    long long           last;
    const char         *p[2], *seed;
    PGresult           *run, *ent, *dec;
    gch_draw_entry_t   *e;
    gchc_decision_t    *d, *x;

    p[0] = aid;
    run = PQexecParams(pg, "select seed, entries, families,"
                       "   decided_at is not null from draw_run"
                       " where activity_id = $1", 1, NULL, p, NULL, NULL, 0);
    ent = PQexecParams(pg, "select family_id, child_id, session_id, at_ms,"
                       "   idx, waitlist from draw_entry"
                       " where activity_id = $1", 1, NULL, p, NULL, NULL, 0);
    dec = PQexecParams(pg, "select d.family_id, d.number, d.request_id,"
                       "   string_agg(concat_ws(' ', t.i->>'child_id',"
                       "     t.i->>'session_id', t.i->>'status',"
                       "     t.i->>'reason'), '|' order by t.o),"
                       "   string_agg(concat_ws(' ', t.i->>'child_id',"
                       "     t.i->>'session_id'), '|' order by t.o)"
                       " from demande d, jsonb_array_elements(d.items)"
                       "   with ordinality t(i, o)"
                       " where d.kind = 'book' and d.idem_key = 'dr.' || $1"
                       " group by d.family_id, d.number, d.request_id"
                       " order by d.number", 1, NULL, p, NULL, NULL, 0);

    if (PQresultStatus(run) != PGRES_TUPLES_OK
        || PQresultStatus(ent) != PGRES_TUPLES_OK
        || PQresultStatus(dec) != PGRES_TUPLES_OK)
    {
        fprintf(stderr, "guichetctl: draw-verify: %s", PQerrorMessage(pg));
        PQclear(run);
        PQclear(ent);
        PQclear(dec);
        return 1;
    }

    if (PQntuples(run) != 1) {
        fprintf(stderr, "guichetctl: draw-verify: no draw of \"%s\" has "
                "started\n", aid);
        PQclear(run);
        PQclear(ent);
        PQclear(dec);
        return 1;
    }

    seed = PQgetvalue(run, 0, 0);
    ne = PQntuples(ent);
    nd = PQntuples(dec);

    e = calloc(ne + 1, sizeof(gch_draw_entry_t));
    d = calloc(nd + 1, sizeof(gchc_decision_t));
    if (e == NULL || d == NULL) {
        free(e);
        free(d);
        PQclear(run);
        PQclear(ent);
        PQclear(dec);
        return 1;
    }

    for (i = 0; i < ne; i++) {
        e[i].family = PQgetvalue(ent, i, 0);
        e[i].child = PQgetvalue(ent, i, 1);
        e[i].session = PQgetvalue(ent, i, 2);
        e[i].at_ms = atoll(PQgetvalue(ent, i, 3));
        e[i].idx = atoi(PQgetvalue(ent, i, 4));
        e[i].waitlist = PQgetvalue(ent, i, 5)[0] == 't';
    }

    for (i = 0; i < nd; i++) {
        d[i].family = PQgetvalue(dec, i, 0);
        d[i].number = atoll(PQgetvalue(dec, i, 1));
        d[i].request_id = PQgetvalue(dec, i, 2);
        d[i].cells = PQgetvalue(dec, i, 3);
        d[i].asked = PQgetvalue(dec, i, 4);
    }

    gch_draw_order(e, (size_t) ne, seed);

    printf("draw of %s, seed %s, %d entries%s\n", aid, seed, ne,
           PQgetvalue(run, 0, 3)[0] == 't' ? ", decided" : ", not decided "
           "yet");

    diff = 0;
    pos = 0;
    last = -1;

    for (j = 0; j < (size_t) ne; j = k) {
        /* one family: its entries e[j..k), "<cid> <sid>|..." */
        len = 0;
        asked[0] = '\0';
        for (k = j; k < (size_t) ne && strcmp(e[k].family, e[j].family) == 0;
             k++)
        {
            len += (size_t) snprintf(asked + len,
                                     len < sizeof(asked)
                                     ? sizeof(asked) - len : 0,
                                     "%s%s %s", k > j ? "|" : "",
                                     e[k].child, e[k].session);
        }

        pos++;
        x = gchc_decision(d, nd, e[j].family);

        if (x == NULL) {
            printf("%d %.16s %s -: no decision\n", pos, e[j].rank,
                   e[j].family);
            diff++;
            continue;
        }

        if (x->seen++) {
            continue;
        }

        printf("%d %.16s %s %s %s\n", pos, e[j].rank, e[j].family,
               x->request_id, x->cells);

        if (x->number < last) {
            printf("  ^ decided before the family above: not in the "
                   "order\n");
            diff++;
        }
        last = x->number;

        if (len >= sizeof(asked) || strcmp(asked, x->asked) != 0) {
            printf("  ^ its decision's cells are not its entries (%s)\n",
                   asked);
            diff++;
        }
    }

    for (i = 0; i < nd; i++) {
        if (!d[i].seen) {
            printf("%s %s: a decision without entries\n", d[i].family,
                   d[i].request_id);
            diff++;
        }
    }

    if (diff == 0) {
        printf("the decisions follow the order of the seed and the "
               "entries: %d families\n", pos);
    } else {
        printf("%d difference%s\n", diff, diff == 1 ? "" : "s");
    }

    free(e);
    free(d);
    PQclear(run);
    PQclear(ent);
    PQclear(dec);

    return diff ? 1 : 0;
}
