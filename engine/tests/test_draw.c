/*
 * test_draw.c -- an opening by draw (issue 23) without Redis: the town
 * file's "opening" (parsed, refused, written back), where an activity
 * stands at an instant, the public order (ranks from the seed, a
 * family's cells together in its request order), the entries' field and
 * value, and the booking plan's outcomes (entered in the window, held
 * after the opening until the draw is decided, decided by the draw).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"


#define TD_SEED  "00112233445566778899aabbccddeeff"

/* 2030-06-07T10:00:00Z entries, 2030-06-07T16:00:00Z opening */
#define TD_FROM  1907056800LL
#define TD_OPENS 1907078400LL

static const char  td_town[] =
    "{\"town\":{\"name\":\"T\",\"timezone\":\"Europe/Paris\"},"
    "\"units\":[{\"code\":\"M\",\"starts\":\"08:30\",\"ends\":\"12:00\"}],"
    "\"activities\":[{\"id\":\"d\",\"name\":\"D\","
    "\"booking_opens_at\":\"2030-06-07T18:00:00+02:00\","
    "\"opening\":{%s},"
    "\"prices\":[{\"qf_max\":null,\"cents\":100}],"
    "\"sessions\":[{\"id\":\"s1\",\"date\":\"2030-07-08\",\"unit\":\"M\","
    "\"places\":4}]},"
    "{\"id\":\"n\",\"name\":\"N\",\"prices\":[{\"qf_max\":null,"
    "\"cents\":100}],\"sessions\":[{\"id\":\"s2\",\"date\":\"2030-07-09\","
    "\"unit\":\"M\",\"places\":4}]}],"
    "\"families\":[{\"id\":\"f\",\"qf\":100,\"children\":[{\"id\":\"c\","
    "\"first_name\":\"C\",\"birth_date\":\"2022-01-01\"}],"
    "\"enrolments\":[{\"child_id\":\"c\",\"activity_id\":\"d\","
    "\"from\":\"2030-01-01\",\"to\":\"2030-12-31\","
    "\"status\":\"validee\"},{\"child_id\":\"c\",\"activity_id\":\"n\","
    "\"from\":\"2030-01-01\",\"to\":\"2030-12-31\","
    "\"status\":\"validee\"}]}]}";


#define TD_DRAW  "\"mode\":\"draw\"," \
                 "\"entries_from\":\"2030-06-07T12:00:00+02:00\""


/* td_town with its opening object's inside */
static gch_town_t *
td_parse(const char *extra, gch_error_t *err)
{
    char        *js;
    size_t       n;
    gch_town_t  *t;

    n = sizeof(td_town) + strlen(extra) + 1;
    js = malloc(n);
    snprintf(js, n, td_town, extra);

    t = NULL;
    memset(err, 0, sizeof(*err));
    if (gch_town_parse(&t, js, strlen(js), &gch_alloc_std, err) != GCH_OK) {
        t = NULL;
    }

    free(js);
    return t;
}


