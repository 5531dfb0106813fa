/*
 * ngx_http_guichet_book.c -- POST /api/bookings (a family) and
 * POST /api/staff/bookings (the counter, for the family its body names).
 *
 * The saga, in the order a request goes through it: book reads the body,
 * book_body parses it (the counter's goes through staff_check first),
 * book_go plans it with the engine and sends step one (or, when the
 * sold-out cache or the not-yet-open shortcut answers, the idempotency
 * check first), step1_done feeds step one's reply and sends step two,
 * step2_done answers, step3_done ends the demande list's occasional
 * trim.  The engine decides; this file
 * only carries its commands and its answers.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "gch_cluster.h"
#include "gch_keys.h"
#include "ngx_http_guichet_api.h"


/* booking attempts of this worker process: their {T}:inflight members */
static uint32_t  ngx_http_guichet_attempts;


/*
 * The idempotency checks of this turn of the event loop (the requests the
 * sold-out cache or the not-yet-open shortcut answers), sent together at
 * its end: one EXISTS of all their keys per town (a town's keys share one
 * hash tag, one cluster slot).
 */
#define NGX_HTTP_GUICHET_IDEM_BATCH  128

/* a cluster routes the EXISTS by the slot of its keys, computed from
 * commands of up to GCH_CLUSTER_ARGV_MAX arguments (more: not sent, 503) */
#if (NGX_HTTP_GUICHET_IDEM_BATCH + 1 > GCH_CLUSTER_ARGV_MAX)
#error "NGX_HTTP_GUICHET_IDEM_BATCH: an EXISTS a cluster could not route"
#endif

typedef struct {
    ngx_uint_t                    nops;
    char                         *cmd;          /* hiredis's format */
    gch_cmd_t                     one;
    gch_cmds_t                    cmds;
    ngx_http_guichet_op_t        *ops[1];
} ngx_http_guichet_idem_batch_t;

static ngx_http_guichet_op_t   *ngx_http_guichet_idem_first;
static ngx_http_guichet_op_t  **ngx_http_guichet_idem_last;
static ngx_uint_t               ngx_http_guichet_idem_n;
static ngx_event_t              ngx_http_guichet_idem_ev;


static ngx_int_t ngx_http_guichet_book(ngx_http_request_t *r, const char *fid,
    ngx_uint_t staff);
static void ngx_http_guichet_book_body(ngx_http_request_t *r);
static void ngx_http_guichet_staff_check(ngx_http_guichet_op_t *op);
static void ngx_http_guichet_staff_checked(ngx_http_guichet_op_t *op,
    redisReply *reply);
static void ngx_http_guichet_book_go(ngx_http_guichet_op_t *op);
static void ngx_http_guichet_book_step1_send(ngx_http_guichet_op_t *op);
static void ngx_http_guichet_book_budget_checked(ngx_http_guichet_op_t *op,
    redisReply *reply);
static void ngx_http_guichet_book_idem_checked(ngx_http_guichet_op_t *op,
    redisReply *reply);
static void ngx_http_guichet_book_step1_done(ngx_http_guichet_op_t *op,
    redisReply *reply);
static void ngx_http_guichet_book_step2_done(ngx_http_guichet_op_t *op,
    redisReply *reply);
static void ngx_http_guichet_book_step3_done(ngx_http_guichet_op_t *op,
    redisReply *reply);
static void ngx_http_guichet_book_step3_answer(ngx_http_guichet_op_t *op,
    redisReply *reply);
static void ngx_http_guichet_book_answer(ngx_http_guichet_op_t *op);
static ngx_uint_t ngx_http_guichet_idem_key(ngx_http_request_t *r,
    ngx_http_guichet_op_t *op);
static void ngx_http_guichet_idem_add(ngx_http_guichet_op_t *op);
static void ngx_http_guichet_idem_flush(ngx_event_t *ev);
static void ngx_http_guichet_idem_send(ngx_http_guichet_op_t **ops,
    ngx_uint_t n);
static void ngx_http_guichet_idem_done(redisReply *reply, void *data);
static int ngx_http_guichet_sold_out(const gch_session_t *s, void *ctx);
static void ngx_http_guichet_remember_full(ngx_http_guichet_op_t *op);


