/*
 * absence.c -- justifying an absence, sans I/O (POST /api/absences).
 *
 * "Signaler / justifier une absence": with a reason the town accepts
 * (a medical certificate, a death in the family...), an absence -- or a
 * cancellation made after the deadline -- is sent to the town, which
 * examines it: accepted, it is not billed (office/absence.c).  Two
 * MULTI/EXEC steps, driven like cancel.c:
 *
 *   1. find the booking in the family's planning, or among its billed
 *      late cancellations ({f}:billed), take a demande number, read the
 *      reason in the town's list ({T}:absence_reasons, published by the
 *      worker from PostgreSQL: code -> "1" when a proof is required),
 *      and check that the proof cited (document_id, optional unless the
 *      reason requires one) is one of the family's uploads
 *      ({f}:documents, written by guichet-office).  Before the first
 *      publication of the list (no such key), "medical" alone is
 *      accepted, its certificate optional, as before issue 25;
 *   2. append an "absence" entry to the stream (the worker records the
 *      justification en_examen in PostgreSQL; an invoice made before the
 *      town accepts it bills the booking), drop the billed mark (a second
 *      justification of a late cancellation is 404), and add the demande
 *      to the family's list.
 *
 * A booking of another family is not found: nothing can be probed.
 */

#include <stdio.h>
#include <string.h>

#include "gch_keys.h"
#include "resp.h"


#define GCH_ABS_LOOKUP   0
#define GCH_ABS_RECORD   1
#define GCH_ABS_DONE     2


struct gch_absence_s {
    const gch_alloc_t     *a;
    const gch_town_t      *town;
    const gch_family_t    *family;
    char                   bid[72];
    char                   reason[40];
    char                   doc[72];
    int64_t                now_ms;
    long long              number;
    int                    step;
    int                    status;
    char                  *body;
    size_t                 body_len;
    gch_cmdlist_t          cmds;
};


/* See gch.h.  GCH_ENOMEM leaves nothing in *out. */
int
gch_absence_plan(gch_absence_t **out, const gch_town_t *t,
    const gch_family_t *f, const char *bid, const char *reason,
    const char *doc, int64_t now_ms, const gch_alloc_t *a,
    gch_error_t *err)
{
    char            key[256];
    gch_absence_t  *j;

    *out = NULL;

    j = a->alloc(a->ctx, sizeof(gch_absence_t));
    if (j == NULL) {
        gch_error_set(err, GCH_ENOMEM, NULL);
        return GCH_ENOMEM;
    }

    memset(j, 0, sizeof(gch_absence_t));
    j->a = a;
    j->town = t;
    j->family = f;
    j->now_ms = now_ms;
    snprintf(j->bid, sizeof(j->bid), "%s", bid);
    snprintf(j->reason, sizeof(j->reason), "%s", reason);
    snprintf(j->doc, sizeof(j->doc), "%s", doc ? doc : "");
    gch_cmdlist_init(&j->cmds, a);

    gch_cmdlist_cmd(&j->cmds, "MULTI", NULL);
    snprintf(key, sizeof(key), GCH_KEY_F(GCH_KEY_BOOKINGS), j->town->id, f->id);
    gch_cmdlist_cmd(&j->cmds, "HGET", key, j->bid, NULL);
    snprintf(key, sizeof(key), GCH_KEY_F(GCH_KEY_BILLED), j->town->id, f->id);
    gch_cmdlist_cmd(&j->cmds, "HGET", key, j->bid, NULL);
    gch_cmdlist_cmd(&j->cmds, "INCR", j->town->keys.seq_demande, NULL);
    snprintf(key, sizeof(key), GCH_KEY_ABSENCE_REASONS, j->town->id);
    gch_cmdlist_cmd(&j->cmds, "HGET", key, j->reason, NULL);
    gch_cmdlist_cmd(&j->cmds, "EXISTS", key, NULL);
    if (j->doc[0]) {
        snprintf(key, sizeof(key), GCH_KEY_F(GCH_KEY_DOCUMENTS), j->town->id,
                 f->id);
        gch_cmdlist_cmd(&j->cmds, "SISMEMBER", key, j->doc, NULL);
    }
    gch_cmdlist_cmd(&j->cmds, "EXEC", NULL);

    if (j->cmds.failed) {
        gch_absence_free(j);
        gch_error_set(err, GCH_ENOMEM, NULL);
        return GCH_ENOMEM;
    }

    *out = j;
    return GCH_OK;
}


