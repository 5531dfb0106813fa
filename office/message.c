/*
 * message.c -- guichet-office: the messagerie, threads between a family
 * and the town's services.
 *
 *   family   GET  /api/messages            threads, unread counts
 *            POST /api/messages            {service, theme, subject, body,
 *                                          attachments} → 201
 *            GET  /api/messages/{id}       the thread; marks it read
 *            POST /api/messages/{id}       {body, attachments} → 201
 *            GET  /api/message-services    the town's services, themes
 *   staff    GET  /api/staff/messages?service=&theme=&unread=1
 *            GET  /api/staff/messages/{id} marks the family's read
 *            POST /api/staff/messages/{id} {body, attachments} → 201,
 *                                          e-mail, audit
 *            GET  /api/staff/message-services  (inactive ones too)
 *            PUT  /api/staff/message-services  admin: the town's list
 *
 * Tables of migrations 0010 and 0100: message_thread (one family, one
 * service and theme of the town's list, message_service and
 * message_theme) and message (from_staff null: written by the family;
 * read_at: opened by the other side), message_attachment (attachment.c).
 * The answers are built by PostgreSQL (json_build_object); each write is
 * one transaction.  Another family's thread, like an unknown one, is 404.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "office.h"


#define GCHO_SUBJECT_MAX   200           /* characters */
#define GCHO_BODY_MAX      5000          /* characters */
#define GCHO_UTF8_MAX      4             /* bytes per character */

/* one thread as JSON (t the thread); unread counts the messages of the
 * other side not yet read: "m.from_staff is not null" for the family */
#define GCHO_THREAD_JSON(other)                                              \
    "json_build_object('id', t.id, 'family_id', t.family_id,"                \
    " 'family_login', (select f.login from family f"                         \
    "   where f.id = t.family_id),"                                          \
    " 'service', t.service, 'service_label', (select ms.label"               \
    "   from message_service ms where ms.code = t.service),"                 \
    " 'theme', t.theme, 'theme_label', (select mt.label from message_theme"  \
    "   mt where mt.service = t.service and mt.code = t.theme),"             \
    " 'subject', t.subject,"                                                 \
    " 'created_at', t.created_at, 'updated_at', t.updated_at,"               \
    " 'unread', (select count(*) from message m where m.thread_id = t.id"    \
    "   and m.read_at is null and " other "),"                               \
    " 'last_excerpt', (select left(m.body, 120) from message m"              \
    "   where m.thread_id = t.id order by m.id desc limit 1))"

#define GCHO_FROM_STAFF    "m.from_staff is not null"
#define GCHO_FROM_FAMILY   "m.from_staff is null"

/* one message as JSON (m the message, s its author's staff account) */
#define GCHO_MESSAGE_JSON                                                    \
    "json_build_object('id', m.id,"                                          \
    " 'from', case when m.from_staff is null then 'family' else 'staff' end,"\
    " 'author_name', s.name, 'body', m.body, 'created_at', m.created_at,"   \
    " 'attachments', (select coalesce(json_agg(json_build_object("          \
    "   'id', a.id, 'filename', a.filename, 'content_type', a.content_type," \
    "   'size', a.size) order by a.id), '[]'::json)"                         \
    "   from message_attachment a where a.message_id = m.id))"

#define GCHO_THREAD_PAGE(other)                                              \
    "select json_build_object('thread', " GCHO_THREAD_JSON(other) ","        \
    " 'messages', (select coalesce(json_agg(" GCHO_MESSAGE_JSON              \
    "   order by m.id), '[]'::json) from message m"                          \
    "   left join staff_account s on s.login = m.from_staff"                 \
    "   where m.thread_id = t.id))"                                          \
    " from message_thread t where t.id = $1"


static const char  gcho_msg_missing[] = "Cette conversation n'existe pas.";


/* Characters of the UTF-8 text s (the body parser checked the UTF-8). */
static size_t
gcho_utf8_len(const char *s)
{
    size_t  n;

    for (n = 0; *s; s++) {
        n += ((unsigned char) *s & 0xc0) != 0x80;
    }

    return n;
}