static void
td_town_file(void)
{
    char         *out;
    size_t        len;
    gch_town_t   *t, *t2;
    gch_error_t   err;
    const gch_activity_t  *a;

    t = td_parse(TD_DRAW ",\"seed\":\"" TD_SEED "\"", &err);
    tap_ok(t != NULL, "a draw activity parses: %s", err.message);
    if (t == NULL) {
        return;
    }

    a = &t->activities[0];
    tap_ok(a->draw && a->entries_from == TD_FROM && a->opens_at == TD_OPENS
           && a->draw_seed && strcmp(a->draw_seed, TD_SEED) == 0
           && !a->drawn, "its opening: draw, entries_from, seed");

    out = NULL;
    t2 = NULL;
    tap_ok(gch_town_write(t, &out, &len, &gch_alloc_std) == GCH_OK
           && strstr(out, "\"opening\":{\"mode\":\"draw\",\"entries_from\":"
                     "\"2030-06-07T12:00:00+02:00\",\"seed\":\"" TD_SEED
                     "\"}")
           && gch_town_parse(&t2, out, len, &gch_alloc_std, &err) == GCH_OK
           && t2->activities[0].draw
           && strcmp(t2->activities[0].draw_seed, TD_SEED) == 0,
           "the catalogue keeps the opening and its seed");
    if (t2) {
        gch_town_free(t2);
    }
    free(out);
    gch_town_free(t);

    t = td_parse(TD_DRAW ",\"drawn\":true", &err);
    tap_ok(t && t->activities[0].drawn, "\"drawn\": true is read");
    if (t) {
        gch_town_free(t);
    }

    t = td_parse(TD_DRAW ",\"seed\":\"00XYZ\"", &err);
    tap_ok(t == NULL && strstr(err.message, "opening.seed"),
           "a bad seed is refused: %s", err.message);

    t = td_parse(TD_DRAW ",\"seed\":\"00112233445566778899AABBCCDDEEFF\"",
                 &err);
    tap_ok(t == NULL && strstr(err.message, "opening.seed"),
           "an upper-case seed is refused: %s", err.message);

    t = td_parse(TD_DRAW ",\"mode\":\"draw\"", &err);
    tap_ok(t == NULL, "a duplicate key is refused: %s", err.message);
}


static void
td_refused(const char *opening, const char *path, const char *what)
{
    gch_town_t   *t;
    gch_error_t   err;

    t = td_parse(opening, &err);
    tap_ok(t == NULL && strstr(err.message, path),
           "%s is refused: %s", what, err.message);
    if (t) {
        gch_town_free(t);
    }
}


static void
td_phase(void)
{
    gch_activity_t  a;

    memset(&a, 0, sizeof(a));
    a.opens_at = TD_OPENS;
    a.entries_from = TD_FROM;

    tap_ok(gch_draw_phase(&a, TD_FROM * 1000) == GCH_DRAW_NOT_OPEN
           && gch_draw_phase(&a, TD_OPENS * 1000) == GCH_DRAW_OPEN,
           "first come: not open, then open");

    a.draw = 1;
    tap_ok(gch_draw_phase(&a, TD_FROM * 1000 - 1) == GCH_DRAW_NOT_OPEN
           && gch_draw_phase(&a, TD_FROM * 1000) == GCH_DRAW_ENTRIES
           && gch_draw_phase(&a, TD_OPENS * 1000 - 1) == GCH_DRAW_ENTRIES
           && gch_draw_phase(&a, TD_OPENS * 1000) == GCH_DRAW_HELD,
           "draw: not open, entries from entries_from, held at the opening");

    a.drawn = 1;
    tap_ok(gch_draw_phase(&a, TD_OPENS * 1000) == GCH_DRAW_OPEN,
           "draw decided: first come");

    a.opens_at = 0;
    tap_ok(gch_draw_phase(&a, 0) == GCH_DRAW_OPEN, "no opening: open");
}