const gch_cmds_t *
gch_absence_next(gch_absence_t *j)
{
    return (j->step == GCH_ABS_DONE || j->cmds.list.ncmds == 0)
           ? NULL : &j->cmds.list;
}


static int
gch_absence_record(gch_absence_t *j)
{
    char       key[256], rid[32], at[26];
    char      *entry;
    yajl_gen   g;

    snprintf(rid, sizeof(rid), "D-%06lld", j->number);
    gch_instant_format(j->now_ms / 1000, at);

    gch_cmdlist_free(&j->cmds);
    gch_cmdlist_cmd(&j->cmds, "MULTI", NULL);

    /* the stream entry the worker persists */

    g = gch_gen_new(j->a);
    if (g == NULL) {
        return GCH_ENOMEM;
    }

    yajl_gen_map_open(g);
    gch_gen_kv(g, "type", "absence");
    gch_gen_ki(g, "number", j->number);
    gch_gen_kv(g, "request_id", rid);
    gch_gen_kv(g, "booking_id", j->bid);
    gch_gen_kv(g, "family_id", j->family->id);
    gch_gen_kv(g, "reason", j->reason);
    gch_gen_kv(g, "document_id", j->doc[0] ? j->doc : NULL);
    gch_gen_ki(g, "at_ms", j->now_ms);
    yajl_gen_map_close(g);

    entry = gch_gen_detach(g, j->a, NULL);
    if (entry == NULL) {
        return GCH_ENOMEM;
    }

    gch_cmdlist_cmd(&j->cmds, "XADD", j->town->keys.stream, "*", "d", entry,
                    NULL);
    j->a->free(j->a->ctx, entry);

    snprintf(key, sizeof(key), GCH_KEY_F(GCH_KEY_BILLED), j->town->id,
             j->family->id);
    gch_cmdlist_cmd(&j->cmds, "HDEL", key, j->bid, NULL);

    /* the demande the family sees */

    g = gch_gen_new(j->a);
    if (g == NULL) {
        return GCH_ENOMEM;
    }

    yajl_gen_map_open(g);
    gch_gen_kv(g, "request_id", rid);
    gch_gen_ki(g, "number", j->number);
    gch_gen_kv(g, "type", "justification");
    gch_gen_kv(g, "created_at", at);
    gch_gen_kv(g, "status", "traitee_positivement");
    gch_gen_str(g, "reasons");
    yajl_gen_array_open(g);
    yajl_gen_array_close(g);
    gch_gen_kv(g, "booking_id", j->bid);
    yajl_gen_map_close(g);

    entry = gch_gen_detach(g, j->a, NULL);
    if (entry == NULL) {
        return GCH_ENOMEM;
    }

    snprintf(key, sizeof(key), GCH_KEY_F(GCH_KEY_DEMANDES), j->town->id,
             j->family->id);
    gch_cmdlist_cmd(&j->cmds, "LPUSH", key, entry, NULL);
    gch_cmdlist_cmd(&j->cmds, "LTRIM", key, "0", "199", NULL);
    j->a->free(j->a->ctx, entry);

    gch_cmdlist_cmd(&j->cmds, "EXEC", NULL);
    j->step = GCH_ABS_RECORD;

    return j->cmds.failed ? GCH_ENOMEM : GCH_OK;
}


/* Answers the error err (status, code, message) and ends the saga. */
static void
gch_absence_refuse(gch_absence_t *j, int status, const char *code,
    const char *message)
{
    gch_error_t  err;

    memset(&err, 0, sizeof(gch_error_t));
    err.status = status;
    err.code = code;
    snprintf(err.message, sizeof(err.message), "%s", message);

    j->step = GCH_ABS_DONE;
    j->status = status;

    if (gch_render_error(&err, j->a, &j->body, &j->body_len) != GCH_OK) {
        j->body = NULL;
    }
}


