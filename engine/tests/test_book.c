/*
 * test_book.c -- the booking saga without Redis: gch_book_plan() and its
 * pre-checks, the step-one MULTI/EXEC, gch_book_on_step1() on replies
 * built with hiredis's reader (fresh, full, conflict, already booked,
 * replays, 409/422, lost catalogue, whole weeks), step two, the fence of
 * gch_book_on_step2() and step three; then the failing allocator over the
 * whole saga.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "tredis.h"


#define T_NOW      "2021-06-10T12:00:00+02:00"
#define T_GEN      7


/* What "Redis" answers to step one. */
typedef struct {
    const char  *idem;          /* SET idem NX GET: NULL = nil (fresh) */
    const char  *gen;           /* GET {main}:catalogue:gen; NULL = "7" */
    int          gen_nil;
    const char  *held[4][2];    /* claim key -> "<sid> <bid>" */
    const char  *full[4];       /* sessions without a place left */
    const char  *hget;          /* a swap's HGET of the old booking's
                                   planning entry: NULL = nil */
    const char  *marker;        /* a swap's SET NX GET of the old
                                   booking's marker: NULL = nil (taken) */
    long long    wl_pos;        /* LPOS + 1 of the waiting list; 0 = 9 */
    int          wl_dup;        /* HSETNX says the child was there */
} tsim_t;


typedef struct {
    const gch_town_t   *town;
    gch_booking_req_t   req;
    int                 req_ok;
    gch_book_in_t       in;
    gch_book_t         *b;
    char                body[2048];
    gch_error_t         err;
} tbk_t;


static gch_town_t  *town;
/* what tbk_plan() puts in gch_book_in_t (test_book_security) */
static int64_t      tbk_refused_ttl;
static const char  *tbk_agent;


/* items: "child:session child:session ..." */
static int
tbk_plan(tbk_t *k, const char *fid, const char *key, const char *items,
    const char *now, const gch_alloc_t *a)
{
    int          rc;
    char         buf[512], *p, *save, *colon;
    size_t       n;
    gch_error_t  err;

    memset(k, 0, sizeof(*k));
    k->town = town;

    n = (size_t) snprintf(k->body, sizeof(k->body), "{\"items\":[");
    snprintf(buf, sizeof(buf), "%s", items);

    for (p = strtok_r(buf, " ", &save); p; p = strtok_r(NULL, " ", &save)) {
        char  *gt;
        int    wl;

        /* "child:session", "child:session!" (with "waitlist": true) or,
         * a swap, "child:session>replaced booking" */
        colon = strchr(p, ':');
        *colon = '\0';
        gt = strchr(colon + 1, '>');
        if (gt) {
            *gt++ = '\0';
        }
        wl = colon[strlen(colon + 1)] == '!';
        if (wl) {
            colon[strlen(colon + 1)] = '\0';
        }
        n += (size_t) snprintf(k->body + n, sizeof(k->body) - n,
                               "%s{\"child_id\":\"%s\","
                               "\"session_id\":\"%s\"%s",
                               k->body[n - 1] == '[' ? "" : ",", p,
                               colon + 1, wl ? ",\"waitlist\":true" : "");
        if (gt) {
            n += (size_t) snprintf(k->body + n, sizeof(k->body) - n,
                                   ",\"replaces\":\"%s\"", gt);
        }
        n += (size_t) snprintf(k->body + n, sizeof(k->body) - n, "}");
    }

    n += (size_t) snprintf(k->body + n, sizeof(k->body) - n, "]}");

    if (gch_booking_req_parse(&k->req, k->body, n, 200, &gch_alloc_std,
                              &err) != GCH_OK)
    {
        tap_diag("bad test request %s: %s", k->body, err.message);
        return -100;
    }

    k->req_ok = 1;
    k->in.town = town;
    k->in.family = gch_town_family(town, fid, strlen(fid));
    k->in.req = &k->req;
    k->in.now_ms = tinstant(now) * 1000 + 123;
    k->in.idem_key = key;
    k->in.idem_len = strlen(key);
    k->in.body = k->body;
    k->in.body_len = n;
    k->in.idem_ttl_s = 86400;
    k->in.inflight_ttl_s = 30;
    k->in.catalogue_gen = T_GEN;
    k->in.attempt = 0xa7;
    k->in.refused_ttl_s = tbk_refused_ttl;
    k->in.onsite = tbk_agent != NULL;
    k->in.agent = tbk_agent;

    rc = gch_book_plan(&k->b, &k->in, a, &k->err);

    return rc;
}


static void
tbk_free(tbk_t *k)
{
    gch_book_free(k->b);
    k->b = NULL;

    if (k->req_ok) {
        gch_booking_req_free(&k->req);
        k->req_ok = 0;
    }
}


static redisReply *
tstep1_reply(const gch_cmds_t *l, const tsim_t *s)
{
    int          j;
    tb_t         b;
    char        *line, *key;
    size_t       i;
    const char  *hit;

    tb_init(&b);
    tb_arr(&b, l->ncmds - 2);

    for (i = 1; i + 1 < l->ncmds; i++) {
        line = tcmd_line(l, i);
        key = tcmd_arg(l, i, 1);

        if (strncmp(line, "SET {main}:f:", 13) == 0
            && strstr(line, ":cancel:") != NULL)
        {
            if (s && s->marker) {
                tb_str(&b, s->marker);
            } else {
                tb_nil(&b);
            }

        } else if (strncmp(line, "SET {main}:f:", 13) == 0) {
            if (s && s->idem) {
                tb_str(&b, s->idem);
            } else {
                tb_nil(&b);
            }

        } else if (strncmp(line, "INCR ", 5) == 0) {
            tb_int(&b, 42);

        } else if (strncmp(line, "HGET ", 5) == 0) {
            if (s && s->hget) {
                tb_str(&b, s->hget);
            } else {
                tb_nil(&b);
            }

        } else if (strncmp(line, "ZADD ", 5) == 0) {
            tb_int(&b, 1);

        } else if (strncmp(line, "GET {main}:catalogue:gen", 24) == 0) {
            if (s && s->gen_nil) {
                tb_nil(&b);
            } else {
                tb_str(&b, s && s->gen ? s->gen : "7");
            }

        } else if (strncmp(line, "SET {main}:c:", 13) == 0) {
            hit = NULL;
            for (j = 0; s && j < 4 && s->held[j][0]; j++) {
                if (strcmp(s->held[j][0], key) == 0) {
                    hit = s->held[j][1];
                }
            }

            if (hit) {
                tb_str(&b, hit);
            } else {
                tb_nil(&b);
            }

        } else if (strncmp(line, "BITFIELD ", 9) == 0) {
            hit = NULL;
            for (j = 0; s && j < 4 && s->full[j]; j++) {
                char  fk[128];

                snprintf(fk, sizeof(fk), "{main}:s:%s:left", s->full[j]);
                if (strcmp(fk, key) == 0) {
                    hit = fk;
                }
            }

            tb_arr(&b, 1);
            if (hit) {
                tb_nil(&b);
            } else {
                tb_int(&b, 5);
            }

        } else if (strncmp(line, "HSETNX ", 7) == 0) {
            tb_int(&b, s && s->wl_dup ? 0 : 1);

        } else if (strncmp(line, "RPUSH ", 6) == 0) {
            tb_int(&b, 9);

        } else if (strncmp(line, "LPOS ", 5) == 0) {
            tb_int(&b, (s && s->wl_pos ? s->wl_pos : 9) - 1);

        } else {
            tb_ok(&b);
        }

        free(line);
        free(key);
    }

    return tb_reply(&b);
}


/* EXEC reply of step two: the fence's old value first, then integers,
 * the last one (LPUSH's, the demande list's length) last. */
static redisReply *
tstep2_reply_n(const gch_cmds_t *l, const char *fence, long long last)
{
    tb_t    b;
    size_t  i;

    tb_init(&b);
    tb_arr(&b, l->ncmds - 2);

    if (fence) {
        tb_str(&b, fence);
    } else {
        tb_nil(&b);
    }

    for (i = 2; i + 1 < l->ncmds; i++) {
        tb_int(&b, i + 2 < l->ncmds ? 1 : last);
    }

    return tb_reply(&b);
}


static redisReply *
tstep2_reply(const gch_cmds_t *l, const char *fence)
{
    return tstep2_reply_n(l, fence, 1);
}


/* "ZREM {main}:inflight <rkey>#<attempt id>", the id read from the record
 * "P <hash> <id> <plan>" step one wrote. */
static void
tzrem(char *out, size_t size, const char *rkey, const char *rec)
{
    const char  *id, *sp;

    id = rec && strlen(rec) > 35 ? rec + 35 : "";
    sp = strchr(id, ' ');
    snprintf(out, size, "ZREM {main}:inflight %s#%.*s", rkey,
             (int) (sp ? (size_t) (sp - id) : strlen(id)), id);
}


/* The "P <hash> <attempt id> <plan>" record step one writes. */
static char *
tprecord(gch_book_t *b)
{
    const gch_cmds_t  *l;

    l = gch_book_step1(b);
    return l ? tcmd_arg(l, 1, 2) : NULL;
}


/* "ZREM {main}:inflight <this attempt's member>" */
static void
tzrem_own(char *out, size_t size, gch_book_t *b)
{
    char  *rec;

    rec = tprecord(b);
    tzrem(out, size, "{main}:f:f-martin:idem:k1", rec);
    free(rec);
}


/* plan + step one; returns on_step1's code */
static int
tbk_step1(tbk_t *k, const tsim_t *s)
{
    int                rc;
    redisReply        *r;
    const gch_cmds_t  *l;

    /* step one is written when asked for: NULL when memory is short */
    l = gch_book_step1(k->b);
    if (l == NULL) {
        return GCH_ENOMEM;
    }

    r = tstep1_reply(l, s);
    rc = gch_book_on_step1(k->b, r);
    freeReplyObject(r);

    return rc;
}


static int
tbk_step2(tbk_t *k, const char *fence)
{
    int          rc;
    redisReply  *r;

    r = tstep2_reply(gch_book_step2(k->b), fence);
    rc = gch_book_on_step2(k->b, r);
    freeReplyObject(r);

    return rc;
}


/* "-" for confirmed, reasons joined by "," */
static void
treasons(gch_book_t *b, char *out, size_t size)
{
    size_t       i, n;
    const char  *r;

    out[0] = '\0';
    n = 0;

    for (i = 0; i < gch_book_ncells(b); i++) {
        r = gch_book_cell_reason(b, i);
        n += (size_t) snprintf(out + n, size - n, "%s%s", i ? "," : "",
                               r ? r : "-");
    }
}


static int
tprefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}


static const char *
tbody(gch_book_t *b)
{
    size_t       len;
    const char  *p;

    p = gch_book_body(b, &len);
    return p ? p : "";
}


static void
test_book_forbidden(void)
{
    int    rc;
    tbk_t  k;

    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-m c-other:k-r", T_NOW,
                  &gch_alloc_std);
    tap_ok(rc == GCH_EFORBIDDEN && k.b == NULL && k.err.status == 403
           && strcmp(k.err.code, "forbidden") == 0
           && strstr(k.err.message, "c-other") != NULL,
           "book_plan: another family's child is 403 forbidden, nothing "
           "planned (%d %s)", rc, k.err.message);
    tbk_free(&k);
}


typedef struct {
    const char  *name;
    const char  *fid;
    const char  *items;
    const char  *now;
    const char  *reasons;
    size_t       claims;        /* SET {main}:c: in step one */
} tpre_t;


static const tpre_t  tpre[] = {
    { "all open, adjacent units do not overlap", "f-martin",
      "c-thais:k-m c-thais:k-r c-thais:k-a", T_NOW, "-,-,-", 3 },
    { "unknown session", "f-martin", "c-thais:nope", T_NOW,
      "unknown_session", 0 },
    { "enrolment not validated", "f-martin", "c-nina:k-m", T_NOW,
      "not_enrolled", 0 },
    { "no enrolment at all", "f-martin", "c-thais:k-m c-leo:l-1",
      T_NOW, "-,not_enrolled", 1 },
    { "age on the session date (3, min 8)", "f-martin", "c-leo:k-m", T_NOW,
      "age", 0 },
    { "one second before opening", "f-martin", "c-thais:k-m",
      "2021-06-07T17:59:59+02:00", "not_open_yet", 0 },
    { "the opening instant", "f-martin", "c-thais:k-m",
      "2021-06-07T18:00:00+02:00", "-", 1 },
    { "one second before the deadline", "f-martin", "c-thais:k-m",
      "2021-06-23T23:59:59+02:00", "-", 1 },
    { "at the deadline (9 working days)", "f-martin", "c-thais:k-m",
      "2021-06-24T00:00:00+02:00", "closed", 0 },
    { "next day's cell still open at the first's deadline", "f-martin",
      "c-thais:k-m c-thais:k-m8", "2021-06-24T00:00:00+02:00", "closed,-",
      1 },
    { "two overlapping cells of one request", "f-martin",
      "c-thais:k-m c-thais:k-j", T_NOW, "-,conflict", 1 },
    { "the same cell twice", "f-martin", "c-thais:k-m c-thais:k-m", T_NOW,
      "-,already_booked", 1 },
    { "a refused cell does not block an overlapping one", "f-martin",
      "c-nina:k-j c-thais:k-j c-thais:k-m", T_NOW,
      "not_enrolled,-,conflict", 3 },
    { "no deadline: open until the unit starts", "f-martin",
      "c-thais:l-1", "2021-07-09T13:29:59+02:00", "-", 1 },
    { "no deadline: closed when the unit starts", "f-martin",
      "c-thais:l-1", "2021-07-09T13:30:00+02:00", "closed", 0 },
};


