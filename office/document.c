/*
 * document.c -- guichet-office: documents: upload, list, download, staff
 * decisions.
 *
 * A family uploads a file as the raw body of POST /api/documents?type=...
 * (PDF, JPEG or PNG: the type is read from the bytes by the engine,
 * gch_sniff_document, and must be the declared Content-Type).  The file
 * goes to office_upload_dir under a random name: written to a temporary
 * file, fsync'ed, then renamed in the transaction that inserts its row
 * (status 'deposee'); if that transaction fails, the file is removed, so
 * a refused or failed upload leaves neither a row nor a file.
 *
 * Staff accept a document with its validity dates, or refuse it with a
 * reason.  An accepted document counts for the booking rule
 * documents_missing once the publisher has laid it over the catalogue
 * (worker/overlay.c): the decision marks the catalogue changed in its own
 * transaction.  Each decision e-mails the family and is audited.
 *
 * A family keeps at most office_documents_max documents and
 * office_documents_bytes_max bytes of them (every status counts: the
 * files stay on disk); an upload beyond either is answered 413
 * `document_quota` and writes nothing.  The name a document is served
 * under keeps the client's stem but always ends with the extension of the
 * type read from the bytes (evil.html holding a PDF is served as
 * evil.pdf); the stored file's name is random with that extension.
 *
 * Medical certificates (type certificat_medical) are uploaded here before
 * the website justifies an absence with POST /api/absences (the module's
 * endpoint): an upload adds its id to {T}:f:<fid>:documents in Redis, the
 * set the module checks that document_id against.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "office.h"


#define GCHO_DOC_JSON                                                        \
    "json_build_object('id', d.id, 'family_id', d.family_id,"                \
    " 'family_login', (select f.login from family f"                         \
    "   where f.id = d.family_id),"                                          \
    " 'child_id', d.child_id, 'child_first_name', (select c.first_name"      \
    "   from child c where c.id = d.child_id),"                              \
    " 'type', d.type, 'filename', d.filename,"                               \
    " 'content_type', d.content_type, 'size', d.size, 'sha256', d.sha256,"   \
    " 'status', d.status, 'reason', d.reason, 'valid_from', d.valid_from,"   \
    " 'valid_to', d.valid_to, 'uploaded_at', d.uploaded_at,"                 \
    " 'decided_at', d.decided_at, 'decided_by', d.decided_by)"


static const char  gcho_doc_missing[] = "Ce document n'existe pas.";


static int
gcho_doc_not_found(gcho_req_t *rq)
{
    return gcho_error(rq, 404, "not_found", gcho_doc_missing);
}


/* Runs sql (one row, one JSON text column) and answers it with status. */
static int
gcho_doc_json(gcho_req_t *rq, int status, const char *sql, int n,
    const char *const *p)
{
    return gcho_reply_row(rq, status, sql, n, p, gcho_doc_missing);
}


static int
gcho_doc_id_ok(const char *id)
{
    size_t  n;

    n = strlen(id);
    return n > 0 && n <= 18 && strspn(id, "0123456789") == n;
}


