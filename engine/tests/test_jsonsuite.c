/*
 * test_jsonsuite.c -- every n_* case of JSONTestSuite (Nicolas Seriot,
 * MIT; vendored under tests/json-test-suite/, see its README) is refused
 * as GCH_EBADJSON by the JSON reader and by the three request parsers that
 * read bodies from outside (booking, login, absence).  Login and absence
 * bodies over 2 KiB are GCH_ETOOLARGE before any parsing; the few n_ cases
 * that long are checked for that instead.
 *
 * Also: form feed and vertical tab anywhere (white space for yajl, not for
 * RFC 8259), and the parser's spill path (its reserve capped so that
 * yajl's blocks come from the allocator) under the failing allocator:
 * every refusal is GCH_ENOMEM, nothing leaks, yajl never sees a NULL.
 */

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include <gch_json.h>


#define TSUITE_DIR  "../../tests/json-test-suite"


static int
tsuite_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}


static void
tsuite_bytes(void)
{
    int                rc;
    size_t             i;
    gch_json_t         j;
    gch_error_t        err;
    gch_booking_req_t  r;

    static const struct {
        const char  *json;
        const char  *what;
    } cases[] = {
        { "[\f]", "form feed in an array" },
        { "\f{\"items\":[]}", "leading form feed" },
        { "{\"items\":[]}\f", "trailing form feed" },
        { "[\v]", "vertical tab in an array" },
        { "{\"items\":\v[]}", "vertical tab before a value" },
        { "[\"a\fb\"]", "raw form feed in a string" },
        { "[\"a\vb\"]", "raw vertical tab in a string" },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rc = gch_json_parse(&j, cases[i].json, strlen(cases[i].json), 8,
                            &gch_alloc_std, &err);
        if (rc == GCH_OK) {
            gch_json_free(&j);
        }

        tap_ok(rc == GCH_EBADJSON && strcmp(err.code, "bad_json") == 0,
               "json: %s is bad JSON (%d %s)", cases[i].what, rc,
               rc ? err.message : "accepted");

        rc = gch_booking_req_parse(&r, cases[i].json, strlen(cases[i].json),
                                   200, &gch_alloc_std, &err);
        if (rc == GCH_OK) {
            gch_booking_req_free(&r);
        }

        tap_ok(rc == GCH_EBADJSON, "booking: %s is bad_json (%d)",
               cases[i].what, rc);
    }

    /* \t \n \r and space still are white space */
    rc = gch_json_parse(&j, " \t\r\n[ \t\r\n1 ]\n", 12, 8, &gch_alloc_std,
                        &err);
    tap_ok(rc == GCH_OK && j.root && j.root->len == 1,
           "json: RFC 8259 white space accepted");
    if (rc == GCH_OK) {
        gch_json_free(&j);
    }
}


/* the spill path: every allocation may fail, yajl's included */
static void
tsuite_spill(void)
{
    int          rc;
    long         n, leaks, wrong, spilled;
    tcount_t     c;
    gch_json_t   j;
    gch_alloc_t  a;
    gch_error_t  err;

    static const char  body[] =
        "{\"items\":[{\"child_id\":\"c-th\\u00e4is\",\"session_id\":\"s1\"},"
        "{\"child_id\":\"c2\",\"session_id\":[[[[[[\"s\\\"2\"]]]]]]}],"
        "\"n\":12345678901234567890";
    static const char  tvalid[] = "{\"a\":[\"\\u00e9\",1,{\"b\":null}]}";

    /* without the cap: the reserve alone is enough (2 blocks and the tree) */
    tcount_init(&c, &a, 0);
    rc = gch_json_parse(&j, body, sizeof(body) - 1, 16, &a, &err);
    tap_ok(rc == GCH_EBADJSON, "json spill: the unfinished body is bad JSON "
           "(%d)", rc);
    tap_ok(c.live == 0, "json spill: nothing left after the refusal");
    spilled = c.calls;

    gch_json_reserve_cap = 64;

    tcount_init(&c, &a, 0);
    rc = gch_json_parse(&j, body, sizeof(body) - 1, 16, &a, &err);
    tap_ok(rc == GCH_EBADJSON && c.live == 0 && c.calls > spilled + 3,
           "json spill: capped reserve, yajl's %ld blocks from the "
           "allocator, same answer, nothing left", c.calls - spilled);

    leaks = 0;
    wrong = 0;

    for (n = 1; n < 1000; n++) {
        tcount_init(&c, &a, n);
        rc = gch_json_parse(&j, body, sizeof(body) - 2, 16, &a, &err);

        if (c.failed == 0) {
            leaks += c.live != 0;
            wrong += rc != GCH_EBADJSON;
            break;
        }

        wrong += rc != GCH_ENOMEM || j.ar != NULL
                 || strcmp(err.code, "internal") != 0;
        leaks += c.live != 0;
    }

    tap_ok(leaks == 0 && wrong == 0 && n > 5, "json spill: each of the %ld "
           "allocations fails cleanly (GCH_ENOMEM), no leak", n - 1);

    leaks = 0;
    wrong = 0;

    for (n = 1; n < 1000; n++) {
        tcount_init(&c, &a, n);
        rc = gch_json_parse(&j, tvalid, sizeof(tvalid) - 1,
                            16, &a, &err);

        if (rc == GCH_OK) {
            wrong += j.root == NULL || j.root->len != 1;
            gch_json_free(&j);
            leaks += c.live != 0;
            break;
        }

        wrong += rc != GCH_ENOMEM || j.ar != NULL;
        leaks += c.live != 0;
    }

    tap_ok(leaks == 0 && wrong == 0 && n > 5, "json spill: a valid text, "
           "each of the %ld allocations fails cleanly, no leak", n - 1);

    gch_json_reserve_cap = 0;
}