ngx_int_t
ngx_http_guichet_book_family(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call)
{
    return ngx_http_guichet_book(r, call->fid, 0);
}


ngx_int_t
ngx_http_guichet_book_staff(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call)
{
    return ngx_http_guichet_book(r, call->fid, 1);
}


static ngx_int_t
ngx_http_guichet_book(ngx_http_request_t *r, const char *fid,
    ngx_uint_t staff)
{
    gch_town_t             *town;
    ngx_http_guichet_op_t  *op;
    const gch_family_t     *family;

    town = ngx_http_guichet_town(r);
    if (town == NULL) {
        (void) ngx_http_guichet_discard(r);
        return ngx_http_guichet_unavailable(r);
    }

    family = staff ? NULL : ngx_http_guichet_tokc_family(r, town, fid);
    if (family == NULL && !staff) {
        (void) ngx_http_guichet_discard(r);
        return ngx_http_guichet_unknown_family(r, fid);
    }

    if (!ngx_http_guichet_is_json(r)) {
        return ngx_http_guichet_not_json(r);
    }

    op = ngx_http_guichet_op_new(r);
    if (op == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!ngx_http_guichet_idem_key(r, op)) {
        ngx_http_guichet_op_free(op);
        (void) ngx_http_guichet_discard(r);
        return ngx_http_guichet_error(r, GCH_EIDEMKEY,
                   "L'en-tête Idempotency-Key (1 à 64 caractères "
                   "A-Z a-z 0-9 _ -) est obligatoire.");
    }

    op->cat = ngx_http_guichet_cat_acquire(op->town);
    op->family = family;
    op->staff = staff;
    ngx_cpystrn((u_char *) op->fid, (u_char *) fid, sizeof(op->fid));

    return ngx_http_guichet_op_read_body(r, op, ngx_http_guichet_book_body);
}


static void
ngx_http_guichet_book_body(ngx_http_request_t *r)
{
    int                            rc;
    gch_error_t                    err;
    ngx_http_guichet_op_t         *op;
    ngx_http_guichet_main_conf_t  *gmcf;

    gmcf = ngx_http_get_module_main_conf(r, ngx_http_guichet_module);
    op = ngx_http_get_module_ctx(r, ngx_http_guichet_module);

    ngx_memzero(&err, sizeof(gch_error_t));

    rc = (op->staff ? gch_staff_req_parse : gch_booking_req_parse)
             (&op->req, op->body ? op->body : "", op->body_len,
              gmcf->max_items, &op->alloc, &err);
    if (rc != GCH_OK) {
        ngx_http_guichet_op_engine_error(op, &err, GCH_EBADJSON);
        ngx_http_guichet_op_free(op);
        return;
    }

    op->have_req = 1;

    if (op->staff) {
        /* the counter books for the family named in the body */
        op->family = gch_town_family(op->cat->town, op->req.family_id,
                                     ngx_strlen(op->req.family_id));
        if (op->family == NULL) {
            ngx_http_guichet_op_fail(op, GCH_ENOTFOUND,
                                     "Cette famille n'existe pas.");
            ngx_http_guichet_op_free(op);
            return;
        }

        /* op->fid was the token's "staff:<login>" */
        ngx_cpystrn((u_char *) op->agent, (u_char *) op->fid + 6,
                    sizeof(op->agent));
        ngx_cpystrn((u_char *) op->fid, (u_char *) op->family->id,
                    sizeof(op->fid));

        ngx_http_guichet_staff_check(op);
        return;
    }

    ngx_http_guichet_book_go(op);
}