/* Copies a text member of 1..max characters; -1 after answering 400. */
static int
gcho_msg_text(gcho_req_t *rq, const char *field, const gch_jnode_t *v,
    char *out, size_t size, size_t max)
{
    char  msg[160];

    if (gcho_str(rq, field, v, out, size, 1) != 0) {
        return -1;
    }

    if (out[strspn(out, " \t\r\n")] == '\0' || gcho_utf8_len(out) > max) {
        snprintf(msg, sizeof(msg), "Le champ %s doit faire de 1 à %zu "
                 "caractères.", field, max);
        gcho_error(rq, 400, "invalid_field", msg);
        return -1;
    }

    return 0;
}


/* The thread id of the path: digits only, else 404 answered (-1). */
static int
gcho_msg_id(gcho_req_t *rq)
{
    size_t  n = strlen(rq->param[0]);

    if (n == 0 || n > 18 || strspn(rq->param[0], "0123456789") != n) {
        gcho_error(rq, 404, "not_found", gcho_msg_missing);
        return -1;
    }

    return 0;
}


/* See office.h. */
int
gcho_msg_topic(gcho_req_t *rq, const char *service, const char *theme,
    int active)
{
    int          ok;
    char         msg[200];
    PGresult    *res;
    const char  *p[3];

    p[0] = service;
    p[1] = theme;
    p[2] = active ? "1" : "0";

    res = gcho_sql(rq, "select exists (select 1 from message_service"
                       "   where code = $1 and (active or $3 = '0')),"
                       " $2 = '' or exists (select 1 from message_theme"
                       "   where service = $1 and code = $2"
                       "   and (active or $3 = '0'))", 3, p);
    if (res == NULL) {
        return -1;
    }

    ok = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    snprintf(msg, sizeof(msg), "%s", !ok
             ? "$.service : ce n'est pas un des services de la commune "
               "(GET /api/message-services)."
             : "$.theme : ce n'est pas un des thèmes de ce service "
               "(GET /api/message-services).");
    ok = ok && strcmp(PQgetvalue(res, 0, 1), "t") == 0;
    PQclear(res);

    if (!ok) {
        gcho_error(rq, 400, "invalid_field", msg);
        return -1;
    }

    return 0;
}


/*
 * Locks thread id (rq->param[0]) for this transaction; family (NULL: any)
 * must own it.  1 found (its family id and subject copied), or 0 after
 * answering 404 or 503.  The transaction is rolled back unless found.
 */
static int
gcho_msg_lock(gcho_req_t *rq, const char *family, char *fid,
    char *subject, size_t size)
{
    PGresult    *res;
    const char  *p[2];

    p[0] = rq->param[0];
    p[1] = family ? family : "";

    if (gcho_sql_row(rq, &res, gcho_msg_missing,
                     "select family_id, subject from message_thread"
                     " where id = $1 and ($2 = '' or family_id = $2)"
                     " for update", 2, p)
        != GCHO_GO)
    {
        gcho_rollback();
        return 0;
    }

    snprintf(fid, GCHO_ID_MAX, "%s", PQgetvalue(res, 0, 0));
    snprintf(subject, size, "%s", PQgetvalue(res, 0, 1));
    PQclear(res);

    return 1;
}


/*
 * Opens a thread for one side: the other side's messages are marked read,
 * then the thread and its messages answered.  family NULL: staff.
 */
static int
gcho_msg_open(gcho_req_t *rq, const char *family)
{
    char         fid[GCHO_ID_MAX], subject[4 * GCHO_SUBJECT_MAX + 1];
    const char  *p[1];

    if (gcho_msg_id(rq) != 0 || gcho_begin(rq) != 0) {
        return 0;
    }

    if (gcho_msg_lock(rq, family, fid, subject, sizeof(subject)) != 1) {
        return 0;
    }

    p[0] = rq->param[0];
    if (gcho_sql_do(rq, family
                        ? "update message m set read_at = now()"
                          " where m.thread_id = $1 and m.read_at is null"
                          " and " GCHO_FROM_STAFF
                        : "update message m set read_at = now()"
                          " where m.thread_id = $1 and m.read_at is null"
                          " and " GCHO_FROM_FAMILY, 1, p) != 0)
    {
        gcho_rollback();
        return 0;
    }

    if (gcho_reply_row(rq, 200, family ? GCHO_THREAD_PAGE(GCHO_FROM_STAFF)
                                       : GCHO_THREAD_PAGE(GCHO_FROM_FAMILY),
                       1, p, gcho_msg_missing)
        != 0
        || rq->status != 200)
    {
        gcho_rollback();
        return 0;
    }

    (void) gcho_commit(rq);
    return 0;
}