static int
gcho_doc_type_ok(const char *t)
{
    size_t  n;

    n = strlen(t);
    return n > 0 && n <= 64
           && strspn(t, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}


const char *
gcho_doc_ext(const char *type)
{
    return strcmp(type, "application/pdf") == 0 ? ".pdf"
           : strcmp(type, "image/jpeg") == 0 ? ".jpg" : ".png";
}


/*
 * The name a document is served under: name (gch_filename_clean's, in
 * name[size]) keeps its stem; its extension becomes the one of type
 * (".jpeg" is kept for a JPEG).
 */
static void
gcho_doc_name_ext(char *name, size_t size, const char *type)
{
    char        *dot;
    size_t       n;
    const char  *ext;

    ext = gcho_doc_ext(type);

    dot = strrchr(name, '.');
    if (dot != NULL
        && (strcasecmp(dot, ext) == 0
            || (strcmp(ext, ".jpg") == 0 && strcasecmp(dot, ".jpeg") == 0)))
    {
        return;
    }

    if (dot != NULL && dot != name) {
        *dot = '\0';
    }

    n = strlen(name);
    if (n + strlen(ext) >= size) {
        n = size - 1 - strlen(ext);
    }
    memcpy(name + n, ext, strlen(ext) + 1);
}


/*
 * The family's documents so far and this one (len bytes) within
 * office_documents_max and office_documents_bytes_max: 0; -1 after
 * answering 413 `document_quota` (or 503).  Inside the upload's
 * transaction, the family's row locked: two uploads of one family are
 * counted one after the other.
 */
static int
gcho_doc_quota(gcho_req_t *rq, size_t len)
{
    char          msg[200];
    long long     n, bytes;
    PGresult     *res;
    const char   *p[1];

    p[0] = rq->family_id;
    res = gcho_sql(rq, "select (select count(*) from document"
                       "   where family_id = f.id),"
                       " (select coalesce(sum(size), 0) from document"
                       "   where family_id = f.id)"
                       " from family f where f.id = $1 for update", 1, p);
    if (res == NULL) {
        return -1;
    }

    n = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    bytes = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 1), NULL, 10)
                                : 0;
    PQclear(res);

    if (n + 1 <= gcho_ctx.conf.office_documents_max
        && bytes + (long long) len <= gcho_ctx.conf.office_documents_bytes_max)
    {
        return 0;
    }

    gcho_rollback();

    snprintf(msg, sizeof(msg), "Votre espace est plein (%d documents, "
             "%d Mo au plus) : demandez à la mairie d'en retirer avant "
             "d'en déposer d'autres.", gcho_ctx.conf.office_documents_max,
             gcho_ctx.conf.office_documents_bytes_max / (1024 * 1024));
    gcho_error(rq, 413, "document_quota", msg);
    return -1;
}


/* Writes len bytes to path (created, 0600) and fsyncs it; -1 after
 * logging (nothing left). */
int
gcho_doc_write(const char *path, const char *bytes, size_t len)
{
    int      fd;
    ssize_t  n;
    size_t   done;

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        gchb_log("error", "office: %s: %s", path, strerror(errno));
        return -1;
    }

    for (done = 0; done < len; done += n) {
        n = write(fd, bytes + done, len - done);
        if (n < 0) {
            if (errno == EINTR) {
                n = 0;
                continue;
            }
            goto failed;
        }
    }

    if (fsync(fd) != 0) {
        goto failed;
    }

    if (close(fd) != 0) {
        fd = -1;
        goto failed;
    }

    return 0;

failed:

    gchb_log("error", "office: %s: %s", path, strerror(errno));
    if (fd >= 0) {
        close(fd);
    }
    (void) unlink(path);
    return -1;
}


void
gcho_doc_sync_dir(const char *dir)
{
    int  fd;

    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void) fsync(fd);
        close(fd);
    }
}


/*
 * Adds the document to {T}:f:<fid>:documents, the set the module's POST
 * /api/absences checks a document_id against, before the upload commits:
 * Redis may then name a document PostgreSQL does not have (the commit
 * failed), never the reverse.  The publisher rebuilds the sets after a
 * loss of Redis's data (worker/rebuild.c).  0, or -1 after answering 503.
 */
static int
gcho_doc_known(gcho_req_t *rq, const char *fid, const char *id)
{
    redisReply    *r;
    redisContext  *rc;

    rc = gcho_redis(rq);
    if (rc == NULL) {
        return -1;
    }

    r = redisCommand(rc, "SADD " GCH_KEY_F(GCH_KEY_DOCUMENTS) " %s", gchb_town,
                     fid, id);
    if (r != NULL && r->type == REDIS_REPLY_INTEGER) {
        freeReplyObject(r);
        return 0;
    }

    gchb_log("error", "office: redis: SADD " GCH_KEY_F(GCH_KEY_DOCUMENTS)
             ": %s", gchb_town, fid,
             r ? r->str : rc->errstr);
    if (r != NULL) {
        freeReplyObject(r);
    }
    gcho_redis_drop_broken();

    (void) gcho_error(rq, 503, "unavailable",
                      "Le document n'a pas pu être enregistré, "
                      "réessayez dans un instant.");
    return -1;
}


/* The steps of the upload below return GCHO_GO (office.h). */

/* The upload's query and headers: *type, *child (NULL: none), and
 * *sniffed, the content type the bytes are, which must be the one
 * declared. */
