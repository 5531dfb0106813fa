/*
 * draw.c -- an activity that opens by draw (issue 23; docs/rules.md,
 * "Opening by draw"): where it stands at an instant, the public order of
 * its entries, the keys of its entries and decisions.
 *
 * The order is a public rule anyone can recompute from the published seed
 * and the entries: each family's rank is SHA-256("<seed>:<family id>") in
 * lower hex; families in increasing rank (ties, which SHA-256 makes
 * vanishingly unlikely, by family id), each family's cells in the order
 * it entered them.  Families cannot choose their id (the town gives it),
 * and the seed is fixed at load, before the window closes.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gch.h"


int
gch_draw_phase(const gch_activity_t *act, int64_t now_ms)
{
    if (act->opens_at == 0) {
        return GCH_DRAW_OPEN;
    }

    if (now_ms < act->opens_at * 1000) {
        if (act->draw && now_ms >= act->entries_from * 1000) {
            return GCH_DRAW_ENTRIES;
        }

        return GCH_DRAW_NOT_OPEN;
    }

    return (act->draw && !act->drawn) ? GCH_DRAW_HELD : GCH_DRAW_OPEN;
}


void
gch_draw_rank(char out[GCH_DRAW_RANK_LEN + 1], const char *seed,
    const char *family_id)
{
    unsigned char                  h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_state       st;

    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const unsigned char *) seed,
                              strlen(seed));
    crypto_hash_sha256_update(&st, (const unsigned char *) ":", 1);
    crypto_hash_sha256_update(&st, (const unsigned char *) family_id,
                              strlen(family_id));
    crypto_hash_sha256_final(&st, h);

    sodium_bin2hex(out, GCH_DRAW_RANK_LEN + 1, h, sizeof(h));
}


static int
gch_draw_cmp(const void *x, const void *y)
{
    int                       r;
    const gch_draw_entry_t   *a = x, *b = y;

    r = strcmp(a->rank, b->rank);
    if (r == 0) {
        r = strcmp(a->family, b->family);
    }
    if (r == 0) {
        r = (a->at_ms > b->at_ms) - (a->at_ms < b->at_ms);
    }
    if (r == 0) {
        r = (a->idx > b->idx) - (a->idx < b->idx);
    }
    if (r == 0) {
        r = strcmp(a->child, b->child);
    }
    if (r == 0) {
        r = strcmp(a->session, b->session);
    }

    return r;
}


void
gch_draw_order(gch_draw_entry_t *e, size_t n, const char *seed)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (i > 0 && strcmp(e[i].family, e[i - 1].family) == 0) {
            memcpy(e[i].rank, e[i - 1].rank, sizeof(e[i].rank));
            continue;
        }

        gch_draw_rank(e[i].rank, seed, e[i].family);
    }

    if (n > 1) {
        qsort(e, n, sizeof(gch_draw_entry_t), gch_draw_cmp);
    }
}


int
gch_draw_key(char *out, size_t size, const char *activity_id)
{
    int  n;

    n = snprintf(out, size, GCH_DRAW_KEY_PREFIX "%s", activity_id);

    return (n < 0 || (size_t) n >= size) ? -1 : n;
}


int
gch_draw_field(char *out, size_t size, const char *family,
    const char *child, size_t child_len, const char *session,
    size_t session_len)
{
    int  n;

    n = snprintf(out, size, "%s %.*s %.*s", family, (int) child_len, child,
                 (int) session_len, session);

    return (n < 0 || (size_t) n >= size) ? -1 : n;
}


int
gch_draw_entry_parse(gch_draw_entry_t *e, char *field, const char *value)
{
    int         w;
    char       *sp1, *sp2;
    long long   at;
    int         idx;

    sp1 = strchr(field, ' ');
    sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (sp1 == NULL || sp2 == NULL || strchr(sp2 + 1, ' ') != NULL
        || sp1 == field || sp2 == sp1 + 1 || sp2[1] == '\0')
    {
        return -1;
    }

    if (sscanf(value, "%lld %d %d", &at, &idx, &w) != 3 || idx < 0
        || (w != 0 && w != 1))
    {
        return -1;
    }

    *sp1 = '\0';
    *sp2 = '\0';
    e->family = field;
    e->child = sp1 + 1;
    e->session = sp2 + 1;
    e->at_ms = at;
    e->idx = idx;
    e->waitlist = w;
    e->rank[0] = '\0';

    return 0;
}
