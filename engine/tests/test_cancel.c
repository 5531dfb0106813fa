/*
 * test_cancel.c -- DELETE /api/bookings/{id} without Redis: the lookup
 * (not found; the marker taken, or held by a swap: 409), the guard (a lost
 * race answers 404 and undoes its marker only), the winner's release
 * (place back, claims deleted, stream entry, demande, billed after the
 * cancellation deadline), and the failing allocator over every path;
 * POST /api/absences's certificate check.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "tredis.h"


#define C_BID   "b-0123456789abcdef0123"


static gch_town_t  *town;
/* what the marker's SET NX GET of step one finds (NULL: nothing, taken) */
static const char  *t_held;


static const gch_family_t *
tfam(const char *id)
{
    return gch_town_family(town, id, strlen(id));
}


/* The planning entry step two of a booking wrote. */
static void
tentry(char *buf, size_t size, const char *cid, const char *sid)
{
    snprintf(buf, size, "{\"child_id\":\"%s\",\"session_id\":\"%s\","
             "\"price_cents\":300,\"request_id\":\"D-000042\","
             "\"at_ms\":1623319200123}", cid, sid);
}


static redisReply *
tlookup_reply(const char *entry)
{
    tb_t  b;

    tb_init(&b);
    tb_arr(&b, 2);
    if (entry) {
        tb_str(&b, entry);
    } else {
        tb_nil(&b);
    }
    if (t_held) {
        tb_str(&b, t_held);
    } else {
        tb_nil(&b);
    }

    return tb_reply(&b);
}


static redisReply *
tguard_reply(long long srem)
{
    tb_t  b;

    tb_init(&b);
    tb_arr(&b, 5);
    tb_int(&b, srem);
    tb_int(&b, srem);
    tb_ok(&b);
    tb_int(&b, 1);
    tb_int(&b, 77);

    return tb_reply(&b);
}


static redisReply *
tints_reply(const gch_cmds_t *l)
{
    tb_t    b;
    size_t  i;

    tb_init(&b);
    tb_arr(&b, l->ncmds - 2);
    for (i = 2; i < l->ncmds; i++) {
        tb_int(&b, 1);
    }

    return tb_reply(&b);
}


typedef struct {
    int          rc;            /* first non-OK code, or OK */
    int          status;
    char         body[512];
    int          steps;         /* EXECs sent */
    int          bad_cmds;      /* a step that is not MULTI ... EXEC */
    char        *lookup;        /* dump of step one (malloc) */
    char        *guard;         /* dump of step two (malloc) */
    char        *release;       /* dump of step three (malloc) */
} tcres_t;


/* Drives a cancellation: entry NULL = not found; srem = guard's SREM. */
static void
tcancel(tcres_t *res, const gch_alloc_t *a, const char *fid,
    const char *bid, const char *entry, long long srem, const char *now)
{
    int                rc;
    size_t             len;
    const char        *body;
    gch_error_t        err;
    gch_cancel_t      *c;
    redisReply        *r;
    const gch_cmds_t  *l;

    memset(res, 0, sizeof(*res));

    rc = gch_cancel_plan(&c, town, tfam(fid), bid, strlen(bid),
                         tinstant(now) * 1000 + 5, a, &err);
    if (rc != GCH_OK) {
        res->rc = rc;
        res->status = c == NULL ? -2 : -3;
        return;
    }

    while ((l = gch_cancel_next(c)) != NULL) {
        if (!tcmds_multi_exec(l)) {
            res->bad_cmds++;
            break;
        }

        res->steps++;

        if (res->steps == 1) {
            res->lookup = tcmds_dump(l);
            r = tlookup_reply(entry);
        } else if (res->steps == 2) {
            res->guard = tcmds_dump(l);
            r = tguard_reply(srem);
        } else {
            res->release = tcmds_dump(l);
            r = tints_reply(l);
        }

        rc = gch_cancel_on_reply(c, r);
        freeReplyObject(r);

        if (rc != GCH_OK) {
            res->rc = rc;
            break;
        }

        if (res->steps > 5) {
            res->bad_cmds++;
            break;
        }
    }

    res->status = gch_cancel_status(c);
    body = gch_cancel_body(c, &len);
    snprintf(res->body, sizeof(res->body), "%s", body ? body : "(null)");
    if (body == NULL) {
        res->status = -1;
    }

    gch_cancel_free(c);
}