static void
test_book_precheck(void)
{
    int          rc;
    char         got[256], *dump;
    size_t       i, claims;
    tbk_t        k;

    for (i = 0; i < sizeof(tpre) / sizeof(tpre[0]); i++) {
        rc = tbk_plan(&k, tpre[i].fid, "k1", tpre[i].items, tpre[i].now,
                      &gch_alloc_std);
        if (rc != GCH_OK) {
            tap_ok(0, "precheck %s: plan %d", tpre[i].name, rc);
            tbk_free(&k);
            continue;
        }

        claims = tcmds_count(gch_book_step1(k.b), "SET {main}:c:");
        rc = tbk_step1(&k, NULL);
        treasons(k.b, got, sizeof(got));

        tap_ok(rc == GCH_OK && gch_book_status(k.b) == 200
               && strcmp(got, tpre[i].reasons) == 0
               && claims == tpre[i].claims,
               "precheck %s: %s (%zu claims)", tpre[i].name, got, claims);

        if (claims != tpre[i].claims) {
            dump = tcmds_dump(gch_book_step1(k.b));
            tap_diag("step one:%s", dump);
            free(dump);
        }

        tbk_free(&k);
    }

    /* not_open_yet says when */

    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-m",
                  "2021-06-07T17:59:59+02:00", &gch_alloc_std);
    if (rc == GCH_OK) {
        rc = tbk_step1(&k, NULL);
    }
    tap_ok(rc == GCH_OK && strstr(tbody(k.b), "\"reason\":\"not_open_yet\","
                                  "\"opens_at\":\"2021-06-07T18:00:00+02:00\"")
           && strstr(tbody(k.b), "\"status\":\"traitee_negativement\""),
           "not_open_yet answers opens_at: %s", tbody(k.b));
    tbk_free(&k);
}


static int
tline_is(const gch_cmds_t *l, size_t i, const char *want)
{
    int    ok;
    char  *s;

    s = tcmd_line(l, i);
    ok = strcmp(s, want) == 0;
    if (!ok) {
        tap_diag("command %zu: got  %s", i, s);
        tap_diag("command %zu: want %s", i, want);
    }
    free(s);

    return ok;
}


static void
test_book_step1_shape(void)
{
    int                ok;
    char               want[512], *rec, *val, *bid, *p;
    long long          exat, ms;
    tbk_t              k;
    const gch_cmds_t  *l;

    if (tbk_plan(&k, "f-martin", "k1", "c-thais:k-j c-leo:k-m", T_NOW,
                 &gch_alloc_std) != GCH_OK)
    {
        tap_ok(0, "step one shape: plan");
        tbk_free(&k);
        return;
    }

    l = gch_book_step1(k.b);
    ms = tinstant(T_NOW) * 1000 + 123;
    exat = tinstant("2021-07-09T00:00:00+02:00");
    rec = tprecord(k.b);
    val = tcmd_arg(l, 5, 2);
    bid = val ? strchr(val, ' ') : NULL;
    bid = bid ? bid + 1 : "";

    ok = tcmds_multi_exec(l) && l->ncmds == 10;
    ok = ok && tline_is(l, 0, "MULTI");
    snprintf(want, sizeof(want), "SET {main}:f:f-martin:idem:k1 %s NX GET EX "
                                 "30",
             rec ? rec : "");
    ok = ok && tline_is(l, 1, want);
    ok = ok && tline_is(l, 2, "INCR {main}:seq:demande");
    /* the attempt's own member: key, attempt number, body hash */
    snprintf(want, sizeof(want), "ZADD {main}:inflight %lld "
             "{main}:f:f-martin:idem:k1#a7.%.8s", ms, rec ? rec + 2 : "");
    ok = ok && tline_is(l, 3, want);
    ok = ok && tline_is(l, 4, "GET {main}:catalogue:gen");

    snprintf(want, sizeof(want), "SET {main}:c:c-thais:2021-07-07:q0 k-j %s NX "
             "GET EXAT %lld", bid, exat);
    ok = ok && tline_is(l, 5, want);
    snprintf(want, sizeof(want), "SET {main}:c:c-thais:2021-07-07:q1 k-j %s NX "
             "GET EXAT %lld", bid, exat);
    ok = ok && tline_is(l, 6, want);
    snprintf(want, sizeof(want), "SET {main}:c:c-thais:2021-07-07:q2 k-j %s NX "
             "GET EXAT %lld", bid, exat);
    ok = ok && tline_is(l, 7, want);
    ok = ok && tline_is(l, 8, "BITFIELD {main}:s:k-j:left OVERFLOW FAIL INCRBY "
                              "u32 0 -1");
    /* c-leo is refused (age): no claim, no place */
    ok = ok && tline_is(l, 9, "EXEC");
    tap_ok(ok, "step one: MULTI, SET idem NX GET EX, INCR, ZADD of the "
           "attempt's member, GET gen, a claim per elementary interval, "
           "BITFIELD -1, EXEC");

    /* the record: P <hash> <attempt id> <plan for the reaper> */
    ok = rec != NULL && rec[0] == 'P' && rec[1] == ' ' && strlen(rec) > 35
         && rec[34] == ' ';
    for (p = rec ? rec + 2 : NULL; ok && p < rec + 34; p++) {
        ok = (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f');
    }
    snprintf(want, sizeof(want), " a7.%.8s ~q 1 7:c-thais 3:k-j",
             rec ? rec + 2 : "");
    ok = ok && strcmp(rec + 34, want) == 0;
    tap_ok(ok, "step one record: P <hash> <attempt id> <plan of open cells>: "
           "%s", rec ? rec : "(none)");

    /* the reaper reads the plan as it always did: ids and claims derived */
    {
        char    *js, *plan;
        size_t   n;

        plan = ok ? strchr(rec + 35, ' ') + 1 : NULL;
        js = plan ? gch_dm_plan_json(plan, strlen(plan), k.in.town,
                                     "f-martin", "k1", 2, &gch_alloc_std, &n)
                  : NULL;
        snprintf(want, sizeof(want), "[{\"s\":\"k-j\",\"c\":\"c-thais\","
                 "\"b\":\"%s\",\"q\":[\"{main}:c:c-thais:2021-07-07:q0\","
                 "\"{main}:c:c-thais:2021-07-07:q1\","
                 "\"{main}:c:c-thais:2021-07-07:q2\"]}]", bid);
        tap_ok(js && strcmp(js, want) == 0 && n == strlen(want),
               "step one record: its plan rendered for the reaper: %s",
               js ? js : "(null)");
        free(js);

        js = gch_dm_plan_json("~q 1 7:c-thais 4:k-zz", 21, k.in.town,
                              "f-martin", "k1", 2, &gch_alloc_std, &n);
        tap_ok(js && strstr(js, "\"s\":\"k-zz\"") && strstr(js, "\"q\":[]"),
               "plan: a session the catalogue lost has no claims: %s",
               js ? js : "(null)");
        free(js);

        js = gch_dm_plan_json("~q 2 7:c-thais 3:k-j", 20, k.in.town,
                              "f-martin", "k1", 2, &gch_alloc_std, &n);
        tap_ok(js == NULL && n == 0, "plan: a short plan is refused");
    }

    free(rec);
    free(val);
    tbk_free(&k);
}


/* The booking id of cell 0, from its first claim's value. */
static char *
tbid(const char *fid, const char *key, const char *items)
{
    char   *val, *sp, *bid;
    tbk_t   k;

    bid = NULL;

    if (tbk_plan(&k, fid, key, items, T_NOW, &gch_alloc_std) == GCH_OK) {
        val = tcmd_arg(gch_book_step1(k.b), 5, 2);
        sp = val ? strchr(val, ' ') : NULL;
        bid = sp ? strdup(sp + 1) : NULL;
        free(val);
    }

    tbk_free(&k);
    return bid ? bid : strdup("");
}


static int
tbid_form(const char *b)
{
    size_t  i;

    if (strlen(b) != 22 || b[0] != 'b' || b[1] != '-') {
        return 0;
    }

    for (i = 2; i < 22; i++) {
        if (!((b[i] >= '0' && b[i] <= '9') || (b[i] >= 'a' && b[i] <= 'f'))) {
            return 0;
        }
    }

    return 1;
}


static void
test_book_ids(void)
{
    char  *a, *b, *c, *d, *e;

    a = tbid("f-martin", "k1", "c-thais:k-m");
    b = tbid("f-martin", "k1", "c-thais:k-m c-thais:k-a");
    c = tbid("f-martin", "k2", "c-thais:k-m");
    d = tbid("f-martin", "k1", "c-thais:k-r");
    e = tbid("f-noqf", "k1", "c-sam:k-m");

    tap_ok(tbid_form(a), "booking id is b- + 20 hex: %s", a);
    tap_ok(strcmp(a, b) == 0, "same family, key, child, session: same id "
           "(%s %s)", a, b);
    tap_ok(strcmp(a, c) != 0 && strcmp(a, d) != 0 && strcmp(a, e) != 0
           && strcmp(c, d) != 0 && tbid_form(c) && tbid_form(d)
           && tbid_form(e),
           "other key, session or family/child: other ids (%s %s %s)",
           c, d, e);

    free(a);
    free(b);
    free(c);
    free(d);
    free(e);
}


/* The JSON what of the record's (bare) compact demande, of family
 * f-martin and key k1, is exactly want. */
static int
tdm_is(const char *compact, int what, const char *want)
{
    int     ok;
    char   *j;
    size_t  n;

    j = gch_dm_json_in(compact, strlen(compact), what, "f-martin", "k1", 2,
                       &gch_alloc_std, &n);
    ok = j && strcmp(j, want) == 0 && n == strlen(want);
    if (!ok) {
        tap_diag("rendered: %s", j ? j : "(null)");
    }
    free(j);

    return ok;
}


/* Argument j of command i is the whole compact demande (the record's
 * bare one with the family and the key), and its JSON what starts with
 * want. */
static int
tdm_arg_is(const gch_cmds_t *l, size_t i, size_t j, const char *stored,
    int what, const char *want)
{
    int     ok;
    char   *arg, *js;
    size_t  n;

    arg = tcmd_arg(l, i, j);
    js = arg ? gch_dm_json(arg, strlen(arg), what, &gch_alloc_std, &n)
             : NULL;
    ok = arg && stored
         && strncmp(stored + 35, "~1 42 0 w 0: 0: 0: ", 19) == 0
         && strncmp(arg, "~1 42 1623319200123 w 8:f-martin 2:k1 0: ", 41) == 0
         && strcmp(arg + 41, stored + 35 + 19) == 0 && js
         && strncmp(js, want, strlen(want)) == 0;
    if (!ok) {
        tap_diag("rendered: %s", js ? js : "(null)");
    }
    free(arg);
    free(js);

    return ok;
}


/* The stream entry's JSON (argument j of command i) contains needle. */
static int
tdm_arg_has(const gch_cmds_t *l, int i, size_t j, const char *needle)
{
    int     ok;
    char   *arg, *js;
    size_t  n;

    if (l == NULL || i < 0) {
        return 0;
    }

    arg = tcmd_arg(l, (size_t) i, j);
    js = arg ? gch_dm_json(arg, strlen(arg), GCH_DM_ENTRY, &gch_alloc_std,
                           &n)
             : NULL;
    ok = js && strstr(js, needle) != NULL;
    free(arg);
    free(js);

    return ok;
}


static void
test_book_fresh(void)
{
    int                rc, ok;
    long long          n;
    char               want[512], *rec, *stored, *bid;
    tbk_t              k;
    const char        *body;
    const gch_cmds_t  *l;

    /* QF 500: band 600 -> 300 cents */

    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-m c-thais:k-r", T_NOW,
                  &gch_alloc_std);
    rec = tprecord(k.b);
    bid = tcmd_arg(gch_book_step1(k.b), 5, 2);
    rc = rc ? rc : tbk_step1(&k, NULL);
    body = tbody(k.b);
    l = gch_book_step2(k.b);

    ok = rc == GCH_OK && gch_book_status(k.b) == 200
         && !gch_book_replayed(k.b) && !gch_book_done(k.b)
         && tprefix(body, "{\"request_id\":\"D-000042\",\"status\":"
                    "\"traitee_positivement\",\"items\":[{\"child_id\":"
                    "\"c-thais\",\"session_id\":\"k-m\",\"status\":"
                    "\"confirmed\",\"booking_id\":\"b-")
         && strstr(body, "\"price_cents\":300}") != NULL
         && strstr(body, "\"session_id\":\"k-r\",\"status\":\"confirmed\"");
    tap_ok(ok, "on_step1 fresh: all confirmed, price by QF band: %s", body);

    /* step two */

    ok = l && tcmds_multi_exec(l) && l->ncmds == 10;
    stored = l ? tcmd_arg(l, 1, 2) : NULL;
    ok = ok && stored && rec && strncmp(stored + 1, rec + 1, 33) == 0
         && stored[0] == 'D' && tdm_is(stored + 35, GCH_DM_ANSWER, body);
    snprintf(want, sizeof(want), "SET {main}:f:f-martin:idem:k1 %s XX GET EX "
                                 "86400", stored ? stored : "");
    ok = ok && tline_is(l, 1, want);
    tzrem(want, sizeof(want), "{main}:f:f-martin:idem:k1", rec);
    ok = ok && tline_is(l, 2, want);
    snprintf(want, sizeof(want), "SADD {main}:s:k-m:booked %s",
             bid ? strchr(bid, ' ') + 1 : "");
    ok = ok && tline_is(l, 3, want);
    ok = ok && tcmds_find(l, 4, "HSET {main}:f:f-martin:bookings b-") == 4
         && tcmds_find(l, 5, "SADD {main}:s:k-r:booked b-") == 5
         && tcmds_find(l, 6, "HSET {main}:f:f-martin:bookings b-") == 6
         && tcmds_find(l, 7, "XADD {main}:stream * d ~1 42 ") == 7
         && tdm_arg_is(l, 7, 4, stored, GCH_DM_ENTRY,
                       "{\"type\":\"book\",\"number\":42,\"request_id\":"
                       "\"D-000042\",\"family_id\":\"f-martin\",\"idem\":"
                       "\"k1\",\"at_ms\":1623319200123,\"status\":"
                       "\"traitee_positivement\",\"items\":")
         && tcmds_find(l, 8, "LPUSH {main}:f:f-martin:demandes ~1 42 ") == 8
         && tdm_arg_is(l, 8, 2, stored, GCH_DM_DEMANDE,
                       "{\"request_id\":\"D-000042\",\"number\":42,"
                       "\"type\":\"booking\",\"created_at\":")
         && tline_is(l, 9, "EXEC")
         && tcmds_count(l, "DEL ") == 0 && tcmds_count(l, "BITFIELD") == 0;
    tap_ok(ok, "step two: SET XX GET fence with D <hash> <compact>, ZREM, "
           "SADD+HSET per confirmed, XADD, LPUSH of the same compact "
           "demande (no LTRIM); it renders the answer, the entry, the "
           "demande");
    if (!ok && l) {
        char  *d = tcmds_dump(l);
        tap_diag("step two:%s", d);
        free(d);
    }

    ok = tcmds_find(l, 0, "HSET {main}:f:f-martin:bookings b-") >= 0;
    if (ok) {
        char    *h = tcmd_arg(l, 4, 3), *js;
        size_t   jn;

        js = h ? gch_dm_planning_json(h, strlen(h), &gch_alloc_std, &jn)
               : NULL;
        ok = h && strcmp(h, "~p 7:c-thais 3:k-m 300 42 w") == 0
             && js && strcmp(js, "{\"child_id\":\"c-thais\",\"session_id\":"
                             "\"k-m\",\"price_cents\":300,\"request_id\":"
                             "\"D-000042\"}") == 0;
        if (!ok) {
            tap_diag("planning entry: %s -> %s", h ? h : "(null)",
                     js ? js : "(null)");
        }
        free(js);
        free(h);
    }
    tap_ok(ok, "the planning entry carries child, session, price, demande");

    rc = tbk_step2(&k, rec);
    tap_ok(rc == GCH_OK && gch_book_done(k.b) && gch_book_status(k.b) == 200
           && strcmp(tbody(k.b), body) == 0 && gch_book_step3(k.b) == NULL,
           "on_step2: the fence returns our P: final 200");

    free(stored);
    free(rec);
    free(bid);
    tbk_free(&k);

    /* the demande list is trimmed only when LPUSH says it outgrew 250 */

    for (n = 250; n <= 251; n++) {
        rc = tbk_plan(&k, "f-martin", "k-trim", "c-thais:k-m", T_NOW,
                      &gch_alloc_std);
        rec = tprecord(k.b);
        rc = rc ? rc : tbk_step1(&k, NULL);
        if (rc == GCH_OK) {
            redisReply  *r = tstep2_reply_n(gch_book_step2(k.b), rec, n);

            rc = gch_book_on_step2(k.b, r);
            freeReplyObject(r);
        }
        l = gch_book_step3(k.b);
        if (n == 250) {
            tap_ok(rc == GCH_OK && gch_book_status(k.b) == 200 && l == NULL,
                   "on_step2: a demande list of 250 is left as it is");
        } else {
            tap_ok(rc == GCH_OK && gch_book_status(k.b) == 200 && l
                   && l->ncmds == 1
                   && tline_is(l, 0, "LTRIM {main}:f:f-martin:demandes 0 199"),
                   "on_step2: a list of 251 is trimmed to the newest 200 "
                   "(step three, after the answer)");
        }
        free(rec);
        tbk_free(&k);
    }

    /* QF missing: the highest band */

    rc = tbk_plan(&k, "f-noqf", "k1", "c-sam:k-m", T_NOW, &gch_alloc_std);
    rc = rc ? rc : tbk_step1(&k, NULL);
    tap_ok(rc == GCH_OK && strstr(tbody(k.b), "\"price_cents\":900}"),
           "QF missing: highest band (900): %s", tbody(k.b));
    tbk_free(&k);
}


