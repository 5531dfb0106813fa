/*
 * ngx_http_guichet_api.h -- the rooms of the /api/ requests, private to
 * the module (docs/architecture.md, "The module's rooms").
 *
 *   _routes.c   the route table and its dispatcher: which handler, which
 *               method, who must be authenticated, who must prove their
 *               Origin; the 401, 403 and 405 answers are the table's;
 *   _op.c       answers and errors, the body, and the lifecycle of an
 *               "op" (an operation that may outlive its request);
 *   _session.c  login, logout, cookies, tokens, the Origin check, login
 *               throttling (its policy is the engine's);
 *   _book.c     bookings (the family's and the counter's), the sold-out
 *               cache's use;
 *   _cancel.c   cancellation and justified absences (engine-driven steps);
 *   _views.c    read views (sessions, planning, requests, me, activities),
 *               invoices, health;
 *   _metrics.c  the counters, /metrics and $guichet_family.
 *
 * Each may call _op.c, _session.c's token functions and _metrics.c's
 * counters; handlers are reached only through the route table.
 */

#ifndef NGX_HTTP_GUICHET_API_H
#define NGX_HTTP_GUICHET_API_H

#include "ngx_http_guichet.h"


#define NGX_HTTP_GUICHET_LOGIN_MAX     128
#define NGX_HTTP_GUICHET_PASSWORD_MAX  256
#define NGX_HTTP_GUICHET_FID_MAX       128
#define NGX_HTTP_GUICHET_OP_FMT        8      /* op->fmt[] slots */
#define NGX_HTTP_GUICHET_CLIENT_MAX    (NGX_SOCKADDR_STRLEN + 4)


typedef struct ngx_http_guichet_op_s  ngx_http_guichet_op_t;
typedef struct ngx_http_guichet_big_s  ngx_http_guichet_big_t;

/* a piece of an op's memory that did not fit in its block (_op.c) */
struct ngx_http_guichet_big_s {
    ngx_http_guichet_big_t       *next;
    ngx_http_guichet_big_t       *prev;
};

struct ngx_http_guichet_op_s {
    ngx_http_request_t           *r;            /* NULL once detached */
    ngx_pool_cleanup_t           *cln;
    ngx_event_t                   deadline;
    struct timeval                start;

    ngx_http_guichet_tenant_t    *town;         /* the location's town */
    ngx_http_guichet_cat_t       *cat;          /* referenced catalogue */
    const gch_family_t           *family;
    char                          fid[NGX_HTTP_GUICHET_FID_MAX];

    char                         *body;         /* heap copy */
    size_t                        body_len;
    char                          idem[65];
    size_t                        idem_len;

    gch_booking_req_t             req;
    unsigned                      have_req:1;
    unsigned                      staff:1;      /* the counter: on site */
    unsigned                      full_checked:1;  /* Redis knows the
                                                     key: no shortcut */
    ngx_http_guichet_op_t        *idem_next;    /* waiting for the
                                                   turn's EXISTS (_book.c) */
    gch_book_t                   *book;
    gch_cancel_t                 *cancel;
    gch_absence_t                *absence;
    gch_wait_t                   *wait;
    gch_view_t                   *view;
    gch_cmds_t                    cmds;         /* module-formatted */
    char                         *fmt[NGX_HTTP_GUICHET_OP_FMT];
    int                           fmt_len[NGX_HTTP_GUICHET_OP_FMT];
    ngx_uint_t                    nfmt;

    void                        (*on_reply)(ngx_http_guichet_op_t *op,
                                            redisReply *reply);
    ngx_http_client_body_handler_pt  body_handler; /* set while reading */
    char                          login[NGX_HTTP_GUICHET_LOGIN_MAX];
    char                          password[NGX_HTTP_GUICHET_PASSWORD_MAX];
    char                          hash[256];
    ngx_uint_t                    verified;
    ngx_uint_t                    retry_after;  /* seconds, 429 */
    long long                     over_budget;  /* the family's budget:
                                                   the 429's seconds */
    char                          client[NGX_HTTP_GUICHET_CLIENT_MAX];
    unsigned                      unknown:1;    /* login: dummy hash */
    unsigned                      unchecked:1;  /* login: argon2id
                                                   had no memory */
    gch_login_verdict_t           verdict;
    char                          agent[NGX_HTTP_GUICHET_LOGIN_MAX];
                                                /* staff: their login */
    ngx_str_t                     answer;       /* login: 200 body, and */
    ngx_str_t                     cookie;       /* its Set-Cookie (pool) */