static void
ngx_http_guichet_staff_check(ngx_http_guichet_op_t *op)
{
    u_char      hash[NGX_HTTP_GUICHET_TOKEN_HASH];
    u_char      hex[2 * NGX_HTTP_GUICHET_TOKEN_HASH + 1];
    ngx_str_t   tok;
    ngx_uint_t  cookie;

    if (ngx_http_guichet_token(op->r, &tok, &cookie) != NGX_OK) {
        ngx_http_guichet_op_fail(op, GCH_EUNAUTH, NGX_HTTP_GUICHET_AGENT_MSG);
        ngx_http_guichet_op_free(op);
        return;
    }

    ngx_http_guichet_token_hash(tok.data, tok.len, hash);
    ngx_hex_dump(hex, hash, NGX_HTTP_GUICHET_TOKEN_HASH);
    hex[2 * NGX_HTTP_GUICHET_TOKEN_HASH] = '\0';

    ngx_http_guichet_op_reset(op);

    op->fmt_len[0] = redisFormatCommand(&op->fmt[0], "MULTI");
    op->fmt_len[1] = redisFormatCommand(&op->fmt[1],
                                        "HGET " GCH_KEY_STAFF " %s",
                                        NGX_HTTP_GUICHET_T(op), op->agent);
    op->fmt_len[2] = redisFormatCommand(&op->fmt[2],
                                        "ZSCORE " GCH_KEY_REVOKED " %s",
                                        NGX_HTTP_GUICHET_T(op), hex);
    op->fmt_len[3] = redisFormatCommand(&op->fmt[3], "EXEC");
    op->nfmt = 4;

    if (ngx_http_guichet_op_collect(op) != NGX_OK
        || ngx_http_guichet_op_send(op, &op->cmds,
                                    ngx_http_guichet_staff_checked)
           != NGX_OK)
    {
        ngx_http_guichet_op_unavailable(op);
        ngx_http_guichet_op_free(op);
    }
}


/*
 * The counter: the agent's account must be active ({T}:staff, published
 * from staff_account by the worker, guichetctl staff-add and
 * guichet-office) and the token not ended ({T}:revoked, read here rather
 * than from the worker's copy, which may lag by guichet_catalogue_refresh):
 * a deactivated agent, or a token from before a password change, books
 * nothing.
 */
static void
ngx_http_guichet_staff_checked(ngx_http_guichet_op_t *op, redisReply *reply)
{
    if (op->r == NULL) {
        ngx_http_guichet_op_free(op);
        return;
    }

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 2)
    {
        ngx_http_guichet_op_unavailable(op);
        ngx_http_guichet_op_free(op);
        return;
    }

    if (reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_NIL)
    {
        ngx_http_guichet_op_fail(op, GCH_EUNAUTH,
                                 "Ce jeton d'agent n'est plus valable "
                                 "(compte désactivé ou mot de passe "
                                 "changé) : reconnectez-vous.");
        ngx_http_guichet_op_free(op);
        return;
    }

    ngx_http_guichet_book_go(op);
}


/* Plans the booking and sends step one (or answers from the cache). */
static void
ngx_http_guichet_book_go(ngx_http_guichet_op_t *op)
{
    int                            rc;
    long long                      retry_after;
    gch_error_t                    err;
    gch_book_in_t                  in;
    ngx_http_guichet_main_conf_t  *gmcf;

    gmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_guichet_module);
    ngx_memzero(&err, sizeof(gch_error_t));
    ngx_memzero(&in, sizeof(gch_book_in_t));

    in.town = op->cat->town;
    in.family = op->family;
    in.req = &op->req;
    in.now_ms = ngx_http_guichet_now_ms();
    in.idem_key = op->idem;
    in.idem_len = op->idem_len;
    in.body = op->body;
    in.body_len = op->body_len;
    in.idem_ttl_s = gmcf->idempotency_ttl;
    in.inflight_ttl_s = 3600;
    in.catalogue_gen = op->cat->gen;
    in.onsite = op->staff;
    /*
     * with the body's hash, unique to this attempt: the process, and its
     * counter from a random start (a later process with the same pid
     * does not count again from 1)
     */
    if (ngx_http_guichet_attempts == 0) {
        ngx_http_guichet_attempts = (uint32_t) ngx_random();
    }
    in.attempt = ((uint64_t) (uint32_t) ngx_pid << 32)
                 | ++ngx_http_guichet_attempts;
    in.refused_ttl_s = GCH_REFUSED_TTL_S;
    in.agent = op->staff ? op->agent : NULL;

    rc = gch_book_plan(&op->book, &in, &op->alloc, &err);
    if (rc != GCH_OK) {
        ngx_http_guichet_op_engine_error(op, &err, GCH_ENOMEM);
        ngx_http_guichet_op_free(op);
        return;
    }

    /*
     * Answered at once, after one EXISTS of the idempotency record: a
     * request before the opening (every cell not_open_yet, whatever
     * guichet_full_cache says), or one the sold-out cache refuses.  Once
     * Redis said it knows the key (full_checked), the saga runs.
     */
    if (!op->full_checked && !op->staff) {
        rc = gch_book_not_open_yet(op->book);
        if (rc == 0 && gmcf->full_cache) {
            rc = gch_book_sold_out(op->book, ngx_http_guichet_sold_out,
                                   op->cat);
        }

        if (rc != 0) {
            if (rc != 1) {
                ngx_http_guichet_op_unavailable(op);
                ngx_http_guichet_op_free(op);
                return;
            }

            ngx_http_guichet_idem_add(op);
            return;
        }
    }

    /*
     * What one family can make the system keep is bounded (issue 18): its
     * budget, in this host's shared memory, is charged before step one; a
     * family past it costs Redis one read (EXISTS of its key), no write:
     * only a key Redis knows (a booking that went through while its
     * client got 503) goes on to step one and gets its replay, like in
     * the sold-out shortcut.  Not the counter's agents.
     */
    if (!op->staff) {
        retry_after = ngx_http_guichet_budget_charge(&op->town->id,
                                                     op->family->id,
                                                     op->req.nitems,
                                                     in.now_ms);
        if (retry_after > 0) {
            op->over_budget = retry_after;

            if (ngx_http_guichet_op_send(op, gch_book_idem_check(op->book),
                                       ngx_http_guichet_book_budget_checked)
                != NGX_OK)
            {
                ngx_http_guichet_op_unavailable(op);
                ngx_http_guichet_op_free(op);
            }

            return;
        }
    }

    ngx_http_guichet_book_step1_send(op);
}