static void
tdump_diag(const char *what, const gch_cmds_t *l)
{
    char  *d = tcmds_dump(l);

    tap_diag("%s:%s", what, d);
    free(d);
}


static void
test_book_outcomes(void)
{
    int                rc, ok;
    char               got[256];
    tbk_t              k;
    tsim_t             s;
    const gch_cmds_t  *l;

    /* full: nothing taken, its claims are given back */

    memset(&s, 0, sizeof(s));
    s.full[0] = "k-m";
    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-m c-thais:k-r", T_NOW,
                  &gch_alloc_std);
    rc = rc ? rc : tbk_step1(&k, &s);
    treasons(k.b, got, sizeof(got));
    l = gch_book_step2(k.b);
    ok = rc == GCH_OK && strcmp(got, "full,-") == 0
         && strstr(tbody(k.b), "\"status\":\"partielle\"")
         && tcmds_find(l, 0, "DEL {main}:c:c-thais:2021-07-07:q0") >= 0
         && tcmds_count(l, "DEL ") == 1
         && tcmds_count(l, "BITFIELD") == 0
         && tcmds_count(l, "SADD {main}:s:k-m:") == 0
         && tcmds_count(l, "SADD {main}:s:k-r:booked") == 1
         && tcmds_count(l, "HSET ") == 1;
    tap_ok(ok, "nil BITFIELD: full, its claim DEL'd in step two, partielle "
           "(%s)", got);
    if (!ok) {
        tdump_diag("step two", l);
    }
    tbk_free(&k);

    /* a claim held by another session: conflict, the place goes back */

    memset(&s, 0, sizeof(s));
    s.held[0][0] = "{main}:c:c-thais:2021-07-07:q1";
    s.held[0][1] = "k-x b-00000000000000000000";
    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-j", T_NOW,
                  &gch_alloc_std);
    rc = rc ? rc : tbk_step1(&k, &s);
    treasons(k.b, got, sizeof(got));
    l = gch_book_step2(k.b);
    ok = rc == GCH_OK && strcmp(got, "conflict") == 0
         && strstr(tbody(k.b), "\"status\":\"traitee_negativement\"")
         && tcmds_find(l, 0, "DEL {main}:c:c-thais:2021-07-07:q0") >= 0
         && tcmds_find(l, 0, "DEL {main}:c:c-thais:2021-07-07:q2") >= 0
         && tcmds_count(l, "DEL {main}:c:c-thais:2021-07-07:q1") == 0
         && tcmds_find(l, 0, "BITFIELD {main}:s:k-j:left OVERFLOW FAIL INCRBY "
                       "u32 0 1") >= 0
         && tcmds_count(l, "SADD") == 0 && tcmds_count(l, "HSET") == 0
         && tcmds_find(l, 0, "SET {main}:f:f-martin:idem:k1 D ") == 1
         && tcmds_find(l, 0, "XADD {main}:stream") >= 0;
    tap_ok(ok, "claim held by another session: conflict, only our claims "
           "DEL'd, BITFIELD +1 (%s)", got);
    if (!ok) {
        tdump_diag("step two", l);
    }
    tbk_free(&k);

    /* held by the same session: already booked */

    memset(&s, 0, sizeof(s));
    s.held[0][0] = "{main}:c:c-thais:2021-07-07:q0";
    s.held[0][1] = "k-m b-11111111111111111111";
    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-m c-thais:k-a", T_NOW,
                  &gch_alloc_std);
    rc = rc ? rc : tbk_step1(&k, &s);
    treasons(k.b, got, sizeof(got));
    l = gch_book_step2(k.b);
    ok = rc == GCH_OK && strcmp(got, "already_booked,-") == 0
         && tcmds_find(l, 0, "BITFIELD {main}:s:k-m:left OVERFLOW FAIL INCRBY "
                       "u32 0 1") >= 0
         && tcmds_count(l, "DEL ") == 0
         && tcmds_count(l, "SADD {main}:s:k-a:booked") == 1
         && tcmds_count(l, "SADD {main}:s:k-m:") == 0;
    tap_ok(ok, "claim held by the same session: already_booked, place "
           "given back (%s)", got);
    if (!ok) {
        tdump_diag("step two", l);
    }
    tbk_free(&k);

    /* a session id that is a prefix of the holder's is not the same */

    memset(&s, 0, sizeof(s));
    s.held[0][0] = "{main}:c:c-thais:2021-07-07:q0";
    s.held[0][1] = "k-m8 b-11111111111111111111";
    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-m", T_NOW, &gch_alloc_std);
    rc = rc ? rc : tbk_step1(&k, &s);
    treasons(k.b, got, sizeof(got));
    tap_ok(rc == GCH_OK && strcmp(got, "conflict") == 0,
           "holder k-m8 of cell k-m is a conflict (%s)", got);
    tbk_free(&k);

    /* conflict and full at once: conflict wins, nothing to give back */

    memset(&s, 0, sizeof(s));
    s.held[0][0] = "{main}:c:c-thais:2021-07-07:q0";
    s.held[0][1] = "k-j b-22222222222222222222";
    s.full[0] = "k-m";
    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-m", T_NOW, &gch_alloc_std);
    rc = rc ? rc : tbk_step1(&k, &s);
    treasons(k.b, got, sizeof(got));
    l = gch_book_step2(k.b);
    tap_ok(rc == GCH_OK && strcmp(got, "conflict") == 0
           && tcmds_count(l, "DEL ") == 0 && tcmds_count(l, "BITFIELD") == 0,
           "held and full: conflict, nothing to undo (%s)", got);
    tbk_free(&k);

    /* unexpected replies */

    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-m", T_NOW, &gch_alloc_std);
    if (rc == GCH_OK) {
        redisReply  *r;

        r = treply("-ERR EXECABORT\r\n", strlen("-ERR EXECABORT\r\n"));
        rc = gch_book_on_step1(k.b, r);
        freeReplyObject(r);
    }
    tap_ok(rc == GCH_EREDIS && gch_book_step2(k.b) == NULL,
           "on_step1: an error reply is GCH_EREDIS, no step two");
    tbk_free(&k);

    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-m", T_NOW, &gch_alloc_std);
    if (rc == GCH_OK) {
        redisReply  *r;

        static const char  shortx[] =
            "*5\r\n$-1\r\n:42\r\n:1\r\n$1\r\n7\r\n$-1\r\n";

        r = treply(shortx, sizeof(shortx) - 1);
        rc = gch_book_on_step1(k.b, r);
        freeReplyObject(r);
    }
    tap_ok(rc == GCH_EREDIS, "on_step1: a short EXEC array is GCH_EREDIS");
    tbk_free(&k);
}


/* A first run's answer, to replay: its record hash and body. */
static void
tfirst(char *hash, char *body, size_t size)
{
    char   *rec;
    tbk_t   k;

    hash[0] = '\0';
    body[0] = '\0';

    if (tbk_plan(&k, "f-martin", "k1", "c-thais:k-m", T_NOW,
                 &gch_alloc_std) == GCH_OK)
    {
        rec = tprecord(k.b);
        if (tbk_step1(&k, NULL) == GCH_OK && rec) {
            memcpy(hash, rec + 2, 32);
            hash[32] = '\0';
            snprintf(body, size, "%s", tbody(k.b));
        }
        free(rec);
    }

    tbk_free(&k);
}


