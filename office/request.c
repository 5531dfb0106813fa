/*
 * request.c -- guichet-office: a new family asks for a file online
 * (issue 25, « Créer mon espace » for a family the town does not know).
 *
 * POST /api/account/request (public): the parents' names, e-mail, phone,
 * postal address, children (first name, birth date), the login and
 * password chosen and the CGU accepted.  Counted like a login
 * (gcho_login_throttle, kind "request", keyed by the e-mail: a growing
 * pause per e-mail and address, a hard limit per address); the login
 * must be free (a login promised to a request not yet confirmed is not,
 * gcho_login_free); the password is hashed on a hashing thread (hash.c).
 * The second half makes, in one transaction, the family's rows (family
 * "fam-<n>" without a login, its children "<family>-<k>", e-mail, phone
 * and address), the family_request row (migration 0110) and the
 * confirmation e-mail (outbox kind family_request, a link valid 24 hours,
 * single use, whose body worker/mail.c wipes when it sends it), audited.
 *
 * POST /api/account/request/confirm {token} (public): the link, once.
 * The family gets its login (published at once and by the worker), the
 * request is en_attente.  It may log in: the module knows the login but
 * not the family (the catalogue has no such family), so /api/me and every
 * booking are refused (403); the website asks GET /api/account/pending
 * and shows the file's state, its documents ahead and the upload.  The
 * office refuses its enrolment requests (gcho_family_pending, 409
 * family_pending).
 *
 * GET /api/staff/family-requests (agent) lists the requests, each with
 * the families already known that have a child of the same first name
 * and birth date (duplicates).  POST /api/staff/family-requests/{id}/
 * decision: validee puts the family into the catalogue (its children,
 * the residence the agent decided) under the locks of town loading, so
 * the booking path knows it once published; refusee keeps it out with a
 * reason.  Both are audited and e-mailed.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "office.h"


#define GCHO_RQ_CHILDREN_MAX  10


typedef struct {
    char    p1f[101], p1l[101], p2f[101], p2l[101];
    char    email[255], phone[32];
    char    l1[201], l2[201], pc[11], city[101];
    char    login[65], pw[GCHO_PW_BYTES], ver[24];
    size_t  nc;
    char    cf[GCHO_RQ_CHILDREN_MAX][101];
    char    cb[GCHO_RQ_CHILDREN_MAX][11];
} gcho_rq_form_t;


static const gch_jfield_t  gcho_rq_fields[] = {
    { "parent1_first_name", GCH_J_STRING, 1 },
    { "parent1_last_name", GCH_J_STRING, 1 },
    { "parent2_first_name", GCH_J_STRING | GCH_J_NULL, 0 },
    { "parent2_last_name", GCH_J_STRING | GCH_J_NULL, 0 },
    { "email", GCH_J_STRING, 1 },
    { "phone", GCH_J_STRING, 1 },
    { "address_line1", GCH_J_STRING, 1 },
    { "address_line2", GCH_J_STRING | GCH_J_NULL, 0 },
    { "postcode", GCH_J_STRING, 1 },
    { "city", GCH_J_STRING, 1 },
    { "children", GCH_J_ARRAY, 1 },
    { "login", GCH_J_STRING, 1 },
    { "password", GCH_J_STRING, 1 },
    { "cgu_version", GCH_J_NUMBER, 1 },
};

#define GCHO_RQ_NFIELDS  (sizeof(gcho_rq_fields) / sizeof(gcho_rq_fields[0]))

static const gch_jfield_t  gcho_rq_child_fields[] = {
    { "first_name", GCH_J_STRING, 1 },
    { "birth_date", GCH_J_STRING, 1 },
};


/* Something else than blanks. */
static int
gcho_rq_filled(const char *s)
{
    return s[strspn(s, " \t")] != '\0';
}


static int
gcho_rq_bad(gcho_req_t *rq, const char *msg)
{
    (void) gcho_error(rq, 400, "invalid_field", msg);
    return -1;
}


/* An optional string member (absent or null: ""). */
static int
gcho_rq_opt(gcho_req_t *rq, const char *name, const gch_jnode_t *v,
    char *out, size_t size)
{
    return gcho_str(rq, name, v && v->type == GCH_J_STRING ? v : NULL, out,
                    size, 0);
}


/*
 * The request's body into f, checked (both halves read it: the body stays
 * with the request).  0, or -1 after answering 400 `invalid_field`.
 */
