/*
 * publication.c -- what the town publishes to every family (issue 25):
 * its documents (rules, price lists, menus: PDF files) and its news
 * ("Actualités").  Staff publish in the back office; families read them on
 * their dashboard.
 *
 *   GET    /api/town/documents              family: the documents
 *   GET    /api/town/documents/{id}         family: one file (PDF)
 *   GET    /api/town/news                   family: the news shown today
 *   GET    /api/staff/town-documents        agent: the documents
 *   POST   /api/staff/town-documents?title=&category=&name=
 *                                           agent: a PDF as the raw body
 *   GET    /api/staff/town-documents/{id}   agent: one file
 *   DELETE /api/staff/town-documents/{id}   agent: withdraws it
 *   GET    /api/staff/news                  agent: every news item kept
 *   POST   /api/staff/news                  agent: {title, body, from,
 *                                           until}
 *   PUT    /api/staff/news/{id}             agent: the same fields
 *   DELETE /api/staff/news/{id}             agent: withdraws it
 *
 * A file is checked by its bytes (gch_sniff_document: a PDF only), written
 * under a random name in office_upload_dir and renamed in the transaction
 * that inserts its row, like the families' documents (document.c).  Each
 * staff change is one transaction with its audit row (town_document.*,
 * news.*); withdrawn rows stay (removed_at, removed_by), a withdrawn
 * file is deleted after the commit.  Tables: migration 0045.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sodium.h>

#include "office.h"


#define GCHO_PUB_JSON                                                        \
    "json_build_object('id', d.id, 'title', d.title,"                       \
    " 'category', d.category, 'filename', d.filename, 'size', d.size,"       \
    " 'published_at', d.published_at, 'published_by', d.published_by)"

#define GCHO_NEWS_JSON                                                       \
    "json_build_object('id', n.id, 'title', n.title, 'body', n.body,"       \
    " 'from', n.show_from, 'until', n.show_until,"                           \
    " 'created_at', n.created_at, 'created_by', n.created_by,"               \
    " 'updated_at', n.updated_at, 'updated_by', n.updated_by)"

#define GCHO_TODAY  "(now() at time zone 'Europe/Paris')::date"

#define GCHO_TITLE_MAX  200             /* characters (the table's check) */
#define GCHO_NEWS_MAX   5000


static const char  gcho_pub_missing[] = "Ce document n'existe pas.";
static const char  gcho_news_missing[] = "Cette actualité n'existe pas.";


static int
gcho_pub_id_ok(const char *id)
{
    size_t  n;

    n = strlen(id);
    return n > 0 && n <= 18 && strspn(id, "0123456789") == n;
}


/* UTF-8 characters of s (s valid UTF-8: http.c checks requests). */
static size_t
gcho_pub_chars(const char *s)
{
    size_t  n;

    for (n = 0; *s; s++) {
        n += ((unsigned char) *s & 0xc0) != 0x80;
    }

    return n;
}


/* ------------------------------------------------------------------ */
/* documents                                                            */

/* GET /api/town/documents, /api/staff/town-documents */
static int
gcho_pub_list(gcho_req_t *rq)
{
    return gcho_reply_row(rq, 200,
        "select json_build_object('documents', coalesce(json_agg("
        GCHO_PUB_JSON " order by d.published_at desc, d.id desc), '[]'))"
        "::text from town_publication d where d.removed_at is null",
        0, NULL, "");
}


