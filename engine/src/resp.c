/*
 * resp.c -- byte buffers, RESP command lists, yajl generators on the
 * caller allocator.
 *
 * The booking saga writes its Redis commands here as RESP bytes that the
 * nginx module hands to hiredis unchanged (redisAsyncFormattedCommand), so
 * the module never formats a command itself.  Allocation failures are
 * sticky ("failed") and checked once by the caller at the end of a plan.
 */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "resp.h"


void
gch_buf_init(gch_buf_t *b, const gch_alloc_t *a)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->a = a;
    b->failed = 0;
}


static int
gch_buf_reserve(gch_buf_t *b, size_t n)
{
    size_t   cap;
    char    *p;

    if (b->failed) {
        return -1;
    }

    if (b->len + n + 1 <= b->cap) {
        return 0;
    }

    cap = b->cap ? b->cap * 2 : 256;
    while (cap < b->len + n + 1) {
        cap *= 2;
    }

    p = b->a->alloc(b->a->ctx, cap);
    if (p == NULL) {
        b->failed = 1;
        return -1;
    }

    if (b->len) {
        memcpy(p, b->data, b->len);
    }

    b->a->free(b->a->ctx, b->data);
    b->data = p;
    b->cap = cap;

    return 0;
}


void
gch_buf_add(gch_buf_t *b, const void *p, size_t n)
{
    if (gch_buf_reserve(b, n) != 0) {
        return;
    }

    if (n) {
        memcpy(b->data + b->len, p, n);
    }

    b->len += n;
    b->data[b->len] = '\0';
}


void
gch_buf_adds(gch_buf_t *b, const char *s)
{
    gch_buf_add(b, s, strlen(s));
}


void
gch_buf_addf(gch_buf_t *b, const char *fmt, ...)
{
    int      n;
    va_list  ap;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);

    if (n < 0 || gch_buf_reserve(b, (size_t) n) != 0) {
        b->failed = 1;
        return;
    }

    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t) n + 1, fmt, ap);
    va_end(ap);

    b->len += (size_t) n;
}


/*
 * Returns the buffer's bytes, NUL-terminated, or NULL if any append failed
 * (then everything is already released).  The caller frees with b->a.
 */
char *
gch_buf_detach(gch_buf_t *b, size_t *len)
{
    char  *p;

    if (b->failed || gch_buf_reserve(b, 0) != 0) {
        gch_buf_free(b);
        return NULL;
    }

    p = b->data;
    if (len) {
        *len = b->len;
    }

    b->data = NULL;
    b->len = 0;
    b->cap = 0;

    return p;
}


