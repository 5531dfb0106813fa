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
#include <stddef.h>
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
    size_t   room;
    va_list  ap;

    if (b->failed) {
        return;
    }

    /* one pass when it fits in what the buffer has left */

    room = b->cap > b->len ? b->cap - b->len : 0;

    va_start(ap, fmt);
    n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap);
    va_end(ap);

    if (n < 0) {
        b->failed = 1;
        return;
    }

    if ((size_t) n < room) {
        b->len += (size_t) n;
        return;
    }

    if (gch_buf_reserve(b, (size_t) n) != 0) {
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


/* Decimal digits of v. */
static size_t
gch_ulen(unsigned long long v)
{
    size_t  n;

    for (n = 1; v >= 10; v /= 10) {
        n++;
    }

    return n;
}


/* Writes v in decimal at p (gch_ulen(v) bytes); returns the end. */
static char *
gch_utoa(char *p, unsigned long long v)
{
    char  *e, *q;

    e = p + gch_ulen(v);

    for (q = e; q > p; v /= 10) {
        *--q = (char) ('0' + v % 10);
    }

    return e;
}


size_t
gch_lltoa(char *buf, long long v)
{
    char  *p;

    p = buf;

    if (v < 0) {
        *p++ = '-';
        p = gch_utoa(p, 0ULL - (unsigned long long) v);

    } else {
        p = gch_utoa(p, (unsigned long long) v);
    }

    *p = '\0';

    return (size_t) (p - buf);
}


void
gch_buf_addu(gch_buf_t *b, unsigned long long v)
{
    if (gch_buf_reserve(b, 20) != 0) {
        return;
    }

    b->len = (size_t) (gch_utoa(b->data + b->len, v) - b->data);
    b->data[b->len] = '\0';
}


void
gch_buf_addi(gch_buf_t *b, long long v)
{
    if (v < 0) {
        gch_buf_add(b, "-", 1);
        gch_buf_addu(b, 0ULL - (unsigned long long) v);
        return;
    }

    gch_buf_addu(b, (unsigned long long) v);
}


/*
 * A JSON string literal, escaped the way yajl's generator escapes (quote,
 * backslash, \b \f \n \r \t, other control bytes as \u00XX; '/' and
 * bytes >= 0x80 as they are).  Runs of plain bytes are copied at once.
 */
void
gch_buf_jstr(gch_buf_t *b, const char *s, size_t n)
{
    char                  esc[7];
    size_t                i, run;
    unsigned char         c;
    static const char     hex[] = "0123456789ABCDEF";

    gch_buf_add(b, "\"", 1);

    run = 0;

    for (i = 0; i < n; i++) {
        c = (unsigned char) s[i];

        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }

        gch_buf_add(b, s + run, i - run);
        run = i + 1;

        esc[0] = '\\';

        switch (c) {
        case '"':  esc[1] = '"';  break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b';  break;
        case '\f': esc[1] = 'f';  break;
        case '\n': esc[1] = 'n';  break;
        case '\r': esc[1] = 'r';  break;
        case '\t': esc[1] = 't';  break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0xf];
            gch_buf_add(b, esc, 6);
            continue;
        }

        gch_buf_add(b, esc, 2);
    }

    gch_buf_add(b, s + run, n - run);
    gch_buf_add(b, "\"", 1);
}


void
gch_buf_jstrz(gch_buf_t *b, const char *s)
{
    if (s == NULL) {
        gch_buf_add(b, "null", 4);
        return;
    }

    gch_buf_jstr(b, s, strlen(s));
}


/*
 * Appends one RESP array of bulk strings, in one allocation of the exact
 * size (no printf: this is most of the work of planning a booking).  On
 * allocation failure the list is marked failed and keeps what it had;
 * gch_cmdlist_free() releases it.
 */
