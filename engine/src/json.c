/*
 * json.c -- strict JSON reading (a tree in an arena, built with yajl's
 * callback parser) and writing (a yajl generator into a caller buffer).
 *
 * See gch_json.h.  yajl 2.1 does not check the results of its own internal
 * allocations (lexer and decode buffers, state stack, generator), so it is
 * given a reserve taken from the caller allocator before parsing and sized
 * from the input: the longest token bounds what its buffers can hold.  The
 * only allocations that may then fail are ours, and they fail cleanly.
 * Should the estimate ever be short, yajl's next block comes from the
 * allocator itself; if that fails too, yajl must not see the NULL (it
 * would write through it): the parse is abandoned by a longjmp back to
 * gch_json_parse(), which frees every such block itself and answers
 * GCH_ENOMEM, never touching the half-updated handle again.
 *
 * yajl takes form feed and vertical tab for white space; RFC 8259 does
 * not (nor anywhere else in a text: raw control characters are not allowed
 * in strings either), so gch_json_parse() refuses both bytes first.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include <gch_json.h>

#include "arena.h"
#include "resp.h"


#define GCH_JSON_MAX_DEPTH  64


/* the reserve: a bump allocator for yajl's own memory */

typedef struct gch_rhdr_s  gch_rhdr_t;

struct gch_rhdr_s {                  /* 32 bytes: blocks stay 16-aligned */
    size_t       size;
    gch_rhdr_t  *prev;               /* blocks from the allocator itself */
    gch_rhdr_t  *next;
    size_t       pad;
};


typedef struct {
    const gch_alloc_t  *a;
    char               *base;
    size_t              size;
    size_t              used;
    size_t              last;        /* offset of the last block's header */
    gch_rhdr_t         *spilled;     /* blocks from a, when size was short */
    jmp_buf            *oom;         /* where to go when a fails them */
} gch_reserve_t;


/* Tests only: caps the reserve (0: no cap) to reach the spill path. */
size_t  gch_json_reserve_cap;


static int
gch_reserve_owns(gch_reserve_t *r, void *p)
{
    uintptr_t  u = (uintptr_t) p, b = (uintptr_t) r->base;

    return r->base && u >= b && u < b + r->size;
}


static void *
gch_reserve_malloc(void *ctx, size_t n)
{
    size_t          off;
    gch_rhdr_t     *h;
    gch_reserve_t  *r = ctx;

    off = (r->used + 15) & ~(size_t) 15;

    if (r->base && off <= r->size
        && n + sizeof(gch_rhdr_t) <= r->size - off)
    {
        h = (gch_rhdr_t *) (r->base + off);
        h->size = n;
        r->last = off;
        r->used = off + sizeof(gch_rhdr_t) + n;
        return h + 1;
    }

    /* the estimate was short: fall back to the allocator itself */

    h = r->a->alloc(r->a->ctx, sizeof(gch_rhdr_t) + n);
    if (h == NULL) {
        longjmp(*r->oom, 1);          /* yajl would use the NULL */
    }

    h->size = n;
    h->prev = NULL;
    h->next = r->spilled;
    if (r->spilled) {
        r->spilled->prev = h;
    }
    r->spilled = h;

    return h + 1;
}


static void
gch_reserve_free(void *ctx, void *p)
{
    gch_rhdr_t     *h;
    gch_reserve_t  *r = ctx;

    if (p == NULL) {
        return;
    }

    if (gch_reserve_owns(r, p)) {
        if ((char *) p - sizeof(gch_rhdr_t) == r->base + r->last) {
            r->used = r->last;
        }

        return;
    }

    h = (gch_rhdr_t *) p - 1;

    if (h->prev) {
        h->prev->next = h->next;

    } else {
        r->spilled = h->next;
    }

    if (h->next) {
        h->next->prev = h->prev;
    }

    r->a->free(r->a->ctx, h);
}


