/*
 * gchw_reaper.h -- private to the reaper: the orphan attempts released
 * (reaper.c), the sessions they leave recounted (recount.c) and the
 * on-site places released online (release.c) share the reaper's state
 * and these.
 */

#ifndef GCHW_REAPER_H
#define GCHW_REAPER_H

#include <yajl/yajl_tree.h>

#include "gchw.h"


struct gchw_reaper_s {
    gch_town_t   *town;
    long long     gen;
    char         *released;                /* per activity: done */
    int64_t       recount_at;              /* this round's "not before" */
    int           promoted_once;           /* promote.c: a first turn done */
};


/* reaper.c */

/* Re-reads the catalogue when its generation changed.  0 or -1. */
int gchw_reaper_town(gchw_reaper_t *r, redisContext *rc);
/* The answer of a stored record "D <hash32> <demande>" as a yajl tree
 * (the caller frees it), NULL if it is neither a compact demande nor a
 * JSON answer. */
yajl_val gchw_answer_parse(const char *rec, size_t len, char *ebuf,
    size_t esize);
/* The plan of a first attempt's record "P <hash32> <id> <plan>" as the
 * JSON plan [{"s","c","b","q"}], freed with free(); NULL if unreadable. */
char *gchw_plan_text(const gch_town_t *t, const char *rkey, const char *rec,
    size_t len);


/* recount.c */

/* Session sid to {T}:recount, due at r->recount_at (inside the caller's
 * MULTI when there is one); the sessions of a stored answer "D ...", of
 * a first attempt's plan "P ...". */
void gchw_dirty_add(gchw_reaper_t *r, redisContext *rc, const char *sid);
void gchw_dirty_answer(gchw_reaper_t *r, redisContext *rc, const char *rec,
    size_t len);
void gchw_dirty_plan(gchw_reaper_t *r, redisContext *rc, const char *rec,
    size_t len);
/* The online counter of a due session recounted when no attempt younger
 * than cutoff touches it: 1 done, 0 not yet. */
int gchw_recount(gchw_reaper_t *r, redisContext *rc, const char *sid,
    int64_t cutoff);


#endif /* GCHW_REAPER_H */