static int
gcho_doc_upload_check(gcho_req_t *rq, const char **type, const char **child,
    const char **sniffed)
{
    *type = gcho_query(rq, "type");
    *child = gcho_query(rq, "child_id");

    if (*type == NULL || !gcho_doc_type_ok(*type)) {
        return gcho_error(rq, 400, "invalid_field",
                          "Le paramètre type est obligatoire (lettres "
                          "minuscules, chiffres, _ et -).");
    }

    if (*child != NULL
        && (**child == '\0' || strlen(*child) >= GCHO_ID_MAX))
    {
        return gcho_error(rq, 400, "invalid_field",
                          "Le paramètre child_id est invalide.");
    }

    return gcho_doc_bytes_check(rq, sniffed);
}


/* See office.h. */
int
gcho_doc_bytes_check(gcho_req_t *rq, const char **sniffed)
{
    size_t       ctlen;
    const char  *ct;

    ct = gcho_header(rq, "Content-Type");
    ctlen = ct ? strcspn(ct, "; ") : 0;

    if (ct == NULL
        || !((ctlen == 15 && strncasecmp(ct, "application/pdf", 15) == 0)
             || (ctlen == 10 && strncasecmp(ct, "image/jpeg", 10) == 0)
             || (ctlen == 9 && strncasecmp(ct, "image/png", 9) == 0)))
    {
        return gcho_error(rq, 415, "unsupported_media_type",
                          "Envoyez un fichier PDF, JPEG ou PNG "
                          "(Content-Type application/pdf, image/jpeg ou "
                          "image/png).");
    }

    if (rq->body == NULL || rq->body_len == 0) {
        return gcho_error(rq, 400, "empty_file", "Le fichier est vide.");
    }

    *sniffed = gch_sniff_document((const uint8_t *) rq->body, rq->body_len);
    if (*sniffed == NULL || strlen(*sniffed) != ctlen
        || strncasecmp(ct, *sniffed, ctlen) != 0)
    {
        return gcho_error(rq, 415, "unsupported_media_type",
                          "Le contenu du fichier n'est pas celui d'un PDF, "
                          "d'un JPEG ou d'un PNG, ou ne correspond pas au "
                          "type annoncé.");
    }

    return GCHO_GO;
}


/* See office.h. */
void
gcho_doc_upload_name(gcho_req_t *rq, const char *type, const char *sniffed,
    char *name, size_t size)
{
    const char  *fname;

    fname = gcho_header(rq, "X-Filename");
    if (fname == NULL) {
        fname = gcho_query(rq, "name");
    }
    if (fname == NULL || *fname == '\0') {
        snprintf(name, size, "%s%s", type, gcho_doc_ext(sniffed));
    } else {
        gch_filename_clean(fname, strlen(fname), name, size);
        gcho_doc_name_ext(name, size, sniffed);
    }
}


/* See office.h. */
void
gcho_upload_erase(const char *fid, const char *what)
{
    int          i;
    char         path[1024];
    PGresult    *res, *del;
    const char  *p[1];

    if (gcho_ctx.pg == NULL) {
        return;
    }

    p[0] = fid;
    res = PQexecParams(gcho_ctx.pg, "select stored_name from upload_erasure"
                       " where family_id = $1", 1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        gchb_log("error", "office: %s %s: postgres: %s", what, fid,
                 PQresultErrorMessage(res));
        PQclear(res);
        return;
    }

    for (i = 0; i < PQntuples(res); i++) {
        snprintf(path, sizeof(path), "%s/%s", gcho_ctx.conf.office_upload_dir,
                 PQgetvalue(res, i, 0));
        if (unlink(path) != 0 && errno != ENOENT) {
            gchb_log("error", "office: %s %s: unlink %s: %s", what, fid,
                     path, strerror(errno));
            continue;
        }

        p[0] = PQgetvalue(res, i, 0);
        del = PQexecParams(gcho_ctx.pg, "delete from upload_erasure"
                           " where stored_name = $1", 1, NULL, p, NULL,
                           NULL, 0);
        if (PQresultStatus(del) != PGRES_COMMAND_OK) {
            gchb_log("error", "office: %s %s: postgres: %s", what, fid,
                     PQresultErrorMessage(del));
        }
        PQclear(del);
    }
    PQclear(res);
}