/*
 * Adds a message to the locked thread (rq->param[0]) from staff (NULL:
 * the family), with the n attachments ids (gcho_attach_parse), and
 * answers it 201; the thread's updated_at moves; mid receives the
 * message's id.  Inside the caller's transaction; 0, or -1 after
 * answering.
 */
static int
gcho_msg_add(gcho_req_t *rq, const char *staff, const char *body,
    const char *ids, int n, char mid[24])
{
    const char  *p[3];

    p[0] = rq->param[0];
    p[1] = staff;
    p[2] = body;

    if (gcho_sql_do(rq, "update message_thread set updated_at = now()"
                        " where id = $1", 1, p) != 0
        || gcho_sql_value(rq, mid, 24,
                          "insert into message (thread_id, from_staff,"
                          "   body) values ($1, $2, $3) returning id",
                          3, p) < 0)
    {
        return -1;
    }

    if (gcho_attach_bind(rq, mid, ids, n) != 0) {
        return -1;
    }

    p[0] = mid;
    if (gcho_reply_row(rq, 201, "select " GCHO_MESSAGE_JSON " from message m"
                                " left join staff_account s"
                                "   on s.login = m.from_staff"
                                " where m.id = $1", 1, p, gcho_msg_missing)
        != 0
        || rq->status != 201)
    {
        return -1;
    }

    return 0;
}


/* Parses {"body", "attachments"} into body (size bytes) and the ids
 * (GCHO_ATTACH_IDS_MAX bytes, *n of them); -1 after answering. */
static int
gcho_msg_body(gcho_req_t *rq, char *body, size_t size, char *ids, int *n)
{
    int                 rc;
    gch_json_t          doc;
    const gch_jnode_t  *v[2];

    static const gch_jfield_t  fields[] = {
        { "body", GCH_J_STRING, 1 },
        { "attachments", GCH_J_ARRAY, 0 },
    };

    if (gcho_body_json(rq, &doc, fields, 2, v) != 0) {
        return -1;
    }

    rc = gcho_msg_text(rq, "body", v[0], body, size, GCHO_BODY_MAX) == 0
         && gcho_attach_parse(rq, v[1], ids, GCHO_ATTACH_IDS_MAX, n) == 0
         ? 0 : -1;
    gch_json_free(&doc);

    return rc;
}


/* ------------------------------------------------------------------ */
/* families                                                             */

static int
gcho_msg_list(gcho_req_t *rq)
{
    const char  *p[1];

    p[0] = rq->family_id;

    return gcho_reply_row(rq, 200,
        "select json_build_object("
        " 'unread', (select count(*) from message m"
        "   join message_thread t on t.id = m.thread_id"
        "   where t.family_id = $1 and m.read_at is null"
        "   and " GCHO_FROM_STAFF "),"
        " 'threads', (select coalesce(json_agg(" GCHO_THREAD_JSON(
            GCHO_FROM_STAFF) " order by t.updated_at desc, t.id desc),"
        "   '[]'::json) from message_thread t where t.family_id = $1))",
        1, p, gcho_msg_missing);
}