/* GET /api/town/documents/{id}, /api/staff/town-documents/{id} */
static int
gcho_pub_get(gcho_req_t *rq)
{
    int          rc;
    char         path[4096], disp[300];
    char        *bytes;
    size_t       len;
    PGresult    *res;
    const char  *p[1];

    if (!gcho_pub_id_ok(rq->param[0])) {
        return gcho_error(rq, 404, "not_found", gcho_pub_missing);
    }

    p[0] = rq->param[0];
    rc = gcho_sql_row(rq, &res, gcho_pub_missing,
                      "select stored_name, filename from town_publication"
                      " where id = $1 and removed_at is null", 1, p);
    if (rc != GCHO_GO) {
        return rc;
    }

    snprintf(path, sizeof(path), "%s/%s", gcho_ctx.conf.office_upload_dir,
             PQgetvalue(res, 0, 0));

    if (gchb_read_file(path, &bytes, &len) != 0) {
        gchb_log("error", "office: town document %s: %s: %s", rq->param[0],
                 path, strerror(errno));
        PQclear(res);
        return gcho_error(rq, 503, "unavailable",
                          "Le fichier est momentanément illisible.");
    }

    /* the name is gch_filename_clean's: no quote, no control byte */
    snprintf(disp, sizeof(disp), "attachment; filename=\"%s\"",
             PQgetvalue(res, 0, 1));

    rc = gcho_reply_bytes(rq, 200, "application/pdf", bytes, len);
    gcho_add_header(rq, "Content-Disposition", disp);

    free(bytes);
    PQclear(res);

    return rc;
}


/* The upload's query and body: *title, *category, *name (cleaned). */
static int
gcho_pub_upload_check(gcho_req_t *rq, const char **title,
    const char **category, char *name, size_t size)
{
    size_t       n, ctlen;
    const char  *ct, *sniffed, *fname;

    *title = gcho_query(rq, "title");
    *category = gcho_query(rq, "category");

    if (*title == NULL || (n = gcho_pub_chars(*title)) == 0
        || n > GCHO_TITLE_MAX)
    {
        return gcho_error(rq, 400, "invalid_field",
                          "Le titre (paramètre title) est obligatoire, "
                          "200 caractères au plus.");
    }

    if (*category == NULL
        || (strcmp(*category, "reglement") != 0
            && strcmp(*category, "tarifs") != 0
            && strcmp(*category, "menus") != 0
            && strcmp(*category, "autre") != 0))
    {
        return gcho_error(rq, 400, "invalid_field",
                          "Le paramètre category vaut reglement, tarifs, "
                          "menus ou autre.");
    }

    ct = gcho_header(rq, "Content-Type");
    ctlen = ct ? strcspn(ct, "; ") : 0;

    if (ct == NULL || ctlen != 15
        || strncasecmp(ct, "application/pdf", 15) != 0)
    {
        return gcho_error(rq, 415, "unsupported_media_type",
                          "Envoyez un fichier PDF (Content-Type "
                          "application/pdf).");
    }

    if (rq->body == NULL || rq->body_len == 0) {
        return gcho_error(rq, 400, "empty_file", "Le fichier est vide.");
    }

    sniffed = gch_sniff_document((const uint8_t *) rq->body, rq->body_len);
    if (sniffed == NULL || strcmp(sniffed, "application/pdf") != 0) {
        return gcho_error(rq, 415, "unsupported_media_type",
                          "Le contenu du fichier n'est pas celui d'un "
                          "PDF.");
    }

    fname = gcho_header(rq, "X-Filename");
    if (fname == NULL) {
        fname = gcho_query(rq, "name");
    }
    if (fname == NULL || *fname == '\0') {
        fname = "document.pdf";
    }
    gch_filename_clean(fname, strlen(fname), name, size);

    n = strlen(name);
    if (n < 4 || strcasecmp(name + n - 4, ".pdf") != 0) {
        if (n + 4 >= size) {
            n = size - 5;
        }
        memcpy(name + n, ".pdf", 5);
    }

    return GCHO_GO;
}


