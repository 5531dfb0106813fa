/*
 * test_waitlist.c -- GET /api/waitlist and DELETE /api/waitlist/{s}/{c}
 * without Redis (issue 23): the commands, the answers from the replies,
 * 404s, and the failing allocator over every path.  (Joining is the
 * booking saga's, test_book.c; the promotion's decision too.)  Offers:
 * their end and expiry, the town file's "waitlist", eligibility, and the
 * acceptance's place.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "tredis.h"


static gch_town_t  *town;
static const char  *offer_ms;     /* GET: the second entry's offer end */


static const gch_family_t *
tfam(const char *id)
{
    return gch_town_family(town, id, strlen(id));
}


/*
 * Drives a waiting-list operation: arg NULL (GET) or "<sid>/<cid>".
 * Redis answers HGETALL with the family's entries, LPOS with pos[] (-1:
 * nil), LREM with lrem.  Its answer in *body (malloc), its status.
 */
static int
twait(const gch_alloc_t *a, const char *fid, const char *arg,
    long long lrem, char **body, int *rc, char **cmds)
{
    int                 status, i;
    tb_t                b;
    size_t              len;
    gch_wait_t         *w;
    redisReply         *x;
    gch_error_t         err;
    const char         *p;
    const gch_cmds_t   *l;
    static const long long  pos[] = { 2, -1 };

    *body = NULL;
    if (cmds) {
        *cmds = NULL;
    }
    memset(&err, 0, sizeof(err));

    *rc = gch_wait_plan(&w, town, tfam(fid), arg, arg ? strlen(arg) : 0, a,
                        &err);
    if (*rc != GCH_OK) {
        return 0;
    }

    for (i = 0; (l = gch_wait_next(w)) != NULL; i++) {
        if (cmds && *cmds == NULL) {
            *cmds = tcmds_dump(l);
        }
        tb_init(&b);
        if (arg == NULL && i == 0) {
            tb_arr(&b, 1);
            tb_arr(&b, 6);
            tb_str(&b, "k-m c-thais");
            tb_str(&b, "b-1");
            tb_str(&b, "k-r c-leo");
            tb_str(&b, "b-2");
            tb_str(&b, "nope c-thais");       /* a session gone */
            tb_str(&b, "b-3");
        } else if (arg == NULL) {
            /* LPOS, HGET of the offer: per entry */
            tb_arr(&b, l->ncmds - 2);
            for (size_t k = 0; k + 2 < l->ncmds; k += 2) {
                if (pos[k / 2] < 0) {
                    tb_nil(&b);
                } else {
                    tb_int(&b, pos[k / 2]);
                }
                if (k == 2 && offer_ms) {
                    tb_str(&b, offer_ms);
                } else {
                    tb_nil(&b);
                }
            }
        } else {
            /* LREM, HDEL x3, HDEL of the offer (lrem > 1: declined),
             * ZADD XX */
            tb_arr(&b, 6);
            tb_int(&b, lrem == 1);
            tb_int(&b, lrem == 1);
            tb_int(&b, 0);
            tb_int(&b, lrem != 0);
            tb_int(&b, lrem > 1);
            tb_int(&b, 0);
        }
        x = tb_reply(&b);
        *rc = gch_wait_on_reply(w, x);
        freeReplyObject(x);
        if (*rc != GCH_OK) {
            gch_wait_free(w);
            return 0;
        }
    }

    status = gch_wait_status(w);
    p = gch_wait_body(w, &len);
    if (p) {
        *body = strndup(p, len);
    }
    gch_wait_free(w);
    return status;
}


