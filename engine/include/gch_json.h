/*
 * gch_json.h -- strict JSON reading and writing over yajl 2.1 (libgch.a).
 *
 * Reading builds a small tree in an arena with yajl's callback parser
 * (yajl_parse.h): yajl checks the syntax and UTF-8, the tree keeps every
 * member in document order (duplicates included) and raw number text, and
 * the checkers below walk it against field tables, so that unknown fields,
 * duplicate keys, wrong types, "\u0000", out-of-range numbers and oversized
 * arrays are refused with the JSON path of the first error
 * ("$.items[3].child_id").  Used by the engine's town.c and request.c, and
 * by guichet-office for its request bodies and answers (office/http.c).
 *
 * Writing wraps a yajl generator whose output goes to a buffer from the
 * caller allocator, with every failure sticky and reported once at the end.
 *
 * yajl 2.1 does not check its own allocations; the parser and generator
 * therefore take their internal memory from a reserve sized before parsing
 * from the input (see json.c), so that a short allocator fails cleanly.
 */

#ifndef GCH_JSON_H
#define GCH_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <yajl/yajl_gen.h>

#include <gch.h>


/* The arena a parsed tree lives in (engine-internal: engine/src/arena.h). */
typedef struct gch_arena_s  gch_arena_t;


#define GCH_J_NULL     0x01
#define GCH_J_BOOL     0x02
#define GCH_J_NUMBER   0x04
#define GCH_J_STRING   0x08
#define GCH_J_OBJECT   0x10
#define GCH_J_ARRAY    0x20

typedef struct gch_jnode_s  gch_jnode_t;

struct gch_jnode_s {
    gch_jnode_t  *next;          /* next member or element */
    gch_jnode_t  *child;         /* first member or element */
    const char   *key;           /* member name, not NUL-terminated */
    const char   *str;           /* string bytes or number text */
    uint32_t      klen;
    uint32_t      len;           /* bytes; true/false; members/elements */
    int           type;          /* GCH_J_* */
};


/* A parsed document: the tree lives in ar. */
typedef struct {
    gch_arena_t  *ar;
    gch_jnode_t  *root;
} gch_json_t;

/*
 * Parses json[0..len) (one value, no comments, valid UTF-8, nesting at
 * most max_depth).  Strings may point into json: it must outlive doc.
 * 0, GCH_EBADJSON (err names the byte offset), or GCH_ENOMEM.  On success
 * free with gch_json_free(); on error nothing is left allocated.
 */
int gch_json_parse(gch_json_t *doc, const char *json, size_t len,
    int max_depth, const gch_alloc_t *a, gch_error_t *err);
void gch_json_free(gch_json_t *doc);

/* Tests only: caps the parser's reserve in bytes (0, the default: no cap),
 * so that yajl's blocks come from the allocator itself. */
extern size_t  gch_json_reserve_cap;


/* The walking context: where we are, for messages. */
typedef struct {
    gch_error_t  *err;
    size_t        len;
    char          path[160];
} gch_jcx_t;

void gch_jcx_init(gch_jcx_t *cx, gch_error_t *err);
/* Push ".key" or "[i]"; returns the mark to pop back to. */
size_t gch_jcx_key(gch_jcx_t *cx, const char *key, size_t klen);
size_t gch_jcx_index(gch_jcx_t *cx, size_t i);
void gch_jcx_pop(gch_jcx_t *cx, size_t mark);
/* err = GCH_EINVALID "<path>[.key] : <message>"; returns GCH_EINVALID. */
int gch_jcx_fail(gch_jcx_t *cx, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));


typedef struct {
    const char  *name;
    int          types;          /* GCH_J_* accepted */
    int          required;
} gch_jfield_t;

/*
 * obj must be an object whose members are all in f[0..nf), each at most
 * once, each of an accepted type; required fields must be there.  vals[i]
 * receives the member for f[i] or NULL.  Errors name the member's path.
 */
int gch_json_fields(gch_jcx_t *cx, const gch_jnode_t *obj,
    const gch_jfield_t *f, size_t nf, const gch_jnode_t **vals);

/* v (member key of the current path) must be a string of min..max bytes
 * without NUL, in strict UTF-8 (gch_utf8_ok). */
int gch_json_str(gch_jcx_t *cx, const char *key, const gch_jnode_t *v,
    size_t min, size_t max);
/* 1 when s[0..n) is strict UTF-8: no overlong form, no surrogate, nothing
 * above U+10FFFF (yajl lets those through); guichet-office checks its
 * query arguments with it. */
int gch_utf8_ok(const unsigned char *s, size_t n);
/* v must be an integer (no fraction, no exponent) in min..max. */
int gch_json_int(gch_jcx_t *cx, const char *key, const gch_jnode_t *v,
    long long min, long long max, long long *out);
/* v must be an array of min..max elements. */
int gch_json_array(gch_jcx_t *cx, const char *key, const gch_jnode_t *v,
    size_t min, size_t max);


/* Writing: a handle on the engine's one generator (gch_gen_new(), resp.h). */
typedef struct {
    yajl_gen            g;
    const gch_alloc_t  *a;
} gch_jout_t;

/* 0 or GCH_ENOMEM.  Then use yajl_gen_*() on o->g and finish with
 * gch_jout_detach() or gch_jout_free(). */
int gch_jout_init(gch_jout_t *o, const gch_alloc_t *a);
void gch_jout_str(gch_jout_t *o, const char *s, size_t n);
void gch_jout_cstr(gch_jout_t *o, const char *s);
/* 0 and the NUL-terminated text (the caller frees it with a), or
 * GCH_ENOMEM; the generator is released either way. */
int gch_jout_detach(gch_jout_t *o, char **out, size_t *len);
void gch_jout_free(gch_jout_t *o);

#endif /* GCH_JSON_H */