static void
test_book_idempotency(void)
{
    int                rc, ok;
    char               hash[33], first[2048], rec[2300], zrem[300];
    tbk_t              k;
    tsim_t             s;
    const gch_cmds_t  *l;

    tfirst(hash, first, sizeof(first));

    /* same key, same body, answered: the stored answer */

    memset(&s, 0, sizeof(s));
    snprintf(rec, sizeof(rec), "D %s %s", hash, first);
    s.idem = rec;
    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-m", T_NOW, &gch_alloc_std);
    rc = rc ? rc : tbk_step1(&k, &s);
    l = gch_book_step2(k.b);
    tzrem_own(zrem, sizeof(zrem), k.b);
    ok = rc == GCH_OK && gch_book_status(k.b) == 200 && gch_book_replayed(k.b)
         && first[0] && strcmp(tbody(k.b), first) == 0
         && gch_book_ncells(k.b) == 0
         && l && tcmds_multi_exec(l) && l->ncmds == 5
         && tline_is(l, 1, "DEL {main}:c:c-thais:2021-07-07:q0")
         && tline_is(l, 2, "BITFIELD {main}:s:k-m:left OVERFLOW FAIL INCRBY "
                           "u32 "
                           "0 1")
         && tline_is(l, 3, zrem);
    tap_ok(ok, "replay: same body, replayed flag, step one's claim and "
           "place given back, ZREM of its own inflight member, the "
           "record untouched");
    if (!ok) {
        tdump_diag("compensation", l);
    }
    rc = tbk_step2(&k, NULL);
    tap_ok(rc == GCH_OK && gch_book_done(k.b) && gch_book_status(k.b) == 200
           && gch_book_replayed(k.b) && gch_book_step3(k.b) == NULL,
           "replay: the compensation's reply changes nothing");
    tbk_free(&k);

    /* the claim was already ours (a replay of a confirmed cell): keep it */

    memset(&s, 0, sizeof(s));
    s.idem = rec;
    s.held[0][0] = "{main}:c:c-thais:2021-07-07:q0";
    s.held[0][1] = "k-m b-33333333333333333333";
    s.full[0] = "k-m";
    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-m", T_NOW, &gch_alloc_std);
    rc = rc ? rc : tbk_step1(&k, &s);
    l = gch_book_step2(k.b);
    tzrem_own(zrem, sizeof(zrem), k.b);
    tap_ok(rc == GCH_OK && gch_book_replayed(k.b) && l && l->ncmds == 3
           && tline_is(l, 1, zrem),
           "replay when step one took nothing: only the ZREM");
    tbk_free(&k);

    /* same key, other body */

    memset(&s, 0, sizeof(s));
    s.idem = "D 0123456789abcdef0123456789abcdef {\"request_id\":\"D-1\"}";
    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-m", T_NOW, &gch_alloc_std);
    rc = rc ? rc : tbk_step1(&k, &s);
    l = gch_book_step2(k.b);
    ok = rc == GCH_OK && gch_book_status(k.b) == 422
         && !gch_book_replayed(k.b)
         && strstr(tbody(k.b), "\"code\":\"idempotency_key_reused\"")
         && l && tcmds_count(l, "DEL {main}:c:c-thais:2021-07-07:q0") == 1
         && tcmds_count(l, "BITFIELD") == 1
         && tcmds_count(l, "DEL {main}:f:") == 0 && tcmds_count(l, "SET ") == 0;
    tap_ok(ok, "other body: 422 idempotency_key_reused, compensation only: "
           "%s", tbody(k.b));
    tbk_free(&k);

    /* same key, in progress */

    memset(&s, 0, sizeof(s));
    snprintf(rec, sizeof(rec), "P %s 1623319200000 []", hash);
    s.idem = rec;
    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-m", T_NOW, &gch_alloc_std);
    rc = rc ? rc : tbk_step1(&k, &s);
    l = gch_book_step2(k.b);
    tzrem_own(zrem, sizeof(zrem), k.b);
    ok = rc == GCH_OK && gch_book_status(k.b) == 409
         && strstr(tbody(k.b), "\"code\":\"request_in_progress\"")
         && l && tcmds_count(l, "DEL {main}:c:") == 1
         && tcmds_count(l, "BITFIELD") == 1
         && tcmds_count(l, "DEL {main}:f:") == 0
         && tcmds_count(l, "ZREM") == 1 && tcmds_count(l, zrem) == 1;
    tap_ok(ok, "P record: 409 request_in_progress, compensation and its own "
           "inflight member removed (the live attempt's is its own): %s",
           tbody(k.b));
    rc = tbk_step2(&k, NULL);
    tap_ok(rc == GCH_OK && gch_book_status(k.b) == 409,
           "409: the compensation's reply keeps the answer");
    tbk_free(&k);

    /* a record that is not ours to read */

    memset(&s, 0, sizeof(s));
    s.idem = "garbage";
    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-m", T_NOW, &gch_alloc_std);
    rc = rc ? rc : tbk_step1(&k, &s);
    tap_ok(rc == GCH_EREDIS && gch_book_status(k.b) == 503,
           "malformed record: GCH_EREDIS, 503");
    tbk_free(&k);
}


typedef struct {
    const char  *name;
    const char  *gen;
    int          gen_nil;
    int          fail;
} tgen_t;


static void
test_book_catalogue_gen(void)
{
    int                rc, ok;
    char               hash[33], first[2048], rec[2300];
    size_t             i;
    tbk_t              k;
    tsim_t             s;
    const gch_cmds_t  *l;

    static const tgen_t  cases[] = {
        { "gen missing (Redis lost its data)", NULL, 1, 1 },
        { "gen older than the plan's", "6", 0, 1 },
        { "gen zero", "0", 0, 1 },
        { "gen not a number", "x", 0, 1 },
        { "gen equal", "7", 0, 0 },
        { "gen newer", "8", 0, 0 },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&s, 0, sizeof(s));
        s.gen = cases[i].gen;
        s.gen_nil = cases[i].gen_nil;
        s.full[0] = "k-r";
        rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-m c-thais:k-r", T_NOW,
                      &gch_alloc_std);
        rc = rc ? rc : tbk_step1(&k, &s);
        l = gch_book_step2(k.b);

        if (cases[i].fail) {
            ok = rc == GCH_OK && gch_book_status(k.b) == 503
                 && strstr(tbody(k.b), "\"code\":\"unavailable\"")
                 && gch_book_done(k.b) && gch_book_ncells(k.b) == 0
                 && l && tcmds_multi_exec(l)
                 && tcmds_count(l, "DEL {main}:c:c-thais:2021-07-07:q0") == 1
                 && tcmds_count(l, "DEL {main}:c:c-thais:2021-07-07:q1") == 1
                 && tcmds_count(l, "BITFIELD {main}:s:k-m:left OVERFLOW FAIL "
                                "INCRBY u32 0 1") == 1
                 && tcmds_count(l, "BITFIELD {main}:s:k-r:") == 0
                 && tcmds_count(l, "DEL {main}:f:f-martin:idem:k1") == 1
                 && tcmds_count(l, "ZREM {main}:inflight {main}:f:f-martin:"
                                   "idem:k1")
                    == 1
                 && tcmds_count(l, "SADD") == 0
                 && tcmds_count(l, "XADD") == 0;
        } else {
            ok = rc == GCH_OK && gch_book_status(k.b) == 200
                 && l && tcmds_count(l, "SADD {main}:s:k-m:booked") == 1;
        }

        tap_ok(ok, "catalogue %s: %s", cases[i].name,
               cases[i].fail ? "503, everything undone incl. the record"
                             : "booked");
        if (!ok) {
            tdump_diag("step two", l);
        }
        tbk_free(&k);
    }

    /* lost data and a record that is someone else's: keep the record */

    tfirst(hash, first, sizeof(first));
    memset(&s, 0, sizeof(s));
    snprintf(rec, sizeof(rec), "D %s %s", hash, first);
    s.idem = rec;
    s.gen_nil = 1;
    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-m", T_NOW, &gch_alloc_std);
    rc = rc ? rc : tbk_step1(&k, &s);
    l = gch_book_step2(k.b);
    tap_ok(rc == GCH_OK && gch_book_status(k.b) == 503 && l
           && tcmds_multi_exec(l) && tcmds_count(l, "DEL {main}:f:") == 0
           && tcmds_count(l, "DEL {main}:c:") == 1
           && tcmds_count(l, "BITFIELD") == 1,
           "lost data with an existing record: 503, the record is kept");
    tbk_free(&k);

    /* lost data, nothing taken: only the record goes */

    memset(&s, 0, sizeof(s));
    s.gen_nil = 1;
    rc = tbk_plan(&k, "f-martin", "k1", "c-leo:k-m", T_NOW, &gch_alloc_std);
    rc = rc ? rc : tbk_step1(&k, &s);
    l = gch_book_step2(k.b);
    tap_ok(rc == GCH_OK && gch_book_status(k.b) == 503 && l
           && tcmds_multi_exec(l) && l->ncmds == 4
           && tcmds_count(l, "DEL {main}:f:f-martin:idem:k1") == 1,
           "lost data, no cell open: MULTI DEL record ZREM EXEC");
    tbk_free(&k);
}


static void
test_book_week(void)
{
    int                rc, ok;
    char               got[256];
    tbk_t              k;
    tsim_t             s;
    const gch_cmds_t  *l;

#define WEEK4  "c-thais:semaine-20210712-MATIN "                            \
               "c-thais:semaine-20210713-MATIN "                            \
               "c-thais:semaine-20210715-MATIN c-thais:semaine-20210716-MATIN"

    rc = tbk_plan(&k, "f-martin", "k1", WEEK4, T_NOW, &gch_alloc_std);
    rc = rc ? rc : tbk_step1(&k, NULL);
    treasons(k.b, got, sizeof(got));
    tap_ok(rc == GCH_OK && strcmp(got, "-,-,-,-") == 0
           && strstr(tbody(k.b), "\"price_cents\":1000}"),
           "whole week, 14 July excluded: all confirmed (%s)", got);
    tbk_free(&k);

    /* an incomplete week refuses its own cells, not the rest (issue 22) */

    rc = tbk_plan(&k, "f-martin", "k1",
                  "c-thais:semaine-20210712-MATIN "
                  "c-thais:semaine-20210713-MATIN "
                  "c-thais:semaine-20210715-MATIN c-thais:k-m",
                  T_NOW, &gch_alloc_std);
    l = rc ? NULL : gch_book_step1(k.b);
    ok = rc == GCH_OK && tcmds_count(l, "SET {main}:c:c-thais:") == 1
         && tcmds_count(l, "BITFIELD") == 1
         && tcmds_count(l, "BITFIELD {main}:s:k-m:") == 1;
    rc = rc ? rc : tbk_step1(&k, NULL);
    treasons(k.b, got, sizeof(got));
    ok = ok && rc == GCH_OK
         && strcmp(got, "week_incomplete,week_incomplete,week_incomplete,"
                   "-") == 0;
    tap_ok(ok, "incomplete week: its cells refused before Redis, the other "
           "activity's cell booked (%s)", got);
    if (!ok) {
        tdump_diag("step one", l);
    }
    tbk_free(&k);

    /* only the week's own cells: nothing open, nothing sent */

    rc = tbk_plan(&k, "f-martin", "k1",
                  "c-thais:semaine-20210712-MATIN "
                  "c-thais:semaine-20210713-MATIN",
                  T_NOW, &gch_alloc_std);
    l = rc ? NULL : gch_book_step1(k.b);
    ok = rc == GCH_OK && tcmds_count(l, "SET {main}:c:") == 0
         && tcmds_count(l, "BITFIELD") == 0;
    rc = rc ? rc : tbk_step1(&k, NULL);
    treasons(k.b, got, sizeof(got));
    ok = ok && rc == GCH_OK
         && strcmp(got, "week_incomplete,week_incomplete") == 0
         && strstr(tbody(k.b), "\"status\":\"traitee_negativement\"");
    tap_ok(ok, "incomplete week alone: refused before Redis (%s)", got);
    tbk_free(&k);

    /* another child's refused cell of the same week: its own reason only */

    rc = tbk_plan(&k, "f-martin", "k1", WEEK4 " c-leo:semaine-20210712-MATIN",
                  T_NOW, &gch_alloc_std);
    rc = rc ? rc : tbk_step1(&k, NULL);
    treasons(k.b, got, sizeof(got));
    tap_ok(rc == GCH_OK && strcmp(got, "-,-,-,-,not_enrolled") == 0,
           "another child's refused cell leaves a complete week booked (%s)",
           got);
    tbk_free(&k);

    /* a cell of the week refused by a rule: the week, not the rest */

    rc = tbk_plan(&k, "f-martin", "k1",
                  WEEK4 " c-thais:semaine-20210712-MATIN c-thais:k-m",
                  T_NOW, &gch_alloc_std);
    rc = rc ? rc : tbk_step1(&k, NULL);
    treasons(k.b, got, sizeof(got));
    tap_ok(rc == GCH_OK && strcmp(got, "-,-,-,-,already_booked,-") == 0,
           "the same cell twice: the copy refused, the week kept (%s)", got);
    tbk_free(&k);

    /* after step one: one full day gives back the week's places only */

    memset(&s, 0, sizeof(s));
    s.full[0] = "semaine-20210715-MATIN";
    rc = tbk_plan(&k, "f-martin", "k1", WEEK4 " c-thais:k-m", T_NOW,
                  &gch_alloc_std);
    rc = rc ? rc : tbk_step1(&k, &s);
    treasons(k.b, got, sizeof(got));
    l = gch_book_step2(k.b);
    ok = rc == GCH_OK
         && strcmp(got, "week_incomplete,week_incomplete,full,"
                   "week_incomplete,-") == 0
         && tcmds_count(l, "DEL {main}:c:c-thais:") == 4
         && tcmds_count(l, "BITFIELD") == 3
         && tcmds_count(l, "BITFIELD {main}:s:semaine-20210715-MATIN:") == 0
         && tcmds_count(l, "BITFIELD {main}:s:k-m:") == 0
         && tcmds_count(l, "SADD") == 1
         && tcmds_count(l, "SADD {main}:s:k-m:booked") == 1
         && tcmds_count(l, "HSET") == 1;
    tap_ok(ok, "whole week, one day full after step one: the week refused "
           "and undone, the other activity booked (%s)", got);
    if (!ok) {
        tdump_diag("step two", l);
    }
    tbk_free(&k);
#undef WEEK4
}