static void
test_wait_paths(void)
{
    int    st, rc;
    char  *body, *cmds;

    st = twait(&gch_alloc_std, "f-martin", NULL, 0, &body, &rc, &cmds);
    tap_ok(st == 200 && cmds
           && strstr(cmds, "HGETALL {main}:f:f-martin:waits") != NULL
           && body && strcmp(body, "{\"waitlist\":[{\"session_id\":\"k-m\","
                             "\"child_id\":\"c-thais\",\"activity_id\":"
                             "\"klub\",\"activity_name\":\"Klub 8-12\","
                             "\"date\":\"2021-07-07\",\"unit\":\"MATIN\","
                             "\"unit_label\":\"Danse\",\"status\":"
                             "\"waiting\",\"position\":3}]}")
              == 0,
           "waitlist GET: the family's places, LPOS + 1, a place gone "
           "(nil) and an unknown session left out: %s",
           body ? body : "(null)");
    free(body);
    free(cmds);

    st = twait(&gch_alloc_std, "f-martin", "k-m/c-thais", 1, &body, &rc,
               &cmds);
    tap_ok(st == 200 && cmds
           && strstr(cmds, "LREM {main}:s:k-m:wait 0 c-thais")
           && strstr(cmds, "HDEL {main}:s:k-m:waiters c-thais")
           && strstr(cmds, "HDEL {main}:f:f-martin:waits k-m c-thais")
           && body && strcmp(body, "{\"session_id\":\"k-m\",\"child_id\":"
                             "\"c-thais\",\"status\":\"left\"}") == 0,
           "waitlist DELETE: list, entry, tries and the family's index in "
           "one MULTI: %s", body ? body : "(null)");
    free(body);
    free(cmds);

    /* the second entry has an offer: off the list, shown with its end */
    offer_ms = "1625133600000";
    st = twait(&gch_alloc_std, "f-martin", NULL, 0, &body, &rc, NULL);
    tap_ok(st == 200 && body
           && strstr(body, "\"child_id\":\"c-leo\"")
           && strstr(body, "\"status\":\"offered\",\"offer_until\":"
                     "\"2021-07-01T12:00:00+02:00\"")
           && strstr(body, "\"position\":3}"),
           "waitlist GET: a place offered is shown with its end, in "
           "Paris time: %s", body ? body : "(null)");
    free(body);
    offer_ms = NULL;

    st = twait(&gch_alloc_std, "f-martin", "k-m/c-thais", 2, &body, &rc,
               &cmds);
    tap_ok(st == 200 && cmds
           && strstr(cmds, "HDEL {main}:s:k-m:offer c-thais")
           && strstr(cmds, "ZADD {main}:offers XX 0 k-m c-thais")
           && body && strstr(body, "\"status\":\"declined\""),
           "waitlist DELETE of an offer: declined, its end set to now for "
           "the worker: %s", body ? body : "(null)");
    free(body);
    free(cmds);

    st = twait(&gch_alloc_std, "f-martin", "k-m/c-thais", 0, &body, &rc,
               NULL);
    tap_ok(st == 404 && body && strstr(body, "\"not_found\""),
           "waitlist DELETE: not on the list is 404 not_found");
    free(body);

    st = twait(&gch_alloc_std, "f-martin", "k-m/c-other", 1, &body, &rc,
               &cmds);
    tap_ok(st == 404 && cmds == NULL,
           "waitlist DELETE: another family's child is 404 without Redis");
    free(body);
    free(cmds);

    st = twait(&gch_alloc_std, "f-martin", "k-m", 1, &body, &rc, &cmds);
    tap_ok(st == 404 && cmds == NULL,
           "waitlist DELETE: no child in the path is 404 without Redis");
    free(body);
    free(cmds);
}


static void
test_wait_oom(void)
{
    int          st, want, rc, i;
    long         n, leaks, wrong;
    char        *body;
    tcount_t     c;
    gch_alloc_t  a;
    static const char  *args[] = { NULL, "k-m/c-thais", "x/y" };

    for (i = 0; i < 3; i++) {
        tcount_init(&c, &a, 0);
        want = twait(&a, "f-martin", args[i], 1, &body, &rc, NULL);
        free(body);
        leaks = 0;
        wrong = 0;

        for (n = 1; ; n++) {
            tcount_init(&c, &a, n);
            st = twait(&a, "f-martin", args[i], 1, &body, &rc, NULL);
            free(body);
            leaks += c.live != 0;

            if (c.failed == 0) {
                wrong += st != want;
                break;
            }

            wrong += rc != GCH_ENOMEM;
        }

        tap_ok(leaks == 0 && wrong == 0 && n > 1,
               "oom waitlist %s (%d): each of the %ld allocations fails "
               "cleanly, no leak", args[i] ? args[i] : "GET", want, n - 1);
    }
}