/* After an abandoned parse: the blocks yajl can no longer free. */
static void
gch_reserve_release(gch_reserve_t *r)
{
    gch_rhdr_t  *h;

    while (r->spilled) {
        h = r->spilled;
        r->spilled = h->next;
        r->a->free(r->a->ctx, h);
    }
}


static void *
gch_reserve_realloc(void *ctx, void *p, size_t n)
{
    void           *q;
    gch_rhdr_t     *h;
    gch_reserve_t  *r = ctx;

    if (p == NULL) {
        return gch_reserve_malloc(ctx, n);
    }

    h = (gch_rhdr_t *) p - 1;

    if (gch_reserve_owns(r, p) && (char *) h == r->base + r->last
        && n <= r->size - r->last - sizeof(gch_rhdr_t))
    {
        /* the most recent block grows in place */
        h->size = n;
        r->used = r->last + sizeof(gch_rhdr_t) + n;
        return p;
    }

    q = gch_reserve_malloc(ctx, n);
    if (q == NULL) {
        return NULL;
    }

    memcpy(q, p, h->size < n ? h->size : n);
    gch_reserve_free(ctx, p);

    return q;
}


/* yajl_buf starts at 2048 bytes and doubles until the content fits */
static size_t
gch_bufcap(size_t n)
{
    size_t  cap;

    cap = 2048;
    while (cap <= n + 1) {
        cap *= 2;
    }

    return cap;
}


/*
 * How much yajl can need for this input.  Its handle, lexer, buffer
 * headers and state stack (nesting is capped by our callbacks) take a few
 * hundred bytes.  The decode buffer holds one unescaped string at a time:
 * only strings with a backslash go there.  The lexer buffer holds a token
 * cut by the end of the input.  Each buffer, grown by copying, needs at
 * most twice its final capacity.
 */
static size_t
gch_reserve_size(const char *s, size_t n)
{
    int     escapes, tail;
    size_t  i, start, tok, maxesc, last;

    escapes = 0;
    tail = 0;
    maxesc = 0;
    last = 0;
    i = 0;

    while (i < n) {
        switch (s[i]) {

        case ' ': case '\t': case '\r': case '\n':
        case '{': case '}': case '[': case ']': case ':': case ',':
            i++;
            continue;

        case '"':
            start = i++;
            tok = 0;

            while (i < n && s[i] != '"') {
                if (s[i] == '\\') {
                    tok = 1;
                    i++;
                }

                i++;
            }

            if (i >= n) {
                i = n;
                tail = 1;

            } else {
                i++;
            }

            if (tok) {
                escapes = 1;
                if (i - start > maxesc) {
                    maxesc = i - start;
                }
            }

            last = start;
            continue;

        default:
            start = i;

            do {
                i++;
            } while (i < n && memchr(" \t\r\n{}[]:,\"", s[i], 11) == NULL);

            if (i == n) {
                tail = 1;
            }

            last = start;
            continue;
        }
    }

    return 2048 + 512
           + (escapes ? 2 * gch_bufcap(maxesc + 2) : 0)
           + (tail ? 2 * gch_bufcap(n - last + 2) : 0);
}


/* building the tree */

typedef struct {
    gch_arena_t   *ar;
    const char    *in;
    size_t         inlen;
    gch_jnode_t   *root;
    gch_jnode_t   *open[GCH_JSON_MAX_DEPTH];
    gch_jnode_t   *tail[GCH_JSON_MAX_DEPTH];
    int            depth;
    int            max_depth;
    int            rc;                /* why we stopped yajl */
    const char    *key;
    size_t         klen;
} gch_jbuild_t;


static const char *
gch_jb_keep(gch_jbuild_t *b, const unsigned char *s, size_t n)
{
    uintptr_t  u = (uintptr_t) s, in = (uintptr_t) b->in;

    /* unescaped text still in the input: point at it */

    if (u >= in && u <= in + b->inlen && n <= in + b->inlen - u) {
        return (const char *) s;
    }

    return gch_arena_strndup(b->ar, (const char *) s, n);
}


