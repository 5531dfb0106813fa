/*
 * test_waitlist.c -- GET /api/waitlist and DELETE /api/waitlist/{s}/{c}
 * without Redis (issue 23): the commands, the answers from the replies,
 * 404s, and the failing allocator over every path.  (Joining is the
 * booking saga's, test_book.c; the promotion's decision too.)
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "tredis.h"


static gch_town_t  *town;


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
            tb_arr(&b, l->ncmds - 2);
            for (size_t k = 0; k + 2 < l->ncmds; k++) {
                if (pos[k] < 0) {
                    tb_nil(&b);
                } else {
                    tb_int(&b, pos[k]);
                }
            }
        } else {
            tb_arr(&b, 4);
            tb_int(&b, lrem);
            tb_int(&b, lrem);
            tb_int(&b, 0);
            tb_int(&b, lrem);
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
                             "\"unit_label\":\"Danse\",\"position\":3}]}")
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

    gch_town_free(town);
}