/* POST /api/staff/town-documents?title=&category=&name= */
static int
gcho_pub_upload(gcho_req_t *rq)
{
    int          rc;
    char         stored[64], tmp[4096], final[4096], name[128], size[24];
    char         hex[crypto_hash_sha256_BYTES * 2 + 1];
    char         target[GCHO_ID_MAX + 24];
    uint8_t      rnd[16], sum[crypto_hash_sha256_BYTES];
    const char  *title, *category, *dir, *p[7];

    rc = gcho_pub_upload_check(rq, &title, &category, name, sizeof(name));
    if (rc != GCHO_GO) {
        return rc;
    }

    crypto_hash_sha256(sum, (const uint8_t *) rq->body, rq->body_len);
    sodium_bin2hex(hex, sizeof(hex), sum, sizeof(sum));

    randombytes_buf(rnd, sizeof(rnd));
    memcpy(stored, "town-", 5);
    sodium_bin2hex(stored + 5, sizeof(stored) - 5, rnd, sizeof(rnd));
    strcat(stored, ".pdf");

    dir = gcho_ctx.conf.office_upload_dir;
    snprintf(tmp, sizeof(tmp), "%s/.tmp-%s", dir, stored);
    snprintf(final, sizeof(final), "%s/%s", dir, stored);
    snprintf(size, sizeof(size), "%zu", rq->body_len);

    if (gcho_begin(rq) != 0) {
        return 0;
    }

    p[0] = title;
    p[1] = category;
    p[2] = name;
    p[3] = size;
    p[4] = hex;
    p[5] = stored;
    p[6] = rq->staff;

    rc = gcho_doc_store(rq, "insert into town_publication (title, category,"
                            "   filename, size, sha256, stored_name,"
                            "   published_by)"
                            " values ($1, $2, $3, $4, $5, $6, $7)"
                            " returning id", p, 7, tmp, final, dir);
    if (rc != GCHO_GO) {
        return rc;
    }

    snprintf(target, sizeof(target), "town_document:%s", rq->param[0]);
    p[0] = "title";
    p[1] = title;
    p[2] = "category";
    p[3] = category;

    if (gcho_audit_kv(rq, "town_document.publish", target, p, 2) != 0
        || gcho_commit(rq) != 0)
    {
        (void) unlink(final);
        return 0;
    }

    p[0] = rq->param[0];
    return gcho_reply_row(rq, 201, "select " GCHO_PUB_JSON "::text"
                          " from town_publication d where d.id = $1", 1, p,
                          gcho_pub_missing);
}


/* DELETE /api/staff/town-documents/{id} */
static int
gcho_pub_delete(gcho_req_t *rq)
{
    int          rc;
    char         path[4096], target[GCHO_ID_MAX + 24];
    PGresult    *res;
    const char  *p[2];

    if (!gcho_pub_id_ok(rq->param[0])) {
        return gcho_error(rq, 404, "not_found", gcho_pub_missing);
    }

    if (gcho_begin(rq) != 0) {
        return 0;
    }

    p[0] = rq->param[0];
    p[1] = rq->staff;
    rc = gcho_sql_row(rq, &res, gcho_pub_missing,
                      "update town_publication set removed_at = now(),"
                      " removed_by = $2 where id = $1"
                      " and removed_at is null returning stored_name", 2, p);
    if (rc != GCHO_GO) {
        return rc;
    }

    snprintf(path, sizeof(path), "%s/%s", gcho_ctx.conf.office_upload_dir,
             PQgetvalue(res, 0, 0));
    PQclear(res);

    snprintf(target, sizeof(target), "town_document:%s", rq->param[0]);

    if (gcho_audit(rq, "town_document.withdraw", target, NULL) != 0
        || gcho_commit(rq) != 0)
    {
        return 0;
    }

    if (unlink(path) != 0) {
        gchb_log("warn", "office: unlink %s: %s", path, strerror(errno));
    }

    return gcho_reply(rq, 204, "", 0);
}


/* ------------------------------------------------------------------ */
/* news                                                                 */

/* GET /api/town/news: shown today, the newest first */
static int
gcho_news_current(gcho_req_t *rq)
{
    return gcho_reply_row(rq, 200,
        "select json_build_object('news', coalesce(json_agg("
        "json_build_object('id', n.id, 'title', n.title, 'body', n.body,"
        " 'from', n.show_from, 'until', n.show_until)"
        " order by n.show_from desc, n.id desc), '[]'))::text"
        " from town_news n where n.removed_at is null"
        " and n.show_from <= " GCHO_TODAY
        " and (n.show_until is null or n.show_until >= " GCHO_TODAY ")",
        0, NULL, "");
}