static int
gcho_msg_create(gcho_req_t *rq)
{
    int                 ok, n;
    char                service[40], theme[40];
    char                subject[GCHO_UTF8_MAX * GCHO_SUBJECT_MAX + 1];
    char                mid[24], ids[GCHO_ATTACH_IDS_MAX], *body;
    size_t              size;
    gch_json_t          doc;
    const char         *p[4];
    const gch_jnode_t  *v[5];

    static const gch_jfield_t  fields[] = {
        { "service", GCH_J_STRING, 1 },
        { "subject", GCH_J_STRING, 1 },
        { "body", GCH_J_STRING, 1 },
        { "theme", GCH_J_STRING | GCH_J_NULL, 0 },
        { "attachments", GCH_J_ARRAY, 0 },
    };

    size = GCHO_UTF8_MAX * GCHO_BODY_MAX + 1;
    body = malloc(size);
    if (body == NULL) {
        return -1;
    }

    if (gcho_body_json(rq, &doc, fields, 5, v) != 0) {
        free(body);
        return 0;
    }

    ok = gcho_str(rq, "service", v[0], service, sizeof(service), 1) == 0
         && gcho_str(rq, "theme", v[3] && v[3]->type == GCH_J_STRING
                                  ? v[3] : NULL, theme, sizeof(theme), 0)
            == 0
         && gcho_msg_text(rq, "subject", v[1], subject, sizeof(subject),
                          GCHO_SUBJECT_MAX) == 0
         && gcho_msg_text(rq, "body", v[2], body, size, GCHO_BODY_MAX) == 0
         && gcho_attach_parse(rq, v[4], ids, sizeof(ids), &n) == 0;
    gch_json_free(&doc);

    if (ok && gcho_msg_topic(rq, service, theme, 1) != 0) {
        ok = 0;
    }

    if (!ok || gcho_begin(rq) != 0) {
        free(body);
        return 0;
    }

    p[0] = rq->family_id;
    p[1] = service;
    p[2] = subject;
    p[3] = theme[0] ? theme : NULL;
    if (gcho_sql_value(rq, rq->param[0], sizeof(rq->param[0]),
                       "insert into message_thread (family_id, service,"
                       "   subject, theme) values ($1, $2, $3, $4)"
                       " returning id", 4, p)
        < 0)
    {
        gcho_rollback();
        free(body);
        return 0;
    }

    if (gcho_msg_add(rq, NULL, body, ids, n, mid) != 0) {
        gcho_rollback();
        free(body);
        return 0;
    }
    free(body);

    /* the answer is the new thread */
    p[0] = rq->param[0];
    if (gcho_reply_row(rq, 201, GCHO_THREAD_PAGE(GCHO_FROM_STAFF), 1, p,
                       gcho_msg_missing)
        != 0
        || rq->status != 201
        || gcho_commit(rq) != 0)
    {
        gcho_rollback();
    }

    return 0;
}


static int
gcho_msg_read(gcho_req_t *rq)
{
    return gcho_msg_open(rq, rq->family_id);
}


static int
gcho_msg_reply(gcho_req_t *rq)
{
    int     n;
    char    fid[GCHO_ID_MAX], subject[4 * GCHO_SUBJECT_MAX + 1], *body;
    char    mid[24], ids[GCHO_ATTACH_IDS_MAX];
    size_t  size;

    if (gcho_msg_id(rq) != 0) {
        return 0;
    }

    size = GCHO_UTF8_MAX * GCHO_BODY_MAX + 1;
    body = malloc(size);
    if (body == NULL) {
        return -1;
    }

    if (gcho_msg_body(rq, body, size, ids, &n) == 0 && gcho_begin(rq) == 0
        && gcho_msg_lock(rq, rq->family_id, fid, subject, sizeof(subject))
           == 1)
    {
        if (gcho_msg_add(rq, NULL, body, ids, n, mid) != 0
            || gcho_commit(rq) != 0)
        {
            gcho_rollback();
        }
    }

    free(body);
    return 0;
}


/* ------------------------------------------------------------------ */
/* staff                                                                */

static int
gcho_msg_staff_list(gcho_req_t *rq)
{
    const char  *service, *theme, *unread, *p[3];

    service = gcho_query(rq, "service");
    theme = gcho_query(rq, "theme");
    unread = gcho_query(rq, "unread");

    service = service ? service : "";
    theme = theme ? theme : "";

    if (theme[0] && service[0] == '\0') {
        return gcho_error(rq, 400, "invalid_field", "Le paramètre theme "
                          "va avec le paramètre service.");
    }

    if (service[0] && (strlen(service) > 32 || strlen(theme) > 32
                       || gcho_msg_topic(rq, service, theme, 0) != 0))
    {
        if (rq->out == NULL) {
            gcho_error(rq, 400, "invalid_field", "Le paramètre service "
                       "n'est pas un des services de la commune.");
        }
        return 0;
    }

    p[0] = service;
    p[1] = unread != NULL && strcmp(unread, "1") == 0 ? "1" : "0";
    p[2] = theme;

    return gcho_reply_row(rq, 200,
        "select json_build_object('threads', coalesce(json_agg(x.j"
        "   order by x.updated_at desc, x.id desc), '[]'::json))"
        " from (select t.id, t.updated_at, " GCHO_THREAD_JSON(
            GCHO_FROM_FAMILY) " as j"
        "   from message_thread t where ($1 = '' or t.service = $1)"
        "   and ($3 = '' or t.theme = $3)"
        "   order by t.updated_at desc, t.id desc limit 200) x"
        " where $2 = '0' or (x.j->>'unread')::int > 0",
        3, p, gcho_msg_missing);
}