    /* the op's memory: its block after the op, then the heap (_op.c) */
    gch_alloc_t                   alloc;
    u_char                       *mem_last;     /* the block's free part */
    u_char                       *mem_prev;     /* its most recent piece */
    ngx_http_guichet_big_t       *big;          /* pieces on the heap */
};


/* The op's town id, the first argument of every key (gch_keys.h). */
#define NGX_HTTP_GUICHET_T(op)  ((char *) (op)->town->id.data)


/* What the route table found out before calling a handler. */
typedef struct {
    char                          fid[NGX_HTTP_GUICHET_FID_MAX];
                                                /* the token's account */
    ngx_uint_t                    cookie;       /* token from the cookie */
    ngx_str_t                     arg;          /* the path's "*" */
} ngx_http_guichet_call_t;

typedef ngx_int_t (*ngx_http_guichet_route_pt)(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call);


/* The texts of the answers more than one room gives. */
#define NGX_HTTP_GUICHET_FAMILY_MSG                                          \
    "Connectez-vous pour accéder à votre espace."
#define NGX_HTTP_GUICHET_AGENT_MSG                                           \
    "Un jeton d'agent du guichet est nécessaire."
#define NGX_HTTP_GUICHET_BEHIND_MSG                                          \
    "Votre compte vient d'être ouvert : ce guichet le découvre dans un "     \
    "instant. Réessayez dans une seconde."
#define NGX_HTTP_GUICHET_UNKNOWN_MSG                                         \
    "Ce compte n'est pas connu de ce guichet."


/* _op.c: answers */

int64_t ngx_http_guichet_now_ms(void);
ngx_int_t ngx_http_guichet_own_answer(ngx_http_request_t *r);
ngx_int_t ngx_http_guichet_send(ngx_http_request_t *r, ngx_uint_t status,
    const char *body, size_t len, ngx_uint_t replayed, ngx_str_t *cookie);
/* rc: a GCH_E* of the engine's table of errors (status and code) */
ngx_int_t ngx_http_guichet_error(ngx_http_request_t *r, int rc,
    const char *message);
ngx_int_t ngx_http_guichet_engine_error(ngx_http_request_t *r,
    const gch_error_t *err);
ngx_int_t ngx_http_guichet_unavailable(ngx_http_request_t *r);
ngx_int_t ngx_http_guichet_not_found(ngx_http_request_t *r);
ngx_int_t ngx_http_guichet_not_allowed(ngx_http_request_t *r);
/* 401 unauthenticated with message; the body is discarded first */
ngx_int_t ngx_http_guichet_unauthenticated(ngx_http_request_t *r,
    const char *message);
/* 403 bad_origin; the body is discarded first */
ngx_int_t ngx_http_guichet_bad_origin(ngx_http_request_t *r);
ngx_int_t ngx_http_guichet_discard(ngx_http_request_t *r);
ngx_table_elt_t *ngx_http_guichet_header(ngx_http_request_t *r,
    const char *name, size_t len);

/* _op.c: the body */

ngx_uint_t ngx_http_guichet_is_json(ngx_http_request_t *r);
ngx_int_t ngx_http_guichet_not_json(ngx_http_request_t *r);

/* _op.c: the catalogue as a request sees it */

gch_town_t *ngx_http_guichet_town(ngx_http_request_t *r);
ngx_int_t ngx_http_guichet_tokc_find(const u_char *hash,
    ngx_http_guichet_tenant_t *town, void *conf, char *fid, size_t size);
void ngx_http_guichet_tokc_enter(const u_char *hash,
    ngx_http_guichet_tenant_t *town, void *conf, int64_t expires,
    const char *fid);
const gch_family_t *ngx_http_guichet_tokc_family(ngx_http_request_t *r,
    gch_town_t *town, const char *fid);
ngx_uint_t ngx_http_guichet_behind(ngx_http_request_t *r, const char *fid);
ngx_int_t ngx_http_guichet_unknown_family(ngx_http_request_t *r,
    const char *fid);
