/*
 * alloc.c -- the standard allocator, error filling and the engine's arenas.
 *
 * Every engine allocation goes through a caller gch_alloc_t (the nginx
 * module passes one over its pools, the worker and tests gch_alloc_std).
 * Long-lived objects (towns, requests) are arenas of blocks taken from that
 * allocator and released at once.  gch_error_set() turns a GCH_E* into the
 * stable public code, HTTP status and a French message (docs/errors.md);
 * gch_reason_name() a gch_reason_t into its public name.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"


#define GCH_ARENA_ALIGN  16


static void *
gch_std_alloc(void *ctx, size_t size)
{
    (void) ctx;

    return malloc(size);
}


static void
gch_std_free(void *ctx, void *p)
{
    (void) ctx;

    free(p);
}


const gch_alloc_t  gch_alloc_std = { gch_std_alloc, gch_std_free, NULL };


typedef struct {
    int          rc;
    int          status;
    const char  *code;
    const char  *message;
} gch_error_map_t;


static const gch_error_map_t  gch_errors[] = {
    { GCH_EBADJSON, 400, "bad_json",
      "Le corps de la requête n'est pas un JSON valide." },
    { GCH_EINVALID, 400, "invalid_field",
      "Un champ de la requête est invalide." },
    { GCH_EFORBIDDEN, 403, "forbidden",
      "Vous n'avez pas accès à cette ressource." },
    { GCH_EUNAUTH, 401, "unauthenticated",
      "Veuillez vous connecter." },
    { GCH_ENOTFOUND, 404, "not_found",
      "Ressource introuvable." },
    { GCH_EREDIS, 503, "unavailable",
      "Service momentanément indisponible, veuillez réessayer." },
    { GCH_EFENCED, 503, "unavailable",
      "Service momentanément indisponible, veuillez réessayer." },
    { GCH_ETOOLARGE, 413, "body_too_large",
      "Le corps de la requête est trop volumineux." },
    { GCH_EMETHOD, 405, "method_not_allowed",
      "Cette méthode n'est pas permise ici." },
    { GCH_EMEDIA, 415, "unsupported_media_type",
      "Le corps de la demande doit être du JSON "
      "(Content-Type: application/json)." },
    { GCH_EIDEMKEY, 400, "idempotency_key_missing",
      "L'en-tête Idempotency-Key est obligatoire." },
    { GCH_EBEHIND, 503, "catalogue_behind",
      "Réessayez dans une seconde." },
    { GCH_EORIGIN, 403, "bad_origin",
      "Cette demande ne vient pas du site du guichet." },
    { GCH_ERATE, 429, "rate_limited",
      "Trop de demandes : réessayez dans un moment." },
    { GCH_EREPLICA, 503, "not_replicated",
      "La demande n'est pas encore confirmée : réessayez dans un instant "
      "avec la même demande." },
    { GCH_ENOMEM, 500, "internal",
      "Erreur interne, veuillez réessayer." }
};


/* The names of gch_reason_t, in its order (docs/errors.md, "reason"). */
static const char  *gch_reasons[GCH_REASON_COUNT] = {
    NULL, "full", "conflict", "already_booked", "not_open_yet", "closed",
    "not_enrolled", "age", "documents_missing", "unpaid_invoices",
    "week_incomplete", "unknown_session", "unit_required",
    "replaced_unknown", "entered"
};


const char *
gch_reason_name(gch_reason_t reason)
{
    return ((unsigned) reason < GCH_REASON_COUNT) ? gch_reasons[reason]
                                                   : NULL;
}


/*
 * Fills err (ignored when NULL) with the status and stable code of rc and
 * the message from fmt (printf-like), or rc's default French message when
 * fmt is NULL.  An unknown rc maps to 500 "internal".  A message cut to
 * fit is cut on a UTF-8 character boundary.
 */
void
gch_error_set(gch_error_t *err, int rc, const char *fmt, ...)
{
    size_t                  i, n;
    va_list                 ap;
    const gch_error_map_t  *m;

    if (err == NULL) {
        return;
    }

    m = &gch_errors[sizeof(gch_errors) / sizeof(gch_errors[0]) - 1];

    for (i = 0; i < sizeof(gch_errors) / sizeof(gch_errors[0]); i++) {
        if (gch_errors[i].rc == rc) {
            m = &gch_errors[i];
            break;
        }
    }

    err->status = m->status;
    err->code = m->code;

    if (fmt == NULL) {
        snprintf(err->message, sizeof(err->message), "%s", m->message);
        return;
    }

    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);

    n = strlen(err->message);

    if (n == sizeof(err->message) - 1) {
        /* possibly cut: drop a partial UTF-8 sequence at the end */
        while (n > 0 && ((unsigned char) err->message[n - 1] & 0xc0) == 0x80)
        {
            n--;
        }

        if (n > 0 && ((unsigned char) err->message[n - 1] & 0x80)) {
            n--;
        }

        err->message[n] = '\0';
    }
}


/* arenas */

typedef struct gch_arena_blk_s  gch_arena_blk_t;

struct gch_arena_blk_s {
    gch_arena_blk_t  *next;
    size_t            size;          /* usable bytes after the header */
    size_t            used;
    size_t            pad;
};