static int
gcho_rq_parse(gcho_req_t *rq, gcho_rq_form_t *f)
{
    int                 rc, minute;
    char                at[96], today[11];
    size_t              i, n;
    gch_day_t           d;
    gch_json_t          doc;
    const gch_jnode_t  *v[GCHO_RQ_NFIELDS], *e, *cv[2];

    memset(f, 0, sizeof(*f));

    if (gcho_body_json(rq, &doc, gcho_rq_fields, GCHO_RQ_NFIELDS, v) != 0) {
        return -1;
    }

    rc = gcho_str(rq, "parent1_first_name", v[0], f->p1f, sizeof(f->p1f), 1)
         || gcho_str(rq, "parent1_last_name", v[1], f->p1l, sizeof(f->p1l),
                     1)
         || gcho_rq_opt(rq, "parent2_first_name", v[2], f->p2f,
                        sizeof(f->p2f))
         || gcho_rq_opt(rq, "parent2_last_name", v[3], f->p2l,
                        sizeof(f->p2l))
         || gcho_str(rq, "email", v[4], f->email, sizeof(f->email), 3)
         || gcho_str(rq, "phone", v[5], f->phone, sizeof(f->phone), 1)
         || gcho_str(rq, "address_line1", v[6], f->l1, sizeof(f->l1), 1)
         || gcho_rq_opt(rq, "address_line2", v[7], f->l2, sizeof(f->l2))
         || gcho_str(rq, "postcode", v[8], f->pc, sizeof(f->pc), 2)
         || gcho_str(rq, "city", v[9], f->city, sizeof(f->city), 1)
         || gcho_str(rq, "login", v[11], f->login, sizeof(f->login), 1)
         || gcho_str(rq, "password", v[12], f->pw, sizeof(f->pw), 1);

    if (rc == 0) {
        snprintf(f->ver, sizeof(f->ver), "%.*s", (int) v[13]->len,
                 v[13]->str);

        n = v[10]->len;
        if (n < 1 || n > GCHO_RQ_CHILDREN_MAX) {
            rc = gcho_rq_bad(rq, "$.children : de 1 à 10 enfants.");
        }
    }

    gch_unix_to_paris(gcho_now(), &d, &minute, NULL);
    gch_day_format(d, today);

    for (i = 0, e = rc ? NULL : v[10]->child; e != NULL; e = e->next, i++) {
        snprintf(at, sizeof(at), "$.children[%zu]", i);
        if (gcho_json_object(rq, e, at, gcho_rq_child_fields, 2, cv) != 0) {
            rc = -1;
            break;
        }
        if (gcho_str(rq, "first_name", cv[0], f->cf[i], sizeof(f->cf[i]), 1)
            != 0)
        {
            rc = -1;
            break;
        }
        if (!gcho_rq_filled(f->cf[i])) {
            snprintf(at, sizeof(at), "$.children[%zu].first_name : prénom "
                     "vide.", i);
            rc = gcho_rq_bad(rq, at);
            break;
        }
        if (gch_day_parse(&d, cv[1]->str, cv[1]->len) != 0) {
            snprintf(at, sizeof(at), "$.children[%zu].birth_date : date "
                     "invalide (AAAA-MM-JJ).", i);
            rc = gcho_rq_bad(rq, at);
            break;
        }
        gch_day_format(d, f->cb[i]);
        if (strcmp(f->cb[i], today) > 0) {
            snprintf(at, sizeof(at), "$.children[%zu].birth_date : date à "
                     "venir.", i);
            rc = gcho_rq_bad(rq, at);
            break;
        }
        f->nc = i + 1;
    }

    gch_json_free(&doc);

    if (rc != 0) {
        return -1;
    }

    if (!gcho_rq_filled(f->p1f) || !gcho_rq_filled(f->p1l)) {
        return gcho_rq_bad(rq, "Le nom et le prénom du premier responsable "
                           "sont obligatoires.");
    }

    if ((f->p2f[0] == '\0') != (f->p2l[0] == '\0')
        || (f->p2f[0] && (!gcho_rq_filled(f->p2f)
                          || !gcho_rq_filled(f->p2l))))
    {
        return gcho_rq_bad(rq, "Donnez le nom et le prénom du second "
                           "responsable, ou ni l'un ni l'autre.");
    }

    if (!gcho_email_ok(f->email)) {
        return gcho_rq_bad(rq, "Le champ email n'est pas une adresse e-mail "
                           "(nom@domaine).");
    }

    if (!gcho_phone_ok(f->phone)) {
        return gcho_rq_bad(rq, "Le champ phone n'est pas un numéro de "
                           "téléphone (6 à 25 chiffres, espaces, « + », "
                           "« . »).");
    }

    n = strlen(f->pc);
    if (strspn(f->pc, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      "abcdefghijklmnopqrstuvwxyz -") != n)
    {
        return gcho_rq_bad(rq, "Le champ postcode n'est pas un code postal "
                           "(chiffres et lettres).");
    }

    if (!gcho_rq_filled(f->l1) || !gcho_rq_filled(f->city)) {
        return gcho_rq_bad(rq, !gcho_rq_filled(f->l1)
                           ? "Le champ address_line1 est obligatoire."
                           : "Le champ city est obligatoire.");
    }

    return 0;
}