static void
test_book_fence(void)
{
    int                rc, ok;
    char              *rec, other[200], twin[200];
    size_t             i;
    tbk_t              k;
    const gch_cmds_t  *l;
    const char        *fences[4];

    for (i = 0; i < 4; i++) {
        rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-m c-thais:k-r", T_NOW,
                      &gch_alloc_std);
        rec = rc ? NULL : tprecord(k.b);
        rc = rc ? rc : tbk_step1(&k, NULL);

        snprintf(other, sizeof(other), "P 0123456789abcdef0123456789abcdef "
                 "1 []");
        /* the same body's record from another attempt: the reaper
         * released ours and a retry owns the key now */
        snprintf(twin, sizeof(twin), "P %.32s 1623319200999.b8.%.8s []",
                 rec ? rec + 2 : "", rec ? rec + 2 : "");
        fences[0] = NULL;
        fences[1] = other;
        fences[2] = rec ? rec : "";
        fences[3] = twin;
        if (rec) {
            rec[0] = 'D';       /* the reaper never writes D; a stale one */
        }

        rc = rc ? rc : tbk_step2(&k, fences[i]);
        l = gch_book_step3(k.b);
        ok = rc == GCH_EFENCED && gch_book_status(k.b) == 503
             && gch_book_done(k.b)
             && strstr(tbody(k.b), "\"code\":\"unavailable\"")
             && l && tcmds_multi_exec(l) && l->ncmds == 8
             && tcmds_find(l, 1, "SREM {main}:s:k-m:booked b-") == 1
             && tcmds_find(l, 2, "HDEL {main}:f:f-martin:bookings b-") == 2
             && tcmds_find(l, 3, "SREM {main}:s:k-r:booked b-") == 3
             && tcmds_find(l, 4, "HDEL {main}:f:f-martin:bookings b-") == 4
             && tcmds_find(l, 5, "XADD {main}:stream * d {\"type\":\"void\","
                           "\"family_id\":\"f-martin\",\"idem\":\"k1\","
                           "\"booking_ids\":[\"b-") == 5
             && tline_is(l, 6, "DEL {main}:f:f-martin:idem:k1");
        tap_ok(ok, "on_step2 fence %s: GCH_EFENCED, 503, step three SREM/HDEL/"
               "XADD void/DEL", i == 0 ? "nil" : i == 1 ? "other P"
               : i == 2 ? "D" : "same body, another attempt's P");
        if (!ok) {
            tdump_diag("step three", l);
        }

        free(rec);
        tbk_free(&k);
    }

    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-m", T_NOW, &gch_alloc_std);
    rc = rc ? rc : tbk_step1(&k, NULL);
    if (rc == GCH_OK) {
        redisReply  *r = treply("-ERR x\r\n", strlen("-ERR x\r\n"));

        rc = gch_book_on_step2(k.b, r);
        freeReplyObject(r);
    }
    tap_ok(rc == GCH_EREDIS, "on_step2: an error reply is GCH_EREDIS");
    tbk_free(&k);
}


/*
 * The sold-out shortcut: every open cell on a session the callback calls
 * full is answered "full" at once, request_id null; the only command is
 * the EXISTS of the idempotency record.  A refused cell keeps its own
 * reason; one cell not sold out sends the request to step one.
 */
static int
tfull_km(const gch_session_t *s, void *ctx)
{
    (void) ctx;
    return strcmp(s->id, "k-m") == 0;
}


static int
tsold_out(const gch_alloc_t *a, int *got, char *body, size_t size)
{
    int                rc;
    tbk_t              k;
    size_t             len;
    const char        *p;
    const gch_cmds_t  *l;

    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-m c-leo:k-m", T_NOW, a);
    if (rc == GCH_OK) {
        rc = gch_book_sold_out(k.b, tfull_km, NULL);
        *got = rc;
        if (rc == 1) {
            p = gch_book_body(k.b, &len);
            snprintf(body, size, "%.*s", (int) len, p);
            l = gch_book_idem_check(k.b);
            rc = l ? (tline_is(l, 0, "EXISTS {main}:f:f-martin:idem:k1")
                      && l->ncmds == 1 ? 1 : -50)
                   : GCH_ENOMEM;
        }
    }

    tbk_free(&k);
    return rc;
}


static void
test_book_sold_out(void)
{
    int          rc, got, ok;
    long         n, leaks, wrong;
    char         body[1024];
    tbk_t        k;
    tcount_t     c;
    gch_alloc_t  a;

    body[0] = '\0';
    rc = tsold_out(&gch_alloc_std, &got, body, sizeof(body));
    ok = rc == 1 && strcmp(body, "{\"request_id\":null,\"status\":"
                          "\"traitee_negativement\",\"items\":["
                          "{\"child_id\":\"c-thais\",\"session_id\":\"k-m\","
                          "\"status\":\"refused\",\"reason\":\"full\"},"
                          "{\"child_id\":\"c-leo\",\"session_id\":\"k-m\","
                          "\"status\":\"refused\",\"reason\":\"age\"}]}")
                   == 0;
    tap_ok(ok, "sold out: every open cell full (a refused one keeps its "
           "reason), request_id null, one EXISTS of the record: %s", body);

    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-m c-thais:k-r", T_NOW,
                  &gch_alloc_std);
    rc = rc ? rc : gch_book_sold_out(k.b, tfull_km, NULL);
    tap_ok(rc == 0 && gch_book_body(k.b, &(size_t){0}) == NULL
           && gch_book_step1(k.b) != NULL,
           "sold out: one cell on an open session goes to step one (%d)", rc);
    tbk_free(&k);

    leaks = 0;
    wrong = 0;

    for (n = 1; ; n++) {
        tcount_init(&c, &a, n);
        rc = tsold_out(&a, &got, body, sizeof(body));
        leaks += c.live != 0;
        if (c.failed == 0) {
            wrong += rc != 1;
            break;
        }
        wrong += rc != GCH_ENOMEM;
    }

    tap_ok(leaks == 0 && wrong == 0 && n > 1, "oom sold out: each of the "
           "%ld allocations fails cleanly, no leak (%ld leaks, %ld wrong)",
           n - 1, leaks, wrong);
}


/*
 * The not-yet-open shortcut: every cell refused not_open_yet by the
 * pre-check is answered at once, request_id null, opens_at said; the only
 * command is the EXISTS of the idempotency record.  Another refusal, an
 * open cell or the counter keeps the saga, sold-out cache or not.
 */
#define T_PRE  "2021-06-07T17:59:59+02:00"

static int
tnot_open(const gch_alloc_t *a, char *body, size_t size)
{
    int                rc;
    tbk_t              k;
    size_t             len;
    const char        *p;
    const gch_cmds_t  *l;

    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-m c-thais:k-r", T_PRE, a);
    if (rc == GCH_OK) {
        rc = gch_book_not_open_yet(k.b);
        if (rc == 1) {
            p = gch_book_body(k.b, &len);
            snprintf(body, size, "%.*s", (int) len, p);
            l = gch_book_idem_check(k.b);
            rc = l ? (tline_is(l, 0, "EXISTS {main}:f:f-martin:idem:k1")
                      && l->ncmds == 1 && gch_book_done(k.b)
                      && gch_book_status(k.b) == 200
                      && !gch_book_replayed(k.b) ? 1 : -50)
                   : GCH_ENOMEM;
        }
    }

    tbk_free(&k);
    return rc;
}


static void
test_book_not_open_yet(void)
{
    int          rc;
    long         n, leaks, wrong;
    char         body[1024];
    size_t       i;
    tbk_t        k;
    tcount_t     c;
    gch_alloc_t  a;

    static const struct {
        const char  *name;
        const char  *items;
        const char  *now;
    }  saga[] = {
        { "another refusal with it (age)", "c-thais:k-m c-leo:k-m", T_PRE },
        { "an unknown session with it", "c-thais:k-m c-thais:nope", T_PRE },
        { "at the opening instant", "c-thais:k-m",
          "2021-06-07T18:00:00+02:00" },
        { "only refused for another reason (age)", "c-leo:k-m", T_PRE },
    };

    body[0] = '\0';
    rc = tnot_open(&gch_alloc_std, body, sizeof(body));
    tap_ok(rc == 1 && strcmp(body, "{\"request_id\":null,\"status\":"
                             "\"traitee_negativement\",\"items\":["
                             "{\"child_id\":\"c-thais\",\"session_id\":"
                             "\"k-m\",\"status\":\"refused\",\"reason\":"
                             "\"not_open_yet\",\"opens_at\":"
                             "\"2021-06-07T18:00:00+02:00\"},"
                             "{\"child_id\":\"c-thais\",\"session_id\":"
                             "\"k-r\",\"status\":\"refused\",\"reason\":"
                             "\"not_open_yet\",\"opens_at\":"
                             "\"2021-06-07T18:00:00+02:00\"}]}") == 0,
           "not open yet: every cell not_open_yet, request_id null, one "
           "EXISTS of the record (%d): %s", rc, body);

    for (i = 0; i < sizeof(saga) / sizeof(saga[0]); i++) {
        rc = tbk_plan(&k, "f-martin", "k1", saga[i].items, saga[i].now,
                      &gch_alloc_std);
        rc = rc ? rc : gch_book_not_open_yet(k.b);
        tap_ok(rc == 0 && gch_book_body(k.b, &(size_t){0}) == NULL
               && gch_book_step1(k.b) != NULL,
               "not open yet: %s goes to step one (%d)", saga[i].name, rc);
        tbk_free(&k);
    }

    /* the counter books before the opening as ever */
    tbk_agent = "agent1";
    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-m", T_PRE, &gch_alloc_std);
    rc = rc ? rc : gch_book_not_open_yet(k.b);
    tap_ok(rc == 0 && gch_book_step1(k.b) != NULL,
           "not open yet: the counter goes to step one (%d)", rc);
    /* its place from the on-site u32 of the session's one counter key
     * (bit 32), the online one (bit 0) untouched */
    tap_ok(rc == 0
           && tcmds_count(gch_book_step1(k.b), "BITFIELD {main}:s:k-m:left "
                          "OVERFLOW FAIL INCRBY u32 32 -1") == 1
           && tcmds_count(gch_book_step1(k.b), "BITFIELD {main}:s:k-m:left "
                          "OVERFLOW FAIL INCRBY u32 0 ") == 0
           && tcmds_count(gch_book_step1(k.b), "BITFIELD {main}:s:k-m:onsite")
              == 0,
           "the counter takes its place at bit 32 of {T}:s:<sid>:left");
    tbk_free(&k);
    tbk_agent = NULL;

    /* the sold-out cache, asked first, leaves it to this one */
    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-m", T_PRE, &gch_alloc_std);
    rc = rc ? rc : gch_book_sold_out(k.b, tfull_km, NULL);
    rc = rc ? rc : gch_book_not_open_yet(k.b);
    tap_ok(rc == 1 && strstr(tbody(k.b), "\"reason\":\"not_open_yet\"")
           && strstr(tbody(k.b), "\"request_id\":null"),
           "not open yet: not \"full\" from the sold-out cache: %s",
           tbody(k.b));
    tbk_free(&k);

    leaks = 0;
    wrong = 0;

    for (n = 1; ; n++) {
        tcount_init(&c, &a, n);
        rc = tnot_open(&a, body, sizeof(body));
        leaks += c.live != 0;
        if (c.failed == 0) {
            wrong += rc != 1;
            break;
        }
        wrong += rc != GCH_ENOMEM;
    }

    tap_ok(leaks == 0 && wrong == 0 && n > 1, "oom not open yet: each of "
           "the %ld allocations fails cleanly, no leak (%ld leaks, %ld "
           "wrong)", n - 1, leaks, wrong);
}


/*
 * The failing allocator: every allocation of one saga fails in turn.
 * Each run must end with GCH_ENOMEM (or a well-formed answer when the
 * failure hit only the error body, which the module answers 503), never
 * crash, and free everything.
 */

typedef struct {
    const char  *name;
    const char  *items;
    tsim_t       sim;
    int          fence;         /* 0: ours, 1: nil (fenced) */
    int          replay;
} toom_t;


static int
tsaga(const gch_alloc_t *a, const toom_t *o, const char *replay_rec,
    int *status)
{
    int          rc;
    char        *rec;
    tbk_t        k;
    tsim_t       s;
    redisReply  *r;
    const gch_cmds_t  *l;

    *status = 0;
    s = o->sim;
    if (o->replay) {
        s.idem = replay_rec;
    }

    rc = tbk_plan(&k, "f-martin", "k1", o->items, T_NOW, a);
    if (rc != GCH_OK) {
        tbk_free(&k);
        return rc;
    }

    rec = tprecord(k.b);
    rc = tbk_step1(&k, &s);

    if (rc == GCH_OK && (l = gch_book_step2(k.b)) != NULL) {
        if (!tcmds_multi_exec(l)) {
            rc = -99;
        } else {
            r = tstep2_reply(l, o->fence ? NULL : rec);
            rc = gch_book_on_step2(k.b, r);
            freeReplyObject(r);

            if (rc == GCH_EFENCED) {
                l = gch_book_step3(k.b);
                if (l != NULL && !tcmds_multi_exec(l)) {
                    rc = -98;
                }
            }
        }
    }

    if (rc == GCH_OK || rc == GCH_EFENCED) {
        *status = gch_book_body(k.b, &(size_t){0}) ? gch_book_status(k.b)
                                                   : -1;
    }

    free(rec);
    tbk_free(&k);

    return rc;
}


