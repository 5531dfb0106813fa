/*
 * test_parsers.c -- golden files for the booking, login and town parsers,
 * generated edge cases (sizes, depth, bytes), the catalogue round trip,
 * the 20,000-family timing, and the failing allocator for every
 * out-of-memory path of gch_town_parse(), gch_town_write() and
 * gch_booking_req_parse().
 *
 * golden/<kind>/<name>.json is the input, <name>.out the expected output:
 * "error <status> <code> <message>" or a canonical dump (for towns, the
 * catalogue that gch_town_write() makes).  GCH_GOLDEN_UPDATE=1 rewrites
 * the .out files (review them before committing).
 */

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tap.h"
#include "town.h"                    /* gch_town_id_cell() */


typedef char *(*tdump_pt)(const char *json, size_t len);


static char *
tsprintf(const char *fmt, const char *a, const char *b)
{
    size_t  n;
    char   *p;

    n = strlen(fmt) + strlen(a) + strlen(b) + 1;
    p = malloc(n);
    snprintf(p, n, fmt, a, b);

    return p;
}


static char *
terror(int rc, const gch_error_t *err)
{
    char  *p;

    p = malloc(512);
    snprintf(p, 512, "error %d %d %s %s\n", rc, err->status, err->code,
             err->message);

    return p;
}


static char *
dump_booking(const char *json, size_t len)
{
    int                rc;
    char              *p, *q;
    size_t             i;
    gch_error_t        err;
    gch_booking_req_t  r;

    rc = gch_booking_req_parse(&r, json, len, 200, &gch_alloc_std, &err);
    if (rc != GCH_OK) {
        return terror(rc, &err);
    }

    p = malloc(64 + r.nitems * 160);
    q = p + sprintf(p, "ok %zu items\n", r.nitems);

    for (i = 0; i < r.nitems; i++) {
        q += sprintf(q, "%s %s\n", r.items[i].child_id,
                     r.items[i].session_id);
    }

    gch_booking_req_free(&r);
    return p;
}


static char *
dump_login(const char *json, size_t len)
{
    int          rc;
    char         login[65], password[129];
    gch_error_t  err;

    rc = gch_login_req_parse(json, len, login, sizeof(login), password,
                             sizeof(password), &err);
    if (rc != GCH_OK) {
        return terror(rc, &err);
    }

    return tsprintf("ok %s %s\n", login, password);
}


static char *
dump_town(const char *json, size_t len)
{
    int          rc;
    char        *out, *p;
    size_t       n;
    gch_town_t  *t;
    gch_error_t  err;

    rc = gch_town_parse(&t, json, len, &gch_alloc_std, &err);
    if (rc != GCH_OK) {
        return terror(rc, &err);
    }

    rc = gch_town_write(t, &out, &n, &gch_alloc_std);
    gch_town_free(t);

    if (rc != GCH_OK) {
        return tsprintf("write failed%s%s\n", "", "");
    }

    p = tsprintf("%s%s\n", out, "");
    free(out);

    return p;
}


static int
tname_cmp(const void *a, const void *b)
{
    return strcmp(*(char * const *) a, *(char * const *) b);
}


static void
tgolden_dir(const char *dir, tdump_pt dump)
{
    DIR            *d;
    char           *names[256], path[512], *in, *got;
    size_t          n, i, len;
    struct dirent  *e;

    d = opendir(dir);
    if (d == NULL) {
        tap_ok(0, "golden directory %s", dir);
        return;
    }

    n = 0;
    while ((e = readdir(d)) != NULL && n < 256) {
        len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".json") == 0) {
            names[n++] = strndup(e->d_name, len - 5);
        }
    }

    closedir(d);
    qsort(names, n, sizeof(char *), tname_cmp);

    for (i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/%s.json", dir, names[i]);
        in = tread(path, &len);
        if (in == NULL) {
            tap_ok(0, "read %s", path);
            free(names[i]);
            continue;
        }

        got = dump(in, len);
        snprintf(path, sizeof(path), "%s/%s.out", dir, names[i]);
        tgolden(path, got, path);

        free(got);
        free(in);
        free(names[i]);
    }
}