static int
gcho_msg_staff_read(gcho_req_t *rq)
{
    return gcho_msg_open(rq, NULL);
}


static int
gcho_msg_staff_reply(gcho_req_t *rq)
{
    int          rc, n;
    char         fid[GCHO_ID_MAX], subject[4 * GCHO_SUBJECT_MAX + 1];
    char         ids[GCHO_ATTACH_IDS_MAX], natt[12];
    char         title[4 * GCHO_SUBJECT_MAX + 64], mail[512], len[24];
    char         target[GCHO_ID_MAX + 16], mid[24], *body, *saved;
    size_t       size, saved_len;
    const char  *kv[6];

    if (gcho_msg_id(rq) != 0) {
        return 0;
    }

    size = GCHO_UTF8_MAX * GCHO_BODY_MAX + 1;
    body = malloc(size);
    if (body == NULL) {
        return -1;
    }

    if (gcho_msg_body(rq, body, size, ids, &n) != 0 || gcho_begin(rq) != 0
        || gcho_msg_lock(rq, NULL, fid, subject, sizeof(subject)) != 1)
    {
        free(body);
        return 0;
    }

    rc = gcho_msg_add(rq, rq->staff, body, ids, n, mid);
    snprintf(len, sizeof(len), "%zu", gcho_utf8_len(body));
    free(body);

    if (rc != 0) {
        gcho_rollback();
        return 0;
    }

    /* the answer (the message) is kept while the audit row and the
     * e-mail are written in the same transaction */
    saved = rq->out;
    saved_len = rq->out_len;
    rq->out = NULL;

    snprintf(target, sizeof(target), "thread:%s", rq->param[0]);
    kv[0] = "family_id";
    kv[1] = fid;
    kv[2] = "length";
    kv[3] = len;
    kv[4] = "attachments";
    kv[5] = natt;
    snprintf(natt, sizeof(natt), "%d", n);

    snprintf(title, sizeof(title), "Nouveau message de la mairie : %s",
             subject);
    snprintf(mail, sizeof(mail),
             "Bonjour,\n\nLes services de la mairie vous ont répondu dans "
             "votre Espace Famille (rubrique Messagerie).\n\n"
             "%s/#/messagerie?fil=%s\n", gcho_site_url(rq),
             rq->param[0]);

    if (gcho_audit_kv(rq, "message.reply", target, kv, 3) != 0
        || gcho_mail(rq, fid, "message", mid, title, mail) != 0
        || gcho_commit(rq) != 0)
    {
        gcho_rollback();
        free(saved);
        return 0;
    }

    free(rq->out);
    rq->out = saved;
    rq->out_len = saved_len;
    rq->out_type = "application/json; charset=utf-8";
    rq->status = 201;

    return 0;
}


/* ------------------------------------------------------------------ */
/* the town's services and themes (0100)                                */

#define GCHO_SERVICES_JSON(swhere, twhere, sextra, textra)                 \
    "select json_build_object('services', coalesce(json_agg("               \
    " json_build_object('code', s.code, 'label', s.label," sextra           \
    "  'themes', (select coalesce(json_agg(json_build_object("              \
    "    'code', t.code, 'label', t.label" textra ")"                        \
    "    order by t.position, t.code), '[]'::json) from message_theme t"    \
    "    where t.service = s.code" twhere "))"                              \
    " order by s.position, s.code), '[]'::json))"                           \
    " from message_service s where true" swhere

#define GCHO_SERVICES_MAX  20
#define GCHO_LABEL_MAX     80


/* GET /api/message-services: what a family may choose */
static int
gcho_msg_services(gcho_req_t *rq)
{
    return gcho_reply_row(rq, 200,
                          GCHO_SERVICES_JSON(" and s.active",
                                             " and t.active", "", ""),
                          0, NULL, gcho_msg_missing);
}