static gch_jnode_t *
gch_jb_add(gch_jbuild_t *b, int type)
{
    gch_jnode_t  *n, *parent;

    n = gch_arena_alloc(b->ar, sizeof(gch_jnode_t));
    if (n == NULL) {
        b->rc = GCH_ENOMEM;
        return NULL;
    }

    n->next = NULL;
    n->child = NULL;
    n->key = NULL;
    n->klen = 0;
    n->str = NULL;
    n->len = 0;
    n->type = type;

    if (b->depth == 0) {
        b->root = n;
        return n;
    }

    parent = b->open[b->depth - 1];

    if (parent->type == GCH_J_OBJECT) {
        n->key = b->key;
        n->klen = (uint32_t) b->klen;
    }

    if (b->tail[b->depth - 1]) {
        b->tail[b->depth - 1]->next = n;

    } else {
        parent->child = n;
    }

    b->tail[b->depth - 1] = n;
    parent->len++;

    return n;
}


static int
gch_jb_null(void *ctx)
{
    return gch_jb_add(ctx, GCH_J_NULL) != NULL;
}


static int
gch_jb_boolean(void *ctx, int v)
{
    gch_jnode_t  *n;

    n = gch_jb_add(ctx, GCH_J_BOOL);
    if (n == NULL) {
        return 0;
    }

    n->len = v ? 1 : 0;
    return 1;
}


static int
gch_jb_number(void *ctx, const char *s, size_t len)
{
    gch_jnode_t   *n;
    gch_jbuild_t  *b = ctx;

    n = gch_jb_add(b, GCH_J_NUMBER);
    if (n == NULL) {
        return 0;
    }

    n->str = gch_jb_keep(b, (const unsigned char *) s, len);
    if (n->str == NULL) {
        b->rc = GCH_ENOMEM;
        return 0;
    }

    n->len = (uint32_t) len;
    return 1;
}


static int
gch_jb_string(void *ctx, const unsigned char *s, size_t len)
{
    gch_jnode_t   *n;
    gch_jbuild_t  *b = ctx;

    n = gch_jb_add(b, GCH_J_STRING);
    if (n == NULL) {
        return 0;
    }

    n->str = gch_jb_keep(b, s, len);
    if (n->str == NULL) {
        b->rc = GCH_ENOMEM;
        return 0;
    }

    n->len = (uint32_t) len;
    return 1;
}


static int
gch_jb_open(gch_jbuild_t *b, int type)
{
    gch_jnode_t  *n;

    if (b->depth >= b->max_depth) {
        b->rc = GCH_EBADJSON;
        return 0;
    }

    n = gch_jb_add(b, type);
    if (n == NULL) {
        return 0;
    }

    b->open[b->depth] = n;
    b->tail[b->depth] = NULL;
    b->depth++;

    return 1;
}


static int
gch_jb_start_map(void *ctx)
{
    return gch_jb_open(ctx, GCH_J_OBJECT);
}


static int
gch_jb_start_array(void *ctx)
{
    return gch_jb_open(ctx, GCH_J_ARRAY);
}


static int
gch_jb_close(void *ctx)
{
    gch_jbuild_t  *b = ctx;

    b->depth--;
    return 1;
}


static int
gch_jb_map_key(void *ctx, const unsigned char *s, size_t len)
{
    gch_jbuild_t  *b = ctx;

    b->key = gch_jb_keep(b, s, len);
    if (b->key == NULL) {
        b->rc = GCH_ENOMEM;
        return 0;
    }

    b->klen = len;
    return 1;
}


static const yajl_callbacks  gch_jb_callbacks = {
    gch_jb_null,
    gch_jb_boolean,
    NULL,
    NULL,
    gch_jb_number,
    gch_jb_string,
    gch_jb_start_map,
    gch_jb_map_key,
    gch_jb_close,
    gch_jb_start_array,
    gch_jb_close
};


/*
 * Form feed and vertical tab are white space for yajl, not for RFC 8259
 * (nor allowed in strings): GCH_EBADJSON at the first one.
 */
