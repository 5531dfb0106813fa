/*
 * buf.c -- a growable byte buffer, the one the back-end programs share.
 *
 * An e-mail being composed (worker/mail.c), the JSON array of a persister
 * batch (worker/persist.c), a PostgreSQL array literal (ctl/load.c), the
 * payment provider's answer (office/payment.c).  The bytes are malloc'ed
 * and always NUL-terminated once something was added; a failed allocation
 * is sticky, so that a run of appends is checked once at the end.
 */

#include <stdlib.h>
#include <string.h>

#include "gchb.h"


#define GCHB_BUF_FIRST  4096


/* See gchb.h. */
int
gchb_buf_reserve(gchb_buf_t *b, size_t n)
{
    char    *nd;
    size_t   cap;

    if (b->failed) {
        return -1;
    }

    if (b->len + n + 1 > b->cap) {
        cap = b->cap ? b->cap : GCHB_BUF_FIRST;
        while (b->len + n + 1 > cap) {
            cap *= 2;
        }
        nd = realloc(b->data, cap);
        if (nd == NULL) {
            b->failed = 1;
            return -1;
        }
        b->data = nd;
        b->cap = cap;
    }

    return 0;
}


/* See gchb.h. */
int
gchb_buf_add(gchb_buf_t *b, const char *s, size_t n)
{
    if (gchb_buf_reserve(b, n) != 0) {
        return -1;
    }

    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';

    return 0;
}


/* See gchb.h. */
void
gchb_buf_free(gchb_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->failed = 0;
}