static void
test_book_oom(void)
{
    int          rc, status, want, ok_status;
    long         n, leaks, wrong;
    char         hash[33], first[2048], rec[2300];
    size_t       i;
    tcount_t     c;
    gch_alloc_t  a;

    static toom_t  cases[] = {
        { "fresh, two cells", "c-thais:k-m c-thais:k-r", {0}, 0, 0 },
        { "full and refused cells", "c-thais:k-m c-thais:k-r c-leo:k-a "
          "c-thais:k-m8", { .full = { "k-r" } }, 0, 0 },
        { "conflict", "c-thais:k-j", { .held = { { "{main}:c:c-thais:"
                                                   "2021-07-07:q1",
          "k-x b-00000000000000000000" } } }, 0, 0 },
        { "fenced", "c-thais:k-m c-thais:k-r", {0}, 1, 0 },
        { "replay", "c-thais:k-m", {0}, 0, 1 },
        { "422", "c-thais:k-m", { .idem = "D 0123456789abcdef0123456789abcdef"
          " {}" }, 0, 0 },
        { "409", "c-thais:k-m", { .idem = "P 0123456789abcdef0123456789abcdef"
          " 1 []" }, 0, 0 },
        { "catalogue lost", "c-thais:k-m", { .gen_nil = 1 }, 0, 0 },
        { "whole week", "c-thais:semaine-20210712-MATIN "
          "c-thais:semaine-20210713-MATIN", {0}, 0, 0 },
    };

    tfirst(hash, first, sizeof(first));
    snprintf(rec, sizeof(rec), "D %s %s", hash, first);

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tcount_init(&c, &a, 0);
        rc = tsaga(&a, &cases[i], rec, &want);
        if (rc != GCH_OK && rc != GCH_EFENCED) {
            tap_ok(0, "oom %s: the saga without failures: %d", cases[i].name,
                   rc);
            continue;
        }

        leaks = 0;
        wrong = 0;

        for (n = 1; ; n++) {
            tcount_init(&c, &a, n);
            rc = tsaga(&a, &cases[i], rec, &status);

            leaks += c.live != 0;

            if (c.failed == 0) {
                wrong += status != want;
                break;
            }

            /* a failure: GCH_ENOMEM, or a body-less answer (-1: 503) */
            ok_status = (rc == GCH_ENOMEM)
                        || ((rc == GCH_OK || rc == GCH_EFENCED)
                            && (status == want || status == -1));
            if (!ok_status) {
                tap_diag("oom %s: failing allocation %ld: rc %d status %d",
                         cases[i].name, n, rc, status);
            }
            wrong += !ok_status;
        }

        tap_ok(leaks == 0 && wrong == 0 && n > 1, "oom %s: each of the %ld "
               "allocations fails cleanly, no leak (%ld leaks, %ld wrong)",
               cases[i].name, n - 1, leaks, wrong);
    }
}


/* The readers of attempt members and records the reaper shares. */
static void
test_book_attempts(void)
{
    char         rkey[64];
    const char  *id, *p, *d;

    id = gch_attempt_split("{main}:f:f-1:idem:k1#1623319200123.a7.1a03f44a",
                           rkey, sizeof(rkey));
    tap_ok(id && strcmp(id, "1623319200123.a7.1a03f44a") == 0
           && strcmp(rkey, "{main}:f:f-1:idem:k1") == 0,
           "attempt member: record key and id");
    id = gch_attempt_split("{main}:f:f-1:idem:k1", rkey, sizeof(rkey));
    tap_ok(id == NULL && strcmp(rkey, "{main}:f:f-1:idem:k1") == 0,
           "attempt member without an id: the record key alone");
    (void) gch_attempt_split("{main}:f:f-1:idem:k1#1.2.3", rkey, 6);
    tap_ok(strcmp(rkey, "{main") == 0, "attempt member: rkey truncated");

    p = "P 1a03f44aafb26339537552c23961bc7c 1623319200123.a7.1a03f44a []";
    d = "D 1a03f44aafb26339537552c23961bc7c {}";
    id = "1623319200123.a7.1a03f44a";
    tap_ok(gch_attempt_wrote(id, p, strlen(p))
           && !gch_attempt_wrote("1623319200123.a8.1a03f44a", p, strlen(p))
           && !gch_attempt_wrote("1623319200123.a7.1a03f44", p, strlen(p))
           && !gch_attempt_wrote(id, d, strlen(d)),
           "attempt wrote the P record naming its id, no other");
    tap_ok(gch_attempt_same_body(id, p, strlen(p))
           && gch_attempt_same_body("9.b8.1a03f44a", d, strlen(d))
           && !gch_attempt_same_body("9.b8.ffffffff", d, strlen(d))
           && !gch_attempt_same_body("9.b8.1a03f4", d, strlen(d))
           && !gch_attempt_same_body("9", d, strlen(d)),
           "attempt of the same body: its hash prefix is the record's");
}


/*
 * Issue 18: the answer of a request with no cell confirmed is kept
 * refused_ttl_s (a family cannot fill Redis with refusals); an on-site
 * booking names its agent in the stream entry (booking.booked_by).
 */
static int
tline_has(const gch_cmds_t *l, long i, const char *needle)
{
    int    ok;
    char  *s;

    if (l == NULL || i < 0) {
        return 0;
    }

    s = tcmd_line(l, (size_t) i);
    ok = s && strstr(s, needle) != NULL;
    free(s);

    return ok;
}


static void
test_book_security(void)
{
    int                rc, ok;
    tbk_t              k;
    tsim_t             s;
    const gch_cmds_t  *l;

    memset(&s, 0, sizeof(s));
    s.full[0] = "k-m";
    tbk_refused_ttl = 600;
    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-m", T_NOW,
                  &gch_alloc_std);
    rc = rc ? rc : tbk_step1(&k, &s);
    l = gch_book_step2(k.b);
    ok = rc == GCH_OK && l
         && tcmds_find(l, 0, "SET {main}:f:f-martin:idem:k1 ") == 1
         && tline_has(l, 1, " XX GET EX 600");
    tap_ok(ok, "wholly refused: the answer is kept refused_ttl_s");
    if (!ok) {
        tdump_diag("step two", l);
    }
    tbk_free(&k);

    memset(&s, 0, sizeof(s));
    s.full[0] = "k-m";
    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-m c-thais:k-r", T_NOW,
                  &gch_alloc_std);
    rc = rc ? rc : tbk_step1(&k, &s);
    l = gch_book_step2(k.b);
    ok = rc == GCH_OK && l
         && tline_has(l, 1, " XX GET EX 86400")
         && tcmds_count(l, "XADD {main}:stream * d ~1 ") == 1
         && tline_has(l, tcmds_find(l, 0, "XADD"), " w 8:f-martin 2:k1 0: ")
         && !tdm_arg_has(l, tcmds_find(l, 0, "XADD"), 4, "\"agent\"");
    tap_ok(ok, "one cell confirmed: kept idem_ttl_s; online: no agent");
    tbk_free(&k);

    tbk_refused_ttl = 0;
    tbk_agent = "agent1";
    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-m", T_NOW,
                  &gch_alloc_std);
    tbk_agent = NULL;
    rc = rc ? rc : tbk_step1(&k, NULL);
    l = gch_book_step2(k.b);
    ok = rc == GCH_OK && l
         && tdm_arg_has(l, tcmds_find(l, 0, "XADD {main}:stream * d "), 4,
                        "\"agent\":\"agent1\",\"items\"");
    tap_ok(ok, "on site: the stream entry names the agent");
    if (!ok) {
        tdump_diag("step two", l);
    }
    tbk_free(&k);

    /* the family's budget: kept by the caller, not in Redis */

    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-m c-thais:k-r", T_NOW,
                  &gch_alloc_std);
    l = gch_book_step1(k.b);
    ok = rc == GCH_OK && l && tcmds_multi_exec(l)
         && tcmds_count(l, "INCRBY {main}:f:") == 0
         && tcmds_count(l, "EXPIRE ") == 0 && tcmds_count(l, "TTL ") == 0;
    tap_ok(ok, "budget: step one neither charges nor reads it");
    tbk_free(&k);

    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-m c-thais:k-r", T_NOW,
                  &gch_alloc_std);
    rc = rc ? rc : gch_book_over_budget(k.b, 37);
    ok = rc == GCH_OK && gch_book_done(k.b)
         && gch_book_status(k.b) == 429 && gch_book_retry_after(k.b) == 37
         && strstr(tbody(k.b), "\"rate_limited\"") != NULL
         && gch_book_step2(k.b) == NULL && gch_book_ncells(k.b) == 0;
    tap_ok(ok, "budget: past it, 429 with its Retry-After before step one, "
           "nothing to send");
    tbk_free(&k);

    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-m", T_NOW,
                  &gch_alloc_std);
    rc = rc ? rc : gch_book_over_budget(k.b, 0);
    ok = rc == GCH_OK && gch_book_status(k.b) == 429
         && gch_book_retry_after(k.b) == GCH_FAMILY_WINDOW_S;
    tap_ok(ok, "budget: no Retry-After known, the whole window");
    tbk_free(&k);
}

/*
 * Swaps (an item's "replaces"): the new place is taken first, the old one
 * is released only when the new one is confirmed, as DELETE would (its
 * deadline, "billed"), else kept.
 */
