/*
 * test_throttle.c -- the throttling policy (throttle.c): login attempts
 * per login and address, the address's hard limit, a family's budget.
 */

#include <stdio.h>
#include <string.h>

#include "tap.h"


typedef struct {
    long long   pair, addr, addr_ttl;
    int         action;
    long long   pause_s, retry_after_s;
    const char *what;
} tlogin_t;


static const tlogin_t tlogin[] = {
    {1, 1, 900, GCH_LOGIN_GO, 0, 0, "first attempt"},
    {4, 4, 900, GCH_LOGIN_GO, 0, 0, "fourth attempt: still free"},
    {5, 5, 900, GCH_LOGIN_PACE, 15, 0, "fifth: takes a 15 s pause slot"},
    {6, 6, 900, GCH_LOGIN_PACE, 30, 0, "sixth: 30 s"},
    {7, 7, 900, GCH_LOGIN_PACE, 60, 0, "seventh: 60 s (doubled)"},
    {10, 10, 900, GCH_LOGIN_PACE, 480, 0, "tenth: 480 s"},
    {11, 11, 900, GCH_LOGIN_PACE, 900, 0, "eleventh: capped at 900 s"},
    {1000000, 3, 900, GCH_LOGIN_PACE, 900, 0, "huge count: still 900 s"},
    {1, 50, 900, GCH_LOGIN_GO, 0, 0, "address at its limit: goes"},
    {1, 51, 321, GCH_LOGIN_REFUSE, 0, 321,
        "address past it: refused, "
        "Retry-After = the counter's TTL"},
    {9, 51, -1, GCH_LOGIN_REFUSE, 0, 900, "no TTL: the whole window"},
};


void
test_throttle(void)
{
    size_t              i;
    gch_login_counts_t  c;
    gch_login_verdict_t v;

    for (i = 0; i < sizeof(tlogin) / sizeof(tlogin[0]); i++) {
        c.pair = tlogin[i].pair;
        c.addr = tlogin[i].addr;
        c.addr_ttl = tlogin[i].addr_ttl;
        gch_login_throttle(&c, &v);
        tap_ok(v.action == tlogin[i].action && v.pause_s == tlogin[i].pause_s &&
                   v.retry_after_s == tlogin[i].retry_after_s,
            "login_throttle: %s (%d %lld %lld)", tlogin[i].what, v.action,
            v.pause_s, v.retry_after_s);
    }

    c.pair = 7;
    c.addr = 7;
    c.addr_ttl = 900;
    gch_login_throttle(&c, &v);
    tap_ok(gch_login_paused(&v, 42) == 42 && gch_login_paused(&v, -2) == 60 &&
               gch_login_paused(&v, 0) == 60,
        "login_paused: the slot's TTL, else the pause");

    tap_ok(gch_family_cost(1) == 11 && gch_family_cost(200) == 210,
        "family_cost: 10 per request plus its items");
    tap_ok(gch_family_throttle(GCH_FAMILY_BUDGET, 10) == 0 &&
               gch_family_throttle(11, 60) == 0,
        "family_throttle: within the budget goes on");
    tap_ok(gch_family_throttle(GCH_FAMILY_BUDGET + 1, 17) == 17 &&
               gch_family_throttle(GCH_FAMILY_BUDGET + 1, -1) ==
                   GCH_FAMILY_WINDOW_S,
        "family_throttle: past it, Retry-After = TTL or the window");
    /* a parent's opening: 20 requests of 60 cells in a minute */
    tap_ok(gch_family_throttle(20 * gch_family_cost(60), 60) == 0,
        "family_throttle: 20 requests of 60 cells never bother");
    /* the finding: 100 requests of 200 items */
    tap_ok(gch_family_throttle(100 * gch_family_cost(200), 60) > 0,
        "family_throttle: 100 requests of 200 items are stopped");

    /* the window, kept by the caller (the module's shared memory) */
    {
        gch_family_budget_t  fb;
        long long            ra;
        int                  i, n;

        memset(&fb, 0, sizeof(fb));
        tap_ok(gch_family_window_over(&fb, 1000),
            "family_window_over: no window yet");

        /* 545 requests of 1 item (11 each) fit, the 546th is refused */
        for (n = 0, ra = 0; n < 1000 && ra == 0; n++) {
            ra = gch_family_charge(&fb, 1, 1000000 + n * 10);
        }
        tap_ok(n == GCH_FAMILY_BUDGET / 11 + 1 && ra == 55
                   && fb.start_ms == 1000000,
            "family_charge: past the budget after %d requests, Retry-After "
            "%lld = the window left from its first request, rounded up",
            n, ra);

        /* refused requests count too: still refused to the window's end */
        tap_ok(gch_family_charge(&fb, 1, 1000000 + 59001) == 1
                   && gch_family_charge(&fb, 0, 1000000 + 59999) == 1,
            "family_charge: refused to the window's last millisecond, "
            "Retry-After >= 1");
        tap_ok(!gch_family_window_over(&fb, 1000000 + 59999)
                   && gch_family_window_over(&fb, 1000000 + 60000),
            "family_window_over: after 60 s from the first request");
        tap_ok(gch_family_charge(&fb, 3, 1000000 + 60000) == 0
                   && fb.spent == 13 && fb.start_ms == 1000000 + 60000,
            "family_charge: a new window starts with the next request");

        /* one request bigger than the whole budget */
        memset(&fb, 0, sizeof(fb));
        tap_ok(gch_family_charge(&fb, GCH_FAMILY_BUDGET, 5000) == 60,
            "family_charge: a request over the budget alone is refused");

        /* the clock went back: never more than the window */
        memset(&fb, 0, sizeof(fb));
        for (i = 0; i < 600; i++) {
            (void) gch_family_charge(&fb, 1, 500000);
        }
        tap_ok(gch_family_charge(&fb, 1, 400000) == GCH_FAMILY_WINDOW_S,
            "family_charge: a clock gone back, Retry-After the window");
    }
}
