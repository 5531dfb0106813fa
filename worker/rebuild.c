/*
 * rebuild.c -- step 1 of the publication (publish.c), when Redis lost its
 * data: the bookings' Redis side from PostgreSQL's confirmed bookings
 * ({T}:s:<id>:booked, {T}:f:<id>:bookings, the claims
 * {T}:c:<id>:<date>:q<i>), {T}:seq:demande and the families' uploaded
 * documents {T}:f:<id>:documents, down the publisher's pipeline.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>

#include "gchw.h"
#include "gchw_publish.h"



static void
gchw_gen_kv(yajl_gen g, const char *k, const char *v)
{
    yajl_gen_string(g, (const unsigned char *) k, strlen(k));
    yajl_gen_string(g, (const unsigned char *) v, strlen(v));
}


static void
gchw_gen_ki(yajl_gen g, const char *k, const char *v)
{
    yajl_gen_string(g, (const unsigned char *) k, strlen(k));
    yajl_gen_number(g, v, strlen(v));
}


/* A confirmed booking (row of res) back in its session's booked set and
 * its family's {T}:f:<id>:bookings hash.  0 or -1 (out of memory). */
static int
gchw_rebuild_booking(gchw_pipe_t *p, PGresult *res, int row)
{
    int                   onsite;
    char                  key[512];
    size_t                len;
    yajl_gen              g;
    const unsigned char  *buf;

    onsite = strcmp(PQgetvalue(res, row, 9), "onsite") == 0;
    snprintf(key, sizeof(key), GCH_KEY_S("%s"), gchb_town,
             PQgetvalue(res, row, 1),
             onsite ? GCH_KEY_BOOKED_ONSITE : GCH_KEY_BOOKED);
    gchw_pipe_str(p, 3, "SADD", key, PQgetvalue(res, row, 0));

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        return -1;
    }
    yajl_gen_map_open(g);
    gchw_gen_kv(g, "child_id", PQgetvalue(res, row, 2));
    gchw_gen_kv(g, "session_id", PQgetvalue(res, row, 1));
    gchw_gen_ki(g, "price_cents", PQgetvalue(res, row, 4));
    gchw_gen_kv(g, "request_id", PQgetvalue(res, row, 5));
    gchw_gen_ki(g, "at_ms", PQgetvalue(res, row, 6));
    if (onsite) {
        gchw_gen_kv(g, "channel", "onsite");
    }
    yajl_gen_map_close(g);
    yajl_gen_get_buf(g, &buf, &len);

    snprintf(key, sizeof(key), GCH_KEY_F(GCH_KEY_BOOKINGS), gchb_town,
             PQgetvalue(res, row, 3));
    {
        const char  *argv[4] = { "HSET", key, PQgetvalue(res, row, 0),
                                 (const char *) buf };
        size_t       lens[4] = { 4, strlen(key),
                                 strlen(PQgetvalue(res, row, 0)), len };

        gchw_pipe_cmd(p, 4, argv, lens);
    }
    yajl_gen_free(g);

    return 0;
}


/* The child's claims of a booking (row of res), while they matter (they
 * expire the day after its session). */
static void
gchw_rebuild_claims(gchw_pipe_t *p, PGresult *res, int row,
    const gch_town_t *town)
{
    int          q;
    char         key[512], val[512], exat[32];
    size_t       u;
    uint32_t     quanta;
    gch_day_t    day;
    const char  *code;

    code = PQgetvalue(res, row, 8);
    quanta = 0;
    for (u = 0; town && u < town->nunits; u++) {
        if (strcmp(town->units[u].code, code) == 0) {
            quanta = town->units[u].quanta;
        }
    }

    if (gch_day_parse(&day, PQgetvalue(res, row, 7), 10) != 0) {
        return;
    }

    if (gch_paris_to_unix(day + 2, 0) * 1000 <= gchb_now_ms()) {
        return;
    }

    snprintf(exat, sizeof(exat), "%lld",
             (long long) gch_paris_to_unix(day + 2, 0));
    snprintf(val, sizeof(val), "%s %s", PQgetvalue(res, row, 1),
             PQgetvalue(res, row, 0));

    for (q = 0; q < 32; q++) {
        if (quanta & (1u << q)) {
            snprintf(key, sizeof(key), GCH_KEY_CLAIM, gchb_town,
                     PQgetvalue(res, row, 2), PQgetvalue(res, row, 7), q);
            gchw_pipe_str(p, 5, "SET", key, val, "EXAT", exat);
        }
    }
}


/* What else a rebuild needs: the demande sequence (numbers must never be
 * reused) and the uploaded documents an absence may cite
 * (office/document.c).  0 or -1. */
static int
gchw_rebuild_seq_documents(PGconn *pg, gchw_pipe_t *p)
{
    int        row;
    char       key[512];
    PGresult  *res;

    res = gchw_query(pg, "select coalesce(max(number), 0) from demande");
    if (res == NULL) {
        return -1;
    }

    gchw_pipe_str(p, 3, "SET", gchb_keys.seq_demande, PQgetvalue(res, 0, 0));
    PQclear(res);

    res = gchw_query(pg, "select family_id, id::text from document");
    if (res == NULL) {
        return -1;
    }

    for (row = 0; row < PQntuples(res); row++) {
        snprintf(key, sizeof(key), GCH_KEY_F(GCH_KEY_DOCUMENTS), gchb_town,
                 PQgetvalue(res, row, 0));
        gchw_pipe_str(p, 3, "SADD", key, PQgetvalue(res, row, 1));
    }

    PQclear(res);

    return 0;
}


/* Step 1 of the file comment: the bookings' Redis side from PostgreSQL. */
int
gchw_rebuild_bookings(PGconn *pg, gchw_pipe_t *p, const gch_town_t *town)
{
    int        row, n;
    PGresult  *res;

    res = gchw_query(pg,
        "select b.id, b.session_id, b.child_id, b.family_id,"
        "   b.price_cents, d.request_id,"
        "   (extract(epoch from b.created_at) * 1000)::bigint,"
        "   to_char(s.date, 'YYYY-MM-DD'), s.unit_code, b.channel"
        " from booking b join session s on s.id = b.session_id"
        " join demande d on d.number = b.demande_number"
        " where b.status = 'confirmed'");
    if (res == NULL) {
        return -1;
    }

    n = PQntuples(res);

    for (row = 0; row < n; row++) {
        if (gchw_rebuild_booking(p, res, row) != 0) {
            PQclear(res);
            return -1;
        }
        gchw_rebuild_claims(p, res, row, town);
    }

    PQclear(res);

    if (n) {
        gchb_log("info", "rebuilt %d bookings in redis", n);
    }

    return gchw_rebuild_seq_documents(pg, p);
}
