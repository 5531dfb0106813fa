/*
 * tap.c -- the engine tests' harness (see tap.h) and main().
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"


static int  tap_n;
static int  tap_failed;


void
tap_ok(int cond, const char *fmt, ...)
{
    va_list  ap;

    tap_n++;
    printf("%s %d - ", cond ? "ok" : "not ok", tap_n);

    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);

    printf("\n");

    if (!cond) {
        tap_failed++;
    }
}


void
tap_diag(const char *fmt, ...)
{
    va_list  ap;

    printf("# ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}


int
tap_done(void)
{
    printf("1..%d\n", tap_n);

    if (tap_failed) {
        fprintf(stderr, "%d of %d engine tests failed\n", tap_failed, tap_n);
    }

    return tap_failed ? 1 : 0;
}


int
tap_slow(void)
{
    const char  *s = getenv("GCH_TEST_SLOW");

    return s && *s && strcmp(s, "0") != 0;
}


static void *
tcount_alloc(void *ctx, size_t size)
{
    void      *p;
    tcount_t  *c = ctx;

    c->calls++;

    if (c->fail_at && c->calls == c->fail_at) {
        c->failed++;
        return NULL;
    }

    p = malloc(size);
    if (p) {
        c->live++;
    }

    return p;
}


static void
tcount_free(void *ctx, void *p)
{
    tcount_t  *c = ctx;

    if (p) {
        c->live--;
        free(p);
    }
}


void
tcount_init(tcount_t *c, gch_alloc_t *a, long fail_at)
{
    memset(c, 0, sizeof(*c));
    c->fail_at = fail_at;

    a->alloc = tcount_alloc;
    a->free = tcount_free;
    a->ctx = c;
}


char *
tread(const char *path, size_t *len)
{
    long   n;
    char  *p;
    FILE  *f;

    f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }

    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);

    p = malloc((size_t) n + 1);
    if (p == NULL || fread(p, 1, (size_t) n, f) != (size_t) n) {
        free(p);
        fclose(f);
        return NULL;
    }

    fclose(f);
    p[n] = '\0';
    *len = (size_t) n;

    return p;
}


void
tgolden(const char *expected, const char *got, const char *name)
{
    char        *want;
    size_t       n;
    FILE        *f;
    const char  *up = getenv("GCH_GOLDEN_UPDATE");

    if (up && strcmp(up, "1") == 0) {
        f = fopen(expected, "wb");
        if (f) {
            fputs(got, f);
            fclose(f);
        }
    }

    want = tread(expected, &n);

    tap_ok(want != NULL && strcmp(want, got) == 0, "golden %s", name);

    if (want == NULL) {
        tap_diag("missing %s; got: %s", expected, got);

    } else if (strcmp(want, got) != 0) {
        tap_diag("expected: %s", want);
        tap_diag("got:      %s", got);
    }

    free(want);
}


void test_book(void);
void test_cancel(void);
void test_render(void);
void test_sniff(void);
void test_sepa(void);
void test_throttle(void);
void test_jsonsuite(void);
void test_demande(void);
void test_cluster(void);
void test_waitlist(void);
void test_draw(void);


int
main(void)
{
    test_calendar();
    test_token();
    test_request();
    test_town();
    test_oom();
    test_book();
    test_cancel();
    test_render();
    test_sniff();
    test_sepa();
    test_throttle();
    test_jsonsuite();
    test_demande();
    test_cluster();
    test_waitlist();
    test_draw();

    return tap_done();
}