/* See office.h. */
int
gcho_doc_store(gcho_req_t *rq, const char *insert, const char *const *p,
    int np, const char *tmp, const char *final, const char *dir)
{
    if (gcho_doc_write(tmp, rq->body, rq->body_len) != 0) {
        gcho_rollback();
        return gcho_error(rq, 503, "unavailable",
                          "Le document n'a pas pu être enregistré, "
                          "réessayez dans un instant.");
    }

    if (gcho_sql_value(rq, rq->param[0], GCHO_ID_MAX, insert, np, p) < 0) {
        (void) unlink(tmp);
        return 0;
    }

    if (rename(tmp, final) != 0) {
        gchb_log("error", "office: rename %s: %s", tmp, strerror(errno));
        (void) unlink(tmp);
        gcho_rollback();
        return gcho_error(rq, 503, "unavailable",
                          "Le document n'a pas pu être enregistré, "
                          "réessayez dans un instant.");
    }
    gcho_doc_sync_dir(dir);

    return GCHO_GO;
}


/* POST /api/documents?type=<type>&child_id=<id>&name=<file name> */
static int
gcho_doc_upload(gcho_req_t *rq)
{
    int            rc;
    char           stored[64], tmp[4096], final[4096], name[128];
    char           size[24], hex[crypto_hash_sha256_BYTES * 2 + 1];
    char           target[GCHO_ID_MAX + 16];
    uint8_t        rnd[16], sum[crypto_hash_sha256_BYTES];
    const char    *type, *child, *sniffed, *p[9];
    const char    *dir;

    sniffed = NULL;

    rc = gcho_doc_upload_check(rq, &type, &child, &sniffed);
    if (rc != GCHO_GO) {
        return rc;
    }

    gcho_doc_upload_name(rq, type, sniffed, name, sizeof(name));

    crypto_hash_sha256(sum, (const uint8_t *) rq->body, rq->body_len);
    sodium_bin2hex(hex, sizeof(hex), sum, sizeof(sum));

    randombytes_buf(rnd, sizeof(rnd));
    sodium_bin2hex(stored, sizeof(stored), rnd, sizeof(rnd));
    strcat(stored, gcho_doc_ext(sniffed));

    dir = gcho_ctx.conf.office_upload_dir;
    snprintf(tmp, sizeof(tmp), "%s/.tmp-%s", dir, stored);
    snprintf(final, sizeof(final), "%s/%s", dir, stored);
    snprintf(size, sizeof(size), "%zu", rq->body_len);

    if (gcho_begin(rq) != 0 || gcho_doc_quota(rq, rq->body_len) != 0) {
        return 0;
    }

    if (child != NULL) {
        rc = gcho_family_child(rq, child);
        if (rc != GCHO_GO) {
            return rc;
        }
    }

    p[0] = rq->family_id;
    p[1] = child;
    p[2] = type;
    p[3] = name;
    p[4] = sniffed;
    p[5] = size;
    p[6] = hex;
    p[7] = stored;

    rc = gcho_doc_store(rq, "insert into document (family_id, child_id,"
                            "   type, filename, content_type, size,"
                            "   sha256, stored_name)"
                            " values ($1, $2, $3, $4, $5, $6, $7, $8)"
                            " returning id", p, 8, tmp, final, dir);
    if (rc != GCHO_GO) {
        return rc;
    }

    if (gcho_doc_known(rq, rq->family_id, rq->param[0]) != 0) {
        (void) unlink(final);
        gcho_rollback();
        return 0;
    }

    snprintf(target, sizeof(target), "document:%s", rq->param[0]);

    if (gcho_audit(rq, "document.upload", target, NULL) != 0
        || gcho_commit(rq) != 0)
    {
        (void) unlink(final);
        return 0;
    }

    p[0] = rq->param[0];
    return gcho_doc_json(rq, 201, "select " GCHO_DOC_JSON
                                  " from document d where d.id = $1", 1, p);
}


/* GET /api/documents */
static int
gcho_doc_list(gcho_req_t *rq)
{
    const char  *p[1];

    p[0] = rq->family_id;

    return gcho_doc_json(rq, 200,
        "select json_build_object('documents', coalesce(json_agg("
        GCHO_DOC_JSON " order by d.uploaded_at desc, d.id desc), '[]'))"
        " from document d where d.family_id = $1", 1, p);
}