void
test_jsonsuite(void)
{
    int                rc, big;
    char              *json, path[512], *names[512], bid[72], doc[72];
    char               reason[40];
    char               login[128], password[128];
    size_t             len, n, i, bad[4];
    DIR               *d;
    gch_json_t         j;
    gch_error_t        err;
    struct dirent     *e;
    gch_booking_req_t  r;

    tsuite_bytes();
    tsuite_spill();

    d = opendir(TSUITE_DIR);
    if (d == NULL) {
        tap_ok(0, "JSONTestSuite: %s is missing", TSUITE_DIR);
        return;
    }

    n = 0;
    while ((e = readdir(d)) != NULL && n < 512) {
        len = strlen(e->d_name);
        if (strncmp(e->d_name, "n_", 2) == 0 && len > 5
            && strcmp(e->d_name + len - 5, ".json") == 0)
        {
            names[n++] = strdup(e->d_name);
        }
    }

    closedir(d);
    qsort(names, n, sizeof(char *), tsuite_cmp);

    memset(bad, 0, sizeof(bad));

    for (i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/%s", TSUITE_DIR, names[i]);
        json = tread(path, &len);
        if (json == NULL) {
            tap_ok(0, "JSONTestSuite: cannot read %s", path);
            free(names[i]);
            continue;
        }

        big = len > 2048;

        rc = gch_json_parse(&j, json, len, 64, &gch_alloc_std, &err);
        if (rc == GCH_OK) {
            gch_json_free(&j);
        }

        if (rc != GCH_EBADJSON) {
            bad[0]++;
            tap_diag("%s: gch_json_parse %d %s", names[i], rc,
                     rc ? err.message : "accepted");
        }

        rc = gch_booking_req_parse(&r, json, len, 200, &gch_alloc_std,
                                   &err);
        if (rc == GCH_OK) {
            gch_booking_req_free(&r);
        }

        if (rc != GCH_EBADJSON) {
            bad[1]++;
            tap_diag("%s: booking %d %s", names[i], rc,
                     rc ? err.message : "accepted");
        }

        rc = gch_login_req_parse(json, len, login, sizeof(login), password,
                                 sizeof(password), &err);
        if (rc != (big ? GCH_ETOOLARGE : GCH_EBADJSON)) {
            bad[2]++;
            tap_diag("%s: login %d %s", names[i], rc,
                     rc ? err.message : "accepted");
        }

        rc = gch_absence_req_parse(json, len, bid, sizeof(bid), reason,
                                   sizeof(reason), doc, sizeof(doc), &err);
        if (rc != (big ? GCH_ETOOLARGE : GCH_EBADJSON)) {
            bad[3]++;
            tap_diag("%s: absence %d %s", names[i], rc,
                     rc ? err.message : "accepted");
        }

        free(json);
        free(names[i]);
    }

    tap_ok(n == 188, "JSONTestSuite: %zu n_* cases found", n);
    tap_ok(bad[0] == 0, "JSONTestSuite: gch_json_parse refuses every n_ "
           "case as bad JSON (%zu wrong)", bad[0]);
    tap_ok(bad[1] == 0, "JSONTestSuite: booking bodies: every n_ case is "
           "bad_json (%zu wrong)", bad[1]);
    tap_ok(bad[2] == 0, "JSONTestSuite: login bodies: every n_ case is "
           "bad_json (%zu wrong)", bad[2]);
    tap_ok(bad[3] == 0, "JSONTestSuite: absence bodies: every n_ case is "
           "bad_json (%zu wrong)", bad[3]);
}