/* In the transaction: the family's rows, its request and the e-mail with
 * the link tok (its SHA-256 thash).  0, or -1 after answering 503. */
static int
gcho_rq_insert(gcho_req_t *rq, gcho_rq_form_t *f, const char *hash,
    const char *tok, const char *thash)
{
    int          i;
    char         fid[32], cid[48], body[1600], target[64], nc[8];
    size_t       k;
    PGresult    *res;
    const char  *p[14], *kv[4];

    /* the family's id: the next "fam-<n>" that no family and no family of
     * the town file has */
    fid[0] = '\0';
    for (i = 0; i < 10 && fid[0] == '\0'; i++) {
        res = gcho_sql(rq, "select 'fam-' || nextval('family_number'),"
                           "  exists (select 1 from catalogue c,"
                           "    jsonb_array_elements(c.json::jsonb ->"
                           "      'families') e"
                           "    where e ->> 'id' = 'fam-' ||"
                           "      currval('family_number'))"
                           "  or exists (select 1 from family"
                           "    where id = 'fam-' ||"
                           "      currval('family_number'))", 0, NULL);
        if (res == NULL) {
            return -1;
        }
        if (strcmp(PQgetvalue(res, 0, 1), "f") == 0) {
            snprintf(fid, sizeof(fid), "%s", PQgetvalue(res, 0, 0));
        }
        PQclear(res);
    }

    if (fid[0] == '\0') {
        gcho_rollback();
        (void) gcho_error(rq, 500, "internal", "Une erreur interne est "
                          "survenue.");
        return -1;
    }

    p[0] = fid;
    if (gcho_sql_do(rq, "insert into family (id, resident, direct_debit)"
                        " values ($1, false, false)", 1, p) != 0)
    {
        return -1;
    }

    for (k = 0; k < f->nc; k++) {
        snprintf(cid, sizeof(cid), "%s-%zu", fid, k + 1);
        p[0] = cid;
        p[1] = fid;
        p[2] = f->cf[k];
        p[3] = f->cb[k];
        if (gcho_sql_do(rq, "insert into child (id, family_id, first_name,"
                            "   birth_date) values ($1, $2, $3, $4)",
                        4, p) != 0)
        {
            return -1;
        }
    }

    p[0] = fid;
    p[1] = f->email;
    if (gcho_sql_do(rq, "insert into family_email (family_id, address)"
                        " values ($1, $2)", 2, p) != 0)
    {
        return -1;
    }

    p[1] = f->phone;
    p[2] = f->l1;
    p[3] = f->l2[0] ? f->l2 : NULL;
    p[4] = f->pc;
    p[5] = f->city;
    if (gcho_sql_do(rq, "insert into family_contact (family_id,"
                        "   phone_mobile, address_line1, address_line2,"
                        "   postcode, city) values ($1, $2, $3, $4, $5, $6)",
                    6, p) != 0)
    {
        return -1;
    }

    p[1] = f->p1f;
    p[2] = f->p1l;
    p[3] = f->p2f[0] ? f->p2f : NULL;
    p[4] = f->p2l[0] ? f->p2l : NULL;
    p[5] = f->email;
    p[6] = f->login;
    p[7] = hash;
    p[8] = f->ver;
    p[9] = thash;
    if (gcho_sql_do(rq, "insert into family_request (family_id,"
                        "   parent1_first_name, parent1_last_name,"
                        "   parent2_first_name, parent2_last_name, email,"
                        "   login, password_hash, cgu_version, confirm_hash,"
                        "   confirm_expires_at)"
                        " values ($1, $2, $3, $4, $5, $6, $7, $8, $9::int,"
                        "   $10, now() + interval '24 hours')", 10, p) != 0)
    {
        return -1;
    }

    snprintf(body, sizeof(body),
             "Bonjour %s %s,\n\n"
             "Vous avez demandé l'ouverture d'un dossier famille à l'Espace "
             "Famille (dossier %s, identifiant %s).\n\n"
             "Pour confirmer votre adresse e-mail, ouvrez ce lien dans les "
             "24 heures ; il ne sert qu'une fois :\n\n"
             "%s/#/confirmer-demande?jeton=%s\n\n"
             "Vous pourrez ensuite vous connecter et déposer vos pièces "
             "justificatives.  La mairie vérifie votre dossier avant toute "
             "inscription ou réservation : vous recevrez sa réponse par "
             "e-mail.\n\n"
             "Si vous n'êtes pas à l'origine de cette demande, ignorez ce "
             "message.\n",
             f->p1f, f->p1l, fid, f->login, gcho_ctx.conf.site_url, tok);

    /* the family is the actor: rq has no token */
    snprintf(rq->family_id, sizeof(rq->family_id), "%s", fid);
    snprintf(target, sizeof(target), "family:%s", fid);
    snprintf(nc, sizeof(nc), "%zu", f->nc);
    kv[0] = "login";
    kv[1] = f->login;
    kv[2] = "children";
    kv[3] = nc;

    i = gcho_mail(rq, fid, "family_request", thash,
                  "Confirmez votre demande de dossier famille", body) != 0
        || gcho_audit_kv(rq, "family_request.create", target, kv, 2) != 0;

    sodium_memzero(body, sizeof(body));

    return i ? -1 : 0;
}