static void
td_order(void)
{
    int               ok;
    char              rank[GCH_DRAW_RANK_LEN + 1];
    char              f[8][32];
    size_t            i;
    gch_draw_entry_t  e[8];
    static const char *want[] = {
        "c x s1", "b x s1", "b y s2", "b x s3", "d x s1", "a y s1",
        "a x s2", "a x s1"
    };

    /* the rank is SHA-256("<seed>:<family>"), as docs/rules.md says */
    gch_draw_rank(rank, TD_SEED, "f-martin");
    tap_ok(strcmp(rank, "9250d55b2f4f153bdc39a5ef406094058e5e936eb879eb2a"
                  "4200f1f58b2963ac") == 0, "rank of f-martin: %s", rank);

    /* c 0e8d.., b 7233.., d bda9.., a df70..; each family's cells by
     * at_ms then idx, whatever order they come in */
    memset(e, 0, sizeof(e));
    ok = 1;
    ok &= gch_draw_entry_parse(&e[0], strcpy(f[0], "a x s1"), "20 1 0") == 0;
    ok &= gch_draw_entry_parse(&e[1], strcpy(f[1], "b x s1"), "10 0 1") == 0;
    ok &= gch_draw_entry_parse(&e[2], strcpy(f[2], "a x s2"), "20 0 0") == 0;
    ok &= gch_draw_entry_parse(&e[3], strcpy(f[3], "d x s1"), "5 0 0") == 0;
    ok &= gch_draw_entry_parse(&e[4], strcpy(f[4], "b x s3"), "30 0 0") == 0;
    ok &= gch_draw_entry_parse(&e[5], strcpy(f[5], "c x s1"), "99 0 0") == 0;
    ok &= gch_draw_entry_parse(&e[6], strcpy(f[6], "a y s1"), "7 3 1") == 0;
    ok &= gch_draw_entry_parse(&e[7], strcpy(f[7], "b y s2"), "10 1 0") == 0;
    tap_ok(ok && strcmp(e[1].family, "b") == 0 && e[1].waitlist == 1
           && e[6].at_ms == 7 && e[6].idx == 3,
           "entries parse: field and value");

    gch_draw_order(e, 8, TD_SEED);

    ok = 1;
    for (i = 0; i < 8; i++) {
        char  got[32];

        snprintf(got, sizeof(got), "%s %s %s", e[i].family, e[i].child,
                 e[i].session);
        if (strcmp(got, want[i]) != 0) {
            tap_diag("order[%zu] = %s, want %s", i, got, want[i]);
            ok = 0;
        }
    }
    tap_ok(ok, "families by rank, each family's cells in its request order");
    tap_ok(strncmp(e[0].rank, "0e8d9d0c", 8) == 0
           && strcmp(e[1].rank, e[2].rank) == 0,
           "each entry carries its family's rank");

    ok = gch_draw_entry_parse(&e[0], strcpy(f[0], "a x"), "1 0 0") != 0
         && gch_draw_entry_parse(&e[0], strcpy(f[0], "a x s y"), "1 0 0") != 0
         && gch_draw_entry_parse(&e[0], strcpy(f[0], "a x s"), "1 0 2") != 0
         && gch_draw_entry_parse(&e[0], strcpy(f[0], "a x s"), "1 -1 0") != 0
         && gch_draw_entry_parse(&e[0], strcpy(f[0], "a  s"), "1 0 0") != 0;
    tap_ok(ok, "bad entries are refused");

    tap_ok(gch_draw_key(f[0], sizeof(f[0]), "klub") == 7
           && strcmp(f[0], "dr.klub") == 0
           && gch_draw_key(f[0], 4, "klub") == -1,
           "the decision's Idempotency-Key is dr.<activity>");
}


/* The plan's outcome of one item of f's child c on s1 at now (s). */
static gch_reason_t td_plan_body(const gch_town_t *t, long long now,
    int draw, const char *key, const char *body, int *sold);


/* Its sold-out shortcut says every session is full. */
static int
td_all_full(const gch_session_t *s, void *ctx)
{
    (void) s;
    (void) ctx;
    return 1;
}


static gch_reason_t
td_plan(const gch_town_t *t, long long now, int draw, const char *key)
{
    return td_plan_body(t, now, draw, key,
                        "{\"items\":[{\"child_id\":\"c\","
                        "\"session_id\":\"s1\"}]}", NULL);
}