/* See gch.h.  GCH_EREDIS on an unexpected reply (then answer 503). */
int
gch_absence_on_reply(gch_absence_t *j, const redisReply *exec)
{
    int       proof;
    yajl_gen  g;

    if (exec == NULL || exec->type != REDIS_REPLY_ARRAY) {
        j->step = GCH_ABS_DONE;
        return GCH_EREDIS;
    }

    if (j->step == GCH_ABS_LOOKUP) {
        if (exec->elements != (j->doc[0] ? 6 : 5)
            || exec->element[2]->type != REDIS_REPLY_INTEGER
            || (exec->element[3]->type != REDIS_REPLY_STRING
                && exec->element[3]->type != REDIS_REPLY_NIL)
            || exec->element[4]->type != REDIS_REPLY_INTEGER
            || (j->doc[0] && exec->element[5]->type != REDIS_REPLY_INTEGER))
        {
            j->step = GCH_ABS_DONE;
            return GCH_EREDIS;
        }

        j->number = exec->element[2]->integer;

        if (exec->element[0]->type != REDIS_REPLY_STRING
            && exec->element[1]->type != REDIS_REPLY_STRING)
        {
            gch_absence_refuse(j, 404, "not_found",
                               "Cette réservation n'existe pas ou n'est "
                               "pas facturée.");
            return j->body ? GCH_OK : GCH_ENOMEM;
        }

        /* the reason must be one of the town's; before the list is
         * published, only "medical" */
        proof = exec->element[3]->type == REDIS_REPLY_STRING
                && exec->element[3]->len == 1
                && exec->element[3]->str[0] == '1';

        if (exec->element[4]->integer
            ? exec->element[3]->type != REDIS_REPLY_STRING
            : strcmp(j->reason, "medical") != 0)
        {
            gch_absence_refuse(j, 400, "invalid_field",
                               "reason : ce motif n'est pas un de ceux "
                               "que la commune accepte "
                               "(GET /api/absence-reasons).");
            return j->body ? GCH_OK : GCH_ENOMEM;
        }

        if (proof && j->doc[0] == '\0') {
            gch_absence_refuse(j, 400, "invalid_field",
                               "document_id : ce motif demande un "
                               "justificatif ; déposez-le d'abord "
                               "(POST /api/documents).");
            return j->body ? GCH_OK : GCH_ENOMEM;
        }

        /* the proof must be one the family uploaded */
        if (j->doc[0] && exec->element[5]->integer != 1) {
            gch_absence_refuse(j, 400, "invalid_field",
                               "document_id : ce document n'est pas parmi "
                               "ceux déposés par votre famille.");
            return j->body ? GCH_OK : GCH_ENOMEM;
        }

        return gch_absence_record(j);
    }

    j->step = GCH_ABS_DONE;

    g = gch_gen_new(j->a);
    if (g == NULL) {
        return GCH_ENOMEM;
    }

    {
        char  rid[32];

        snprintf(rid, sizeof(rid), "D-%06lld", j->number);

        yajl_gen_map_open(g);
        gch_gen_kv(g, "booking_id", j->bid);
        gch_gen_kv(g, "status", "en_examen");
        gch_gen_str(g, "billed");
        yajl_gen_bool(g, 1);
        gch_gen_kv(g, "reason", j->reason);
        gch_gen_kv(g, "request_id", rid);
        yajl_gen_map_close(g);
    }

    j->body = gch_gen_detach(g, j->a, &j->body_len);
    j->status = 200;

    return j->body ? GCH_OK : GCH_ENOMEM;
}


int
gch_absence_status(const gch_absence_t *j)
{
    return j->status;
}


const char *
gch_absence_body(const gch_absence_t *j, size_t *len)
{
    *len = j->body_len;
    return j->body;
}


void
gch_absence_free(gch_absence_t *j)
{
    if (j == NULL) {
        return;
    }

    gch_cmdlist_free(&j->cmds);
    j->a->free(j->a->ctx, j->body);
    j->a->free(j->a->ctx, j);
}
