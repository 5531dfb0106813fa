/*
 * fuzz_common.h -- a counting allocator shared by the fuzz harnesses: the
 * engine must release everything it takes, on success and on every error.
 */

#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stdint.h>
#include <stdlib.h>

#include "gch.h"


static long  fuzz_live;


static void *
fuzz_malloc(void *ctx, size_t n)
{
    void  *p;

    (void) ctx;
    p = malloc(n ? n : 1);
    if (p) {
        fuzz_live++;
    }
    return p;
}


static void
fuzz_free(void *ctx, void *p)
{
    (void) ctx;
    if (p) {
        fuzz_live--;
        free(p);
    }
}


static gch_alloc_t  fuzz_alloc = { fuzz_malloc, fuzz_free, NULL };


static void
fuzz_count_reset(void)
{
    fuzz_live = 0;
}


static void
fuzz_count_check(void)
{
    if (fuzz_live != 0) {
        abort();                         /* leak or double free */
    }
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif /* FUZZ_COMMON_H */
