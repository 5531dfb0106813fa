/*
 * test_render.c -- the read views without Redis: the sessions list with
 * live places and statuses, the family's planning (filtered, sorted,
 * total), the demandes list, error bodies, parameter errors, and the
 * failing allocator over every view.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "tredis.h"


static gch_town_t  *town;


static int
tprefix(const char *s, const char *prefix)
{
    return s != NULL && strncmp(s, prefix, strlen(prefix)) == 0;
}


static const gch_family_t *
tfam(const char *id)
{
    return gch_town_family(town, id, strlen(id));
}


/* EXEC reply of BITFIELD_RO per session: lefts[i] places, -1 = nil. */
static redisReply *
tleft_reply(const gch_cmds_t *l, const long long *lefts)
{
    tb_t    b;
    size_t  i;

    tb_init(&b);
    tb_arr(&b, l->ncmds - 2);
    for (i = 0; i + 2 < l->ncmds; i++) {
        tb_arr(&b, 1);
        tb_int(&b, lefts[i]);
    }

    return tb_reply(&b);
}


/* sessions view of an activity: 0 and the body in out (malloc'd by a) */
static int
tsessions(const gch_alloc_t *a, const char *act, const char *from,
    const char *to, const char *now, const long long *lefts, char **out,
    char **cmds, gch_error_t *err)
{
    int                rc;
    size_t             len;
    gch_view_t        *v;
    redisReply        *r;
    const gch_cmds_t  *l;

    *out = NULL;
    if (cmds) {
        *cmds = NULL;
    }

    rc = gch_sessions_plan(&v, town, act, strlen(act), from,
                           from ? strlen(from) : 0, to, to ? strlen(to) : 0,
                           tinstant(now) * 1000, a, err);
    if (rc != GCH_OK) {
        return rc;
    }

    l = gch_view_cmds(v);
    if (cmds) {
        *cmds = tcmds_dump(l);
    }

    if (!tcmds_multi_exec(l)) {
        gch_view_free(v);
        return -99;
    }

    r = tleft_reply(l, lefts);
    rc = gch_view_render(v, r, out, &len);
    freeReplyObject(r);
    gch_view_free(v);

    if (rc == GCH_OK && (*out == NULL || strlen(*out) != len)) {
        rc = -98;
    }

    return rc;
}


static const char *
tstatus_of(const char *body, const char *sid)
{
    static char  st[32];
    char         key[64];
    const char  *p, *q;

    snprintf(key, sizeof(key), "{\"id\":\"%s\"", sid);
    p = body ? strstr(body, key) : NULL;
    p = p ? strstr(p, "\"status\":\"") : NULL;
    if (p == NULL) {
        return "?";
    }

    p += 10;
    q = strchr(p, '"');
    snprintf(st, sizeof(st), "%.*s", (int) (q - p), p);

    return st;
}


