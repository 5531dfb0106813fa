/*
 * arena.h -- engine-internal: a bump arena over the caller allocator, and
 * an allocator over a fixed caller buffer.
 *
 * Town objects, booking requests and the JSON trees the parsers build live
 * in arenas: many small allocations, one release.  Blocks come from the
 * caller's gch_alloc_t (copied into the arena, so the caller's struct need
 * not outlive it).  Implemented in alloc.c.
 */

#ifndef GCH_ARENA_H
#define GCH_ARENA_H

#include "gch.h"


typedef struct gch_arena_s  gch_arena_t;

/* NULL when the first block cannot be had.  blk_size is a hint. */
gch_arena_t *gch_arena_new(const gch_alloc_t *a, size_t blk_size);
/* 16-byte aligned, uninitialised; NULL when memory is short. */
void *gch_arena_alloc(gch_arena_t *ar, size_t n);
void *gch_arena_calloc(gch_arena_t *ar, size_t n);
/* Copy of s[0..n) + NUL. */
char *gch_arena_strndup(gch_arena_t *ar, const char *s, size_t n);
/* The allocator the arena takes its blocks from. */
const gch_alloc_t *gch_arena_allocator(gch_arena_t *ar);
void gch_arena_free(gch_arena_t *ar);


/* An allocator handing out pieces of one caller buffer (gch_fixed_t, in
 * gch.h: gch_jout_t holds one); free is a no-op except for the most recent
 * piece.  For small bounded jobs that have no allocator of their own
 * (gch_login_req_parse). */
void gch_fixed_init(gch_fixed_t *f, gch_alloc_t *a, void *buf, size_t size);

#endif /* GCH_ARENA_H */