/* Step one goes to Redis, or the request is answered 503. */
static void
ngx_http_guichet_book_step1_send(ngx_http_guichet_op_t *op)
{
    if (ngx_http_guichet_op_send(op, gch_book_step1(op->book),
                                 ngx_http_guichet_book_step1_done)
        != NGX_OK)
    {
        ngx_http_guichet_op_unavailable(op);
        ngx_http_guichet_op_free(op);
    }
}


/*
 * The sold-out cache would answer "full" at once, the not-yet-open
 * shortcut "not_open_yet", but only a key Redis does not know may get
 * that answer: a known one (a booking that went through while its client
 * got 503, a concurrent twin, a key first sent after the opening) gets
 * its replay, 409 or 422 the normal way.
 */
static void
ngx_http_guichet_book_idem_checked(ngx_http_guichet_op_t *op,
    redisReply *reply)
{
    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 0) {
        ngx_http_guichet_book_answer(op);
        ngx_http_guichet_op_free(op);
        return;
    }

    if (op->r == NULL || reply == NULL
        || reply->type != REDIS_REPLY_INTEGER)
    {
        ngx_http_guichet_op_unavailable(op);
        ngx_http_guichet_op_free(op);
        return;
    }

    gch_book_free(op->book);
    op->book = NULL;
    op->full_checked = 1;

    ngx_http_guichet_book_go(op);
}


/*
 * The op waits for the end of this turn of the event loop, when the keys
 * of every request waiting like it go to Redis in one EXISTS: Redis's
 * count is the number of those keys it knows, read in one step, so a 0
 * says of each key what its own EXISTS would have said (0), and each
 * request is answered at once.  Any other count (a replay, a concurrent
 * twin among them), or an error (a cluster's TRYAGAIN while the town's
 * slot migrates), sends each request's own EXISTS, as a request alone in
 * its turn does from the start.  One command and one reply instead of
 * one each: Redis's, hiredis's and the adapter's work per command is
 * shared by the turn's refusals.
 */