static int
gch_json_no_ff_vt(const char *json, size_t len, gch_error_t *err)
{
    size_t       off;
    const char  *ff, *vt;

    ff = memchr(json, '\f', len);
    vt = memchr(json, '\v', len);

    if (ff || vt) {
        off = (size_t) (((ff && vt) ? (ff < vt ? ff : vt) : (ff ? ff : vt))
                        - json);
        gch_error_set(err, GCH_EBADJSON, "JSON invalide à l'octet %zu.",
                      off);
        return GCH_EBADJSON;
    }

    return GCH_OK;
}


/* What a parse that yajl stopped (st) means: the code and err's message. */
static int
gch_json_failure(yajl_handle h, const gch_jbuild_t *b, yajl_status st,
    gch_error_t *err)
{
    int             rc;
    size_t          off;
    unsigned char  *msg;

    off = yajl_get_bytes_consumed(h);

    if (st == yajl_status_client_canceled && b->rc == GCH_ENOMEM) {
        rc = GCH_ENOMEM;
        gch_error_set(err, rc, NULL);

    } else if (st == yajl_status_client_canceled) {
        rc = GCH_EBADJSON;
        gch_error_set(err, rc, "JSON trop imbriqué (profondeur maximale "
                      "%d) à l'octet %zu.", b->max_depth, off);

    } else {
        rc = GCH_EBADJSON;
        msg = yajl_get_error(h, 0, NULL, 0);

        if (msg && strstr((const char *) msg, "UTF8")) {
            gch_error_set(err, rc, "JSON invalide : UTF-8 incorrect "
                          "à l'octet %zu.", off);

        } else {
            gch_error_set(err, rc, "JSON invalide à l'octet %zu.", off);
        }

        if (msg) {
            yajl_free_error(h, msg);
        }
    }

    return rc;
}


/*
 * Parses json[0..len) into doc (see gch_json.h).  Everything yajl needs is
 * taken from a before parsing and released before returning.  Syntax
 * errors are GCH_EBADJSON with the byte offset in err; nesting deeper
 * than max_depth (at most 64) is GCH_EBADJSON too.
 */
int
gch_json_parse(gch_json_t *doc, const char *json, size_t len,
    int max_depth, const gch_alloc_t *a, gch_error_t *err)
{
    int               rc;
    char             *base;
    jmp_buf           oom;
    yajl_status       st;
    yajl_handle       h;
    gch_jbuild_t     *b;
    gch_reserve_t    *r;
    yajl_alloc_funcs  af;

    doc->ar = NULL;
    doc->root = NULL;

    rc = gch_json_no_ff_vt(json, len, err);
    if (rc != GCH_OK) {
        return rc;
    }

    doc->ar = gch_arena_new(a, len < 4096 ? 4096 : 65536);
    if (doc->ar == NULL) {
        gch_error_set(err, GCH_ENOMEM, NULL);
        return GCH_ENOMEM;
    }

    /*
     * Everything the longjmp below comes back to lives in the arena (r,
     * b) or is not changed after setjmp (doc, a, base).
     */

    r = gch_arena_calloc(doc->ar, sizeof(gch_reserve_t));
    b = gch_arena_calloc(doc->ar, sizeof(gch_jbuild_t));
    if (r == NULL || b == NULL) {
        gch_arena_free(doc->ar);
        doc->ar = NULL;
        gch_error_set(err, GCH_ENOMEM, NULL);
        return GCH_ENOMEM;
    }

    r->a = a;
    r->size = gch_reserve_size(json, len);
    if (gch_json_reserve_cap && r->size > gch_json_reserve_cap) {
        r->size = gch_json_reserve_cap;
    }

    base = a->alloc(a->ctx, r->size);
    if (base == NULL) {
        gch_arena_free(doc->ar);
        doc->ar = NULL;
        gch_error_set(err, GCH_ENOMEM, NULL);
        return GCH_ENOMEM;
    }

    r->base = base;
    r->oom = &oom;

    b->ar = doc->ar;
    b->in = json;
    b->inlen = len;
    b->max_depth = (max_depth > 0 && max_depth < GCH_JSON_MAX_DEPTH)
                   ? max_depth : GCH_JSON_MAX_DEPTH;
    b->rc = GCH_OK;

    af.malloc = gch_reserve_malloc;
    af.realloc = gch_reserve_realloc;
    af.free = gch_reserve_free;
    af.ctx = r;

    if (setjmp(oom) != 0) {
        /* the allocator refused yajl a block: abandon the handle */
        gch_reserve_release(r);
        rc = GCH_ENOMEM;
        gch_error_set(err, rc, NULL);
        goto failed;
    }

    h = yajl_alloc(&gch_jb_callbacks, &af, b);
    if (h == NULL) {
        rc = GCH_ENOMEM;
        gch_error_set(err, rc, NULL);
        goto failed;
    }

    st = yajl_parse(h, (const unsigned char *) json, len);
    if (st == yajl_status_ok) {
        st = yajl_complete_parse(h);
    }

    if (st == yajl_status_ok) {
        yajl_free(h);
        a->free(a->ctx, base);
        doc->root = b->root;
        return GCH_OK;
    }

    rc = gch_json_failure(h, b, st, err);
    yajl_free(h);

failed:

    a->free(a->ctx, base);
    gch_arena_free(doc->ar);
    doc->ar = NULL;

    return rc;
}


