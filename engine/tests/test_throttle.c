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
}