static void
texpect_error(const char *what, const char *json, size_t len, int want_rc,
    const char *want_msg)
{
    int                rc;
    gch_error_t        err;
    gch_booking_req_t  r;

    if (len == (size_t) -1) {
        len = strlen(json);
    }

    rc = gch_booking_req_parse(&r, json, len, 200, &gch_alloc_std, &err);
    tap_ok(rc == want_rc && (want_msg == NULL
                             || strstr(err.message, want_msg) != NULL),
           "booking: %s -> %d %s", what, want_rc, want_msg ? want_msg : "");

    if (rc == GCH_OK) {
        gch_booking_req_free(&r);

    } else if (rc != want_rc || (want_msg && !strstr(err.message, want_msg)))
    {
        tap_diag("got %d %s", rc, err.message);
    }
}


void
test_request(void)
{
    int                rc;
    char              *big, *p;
    size_t             i, n;
    gch_error_t        err;
    gch_booking_req_t  r;

    tgolden_dir("golden/booking", dump_booking);
    tgolden_dir("golden/login", dump_login);

    /* sizes: 200 items pass, 201 do not */
    big = malloc(201 * 64 + 64);
    for (n = 200; n <= 201; n++) {
        p = big + sprintf(big, "{\"items\":[");
        for (i = 0; i < n; i++) {
            p += sprintf(p, "%s{\"child_id\":\"c%zu\",\"session_id\":\"s\"}",
                         i ? "," : "", i);
        }

        p += sprintf(p, "]}");

        rc = gch_booking_req_parse(&r, big, (size_t) (p - big), 200,
                                   &gch_alloc_std, &err);
        if (n == 200) {
            tap_ok(rc == 0 && r.nitems == 200
                   && strcmp(r.items[199].child_id, "c199") == 0,
                   "booking: 200 items accepted");
            gch_booking_req_free(&r);

        } else {
            tap_ok(rc == GCH_EINVALID && strcmp(err.message, "$.items : "
                   "nombre d'éléments hors limites (1 à 200)") == 0,
                   "booking: 201 items refused: %s", err.message);
        }
    }

    free(big);

    /* bytes that golden files hold badly */
    texpect_error("NUL in an id",
                  "{\"items\":[{\"child_id\":\"c\\u0000\",\"session_id\":"
                  "\"s\"}]}", (size_t) -1, GCH_EINVALID,
                  "$.items[0].child_id : caractère nul interdit");
    texpect_error("raw invalid UTF-8",
                  "{\"items\":[{\"child_id\":\"c\xff\",\"session_id\":"
                  "\"s\"}]}", (size_t) -1, GCH_EBADJSON, "UTF-8");
    texpect_error("overlong UTF-8",
                  "{\"items\":[{\"child_id\":\"c\xc0\xaf\",\"session_id\":"
                  "\"s\"}]}", (size_t) -1, GCH_EINVALID,
                  "$.items[0].child_id : UTF-8 invalide");
    texpect_error("UTF-16 surrogate in UTF-8",
                  "{\"items\":[{\"child_id\":\"c\xed\xa0\x80\",\"session_id\":"
                  "\"s\"}]}", (size_t) -1, GCH_EINVALID, "UTF-8 invalide");
    texpect_error("raw NUL byte", "{\"items\":[]}\0", 13, GCH_EBADJSON,
                  NULL);
    texpect_error("empty body", "", 0, GCH_EBADJSON, NULL);
    texpect_error("deep nesting",
                  "{\"items\":[{\"child_id\":[[[[\"x\"]]]]}]}", (size_t) -1,
                  GCH_EBADJSON, "imbriqué");
    texpect_error("truncated escaped string",
                  "{\"items\":[{\"child_id\":\"\\u00e9\\u00e9", (size_t) -1,
                  GCH_EBADJSON, NULL);
    texpect_error("truncated number", "{\"items\":123", (size_t) -1,
                  GCH_EBADJSON, NULL);

    /* a 1 MB escaped string: the reserve must hold it */
    n = 1 << 20;
    big = malloc(n + 128);
    p = big + sprintf(big, "{\"items\":[{\"child_id\":\"");
    for (i = 0; i < n / 6; i++) {
        p += sprintf(p, "\\u00e9");
    }
    p += sprintf(p, "\",\"session_id\":\"s\"}]}");
    texpect_error("1 MB escaped id", big, (size_t) (p - big), GCH_EINVALID,
                  "$.items[0].child_id : longueur hors limites");
    texpect_error("1 MB escaped id, truncated", big, (size_t) (p - big) - 25,
                  GCH_EBADJSON, NULL);
    free(big);
}