void
gch_buf_free(gch_buf_t *b)
{
    b->a->free(b->a->ctx, b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}


void
gch_cmdlist_init(gch_cmdlist_t *l, const gch_alloc_t *a)
{
    l->list.cmds = NULL;
    l->list.ncmds = 0;
    l->cap = 0;
    l->a = a;
    l->failed = 0;
}


/*
 * Appends one RESP array of bulk strings.  On allocation failure the list
 * is marked failed and keeps what it had; gch_cmdlist_free() releases it.
 */
void
gch_cmdlist_argv(gch_cmdlist_t *l, int argc, const char **argv,
    const size_t *argvlen)
{
    int         i;
    size_t      n, cap;
    gch_buf_t   b;
    gch_cmd_t  *cmds;

    if (l->failed) {
        return;
    }

    if (l->list.ncmds == l->cap) {
        cap = l->cap ? l->cap * 2 : 16;
        cmds = l->a->alloc(l->a->ctx, cap * sizeof(gch_cmd_t));
        if (cmds == NULL) {
            l->failed = 1;
            return;
        }

        if (l->list.ncmds) {
            memcpy(cmds, l->list.cmds, l->list.ncmds * sizeof(gch_cmd_t));
        }

        l->a->free(l->a->ctx, l->list.cmds);
        l->list.cmds = cmds;
        l->cap = cap;
    }

    gch_buf_init(&b, l->a);
    gch_buf_addf(&b, "*%d\r\n", argc);

    for (i = 0; i < argc; i++) {
        n = argvlen ? argvlen[i] : strlen(argv[i]);
        gch_buf_addf(&b, "$%zu\r\n", n);
        gch_buf_add(&b, argv[i], n);
        gch_buf_add(&b, "\r\n", 2);
    }

    l->list.cmds[l->list.ncmds].data = gch_buf_detach(&b,
                                           &l->list.cmds[l->list.ncmds].len);
    if (l->list.cmds[l->list.ncmds].data == NULL) {
        l->failed = 1;
        return;
    }

    l->list.ncmds++;
}


void
gch_cmdlist_cmd(gch_cmdlist_t *l, ...)
{
    int          argc;
    const char  *argv[16], *s;
    va_list      ap;

    argc = 0;
    va_start(ap, l);
    while ((s = va_arg(ap, const char *)) != NULL && argc < 16) {
        argv[argc++] = s;
    }
    va_end(ap);

    gch_cmdlist_argv(l, argc, argv, NULL);
}


void
gch_cmdlist_free(gch_cmdlist_t *l)
{
    size_t  i;

    for (i = 0; i < l->list.ncmds; i++) {
        l->a->free(l->a->ctx, l->list.cmds[i].data);
    }

    l->a->free(l->a->ctx, l->list.cmds);
    l->list.cmds = NULL;
    l->list.ncmds = 0;
    l->cap = 0;
}


static void *
gch_yajl_malloc(void *ctx, size_t n)
{
    const gch_alloc_t  *a = ctx;

    return a->alloc(a->ctx, n);
}


static void
gch_yajl_free(void *ctx, void *p)
{
    const gch_alloc_t  *a = ctx;

    a->free(a->ctx, p);
}


/*
 * yajl wants realloc; the caller allocator has none, so remember each
 * block's size in a header in front of it.
 */
typedef struct {
    size_t  size;
    size_t  pad;
} gch_yhdr_t;


static void *
gch_yajl_malloc_sized(void *ctx, size_t n)
{
    gch_yhdr_t  *h;

    h = gch_yajl_malloc(ctx, sizeof(gch_yhdr_t) + n);
    if (h == NULL) {
        return NULL;
    }

    h->size = n;
    return h + 1;
}


static void
gch_yajl_free_sized(void *ctx, void *p)
{
    if (p) {
        gch_yajl_free(ctx, (gch_yhdr_t *) p - 1);
    }
}


static void *
gch_yajl_realloc_sized(void *ctx, void *p, size_t n)
{
    void        *q;
    gch_yhdr_t  *h;

    q = gch_yajl_malloc_sized(ctx, n);
    if (q == NULL) {
        return NULL;
    }

    if (p) {
        h = (gch_yhdr_t *) p - 1;
        memcpy(q, p, h->size < n ? h->size : n);
        gch_yajl_free_sized(ctx, p);
    }

    return q;
}


/*
 * A generator allocating through a (a must outlive it); free it with
 * yajl_gen_free().  NULL when memory is short.
 */
yajl_gen
gch_gen_new(const gch_alloc_t *a)
{
    yajl_alloc_funcs  af;

    af.malloc = gch_yajl_malloc_sized;
    af.realloc = gch_yajl_realloc_sized;
    af.free = gch_yajl_free_sized;
    af.ctx = (void *) a;

    return yajl_gen_alloc(&af);
}


void
gch_gen_strn(yajl_gen g, const char *s, size_t n)
{
    yajl_gen_string(g, (const unsigned char *) s, n);
}


void
gch_gen_str(yajl_gen g, const char *s)
{
    gch_gen_strn(g, s, strlen(s));
}


void
gch_gen_kv(yajl_gen g, const char *k, const char *v)
{
    gch_gen_str(g, k);

    if (v) {
        gch_gen_str(g, v);

    } else {
        yajl_gen_null(g);
    }
}


void
gch_gen_ki(yajl_gen g, const char *k, long long v)
{
    gch_gen_str(g, k);
    yajl_gen_integer(g, v);
}


/*
 * Copies the generated JSON (NUL-terminated) into memory from a, frees
 * the generator.  NULL if generation or the copy failed.
 */
char *
gch_gen_detach(yajl_gen g, const gch_alloc_t *a, size_t *len)
{
    char                 *p;
    size_t                n;
    const unsigned char  *buf;

    p = NULL;

    if (yajl_gen_get_buf(g, &buf, &n) == yajl_gen_status_ok) {
        p = a->alloc(a->ctx, n + 1);
        if (p) {
            memcpy(p, buf, n);
            p[n] = '\0';
            if (len) {
                *len = n;
            }
        }
    }

    yajl_gen_free(g);
    return p;
}


const char *
gch_doc_str(yajl_val doc, const char *name)
{
    const char  *path[2] = { name, NULL };
    yajl_val     v;

    v = yajl_tree_get(doc, path, yajl_t_string);
    return v ? YAJL_GET_STRING(v) : NULL;
}
