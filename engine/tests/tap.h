/*
 * tap.h -- the engine tests' harness: TAP output, a counting allocator
 * that can fail its Nth call, file reading and golden-file comparison.
 *
 * Every suite is a function called from main.c; the binary prints
 * "ok N - ..." / "not ok N - ..." and "1..N", and exits non-zero if any
 * case failed.  Run from engine/tests (golden files are relative).
 */

#ifndef GCH_TAP_H
#define GCH_TAP_H

#include <stddef.h>

#include "gch.h"


void tap_ok(int cond, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int tap_done(void);
int tap_slow(void);             /* under valgrind: skip timing checks */


typedef struct {
    long     calls;
    long     live;
    long     fail_at;           /* fail the fail_at-th call; 0: never */
    long     failed;
} tcount_t;

void tcount_init(tcount_t *c, gch_alloc_t *a, long fail_at);

/* The whole file + NUL, from malloc; NULL if unreadable. */
char *tread(const char *path, size_t *len);
/* Compares got with the file expected (or writes it when the environment
 * has GCH_GOLDEN_UPDATE=1); reports one TAP case. */
void tgolden(const char *expected, const char *got, const char *name);

void test_calendar(void);
void test_token(void);
void test_request(void);
void test_town(void);
void test_oom(void);

#endif /* GCH_TAP_H */