/* See office.h. */
int
gcho_stored_file_reply(gcho_req_t *rq, PGresult *res, const char *what)
{
    int      rc;
    char     path[4096], disp[200];
    char    *bytes;
    size_t   len;

    snprintf(path, sizeof(path), "%s/%s", gcho_ctx.conf.office_upload_dir,
             PQgetvalue(res, 0, 0));

    if (gchb_read_file(path, &bytes, &len) != 0) {
        gchb_log("error", "office: %s %s: %s: %s", what, rq->param[0], path,
                 strerror(errno));
        PQclear(res);
        return gcho_error(rq, 503, "unavailable",
                          "Le fichier est momentanément illisible.");
    }

    /* the name is gch_filename_clean's: no quote, no control byte */
    snprintf(disp, sizeof(disp), "attachment; filename=\"%s\"",
             PQgetvalue(res, 0, 2));

    rc = gcho_reply_bytes(rq, 200,
                          strcmp(PQgetvalue(res, 0, 1), "application/pdf")
                          == 0 ? "application/pdf"
                          : strcmp(PQgetvalue(res, 0, 1), "image/jpeg") == 0
                          ? "image/jpeg" : "image/png",
                          bytes, len);
    gcho_add_header(rq, "Content-Disposition", disp);

    free(bytes);
    PQclear(res);

    return rc;
}


/* Sends the file of document param[0]; family NULL: any family (staff). */
static int
gcho_doc_send(gcho_req_t *rq, const char *family)
{
    int          rc;
    PGresult    *res;
    const char  *p[2];

    if (!gcho_doc_id_ok(rq->param[0])) {
        return gcho_doc_not_found(rq);
    }

    p[0] = rq->param[0];
    p[1] = family;
    rc = gcho_sql_row(rq, &res, gcho_doc_missing,
                      "select stored_name, content_type, filename"
                      " from document where id = $1"
                      " and ($2::text is null or family_id = $2)", 2, p);
    if (rc != GCHO_GO) {
        return rc;
    }

    return gcho_stored_file_reply(rq, res, "document");
}


/* GET /api/documents/{id}: the family's own only (another's is 404) */
static int
gcho_doc_get(gcho_req_t *rq)
{
    return gcho_doc_send(rq, rq->family_id);
}


/*
 * DELETE /api/documents/{id}: the family withdraws one of its uploads
 * while the town has not accepted it (deposee or refusee); an accepted one
 * stays, it lets bookings through (409 already_decided).  Another family's
 * or an unknown id is 404.  The row goes in one transaction with its audit
 * row (document.delete), then the file and the id in {T}:f:<fid>:documents
 * (best effort: Redis may name a document PostgreSQL no longer has, the
 * direction gcho_doc_known already allows).
 */