/* ----- offers ----------------------------------------------------------- */

static const char  toffer_json[] =
    "{\"town\":{\"name\":\"Offres\"},"
    "\"units\":[{\"code\":\"MATIN\",\"label\":\"Matin\",\"starts\":\"08:30\","
    "\"ends\":\"12:00\"}],"
    "\"activities\":["
    "{\"id\":\"o\",\"name\":\"Offre\",\"deadline\":{\"hours\":48},"
    "\"waitlist\":{\"mode\":\"offer\",\"hold_hours\":24},"
    "\"prices\":[{\"qf_max\":null,\"cents\":500}],"
    "\"sessions\":[{\"id\":\"o-1\",\"date\":\"2021-07-10\","
    "\"unit\":\"MATIN\",\"places\":2}]},"
    "{\"id\":\"b\",\"name\":\"Direct\",\"deadline\":{\"hours\":48},"
    "\"waitlist\":{\"mode\":\"book\"},"
    "\"prices\":[{\"qf_max\":null,\"cents\":500}],"
    "\"sessions\":[{\"id\":\"b-1\",\"date\":\"2021-07-10\","
    "\"unit\":\"MATIN\",\"places\":2}]}],"
    "\"families\":[{\"id\":\"f1\",\"qf\":500,\"children\":["
    "{\"id\":\"c1\",\"first_name\":\"Un\",\"birth_date\":\"2015-01-01\"},"
    "{\"id\":\"c2\",\"first_name\":\"Deux\",\"birth_date\":\"2015-01-01\"}],"
    "\"enrolments\":[{\"child_id\":\"c1\",\"activity_id\":\"o\","
    "\"from\":\"2021-01-01\",\"to\":\"2021-12-31\",\"status\":\"validee\"}]}]}";


static gch_town_t *
toffer_town(const char *from, const char *to)
{
    char         *json, *p;
    size_t        n;
    gch_town_t   *t;
    gch_error_t   err;

    n = sizeof(toffer_json) + 64;
    json = malloc(n);
    if (json == NULL) {
        return NULL;
    }
    snprintf(json, n, "%s", toffer_json);

    if (from) {
        p = strstr(json, from);
        if (p == NULL || strlen(to) != strlen(from)) {
            free(json);
            return NULL;
        }
        memcpy(p, to, strlen(to));
    }

    memset(&err, 0, sizeof(err));
    t = NULL;
    if (gch_town_parse(&t, json, strlen(json), &gch_alloc_std, &err)
        != GCH_OK)
    {
        t = NULL;
    }
    free(json);
    return t;
}