/* town */

static char *
tread_or_die(const char *path, size_t *len)
{
    char  *p = tread(path, len);

    if (p == NULL) {
        tap_ok(0, "read %s", path);
    }

    return p;
}


static void
test_roundtrip(const char *path)
{
    int          rc;
    char        *json, *w1, *w2;
    size_t       len, n1, n2, i, bad;
    gch_town_t  *t1, *t2;
    gch_error_t  err;

    json = tread_or_die(path, &len);
    if (json == NULL) {
        return;
    }

    rc = gch_town_parse(&t1, json, len, &gch_alloc_std, &err);
    tap_ok(rc == 0, "parse %s", path);
    if (rc != 0) {
        tap_diag("%s", err.message);
        free(json);
        return;
    }

    gch_town_write(t1, &w1, &n1, &gch_alloc_std);
    rc = gch_town_parse(&t2, w1, n1, &gch_alloc_std, &err);
    tap_ok(rc == 0, "parse(write(parse(%s)))", path);
    if (rc != 0) {
        tap_diag("%s", err.message);
        gch_town_free(t1);
        free(w1);
        free(json);
        return;
    }

    gch_town_write(t2, &w2, &n2, &gch_alloc_std);
    tap_ok(n1 == n2 && memcmp(w1, w2, n1) == 0,
           "write(parse(write(parse(x)))) == write(parse(x))");

    bad = 0;
    bad += t1->nsessions != t2->nsessions || t1->nunits != t2->nunits
           || t1->nactivities != t2->nactivities
           || t1->nfamilies != t2->nfamilies;

    for (i = 0; !bad && i < t1->nunits; i++) {
        bad += t1->units[i].quanta != t2->units[i].quanta
               || t1->units[i].starts_min != t2->units[i].starts_min
               || t1->units[i].ends_min != t2->units[i].ends_min
               || strcmp(t1->units[i].label, t2->units[i].label) != 0;
    }

    for (i = 0; !bad && i < t1->nsessions; i++) {
        const gch_session_t  *a = &t1->sessions[i], *b = &t2->sessions[i];

        bad += strcmp(a->id, b->id) != 0 || a->date != b->date
               || a->unit != b->unit || strcmp(a->label, b->label) != 0
               || a->places != b->places
               || a->places_online != b->places_online
               || strcmp(a->activity->id, b->activity->id) != 0
               || gch_town_session(t2, a->id, strlen(a->id)) != b;
    }

    for (i = 0; !bad && i < t1->nactivities; i++) {
        const gch_activity_t  *a = &t1->activities[i];
        const gch_activity_t  *b = &t2->activities[i];

        bad += strcmp(a->id, b->id) != 0 || a->opens_at != b->opens_at
               || a->deadline.kind != b->deadline.kind
               || a->deadline.n != b->deadline.n
               || a->online_share_percent != b->online_share_percent
               || a->week_required != b->week_required
               || a->nprices != b->nprices || a->age_min != b->age_min
               || a->age_max != b->age_max
               || (a->site == NULL) != (b->site == NULL);
    }

    for (i = 0; !bad && i < t1->nfamilies; i++) {
        const gch_family_t  *a = &t1->families[i], *b = &t2->families[i];

        bad += strcmp(a->id, b->id) != 0 || a->qf != b->qf
               || (a->login == NULL) != (b->login == NULL)
               || a->resident != b->resident
               || a->direct_debit != b->direct_debit
               || a->nchildren != b->nchildren
               || a->nenrolments != b->nenrolments
               || b->password != NULL;
    }

    tap_ok(bad == 0, "parse(write(parse(x))) == parse(x), passwords aside");

    gch_town_free(t1);
    gch_town_free(t2);
    free(w1);
    free(w2);
    free(json);
}