/* POST /api/account/request (public): see the top of the file. */
static int
gcho_rq_create(gcho_req_t *rq)
{
    int              rc;
    char             tok[64], thash[crypto_hash_sha256_BYTES * 2 + 1];
    uint8_t          raw[32], h[crypto_hash_sha256_BYTES];
    gcho_hash_t     *job;
    gcho_rq_form_t  *f;

    f = malloc(sizeof(gcho_rq_form_t));
    if (f == NULL) {
        return -1;
    }

    if (gcho_rq_parse(rq, f) != 0) {
        goto done;
    }

    if (rq->hash == NULL) {

        /* first half: what is cheap, then the hash */

        if (gcho_account_choice_check(rq, f->login, f->pw, f->ver) != 0
            || gcho_login_throttle(rq, "request", f->email) != 0)
        {
            goto done;
        }

        rc = gcho_login_free(rq, f->login);
        if (rc < 0) {
            goto done;
        }
        if (rc == 0) {
            (void) gcho_login_taken(rq);
            goto done;
        }

        job = gcho_hash_prepare(rq);
        if (job != NULL) {
            snprintf(job->make_pw, sizeof(job->make_pw), "%s", f->pw);
        }
        goto done;
    }

    /* second half: the password's hash is made */

    if (rq->hash->failed) {
        (void) gcho_unavailable(rq);
        goto done;
    }

    if (gcho_begin(rq) != 0) {
        goto done;
    }

    /* the login may have been promised meanwhile */
    rc = gcho_login_free(rq, f->login);
    if (rc < 0) {
        goto done;
    }
    if (rc == 0) {
        gcho_rollback();
        (void) gcho_login_taken(rq);
        goto done;
    }

    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(tok, sizeof(tok), raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    crypto_hash_sha256(h, (const uint8_t *) tok, strlen(tok));
    sodium_bin2hex(thash, sizeof(thash), h, sizeof(h));

    rc = gcho_rq_insert(rq, f, rq->hash->made, tok, thash) != 0
         || gcho_commit(rq) != 0;

    sodium_memzero(tok, sizeof(tok));

    if (rc == 0) {
        (void) gcho_reply(rq, 202, "{\"status\":\"sent\"}", 17);
    } else {
        gcho_rollback();            /* answered; nothing half written */
    }

done:

    sodium_memzero(f, sizeof(gcho_rq_form_t));
    free(f);
    return 0;
}


/* POST /api/account/request/confirm {"token"} (public): the link, once */
static int
gcho_rq_confirm(gcho_req_t *rq)
{
    gcho_link_t  k;

    if (gcho_link_claim(rq,
            "update family_request r set status = 'en_attente',"
            "   confirmed_at = now()"
            " from family f"
            " where r.confirm_hash = $1"
            "   and r.status = 'a_confirmer'"
            "   and r.confirm_expires_at > now()"
            "   and f.id = r.family_id and f.login is null"
            " returning r.family_id, r.login, r.password_hash,"
            "   r.cgu_version",
            "Ce lien de confirmation n'est plus valable (déjà utilisé ou "
            "expiré) : refaites votre demande de dossier.", &k) != 1)
    {
        return 0;
    }

    return gcho_link_finish(rq, "family_request.confirm", &k);
}


/* A request as JSON (r the family_request row, f its family). */
#define GCHO_RQ_JSON                                                         \
    "json_build_object('family_id', r.family_id, 'status', r.status,"       \
    " 'parents', json_build_array(json_build_object('first_name',"          \
    "   r.parent1_first_name, 'last_name', r.parent1_last_name))::jsonb"    \
    "   || case when r.parent2_first_name is null then '[]'::jsonb"         \
    "      else jsonb_build_array(jsonb_build_object('first_name',"         \
    "      r.parent2_first_name, 'last_name', r.parent2_last_name)) end,"   \
    " 'email', r.email, 'login', r.login,"                                  \
    " 'phone', (select phone_mobile from family_contact k"                  \
    "   where k.family_id = r.family_id),"                                  \
    " 'address', (select json_build_object('line1', k.address_line1,"       \
    "   'line2', k.address_line2, 'postcode', k.postcode, 'city', k.city)"  \
    "   from family_contact k where k.family_id = r.family_id),"            \
    " 'children', (select coalesce(json_agg(json_build_object('id', c.id,"  \
    "   'first_name', c.first_name, 'birth_date', c.birth_date)"            \
    "   order by c.birth_date, c.id), '[]') from child c"                   \
    "   where c.family_id = r.family_id),"                                  \
    " 'requested_at', r.requested_at, 'confirmed_at', r.confirmed_at,"      \
    " 'decided_at', r.decided_at, 'reason', r.reason)"


/* GET /api/account/pending (family): the file asked online and where it
 * stands; 404 for a family the town made */
static int
gcho_rq_pending_get(gcho_req_t *rq)
{
    const char  *p[1];

    p[0] = rq->family_id;

    return gcho_reply_row(rq, 200,
        "select " GCHO_RQ_JSON " from family_request r"
        " where r.family_id = $1", 1, p,
        "Ce dossier n'a pas été demandé en ligne.");
}


/* See office.h. */
int
gcho_family_pending(gcho_req_t *rq, const char *fid)
{
    int          n;
    const char  *p[1];

    p[0] = fid;
    n = gcho_sql_exists(rq, "select 1 from family_request"
                            " where family_id = $1 and status <> 'validee'",
                        1, p);
    if (n < 0) {
        return 0;
    }

    if (n != 0) {
        gcho_rollback();
        return gcho_error(rq, 409, "family_pending",
                          "Ce dossier famille n'est pas encore validé par la "
                          "mairie : aucune inscription ni réservation avant "
                          "sa validation.");
    }

    return GCHO_GO;
}


/* GET /api/staff/family-requests?status=en_attente (the default) |
 * a_confirmer | validee | refusee | tous; oldest first, each with its
 * possible duplicates among the families the town knows */
static int
gcho_rq_staff_list(gcho_req_t *rq)
{
    const char  *p[1], *st;

    st = gcho_query(rq, "status");
    if (st == NULL) {
        st = "en_attente";
    }
    if (strcmp(st, "en_attente") != 0 && strcmp(st, "a_confirmer") != 0
        && strcmp(st, "validee") != 0 && strcmp(st, "refusee") != 0
        && strcmp(st, "tous") != 0)
    {
        return gcho_error(rq, 400, "invalid_field",
                          "Le paramètre status vaut en_attente, a_confirmer, "
                          "validee, refusee ou tous.");
    }

    p[0] = st;

    return gcho_reply_row(rq, 200,
        "select json_build_object('family_requests', coalesce(json_agg("
        " (" GCHO_RQ_JSON "::jsonb || jsonb_build_object('decided_by',"
        "   r.decided_by, 'duplicates', (select coalesce(jsonb_agg("
        "     jsonb_build_object('family_id', o.family_id, 'child_id',"
        "     o.id, 'first_name', o.first_name, 'birth_date',"
        "     o.birth_date) order by o.family_id, o.id), '[]')"
        "   from child c join child o on o.family_id <> c.family_id"
        "     and lower(o.first_name) = lower(c.first_name)"
        "     and o.birth_date = c.birth_date"
        "   join family x on x.id = o.family_id and x.archived_at is null"
        "   where c.family_id = r.family_id"
        "     and not exists (select 1 from family_request y"
        "       where y.family_id = o.family_id"
        "         and y.status <> 'validee'))))"
        " order by r.requested_at, r.family_id), '[]'))"
        " from family_request r"
        " where $1 = 'tous' or r.status = $1", 1, p,
        "Aucune demande.");
}


/*
 * In the decision's transaction (catalogue locked, cat its row): the
 * family enters the catalogue with its children and the residence, and
 * family.resident follows.  GCHO_GO, or the answer (rolled back).
 */
static int
gcho_rq_admit(gcho_req_t *rq, PGresult *cat, const char *fid,
    const char *resident)
{
    int          rc;
    PGresult    *res;
    gch_town_t  *t;
    const char  *p[3];

    p[0] = PQgetvalue(cat, 0, 0);
    p[1] = fid;
    p[2] = resident;
    res = gcho_sql(rq, "select jsonb_set(c, '{families}',"
                       "   coalesce(c -> 'families', '[]')"
                       "   || jsonb_build_array(jsonb_build_object("
                       "     'id', f.id, 'login', f.login, 'qf', f.qf,"
                       "     'resident', $3::boolean, 'children',"
                       "     (select coalesce(jsonb_agg(jsonb_build_object("
                       "        'id', k.id, 'first_name', k.first_name,"
                       "        'birth_date', k.birth_date) order by k.id),"
                       "        '[]') from child k"
                       "      where k.family_id = f.id))))::text,"
                       "   jsonb_array_length(coalesce(c -> 'families',"
                       "                               '[]'))"
                       " from (select $1::jsonb c) x, family f"
                       " where f.id = $2", 3, p);
    if (res == NULL) {
        return 0;
    }

    t = NULL;
    rc = gcho_catalogue_put(rq, PQgetvalue(res, 0, 0), "families",
                            atol(PQgetvalue(res, 0, 1)), &t);
    PQclear(res);
    if (rc != GCHO_GO) {
        return rc;
    }
    gch_town_free(t);

    p[0] = fid;
    p[1] = resident;
    if (gcho_sql_do(rq, "update family set resident = $2::boolean"
                        " where id = $1", 2, p) != 0)
    {
        return 0;
    }

    return GCHO_GO;
}


/* POST /api/staff/family-requests/{id}/decision {"decision": "validee" |
 * "refusee", "reason", "resident"} (agent) */
static int
gcho_rq_decide(gcho_req_t *rq)
{
    int                 rc, refused;
    char                decision[16], reason[1024], body[1800];
    char                target[GCHO_ID_MAX + 16], email[GCHO_ID_MAX + 32];
    PGresult           *cat, *res;
    gch_json_t          doc;
    const char         *p[4], *kv[6], *resident, *status;
    const gch_jnode_t  *v[3];

    static const gch_jfield_t  fields[] = {
        { "decision", GCH_J_STRING, 1 },
        { "reason", GCH_J_STRING | GCH_J_NULL, 0 },
        { "resident", GCH_J_BOOL | GCH_J_NULL, 0 },
    };

    if (gcho_body_json(rq, &doc, fields, 3, v) != 0) {
        return 0;
    }

    rc = gcho_str(rq, "decision", v[0], decision, sizeof(decision), 1) != 0
         || gcho_rq_opt(rq, "reason", v[1], reason, sizeof(reason)) != 0;

    resident = NULL;
    if (v[2] && v[2]->type == GCH_J_BOOL) {
        resident = v[2]->len ? "true" : "false";
    }

    gch_json_free(&doc);

    if (rc) {
        return 0;
    }

    refused = gcho_decision_word(rq, decision, "validee", reason);
    if (refused < 0) {
        return 0;
    }

    if (!refused && resident == NULL) {
        return gcho_error(rq, 400, "invalid_field", "Le champ resident "
                          "(true ou false) dit si la famille habite la "
                          "commune : il est obligatoire pour valider.");
    }

    cat = NULL;
    if (refused) {
        if (gcho_begin(rq) != 0) {
            return 0;
        }
    } else {
        rc = gcho_catalogue_lock(rq, &cat);
        if (rc != GCHO_GO) {
            return rc;
        }
    }

    p[0] = rq->param[0];
    rc = gcho_sql_row(rq, &res,
                      "Cette demande de dossier n'existe pas.",
                      "select r.status, r.parent1_first_name,"
                      "   r.parent1_last_name, r.login"
                      " from family_request r where r.family_id = $1"
                      " for update", 1, p);
    if (rc != GCHO_GO) {
        PQclear(cat);
        return rc;
    }

    status = PQgetvalue(res, 0, 0);
    if (strcmp(status, "en_attente") != 0) {
        rc = strcmp(status, "a_confirmer") == 0;
        PQclear(res);
        PQclear(cat);
        gcho_rollback();
        return rc ? gcho_error(rq, 409, "request_unconfirmed",
                               "La famille n'a pas encore confirmé son "
                               "adresse e-mail : la demande ne peut pas "
                               "encore être traitée.")
                  : gcho_error(rq, 409, "already_decided",
                               "Cette demande de dossier a déjà été "
                               "traitée.");
    }

    snprintf(body, sizeof(body),
             refused
             ? "Bonjour %s %s,\n\nVotre demande de dossier famille (dossier "
               "%s) a été refusée par la mairie.\n\nMotif : %s\n\n"
               "Pour toute question, contactez la mairie.\n\n%s/\n"
             : "Bonjour %s %s,\n\nVotre dossier famille (dossier %s) est "
               "validé par la mairie%s.  Vous pouvez désormais demander "
               "l'inscription de vos enfants aux activités et réserver.\n\n"
               "%s/\n",
             PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2), rq->param[0],
             refused ? reason : "", gcho_ctx.conf.site_url);
    PQclear(res);

    if (!refused) {
        rc = gcho_rq_admit(rq, cat, rq->param[0], resident);
        PQclear(cat);
        if (rc != GCHO_GO) {
            return rc;
        }
    }

    p[1] = decision;
    p[2] = refused ? reason : NULL;
    p[3] = rq->staff;
    res = gcho_sql(rq, "update family_request set status = $2, reason = $3,"
                       "   decided_at = now(), decided_by = $4"
                       " where family_id = $1"
                       " returning (extract(epoch from decided_at)"
                       "   * 1000000)::bigint", 4, p);
    if (res == NULL) {
        return 0;
    }
    snprintf(email, sizeof(email), "%s:%s", rq->param[0],
             PQgetvalue(res, 0, 0));
    PQclear(res);

    snprintf(rq->family_id, sizeof(rq->family_id), "%s", rq->param[0]);
    snprintf(target, sizeof(target), "family:%s", rq->param[0]);
    kv[0] = "decision";
    kv[1] = decision;
    kv[2] = "reason";
    kv[3] = p[2];
    kv[4] = "resident";
    kv[5] = refused ? NULL : resident;

    if (gcho_audit_kv(rq, "family_request.decision", target, kv, 3) != 0
        || gcho_mail(rq, rq->param[0],
                     refused ? "family_request_refusee"
                             : "family_request_validee", email,
                     refused ? "Demande de dossier famille refusée"
                             : "Dossier famille validé", body) != 0
        || gcho_commit(rq) != 0)
    {
        gcho_rollback();
        return 0;
    }

    return gcho_reply_row(rq, 200, "select " GCHO_RQ_JSON
                                   " from family_request r"
                                   " where r.family_id = $1", 1, p,
                          "Cette demande de dossier n'existe pas.");
}


const gcho_route_t  gcho_request_routes[] = {
    { "POST", "/api/account/request", GCHO_PUBLIC, 0, GCHO_BODY_JSON,
      gcho_rq_create },
    { "POST", "/api/account/request/confirm", GCHO_PUBLIC, 0,
      GCHO_BODY_JSON, gcho_rq_confirm },
    { "GET", "/api/account/pending", GCHO_FAMILY, 0, 0,
      gcho_rq_pending_get },
    { "GET", "/api/staff/family-requests", GCHO_STAFF, GCHO_AGENT, 0,
      gcho_rq_staff_list },
    { "POST", "/api/staff/family-requests/*/decision", GCHO_STAFF,
      GCHO_AGENT, GCHO_BODY_JSON, gcho_rq_decide },
    { NULL, NULL, 0, 0, 0, NULL }
};
