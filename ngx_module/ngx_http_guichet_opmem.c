/*
 * ngx_http_guichet_opmem.c -- an op's memory: the block it heads, what
 * the op and its engine objects allocate from it (op->alloc), and the
 * worker's spare blocks.  ngx_http_guichet_op.c makes and frees ops.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_guichet_api.h"


/*
 * An op's memory.  The op heads a block of NGX_HTTP_GUICHET_OP_BLOCK
 * bytes whose rest is handed out, 16-byte aligned, to what the op and its
 * engine objects allocate through op->alloc (the body, the booking's
 * request and saga): freeing such a piece gives back only the most recent
 * one, the block goes back whole with its op.  What does not fit comes
 * from the heap, on the op's list until freed, by the op at the latest.
 * A worker keeps up to NGX_HTTP_GUICHET_OP_SPARE freed blocks for its
 * next ops: a booking calls malloc only for what overflows, where glibc's
 * malloc and free of the op and of the engine's dozens of pieces were a
 * tenth of the module's CPU (issue 20, docs/benchmarks.md).  Under
 * AddressSanitizer every piece is its own heap allocation, so that its
 * checks still see each one.
 */

#define NGX_HTTP_GUICHET_OP_BLOCK  32768
#define NGX_HTTP_GUICHET_OP_SPARE  128
#define NGX_HTTP_GUICHET_OP_ALIGN  16

#if defined(__SANITIZE_ADDRESS__)
#define NGX_HTTP_GUICHET_OP_POOL   0
#else
#define NGX_HTTP_GUICHET_OP_POOL   1
#endif


#if (NGX_HTTP_GUICHET_OP_POOL)
static void        *ngx_http_guichet_op_spare;      /* a list of blocks */
static ngx_uint_t   ngx_http_guichet_op_nspare;
#endif


ngx_http_guichet_op_t *
ngx_http_guichet_op_block(ngx_log_t *log)
{
    ngx_http_guichet_op_t  *op;

#if (NGX_HTTP_GUICHET_OP_POOL)

    if (ngx_http_guichet_op_spare) {
        op = ngx_http_guichet_op_spare;
        ngx_http_guichet_op_spare = *(void **) op;
        ngx_http_guichet_op_nspare--;

    } else {
        op = ngx_alloc(NGX_HTTP_GUICHET_OP_BLOCK, log);
        if (op == NULL) {
            return NULL;
        }
    }

    ngx_memzero(op, sizeof(ngx_http_guichet_op_t));
    op->mem_last = (u_char *) op + ngx_align(sizeof(ngx_http_guichet_op_t),
                                             NGX_HTTP_GUICHET_OP_ALIGN);
#else

    op = ngx_calloc(sizeof(ngx_http_guichet_op_t), log);
    if (op == NULL) {
        return NULL;
    }

#endif

    op->alloc.alloc = ngx_http_guichet_op_alloc;
    op->alloc.free = ngx_http_guichet_op_mfree;
    op->alloc.ctx = op;

    return op;
}


void
ngx_http_guichet_op_release(ngx_http_guichet_op_t *op)
{
    ngx_http_guichet_big_t  *b, *next;

    for (b = op->big; b; b = next) {
        next = b->next;
        ngx_free(b);
    }

#if (NGX_HTTP_GUICHET_OP_POOL)

    if (ngx_http_guichet_op_nspare < NGX_HTTP_GUICHET_OP_SPARE) {
        *(void **) op = ngx_http_guichet_op_spare;
        ngx_http_guichet_op_spare = op;
        ngx_http_guichet_op_nspare++;
        return;
    }

#endif

    ngx_free(op);
}


/* The op's gch_alloc_t (op->alloc): ctx is the op. */
void *
ngx_http_guichet_op_alloc(void *ctx, size_t size)
{
    ngx_http_guichet_op_t  *op = ctx;

    ngx_http_guichet_big_t  *b;
#if (NGX_HTTP_GUICHET_OP_POOL)
    u_char                  *p;
    size_t                   n;

    n = ngx_align(size ? size : 1, NGX_HTTP_GUICHET_OP_ALIGN);

    if (n <= (size_t) ((u_char *) op + NGX_HTTP_GUICHET_OP_BLOCK
                       - op->mem_last))
    {
        p = op->mem_last;
        op->mem_prev = p;
        op->mem_last += n;
        return p;
    }
#endif

    /* sizeof(ngx_http_guichet_big_t) keeps malloc's 16-byte alignment */
    b = ngx_alloc(sizeof(ngx_http_guichet_big_t) + size, ngx_cycle->log);
    if (b == NULL) {
        return NULL;
    }

    b->prev = NULL;
    b->next = op->big;

    if (op->big) {
        op->big->prev = b;
    }

    op->big = b;

    return b + 1;
}


void
ngx_http_guichet_op_mfree(void *ctx, void *p)
{
    ngx_http_guichet_op_t  *op = ctx;

    ngx_http_guichet_big_t  *b;

    if (p == NULL) {
        return;
    }

#if (NGX_HTTP_GUICHET_OP_POOL)
    if ((uintptr_t) p >= (uintptr_t) op
        && (uintptr_t) p < (uintptr_t) op + NGX_HTTP_GUICHET_OP_BLOCK)
    {
        if (p == op->mem_prev) {
            op->mem_last = p;
            op->mem_prev = NULL;
        }

        return;
    }
#endif

    b = (ngx_http_guichet_big_t *) p - 1;

    if (b->prev) {
        b->prev->next = b->next;

    } else {
        op->big = b->next;
    }

    if (b->next) {
        b->next->prev = b->prev;
    }

    ngx_free(b);
}