/*
 * Each session's book_until is its activity's deadline computed for its
 * day and unit (the town reader computes it once a day of the activity
 * when the unit's start does not matter): the example town as it is
 * (working days), then with a deadline in hours and the day before at a
 * time, over its three units of different starts.
 */
static void
test_book_until(void)
{
    int                   rc;
    char                 *json, *p, *q;
    size_t                len, n, i, bad;
    gch_town_t           *t;
    gch_error_t           err;
    const gch_session_t  *s;
    static const char    *was = "{\"working_days\": 9}";
    static const char    *kinds[] = {
        "{\"working_days\": 9}", "{\"hours\": 5}",
        "{\"day_before_at\": \"18:00\"}"
    };

    json = tread_or_die("golden/town/00-example.json", &len);
    if (json == NULL) {
        return;
    }

    p = strstr(json, was);
    tap_ok(p != NULL, "book_until: the example's deadline");

    for (i = 0; p && i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        /* the example with its deadline replaced by kinds[i] */
        n = len - strlen(was) + strlen(kinds[i]);
        q = malloc(n);
        if (q == NULL) {
            break;
        }

        memcpy(q, json, (size_t) (p - json));
        memcpy(q + (p - json), kinds[i], strlen(kinds[i]));
        memcpy(q + (p - json) + strlen(kinds[i]), p + strlen(was),
               len - (size_t) (p - json) - strlen(was));
        rc = gch_town_parse(&t, q, n, &gch_alloc_std, &err);
        free(q);

        tap_ok(rc == 0, "book_until: parse with deadline %s", kinds[i]);
        if (rc != 0) {
            continue;
        }

        bad = 0;
        for (s = t->sessions; s < t->sessions + t->nsessions; s++) {
            if (s->book_until
                != gch_deadline_instant(&s->activity->deadline, s->date,
                                        t->units[s->unit].starts_min))
            {
                bad++;
            }
        }

        tap_ok(bad == 0 && t->nsessions > 100, "book_until: %zu sessions "
               "of deadline %s, %zu not their deadline", t->nsessions,
               kinds[i], bad);
        gch_town_free(t);
    }

    free(json);
}