static gch_reason_t
td_plan_body(const gch_town_t *t, long long now, int draw, const char *key,
    const char *body, int *sold)
{
    gch_reason_t        r;
    gch_book_t         *b;
    gch_book_in_t       in;
    gch_error_t         err;
    gch_booking_req_t   req;

    memset(&err, 0, sizeof(err));
    if (gch_booking_req_parse(&req, body, strlen(body), 10,
                              &gch_alloc_std, &err) != GCH_OK)
    {
        return GCH_REASON_COUNT;
    }

    memset(&in, 0, sizeof(in));
    in.town = t;
    in.family = gch_town_family(t, "f", 1);
    in.req = &req;
    in.now_ms = now * 1000;
    in.idem_key = key;
    in.idem_len = strlen(key);
    in.body = body;
    in.body_len = strlen(body);
    in.idem_ttl_s = 60;
    in.inflight_ttl_s = 60;
    in.draw = draw;

    r = GCH_REASON_COUNT;
    if (gch_book_plan(&b, &in, &gch_alloc_std, &err) == GCH_OK) {
        r = gch_book_cell_outcome(b, 0);
        if (sold) {
            *sold = gch_book_sold_out(b, td_all_full, NULL);
        }
        gch_book_free(b);
    }

    gch_booking_req_free(&req);
    return r;
}


static void
td_book(void)
{
    int           sold;
    gch_town_t   *t;
    gch_error_t   err;

    t = td_parse(TD_DRAW, &err);
    if (t == NULL) {
        tap_ok(0, "town: %s", err.message);
        return;
    }

    tap_ok(td_plan(t, TD_FROM - 1, 0, "k") == GCH_REASON_NOT_OPEN_YET,
           "before entries_from: not_open_yet");
    tap_ok(td_plan(t, TD_FROM, 0, "k") == GCH_REASON_ENTERED
           && td_plan(t, TD_OPENS - 1, 0, "k") == GCH_REASON_ENTERED,
           "in the window: entered");
    tap_ok(td_plan(t, TD_OPENS, 0, "k") == GCH_REASON_NOT_OPEN_YET
           && td_plan(t, TD_OPENS + 3600, 0, "k")
              == GCH_REASON_NOT_OPEN_YET,
           "from the opening until the draw is decided: held");
    tap_ok(td_plan(t, TD_OPENS, 1, "dr.d") == GCH_REASON_NONE,
           "the draw's own decision is planned");
    tap_ok(td_plan(t, TD_OPENS, 0, "wl.b-0.0") == GCH_REASON_NONE,
           "a waiting list's promotion is planned");

    /* an entered cell must reach Redis, even beside a cell the sold-out
     * cache would answer "full" at once */
    sold = -1;
    tap_ok(td_plan_body(t, TD_FROM, 0, "k",
                        "{\"items\":[{\"child_id\":\"c\",\"session_id\":"
                        "\"s1\"},{\"child_id\":\"c\",\"session_id\":"
                        "\"s2\"}]}", &sold) == GCH_REASON_ENTERED
           && sold == 0, "entered and sold out: to Redis");
    sold = -1;
    tap_ok(td_plan_body(t, TD_FROM, 0, "k",
                        "{\"items\":[{\"child_id\":\"c\",\"session_id\":"
                        "\"s2\"}]}", &sold) == GCH_REASON_NONE && sold == 1,
           "sold out alone: answered at once");

    t->activities[0].drawn = 1;
    tap_ok(td_plan(t, TD_OPENS, 0, "k") == GCH_REASON_NONE,
           "decided: first come, first served");

    gch_town_free(t);
}


void
test_draw(void)
{
    td_town_file();
    td_refused("\"mode\":\"lottery\"", "opening.mode", "an unknown mode");
    td_refused("\"mode\":\"draw\"", "opening.entries_from",
               "a draw without entries_from");
    td_refused("\"mode\":\"draw\",\"entries_from\":"
               "\"2030-06-07T18:00:00+02:00\"", "opening.entries_from",
               "entries_from not before the opening");
    td_refused("\"mode\":\"first_come\",\"entries_from\":"
               "\"2030-06-07T12:00:00+02:00\"", "opening",
               "first_come with a draw's fields");
    td_phase();
    td_order();
    td_book();
}