/* GET /api/staff/news: every item not withdrawn, past and future too */
static int
gcho_news_list(gcho_req_t *rq)
{
    return gcho_reply_row(rq, 200,
        "select json_build_object('news', coalesce(json_agg("
        GCHO_NEWS_JSON " order by n.show_from desc, n.id desc), '[]'))"
        "::text from town_news n where n.removed_at is null",
        0, NULL, "");
}


static const gch_jfield_t  gcho_news_fields[] = {
    { "title", GCH_J_STRING, 1 },
    { "body", GCH_J_STRING, 1 },
    { "from", GCH_J_STRING, 1 },
    { "until", GCH_J_STRING | GCH_J_NULL, 0 },
};

typedef struct {
    char   title[GCHO_TITLE_MAX * 4 + 1];
    char   body[GCHO_NEWS_MAX * 4 + 1];
    char   from[11];
    char   until[11];                 /* "": none */
} gcho_news_t;


/* A date field "YYYY-MM-DD" into out; -1 after answering 400. */
static int
gcho_news_date(gcho_req_t *rq, const char *field, const gch_jnode_t *v,
    char out[11], gch_day_t *d)
{
    char  msg[96];

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


/* The body of POST and PUT /api/staff/news into *n; -1 after answering. */
static int
gcho_news_body(gcho_req_t *rq, gcho_news_t *n)
{
    int                 rc;
    gch_day_t           df, du;
    gch_json_t          doc;
    const gch_jnode_t  *v[4];

    if (gcho_body_json(rq, &doc, gcho_news_fields, 4, v) != 0) {
        return -1;
    }

    rc = -1;
    n->until[0] = '\0';

    if (gcho_str(rq, "title", v[0], n->title, sizeof(n->title), 1) != 0
        || gcho_str(rq, "body", v[1], n->body, sizeof(n->body), 1) != 0
        || gcho_news_date(rq, "from", v[2], n->from, &df) != 0
        || (v[3] != NULL && v[3]->type == GCH_J_STRING
            && gcho_news_date(rq, "until", v[3], n->until, &du) != 0))
    {
        goto done;
    }

    if (gcho_pub_chars(n->title) > GCHO_TITLE_MAX) {
        gcho_error(rq, 400, "invalid_field",
                   "Le titre fait 200 caractères au plus.");
        goto done;
    }

    if (gcho_pub_chars(n->body) > GCHO_NEWS_MAX) {
        gcho_error(rq, 400, "invalid_field",
                   "Le texte fait 5 000 caractères au plus.");
        goto done;
    }

    if (n->until[0] != '\0' && du < df) {
        gcho_error(rq, 400, "invalid_field",
                   "La date de fin (until) précède la date de début "
                   "(from).");
        goto done;
    }

    rc = 0;

done:

    gch_json_free(&doc);
    return rc;
}


/* POST /api/staff/news, PUT /api/staff/news/{id} */
static int
gcho_news_write(gcho_req_t *rq)
{
    int           rc, put;
    char          target[GCHO_ID_MAX + 16];
    PGresult     *res;
    gcho_news_t  *n;
    const char   *p[6], *kv[4];

    put = strcmp(rq->method, "PUT") == 0;

    if (put && !gcho_pub_id_ok(rq->param[0])) {
        return gcho_error(rq, 404, "not_found", gcho_news_missing);
    }

    n = malloc(sizeof(gcho_news_t));
    if (n == NULL) {
        return -1;
    }

    if (gcho_news_body(rq, n) != 0 || gcho_begin(rq) != 0) {
        free(n);
        return 0;
    }

    p[0] = n->title;
    p[1] = n->body;
    p[2] = n->from;
    p[3] = n->until[0] ? n->until : NULL;
    p[4] = rq->staff;
    p[5] = rq->param[0];

    rc = gcho_sql_row(rq, &res, gcho_news_missing, put
        ? "update town_news set title = $1, body = $2, show_from = $3,"
          " show_until = $4, updated_at = now(), updated_by = $5"
          " where id = $6 and removed_at is null returning id"
        : "insert into town_news (title, body, show_from, show_until,"
          " created_by, updated_by) values ($1, $2, $3, $4, $5, $5)"
          " returning id",
        put ? 6 : 5, p);

    if (rc != GCHO_GO) {
        free(n);
        return rc;
    }

    snprintf(rq->param[0], GCHO_ID_MAX, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);

    snprintf(target, sizeof(target), "news:%s", rq->param[0]);
    kv[0] = "title";
    kv[1] = n->title;
    kv[2] = "from";
    kv[3] = n->from;

    if (gcho_audit_kv(rq, put ? "news.update" : "news.publish", target,
                      kv, 2) != 0
        || gcho_commit(rq) != 0)
    {
        free(n);
        return 0;
    }
    free(n);

    p[0] = rq->param[0];
    return gcho_reply_row(rq, put ? 200 : 201,
                          "select " GCHO_NEWS_JSON "::text from town_news n"
                          " where n.id = $1", 1, p, gcho_news_missing);
}


/* DELETE /api/staff/news/{id} */
static int
gcho_news_delete(gcho_req_t *rq)
{
    int          rc;
    char         target[GCHO_ID_MAX + 16];
    PGresult    *res;
    const char  *p[2];

    if (!gcho_pub_id_ok(rq->param[0])) {
        return gcho_error(rq, 404, "not_found", gcho_news_missing);
    }

    if (gcho_begin(rq) != 0) {
        return 0;
    }

    p[0] = rq->param[0];
    p[1] = rq->staff;
    rc = gcho_sql_row(rq, &res, gcho_news_missing,
                      "update town_news set removed_at = now(),"
                      " removed_by = $2 where id = $1"
                      " and removed_at is null returning id", 2, p);
    if (rc != GCHO_GO) {
        return rc;
    }
    PQclear(res);

    snprintf(target, sizeof(target), "news:%s", rq->param[0]);

    if (gcho_audit(rq, "news.withdraw", target, NULL) != 0
        || gcho_commit(rq) != 0)
    {
        return 0;
    }

    return gcho_reply(rq, 204, "", 0);
}


const gcho_route_t  gcho_publication_routes[] = {
    { "GET", "/api/town/documents", GCHO_FAMILY, 0, 0, gcho_pub_list },
    { "GET", "/api/town/documents/*", GCHO_FAMILY, 0, 0, gcho_pub_get },
    { "GET", "/api/town/news", GCHO_FAMILY, 0, 0, gcho_news_current },
    { "GET", "/api/staff/town-documents", GCHO_STAFF, GCHO_AGENT, 0,
      gcho_pub_list },
    { "POST", "/api/staff/town-documents", GCHO_STAFF, GCHO_AGENT,
      GCHO_BODY_UPLOAD, gcho_pub_upload },
    { "GET", "/api/staff/town-documents/*", GCHO_STAFF, GCHO_AGENT, 0,
      gcho_pub_get },
    { "DELETE", "/api/staff/town-documents/*", GCHO_STAFF, GCHO_AGENT, 0,
      gcho_pub_delete },
    { "GET", "/api/staff/news", GCHO_STAFF, GCHO_AGENT, 0, gcho_news_list },
    { "POST", "/api/staff/news", GCHO_STAFF, GCHO_AGENT, GCHO_BODY_JSON,
      gcho_news_write },
    { "PUT", "/api/staff/news/*", GCHO_STAFF, GCHO_AGENT, GCHO_BODY_JSON,
      gcho_news_write },
    { "DELETE", "/api/staff/news/*", GCHO_STAFF, GCHO_AGENT, 0,
      gcho_news_delete },
    { NULL, NULL, 0, 0, 0, NULL }
};