static void
ngx_http_guichet_idem_add(ngx_http_guichet_op_t *op)
{
    ngx_event_t  *ev;

    ev = &ngx_http_guichet_idem_ev;

    if (ev->handler == NULL) {
        ev->handler = ngx_http_guichet_idem_flush;
        ev->log = ngx_cycle->log;
    }

    if (ngx_http_guichet_idem_n == 0) {
        ngx_http_guichet_idem_first = NULL;
        ngx_http_guichet_idem_last = &ngx_http_guichet_idem_first;
    }

    op->idem_next = NULL;
    *ngx_http_guichet_idem_last = op;
    ngx_http_guichet_idem_last = &op->idem_next;

    if (++ngx_http_guichet_idem_n >= NGX_HTTP_GUICHET_IDEM_BATCH) {
        if (ev->posted) {
            ngx_delete_posted_event(ev);
        }

        ngx_http_guichet_idem_flush(ev);
        return;
    }

    if (!ev->posted) {
        ngx_post_event(ev, &ngx_posted_events);
    }
}


/* The turn's end: its waiting requests, one EXISTS per town. */
static void
ngx_http_guichet_idem_flush(ngx_event_t *ev)
{
    ngx_uint_t                  n, k;
    ngx_http_guichet_op_t      *op, *next, *rest, **tail;
    ngx_http_guichet_op_t      *ops[NGX_HTTP_GUICHET_IDEM_BATCH];
    ngx_http_guichet_tenant_t  *town;

    rest = ngx_http_guichet_idem_n ? ngx_http_guichet_idem_first : NULL;
    ngx_http_guichet_idem_n = 0;

    while (rest) {
        town = rest->town;
        n = 0;
        tail = &rest;

        for (op = rest; op; op = next) {
            next = op->idem_next;

            if (op->town == town) {
                ops[n++] = op;
                *tail = next;

            } else {
                tail = &op->idem_next;
            }
        }

        for (k = 0; k < n; k++) {
            ops[k]->idem_next = NULL;
        }

        ngx_http_guichet_idem_send(ops, n);
    }
}


static void
ngx_http_guichet_idem_send(ngx_http_guichet_op_t **ops, ngx_uint_t n)
{
    int                             len;
    ngx_uint_t                      i;
    const char                     *argv[NGX_HTTP_GUICHET_IDEM_BATCH + 1];
    size_t                          argvlen[NGX_HTTP_GUICHET_IDEM_BATCH + 1];
    ngx_http_guichet_idem_batch_t  *batch;

    if (n == 1) {
        if (ngx_http_guichet_op_send(ops[0], gch_book_idem_check(ops[0]->book),
                                     ngx_http_guichet_book_idem_checked)
            != NGX_OK)
        {
            ngx_http_guichet_op_unavailable(ops[0]);
            ngx_http_guichet_op_free(ops[0]);
        }

        return;
    }

    batch = ngx_alloc(sizeof(ngx_http_guichet_idem_batch_t)
                      + (n - 1) * sizeof(ngx_http_guichet_op_t *),
                      ngx_cycle->log);
    if (batch == NULL) {
        goto failed;
    }

    argv[0] = "EXISTS";
    argvlen[0] = sizeof("EXISTS") - 1;

    for (i = 0; i < n; i++) {
        batch->ops[i] = ops[i];
        argv[i + 1] = gch_book_idem_rkey(ops[i]->book);
        argvlen[i + 1] = ngx_strlen(argv[i + 1]);
    }

    batch->nops = n;
    batch->cmd = NULL;

    len = redisFormatCommandArgv(&batch->cmd, (int) n + 1, argv, argvlen);
    if (len < 0) {
        ngx_free(batch);
        goto failed;
    }

    batch->one.data = batch->cmd;
    batch->one.len = (size_t) len;
    batch->cmds.cmds = &batch->one;
    batch->cmds.ncmds = 1;

    if (ngx_http_guichet_redis_send(&batch->cmds, ngx_http_guichet_idem_done,
                                    batch)
        != NGX_OK)
    {
        redisFreeCommand(batch->cmd);
        ngx_free(batch);
        goto failed;
    }

    return;

failed:

    for (i = 0; i < n; i++) {
        ngx_http_guichet_op_unavailable(ops[i]);
        ngx_http_guichet_op_free(ops[i]);
    }
}