/* Releases the tree.  Safe on a zeroed or already freed doc. */
void
gch_json_free(gch_json_t *doc)
{
    gch_arena_free(doc->ar);
    doc->ar = NULL;
    doc->root = NULL;
}


/* walking */

/* Initialises cx at the root, "$". */
void
gch_jcx_init(gch_jcx_t *cx, gch_error_t *err)
{
    cx->err = err;
    cx->path[0] = '$';
    cx->path[1] = '\0';
    cx->len = 1;
}


static void
gch_jcx_append(gch_jcx_t *cx, const char *s, size_t n)
{
    size_t  i;

    for (i = 0; i < n && cx->len + 1 < sizeof(cx->path); i++) {
        /* keep messages printable: control bytes become '?' */
        cx->path[cx->len++] = ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
                              ? '?' : s[i];
    }

    cx->path[cx->len] = '\0';
}


/* Appends ".key" (at most 48 bytes of it) to the path; returns the mark. */
size_t
gch_jcx_key(gch_jcx_t *cx, const char *key, size_t klen)
{
    size_t  mark;

    mark = cx->len;

    if (klen > 48) {
        klen = 48;
        while (klen > 0 && ((unsigned char) key[klen] & 0xc0) == 0x80) {
            klen--;
        }
    }

    gch_jcx_append(cx, ".", 1);
    gch_jcx_append(cx, key, klen);

    return mark;
}


/* Appends "[i]" to the path; returns the mark. */
size_t
gch_jcx_index(gch_jcx_t *cx, size_t i)
{
    char    buf[32], *p;
    size_t  mark;

    /* digits from the end, without snprintf (every item of every
     * booking's body passes here) */
    p = buf + sizeof(buf);
    *--p = ']';
    do {
        *--p = (char) ('0' + i % 10);
        i /= 10;
    } while (i);
    *--p = '[';

    mark = cx->len;
    gch_jcx_append(cx, p, (size_t) (buf + sizeof(buf) - p));

    return mark;
}


/* Goes back to a mark from gch_jcx_key() or gch_jcx_index(). */
void
gch_jcx_pop(gch_jcx_t *cx, size_t mark)
{
    cx->len = mark;
    cx->path[mark] = '\0';
}


/*
 * Sets cx->err to GCH_EINVALID with "<path>[.key] : <message>" and returns
 * GCH_EINVALID.  key may be NULL (the error is about the current path).
 */