/* GET /api/staff/message-services: every one, with "active" */
static int
gcho_msg_staff_services(gcho_req_t *rq)
{
    return gcho_reply_row(rq, 200,
                          GCHO_SERVICES_JSON("", "", " 'active', s.active,",
                                             ", 'active', t.active"),
                          0, NULL, gcho_msg_missing);
}


/* A code of the list at path at: [a-z0-9_-]{1,32}; -1 after answering. */
static int
gcho_msg_code(gcho_req_t *rq, const char *at, const gch_jnode_t *v)
{
    char  msg[200];

    if (v->len >= 1 && v->len <= 32
        && strspn(v->str, "abcdefghijklmnopqrstuvwxyz0123456789_-") >= v->len)
    {
        return 0;
    }

    snprintf(msg, sizeof(msg), "%s.code : 1 à 32 lettres minuscules, "
             "chiffres, _ ou -", at);
    gcho_error(rq, 400, "invalid_field", msg);
    return -1;
}


/* A label at path at: 1..80 characters, not only blanks. */
static int
gcho_msg_label(gcho_req_t *rq, const char *at, const gch_jnode_t *v)
{
    char  msg[200], out[GCHO_UTF8_MAX * GCHO_LABEL_MAX + 1];

    if (v->len < sizeof(out)) {
        memcpy(out, v->str, v->len);
        out[v->len] = '\0';

        if (out[strspn(out, " \t\r\n")] != '\0'
            && gcho_utf8_len(out) <= GCHO_LABEL_MAX)
        {
            return 0;
        }
    }

    snprintf(msg, sizeof(msg), "%s.label : 1 à %d caractères", at,
             GCHO_LABEL_MAX);
    gcho_error(rq, 400, "invalid_field", msg);
    return -1;
}


