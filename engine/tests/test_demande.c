/*
 * test_demande.c -- the compact demande (demande.c): what it renders, that
 * it decodes to what was encoded, that anything else is refused, and
 * that no allocation failure leaks.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"


void test_demande(void);


/* 2021-06-10T12:00:00.123+02:00 */
#define TDM_AT  1623319200123LL


static gch_dm_cell_t  tdm_cells[] = {
    { "c-thais", 7, "k-m", 3, GCH_REASON_NONE, 450, 0, 0,
      NULL, 0, NULL, 0, 0, NULL },
    { "c-l\xc3\xa9o \"x\"", 10, "unknown session", 15,
      GCH_REASON_UNKNOWN_SESSION, 0, 0, 0, NULL, 0, NULL, 0, 0, NULL },
    { "c-thais", 7, "k-r", 3, GCH_REASON_NOT_OPEN_YET, 0, 1623060000, 0,
      NULL, 0, NULL, 0, 0, NULL },
    { "c-thais", 7, "k-s", 3, GCH_REASON_FULL, 0, 0, 0, NULL, 0, NULL, 0, 0,
      NULL },
    { "c-thais", 7, "k-t", 3, GCH_REASON_NOT_OPEN_YET, 0, 1623060000, 0,
      NULL, 0, NULL, 0, 0, NULL },
    /* swaps: confirmed (released, billed), refused (kept) */
    { "c-thais", 7, "k-j", 3, GCH_REASON_NONE, 900, 0, 0,
      "b-0123456789abcdef0123", 22, "k-m", 3, 1, NULL },
    { "c-thais", 7, "k-u", 3, GCH_REASON_NOT_OPEN_YET, 0, 1623060000, 0,
      "b-1", 3, NULL, 0, 0, NULL },
};


/* issue 23: a cell refused full that joined the session's waiting list */
static gch_dm_cell_t  tdm_waiting[] = {
    { "c-thais", 7, "k-w", 3, GCH_REASON_FULL, 0, 0, 3, NULL, 0, NULL, 0, 0,
      NULL },
    { "c-leo", 5, "k-x", 3, GCH_REASON_FULL, 0, 0, 0, NULL, 0, NULL, 0, 0,
      NULL },
};


static void
tdm_sample(gch_dm_t *d, size_t ncells)
{
    memset(d, 0, sizeof(*d));
    d->number = 42;
    d->at_ms = TDM_AT;
    d->family = "f-martin";
    d->family_len = 8;
    d->key = "k 1";
    d->key_len = 3;
    d->agent = "";
    d->ncells = ncells;
    d->cells = tdm_cells;
}


static int
tdm_same(const gch_dm_t *x, const gch_dm_t *y)
{
    size_t  i;

    if (x->number != y->number || x->at_ms != y->at_ms
        || x->onsite != y->onsite || x->ncells != y->ncells
        || x->family_len != y->family_len || x->key_len != y->key_len
        || x->agent_len != y->agent_len
        || memcmp(x->family, y->family, x->family_len) != 0
        || memcmp(x->key, y->key, x->key_len) != 0
        || memcmp(x->agent, y->agent, x->agent_len) != 0)
    {
        return 0;
    }

    for (i = 0; i < x->ncells; i++) {
        const gch_dm_cell_t  *a = &x->cells[i], *b = &y->cells[i];

        if (a->reason != b->reason || a->child_len != b->child_len
            || a->session_len != b->session_len
            || memcmp(a->child, b->child, a->child_len) != 0
            || memcmp(a->session, b->session, a->session_len) != 0
            || (a->reason == GCH_REASON_NONE
                && a->price_cents != b->price_cents)
            || (a->reason == GCH_REASON_NOT_OPEN_YET
                && a->opens_at != b->opens_at)
            || a->replaces_len != b->replaces_len
            || (a->replaces_len
                && memcmp(a->replaces, b->replaces, a->replaces_len) != 0)
            || a->released_len != b->released_len
            || (a->released_len
                && memcmp(a->released, b->released, a->released_len) != 0)
            || (a->released_len && a->billed != b->billed))
        {
            return 0;
        }
    }

    return 1;
}