static void
test_book_swap(void)
{
    int                rc, ok;
    char               got[256], *stored, *replay, *dump;
    size_t             n;
    tbk_t              k;
    tsim_t             s;
    gch_town_t        *t2, *saved;
    gch_error_t        err;
    const char        *body;
    const gch_cmds_t  *l, *l3;
    gch_booking_req_t  req;

    /* the morning's workshop k-m becomes the day k-j: the new place
     * confirmed, the morning's claim adopted, the old one released */

    dump = NULL;
    memset(&s, 0, sizeof(s));
    s.held[0][0] = "{main}:c:c-thais:2021-07-07:q0";
    s.held[0][1] = "k-m b-0123456789abcdef0123";
    s.hget = "~p 7:c-thais 3:k-m 300 5 w";
    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-j>b-0123456789abcdef0123",
                  T_NOW, &gch_alloc_std);
    rc = rc ? rc : tbk_step1(&k, &s);
    treasons(k.b, got, sizeof(got));
    l = gch_book_step2(k.b);
    body = tbody(k.b);
    ok = rc == GCH_OK && strcmp(got, "-") == 0
         && tcmds_find(gch_book_step1(k.b), 0,
                       "HGET {main}:f:f-martin:bookings "
                       "b-0123456789abcdef0123") > 0
         && tcmds_find(gch_book_step1(k.b), 0,
                       "SET {main}:f:f-martin:cancel:"
                       "b-0123456789abcdef0123 s ") > 0
         && tcmds_count(gch_book_step1(k.b), "SET {main}:f:f-martin:cancel:"
                        "b-0123456789abcdef0123 s ") == 1
         && (dump = tcmds_dump(gch_book_step1(k.b))) != NULL
         && strstr(dump, "b-0123456789abcdef0123 s ") != NULL
         && strstr(strstr(dump, "b-0123456789abcdef0123 s "),
                   " NX GET EX 60") != NULL
         && tcmds_count(l, "DEL {main}:f:f-martin:cancel:") == 0
         && strstr(body, "\"status\":\"confirmed\"")
         && strstr(body, "\"released\":{\"booking_id\":"
                         "\"b-0123456789abcdef0123\",\"session_id\":\"k-m\","
                         "\"billed\":false}")
         && l && tcmds_find(l, 0, "SET {main}:c:c-thais:2021-07-07:q0 k-j b-")
                 > 0
         && tcmds_count(l, "DEL {main}:c:c-thais:2021-07-07:q0") == 0
         && tcmds_count(l, "SADD {main}:s:k-j:booked") == 1
         && tcmds_find(l, 0, "SREM {main}:s:k-m:booked "
                       "b-0123456789abcdef0123") > 0
         && tcmds_find(l, 0, "HDEL {main}:f:f-martin:bookings "
                       "b-0123456789abcdef0123") > 0
         && tcmds_find(l, 0, "SET {main}:f:f-martin:cancel:"
                       "b-0123456789abcdef0123 S ") > 0
         && tcmds_find(l, 0, "ZADD {main}:inflight NX") > 0
         && tcmds_count(l, "BITFIELD {main}:s:k-m:") == 0;
    free(dump);
    dump = NULL;
    tap_ok(ok, "swap, new place confirmed: its marker taken in step one, "
           "claim adopted, old booking guarded in step two, nothing "
           "released yet (%s)", got);
    if (!ok) {
        tap_diag("body %s", body);
        tdump_diag("step two", l);
    }

    /* the replay renders the very answer, release included */
    stored = l ? tcmd_arg(l, 1, 2) : NULL;
    replay = stored ? gch_dm_json_in(stored + 35, strlen(stored) - 35,
                                     GCH_DM_ANSWER, "f-martin", "k1", 2,
                                     &gch_alloc_std, &n)
                    : NULL;
    tap_ok(replay && strcmp(replay, body) == 0,
           "swap: the stored demande replays the answer byte for byte");
    free(replay);
    free(stored);

    /* step two's guard won: step three gives the old place back, its
     * claims not adopted (none here) deleted, the marker dropped */
    rc = l ? tbk_step2(&k, NULL) : -1;
    l3 = gch_book_step3(k.b);
    ok = rc == GCH_EFENCED && l3 && tcmds_multi_exec(l3)
         && !gch_book_answer_after_step3(k.b)
         && tcmds_find(l3, 0, "SADD {main}:s:k-m:booked "
                       "b-0123456789abcdef0123") > 0
         && tcmds_find(l3, 0, "HSET {main}:f:f-martin:bookings "
                       "b-0123456789abcdef0123 ~p 7:c-thais 3:k-m") > 0
         && tcmds_find(l3, 0, "SET {main}:c:c-thais:2021-07-07:q0 k-m "
                       "b-0123456789abcdef0123 XX KEEPTTL") > 0
         && tcmds_find(l3, 0, "DEL {main}:f:f-martin:cancel:"
                       "b-0123456789abcdef0123") > 0
         && tcmds_count(l3, "BITFIELD") == 0;
    if (ok) {
        char  *v = tcmd_line(l3, (size_t) tcmds_find(l3, 0, "XADD"));

        ok = v && strstr(v, "\"restore\":[\"b-0123456789abcdef0123\"]");
        free(v);
    }
    tap_ok(ok, "swap, fenced step two: step three puts the old booking "
           "back (booked, planned, its slot) and the void says restore");
    if (!ok && l3) {
        tdump_diag("step three", l3);
    }
    tbk_free(&k);

    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-j>b-0123456789abcdef0123",
                  T_NOW, &gch_alloc_std);
    rc = rc ? rc : tbk_step1(&k, &s);
    {
        char  *rec = tprecord(k.b);

        rc = rc ? rc : tbk_step2(&k, rec);
        free(rec);
    }
    l3 = gch_book_step3(k.b);
    ok = rc == GCH_OK && l3 && tcmds_multi_exec(l3)
         && gch_book_answer_after_step3(k.b)
         && tcmds_find(l3, 0, "BITFIELD {main}:s:k-m:left OVERFLOW FAIL "
                       "INCRBY u32 0 1") > 0
         && tcmds_count(l3, "DEL {main}:c:") == 0
         && tcmds_count(l3, "HSET {main}:f:f-martin:billed") == 0
         && tcmds_find(l3, 0, "DEL {main}:f:f-martin:cancel:"
                       "b-0123456789abcdef0123") > 0
         && tcmds_find(l3, 0, "ZREM {main}:inflight {main}:f:f-martin:cancel:"
                       "b-0123456789abcdef0123") > 0;
    tap_ok(ok, "swap, guard won: step three releases the old place, drops "
           "the marker, before the answer");
    if (!ok && l3) {
        tdump_diag("step three", l3);
    }
    tbk_free(&k);

    /* the new session is full: refused, the old booking kept untouched */

    memset(&s, 0, sizeof(s));
    s.held[0][0] = "{main}:c:c-thais:2021-07-07:q0";
    s.held[0][1] = "k-m b-0123456789abcdef0123";
    s.hget = "~p 7:c-thais 3:k-m 300 5 w";
    s.full[0] = "k-j";
    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-j>b-0123456789abcdef0123",
                  T_NOW, &gch_alloc_std);
    rc = rc ? rc : tbk_step1(&k, &s);
    treasons(k.b, got, sizeof(got));
    l = gch_book_step2(k.b);
    body = tbody(k.b);
    ok = rc == GCH_OK && strcmp(got, "full") == 0
         && strstr(body, "\"reason\":\"full\",\"replaces\":"
                         "\"b-0123456789abcdef0123\",\"kept\":true")
         && l && tcmds_count(l, "SREM") == 0
         && tcmds_count(l, "HDEL") == 0
         && tcmds_count(l, "SET {main}:f:f-martin:cancel:") == 0
         && tcmds_find(l, 0, "DEL {main}:f:f-martin:cancel:"
                       "b-0123456789abcdef0123") > 0
         && tcmds_count(l, "SET {main}:c:") == 0
         && tcmds_count(l, "DEL {main}:c:c-thais:2021-07-07:q0") == 0
         && tcmds_find(l, 0, "DEL {main}:c:c-thais:2021-07-07:q1") > 0
         && tcmds_count(l, "BITFIELD") == 0;
    tap_ok(ok, "swap, new place full: refused, the old booking kept, only "
           "the new cell's own claims and the marker given back (%s)", got);
    if (!ok) {
        tap_diag("body %s", body);
        tdump_diag("step two", l);
    }
    tbk_free(&k);

    /* a DELETE of the old booking holds its marker (between its steps):
     * the swap is refused, the old booking untouched -- the DELETE will
     * delete the claims, none of them may name the new booking -- and
     * the marker stays the DELETE's */

    memset(&s, 0, sizeof(s));
    s.held[0][0] = "{main}:c:c-thais:2021-07-07:q0";
    s.held[0][1] = "k-m b-0123456789abcdef0123";
    s.hget = "~p 7:c-thais 3:k-m 300 5 w";
    s.marker = "c 1623319200000";
    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-j>b-0123456789abcdef0123",
                  T_NOW, &gch_alloc_std);
    rc = rc ? rc : tbk_step1(&k, &s);
    treasons(k.b, got, sizeof(got));
    l = gch_book_step2(k.b);
    body = tbody(k.b);
    ok = rc == GCH_OK && strcmp(got, "replaced_unknown") == 0
         && l && tcmds_count(l, "SREM") == 0
         && tcmds_count(l, "HDEL") == 0
         && tcmds_count(l, "SET {main}:c:") == 0
         && tcmds_count(l, "DEL {main}:f:f-martin:cancel:") == 0
         && tcmds_count(l, "SET {main}:f:f-martin:cancel:") == 0
         && tcmds_count(l, "DEL {main}:c:c-thais:2021-07-07:q0") == 0
         && tcmds_find(l, 0, "DEL {main}:c:c-thais:2021-07-07:q1") > 0
         && tcmds_find(l, 0, "BITFIELD {main}:s:k-j:left OVERFLOW FAIL "
                       "INCRBY u32 0 1") > 0
         && tcmds_count(l, "SADD {main}:s:k-j:booked") == 0;
    tap_ok(ok, "swap while a DELETE of the old booking holds its marker: "
           "replaced_unknown, the new place and claims given back, the "
           "adopted claim and the marker untouched (%s)", got);
    if (!ok) {
        tap_diag("body %s", body);
        tdump_diag("step two", l);
    }
    tbk_free(&k);

    /* another swap of it holds it: the same */

    s.marker = "s 1623319200000 b-ffffffffffffffffffff";
    rc = tbk_plan(&k, "f-martin", "k2", "c-thais:k-j>b-0123456789abcdef0123",
                  T_NOW, &gch_alloc_std);
    rc = rc ? rc : tbk_step1(&k, &s);
    treasons(k.b, got, sizeof(got));
    l = gch_book_step2(k.b);
    tap_ok(rc == GCH_OK && strcmp(got, "replaced_unknown") == 0 && l
           && tcmds_count(l, "SREM") == 0
           && tcmds_count(l, ":cancel:") == 0,
           "swap while another swap of the old booking holds its marker: "
           "replaced_unknown, the marker untouched (%s)", got);
    tbk_free(&k);

    /* a compensation (the key is another body's: 422) gives the marker
     * back with the rest of step one, when step one took it */

    memset(&s, 0, sizeof(s));
    s.hget = "~p 7:c-thais 3:k-m 300 5 w";
    s.idem = "D 0123456789abcdef0123456789abcdef {\"request_id\":\"D-1\"}";
    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-j>b-0123456789abcdef0123",
                  T_NOW, &gch_alloc_std);
    rc = rc ? rc : tbk_step1(&k, &s);
    l = gch_book_step2(k.b);
    ok = rc == GCH_OK && strstr(tbody(k.b), "idempotency_key_reused")
         && l && tcmds_find(l, 0, "DEL {main}:f:f-martin:cancel:"
                            "b-0123456789abcdef0123") > 0;
    s.marker = "c 1623319200000";
    tbk_free(&k);
    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-j>b-0123456789abcdef0123",
                  T_NOW, &gch_alloc_std);
    rc = rc ? rc : tbk_step1(&k, &s);
    l = gch_book_step2(k.b);
    ok = ok && rc == GCH_OK && l
         && tcmds_count(l, "DEL {main}:f:f-martin:cancel:") == 0;
    tap_ok(ok, "swap compensated (422): the marker given back only when "
           "step one took it");
    tbk_free(&k);

    /* the booking to replace is gone (cancelled meanwhile): refused, the
     * new place given back */

    memset(&s, 0, sizeof(s));
    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-a>b-0123456789abcdef0123",
                  T_NOW, &gch_alloc_std);
    rc = rc ? rc : tbk_step1(&k, &s);
    treasons(k.b, got, sizeof(got));
    l = gch_book_step2(k.b);
    ok = rc == GCH_OK && strcmp(got, "replaced_unknown") == 0
         && l && tcmds_find(l, 0, "BITFIELD {main}:s:k-a:left OVERFLOW FAIL "
                            "INCRBY u32 0 1") > 0
         && tcmds_count(l, "SADD") == 0 && tcmds_count(l, "SREM") == 0;
    tap_ok(ok, "swap of a booking not found: replaced_unknown, the new "
           "place given back (%s)", got);
    tbk_free(&k);

    /* another child's booking cannot be replaced */

    memset(&s, 0, sizeof(s));
    s.hget = "~p 5:c-leo 3:k-m 300 5 w";
    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-a>b-0123456789abcdef0123",
                  T_NOW, &gch_alloc_std);
    rc = rc ? rc : tbk_step1(&k, &s);
    treasons(k.b, got, sizeof(got));
    tap_ok(rc == GCH_OK && strcmp(got, "replaced_unknown") == 0,
           "swap of another child's booking: replaced_unknown (%s)", got);
    tbk_free(&k);

    /* one booking replaced twice in one request: 400 */

    {
        static const char  dup[] =
            "{\"items\":[{\"child_id\":\"c-thais\",\"session_id\":\"k-a\","
            "\"replaces\":\"b-1\"},{\"child_id\":\"c-thais\","
            "\"session_id\":\"k-m8\",\"replaces\":\"b-1\"}]}";

        rc = gch_booking_req_parse(&req, dup, sizeof(dup) - 1, 10,
                                   &gch_alloc_std, &err);
        tap_ok(rc == GCH_EINVALID && strstr(err.message, "$.items[1].replaces"),
               "two items replacing one booking: invalid_field (%s)",
               err.message);
        gch_booking_req_free(&req);
    }

    /* the same, the second at index 11: the path's index in full */

    {
        char    many[2048];
        size_t  n, i;

        n = (size_t) snprintf(many, sizeof(many), "{\"items\":[");
        for (i = 0; i < 12; i++) {
            n += (size_t) snprintf(many + n, sizeof(many) - n,
                                   "%s{\"child_id\":\"c-thais\","
                                   "\"session_id\":\"k-a%zu\"%s}",
                                   i ? "," : "", i,
                                   (i == 0 || i == 11)
                                   ? ",\"replaces\":\"b-1\"" : "");
        }
        n += (size_t) snprintf(many + n, sizeof(many) - n, "]}");

        rc = gch_booking_req_parse(&req, many, n, 20, &gch_alloc_std, &err);
        tap_ok(rc == GCH_EINVALID
               && strstr(err.message, "$.items[11].replaces "),
               "two items replacing one booking, the second at index 11: "
               "invalid_field (%s)", err.message);
        gch_booking_req_free(&req);
    }

    /* past the old booking's cancellation deadline: released all the
     * same, billed as a late DELETE (libre: 48 hours before) */

    {
        static const char  l1[] =
            "{\"id\":\"l-1\",\"date\":\"2021-07-09\",\"unit\":\"APM\","
            "\"places\":2}";
        static const char  l2[] =
            ",{\"id\":\"l-2\",\"date\":\"2021-07-20\",\"unit\":\"APM\","
            "\"places\":2}";
        char        *js, *at;
        size_t       jl;

        jl = strlen(ttown_json);
        js = malloc(jl + sizeof(l2));
        at = js ? strstr(strcpy(js, ttown_json), l1) : NULL;
        t2 = NULL;
        if (at) {
            at += sizeof(l1) - 1;
            memmove(at + sizeof(l2) - 1, at, strlen(at) + 1);
            memcpy(at, l2, sizeof(l2) - 1);
            if (gch_town_parse(&t2, js, strlen(js), &gch_alloc_std, &err)
                != GCH_OK)
            {
                tap_diag("town with l-2: %s", err.message);
                t2 = NULL;
            }
        }
        free(js);
    }

    if (t2 == NULL) {
        tap_ok(0, "swap, late: test town with a later session");
        return;
    }

    saved = town;
    town = t2;
    memset(&s, 0, sizeof(s));
    s.hget = "~p 7:c-thais 3:l-1 500 5 w";
    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:l-2>b-0123456789abcdef0123",
                  "2021-07-08T12:00:00+02:00", &gch_alloc_std);
    rc = rc ? rc : tbk_step1(&k, &s);
    treasons(k.b, got, sizeof(got));
    body = tbody(k.b);
    {
        char  *rec = tprecord(k.b);

        rc = rc ? rc : tbk_step2(&k, rec);
        free(rec);
    }
    l3 = gch_book_step3(k.b);
    ok = rc == GCH_OK && strcmp(got, "-") == 0
         && strstr(body, "\"released\":{\"booking_id\":"
                         "\"b-0123456789abcdef0123\",\"session_id\":\"l-1\","
                         "\"billed\":true}")
         && l3 && tcmds_find(l3, 0, "BITFIELD {main}:s:l-1:left") > 0
         && tcmds_find(l3, 0, "HSET {main}:f:f-martin:billed "
                       "b-0123456789abcdef0123 l-1") > 0
         && tcmds_find(l3, 0, "DEL {main}:c:c-thais:2021-07-09:q") > 0;
    tap_ok(ok, "swap past the old booking's cancellation deadline: released, "
           "billed, kept for a justification (%s)", got);
    if (!ok) {
        tap_diag("body %s", body);
        if (l3) {
            tdump_diag("step three", l3);
        }
    }
    tbk_free(&k);
    town = saved;
    gch_town_free(t2);
}