struct gch_arena_s {
    gch_alloc_t       a;
    gch_arena_blk_t  *head;          /* current block, then older ones */
    size_t            blk_size;
    size_t            pad;
};


static gch_arena_blk_t *
gch_arena_blk_new(const gch_alloc_t *a, size_t size)
{
    gch_arena_blk_t  *b;

    b = a->alloc(a->ctx, sizeof(gch_arena_blk_t) + size);
    if (b == NULL) {
        return NULL;
    }

    b->next = NULL;
    b->size = size;
    b->used = 0;

    return b;
}


/*
 * A new arena whose blocks come from a (copied).  The arena's own header
 * lives in its first block.  NULL when memory is short.  Free with
 * gch_arena_free().
 */
gch_arena_t *
gch_arena_new(const gch_alloc_t *a, size_t blk_size)
{
    gch_arena_t      *ar;
    gch_arena_blk_t  *b;

    if (blk_size < 1024) {
        blk_size = 1024;
    }

    b = gch_arena_blk_new(a, blk_size);
    if (b == NULL) {
        return NULL;
    }

    ar = (gch_arena_t *) (b + 1);
    b->used = sizeof(gch_arena_t);

    ar->a = *a;
    ar->head = b;
    ar->blk_size = blk_size;

    return ar;
}


/*
 * n bytes, 16-byte aligned, owned by the arena.  A large request gets a
 * block of its own, kept behind the current one so that the current
 * block's free space is not lost.  NULL when memory is short; the arena
 * stays usable.
 */
void *
gch_arena_alloc(gch_arena_t *ar, size_t n)
{
    size_t            off;
    gch_arena_blk_t  *b;

    n = (n + GCH_ARENA_ALIGN - 1) & ~(size_t) (GCH_ARENA_ALIGN - 1);
    if (n == 0) {
        n = GCH_ARENA_ALIGN;
    }

    b = ar->head;
    off = (b->used + GCH_ARENA_ALIGN - 1) & ~(size_t) (GCH_ARENA_ALIGN - 1);

    if (off <= b->size && n <= b->size - off) {
        b->used = off + n;
        return (char *) (b + 1) + off;
    }

    if (n > ar->blk_size / 4) {
        b = gch_arena_blk_new(&ar->a, n);
        if (b == NULL) {
            return NULL;
        }

        b->used = n;
        b->next = ar->head->next;
        ar->head->next = b;

        return b + 1;
    }

    b = gch_arena_blk_new(&ar->a, ar->blk_size);
    if (b == NULL) {
        return NULL;
    }

    b->used = n;
    b->next = ar->head;
    ar->head = b;

    return b + 1;
}


/* Like gch_arena_alloc(), zero-filled. */
void *
gch_arena_calloc(gch_arena_t *ar, size_t n)
{
    void  *p;

    p = gch_arena_alloc(ar, n);
    if (p) {
        memset(p, 0, n);
    }

    return p;
}


/* A NUL-terminated copy of s[0..n) owned by the arena; NULL if short. */
char *
gch_arena_strndup(gch_arena_t *ar, const char *s, size_t n)
{
    char  *p;

    p = gch_arena_alloc(ar, n + 1);
    if (p == NULL) {
        return NULL;
    }

    if (n) {
        memcpy(p, s, n);
    }

    p[n] = '\0';

    return p;
}


/* The arena's copy of the caller allocator, valid until gch_arena_free(). */
const gch_alloc_t *
gch_arena_allocator(gch_arena_t *ar)
{
    return &ar->a;
}


/* Releases every block, the arena header included.  NULL is a no-op. */
void
gch_arena_free(gch_arena_t *ar)
{
    gch_alloc_t       a;
    gch_arena_blk_t  *b, *next;

    if (ar == NULL) {
        return;
    }

    a = ar->a;

    /* the header lives in the oldest block: free it last (it is) */

    for (b = ar->head; b; b = next) {
        next = b->next;
        a.free(a.ctx, b);
    }
}


/* fixed buffer allocator */

static void *
gch_fixed_alloc(void *ctx, size_t size)
{
    size_t        off;
    gch_fixed_t  *f = ctx;

    off = (f->used + GCH_ARENA_ALIGN - 1) & ~(size_t) (GCH_ARENA_ALIGN - 1);

    if (off > f->size || size > f->size - off) {
        return NULL;
    }

    f->last = off;
    f->used = off + size;

    return f->base + off;
}


static void
gch_fixed_free(void *ctx, void *p)
{
    gch_fixed_t  *f = ctx;

    if (p && (char *) p == f->base + f->last) {
        f->used = f->last;
    }
}


/*
 * Makes *a hand out pieces of buf[0..size).  buf and f must outlive every
 * use of *a.  The caller aligns buf (a local array of max_align_t or
 * similar) if alignment matters.
 */
void
gch_fixed_init(gch_fixed_t *f, gch_alloc_t *a, void *buf, size_t size)
{
    f->base = buf;
    f->size = size;
    f->used = 0;
    f->last = 0;

    a->alloc = gch_fixed_alloc;
    a->free = gch_fixed_free;
    a->ctx = f;
}