static void
test_dm_roundtrip(void)
{
    int        rc;
    char      *enc, *js, *items, bid[GCH_BOOKING_ID_MAX], want[1024];
    size_t     n, jn, in;
    gch_dm_t   d, back;

    tdm_sample(&d, 4);
    enc = gch_dm_encode(&d, &gch_alloc_std, &n);
    tap_ok(enc && strcmp(enc, "~1 42 1623319200123 w 8:f-martin 3:k 1 0: 4 "
                         "7:c-thais 3:k-m +450 "
                         "10:c-l\xc3\xa9o \"x\" 15:unknown session "
                         "-unknown_session "
                         "7:c-thais 3:k-r -not_open_yet@1623060000 "
                         "7:c-thais 3:k-s -full") == 0
           && n == strlen(enc),
           "dm: encoded: %s", enc ? enc : "(null)");

    rc = enc ? gch_dm_decode(&back, enc, n, &gch_alloc_std) : -99;
    tap_ok(rc == GCH_OK && tdm_same(&d, &back), "dm: decodes to what was "
           "encoded (ids with spaces, quotes, UTF-8)");

    gch_book_id(bid, "f-martin", "k 1", 3, "c-thais", "k-m");
    snprintf(want, sizeof(want),
             "{\"request_id\":\"D-000042\",\"status\":\"partielle\","
             "\"items\":[{\"child_id\":\"c-thais\",\"session_id\":\"k-m\","
             "\"status\":\"confirmed\",\"booking_id\":\"%s\","
             "\"price_cents\":450},{\"child_id\":\"c-l\xc3\xa9o \\\"x\\\"\","
             "\"session_id\":\"unknown session\",\"status\":\"refused\","
             "\"reason\":\"unknown_session\"},{\"child_id\":\"c-thais\","
             "\"session_id\":\"k-r\",\"status\":\"refused\",\"reason\":"
             "\"not_open_yet\",\"opens_at\":\"2021-06-07T12:00:00+02:00\"},"
             "{\"child_id\":\"c-thais\",\"session_id\":\"k-s\",\"status\":"
             "\"refused\",\"reason\":\"full\"}]}", bid);
    js = enc ? gch_dm_json(enc, n, GCH_DM_ANSWER, &gch_alloc_std, &jn)
             : NULL;
    tap_ok(js && strcmp(js, want) == 0 && jn == strlen(want),
           "dm: the answer, booking id derived: %s", js ? js : "(null)");
    free(js);

    js = enc ? gch_dm_json(enc, n, GCH_DM_DEMANDE, &gch_alloc_std, &jn)
             : NULL;
    tap_ok(js && strncmp(js, "{\"request_id\":\"D-000042\",\"number\":42,"
                         "\"type\":\"booking\",\"created_at\":"
                         "\"2021-06-10T12:00:00+02:00\",\"status\":"
                         "\"partielle\",\"reasons\":[\"unknown_session\","
                         "\"not_open_yet\",\"full\"],\"items\":[{", 170) == 0,
           "dm: the demande of GET /api/requests, each reason once: %s",
           js ? js : "(null)");
    free(js);

    js = enc ? gch_dm_json(enc, n, GCH_DM_ENTRY, &gch_alloc_std, &jn)
             : NULL;
    tap_ok(js && strncmp(js, "{\"type\":\"book\",\"number\":42,\"request_id\":"
                         "\"D-000042\",\"family_id\":\"f-martin\",\"idem\":"
                         "\"k 1\",\"at_ms\":1623319200123,\"status\":"
                         "\"partielle\",\"items\":[{", 139) == 0,
           "dm: the stream entry: %s", js ? js : "(null)");

    /* the items alone (the worker's COPY of demande.items): the entry's
     * to the byte, and its status */
    items = rc == GCH_OK ? gch_dm_render(&back, GCH_DM_ITEMS,
                                         &gch_alloc_std, &in)
                         : NULL;
    tap_ok(js && items && jn > in + 9 && js[jn - 1] == '}'
           && memcmp(js + jn - 1 - in - 9, ",\"items\":", 9) == 0
           && memcmp(js + jn - 1 - in, items, in) == 0
           && in == strlen(items)
           && strcmp(gch_dm_status(&back), "partielle") == 0,
           "dm: the items alone are the entry's: %s",
           items ? items : "(null)");
    free(items);
    free(js);

    /* a booking id the caller has is written as it is, not derived */
    items = NULL;
    if (rc == GCH_OK) {
        back.cells[0].bid = "b-given";
        items = gch_dm_render(&back, GCH_DM_ITEMS, &gch_alloc_std, &in);
        back.cells[0].bid = NULL;
    }
    tap_ok(items && strstr(items, "\"booking_id\":\"b-given\"")
           && strstr(items, bid) == NULL,
           "dm: a booking id given with the cell is rendered as given: %s",
           items ? items : "(null)");
    free(items);

    gch_dm_free(&back, &gch_alloc_std);
    free(enc);

    /* on site, with the agent; no demande number (the sold-out answer) */
    tdm_sample(&d, 1);
    d.onsite = 1;
    d.agent = "agent 1";
    d.agent_len = 7;
    enc = gch_dm_encode(&d, &gch_alloc_std, &n);
    js = enc ? gch_dm_json(enc, n, GCH_DM_ENTRY, &gch_alloc_std, &jn)
             : NULL;
    tap_ok(js && strstr(js, "\"status\":\"traitee_positivement\",\"agent\":"
                        "\"agent 1\",\"items\"")
           && strstr(js, "\"price_cents\":450,\"channel\":\"onsite\"}"),
           "dm: on site: the agent in the entry, the channel per cell: %s",
           js ? js : "(null)");
    free(js);
    free(enc);

    tdm_sample(&d, 1);
    d.number = -1;
    d.cells = &tdm_cells[3];
    js = gch_dm_render(&d, GCH_DM_ANSWER, &gch_alloc_std, &jn);
    tap_ok(js && strncmp(js, "{\"request_id\":null,\"status\":"
                         "\"traitee_negativement\",", 51) == 0,
           "dm: no number: request_id null: %s", js ? js : "(null)");
    free(js);

    /* JSON (records written before the compact form) is kept as it is */
    js = gch_dm_json("{\"a\":1}", 7, GCH_DM_ANSWER, &gch_alloc_std, &jn);
    tap_ok(js && strcmp(js, "{\"a\":1}") == 0 && jn == 7,
           "dm: a JSON record is rendered as it is");
    free(js);
}