static void
test_render_sessions(void)
{
    int          rc, ok;
    char        *out, *cmds;
    gch_error_t  err;

    static const long long  lefts[] = { 5, 0, 3, 1, 2 };

    rc = tsessions(&gch_alloc_std, "klub", "2021-07-07", "2021-07-08",
                   "2021-06-10T12:00:00+02:00", lefts, &out, &cmds, &err);
    ok = rc == GCH_OK
         && strstr(cmds, "\n#   BITFIELD_RO {main}:s:k-m:left GET u32 0\n#   "
                   "BITFIELD_RO {main}:s:k-r:left GET u32 0\n#   BITFIELD_RO "
                   "{main}:s:k-a:left GET u32 0\n#   BITFIELD_RO "
                   "{main}:s:k-j:left GET u32 0\n#   BITFIELD_RO "
                   "{main}:s:k-m8:left GET u32 0\n")
         && tprefix(out, "[{\"id\":\"k-m\",\"session_id\":\"k-m\","
                    "\"activity_id\":\"klub\",\"date\":\"2021-07-07\","
                    "\"unit\":\"MATIN\",\"label\":\"Danse\",\"starts_at\":"
                    "\"2021-07-07T08:30:00+02:00\",\"ends_at\":"
                    "\"2021-07-07T12:00:00+02:00\",\"places_online\":5,"
                    "\"places_left\":5,\"status\":\"open\","
                    "\"cancel_until\":\"2021-06-24T00:00:00+02:00\"}")
         && strcmp(tstatus_of(out, "k-r"), "full") == 0
         && strstr(out, "{\"id\":\"k-r\",\"session_id\":\"k-r\","
                   "\"activity_id\":\"klub\",\"date\":\"2021-07-07\","
                   "\"unit\":\"REPAS\",\"label\":\"Repas\"")
         && strcmp(tstatus_of(out, "k-a"), "open") == 0
         && strstr(out, "\"places_online\":2,\"places_left\":1")
         && strcmp(tstatus_of(out, "k-m8"), "open") == 0
         && strstr(out, "\"id\":\"k-m8\"") > strstr(out, "\"id\":\"k-j\"");
    tap_ok(ok, "sessions view: one BITFIELD_RO per session in date/unit "
           "order, places, open/full: %s", out ? out : "");
    free(out);
    free(cmds);

    rc = tsessions(&gch_alloc_std, "klub", "2021-07-07", "2021-07-08",
                   "2021-06-24T00:00:00+02:00", lefts, &out, NULL, &err);
    tap_ok(rc == GCH_OK && strcmp(tstatus_of(out, "k-m"), "closed") == 0
           && strcmp(tstatus_of(out, "k-r"), "closed") == 0
           && strcmp(tstatus_of(out, "k-m8"), "open") == 0,
           "sessions view at 7 July's deadline: closed, 8 July open");
    free(out);

    rc = tsessions(&gch_alloc_std, "klub", "2021-07-07", "2021-07-08",
                   "2021-06-07T17:59:59+02:00", lefts, &out, NULL, &err);
    tap_ok(rc == GCH_OK && strcmp(tstatus_of(out, "k-m"), "not_open_yet") == 0
           && strcmp(tstatus_of(out, "k-r"), "not_open_yet") == 0,
           "sessions view before opening: not_open_yet, even when full");
    free(out);

    rc = tsessions(&gch_alloc_std, "libre", "2021-07-09", "2021-07-09",
                   "2021-06-10T12:00:00+02:00", lefts, &out, NULL, &err);
    tap_ok(rc == GCH_OK && strstr(out, "\"id\":\"l-1\"")
           && strstr(out, "\"status\":\"open\",\"cancel_until\":"
                     "\"2021-07-07T13:30:00+02:00\"}"),
           "sessions view: cancel_until is the activity's cancel_deadline "
           "(48 h before 13:30), not its booking deadline: %s",
           out ? out : "");
    free(out);

    rc = tsessions(&gch_alloc_std, "semaine", "2021-07-12", "2021-07-18",
                   "2021-06-10T12:00:00+02:00", lefts, &out, NULL, &err);
    tap_ok(rc == GCH_OK && strstr(out, "semaine-20210714") == NULL
           && strstr(out, "semaine-20210716-MATIN") != NULL,
           "sessions view of a calendar: no cell on 14 July");
    free(out);

    rc = tsessions(&gch_alloc_std, "klub", "2022-01-01", "2022-01-02",
                   "2021-06-10T12:00:00+02:00", lefts, &out, &cmds, &err);
    tap_ok(rc == GCH_OK && strcmp(out, "[]") == 0
           && strcmp(cmds, "\n#   MULTI\n#   EXEC") == 0,
           "sessions view of an empty range: [] (%s)", out ? out : "");
    free(out);
    free(cmds);

    /* errors */

    rc = tsessions(&gch_alloc_std, "nope", NULL, NULL,
                   "2021-06-10T12:00:00+02:00", lefts, &out, NULL, &err);
    tap_ok(rc == GCH_ENOTFOUND && out == NULL && err.status == 404,
           "sessions view: unknown activity is GCH_ENOTFOUND");

    rc = tsessions(&gch_alloc_std, "klub", "2021-7-07", NULL,
                   "2021-06-10T12:00:00+02:00", lefts, &out, NULL, &err);
    tap_ok(rc == GCH_EINVALID && err.status == 400
           && strstr(err.message, "\"from\""),
           "sessions view: bad from is GCH_EINVALID naming from: %s",
           err.message);

    rc = tsessions(&gch_alloc_std, "klub", "2021-07-01", "2021-02-30",
                   "2021-06-10T12:00:00+02:00", lefts, &out, NULL, &err);
    tap_ok(rc == GCH_EINVALID && strstr(err.message, "\"to\""),
           "sessions view: bad to is GCH_EINVALID naming to: %s",
           err.message);

    rc = tsessions(&gch_alloc_std, "klub", "2021-07-01", "2021-06-30",
                   "2021-06-10T12:00:00+02:00", lefts, &out, NULL, &err);
    tap_ok(rc == GCH_EINVALID, "sessions view: to before from is "
           "GCH_EINVALID");

    rc = tsessions(&gch_alloc_std, "klub", "2021-07-01", "2021-10-02",
                   "2021-06-10T12:00:00+02:00", lefts, &out, NULL, &err);
    tap_ok(rc == GCH_EINVALID, "sessions view: to 93 days after from is "
           "GCH_EINVALID (%d)", rc);
    free(out);

    rc = tsessions(&gch_alloc_std, "klub", "2021-07-01", "2021-10-01",
                   "2021-06-10T12:00:00+02:00", lefts, &out, NULL, &err);
    tap_ok(rc == GCH_OK, "sessions view: to 92 days after from is accepted");
    free(out);
}