int
gch_jcx_fail(gch_jcx_t *cx, const char *key, const char *fmt, ...)
{
    char     msg[192];
    size_t   mark;
    va_list  ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    mark = cx->len;
    if (key) {
        gch_jcx_key(cx, key, strlen(key));
    }

    gch_error_set(cx->err, GCH_EINVALID, "%s : %s", cx->path, msg);
    gch_jcx_pop(cx, mark);

    return GCH_EINVALID;
}


static const char *
gch_jtype_name(int types)
{
    switch (types & ~GCH_J_NULL) {
    case GCH_J_BOOL:
        return "booléen attendu";
    case GCH_J_NUMBER:
        return "nombre attendu";
    case GCH_J_STRING:
        return "chaîne attendue";
    case GCH_J_OBJECT:
        return "objet attendu";
    case GCH_J_ARRAY:
        return "tableau attendu";
    case GCH_J_OBJECT | GCH_J_STRING:
        return "objet ou chaîne attendu";
    default:
        return "type inattendu";
    }
}


/*
 * Checks obj's members against f[0..nf) (see gch_json.h).  Members are
 * checked in document order; missing required fields after that, in
 * table order.  At most 64 fields.
 */
int
gch_json_fields(gch_jcx_t *cx, const gch_jnode_t *obj,
    const gch_jfield_t *f, size_t nf, const gch_jnode_t **vals)
{
    size_t              i, mark;
    const gch_jnode_t  *m;

    if (obj == NULL || obj->type != GCH_J_OBJECT) {
        return gch_jcx_fail(cx, NULL, "objet attendu");
    }

    for (i = 0; i < nf; i++) {
        vals[i] = NULL;
    }

    for (m = obj->child; m; m = m->next) {

        for (i = 0; i < nf; i++) {
            if (strlen(f[i].name) == m->klen
                && memcmp(f[i].name, m->key, m->klen) == 0)
            {
                break;
            }
        }

        mark = gch_jcx_key(cx, m->key, m->klen);

        if (i == nf) {
            gch_jcx_fail(cx, NULL, "champ inconnu");
            gch_jcx_pop(cx, mark);
            return GCH_EINVALID;
        }

        if (vals[i]) {
            gch_jcx_fail(cx, NULL, "champ en double");
            gch_jcx_pop(cx, mark);
            return GCH_EINVALID;
        }

        if ((m->type & f[i].types) == 0) {
            gch_jcx_fail(cx, NULL, "%s", gch_jtype_name(f[i].types));
            gch_jcx_pop(cx, mark);
            return GCH_EINVALID;
        }

        gch_jcx_pop(cx, mark);
        vals[i] = m;
    }

    for (i = 0; i < nf; i++) {
        if (f[i].required && vals[i] == NULL) {
            return gch_jcx_fail(cx, f[i].name, "champ obligatoire manquant");
        }
    }

    return GCH_OK;
}


/*
 * Strict UTF-8 (see gch_json.h): yajl checks the shape of sequences but lets
 * overlong forms, surrogates and code points above U+10FFFF through.
 */
int
gch_utf8_ok(const unsigned char *s, size_t n)
{
    size_t    i, k, need;
    uint32_t  cp, min;

    for (i = 0; i < n; /* void */) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }

        if ((s[i] & 0xe0) == 0xc0) {
            need = 1;
            cp = s[i] & 0x1f;
            min = 0x80;

        } else if ((s[i] & 0xf0) == 0xe0) {
            need = 2;
            cp = s[i] & 0x0f;
            min = 0x800;

        } else if ((s[i] & 0xf8) == 0xf0) {
            need = 3;
            cp = s[i] & 0x07;
            min = 0x10000;

        } else {
            return 0;
        }

        if (n - i <= need) {
            return 0;
        }

        for (k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return 0;
            }

            cp = (cp << 6) | (s[i + k] & 0x3f);
        }

        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return 0;
        }

        i += need + 1;
    }

    return 1;
}


