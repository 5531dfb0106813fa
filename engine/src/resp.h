/*
 * resp.h -- engine-internal: growable byte buffers, RESP command lists and
 * a yajl generator bound to the caller allocator.
 *
 * Used by the booking saga (book.c) and the read endpoints (render.c) to
 * write Redis commands and JSON answers.  No I/O: bytes in memory only.
 */

#ifndef GCH_RESP_H
#define GCH_RESP_H

#include <yajl/yajl_gen.h>

#include "gch.h"


typedef struct {
    char               *data;
    size_t              len;
    size_t              cap;
    const gch_alloc_t  *a;
    int                 failed;      /* an allocation failed: sticky */
} gch_buf_t;

void gch_buf_init(gch_buf_t *b, const gch_alloc_t *a);
void gch_buf_add(gch_buf_t *b, const void *p, size_t n);
void gch_buf_adds(gch_buf_t *b, const char *s);
void gch_buf_addf(gch_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A string literal. */
#define gch_buf_lit(b, s)  gch_buf_add(b, s, sizeof(s) - 1)
/* Decimal integers, without printf; gch_lltoa writes v and a NUL into
 * buf (24 bytes) and returns the length. */
size_t gch_lltoa(char *buf, long long v);
void gch_buf_addu(gch_buf_t *b, unsigned long long v);
void gch_buf_addi(gch_buf_t *b, long long v);
/* A JSON string literal (quoted, escaped like yajl's generator); jstrz
 * writes null for NULL. */
void gch_buf_jstr(gch_buf_t *b, const char *s, size_t n);
void gch_buf_jstrz(gch_buf_t *b, const char *s);
/* Hand the bytes (NUL-terminated) to the caller, who frees them with a. */
char *gch_buf_detach(gch_buf_t *b, size_t *len);
void gch_buf_free(gch_buf_t *b);


/* A list of RESP commands, each its own allocation. */
typedef struct {
    gch_cmds_t          list;
    size_t              cap;
    const gch_alloc_t  *a;
    int                 failed;
} gch_cmdlist_t;

void gch_cmdlist_init(gch_cmdlist_t *l, const gch_alloc_t *a);
/* Append one command of argc arguments; argument i is argv[i] with
 * length argvlen[i] (strlen when argvlen is NULL). */
void gch_cmdlist_argv(gch_cmdlist_t *l, int argc, const char **argv,
    const size_t *argvlen);
/* Convenience: NULL-terminated list of C strings. */
void gch_cmdlist_cmd(gch_cmdlist_t *l, ...);
void gch_cmdlist_free(gch_cmdlist_t *l);


/* yajl generator whose memory comes from a; NULL on failure. */
yajl_gen gch_gen_new(const gch_alloc_t *a);
void gch_gen_str(yajl_gen g, const char *s);
void gch_gen_strn(yajl_gen g, const char *s, size_t n);
void gch_gen_kv(yajl_gen g, const char *k, const char *v);
void gch_gen_ki(yajl_gen g, const char *k, long long v);
/* Copy the generated text into a fresh allocation; NULL on failure. */
char *gch_gen_detach(yajl_gen g, const gch_alloc_t *a, size_t *len);

/* A top-level string member of a yajl tree of our own data, or NULL. */
#include <yajl/yajl_tree.h>
const char *gch_doc_str(yajl_val doc, const char *name);

/* demande.c: a planning entry ({f:<fid>}:bookings' value, compact or
 * JSON; p[n] readable) as a yajl tree, NULL if it is neither. */
#include <yajl/yajl_tree.h>
yajl_val gch_planning_doc(const char *p, size_t n, const gch_alloc_t *a);

#endif /* GCH_RESP_H */
