/*
 * attachment.c -- guichet-office: the messagerie's attachments (issue 25).
 *
 *   family   POST /api/message-attachments?name=     raw PDF/JPEG/PNG → 201
 *            GET  /api/message-attachments/{id}      the file
 *   staff    POST /api/staff/message-attachments?name=
 *            GET  /api/staff/message-attachments/{id}
 *
 * A file is uploaded first (its bytes checked as the documents' are,
 * gcho_doc_bytes_check; at most office_upload_max bytes), then named in
 * the "attachments" of the message that carries it (message.c,
 * gcho_attach_bind), in the message's transaction.  Until then it is its
 * uploader's alone, and an uploader keeps at most GCHO_ATTACH_PENDING of
 * them (413 `attachment_limit`).  A bound attachment is read by the
 * thread's family and by staff; another family's, like an unknown id, is
 * 404.  The file is written as documents are (gcho_doc_store: temporary
 * file, row, rename, directory fsync), under office_upload_dir with a
 * random name.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "office.h"


#define GCHO_ATTACH_PENDING  10

#define GCHO_ATTACH_JSON                                                     \
    "json_build_object('id', a.id, 'filename', a.filename,"                  \
    " 'content_type', a.content_type, 'size', a.size)"


static const char  gcho_attach_missing[] = "Cette pièce jointe n'existe pas.";


static int
gcho_attach_id_ok(const char *id)
{
    size_t  n;

    n = strlen(id);
    return n > 0 && n <= 18 && strspn(id, "0123456789") == n;
}


/* POST /api/message-attachments, /api/staff/message-attachments */
static int
gcho_attach_upload(gcho_req_t *rq)
{
    int          rc, staff;
    char         stored[64], tmp[4096], final[4096], name[128], size[24];
    char         hex[crypto_hash_sha256_BYTES * 2 + 1], msg[200];
    char         target[GCHO_ID_MAX + 16];
    uint8_t      rnd[16], sum[crypto_hash_sha256_BYTES];
    PGresult    *res;
    const char  *sniffed, *dir, *p[7];

    staff = rq->route->auth == GCHO_STAFF;
    sniffed = NULL;

    rc = gcho_doc_bytes_check(rq, &sniffed);
    if (rc != GCHO_GO) {
        return rc;
    }

    gcho_doc_upload_name(rq, "piece-jointe", sniffed, name, sizeof(name));

    crypto_hash_sha256(sum, (const uint8_t *) rq->body, rq->body_len);
    sodium_bin2hex(hex, sizeof(hex), sum, sizeof(sum));

    randombytes_buf(rnd, sizeof(rnd));
    sodium_bin2hex(stored, sizeof(stored), rnd, sizeof(rnd));
    strcat(stored, gcho_doc_ext(sniffed));

    dir = gcho_ctx.conf.office_upload_dir;
    snprintf(tmp, sizeof(tmp), "%s/.tmp-%s", dir, stored);
    snprintf(final, sizeof(final), "%s/%s", dir, stored);
    snprintf(size, sizeof(size), "%zu", rq->body_len);

    if (gcho_begin(rq) != 0) {
        return 0;
    }

    /* the uploads not yet sent, counted under the uploader's lock */
    p[0] = staff ? NULL : rq->family_id;
    p[1] = staff ? rq->staff : NULL;
    res = gcho_sql(rq, "select pg_advisory_xact_lock(hashtext("
                       "   'message_attachment:' || coalesce($1, '')"
                       "   || ':' || coalesce($2, ''))),"
                       " (select count(*) from message_attachment"
                       "   where message_id is null"
                       "   and family_id is not distinct from $1"
                       "   and from_staff is not distinct from $2)",
                   2, p);
    if (res == NULL) {
        gcho_rollback();
        return 0;
    }
    rc = atoi(PQgetvalue(res, 0, 1)) >= GCHO_ATTACH_PENDING;
    PQclear(res);

    if (rc) {
        gcho_rollback();
        snprintf(msg, sizeof(msg), "Vous avez déjà %d pièces jointes qui "
                 "attendent leur message : envoyez-le avant d'en joindre "
                 "d'autres.", GCHO_ATTACH_PENDING);
        return gcho_error(rq, 413, "attachment_limit", msg);
    }

    p[2] = name;
    p[3] = sniffed;
    p[4] = size;
    p[5] = hex;
    p[6] = stored;

    rc = gcho_doc_store(rq, "insert into message_attachment (family_id,"
                            "   from_staff, filename, content_type, size,"
                            "   sha256, stored_name)"
                            " values ($1, $2, $3, $4, $5, $6, $7)"
                            " returning id", p, 7, tmp, final, dir);
    if (rc != GCHO_GO) {
        return rc;
    }

    snprintf(target, sizeof(target), "attachment:%s", rq->param[0]);

    if (gcho_audit(rq, "message.attachment", target, NULL) != 0
        || gcho_commit(rq) != 0)
    {
        (void) unlink(final);
        return 0;
    }

    p[0] = rq->param[0];
    return gcho_reply_row(rq, 201, "select " GCHO_ATTACH_JSON
                                   " from message_attachment a"
                                   " where a.id = $1", 1, p,
                          gcho_attach_missing);
}


