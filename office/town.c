/*
 * town.c -- the town's own settings in the back office (issue 26,
 * docs/office.md "The town's settings"): its name and its units (MATIN,
 * REPAS, ...), so that a term is run without the town file.
 *
 * PUT /api/staff/town (admin) makes the town when none is loaded (the
 * catalogue's first text: the town, its units, no activity, no family)
 * or changes its name and units: in one transaction under the locks of
 * town loading and publication, the catalogue's text changed and
 * checked by the engine (a unit a session uses cannot go: 400 with its
 * path), written with version + 1 (guichet-worker's publisher publishes
 * it), the town and unit rows (units no session uses and the text no
 * longer has deleted), the audit row.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "office.h"


#define GCHO_TOWN_UNITS_MAX  32


/* GET /api/staff/town: {"loaded", "name", "timezone", "units": [{"code",
 * "label", "starts", "ends"}]} */
static int
gcho_town_get(gcho_req_t *rq)
{
    return gcho_reply_row(rq, 200,
        "select json_build_object('loaded', t.id is not null,"
        "  'name', t.name, 'timezone', t.timezone,"
        "  'units', (select coalesce(json_agg(json_build_object("
        "    'code', u.code, 'label', u.label,"
        "    'starts', to_char(make_time(u.starts_min / 60,"
        "      u.starts_min % 60, 0), 'HH24:MI'),"
        "    'ends', to_char(make_time(u.ends_min / 60 % 24,"
        "      u.ends_min % 60, 0), 'HH24:MI'))"
        "    order by u.starts_min, u.code), '[]') from unit u))"
        " from (select 1) x left join town t on t.id = 1", 0, NULL, "");
}


/*
 * PUT /api/staff/town (admin): {"name", "units": [{"code", "label",
 * "starts": "HH:MM", "ends": "HH:MM"}]}.  200 as GET.
 */