static void
test_demo(void)
{
    int                    rc;
    char                  *json;
    size_t                 len;
    gch_town_t            *t;
    gch_error_t            err;
    const gch_family_t    *f;
    const gch_session_t   *s;
    const gch_activity_t  *a;
    gch_family_t           nf;

    json = tread_or_die("golden/town/00-example.json", &len);
    if (json == NULL) {
        return;
    }

    rc = gch_town_parse(&t, json, len, &gch_alloc_std, &err);
    free(json);
    tap_ok(rc == 0, "parse the TOWN-FILE.md example");
    if (rc != 0) {
        return;
    }

    /* 2021-07-07..2021-08-27, Mon-Fri, 3 units, 14 Jul excluded */
    tap_ok(t->nsessions == (size_t) (38 - 1) * 3, "example: %zu sessions "
           "(38 weekdays - 14 July, x 3 units)", t->nsessions);

    s = gch_town_session(t, "k-0707-m", 8);
    tap_ok(s && strcmp(s->label, "Danse latine") == 0 && s->places == 10
           && s->places_online == 5, "explicit session replaces the "
           "calendar cell (label, places, online half rounded down)");
    tap_ok(gch_town_session(t, "klub-8-12-20210707-MATIN", 24) == NULL,
           "the replaced calendar cell has no id");

    s = gch_town_session(t, "klub-8-12-20210708-REPAS", 24);
    tap_ok(s && s->places == 24 && s->places_online == 12
           && strcmp(s->label, "Repas") == 0, "calendar cell id, label, "
           "places");
    tap_ok(gch_town_session(t, "klub-8-12-20210714-MATIN", 24) == NULL,
           "no session on 14 July");
    tap_ok(gch_town_session(t, "klub-8-12-20210710-MATIN", 24) == NULL,
           "no session on a Saturday");

    tap_ok(t->units[0].quanta == 1 && t->units[1].quanta == 2
           && t->units[2].quanta == 4, "quanta of MATIN, REPAS, APM");

    a = gch_town_activity(t, "klub-8-12", 9);
    f = gch_town_family(t, "f-martin", 8);
    tap_ok(a && f && f->login && strcmp(f->login, "martin") == 0
           && f->password && strcmp(f->password, "secret-demo") == 0,
           "family look-up, login and password");
    tap_ok(a && a->opens_at == 1623081600
           && a->deadline.kind == GCH_DEADLINE_WORKING_DAYS
           && a->deadline.n == 9, "booking opens 2021-06-07 18:00 Paris");
    tap_ok(f && gch_family_child(f, "c-thais", 7) != NULL
           && gch_family_child(f, "c-thai", 6) == NULL
           && gch_town_family(t, "f-marti", 7) == NULL, "look-ups need the "
           "whole id");

    if (a && f) {
        nf = *f;
        tap_ok(gch_price_cents(a, &nf) == 900, "QF 650 > 600: 900 cents");
        nf.qf = 600;
        tap_ok(gch_price_cents(a, &nf) == 300, "QF 600: 300 cents");
        nf.qf = 0;
        tap_ok(gch_price_cents(a, &nf) == 300, "QF 0: 300 cents");
        nf.qf = -1;
        tap_ok(gch_price_cents(a, &nf) == 900, "QF missing: highest band");
    }

    gch_town_free(t);
}


static void
test_prices(void)
{
    int          rc, i;
    gch_town_t  *t;
    gch_error_t  err;
    gch_family_t f;

    static const char  json[] =
        "{\"town\":{\"name\":\"T\"},"
        "\"units\":[{\"code\":\"M\",\"starts\":\"08:00\",\"ends\":\"12:00\"}],"
        "\"activities\":[{\"id\":\"a\",\"name\":\"A\",\"prices\":["
        "{\"qf_max\":null,\"cents\":1200},{\"qf_max\":900,\"cents\":700},"
        "{\"qf_max\":300,\"cents\":100},{\"qf_max\":600,\"cents\":400}]},"
        "{\"id\":\"b\",\"name\":\"B\",\"prices\":["
        "{\"qf_max\":500,\"cents\":250},{\"qf_max\":200,\"cents\":50}]}]}";

    static const struct {
        int  act;
        int  qf;
        int  cents;
    } cases[] = {
        { 0, 0, 100 }, { 0, 300, 100 }, { 0, 301, 400 }, { 0, 600, 400 },
        { 0, 601, 700 }, { 0, 900, 700 }, { 0, 901, 1200 },
        { 0, 100000, 1200 }, { 0, -1, 1200 },
        { 1, 0, 50 }, { 1, 200, 50 }, { 1, 201, 250 }, { 1, 500, 250 },
        { 1, 501, 250 }, { 1, -1, 250 },
    };

    rc = gch_town_parse(&t, json, sizeof(json) - 1, &gch_alloc_std, &err);
    tap_ok(rc == 0 && t->activities[0].prices[3].qf_max == -1,
           "prices sorted, null band last");
    if (rc != 0) {
        tap_diag("%s", err.message);
        return;
    }

    memset(&f, 0, sizeof(f));

    for (i = 0; i < (int) (sizeof(cases) / sizeof(cases[0])); i++) {
        f.qf = cases[i].qf;
        tap_ok(gch_price_cents(&t->activities[cases[i].act], &f)
               == cases[i].cents, "price: activity %c, QF %d -> %d cents",
               'a' + cases[i].act, cases[i].qf, cases[i].cents);
    }

    gch_town_free(t);
}