static int
gcho_doc_delete(gcho_req_t *rq)
{
    int            go;
    char           path[4096], stored[256], type[80];
    char           target[GCHO_ID_MAX + 16];
    PGresult      *res;
    redisReply    *r;
    redisContext  *rc;
    const char    *p[2], *kv[4];

    if (!gcho_doc_id_ok(rq->param[0])) {
        return gcho_doc_not_found(rq);
    }

    if (gcho_begin(rq) != 0) {
        return 0;
    }

    p[0] = rq->param[0];
    p[1] = rq->family_id;
    go = gcho_sql_row(rq, &res, gcho_doc_missing,
                      "select status, stored_name, type from document"
                      " where id = $1 and family_id = $2 for update",
                      2, p);
    if (go != GCHO_GO) {
        return go;
    }

    if (strcmp(PQgetvalue(res, 0, 0), "acceptee") == 0) {
        PQclear(res);
        gcho_rollback();
        return gcho_error(rq, 409, "already_decided",
                          "Ce document a été accepté par la mairie : il "
                          "ne peut plus être supprimé.");
    }

    snprintf(stored, sizeof(stored), "%s", PQgetvalue(res, 0, 1));
    snprintf(type, sizeof(type), "%s", PQgetvalue(res, 0, 2));
    PQclear(res);

    if (gcho_sql_do(rq, "delete from document where id = $1", 1, p) != 0) {
        return 0;
    }

    kv[0] = "type";
    kv[1] = type;
    kv[2] = "family_id";
    kv[3] = rq->family_id;
    snprintf(target, sizeof(target), "document:%s", rq->param[0]);

    if (gcho_audit_kv(rq, "document.delete", target, kv, 2) != 0
        || gcho_commit(rq) != 0)
    {
        return 0;
    }

    snprintf(path, sizeof(path), "%s/%s", gcho_ctx.conf.office_upload_dir,
             stored);
    if (unlink(path) != 0 && errno != ENOENT) {
        gchb_log("error", "office: document %s: unlink %s: %s",
                 rq->param[0], path, strerror(errno));
    }

    /* not gcho_redis(): it would answer 503 for a deletion that is done */
    if (gcho_ctx.redis == NULL || gcho_ctx.redis->err != 0) {
        gcho_redis_drop_broken();
        gcho_ctx.redis = gchb_redis_connect(&gcho_ctx.conf);
    }
    rc = gcho_ctx.redis;
    if (rc != NULL) {
        r = redisCommand(rc, "SREM " GCH_KEY_F(GCH_KEY_DOCUMENTS) " %s",
                         gchb_town, rq->family_id, rq->param[0]);
        if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
            gchb_log("error", "office: redis: SREM "
                     GCH_KEY_F(GCH_KEY_DOCUMENTS) ": %s", gchb_town,
                     rq->family_id, r ? r->str : rc->errstr);
            gcho_redis_drop_broken();
        }
        if (r != NULL) {
            freeReplyObject(r);
        }
    }

    return gcho_reply(rq, 204, "", 0);
}


/* GET /api/staff/documents/{id} */
static int
gcho_doc_staff_get(gcho_req_t *rq)
{
    return gcho_doc_send(rq, NULL);
}


/* GET /api/staff/documents?status=deposee&family_id= */
static int
gcho_doc_staff_list(gcho_req_t *rq)
{
    const char  *p[2], *st;

    st = gcho_query(rq, "status");
    if (st != NULL && strcmp(st, "deposee") != 0
        && strcmp(st, "acceptee") != 0 && strcmp(st, "refusee") != 0)
    {
        return gcho_error(rq, 400, "invalid_field",
                          "Le paramètre status vaut deposee, acceptee ou "
                          "refusee.");
    }

    p[0] = st;
    p[1] = gcho_query(rq, "family_id");

    return gcho_doc_json(rq, 200,
        "select json_build_object('documents', coalesce(json_agg("
        GCHO_DOC_JSON " order by d.uploaded_at, d.id), '[]'))"
        " from document d"
        " where ($1::text is null or d.status = $1)"
        " and ($2::text is null or d.family_id = $2)", 2, p);
}


static const gch_jfield_t  gcho_doc_decision_fields[] = {
    { "decision", GCH_J_STRING, 1 },
    { "reason", GCH_J_STRING | GCH_J_NULL, 0 },
    { "valid_from", GCH_J_STRING | GCH_J_NULL, 0 },
    { "valid_to", GCH_J_STRING | GCH_J_NULL, 0 }
};


static int
gcho_doc_date(gcho_req_t *rq, const char *field, const gch_jnode_t *v,
    char out[11], gch_day_t *d, gch_day_t dflt)
{
    char  msg[96];

    if (v == NULL || v->type != GCH_J_STRING) {
        out[0] = '\0';
        *d = dflt;
        return 0;
    }

    if (gcho_str(rq, field, v, out, 11, 10) != 0) {
        return -1;
    }

    if (gch_day_parse(d, out, 10) != GCH_OK) {
        snprintf(msg, sizeof(msg), "Le champ %s doit être une date "
                 "AAAA-MM-JJ.", field);
        gcho_error(rq, 400, "invalid_field", msg);
        return -1;
    }

    return 0;
}


/* An accepted document counts for booking: the catalogue changes. */
static const gcho_decision_t  gcho_doc_decision = {
    "document",
    "update document set status = $2, reason = $3,"
    "   valid_from = $4, valid_to = $5,"
    "   decided_at = now(), decided_by = $6"
    " where id = $1"
    " returning (extract(epoch from decided_at) * 1000000)::bigint",
    6, 5,
    { "document_accepte", "document_refuse" },
    { "Document accepté", "Document refusé" },
    { 1, 0 }
};