static void
test_offer_expiry(void)
{
    char                 *out;
    size_t                len;
    int64_t               now, deadline;
    gch_town_t           *t;
    const gch_session_t  *o, *b;

    t = toffer_town(NULL, NULL);
    if (t == NULL) {
        tap_ok(0, "offer town parses");
        return;
    }

    o = gch_town_session(t, "o-1", 3);
    b = gch_town_session(t, "b-1", 3);

    /* 2021-07-10 08:30 Paris - 48 h = 2021-07-08T06:30:00Z */
    deadline = 1625725800LL * 1000;
    now = 1625133600LL * 1000;              /* 2021-07-01T10:00:00Z */

    tap_ok(o->activity->offer_hours == 24 && b->activity->offer_hours == 0
           && gch_offer_until(t, b, now) == 0,
           "offer: \"mode\": \"offer\" holds 24 h, \"book\" makes no offer");
    tap_ok(gch_offer_until(t, o, now) == now + 24 * 3600 * 1000,
           "offer: held hold_hours from the instant it is made");
    tap_ok(gch_offer_until(t, o, deadline - 3600 * 1000) == deadline,
           "offer: never held past the booking deadline");
    tap_ok(gch_offer_until(t, o, deadline) == 0
           && gch_offer_until(t, o, deadline + 1) == 0,
           "offer: none once the booking deadline has passed");
    tap_ok(!gch_offer_expired(now + 1000, now)
           && !gch_offer_expired(now + 1, now)
           && gch_offer_expired(now, now)
           && gch_offer_expired(now, now + 1),
           "offer: expired from its end on, not a millisecond before");

    tap_ok(gch_wait_eligible(t, gch_town_family(t, "f1", 2), "c1", o, now,
                             &gch_alloc_std) == GCH_REASON_NONE
           && gch_wait_eligible(t, gch_town_family(t, "f1", 2), "c2", o,
                                now, &gch_alloc_std)
              == GCH_REASON_NOT_ENROLLED
           && gch_wait_eligible(t, gch_town_family(t, "f1", 2), "c1", o,
                                deadline, &gch_alloc_std)
              == GCH_REASON_CLOSED
           && gch_wait_eligible(t, gch_town_family(t, "f1", 2), "c9", o,
                                now, &gch_alloc_std)
              == GCH_REASON_NOT_ENROLLED,
           "offer: eligibility is a booking's rules (enrolment, deadline, "
           "a child not the family's)");

    out = NULL;
    tap_ok(gch_town_write(t, &out, &len, &gch_alloc_std) == GCH_OK
           && out
           && strstr(out, "\"waitlist\":{\"mode\":\"offer\","
                     "\"hold_hours\":24}") != NULL,
           "offer: the catalogue written keeps the activity's waitlist");
    gch_alloc_std.free(gch_alloc_std.ctx, out);
    gch_town_free(t);

    t = toffer_town("\"hold_hours\":24", "\"hold_hours\":00");
    tap_ok(t == NULL, "offer: hold_hours 0 is refused");
    gch_town_free(t);
    t = toffer_town("\"mode\":\"offer\"", "\"mode\":\"offre\"");
    tap_ok(t == NULL, "offer: an unknown mode is refused");
    gch_town_free(t);
    t = toffer_town("{\"mode\":\"book\"}", "{\"mode\":\"bk\"}  ");
    tap_ok(t == NULL, "offer: mode must be book or offer");
    gch_town_free(t);
}


static void
test_offer_accept(void)
{
    char               *cmds, body[] = "{\"items\":[{\"child_id\":\"c1\","
                                       "\"session_id\":\"o-1\","
                                       "\"offer\":true}]}";
    gch_book_t         *bk;
    gch_town_t         *t;
    gch_error_t         err;
    gch_book_in_t       in;
    gch_booking_req_t   req;
    const gch_cmds_t   *l;

    t = toffer_town(NULL, NULL);
    memset(&err, 0, sizeof(err));
    if (t == NULL
        || gch_booking_req_parse(&req, body, strlen(body), 10,
                                 &gch_alloc_std, &err) != GCH_OK)
    {
        tap_ok(0, "offer: the acceptance parses");
        gch_town_free(t);
        return;
    }

    memset(&in, 0, sizeof(in));
    in.town = t;
    in.family = gch_town_family(t, "f1", 2);
    in.req = &req;
    in.now_ms = 1625133600LL * 1000;
    in.idem_key = "k1";
    in.idem_len = 2;
    in.body = body;
    in.body_len = strlen(body);
    in.idem_ttl_s = 60;
    in.inflight_ttl_s = 60;

    bk = NULL;
    cmds = NULL;
    if (gch_book_plan(&bk, &in, &gch_alloc_std, &err) == GCH_OK
        && (l = gch_book_step1(bk)) != NULL)
    {
        cmds = tcmds_dump(l);
    }

    tap_ok(req.items[0].offer && cmds
           && strstr(cmds, "BITFIELD {main}:s:o-1:hold:c1 OVERFLOW FAIL "
                     "INCRBY u32 0 -1")
           && strstr(cmds, "{main}:s:o-1:left") == NULL
           && strstr(cmds, "RPUSH") == NULL,
           "offer: the acceptance takes the place held for its child, not "
           "one of the pool: %s", cmds ? cmds : "(null)");

    free(cmds);
    gch_book_free(bk);
    gch_booking_req_free(&req);
    gch_town_free(t);
}


void
test_waitlist(void)
{
    town = ttown();
    if (town == NULL) {
        tap_ok(0, "test town parses");
        return;
    }

    test_wait_paths();
    test_wait_oom();
    test_offer_expiry();
    test_offer_accept();

    gch_town_free(town);
}