/* a big town: 20,000 families, 3,600+ sessions */
static char *
tbig_town(size_t *len)
{
    char    *p, *q;
    size_t   i, cap;

    cap = 12 << 20;
    p = malloc(cap);
    q = p;

    q += sprintf(q, "{\"town\":{\"name\":\"Grande Ville\","
                 "\"timezone\":\"Europe/Paris\"},\"units\":["
                 "{\"code\":\"MATIN\",\"label\":\"Matin\",\"starts\":\"08:30\","
                 "\"ends\":\"12:00\"},{\"code\":\"REPAS\",\"label\":\"Repas\","
                 "\"starts\":\"12:00\",\"ends\":\"13:30\"},{\"code\":\"APM\","
                 "\"label\":\"Après-midi\",\"starts\":\"13:30\","
                 "\"ends\":\"17:30\"}],\"activities\":[");

    for (i = 0; i < 5; i++) {
        q += sprintf(q, "%s{\"id\":\"act-%zu\",\"name\":\"Accueil %zu\","
                     "\"age_min\":3,\"age_max\":12,\"booking_opens_at\":"
                     "\"2021-06-07T18:00:00+02:00\",\"deadline\":"
                     "{\"working_days\":9},\"prices\":[{\"qf_max\":600,"
                     "\"cents\":300},{\"qf_max\":null,\"cents\":900}],"
                     "\"calendar\":{\"from\":\"2021-01-04\",\"to\":"
                     "\"2021-12-31\",\"weekdays\":[1,2,3,4,5],\"units\":"
                     "[\"MATIN\",\"REPAS\",\"APM\"],\"places\":40}}",
                     i ? "," : "", i, i);
    }

    q += sprintf(q, "],\"families\":[");

    for (i = 0; i < 20000; i++) {
        q += sprintf(q, "%s{\"id\":\"f-%06zu\",\"login\":\"famille%zu\","
                     "\"password\":\"mot-de-passe-%zu\",\"qf\":%zu,"
                     "\"resident\":true,\"direct_debit\":false,"
                     "\"children\":[{\"id\":\"c-%06zu-1\",\"first_name\":"
                     "\"Thaïs\",\"birth_date\":\"2011-03-04\"},{\"id\":"
                     "\"c-%06zu-2\",\"first_name\":\"Léo\",\"birth_date\":"
                     "\"2014-10-12\"}],\"enrolments\":[{\"child_id\":"
                     "\"c-%06zu-1\",\"activity_id\":\"act-%zu\",\"from\":"
                     "\"2021-01-01\",\"to\":\"2021-12-31\",\"status\":"
                     "\"validee\"},{\"child_id\":\"c-%06zu-2\","
                     "\"activity_id\":\"act-%zu\",\"from\":\"2021-01-01\","
                     "\"to\":\"2021-12-31\",\"status\":\"demandee\"}]}",
                     i ? "," : "", i, i, i, i % 1500, i, i, i, i % 5, i,
                     (i + 1) % 5);
    }

    q += sprintf(q, "]}");
    *len = (size_t) (q - p);

    return p;
}


static void
test_big(void)
{
    int          rc;
    char        *json, *out;
    size_t       len, n;
    clock_t      c0, c1;
    double       ms;
    gch_town_t  *t;
    gch_error_t  err;

    json = tbig_town(&len);

    c0 = clock();
    rc = gch_town_parse(&t, json, len, &gch_alloc_std, &err);
    c1 = clock();
    ms = (double) (c1 - c0) * 1000.0 / CLOCKS_PER_SEC;

    tap_ok(rc == 0 && t->nfamilies == 20000 && t->nsessions > 3600,
           "big town: %.1f MB, %zu families, %zu sessions",
           (double) len / 1e6, rc == 0 ? t->nfamilies : 0,
           rc == 0 ? t->nsessions : 0);

    if (rc != 0) {
        tap_diag("%s", err.message);
        free(json);
        return;
    }

    if (tap_slow()) {
        tap_ok(1, "big town parsed in %.0f ms # SKIP timing under valgrind",
               ms);

    } else {
        tap_ok(ms < 1000, "big town parsed in %.0f ms (< 1000)", ms);
    }

    tap_ok(gch_town_family(t, "f-019999", 8) != NULL
           && gch_town_session(t, "act-4-20211231-APM", 18) != NULL,
           "big town look-ups");

    rc = gch_town_write(t, &out, &n, &gch_alloc_std);
    tap_ok(rc == 0 && n > 1000000, "big town written (%zu bytes)", n);

    if (rc == 0) {
        free(out);
    }

    gch_town_free(t);
    free(json);
}