/* 1 when the code v is one of the n codes of list. */
static int
gcho_msg_dup(const gch_jnode_t *const *list, size_t n, const gch_jnode_t *v)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (list[i]->len == v->len
            && memcmp(list[i]->str, v->str, v->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * PUT /api/staff/message-services (admin): {"services": [{"code",
 * "label", "themes": [{"code", "label"}]}]}, the list in its order.  The
 * services and themes left out become inactive (their threads keep
 * them); the others active, with these labels and positions.  200 as the
 * staff's GET, audited (message_services.update).
 */
static int
gcho_msg_services_put(gcho_req_t *rq)
{
    static const gch_jfield_t  f[] = {
        { "services", GCH_J_ARRAY, 1 },
    };
    static const gch_jfield_t  sf[] = {
        { "code", GCH_J_STRING, 1 },
        { "label", GCH_J_STRING, 1 },
        { "themes", GCH_J_ARRAY, 1 },
    };
    static const gch_jfield_t  tf[] = {
        { "code", GCH_J_STRING, 1 },
        { "label", GCH_J_STRING, 1 },
    };

    int                 ok;
    char                at[64], tat[96], msg[160], count[12];
    size_t              i, k;
    gch_json_t          doc;
    const char         *p[1], *kv[2];
    const gch_jnode_t  *v[1], *e, *t, *w[3], *x[2];
    const gch_jnode_t  *codes[GCHO_SERVICES_MAX], *tcodes[GCHO_SERVICES_MAX];

    if (gcho_body_json(rq, &doc, f, 1, v) != 0) {
        return 0;
    }

    ok = 1;

    if (v[0]->len < 1 || v[0]->len > GCHO_SERVICES_MAX) {
        gcho_error(rq, 400, "invalid_field", "$.services : 1 à 20 "
                   "services");
        ok = 0;
    }

    for (e = ok ? v[0]->child : NULL, i = 0; e != NULL && ok;
         e = e->next, i++)
    {
        snprintf(at, sizeof(at), "$.services[%zu]", i);

        if (gcho_json_object(rq, e, at, sf, 3, w) != 0
            || gcho_msg_code(rq, at, w[0]) != 0
            || gcho_msg_label(rq, at, w[1]) != 0)
        {
            ok = 0;
            break;
        }

        if (gcho_msg_dup(codes, i, w[0])) {
            snprintf(tat, sizeof(tat), "%s.code : déjà dans la liste", at);
            gcho_error(rq, 400, "invalid_field", tat);
            ok = 0;
            break;
        }
        codes[i] = w[0];

        if (ok && w[2]->len > GCHO_SERVICES_MAX) {
            snprintf(tat, sizeof(tat), "%s.themes : 20 thèmes au plus", at);
            gcho_error(rq, 400, "invalid_field", tat);
            ok = 0;
        }

        for (t = ok ? w[2]->child : NULL, k = 0; t != NULL && ok;
             t = t->next, k++)
        {
            snprintf(tat, sizeof(tat), "%s.themes[%zu]", at, k);

            if (gcho_json_object(rq, t, tat, tf, 2, x) != 0
                || gcho_msg_code(rq, tat, x[0]) != 0
                || gcho_msg_label(rq, tat, x[1]) != 0)
            {
                ok = 0;
                break;
            }

            if (gcho_msg_dup(tcodes, k, x[0])) {
                snprintf(msg, sizeof(msg), "%s.code : déjà dans la liste",
                         tat);
                gcho_error(rq, 400, "invalid_field", msg);
                ok = 0;
                break;
            }
            tcodes[k] = x[0];
        }
    }

    snprintf(count, sizeof(count), "%u", ok ? v[0]->len : 0);
    gch_json_free(&doc);

    if (!ok || gcho_begin(rq) != 0) {
        return 0;
    }

    p[0] = rq->body;

    if (gcho_sql_do(rq, "with s as (update message_service set active ="
                        "   false returning 1)"
                        " update message_theme set active = false",
                    0, NULL) != 0
        || gcho_sql_do(rq, "insert into message_service (code, label,"
                           "   position, active)"
                           " select e->>'code', e->>'label', o, true"
                           " from jsonb_array_elements($1::jsonb->'services')"
                           "   with ordinality x(e, o)"
                           " on conflict (code) do update set"
                           "   label = excluded.label,"
                           "   position = excluded.position, active = true",
                       1, p) != 0
        || gcho_sql_do(rq, "insert into message_theme (service, code,"
                           "   label, position, active)"
                           " select e->>'code', t->>'code', t->>'label', o,"
                           "   true"
                           " from jsonb_array_elements($1::jsonb->'services')"
                           "   e, jsonb_array_elements(e->'themes')"
                           "   with ordinality y(t, o)"
                           " on conflict (service, code) do update set"
                           "   label = excluded.label,"
                           "   position = excluded.position, active = true",
                       1, p) != 0)
    {
        gcho_rollback();
        return 0;
    }

    kv[0] = "services";
    kv[1] = count;

    if (gcho_audit_kv(rq, "message_services.update", "town", kv, 1) != 0
        || gcho_commit(rq) != 0)
    {
        gcho_rollback();
        return 0;
    }

    return gcho_msg_staff_services(rq);
}


const gcho_route_t  gcho_message_routes[] = {
    { "GET",  "/api/messages", GCHO_FAMILY, 0, 0, gcho_msg_list },
    { "POST", "/api/messages", GCHO_FAMILY, 0, GCHO_BODY_JSON,
      gcho_msg_create },
    { "GET",  "/api/messages/*", GCHO_FAMILY, 0, 0, gcho_msg_read },
    { "POST", "/api/messages/*", GCHO_FAMILY, 0, GCHO_BODY_JSON,
      gcho_msg_reply },
    { "GET",  "/api/staff/messages", GCHO_STAFF, GCHO_AGENT, 0,
      gcho_msg_staff_list },
    { "GET",  "/api/staff/messages/*", GCHO_STAFF, GCHO_AGENT, 0,
      gcho_msg_staff_read },
    { "POST", "/api/staff/messages/*", GCHO_STAFF, GCHO_AGENT,
      GCHO_BODY_JSON, gcho_msg_staff_reply },
    { "GET",  "/api/message-services", GCHO_FAMILY, 0, 0,
      gcho_msg_services },
    { "GET",  "/api/staff/message-services", GCHO_STAFF, GCHO_AGENT, 0,
      gcho_msg_staff_services },
    { "PUT",  "/api/staff/message-services", GCHO_STAFF, GCHO_ADMIN,
      GCHO_BODY_JSON, gcho_msg_services_put },
    { NULL, NULL, 0, 0, 0, NULL }
};