static void
tcres_free(tcres_t *res)
{
    free(res->lookup);
    free(res->guard);
    free(res->release);
}


static int
thas(const char *dump, const char *line)
{
    char  want[1024];

    snprintf(want, sizeof(want), "\n#   %s", line);
    return dump != NULL && strstr(dump, want) != NULL;
}


static void
test_cancel_paths(void)
{
    int      ok;
    char     entry[512], line[512];
    tcres_t  r;

    tentry(entry, sizeof(entry), "c-thais", "k-m");

    /* not found */

    tcancel(&r, &gch_alloc_std, "f-martin", C_BID, NULL, 1,
            "2021-06-10T12:00:00+02:00");
    snprintf(line, sizeof(line), "SET {main}:f:f-martin:cancel:%s c %lld NX "
             "GET EX 60", C_BID,
             tinstant("2021-06-10T12:00:00+02:00") * 1000 + 5);
    ok = r.rc == GCH_OK && r.status == 404 && r.steps == 2
         && strstr(r.body, "\"code\":\"not_found\"")
         && thas(r.lookup, "HGET {main}:f:f-martin:bookings " C_BID)
         && thas(r.lookup, line)
         && thas(r.guard, "DEL {main}:f:f-martin:cancel:" C_BID)
         && !thas(r.guard, "SREM");
    tap_ok(ok, "cancel: HGET nil is 404 not_found, the marker step one took "
           "given back: %s", r.body);
    if (!ok) {
        tap_diag("lookup:%s", r.lookup ? r.lookup : "");
        tap_diag("then:%s", r.guard ? r.guard : "");
    }
    tcres_free(&r);

    /* not found, the marker another's: nothing to give back */

    t_held = "C 1623319200000 0 " C_BID " c-thais k-m";
    tcancel(&r, &gch_alloc_std, "f-martin", C_BID, NULL, 1,
            "2021-06-10T12:00:00+02:00");
    t_held = NULL;
    tap_ok(r.rc == GCH_OK && r.status == 404 && r.steps == 1,
           "cancel: HGET nil, the marker a cancellation's: 404 after one "
           "step");
    tcres_free(&r);

    tcancel(&r, &gch_alloc_std, "f-martin", "", NULL, 1,
            "2021-06-10T12:00:00+02:00");
    tap_ok(r.rc == GCH_OK && r.status == 404 && r.steps == 0,
           "cancel: an empty id is 404 without Redis");
    tcres_free(&r);

    {
        char  longid[100];

        memset(longid, 'b', sizeof(longid) - 1);
        longid[sizeof(longid) - 1] = '\0';
        tcancel(&r, &gch_alloc_std, "f-martin", longid, NULL, 1,
                "2021-06-10T12:00:00+02:00");
        tap_ok(r.rc == GCH_OK && r.status == 404 && r.steps == 0,
               "cancel: a 99-byte id is 404 without Redis");
        tcres_free(&r);
    }

    /* winner, before the deadline: free */

    tcancel(&r, &gch_alloc_std, "f-martin", C_BID, entry, 1,
            "2021-06-23T23:59:59+02:00");
    snprintf(line, sizeof(line), "SET {main}:f:f-martin:cancel:%s C %lld 0 %s "
             "c-thais k-m EX 3600", C_BID,
             tinstant("2021-06-23T23:59:59+02:00") * 1000 + 5, C_BID);
    ok = r.rc == GCH_OK && r.status == 200 && r.steps == 3 && !r.bad_cmds
         && strcmp(r.body, "{\"booking_id\":\"" C_BID "\",\"status\":"
                   "\"cancelled\",\"billed\":false}") == 0
         && thas(r.guard, "SREM {main}:s:k-m:booked " C_BID)
         && thas(r.guard, "HDEL {main}:f:f-martin:bookings " C_BID)
         && thas(r.guard, line)
         && thas(r.guard, "INCR {main}:seq:demande")
         && thas(r.release, "BITFIELD {main}:s:k-m:left OVERFLOW FAIL INCRBY "
                            "u32 "
                 "0 1")
         && thas(r.release, "DEL {main}:c:c-thais:2021-07-07:q0")
         && !thas(r.release, "DEL {main}:c:c-thais:2021-07-07:q1")
         && thas(r.release, "XADD {main}:stream * d {\"type\":\"cancel\","
                 "\"number\":77,\"request_id\":\"D-000077\","
                 "\"booking_id\":\"" C_BID "\",\"family_id\":"
                 "\"f-martin\",\"child_id\":\"c-thais\",\"session_id\":"
                 "\"k-m\",\"at_ms\":")
         && strstr(r.release, "\"billed\":false}") != NULL
         && thas(r.release, "LPUSH {main}:f:f-martin:demandes {\"request_id\":"
                 "\"D-000077\",\"number\":77,\"type\":\"cancellation\"")
         && thas(r.release, "LTRIM {main}:f:f-martin:demandes 0 199")
         && thas(r.release, "DEL {main}:f:f-martin:cancel:" C_BID)
         && thas(r.release,
                 "ZREM {main}:inflight {main}:f:f-martin:cancel:" C_BID)
         && !thas(r.release, "HSET {main}:f:f-martin:billed " C_BID " k-m");
    tap_ok(ok, "cancel before the deadline: guard SREM/HDEL/SET C marker/"
           "ZADD/INCR, release BITFIELD +1, DEL claims, XADD cancel, LPUSH, "
           "not billed: %s", r.body);
    if (!ok) {
        tap_diag("guard:%s", r.guard ? r.guard : "");
        tap_diag("release:%s", r.release ? r.release : "");
    }
    tcres_free(&r);

    /* winner at the deadline: billed, the place still goes back */

    tcancel(&r, &gch_alloc_std, "f-martin", C_BID, entry, 1,
            "2021-06-24T00:00:00+02:00");
    ok = r.rc == GCH_OK && r.status == 200
         && strstr(r.body, "\"billed\":true}") != NULL
         && thas(r.guard, "SET {main}:f:f-martin:cancel:" C_BID " C ")
         && strstr(r.guard, " 1 " C_BID " c-thais k-m EX 3600") != NULL
         && thas(r.release, "BITFIELD {main}:s:k-m:left OVERFLOW FAIL INCRBY "
                            "u32 "
                 "0 1")
         && thas(r.release, "HSET {main}:f:f-martin:billed " C_BID " k-m")
         && strstr(r.release, "\"billed\":true}") != NULL;
    tap_ok(ok, "cancel at the deadline: billed, place given back: %s",
           r.body);
    if (!ok) {
        tap_diag("guard:%s", r.guard ? r.guard : "");
        tap_diag("release:%s", r.release ? r.release : "");
    }
    tcres_free(&r);

    /* JOURNEE: every claim of the unit */

    tentry(entry, sizeof(entry), "c-thais", "k-j");
    tcancel(&r, &gch_alloc_std, "f-martin", C_BID, entry, 1,
            "2021-06-10T12:00:00+02:00");
    tap_ok(r.status == 200 && thas(r.release, "DEL {main}:c:c-thais:"
                                              "2021-07-07:q0")
           && thas(r.release, "DEL {main}:c:c-thais:2021-07-07:q1")
           && thas(r.release, "DEL {main}:c:c-thais:2021-07-07:q2"),
           "cancel a JOURNEE: its three claims are deleted");
    tcres_free(&r);

    /* separate cancellation deadline (48 h) on an activity without one */

    tentry(entry, sizeof(entry), "c-thais", "l-1");
    tcancel(&r, &gch_alloc_std, "f-martin", C_BID, entry, 1,
            "2021-07-07T13:29:59+02:00");
    tap_ok(r.status == 200 && strstr(r.body, "\"billed\":false"),
           "cancel_deadline 48 h: free one second before: %s", r.body);
    tcres_free(&r);

    tcancel(&r, &gch_alloc_std, "f-martin", C_BID, entry, 1,
            "2021-07-07T13:30:00+02:00");
    tap_ok(r.status == 200 && strstr(r.body, "\"billed\":true"),
           "cancel_deadline 48 h: billed from the instant: %s", r.body);
    tcres_free(&r);

    /* lost race */

    tentry(entry, sizeof(entry), "c-thais", "k-m");
    tcancel(&r, &gch_alloc_std, "f-martin", C_BID, entry, 0,
            "2021-06-10T12:00:00+02:00");
    ok = r.rc == GCH_OK && r.status == 404 && r.steps == 3
         && strstr(r.body, "\"code\":\"not_found\"")
         && thas(r.release, "DEL {main}:f:f-martin:cancel:" C_BID)
         && thas(r.release,
                 "ZREM {main}:inflight {main}:f:f-martin:cancel:" C_BID)
         && !thas(r.release, "BITFIELD") && !thas(r.release, "XADD")
         && !thas(r.release, "DEL {main}:c:");
    tap_ok(ok, "cancel, lost race (SREM 0): 404, only the marker undone: %s",
           r.body);
    if (!ok) {
        tap_diag("release:%s", r.release ? r.release : "");
    }
    tcres_free(&r);

    /* a swap replacing the booking holds its marker (between its steps
     * one and two, or two and three): 409, nothing sent after step one */

    t_held = "s 1623319200000 b-ffffffffffffffffffff";
    tcancel(&r, &gch_alloc_std, "f-martin", C_BID, entry, 1,
            "2021-06-10T12:00:00+02:00");
    ok = r.rc == GCH_OK && r.status == 409 && r.steps == 1
         && strstr(r.body, "\"code\":\"request_in_progress\"");
    tcres_free(&r);
    t_held = "S 1623319200000 0 " C_BID " c-thais k-m";
    tcancel(&r, &gch_alloc_std, "f-martin", C_BID, entry, 1,
            "2021-06-10T12:00:00+02:00");
    t_held = NULL;
    ok = ok && r.rc == GCH_OK && r.status == 409 && r.steps == 1;
    tap_ok(ok, "cancel while a swap of the booking holds its marker: 409 "
           "request_in_progress after step one: %s", r.body);
    tcres_free(&r);

    /* another cancellation holds it: the guard decides, as before */

    t_held = "c 1623319200000";
    tcancel(&r, &gch_alloc_std, "f-martin", C_BID, entry, 1,
            "2021-06-10T12:00:00+02:00");
    t_held = NULL;
    tap_ok(r.rc == GCH_OK && r.status == 200 && r.steps == 3
           && thas(r.guard, "SREM {main}:s:k-m:booked " C_BID),
           "cancel while another cancellation holds the marker: on to the "
           "guard: %s", r.body);
    tcres_free(&r);

    /* a planning entry naming an unknown session or another child */

    tentry(entry, sizeof(entry), "c-thais", "gone");
    tcancel(&r, &gch_alloc_std, "f-martin", C_BID, entry, 1,
            "2021-06-10T12:00:00+02:00");
    tap_ok(r.rc == GCH_EREDIS && r.steps == 1,
           "cancel: an entry for an unknown session is GCH_EREDIS");
    tcres_free(&r);

    tentry(entry, sizeof(entry), "c-other", "k-m");
    tcancel(&r, &gch_alloc_std, "f-martin", C_BID, entry, 1,
            "2021-06-10T12:00:00+02:00");
    tap_ok(r.rc == GCH_EREDIS, "cancel: an entry for a child of another "
           "family is GCH_EREDIS");
    tcres_free(&r);

    tcancel(&r, &gch_alloc_std, "f-martin", C_BID, "not json", 1,
            "2021-06-10T12:00:00+02:00");
    tap_ok(r.rc == GCH_EREDIS, "cancel: a corrupt entry is GCH_EREDIS");
    tcres_free(&r);
}