/* town.id names every Redis key of the town (gch_keys.h) */
static void
test_town_keys(void)
{
    int          rc, n;
    char        *json, key[128];
    size_t       len;
    gch_town_t  *t;
    gch_error_t  err;

    json = tread_or_die("golden/town/36-town-id.json", &len);
    if (json == NULL) {
        return;
    }

    rc = gch_town_parse(&t, json, len, &gch_alloc_std, &err);
    free(json);
    tap_ok(rc == 0, "town with an id parses");
    if (rc != 0) {
        return;
    }

    n = gch_claim_key_of(key, sizeof(key), t, "c-thais",
                         t->sessions[0].date, 7);
    tap_ok(strcmp(t->id, "amberieu-en-bugey") == 0
           && strcmp(t->keys.f, "{amberieu-en-bugey}:f:") == 0
           && strcmp(t->keys.s, "{amberieu-en-bugey}:s:") == 0
           && strcmp(t->keys.inflight, "{amberieu-en-bugey}:inflight") == 0
           && strcmp(t->keys.stream, "{amberieu-en-bugey}:stream") == 0
           && t->keys.stream_len == strlen(t->keys.stream)
           && strcmp(t->keys.seq_demande,
                     "{amberieu-en-bugey}:seq:demande") == 0
           && strcmp(t->keys.catalogue_gen,
                     "{amberieu-en-bugey}:catalogue:gen") == 0
           && n == (int) strlen(key)
           && strcmp(key, "{amberieu-en-bugey}:c:c-thais:2021-07-07:q7") == 0,
           "town keys carry the town's hash tag (%s)", key);

    n = gch_claim_key_of(key, 40, t, "c-thais", t->sessions[0].date, 7);
    tap_ok(n == -1 && key[0] == '\0', "claim key too long for its buffer");

    gch_town_free(t);

    tap_ok(gch_town_id_ok("main", 4) && gch_town_id_ok("a-1", 3)
           && !gch_town_id_ok("", 0) && !gch_town_id_ok("A", 1)
           && !gch_town_id_ok("a_b", 3) && !gch_town_id_ok("a}b", 3)
           && gch_town_id_ok("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 40)
           && !gch_town_id_ok("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 41),
           "town ids: [a-z0-9-]{1,40}");
}


/*
 * A catalogue leaves out the date and unit of a session whose id gives
 * them back ("<activity>-<YYYYMMDD>-<UNIT>", issue 20): its parse takes
 * them from the id; an id of that form naming another date keeps its
 * own (golden/town/43: its output keeps that one's date and unit).
 */
static void
test_catalogue_id_cells(void)
{
    int                   rc, u;
    char                 *json, day[11];
    size_t                len;
    gch_day_t             d;
    gch_town_t           *t;
    gch_error_t           err;
    const gch_session_t  *a, *b, *c;

    json = tread_or_die("golden/town/43-catalogue-id-cells.json", &len);
    if (json == NULL) {
        return;
    }

    rc = gch_town_parse(&t, json, len, &gch_alloc_std, &err);
    free(json);
    tap_ok(rc == 0, "catalogue without dates parses");
    if (rc != 0) {
        return;
    }

    a = gch_town_session(t, "klub-8-12-20210707-MATIN", 24);
    b = gch_town_session(t, "klub-8-12-20210707-APM", 22);
    c = gch_town_session(t, "klub-8-12-20210708-MATIN", 24);
    day[0] = '\0';
    if (a) {
        gch_day_format(a->date, day);
    }
    tap_ok(a && b && c && strcmp(day, "2021-07-07") == 0
           && strcmp(t->units[a->unit].code, "MATIN") == 0
           && strcmp(a->label, "Matin") == 0
           && b->date == a->date && strcmp(t->units[b->unit].code, "APM") == 0
           && strcmp(b->label, "Danse") == 0
           && c->date == a->date + 2 && c->unit == a->unit,
           "catalogue: date and unit from the id (%s), or its own", day);

    tap_ok(gch_town_id_cell(t, "x-20210707-APM", 14, &d, &u) == 1
           && d == a->date && strcmp(t->units[u].code, "APM") == 0
           && !gch_town_id_cell(t, "-20210707-APM", 13, &d, &u)
           && !gch_town_id_cell(t, "x-20210230-APM", 14, &d, &u)
           && !gch_town_id_cell(t, "x-2021070-APM", 13, &d, &u)
           && !gch_town_id_cell(t, "x-20210707-SOIR", 15, &d, &u)
           && !gch_town_id_cell(t, "x_20210707-APM", 14, &d, &u),
           "ids that give a date and a unit, and ids that do not");

    gch_town_free(t);
}


void
test_town(void)
{
    tgolden_dir("golden/town", dump_town);
    test_town_keys();
    test_catalogue_id_cells();
    test_demo();
    test_book_until();
    test_prices();
    test_roundtrip("golden/town/00-example.json");
    test_roundtrip("golden/town/01-full.json");
    test_big();
}


/* failing allocator */

void
test_oom(void)
{
    int                rc;
    char              *json, *out;
    long               n, leaks, wrong;
    size_t             len, olen;
    tcount_t           c;
    gch_alloc_t        a;
    gch_town_t        *t;
    gch_error_t        err;
    gch_booking_req_t  r;

    static const char  body[] =
        "{\"items\":[{\"child_id\":\"c-th\\u00e4is\",\"session_id\":\"s1\"},"
        "{\"child_id\":\"c2\",\"session_id\":\"s2\"}]}";

    json = tread_or_die("golden/town/01-full.json", &len);
    if (json == NULL) {
        return;
    }

    leaks = 0;
    wrong = 0;

    for (n = 1; ; n++) {
        tcount_init(&c, &a, n);
        rc = gch_town_parse(&t, json, len, &a, &err);

        if (rc == GCH_OK) {
            gch_town_free(t);
            leaks += c.live != 0;
            break;
        }

        wrong += rc != GCH_ENOMEM || t != NULL
                 || strcmp(err.code, "internal") != 0;
        leaks += c.live != 0;
    }

    tap_ok(leaks == 0 && wrong == 0 && n > 1, "town_parse: each of the %ld "
           "allocations fails cleanly, no leak", n - 1);

    rc = gch_town_parse(&t, json, len, &gch_alloc_std, &err);
    free(json);

    if (rc != GCH_OK) {
        tap_ok(0, "town_parse for town_write");
        return;
    }

    leaks = 0;
    wrong = 0;

    for (n = 1; ; n++) {
        tcount_init(&c, &a, n);
        rc = gch_town_write(t, &out, &olen, &a);

        if (rc == GCH_OK) {
            a.free(a.ctx, out);
            leaks += c.live != 0;
            break;
        }

        wrong += rc != GCH_ENOMEM || out != NULL;
        leaks += c.live != 0;
    }

    gch_town_free(t);
    tap_ok(leaks == 0 && wrong == 0 && n > 1, "town_write: each of the %ld "
           "allocations fails cleanly, no leak", n - 1);

    leaks = 0;
    wrong = 0;

    for (n = 1; ; n++) {
        tcount_init(&c, &a, n);
        rc = gch_booking_req_parse(&r, body, sizeof(body) - 1, 200, &a,
                                   &err);

        if (rc == GCH_OK) {
            wrong += r.nitems != 2
                     || strcmp(r.items[0].child_id, "c-thäis") != 0;
            gch_booking_req_free(&r);
            leaks += c.live != 0;
            break;
        }

        wrong += rc != GCH_ENOMEM || r.priv != NULL;
        leaks += c.live != 0;
    }

    tap_ok(leaks == 0 && wrong == 0 && n > 1, "booking_req_parse: each of "
           "the %ld allocations fails cleanly, no leak", n - 1);
}