/* See gch_json.h.  A NULL v is accepted by no checker. */
int
gch_json_str(gch_jcx_t *cx, const char *key, const gch_jnode_t *v,
    size_t min, size_t max)
{
    if (v == NULL || v->type != GCH_J_STRING) {
        return gch_jcx_fail(cx, key, "chaîne attendue");
    }

    if (v->len < min || v->len > max) {
        return gch_jcx_fail(cx, key, "longueur hors limites (%zu à %zu "
                            "octets)", min, max);
    }

    if (v->len && memchr(v->str, '\0', v->len) != NULL) {
        return gch_jcx_fail(cx, key, "caractère nul interdit");
    }

    if (!gch_utf8_ok((const unsigned char *) v->str, v->len)) {
        return gch_jcx_fail(cx, key, "UTF-8 invalide");
    }

    return GCH_OK;
}


int
gch_json_int(gch_jcx_t *cx, const char *key, const gch_jnode_t *v,
    long long min, long long max, long long *out)
{
    int        neg;
    size_t     i;
    long long  n;

    if (v == NULL || v->type != GCH_J_NUMBER) {
        return gch_jcx_fail(cx, key, "nombre entier attendu");
    }

    i = 0;
    neg = 0;

    if (v->len && v->str[0] == '-') {
        neg = 1;
        i = 1;
    }

    if (i == v->len) {
        return gch_jcx_fail(cx, key, "nombre entier attendu");
    }

    n = 0;

    for (/* void */; i < v->len; i++) {
        if (v->str[i] < '0' || v->str[i] > '9') {
            return gch_jcx_fail(cx, key, "nombre entier attendu");
        }

        if (n > 100000000000000LL) {     /* far beyond any bound we use */
            return gch_jcx_fail(cx, key, "valeur hors limites (%lld à %lld)",
                                min, max);
        }

        n = n * 10 + (v->str[i] - '0');
    }

    if (neg) {
        n = -n;
    }

    if (n < min || n > max) {
        return gch_jcx_fail(cx, key, "valeur hors limites (%lld à %lld)",
                            min, max);
    }

    *out = n;
    return GCH_OK;
}


int
gch_json_array(gch_jcx_t *cx, const char *key, const gch_jnode_t *v,
    size_t min, size_t max)
{
    if (v == NULL || v->type != GCH_J_ARRAY) {
        return gch_jcx_fail(cx, key, "tableau attendu");
    }

    if (v->len < min || v->len > max) {
        return gch_jcx_fail(cx, key, "nombre d'éléments hors limites "
                            "(%zu à %zu)", min, max);
    }

    return GCH_OK;
}


/*
 * writing: one generator for the whole engine, gch_gen_new() of resp.c
 * (its own state in one block from a, the text in a gch_buf_t whose
 * failures are sticky); gch_jout_t is the handle guichet-office and the
 * older engine code hold it by.
 */

int
gch_jout_init(gch_jout_t *o, const gch_alloc_t *a)
{
    o->a = a;
    o->g = gch_gen_new(a);

    return o->g ? GCH_OK : GCH_ENOMEM;
}


void
gch_jout_str(gch_jout_t *o, const char *s, size_t n)
{
    gch_gen_strn(o->g, s, n);
}


void
gch_jout_cstr(gch_jout_t *o, const char *s)
{
    gch_gen_str(o->g, s);
}


/*
 * Hands the text to the caller (*out, NUL-terminated, freed with
 * a->free) and releases the generator.  GCH_ENOMEM if any write failed;
 * nothing is then left.
 */
int
gch_jout_detach(gch_jout_t *o, char **out, size_t *len)
{
    char  *p;

    p = gch_gen_detach(o->g, o->a, len);
    o->g = NULL;

    if (p == NULL) {
        return GCH_ENOMEM;
    }

    *out = p;
    return GCH_OK;
}


/* Releases the generator and any text. */
void
gch_jout_free(gch_jout_t *o)
{
    if (o->g) {
        yajl_gen_free(o->g);
        o->g = NULL;
    }
}