/* The turn's EXISTS answered (or the connection failed: NULL). */
static void
ngx_http_guichet_idem_done(redisReply *reply, void *data)
{
    ngx_http_guichet_idem_batch_t  *batch = data;

    ngx_uint_t              i;
    ngx_http_guichet_op_t  *op;

    for (i = 0; i < batch->nops; i++) {
        op = batch->ops[i];

        if (reply == NULL
            || (reply->type == REDIS_REPLY_INTEGER && reply->integer == 0))
        {
            /* 0: none known, each answered; no reply: 503 */
            ngx_http_guichet_book_idem_checked(op, reply);
            continue;
        }

        /*
         * Redis knows one of the keys at least, or refused the EXISTS of
         * several keys (TRYAGAIN: the town's slot is migrating and these
         * keys are on neither node; an EXISTS of one key is answered
         * after ASK): each asks alone
         */

        if (ngx_http_guichet_op_send(op, gch_book_idem_check(op->book),
                                     ngx_http_guichet_book_idem_checked)
            != NGX_OK)
        {
            ngx_http_guichet_op_unavailable(op);
            ngx_http_guichet_op_free(op);
        }
    }

    redisFreeCommand(batch->cmd);
    ngx_free(batch);
}


/*
 * Past the family's budget: 429 rate_limited, unless Redis knows the key
 * (its replay, 409 or 422, the normal way: step one's claims of a known
 * key are undone by step two, nothing more is kept).
 */
static void
ngx_http_guichet_book_budget_checked(ngx_http_guichet_op_t *op,
    redisReply *reply)
{
    if (op->r == NULL) {
        ngx_http_guichet_op_free(op);
        return;
    }

    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        ngx_http_guichet_op_unavailable(op);
        ngx_http_guichet_op_free(op);
        return;
    }

    if (reply->integer == 0) {
        if (gch_book_over_budget(op->book, op->over_budget) == GCH_OK) {
            ngx_http_guichet_book_answer(op);
        } else {
            ngx_http_guichet_op_unavailable(op);
        }

        ngx_http_guichet_op_free(op);
        return;
    }

    ngx_http_guichet_book_step1_send(op);
}


static void
ngx_http_guichet_book_step1_done(ngx_http_guichet_op_t *op, redisReply *reply)
{
    int                rc;
    const gch_cmds_t  *cmds;

    rc = gch_book_on_step1(op->book, reply);

    if (rc != GCH_OK) {
        if (reply && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "guichet: redis refused step one: %s", reply->str);
        }

        ngx_http_guichet_op_unavailable(op);
        ngx_http_guichet_op_free(op);
        return;
    }

    if (!op->staff) {
        ngx_http_guichet_remember_full(op);
    }

    cmds = gch_book_step2(op->book);

    if (cmds == NULL) {
        ngx_http_guichet_book_answer(op);
        ngx_http_guichet_op_free(op);
        return;
    }

    /*
     * Step two is sent even if the client left or the deadline passed: the
     * answer is then stored under the idempotency key for the retry.  The
     * SET ... XX GET fence catches a reaper that got there first.
     */

    if (ngx_http_guichet_op_send(op, cmds, ngx_http_guichet_book_step2_done)
        != NGX_OK)
    {
        ngx_http_guichet_op_unavailable(op);
        ngx_http_guichet_op_free(op);
    }
}


static void
ngx_http_guichet_book_step2_done(ngx_http_guichet_op_t *op, redisReply *reply)
{
    int                rc;
    const gch_cmds_t  *cmds;

    rc = gch_book_on_step2(op->book, reply);

    if (rc == GCH_EFENCED) {
        if (ngx_http_guichet_worker.metrics) {
            (void) ngx_atomic_fetch_add(
                       &ngx_http_guichet_worker.metrics->fenced, 1);
        }

        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "guichet: booking attempt of family \"%s\" was reaped "
                      "before its second step, undone", op->fid);

        ngx_http_guichet_book_answer(op);

        if (ngx_http_guichet_op_send(op, gch_book_step3(op->book),
                                     ngx_http_guichet_book_step3_done)
            != NGX_OK)
        {
            ngx_http_guichet_op_free(op);
        }

        return;
    }

    if (rc != GCH_OK) {
        ngx_http_guichet_op_unavailable(op);

    } else if (gch_book_answer_after_step3(op->book)) {
        /* a swap: its old places are back before the answer says them
         * released (the reaper finishes if step three fails) */
        if (ngx_http_guichet_op_send(op, gch_book_step3(op->book),
                                     ngx_http_guichet_book_step3_answer)
            == NGX_OK)
        {
            return;
        }

        ngx_http_guichet_book_answer(op);

    } else {
        ngx_http_guichet_book_answer(op);

        /* the demande list's trim, now and then */
        cmds = gch_book_step3(op->book);
        if (cmds != NULL
            && ngx_http_guichet_op_send(op, cmds,
                                        ngx_http_guichet_book_step3_done)
               == NGX_OK)
        {
            return;
        }
    }

    ngx_http_guichet_op_free(op);
}