/* POST /api/staff/documents/{id}/decision
 * {decision: acceptee|refusee, reason, valid_from, valid_to} */
static int
gcho_doc_decide(gcho_req_t *rq)
{
    int                 rc, refused;
    char                decision[16], reason[1024], from[11], to[11];
    char                body[1600];
    gch_day_t           df, dt;
    PGresult           *res;
    gch_json_t          doc;
    const char         *p[6], *kv[10];
    const gch_jnode_t  *v[4];

    if (!gcho_doc_id_ok(rq->param[0])) {
        return gcho_doc_not_found(rq);
    }

    if (gcho_body_json(rq, &doc, gcho_doc_decision_fields, 4, v) != 0) {
        return 0;
    }

    rc = gcho_str(rq, "decision", v[0], decision, sizeof(decision), 1) != 0
         || gcho_str(rq, "reason", v[1], reason, sizeof(reason), 0) != 0
         || gcho_doc_date(rq, "valid_from", v[2], from, &df, INT32_MIN) != 0
         || gcho_doc_date(rq, "valid_to", v[3], to, &dt, INT32_MAX) != 0;

    gch_json_free(&doc);

    if (rc) {
        return 0;
    }

    refused = gcho_decision_word(rq, decision, "acceptee", reason);
    if (refused < 0) {
        return 0;
    }

    if (dt < df) {
        return gcho_error(rq, 400, "invalid_field",
                          "Le champ valid_to est avant valid_from.");
    }

    res = gcho_decision_open(rq, "select status, family_id, type, filename"
                                 " from document where id = $1 for update",
                             "deposee", "Ce document n'existe pas.",
                             "Ce document a déjà été traité.");
    if (res == NULL) {
        return 0;
    }

    if (refused) {
        snprintf(body, sizeof(body),
                 "Bonjour,\n\nVotre document « %s » (%s) a été refusé.\n\n"
                 "Motif : %s\n\nVous pouvez en déposer un nouveau dans votre "
                 "espace famille.\n",
                 PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3), reason);
    } else {
        snprintf(body, sizeof(body),
                 "Bonjour,\n\nVotre document « %s » (%s) a été accepté%s%s%s"
                 "%s.\n",
                 PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3),
                 from[0] ? ", valable du " : "", from,
                 to[0] ? (from[0] ? " au " : ", valable jusqu'au ") : "",
                 to);
    }
    PQclear(res);

    p[0] = rq->param[0];
    p[1] = decision;
    p[2] = reason[0] ? reason : NULL;
    p[3] = from[0] ? from : NULL;
    p[4] = to[0] ? to : NULL;
    p[5] = rq->staff;

    kv[0] = "decision";
    kv[1] = decision;
    kv[2] = "reason";
    kv[3] = reason;
    kv[4] = "valid_from";
    kv[5] = from;
    kv[6] = "valid_to";
    kv[7] = to;
    kv[8] = "family_id";
    kv[9] = rq->family_id;

    if (gcho_decision_close(rq, &gcho_doc_decision, refused, p, kv, body)
        != 0)
    {
        return 0;
    }

    return gcho_doc_json(rq, 200, "select " GCHO_DOC_JSON
                                  " from document d where d.id = $1", 1, p);
}


const gcho_route_t  gcho_document_routes[] = {
    { "GET", "/api/documents", GCHO_FAMILY, 0, 0, gcho_doc_list },
    { "POST", "/api/documents", GCHO_FAMILY, 0, GCHO_BODY_UPLOAD,
      gcho_doc_upload },
    { "GET", "/api/documents/*", GCHO_FAMILY, 0, 0, gcho_doc_get },
    { "DELETE", "/api/documents/*", GCHO_FAMILY, 0, 0, gcho_doc_delete },
    { "GET", "/api/staff/documents", GCHO_STAFF, GCHO_AGENT, 0,
      gcho_doc_staff_list },
    { "GET", "/api/staff/documents/*", GCHO_STAFF, GCHO_AGENT, 0,
      gcho_doc_staff_get },
    { "POST", "/api/staff/documents/*/decision", GCHO_STAFF, GCHO_AGENT,
      GCHO_BODY_JSON, gcho_doc_decide },
    { NULL, NULL, 0, 0, 0, NULL }
};
