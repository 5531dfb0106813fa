/*
 * throttle.c -- the throttling policy: login attempts and the bookings one
 * family may make the system keep.
 *
 * The nginx module keeps the login counters in Redis (INCR then EXPIRE NX,
 * before the costly part: the argon2id check) and a family's booking
 * budget in its shared memory (before the booking saga's step one), and
 * asks these pure functions what to answer; the numbers are in gch.h and
 * explained in docs/reliability.md ("Security").  No allocation, no I/O,
 * no clock: the caller passes the time.
 */

#include "gch.h"


/* The pause slot the attempt that counts n must take, in seconds. */
static long long
gch_login_pause(long long n)
{
    long long shift;

    shift = n - GCH_LOGIN_FREE;

    if (shift < 0) {
        shift = 0;
    }

    if (shift >= 16) {
        return GCH_LOGIN_PAUSE_MAX_S;
    }

    return (GCH_LOGIN_PAUSE_S << shift) < GCH_LOGIN_PAUSE_MAX_S
               ? GCH_LOGIN_PAUSE_S << shift
               : GCH_LOGIN_PAUSE_MAX_S;
}


/* See gch.h. */
void
gch_login_throttle(const gch_login_counts_t *c, gch_login_verdict_t *v)
{
    v->action = GCH_LOGIN_GO;
    v->pause_s = 0;
    v->retry_after_s = 0;

    if (c->addr > GCH_LOGIN_ADDR_MAX) {
        v->action = GCH_LOGIN_REFUSE;
        v->retry_after_s =
            c->addr_ttl > 0 ? c->addr_ttl : GCH_LOGIN_ADDR_WINDOW_S;
        return;
    }

    if (c->pair >= GCH_LOGIN_FREE) {
        v->action = GCH_LOGIN_PACE;
        v->pause_s = gch_login_pause(c->pair);
    }
}


/* See gch.h. */
long long
gch_login_paused(const gch_login_verdict_t *v, long long ttl)
{
    if (ttl > 0) {
        return ttl;
    }

    return v->pause_s > 0 ? v->pause_s : 1;
}


/* See gch.h. */
long long
gch_family_cost(size_t nitems)
{
    return GCH_FAMILY_REQUEST_COST + (long long) nitems;
}


/* See gch.h. */
long long
gch_family_throttle(long long spent, long long ttl)
{
    if (spent <= GCH_FAMILY_BUDGET) {
        return 0;
    }

    return ttl > 0 ? ttl : GCH_FAMILY_WINDOW_S;
}


/* See gch.h. */
int
gch_family_window_over(const gch_family_budget_t *fb, int64_t now_ms)
{
    return fb->start_ms == 0
           || now_ms >= fb->start_ms + GCH_FAMILY_WINDOW_S * 1000;
}


/* See gch.h. */
long long
gch_family_charge(gch_family_budget_t *fb, size_t nitems, int64_t now_ms)
{
    int64_t  left_ms;

    if (gch_family_window_over(fb, now_ms)) {
        fb->start_ms = now_ms > 0 ? now_ms : 1;
        fb->spent = 0;
    }

    fb->spent += gch_family_cost(nitems);

    left_ms = fb->start_ms + GCH_FAMILY_WINDOW_S * 1000 - now_ms;

    if (left_ms > GCH_FAMILY_WINDOW_S * 1000) {
        left_ms = GCH_FAMILY_WINDOW_S * 1000;    /* the clock went back */
    }

    return gch_family_throttle(fb->spent, (left_ms + 999) / 1000);
}