static void
test_dm_refused(void)
{
    int          i, bad;
    char         buf[256];
    size_t       jn;
    gch_dm_t     d;
    char        *js;
    static const char  *no[] = {
        "",
        "~1",
        "~2 42 1 w 1:f 1:k 0: 0",
        "~1 42 1 w 1:f 1:k 0: 0 ",
        "~1 42 1 x 1:f 1:k 0: 0",
        "~1 42 1 w 2:f 1:k 0: 0",
        "~1 42 1 w 1:f 1:k 0: 1",
        "~1 42 1 w 1:f 1:k 0: 1 1:c 1:s",
        "~1 42 1 w 1:f 1:k 0: 1 1:c 1:s +",
        "~1 42 1 w 1:f 1:k 0: 1 1:c 1:s -nope",
        "~1 42 1 w 1:f 1:k 0: 1 1:c 1:s -full@3",
        "~1 42 1 w 1:f 1:k 0: 1 1:c 1:s -not_open_yet",
        "~1 42 1 w 1:f 1:k 0: 1 1:c 1:s -not_open_yet@",
        "~1 42 1 w 1:f 1:k 0: 1 1:c 1:s +1 ",
        "~1 42 1 w 1:f 1:k 0: 1 1:c 99:s +1",
        "~1 42 -1 w 1:f 1:k 0: 0",
        "~1 42 1 w -1:f 1:k 0: 0",
        "~1 4200000000000000000 1 w 1:f 1:k 0: 0",
        "~1 42 1 w 1:f 1:k 0: 99999999999999999",
        "~1 42 1 w 1:f 1:k 0: 1001",
        "~1 42 1 w 1:f 1:k 0: 3 1:c 1:s +1",
        "{\"a\"",
    };

    bad = 0;
    for (i = 0; i < (int) (sizeof(no) / sizeof(no[0])); i++) {
        if (gch_dm_decode(&d, no[i], strlen(no[i]), &gch_alloc_std)
            != GCH_EINVALID || d.cells != NULL)
        {
            if (no[i][0] != '{') {
                tap_diag("accepted: %s", no[i]);
                bad++;
            }
        }
    }

    tap_ok(bad == 0, "dm: %d malformed texts refused, nothing kept",
           (int) (sizeof(no) / sizeof(no[0])) - 1);

    js = gch_dm_json("~1 42", 5, GCH_DM_ANSWER, &gch_alloc_std, &jn);
    tap_ok(js == NULL && jn == 0, "dm: gch_dm_json of a malformed text: "
           "NULL, length 0 (not memory)");

    /* every prefix of a good text is refused */
    snprintf(buf, sizeof(buf), "~1 42 1 o 1:f 1:k 2:ag 2 1:c 1:s +1 "
             "1:c 1:t -not_open_yet@5");
    bad = gch_dm_decode(&d, buf, strlen(buf), &gch_alloc_std) != GCH_OK;
    gch_dm_free(&d, &gch_alloc_std);
    for (i = 0; i < (int) strlen(buf); i++) {
        if (gch_dm_decode(&d, buf, (size_t) i, &gch_alloc_std) == GCH_OK) {
            tap_diag("prefix %d accepted", i);
            gch_dm_free(&d, &gch_alloc_std);
            bad++;
        }
    }
    tap_ok(bad == 0, "dm: the whole text decodes, none of its %d prefixes",
           (int) strlen(buf));
}