ngx_int_t ngx_http_guichet_family(ngx_http_request_t *r, const char *fid,
    gch_town_t **town, const gch_family_t **family);

/* _op.c: operations */

typedef void (*ngx_http_guichet_op_pt)(ngx_http_guichet_op_t *op,
    redisReply *reply);

ngx_http_guichet_op_t *ngx_http_guichet_op_new(ngx_http_request_t *r);
void ngx_http_guichet_op_free(ngx_http_guichet_op_t *op);
/* ngx_http_guichet_opmem.c: an op's block (a spare one, or a new one),
 * given back; the op's gch_alloc_t (op->alloc), ctx the op. */
ngx_http_guichet_op_t *ngx_http_guichet_op_block(ngx_log_t *log);
void ngx_http_guichet_op_release(ngx_http_guichet_op_t *op);
void *ngx_http_guichet_op_alloc(void *ctx, size_t size);
void ngx_http_guichet_op_mfree(void *ctx, void *p);
ngx_http_request_t *ngx_http_guichet_op_detach(ngx_http_guichet_op_t *op);
void ngx_http_guichet_op_answer(ngx_http_guichet_op_t *op, ngx_uint_t status,
    const char *body, size_t len, ngx_uint_t replayed, ngx_str_t *cookie);
void ngx_http_guichet_op_fail(ngx_http_guichet_op_t *op, int rc,
    const char *message);
void ngx_http_guichet_op_engine_error(ngx_http_guichet_op_t *op,
    gch_error_t *err, int fallback);
void ngx_http_guichet_op_unavailable(ngx_http_guichet_op_t *op);
ngx_int_t ngx_http_guichet_op_send(ngx_http_guichet_op_t *op,
    const gch_cmds_t *cmds, ngx_http_guichet_op_pt on_reply);
ngx_int_t ngx_http_guichet_op_start(ngx_http_request_t *r,
    ngx_http_guichet_op_t *op, const gch_cmds_t *cmds,
    ngx_http_guichet_op_pt on_reply);
ngx_int_t ngx_http_guichet_op_read_body(ngx_http_request_t *r,
    ngx_http_guichet_op_t *op, ngx_http_client_body_handler_pt post_handler);
ngx_int_t ngx_http_guichet_op_collect(ngx_http_guichet_op_t *op);
ngx_int_t ngx_http_guichet_op_format(ngx_http_guichet_op_t *op, ngx_uint_t n,
    const char **fmts, const char *arg, size_t arg_len);
void ngx_http_guichet_op_reset(ngx_http_guichet_op_t *op);


/* _session.c */

ngx_int_t ngx_http_guichet_token(ngx_http_request_t *r, ngx_str_t *tok,
    ngx_uint_t *cookie);
ngx_int_t ngx_http_guichet_auth(ngx_http_request_t *r, char *fid,
    size_t size, ngx_uint_t *cookie);
ngx_int_t ngx_http_guichet_origin_ok(ngx_http_request_t *r);
ngx_int_t ngx_http_guichet_login(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call);
ngx_int_t ngx_http_guichet_logout(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call);


/* _book.c */

ngx_int_t ngx_http_guichet_book_family(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call);
ngx_int_t ngx_http_guichet_book_staff(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call);


/* _cancel.c */

ngx_int_t ngx_http_guichet_cancel(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call);
ngx_int_t ngx_http_guichet_waitlist(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call);
ngx_int_t ngx_http_guichet_absence(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call);


/* _views.c */

ngx_int_t ngx_http_guichet_health(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call);
ngx_int_t ngx_http_guichet_activities(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call);
ngx_int_t ngx_http_guichet_sessions(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call);
ngx_int_t ngx_http_guichet_me(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call);
ngx_int_t ngx_http_guichet_planning(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call);
ngx_int_t ngx_http_guichet_requests(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call);
ngx_int_t ngx_http_guichet_invoices(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call);
ngx_int_t ngx_http_guichet_invoice_pdf(ngx_http_request_t *r,
    ngx_http_guichet_call_t *call);


/* _metrics.c: the counters */

void ngx_http_guichet_count(ngx_uint_t status);
void ngx_http_guichet_observe(struct timeval *start);
void ngx_http_guichet_count_cells(gch_book_t *book);

#endif /* NGX_HTTP_GUICHET_API_H */
