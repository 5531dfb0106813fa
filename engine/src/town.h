/*
 * town.h -- what the files of the town share (private to the engine):
 * town.c (indexes, field helpers, the town and its units, gch_town_parse,
 * look-ups), town_activity.c (activities, their sessions and calendars),
 * town_family.c (families, children, enrolments, documents) and
 * town_write.c (the catalogue gch_town_write() publishes).
 */

#ifndef GCH_TOWN_H
#define GCH_TOWN_H


#include <gch_json.h>

#include "arena.h"


#define GCH_ID_MAX          64
#define GCH_TEXT_MAX        200
#define GCH_MAX_UNITS       32
#define GCH_MAX_PRICES      32
#define GCH_MAX_CAL_DAYS    731
#define GCH_MAX_PLACES      100000
#define GCH_TOWN_DEPTH      8


typedef struct {
    uint64_t    *slots;          /* hash << 32 | (index + 1); 0: empty */
    uint32_t     mask;
    const char  *base;           /* entry i's id: *(base + i*stride + off) */
    size_t       stride;
    size_t       off;
} gch_index_t;


typedef struct {
    gch_arena_t  *ar;
    gch_index_t   sessions;
    gch_index_t   activities;
    gch_index_t   families;
    size_t       *act_first;     /* an activity's sessions: first, count */
    size_t       *act_count;
    int           catalogue;
} gch_town_priv_t;


/* a session being assembled for one activity */
typedef struct {
    gch_day_t     date;
    int           unit;
    int           origin;        /* >= 0: sessions[origin]; else calendar */
    int           places;
    const char   *id;
    const char   *label;
} gch_cell_t;


typedef struct {
    gch_jcx_t         cx;
    gch_town_t       *t;
    gch_town_priv_t  *p;
    gch_arena_t      *ar;        /* the town's */
    gch_arena_t      *tmp;       /* the JSON tree's: freed after parsing */
    gch_error_t      *err;
    gch_cell_t      **cells;     /* per activity */
    size_t           *ncells;
    int              *cal_array; /* per activity: calendar given as array */
} gch_tp_t;


int gch_index_init(gch_index_t *ix, gch_arena_t *ar, size_t n, const void *base,
    size_t stride, size_t off);
long gch_index_get(const gch_index_t *ix, const char *id, size_t len);
long gch_index_put(gch_index_t *ix, uint32_t i);
int gch_tp_nomem(gch_tp_t *tp);
int gch_tp_str(gch_tp_t *tp, const char *key, const gch_jnode_t *v, size_t min,
    size_t max, const char **out);
int gch_tp_id(gch_tp_t *tp, const char *key, const gch_jnode_t *v,
    const char **out);
int gch_tp_date(gch_tp_t *tp, const char *key, const gch_jnode_t *v,
    gch_day_t *out);
int gch_tp_hhmm(gch_tp_t *tp, const char *key, const gch_jnode_t *v,
    int allow_24, int *out);
int gch_tp_int(gch_tp_t *tp, const char *key, const gch_jnode_t *v,
    long long min, long long max, long long dflt, int *out);
int gch_tp_unit(gch_tp_t *tp, const char *key, const gch_jnode_t *v, int *out);
int gch_town_activities(gch_tp_t *tp, const gch_jnode_t *arr);
/*
 * The date and unit an id of the calendar's form "<x>-<YYYYMMDD>-<UNIT>"
 * names (x not empty, UNIT exactly one unit code of t, a real date): 1
 * with *date and *unit set, else 0.  gch_town_write() leaves out the
 * "date" and "unit" of a session whose id gives them back; a catalogue's
 * parse takes them from here (issue 20, fifth pass).
 */
int gch_town_id_cell(const gch_town_t *t, const char *id, size_t len,
    gch_day_t *date, int *unit);
int gch_town_families(gch_tp_t *tp, const gch_jnode_t *arr);

#endif /* GCH_TOWN_H */