static redisReply *
thash_reply(const char **kv)
{
    tb_t    b;
    size_t  n;

    for (n = 0; kv[n]; n++) {
        /* count */
    }

    tb_init(&b);
    tb_arr(&b, 1);
    tb_arr(&b, n);
    for (n = 0; kv[n]; n++) {
        tb_str(&b, kv[n]);
    }

    return tb_reply(&b);
}


static int
tbookings(const gch_alloc_t *a, const char *from, const char *to,
    const char *now, const char **kv, char **out, gch_error_t *err)
{
    int                rc;
    size_t             len;
    gch_view_t        *v;
    redisReply        *r;
    const gch_cmds_t  *l;
    char              *d;

    *out = NULL;

    rc = gch_bookings_plan(&v, town, tfam("f-martin"), from,
                           from ? strlen(from) : 0, to, to ? strlen(to) : 0,
                           tinstant(now) * 1000, a, err);
    if (rc != GCH_OK) {
        return rc;
    }

    l = gch_view_cmds(v);
    d = tcmds_dump(l);
    if (strcmp(d, "\n#   MULTI\n#   HGETALL {main}:f:f-martin:bookings\n#   "
                  "EXEC")
        != 0)
    {
        rc = -99;
    }
    free(d);

    r = thash_reply(kv);
    if (rc == GCH_OK) {
        rc = gch_view_render(v, r, out, &len);
    }
    freeReplyObject(r);
    gch_view_free(v);

    return rc;
}


static const char  *tkv[] = {
    "b-2", "{\"child_id\":\"c-thais\",\"session_id\":\"k-m8\","
    "\"price_cents\":300,\"request_id\":\"D-000002\",\"at_ms\":1}",
    "b-1", "{\"child_id\":\"c-thais\",\"session_id\":\"k-a\","
    "\"price_cents\":450,\"request_id\":\"D-000001\",\"at_ms\":1}",
    "b-0", "{\"child_id\":\"c-thais\",\"session_id\":\"k-m\","
    "\"price_cents\":300,\"request_id\":\"D-000001\",\"at_ms\":1}",
    "b-9", "{\"child_id\":\"c-thais\","
    "\"session_id\":\"semaine-20210712-MATIN\","
    "\"price_cents\":1000,\"request_id\":\"D-000003\",\"at_ms\":1}",
    "b-8", "{\"child_id\":\"c-thais\",\"session_id\":\"gone\","
    "\"price_cents\":5,\"request_id\":\"D-000003\",\"at_ms\":1}",
    NULL
};