static void
test_cancel_oom(void)
{
    int          want;
    long         n, leaks, wrong;
    char         entry[512];
    size_t       i;
    tcres_t      r;
    tcount_t     c;
    gch_alloc_t  a;

    static const struct {
        const char  *name;
        int          found;
        long long    srem;
        const char  *now;
    } cases[] = {
        { "not found", 0, 1, "2021-06-10T12:00:00+02:00" },
        { "winner, free", 1, 1, "2021-06-10T12:00:00+02:00" },
        { "winner, billed", 1, 1, "2021-06-30T12:00:00+02:00" },
        { "lost race", 1, 0, "2021-06-10T12:00:00+02:00" },
    };

    tentry(entry, sizeof(entry), "c-thais", "k-m");

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tcount_init(&c, &a, 0);
        tcancel(&r, &a, "f-martin", C_BID, cases[i].found ? entry : NULL,
                cases[i].srem, cases[i].now);
        want = r.status;
        tcres_free(&r);

        leaks = 0;
        wrong = 0;

        for (n = 1; ; n++) {
            tcount_init(&c, &a, n);
            tcancel(&r, &a, "f-martin", C_BID, cases[i].found ? entry : NULL,
                    cases[i].srem, cases[i].now);
            tcres_free(&r);
            leaks += c.live != 0;

            if (c.failed == 0) {
                wrong += r.status != want || r.rc != GCH_OK;
                break;
            }

            if (!(r.rc == GCH_ENOMEM && r.bad_cmds == 0)) {
                tap_diag("oom cancel %s: failing allocation %ld: rc %d "
                         "status %d", cases[i].name, n, r.rc, r.status);
                wrong++;
            }
        }

        tap_ok(leaks == 0 && wrong == 0 && n > 1, "oom cancel %s (%d): each "
               "of the %ld allocations fails cleanly, no leak", cases[i].name,
               want, n - 1);
    }
}