/*
 * GET /api/message-attachments/{id}: bound to one of the family's
 * threads, or its own upload not yet sent.  GET
 * /api/staff/message-attachments/{id}: bound to any thread, or the staff
 * member's own upload not yet sent.
 */
static int
gcho_attach_get(gcho_req_t *rq)
{
    int          rc, staff;
    PGresult    *res;
    const char  *p[3];

    if (!gcho_attach_id_ok(rq->param[0])) {
        return gcho_error(rq, 404, "not_found", gcho_attach_missing);
    }

    staff = rq->route->auth == GCHO_STAFF;

    p[0] = rq->param[0];
    p[1] = staff ? NULL : rq->family_id;
    p[2] = staff ? rq->staff : NULL;
    rc = gcho_sql_row(rq, &res, gcho_attach_missing,
                      "select a.stored_name, a.content_type, a.filename"
                      " from message_attachment a"
                      " left join message m on m.id = a.message_id"
                      " left join message_thread t on t.id = m.thread_id"
                      " where a.id = $1"
                      " and (case when a.message_id is null"
                      "   then a.family_id is not distinct from $2"
                      "     and a.from_staff is not distinct from $3"
                      "   else $2::text is null or t.family_id = $2 end)",
                      3, p);
    if (rc != GCHO_GO) {
        return rc;
    }

    return gcho_stored_file_reply(rq, res, "attachment");
}


/* See office.h. */
int
gcho_attach_parse(gcho_req_t *rq, const gch_jnode_t *v, char *out,
    size_t size, int *n)
{
    int                 i, k;
    size_t              used;
    const gch_jnode_t  *e, *o;

    *n = 0;
    snprintf(out, size, "{}");

    if (v == NULL) {
        return 0;
    }

    if (v->type != GCH_J_ARRAY || v->len > GCHO_ATTACH_PER_MESSAGE) {
        gcho_error(rq, 400, "invalid_field", "$.attachments : au "
                   "plus 5 pièces jointes (leurs numéros)");
        return -1;
    }

    used = 1;
    out[0] = '{';

    for (e = v->child, i = 0; e != NULL; e = e->next, i++) {
        if (e->type != GCH_J_NUMBER || e->len == 0 || e->len > 18
            || strspn(e->str, "0123456789") < e->len || e->str[0] == '0')
        {
            gcho_error(rq, 400, "invalid_field", "$.attachments : "
                       "des numéros de pièces jointes attendus");
            return -1;
        }

        for (o = v->child, k = 0; k < i; o = o->next, k++) {
            if (o->len == e->len && memcmp(o->str, e->str, e->len) == 0) {
                gcho_error(rq, 400, "invalid_field",
                           "$.attachments : une pièce jointe est "
                           "nommée deux fois");
                return -1;
            }
        }

        if (used + e->len + 2 >= size) {
            gcho_error(rq, 400, "invalid_field",
                       "$.attachments : trop de pièces jointes");
            return -1;
        }

        if (i > 0) {
            out[used++] = ',';
        }
        memcpy(out + used, e->str, e->len);
        used += e->len;
    }

    out[used++] = '}';
    out[used] = '\0';
    *n = i;

    return 0;
}


/* See office.h. */
int
gcho_attach_bind(gcho_req_t *rq, const char *mid, const char *ids, int n)
{
    int          bound;
    const char  *p[4];

    if (n == 0) {
        return 0;
    }

    p[0] = mid;
    p[1] = ids;
    p[2] = rq->route->auth == GCHO_STAFF ? rq->staff : NULL;
    p[3] = rq->route->auth == GCHO_STAFF ? NULL : rq->family_id;

    bound = gcho_sql_changed(rq, "update message_attachment"
                                 " set message_id = $1"
                                 " where id = any($2::bigint[])"
                                 " and message_id is null"
                                 " and from_staff is not distinct from $3"
                                 " and family_id is not distinct from $4",
                             4, p);
    if (bound < 0) {
        return -1;
    }

    if (bound != n) {
        gcho_error(rq, 400, "invalid_field", "$.attachments : une pièce "
                   "jointe n'existe pas, n'est pas la vôtre ou est déjà "
                   "envoyée");
        return -1;
    }

    return 0;
}


const gcho_route_t  gcho_attachment_routes[] = {
    { "POST", "/api/message-attachments", GCHO_FAMILY, 0, GCHO_BODY_UPLOAD,
      gcho_attach_upload },
    { "GET", "/api/message-attachments/*", GCHO_FAMILY, 0, 0,
      gcho_attach_get },
    { "POST", "/api/staff/message-attachments", GCHO_STAFF, GCHO_AGENT,
      GCHO_BODY_UPLOAD, gcho_attach_upload },
    { "GET", "/api/staff/message-attachments/*", GCHO_STAFF, GCHO_AGENT, 0,
      gcho_attach_get },
    { NULL, NULL, 0, 0, 0, NULL }
};