static void
ngx_http_guichet_book_step3_done(ngx_http_guichet_op_t *op, redisReply *reply)
{
    ngx_http_guichet_op_free(op);
}


static void
ngx_http_guichet_book_step3_answer(ngx_http_guichet_op_t *op,
    redisReply *reply)
{
    ngx_http_guichet_book_answer(op);
    ngx_http_guichet_op_free(op);
}


/* helpers */

static void
ngx_http_guichet_book_answer(ngx_http_guichet_op_t *op)
{
    size_t       len;
    const char  *body;

    body = gch_book_body(op->book, &len);

    if (body == NULL) {
        ngx_http_guichet_op_unavailable(op);
        return;
    }

    ngx_http_guichet_count_cells(op->book);
    op->retry_after = (ngx_uint_t) gch_book_retry_after(op->book);
    ngx_http_guichet_op_answer(op, gch_book_status(op->book), body, len,
                               gch_book_replayed(op->book), NULL);
}


static ngx_uint_t
ngx_http_guichet_idem_key(ngx_http_request_t *r, ngx_http_guichet_op_t *op)
{
    u_char           *p;
    ngx_table_elt_t  *h;

    h = ngx_http_guichet_header(r, "Idempotency-Key", 15);
    if (h == NULL || h->value.len == 0 || h->value.len > 64) {
        return 0;
    }

    for (p = h->value.data; p < h->value.data + h->value.len; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
        {
            return 0;
        }
    }

    ngx_memcpy(op->idem, h->value.data, h->value.len);
    op->idem_len = h->value.len;
    op->idem[op->idem_len] = '\0';

    return 1;
}


/*
 * The sold-out cache (guichet_full_cache): sessions this worker saw full
 * lately.  A request whose every open cell is on one of them is refused
 * "full" at once, without Redis; a released place may thus be refused for
 * at most guichet_full_cache after its release.
 */
static int
ngx_http_guichet_sold_out(const gch_session_t *s, void *ctx)
{
    size_t                         i;
    int64_t                        now, until;
    ngx_http_guichet_cat_t        *cat = ctx;
    ngx_http_guichet_main_conf_t  *gmcf;

    i = s - cat->town->sessions;
    until = cat->full_until[i];
    now = ngx_http_guichet_now_ms();

    if (until <= now) {
        return 0;
    }

    /*
     * In the entry's last quarter, one request goes on to step one, which
     * sees the session as it is now: still full, the entry is renewed
     * before it ends (remember_full); a place free again, that request
     * takes it and the entry ends at its time.  The others are refused at
     * once until then, as before.  Without this renewal every request in
     * flight when the entry ended went through the whole saga (2 to 4 %
     * of a sold-out rush's requests, each with its writes).
     */
    if (cat->full_probe[i] != until) {
        gmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                                   ngx_http_guichet_module);

        if (until - now <= (int64_t) gmcf->full_cache / 4) {
            cat->full_probe[i] = until;
            return 0;
        }
    }

    return 1;
}


static void
ngx_http_guichet_remember_full(ngx_http_guichet_op_t *op)
{
    size_t                         i, n;
    int64_t                        until;
    const gch_session_t           *s;
    ngx_http_guichet_main_conf_t  *gmcf;

    gmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_guichet_module);
    if (gmcf == NULL || gmcf->full_cache == 0) {
        return;
    }

    until = ngx_http_guichet_now_ms() + gmcf->full_cache;
    n = gch_book_ncells(op->book);

    for (i = 0; i < n; i++) {
        s = gch_book_cell_session(op->book, i);

        if (s && gch_book_cell_outcome(op->book, i) == GCH_REASON_FULL) {
            op->cat->full_until[s - op->cat->town->sessions] = until;
        }
    }
}