static void
test_render_bookings(void)
{
    int          rc, ok;
    char        *out;
    const char  *p0, *p1, *p2;
    gch_error_t  err;

    static const char  *none[] = { NULL };

    rc = tbookings(&gch_alloc_std, "2021-07-01", "2021-07-10",
                   "2021-06-10T12:00:00+02:00", tkv, &out, &err);
    p0 = out ? strstr(out, "\"booking_id\":\"b-0\"") : NULL;
    p1 = out ? strstr(out, "\"booking_id\":\"b-1\"") : NULL;
    p2 = out ? strstr(out, "\"booking_id\":\"b-2\"") : NULL;
    ok = rc == GCH_OK
         && tprefix(out, "{\"from\":\"2021-07-01\",\"to\":\"2021-07-10\","
                    "\"bookings\":[{\"booking_id\":\"b-0\",\"child_id\":"
                    "\"c-thais\",\"first_name\":\"Thais\",\"session_id\":"
                    "\"k-m\",\"activity_id\":\"klub\",\"date\":\"2021-07-07\","
                    "\"unit\":\"MATIN\",\"label\":\"Danse\",\"starts_at\":"
                    "\"2021-07-07T08:30:00+02:00\",\"ends_at\":"
                    "\"2021-07-07T12:00:00+02:00\",\"activity_name\":"
                    "\"Klub 8-12\",\"price_cents\":300,\"request_id\":"
                    "\"D-000001\",\"status\":\"confirmed\"}")
         && p0 && p1 && p2 && p0 < p1 && p1 < p2
         && strstr(out, "b-9") == NULL && strstr(out, "b-8") == NULL
         && strstr(out, "],\"total_cents\":1050}") != NULL;
    tap_ok(ok, "bookings view: in range, by date and unit, total 1050: %s",
           out ? out : "");
    free(out);

    rc = tbookings(&gch_alloc_std, NULL, NULL, "2021-06-10T23:30:00Z", none,
                   &out, &err);
    tap_ok(rc == GCH_OK && out && strcmp(out, "{\"from\":\"2021-06-11\",\"to\":"
                                  "\"2021-07-12\",\"bookings\":[],"
                                  "\"total_cents\":0}") == 0,
           "bookings view by default: today in Paris + 31 days: %s",
           out ? out : "");
    free(out);

    rc = tbookings(&gch_alloc_std, "x", NULL, "2021-06-10T12:00:00+02:00",
                   none, &out, &err);
    tap_ok(rc == GCH_EINVALID && strstr(err.message, "\"from\""),
           "bookings view: bad from is GCH_EINVALID");

    {
        static const char  *bad[] = { "b-1", "not json", NULL };

        rc = tbookings(&gch_alloc_std, "2021-07-01", "2021-07-10",
                       "2021-06-10T12:00:00+02:00", bad, &out, &err);
        tap_ok(rc == GCH_EREDIS && out == NULL,
               "bookings view: a corrupt entry is GCH_EREDIS");
        free(out);
    }
}


static int
trequests(const gch_alloc_t *a, const char **items, char **out)
{
    int                rc;
    tb_t               b;
    char              *d;
    size_t             n, len;
    gch_view_t        *v;
    redisReply        *r;
    gch_error_t        err;

    *out = NULL;

    rc = gch_requests_plan(&v, town, tfam("f-martin"),
                           tinstant("2021-06-10T12:00:00+02:00") * 1000, a,
                           &err);
    if (rc != GCH_OK) {
        return rc;
    }

    d = tcmds_dump(gch_view_cmds(v));
    if (strcmp(d, "\n#   MULTI\n#   LRANGE {main}:f:f-martin:demandes 0 99"
                  "\n#   EXEC") != 0)
    {
        rc = -99;
    }
    free(d);

    for (n = 0; items[n]; n++) {
        /* count */
    }

    tb_init(&b);
    tb_arr(&b, 1);
    tb_arr(&b, n);
    for (n = 0; items[n]; n++) {
        tb_str(&b, items[n]);
    }

    r = tb_reply(&b);
    if (rc == GCH_OK) {
        rc = gch_view_render(v, r, out, &len);
    }
    freeReplyObject(r);
    gch_view_free(v);

    return rc;
}


static const char  *treq[] = {
    "{\"request_id\":\"D-000002\",\"number\":2}",
    "{\"request_id\":\"D-000001\",\"number\":1}",
    NULL
};


static void
test_render_requests(void)
{
    int    rc;
    char  *out;

    static const char  *none[] = { NULL };

    rc = trequests(&gch_alloc_std, treq, &out);
    tap_ok(rc == GCH_OK && out && strcmp(out, "[{\"request_id\":\"D-000002\","
                                  "\"number\":2},{\"request_id\":"
                                  "\"D-000001\",\"number\":1}]") == 0,
           "requests view: LRANGE 0 99, a JSON array newest first: %s",
           out ? out : "");
    free(out);

    rc = trequests(&gch_alloc_std, none, &out);
    tap_ok(rc == GCH_OK && out && strcmp(out, "[]") == 0,
           "requests view: none is []");
    free(out);
}