static void
test_dm_swap(void)
{
    int        rc;
    char      *enc, *js;
    size_t     n, jn;
    gch_dm_t   d, back;

    memset(&d, 0, sizeof(d));
    tdm_sample(&d, 2);
    d.cells = tdm_cells + 5;
    enc = gch_dm_encode(&d, &gch_alloc_std, &n);
    tap_ok(enc && strcmp(enc, "~1 42 1623319200123 w 8:f-martin 3:k 1 0: 2 "
                         "7:c-thais 3:k-j +900 >22:b-0123456789abcdef0123 "
                         "3:k-m 1 "
                         "7:c-thais 3:k-u -not_open_yet@1623060000 >3:b-1")
           == 0, "dm: a swap's cells carry the booking replaced (%s)",
           enc ? enc : "NULL");
    rc = enc ? gch_dm_decode(&back, enc, n, &gch_alloc_std) : -1;
    tap_ok(rc == GCH_OK && tdm_same(&d, &back),
           "dm: a swap's cells decode to what was encoded");
    if (rc == GCH_OK) {
        gch_dm_free(&back, &gch_alloc_std);
    }

    js = enc ? gch_dm_json(enc, n, GCH_DM_ENTRY, &gch_alloc_std, &jn) : NULL;
    tap_ok(js && strstr(js, "\"replaces\":\"b-0123456789abcdef0123\","
                            "\"released\":{\"booking_id\":"
                            "\"b-0123456789abcdef0123\",\"session_id\":"
                            "\"k-m\",\"billed\":true}")
           && strstr(js, "\"replaces\":\"b-1\",\"kept\":true"),
           "dm: the stream entry names the released booking, the refused "
           "swap the kept one");
    free(js);
    free(enc);

    /* a truncated swap is not a demande */
    rc = gch_dm_decode(&back, "~1 1 0 w 0: 0: 0: 1 1:c 1:s +1 >", 32,
                       &gch_alloc_std);
    tap_ok(rc == GCH_EINVALID, "dm: a swap without its booking is refused");
}


static void
test_dm_oom(void)
{
    int          rc, leaks, wrong;
    long         k;
    char        *enc, *js;
    size_t       n, jn;
    gch_dm_t     d, back;
    tcount_t     c;
    gch_alloc_t  a;

    tdm_sample(&d, 5);
    enc = gch_dm_encode(&d, &gch_alloc_std, &n);
    leaks = wrong = 0;

    for (k = 1; k < 40; k++) {
        tcount_init(&c, &a, k);
        js = gch_dm_json(enc, n, GCH_DM_DEMANDE, &a, &jn);
        if (js == NULL && c.failed && jn != 1) {
            wrong++;
        }
        if (js) {
            a.free(a.ctx, js);
        }
        rc = gch_dm_decode(&back, enc, n, &a);
        if (rc == GCH_OK) {
            gch_dm_free(&back, &a);
        } else if (rc != GCH_ENOMEM) {
            wrong++;
        }
        js = gch_dm_encode(&d, &a, &jn);
        if (js) {
            a.free(a.ctx, js);
        }
        leaks += (c.live != 0);
    }

    tap_ok(leaks == 0 && wrong == 0, "dm oom: every allocation fails cleanly "
           "(%d leaks, %d wrong)", leaks, wrong);
    free(enc);
}