/*
 * POST /api/absences: step one looks the booking up, reads the reason in
 * the town's list ({T}:absence_reasons: proof "1", "0", or NULL when not
 * there; listed 0: no list published yet) and, when the body cites a
 * certificate, checks it is one of the family's uploads
 * ({T}:f:<fid>:documents).  reply_doc: SISMEMBER's answer (-1: no
 * document_id).  The status after step one (0: on to step two).
 */
static int
tabsence(const char *reason, const char *proof, int listed, const char *doc,
    int found, int reply_doc, char **lines, char *body, size_t size)
{
    int                 rc, status;
    tb_t                b;
    size_t              len;
    const char         *p;
    redisReply         *r;
    gch_absence_t      *j;
    const gch_cmds_t   *l;

    rc = gch_absence_plan(&j, town, tfam("f-martin"), C_BID, reason, doc,
                          tinstant("2031-07-08T10:00:00+02:00") * 1000,
                          &gch_alloc_std, NULL);
    if (rc != GCH_OK) {
        return rc;
    }

    l = gch_absence_next(j);
    *lines = tcmds_dump(l);

    tb_init(&b);
    tb_arr(&b, reply_doc < 0 ? 5 : 6);
    if (found) {
        tb_str(&b, "{\"child_id\":\"c-thais\"}");
    } else {
        tb_nil(&b);
    }
    tb_nil(&b);
    tb_int(&b, 41);
    if (proof) {
        tb_str(&b, proof);
    } else {
        tb_nil(&b);
    }
    tb_int(&b, listed);
    if (reply_doc >= 0) {
        tb_int(&b, reply_doc);
    }
    r = tb_reply(&b);

    rc = gch_absence_on_reply(j, r);
    freeReplyObject(r);

    status = gch_absence_status(j);
    p = gch_absence_body(j, &len);
    snprintf(body, size, "%.*s", p ? (int) len : 0, p ? p : "");

    if (rc == GCH_OK && status == 0) {
        /* step two: the stream entry names the certificate */
        l = gch_absence_next(j);
        free(*lines);
        *lines = l ? tcmds_dump(l) : NULL;
    }

    gch_absence_free(j);

    return rc == GCH_OK ? status : rc;
}