void
gch_cmdlist_argv(gch_cmdlist_t *l, int argc, const char **argv,
    const size_t *argvlen)
{
    int         i;
    char       *p, *data;
    size_t      n, cap, total;
    gch_cmd_t  *cmds;

    if (l->failed || argc < 0) {
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

    /* "*<argc>\r\n" then "$<len>\r\n<arg>\r\n" each */

    total = 3 + gch_ulen((unsigned) argc);

    for (i = 0; i < argc; i++) {
        n = argvlen ? argvlen[i] : strlen(argv[i]);
        total += 5 + gch_ulen(n) + n;
    }

    data = l->a->alloc(l->a->ctx, total + 1);
    if (data == NULL) {
        l->failed = 1;
        return;
    }

    p = data;
    *p++ = '*';
    p = gch_utoa(p, (unsigned) argc);
    *p++ = '\r';
    *p++ = '\n';

    for (i = 0; i < argc; i++) {
        n = argvlen ? argvlen[i] : strlen(argv[i]);
        *p++ = '$';
        p = gch_utoa(p, n);
        *p++ = '\r';
        *p++ = '\n';
        memcpy(p, argv[i], n);
        p += n;
        *p++ = '\r';
        *p++ = '\n';
    }

    *p = '\0';

    l->list.cmds[l->list.ncmds].data = data;
    l->list.cmds[l->list.ncmds].len = total;
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


/*
 * yajl 2.1 does not check its own allocations (yajl_gen_alloc() memsets
 * the buffer object it just asked for, the buffer writes into the data it
 * just asked for): any NULL from the caller allocator crashed.  So a
 * generator's own state (the yajl_gen and its unused buffer object) lives
 * in a reserve inside one block from a, and the text goes through a print
 * callback into a gch_buf_t, whose failures are sticky.  The yajl_gen is
 * the first object of the reserve: yajl_gen_free() frees it last, and that
 * releases the whole block.
 */
typedef struct {
    const gch_alloc_t  *a;
    gch_buf_t           out;
    size_t              used;
    union {
        long double     align;
        char            bytes[2048];
    }                   reserve;
} gch_gx_t;


static void *
gch_gx_malloc(void *ctx, size_t n)
{
    void      *p;
    gch_gx_t  *x = ctx;

    n = (n + 15) & ~(size_t) 15;

    if (x->used + n > sizeof(x->reserve.bytes)) {
        return NULL;                 /* never: yajl asks for < 1 KB */
    }

    p = x->reserve.bytes + x->used;
    x->used += n;

    return p;
}


static void *
gch_gx_realloc(void *ctx, void *p, size_t n)
{
    (void) ctx;
    (void) p;
    (void) n;

    return NULL;                     /* only its buffer reallocates */
}


static void
gch_gx_free(void *ctx, void *p)
{
    gch_gx_t  *x = ctx;

    if (p == (void *) x->reserve.bytes) {
        /* the yajl_gen itself: the generator is gone */
        gch_buf_free(&x->out);
        x->a->free(x->a->ctx, x);
    }
}


static void
gch_gx_print(void *ctx, const char *s, size_t n)
{
    gch_gx_t  *x = ctx;

    gch_buf_add(&x->out, s, n);
}


/*
 * A generator allocating through a (a must outlive it); free it with
 * yajl_gen_free() or gch_gen_detach().  NULL when memory is short.
 */
yajl_gen
gch_gen_new(const gch_alloc_t *a)
{
    yajl_gen          g;
    gch_gx_t         *x;
    yajl_alloc_funcs  af;

    x = a->alloc(a->ctx, sizeof(gch_gx_t));
    if (x == NULL) {
        return NULL;
    }

    x->a = a;
    x->used = 0;
    gch_buf_init(&x->out, a);

    af.malloc = gch_gx_malloc;
    af.realloc = gch_gx_realloc;
    af.free = gch_gx_free;
    af.ctx = x;

    g = yajl_gen_alloc(&af);
    if (g == NULL || (void *) g != (void *) x->reserve.bytes) {
        a->free(a->ctx, x);          /* a yajl we do not know */
        return NULL;
    }

    yajl_gen_config(g, yajl_gen_print_callback, gch_gx_print, x);

    return g;
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
    char      *p, *q;
    size_t     n;
    gch_gx_t  *x;

    x = (gch_gx_t *) ((char *) g - offsetof(gch_gx_t, reserve));
    p = gch_buf_detach(&x->out, &n);

    if (p && a != x->a) {
        q = a->alloc(a->ctx, n + 1);
        if (q) {
            memcpy(q, p, n + 1);
        }
        x->a->free(x->a->ctx, p);
        p = q;
    }

    if (p && len) {
        *len = n;
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