static int
gcho_town_put(gcho_req_t *rq)
{
    static const gch_jfield_t  f[] = {
        { "name", GCH_J_STRING, 1 },
        { "units", GCH_J_ARRAY, 1 },
    };
    static const gch_jfield_t  uf[] = {
        { "code", GCH_J_STRING, 1 },
        { "label", GCH_J_STRING, 1 },
        { "starts", GCH_J_STRING, 1 },
        { "ends", GCH_J_STRING, 1 },
    };

    int                 rc, i, k;
    char                name[201], val[4][129], path[64], msg[320];
    size_t              u;
    PGresult           *res;
    gch_jcx_t           cx;
    gch_json_t          doc;
    gchb_arr_t          a[4];
    gch_town_t         *t;
    gch_error_t         err;
    const char         *p[5], *q[2];
    const gch_jnode_t  *v[2], *e, *w[4];

    if (gcho_body_json(rq, &doc, f, 2, v) != 0) {
        return 0;
    }

    memset(&err, 0, sizeof(err));
    memset(a, 0, sizeof(a));
    gch_jcx_init(&cx, &err);

    if (gcho_str(rq, "name", v[0], name, sizeof(name), 1) != 0) {
        gch_json_free(&doc);
        return 0;
    }
    if (gch_json_array(&cx, "units", v[1], 1, GCHO_TOWN_UNITS_MAX) != 0) {
        gch_json_free(&doc);
        return gcho_error(rq, 400, "invalid_field", err.message);
    }

    i = 0;
    for (e = v[1]->child; e != NULL; e = e->next, i++) {
        memset(&err, 0, sizeof(err));
        gch_jcx_init(&cx, &err);
        if (e->type != GCH_J_OBJECT
            || gch_json_fields(&cx, e, uf, 4, w) != 0)
        {
            gch_json_free(&doc);
            gchb_arr_free(a, 4);
            if (err.message[0] == '$') {
                snprintf(msg, sizeof(msg), "$.units[%d]%s", i,
                         err.message + 1);
            } else {
                snprintf(msg, sizeof(msg), "$.units[%d] : objet attendu",
                         i);
            }
            return gcho_error(rq, 400, "invalid_field", msg);
        }
        for (k = 0; k < 4; k++) {
            snprintf(path, sizeof(path), "units[%d].%s", i, uf[k].name);
            if (gcho_str(rq, path, w[k], val[k], sizeof(val[k]), 1) != 0) {
                gch_json_free(&doc);
                gchb_arr_free(a, 4);
                return 0;
            }
            gchb_arr_str(&a[k], val[k]);
        }
    }
    gch_json_free(&doc);

    for (k = 0; k < 4; k++) {
        p[k + 1] = gchb_arr_end(&a[k]);
        if (p[k + 1] == NULL) {
            gchb_arr_free(a, 4);
            return gcho_error(rq, 500, "internal",
                              "Une erreur interne est survenue.");
        }
    }
    p[0] = name;

    if (gcho_begin(rq) != 0) {
        gchb_arr_free(a, 4);
        return 0;
    }

    if (gcho_sql_do(rq, "select pg_advisory_xact_lock(" GCHB_LOCK_INVOICE
                        "), pg_advisory_xact_lock(" GCHB_LOCK_PUBLISH ")",
                    0, NULL) != 0)
    {
        gchb_arr_free(a, 4);
        return 0;
    }

    /* no town yet: the catalogue's first text (version 0, made 1 below);
     * its town.id is the request's town (none for "main", as the engine
     * writes it) */
    q[0] = name;
    q[1] = rq->town;
    if (gcho_sql_do(rq,
        "insert into catalogue (id, version, json) values (1, 0,"
        "  json_build_object('town', jsonb_strip_nulls(jsonb_build_object("
        "    'id', nullif($2::text, 'main'), 'name', $1::text,"
        "    'timezone', 'Europe/Paris')), 'units', '[]'::json,"
        "    'activities', '[]'::json, 'families', '[]'::json)::text)"
        " on conflict (id) do nothing", 2, q) != 0)
    {
        gchb_arr_free(a, 4);
        return 0;
    }

    res = gcho_sql(rq,
        "select jsonb_set(jsonb_set(c.json::jsonb, '{town,name}',"
        "   to_jsonb($1::text)), '{units}', (select coalesce(jsonb_agg("
        "   jsonb_build_object('code', x.code, 'label', x.label,"
        "     'starts', x.starts, 'ends', x.ends) order by x.n), '[]')"
        "   from unnest($2::text[], $3::text[], $4::text[], $5::text[])"
        "     with ordinality x(code, label, starts, ends, n)))::text"
        " from catalogue c where c.id = 1 for update", 5, p);
    gchb_arr_free(a, 4);
    if (res == NULL) {
        return 0;
    }

    t = NULL;
    rc = gcho_catalogue_put(rq, PQgetvalue(res, 0, 0), "units", -1, &t);
    PQclear(res);
    if (rc != GCHO_GO) {
        return rc;
    }

    q[0] = name;
    q[1] = rq->town;
    if (gcho_sql_do(rq, "insert into town (id, name, timezone, town_id)"
                        " values (1, $1, 'Europe/Paris', $2)"
                        " on conflict (id) do update set name = $1", 2, q) != 0)
    {
        gch_town_free(t);
        return 0;
    }

    rc = 0;
    for (u = 0; u < t->nunits && rc == 0; u++) {
        char         s0[16], s1[16];
        const char  *q[4];

        snprintf(s0, sizeof(s0), "%d", t->units[u].starts_min);
        snprintf(s1, sizeof(s1), "%d", t->units[u].ends_min);
        q[0] = t->units[u].code;
        q[1] = t->units[u].label;
        q[2] = s0;
        q[3] = s1;
        rc = gcho_sql_do(rq, "insert into unit (code, label, starts_min,"
                             "   ends_min) values ($1, $2, $3, $4)"
                             " on conflict (code) do update set label = $2,"
                             "   starts_min = $3, ends_min = $4", 4, q);
    }
    gch_town_free(t);
    if (rc != 0) {
        return 0;
    }

    if (gcho_sql_do(rq, "delete from unit u where not exists (select 1"
                        "   from jsonb_array_elements((select json::jsonb"
                        "     -> 'units' from catalogue where id = 1)) e"
                        "   where e ->> 'code' = u.code)"
                        " and not exists (select 1 from session s"
                        "   where s.unit_code = u.code)", 0, NULL) != 0)
    {
        return 0;
    }

    snprintf(msg, sizeof(msg), "%d", i);
    {
        const char  *kv[4] = { "name", name, "units", msg };

        if (gcho_audit_kv(rq, "town.update", "town", kv, 2) != 0
            || gcho_commit(rq) != 0)
        {
            return 0;
        }
    }

    return gcho_town_get(rq);
}


const gcho_route_t  gcho_town_routes[] = {
    { "GET", "/api/staff/town", GCHO_STAFF, GCHO_AGENT, 0, gcho_town_get },
    { "PUT", "/api/staff/town", GCHO_STAFF, GCHO_ADMIN, GCHO_BODY_JSON,
      gcho_town_put },
    { NULL, NULL, 0, 0, 0, NULL }
};