static void
test_render_error(void)
{
    int          rc;
    char        *out;
    size_t       len;
    gch_error_t  err;

    memset(&err, 0, sizeof(err));
    err.status = 400;
    err.code = "invalid_field";
    snprintf(err.message, sizeof(err.message), "Le champ \"x\" est invalide.");

    rc = gch_render_error(&err, &gch_alloc_std, &out, &len);
    tap_ok(rc == GCH_OK && strcmp(out, "{\"error\":{\"code\":\"invalid_field\","
                                  "\"message\":\"Le champ \\\"x\\\" est "
                                  "invalide.\"}}") == 0 && len == strlen(out),
           "error JSON: code and escaped message: %s", out);
    free(out);

    err.code = NULL;
    rc = gch_render_error(&err, &gch_alloc_std, &out, &len);
    tap_ok(rc == GCH_OK && strncmp(out, "{\"error\":{\"code\":\"internal\"",
                                   27) == 0,
           "error JSON: no code is internal");
    free(out);
}


/* One view by kind; the body's allocation is freed here. */
static int
tview_once(const gch_alloc_t *a, int kind, int *ok)
{
    int          rc;
    char        *out;
    size_t       len;
    gch_error_t  err;

    static const long long  lefts[] = { 5, 0, 3, 1, 2 };

    out = NULL;

    switch (kind) {
    case 0:
        rc = tsessions(a, "klub", "2021-07-07", "2021-07-08",
                       "2021-06-10T12:00:00+02:00", lefts, &out, NULL, &err);
        break;
    case 1:
        rc = tbookings(a, "2021-07-01", "2021-07-10",
                       "2021-06-10T12:00:00+02:00", tkv, &out, &err);
        break;
    case 2:
        rc = trequests(a, treq, &out);
        break;
    case 3:
        rc = gch_render_me(town, tfam("f-martin"), a, &out, &len);
        break;
    case 4:
        rc = gch_render_activities(town, a, &out, &len);
        break;
    default:
        memset(&err, 0, sizeof(err));
        err.code = "not_found";
        rc = gch_render_error(&err, a, &out, &len);
        break;
    }

    *ok = (rc == GCH_OK && out != NULL) || (rc == GCH_ENOMEM && out == NULL);
    if (out) {
        a->free(a->ctx, out);
    }

    return rc;
}


static void
test_render_me(void)
{
    int     rc;
    char   *out;
    size_t  len;

    out = NULL;
    rc = gch_render_me(town, tfam("f-martin"), &gch_alloc_std, &out, &len);
    tap_ok(rc == GCH_OK && out != NULL
           && strstr(out, "\"prices\":[{\"activity_id\":\"klub\","
                     "\"price_cents\":300},{\"activity_id\":\"semaine\","
                     "\"price_cents\":1000},{\"activity_id\":\"libre\","
                     "\"price_cents\":500}]}"),
           "me: the family's price per activity (QF 500: klub's 300 band): "
           "%s", out ? out : "");
    free(out);

    out = NULL;
    rc = gch_render_me(town, tfam("f-noqf"), &gch_alloc_std, &out, &len);
    tap_ok(rc == GCH_OK && out != NULL
           && strstr(out, "{\"activity_id\":\"klub\",\"price_cents\":900}"),
           "me: a missing QF is priced on the highest band");
    free(out);
}


static void
test_render_oom(void)
{
    int          rc, k, ok;
    long         n, leaks, wrong;
    tcount_t     c;
    gch_alloc_t  a;

    static const char  *names[] = { "sessions", "bookings", "requests", "me",
                                    "activities", "error" };

    for (k = 0; k < 6; k++) {
        leaks = 0;
        wrong = 0;

        for (n = 1; ; n++) {
            tcount_init(&c, &a, n);
            rc = tview_once(&a, k, &ok);
            leaks += c.live != 0;

            if (c.failed == 0) {
                wrong += rc != GCH_OK;
                break;
            }

            if (rc != GCH_ENOMEM || !ok) {
                tap_diag("oom %s: failing allocation %ld: rc %d", names[k],
                         n, rc);
                wrong++;
            }
        }

        tap_ok(leaks == 0 && wrong == 0 && n > 1, "oom view %s: each of the "
               "%ld allocations fails cleanly, no leak", names[k], n - 1);
    }
}


void
test_render(void)
{
    town = ttown();
    if (town == NULL) {
        tap_ok(0, "test town parses");
        return;
    }

    test_render_sessions();
    test_render_bookings();
    test_render_requests();
    test_render_error();
    test_render_me();
    test_render_oom();

    gch_town_free(town);
    town = NULL;
}