static void
test_absence_document(void)
{
    int    st;
    char  *lines, body[512];

    st = tabsence("medical", NULL, 0, NULL, 1, -1, &lines, body,
                  sizeof(body));
    tap_ok(st == 0 && lines && strstr(lines, "SISMEMBER") == NULL
           && strstr(lines, "\"document_id\":null") != NULL
           && strstr(lines, "\"reason\":\"medical\"") != NULL,
           "absence without a certificate, no list published: medical "
           "goes on to step two, document_id null in the entry");
    free(lines);

    st = tabsence("medical", "1", 1, "42", 1, 1, &lines, body,
                  sizeof(body));
    tap_ok(st == 0 && lines && strstr(lines, "\"document_id\":\"42\"")
           != NULL,
           "absence citing one of the family's uploads: on to step two, "
           "the entry names it");
    free(lines);

    st = tabsence("medical", "1", 1, "42", 1, 0, &lines, body,
                  sizeof(body));
    tap_ok(st == 400 && lines
           && strstr(lines, "SISMEMBER {main}:f:f-martin:documents 42") != NULL
           && strstr(lines, "HGET {main}:absence_reasons medical") != NULL
           && strstr(body, "\"invalid_field\"") != NULL
           && strstr(body, "document_id") != NULL,
           "absence citing a document the family did not upload: 400 "
           "invalid_field naming document_id, nothing more sent: %s", body);
    free(lines);

    st = tabsence("medical", "1", 1, "42", 0, 0, &lines, body,
                  sizeof(body));
    tap_ok(st == 404 && strstr(body, "\"not_found\"") != NULL,
           "absence on an unknown booking: 404 first, whatever the "
           "certificate: %s", body);
    free(lines);

    st = tabsence("medical", "1", 1, "42", 1, -1, &lines, body,
                  sizeof(body));
    tap_ok(st == GCH_EREDIS, "absence: a step one reply without the "
           "SISMEMBER answer is GCH_EREDIS (%d)", st);
    free(lines);

    /* the town's reasons (issue 25) */
    st = tabsence("medical", "1", 1, NULL, 1, -1, &lines, body,
                  sizeof(body));
    tap_ok(st == 400 && strstr(body, "document_id") != NULL,
           "a reason whose proof is required, without document_id: 400 "
           "naming document_id: %s", body);
    free(lines);

    st = tabsence("greve", "0", 1, NULL, 1, -1, &lines, body, sizeof(body));
    tap_ok(st == 0 && lines && strstr(lines, "\"reason\":\"greve\"") != NULL,
           "a reason of the town without proof: on to step two, the entry "
           "names it");
    free(lines);

    st = tabsence("vacances", NULL, 1, NULL, 1, -1, &lines, body,
                  sizeof(body));
    tap_ok(st == 400 && strstr(body, "reason") != NULL,
           "a reason not on the town's list: 400 naming reason: %s", body);
    free(lines);

    st = tabsence("deces", NULL, 0, NULL, 1, -1, &lines, body, sizeof(body));
    tap_ok(st == 400 && strstr(body, "reason") != NULL,
           "no list published yet: a reason other than medical is 400: %s",
           body);
    free(lines);
}


void
test_cancel(void)
{
    town = ttown();
    if (town == NULL) {
        tap_ok(0, "test town parses");
        return;
    }

    test_cancel_paths();
    test_cancel_oom();
    test_absence_document();

    gch_town_free(town);
    town = NULL;
}