/* issue 23: "waitlist": true, in the saga's two steps */
static void
test_book_waitlist(void)
{
    int                rc, ok;
    long               at;
    char               got[256];
    tbk_t              k;
    tsim_t             s;
    const gch_cmds_t  *l;

    /* full: on the list, at the position LPOS gives */
    memset(&s, 0, sizeof(s));
    s.full[0] = "k-m";
    s.wl_pos = 3;
    rc = tbk_plan(&k, "f-martin", "k1", "c-thais:k-m!", T_NOW,
                  &gch_alloc_std);
    l = rc ? NULL : gch_book_step1(k.b);
    at = l ? tcmds_find(l, 0, "BITFIELD {main}:s:k-m:left") : -1;
    ok = at > 0
         && tline_is(l, at + 1, "HSETNX {main}:s:k-m:waiters c-thais")
            == 0
         && tcmds_find(l, at + 1, "HSETNX {main}:s:k-m:waiters c-thais b-")
            == at + 1
         && tline_is(l, at + 2, "RPUSH {main}:s:k-m:wait c-thais")
         && tline_is(l, at + 3, "LPOS {main}:s:k-m:wait c-thais")
         && tline_is(l, at + 4, "SADD {main}:waiting k-m")
         && tcmds_find(l, at + 5, "HSET {main}:f:f-martin:waits k-m c-thais "
                       "b-") == at + 5;
    tap_ok(ok, "waitlist: step one pushes the child after the place's "
           "BITFIELD (HSETNX, RPUSH, LPOS), names the session for the "
           "promoter and the place in the family's");
    if (!ok && l) {
        tdump_diag("step one", l);
    }

    rc = rc ? rc : tbk_step1(&k, &s);
    treasons(k.b, got, sizeof(got));
    l = gch_book_step2(k.b);
    ok = rc == GCH_OK && strcmp(got, "full") == 0
         && strstr(tbody(k.b), "\"status\":\"waitlisted\",\"reason\":"
                   "\"full\",\"position\":3}")
         && tcmds_count(l, "LREM ") == 0 && tcmds_count(l, "HDEL ") == 0
         && tcmds_find(l, 0, "DEL {main}:c:c-thais:2021-07-07:q0") >= 0;
    tap_ok(ok, "waitlist: full, answered waitlisted at 3; step two keeps "
           "what step one wrote and gives the claim back: %s", tbody(k.b));
    if (!ok && l) {
        tdump_diag("step two", l);
    }
    tbk_free(&k);

    /* already on the list: the first place stays, our push goes */
    s.wl_dup = 1;
    s.wl_pos = 2;
    rc = tbk_plan(&k, "f-martin", "k2", "c-thais:k-m!", T_NOW,
                  &gch_alloc_std);
    rc = rc ? rc : tbk_step1(&k, &s);
    l = gch_book_step2(k.b);
    ok = rc == GCH_OK && strstr(tbody(k.b), "\"position\":2}")
         && tcmds_find(l, 0, "LREM {main}:s:k-m:wait -1 c-thais") >= 0
         && tcmds_count(l, "HDEL ") == 0;
    tap_ok(ok, "waitlist: a child already there keeps its place, the "
           "duplicate push is taken back: %s", tbody(k.b));
    tbk_free(&k);

    /* a place was left: booked, and off the list */
    memset(&s, 0, sizeof(s));
    rc = tbk_plan(&k, "f-martin", "k3", "c-thais:k-m!", T_NOW,
                  &gch_alloc_std);
    rc = rc ? rc : tbk_step1(&k, &s);
    treasons(k.b, got, sizeof(got));
    l = gch_book_step2(k.b);
    ok = rc == GCH_OK && strcmp(got, "-") == 0
         && strstr(tbody(k.b), "\"status\":\"confirmed\"")
         && tcmds_find(l, 0, "LREM {main}:s:k-m:wait 0 c-thais") >= 0
         && tcmds_find(l, 0, "HDEL {main}:s:k-m:waiters c-thais") >= 0
         && tcmds_count(l, "SADD {main}:waiting") == 0;
    tap_ok(ok, "waitlist: a cell with a place is booked and leaves the "
           "list: %s", tbody(k.b));
    tbk_free(&k);

    /* refused for another reason (held): nothing stays */
    memset(&s, 0, sizeof(s));
    s.full[0] = "k-m";
    s.held[0][0] = "{main}:c:c-thais:2021-07-07:q0";
    s.held[0][1] = "k-x b-00000000000000000000";
    rc = tbk_plan(&k, "f-martin", "k4", "c-thais:k-m!", T_NOW,
                  &gch_alloc_std);
    rc = rc ? rc : tbk_step1(&k, &s);
    treasons(k.b, got, sizeof(got));
    l = gch_book_step2(k.b);
    ok = rc == GCH_OK && strcmp(got, "conflict") == 0
         && strstr(tbody(k.b), "waitlisted") == NULL
         && tcmds_find(l, 0, "LREM {main}:s:k-m:wait -1 c-thais") >= 0
         && tcmds_find(l, 0, "HDEL {main}:s:k-m:waiters c-thais") >= 0
         && tcmds_find(l, 0, "HDEL {main}:f:f-martin:waits k-m c-thais")
            >= 0;
    tap_ok(ok, "waitlist: a conflict takes the push, the entry and the "
           "family's field back (%s)", got);
    tbk_free(&k);

    /* the sold-out cache lets it through to Redis */
    rc = tbk_plan(&k, "f-martin", "k5", "c-thais:k-m!", T_NOW,
                  &gch_alloc_std);
    tap_ok(rc == GCH_OK && gch_book_sold_out(k.b, tfull_km, NULL) == 0,
           "waitlist: the sold-out cache does not answer it");
    tbk_free(&k);

    /* the promotion's decision and key */
    {
        char  key[64];

        tap_ok(gch_wait_decide(1, GCH_REASON_NONE) == GCH_WAIT_BOOKED
               && gch_wait_decide(0, GCH_REASON_FULL) == GCH_WAIT_STAY
               && gch_wait_decide(0, GCH_REASON_CONFLICT) == GCH_WAIT_DROP
               && gch_wait_decide(0, GCH_REASON_ALREADY_BOOKED)
                  == GCH_WAIT_DROP
               && gch_wait_decide(0, GCH_REASON_CLOSED) == GCH_WAIT_DROP
               && gch_wait_decide(0, GCH_REASON_NOT_ENROLLED)
                  == GCH_WAIT_DROP,
               "promotion: booked leaves, full stays first, ineligible "
               "leaves");

        rc = gch_wait_promotion_key(key, sizeof(key),
                                    "b-0123456789abcdef0123", 2);
        tap_ok(rc > 0 && strcmp(key, "wl.b-0123456789abcdef0123.2") == 0
               && gch_wait_is_promotion(key, (size_t) rc)
               && !gch_wait_is_promotion("wl-b-1", 6)
               && gch_wait_promotion_key(key, 10, "b-0123456789abcdef0123",
                                         2) == -1,
               "promotion: its key is derived from the entry, with a '.' "
               "no client key has: %s", key);
    }
}


/*
 * Required documents count per child (issue 25): a document on file for
 * one child covers that child only; one for the whole family (no
 * child_id) covers every child.  The catalogue keeps child_id.
 */
static const char  tdoc_json[] =
    "{\"town\":{\"name\":\"Docville\"},"
    "\"units\":[{\"code\":\"MATIN\",\"label\":\"Matin\",\"starts\":\"08:30\","
    "\"ends\":\"12:00\"}],"
    "\"activities\":[{\"id\":\"alsh\",\"name\":\"ALSH\",\"age_min\":3,"
    "\"age_max\":12,\"required_documents\":[\"vaccinations\",\"assurance\"],"
    "\"prices\":[{\"qf_max\":null,\"cents\":500}],"
    "\"sessions\":[{\"id\":\"a-m\",\"date\":\"2021-07-07\","
    "\"unit\":\"MATIN\",\"places\":10}]}],"
    "\"families\":[{\"id\":\"f-doc\",\"children\":["
    "{\"id\":\"c-a\",\"first_name\":\"Ana\",\"birth_date\":\"2014-01-01\"},"
    "{\"id\":\"c-b\",\"first_name\":\"Bob\",\"birth_date\":\"2015-01-01\"}],"
    "\"enrolments\":["
    "{\"child_id\":\"c-a\",\"activity_id\":\"alsh\",\"from\":\"2021-07-01\","
    "\"to\":\"2021-08-31\",\"status\":\"validee\"},"
    "{\"child_id\":\"c-b\",\"activity_id\":\"alsh\",\"from\":\"2021-07-01\","
    "\"to\":\"2021-08-31\",\"status\":\"validee\"}],"
    "\"documents\":[{\"type\":\"vaccinations\",\"child_id\":\"c-a\"},"
    "{\"type\":\"assurance\",\"valid_to\":\"2021-12-31\"}]}]}";


static void
test_book_child_documents(void)
{
    int          rc;
    char        *out, *bad, got[64];
    size_t       len;
    tbk_t        k;
    gch_town_t  *saved, *t, *t2;
    gch_error_t  err;

    saved = town;
    rc = gch_town_parse(&t, tdoc_json, sizeof(tdoc_json) - 1,
                        &gch_alloc_std, &err);
    tap_ok(rc == GCH_OK, "town with a child's document parses");
    if (rc != GCH_OK) {
        return;
    }

    town = t;
    rc = tbk_plan(&k, "f-doc", "kd", "c-a:a-m c-b:a-m", T_NOW,
                  &gch_alloc_std);
    if (rc == GCH_OK) {
        rc = tbk_step1(&k, NULL);
        treasons(k.b, got, sizeof(got));
    }
    tap_ok(rc == GCH_OK && strcmp(got, "-,documents_missing") == 0,
           "a child's vaccinations cover that child only: %s", got);
    tbk_free(&k);
    town = saved;

    /* the catalogue keeps child_id, and reads it back */

    out = NULL;
    rc = gch_town_write(t, &out, &len, &gch_alloc_std);
    tap_ok(rc == GCH_OK && out
           && strstr(out, "{\"type\":\"vaccinations\",\"child_id\":\"c-a\"}")
           && gch_town_parse(&t2, out, len, &gch_alloc_std, &err) == GCH_OK
           && t2->families[0].documents[0].child_id
           && strcmp(t2->families[0].documents[0].child_id, "c-a") == 0
           && t2->families[0].documents[1].child_id == NULL,
           "the catalogue keeps a document's child_id");
    if (rc == GCH_OK && out) {
        gch_town_free(t2);
    }
    free(out);
    gch_town_free(t);

    /* a document for a child of another family is refused */

    bad = strdup(tdoc_json);
    memcpy(strstr(bad, "\"child_id\":\"c-a\"}") + 12, "c-z", 3);
    rc = gch_town_parse(&t, bad, strlen(bad), &gch_alloc_std, &err);
    tap_ok(rc == GCH_EINVALID
           && strstr(err.message, "documents[0].child_id : enfant inconnu"),
           "a document's unknown child is refused: %s", err.message);
    if (rc == GCH_OK) {
        gch_town_free(t);
    }
    free(bad);
}


void
test_book(void)
{
    town = ttown();
    if (town == NULL) {
        tap_ok(0, "test town parses");
        return;
    }

    test_book_forbidden();
    test_book_precheck();
    test_book_child_documents();
    test_book_step1_shape();
    test_book_ids();
    test_book_fresh();
    test_book_outcomes();
    test_book_idempotency();
    test_book_catalogue_gen();
    test_book_week();
    test_book_fence();
    test_book_attempts();
    test_book_sold_out();
    test_book_not_open_yet();
    test_book_oom();
    test_book_security();
    test_book_swap();
    test_book_waitlist();

    gch_town_free(town);
    town = NULL;
}