static void
test_dm_planning(void)
{
    int                 i, bad;
    char               *enc, *js;
    size_t              n, jn;
    gch_dm_planning_t   e, back;
    static const char  *no[] = {
        "~p 1:c 1:s 1 2", "~p 1:c 1:s 1 2 x", "~p 1:c 1:s 1 2 w ",
        "~p 2:c 1:s 1 2 w", "~p 1:c 1:s 1 -2 w", "~p 1:c 1:s 01 2 w",
        "~x 1:c 1:s 1 2 w", "~p 1:c 1:s 1 2 3 w", "",
    };

    memset(&e, 0, sizeof(e));
    e.child = "c-thais";
    e.child_len = 7;
    e.session = "k m";
    e.session_len = 3;
    e.price_cents = 450;
    e.number = 42;
    e.onsite = 1;

    enc = gch_dm_planning_encode(&e, &gch_alloc_std, &n);
    tap_ok(enc && strcmp(enc, "~p 7:c-thais 3:k m 450 42 o")
                  == 0
           && gch_dm_planning_decode(&back, enc, n) == GCH_OK
           && back.child_len == 7 && memcmp(back.child, "c-thais", 7) == 0
           && back.session_len == 3 && back.price_cents == 450
           && back.number == 42 && back.onsite,
           "planning entry: encoded, decoded back: %s", enc ? enc : "(null)");

    js = enc ? gch_dm_planning_json(enc, n, &gch_alloc_std, &jn) : NULL;
    tap_ok(js && strcmp(js, "{\"child_id\":\"c-thais\",\"session_id\":"
                        "\"k m\",\"price_cents\":450,\"request_id\":"
                        "\"D-000042\",\"channel\":\"onsite\"}") == 0,
           "planning entry: its JSON: %s", js ? js : "(null)");
    free(js);
    free(enc);

    bad = 0;
    for (i = 0; i < (int) (sizeof(no) / sizeof(no[0])); i++) {
        if (gch_dm_planning_decode(&back, no[i], strlen(no[i]))
            != GCH_EINVALID)
        {
            tap_diag("accepted: %s", no[i]);
            bad++;
        }
    }

    js = gch_dm_planning_json("{\"x\":1}", 7, &gch_alloc_std, &jn);
    tap_ok(bad == 0 && js && strcmp(js, "{\"x\":1}") == 0,
           "planning entry: %d malformed refused, JSON kept as it is",
           (int) (sizeof(no) / sizeof(no[0])));
    free(js);
}


static void
test_dm_waitlisted(void)
{
    int          i, bad;
    char        *enc, *js;
    size_t       n, jn;
    gch_dm_t     d, back;
    static const char  *no[] = {
        "~1 42 1 w 1:f 1:k 0: 1 1:c 1:s -full#",
        "~1 42 1 w 1:f 1:k 0: 1 1:c 1:s -full#0",
        "~1 42 1 w 1:f 1:k 0: 1 1:c 1:s -full#-2",
        "~1 42 1 w 1:f 1:k 0: 1 1:c 1:s -full#02",
        "~1 42 1 w 1:f 1:k 0: 1 1:c 1:s -conflict#2",
        "~1 42 1 w 1:f 1:k 0: 1 1:c 1:s +1#2",
        "~1 42 1 w 1:f 1:k 0: 1 1:c 1:s -full#2#2",
    };

    tdm_sample(&d, 2);
    d.cells = tdm_waiting;
    enc = gch_dm_encode(&d, &gch_alloc_std, &n);
    tap_ok(enc && strcmp(enc, "~1 42 1623319200123 w 8:f-martin 3:k 1 0: 2 "
                         "7:c-thais 3:k-w -full#3 5:c-leo 3:k-x -full") == 0,
           "dm: a place on the waiting list is -full#<position>: %s",
           enc ? enc : "(null)");

    back.cells = NULL;
    tap_ok(enc && gch_dm_decode(&back, enc, n, &gch_alloc_std) == GCH_OK
           && back.cells[0].position == 3 && back.cells[1].position == 0,
           "dm: the position decodes back");
    gch_dm_free(&back, &gch_alloc_std);

    js = enc ? gch_dm_json(enc, n, GCH_DM_ANSWER, &gch_alloc_std, &jn)
             : NULL;
    tap_ok(js && strstr(js, "{\"child_id\":\"c-thais\",\"session_id\":"
                        "\"k-w\",\"status\":\"waitlisted\",\"reason\":"
                        "\"full\",\"position\":3}")
           && strstr(js, "\"session_id\":\"k-x\",\"status\":\"refused\","
                     "\"reason\":\"full\"}"),
           "dm: the answer says waitlisted with the position: %s",
           js ? js : "(null)");
    free(js);
    free(enc);

    bad = 0;
    for (i = 0; i < (int) (sizeof(no) / sizeof(no[0])); i++) {
        if (gch_dm_decode(&d, no[i], strlen(no[i]), &gch_alloc_std)
            != GCH_EINVALID)
        {
            tap_diag("accepted: %s", no[i]);
            bad++;
        }
    }
    tap_ok(bad == 0, "dm: a position only after full, > 0, once");
}


void
test_demande(void)
{
    test_dm_roundtrip();
    test_dm_swap();
    test_dm_waitlisted();
    test_dm_refused();
    test_dm_oom();
    test_dm_planning();
}
