/*
 * invite.c -- `guichetctl invite [--rate N] [--days D]`: the town's
 * first-credentials mailing (issue 25, « Créer mon espace »).
 *
 * Every family without an account (no login) that has an e-mail address
 * and no open code gets a new activation code (10 characters of an
 * alphabet without 0/O and 1/I, valid D days, 60 by default; only its
 * SHA-256 is kept, family_code, migration 0023) and an e-mail (outbox
 * kind invitation) with its dossier number (the family's id), the code
 * and the link to « Créer mon espace ».  The e-mails go through the
 * outbox at a bounded rate: the i-th is due i / N minutes from now (N per
 * minute, 30 by default), and guichet-worker sends none before it is due.
 * One transaction: all the codes and e-mails, or nothing.  A family that
 * already has an open code is left alone (run it again after the codes
 * expire, or for new families).  Families without an e-mail address are
 * counted: the town writes to them.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gchc.h"


#define GCHC_CODE_LEN  10

static const char  gchc_code_alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";


/* A new code: "ABCDE-FGH23" in shown, its SHA-256 (of the 10 characters
 * without the dash, as guichet-office reads it) in hex. */
static void
gchc_code_make(char shown[GCHC_CODE_LEN + 2],
    char hex[crypto_hash_sha256_BYTES * 2 + 1])
{
    char     raw[GCHC_CODE_LEN + 1];
    size_t   i, j;
    uint8_t  h[crypto_hash_sha256_BYTES];

    for (i = 0, j = 0; i < GCHC_CODE_LEN; i++) {
        raw[i] = gchc_code_alphabet[randombytes_uniform(
                     sizeof(gchc_code_alphabet) - 1)];
        if (i == GCHC_CODE_LEN / 2) {
            shown[j++] = '-';
        }
        shown[j++] = raw[i];
    }
    raw[GCHC_CODE_LEN] = '\0';
    shown[j] = '\0';

    crypto_hash_sha256(h, (const uint8_t *) raw, GCHC_CODE_LEN);
    sodium_bin2hex(hex, crypto_hash_sha256_BYTES * 2 + 1, h, sizeof(h));
    sodium_memzero(raw, sizeof(raw));
}


static int
gchc_invite_exec(PGconn *pg, const char *sql, int n, const char **p)
{
    int        ok;
    PGresult  *res;

    res = PQexecParams(pg, sql, n, NULL, p, NULL, NULL, 0);
    ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok) {
        gchb_log("error", "invite: %s", PQerrorMessage(pg));
    }
    PQclear(res);

    return ok ? 0 : -1;
}


/* See gchc.h. */
int
gchc_invite(PGconn *pg, const gchb_conf_t *conf, int rate, int days)
{
    int          i, n, rc;
    char         code[GCHC_CODE_LEN + 2], hex[crypto_hash_sha256_BYTES * 2 + 1];
    char         body[2048], ref[256], delay[32], sdays[16], town[256];
    char         until[16];
    PGresult    *fams, *res;
    const char  *p[6];

    if (gchb_pg_exec(pg, "begin") != 0) {
        return -1;
    }

    res = PQexec(pg, "select coalesce((select name from town where id = 1),"
                     " ''), to_char(now() at time zone 'Europe/Paris',"
                     " 'YYYYMMDDHH24MISS')");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        gchb_log("error", "invite: %s", PQerrorMessage(pg));
        PQclear(res);
        gchb_pg_exec(pg, "rollback");
        return -1;
    }
    snprintf(town, sizeof(town), "%s", PQgetvalue(res, 0, 0));
    snprintf(until, sizeof(until), "%s", PQgetvalue(res, 0, 1));
    PQclear(res);

    snprintf(sdays, sizeof(sdays), "%d", days);
    p[0] = sdays;
    fams = PQexecParams(pg,
        "select f.id, to_char((now() + $1::int * interval '1 day')"
        "   at time zone 'Europe/Paris', 'DD/MM/YYYY')"
        " from family f join family_email e on e.family_id = f.id"
        " where f.login is null and f.archived_at is null"
        "   and not exists (select 1 from family_code c"
        "   where c.family_id = f.id and c.used_at is null"
        "   and c.expires_at > now())"
        /* a file asked online has its own confirmation (request.c) */
        "   and not exists (select 1 from family_request r"
        "     where r.family_id = f.id)"
        " order by f.id for update of f", 1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(fams) != PGRES_TUPLES_OK) {
        gchb_log("error", "invite: %s", PQerrorMessage(pg));
        PQclear(fams);
        gchb_pg_exec(pg, "rollback");
        return -1;
    }

    n = PQntuples(fams);
    rc = 0;

    for (i = 0; i < n && rc == 0; i++) {
        gchc_code_make(code, hex);

        snprintf(body, sizeof(body),
                 "Bonjour,\n\n"
                 "%s vous ouvre son Espace Famille : inscriptions, "
                 "réservations, documents et factures de vos enfants, en "
                 "ligne.\n\n"
                 "Votre numéro de dossier : %s\n"
                 "Votre code d'activation : %s (valable jusqu'au %s)\n\n"
                 "Pour créer votre espace, ouvrez ce lien et saisissez-les "
                 "avec l'adresse e-mail de votre choix :\n\n"
                 "%s/#/creer-mon-espace?dossier=%s\n\n"
                 "Ce code est personnel : ne le communiquez à personne.\n",
                 town[0] ? town : "Votre commune",
                 PQgetvalue(fams, i, 0), code,
                 PQgetvalue(fams, i, 1),
                 conf->site_url ? conf->site_url : "",
                 PQgetvalue(fams, i, 0));

        snprintf(ref, sizeof(ref), "%s:%s", PQgetvalue(fams, i, 0), until);
        /* the i-th e-mail is due i / rate minutes from now */
        snprintf(delay, sizeof(delay), "%.3f", (double) i * 60.0 / rate);

        p[0] = PQgetvalue(fams, i, 0);
        p[1] = hex;
        p[2] = sdays;
        rc = gchc_invite_exec(pg,
            "insert into family_code (family_id, code_hash, expires_at)"
            " values ($1, $2, now() + $3::int * interval '1 day')"
            " on conflict (family_id) do update"
            "   set code_hash = excluded.code_hash,"
            "   created_at = now(), expires_at = excluded.expires_at,"
            "   used_at = null", 3, p);

        if (rc == 0) {
            p[1] = ref;
            p[2] = "Votre Espace Famille : vos codes d'accès";
            p[3] = body;
            p[4] = delay;
            rc = gchc_invite_exec(pg,
                "insert into outbox (family_id, kind, ref, subject, body,"
                "   next_attempt_at)"
                " values ($1, 'invitation', $2, $3, $4,"
                "   now() + $5::float8 * interval '1 second')", 5, p);
        }

        sodium_memzero(code, sizeof(code));
        sodium_memzero(body, sizeof(body));
    }

    if (rc != 0 || gchb_pg_exec(pg, "commit") != 0) {
        gchb_pg_exec(pg, "rollback");
        PQclear(fams);
        return -1;
    }

    printf("%d invitations queued (%d per minute, the last due in %d "
           "min)\n", n, rate, n ? (n - 1) / rate : 0);

    res = PQexec(pg, "select count(*) from family x where x.login is null"
                     " and not exists (select 1 from family_email e"
                     "   where e.family_id = x.id)");
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1
        && strcmp(PQgetvalue(res, 0, 0), "0") != 0)
    {
        printf("%s families without an account have no e-mail address: "
               "write to them\n", PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    PQclear(fams);

    return 0;
}


/* See gchc.h. */
int
gchc_invite_letter(PGconn *pg, const char *fid, int days)
{
    int          rc;
    char         code[GCHC_CODE_LEN + 2], hex[crypto_hash_sha256_BYTES * 2 + 1];
    char         sdays[16];
    PGresult    *res;
    const char  *p[3];

    if (gchb_pg_exec(pg, "begin") != 0) {
        return -1;
    }

    p[0] = fid;
    res = PQexecParams(pg, "select login is null and not exists (select 1"
                           "   from family_request r"
                           "   where r.family_id = f.id),"
                           " archived_at is not null"
                           " from family f where f.id = $1"
                           " for update of f", 1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        gchb_log("error", "invite: %s", PQerrorMessage(pg));
        PQclear(res);
        gchb_pg_exec(pg, "rollback");
        return -1;
    }
    /* an archived family's login is empty too: its file is erased */
    rc = PQntuples(res) != 1 ? 1
         : strcmp(PQgetvalue(res, 0, 1), "t") == 0 ? 3
         : strcmp(PQgetvalue(res, 0, 0), "t") != 0 ? 2 : 0;
    PQclear(res);

    if (rc != 0) {
        gchb_pg_exec(pg, "rollback");
        fprintf(stderr, "guichetctl: %s\n", rc == 1
                ? "no such family"
                : rc == 3 ? "this family is archived"
                : "this family already has an account, or asked its file "
                  "online");
        return -1;
    }

    gchc_code_make(code, hex);
    snprintf(sdays, sizeof(sdays), "%d", days);

    /* a new code replaces one still open: the letter's is the one */
    p[1] = hex;
    p[2] = sdays;
    rc = gchc_invite_exec(pg,
        "insert into family_code (family_id, code_hash, expires_at)"
        " values ($1, $2, now() + $3::int * interval '1 day')"
        " on conflict (family_id) do update"
        " set code_hash = excluded.code_hash, created_at = now(),"
        "   expires_at = excluded.expires_at, used_at = null", 3, p);

    if (rc == 0) {
        res = PQexecParams(pg, "select to_char((now() + $1::int"
                               "   * interval '1 day') at time zone"
                               "   'Europe/Paris', 'DD/MM/YYYY')",
                           1, NULL, p + 2, NULL, NULL, 0);
        rc = PQresultStatus(res) == PGRES_TUPLES_OK ? 0 : -1;
        if (rc == 0 && gchb_pg_exec(pg, "commit") == 0) {
            printf("dossier %s  code d'activation %s  (valable jusqu'au "
                   "%s)\n", fid, code, PQgetvalue(res, 0, 0));
        } else {
            rc = -1;
        }
        PQclear(res);
    }

    sodium_memzero(code, sizeof(code));

    if (rc != 0) {
        gchb_pg_exec(pg, "rollback");
        return -1;
    }

    return 0;
}


/* See gchc.h. */
int
gchc_outbox(PGconn *pg, const char *fid, const char *kind)
{
    int          row;
    PGresult    *res;
    const char  *p[2];

    p[0] = fid;
    p[1] = kind;
    res = PQexecParams(pg,
        "select coalesce(o.id::text, '-'), o.family_id, o.kind,"
        "   coalesce(e.address, '-'), o.subject, o.body"
        " from outbox_mail o left join family_email e"
        "   on e.family_id = o.family_id"
        " where o.sent_at is null"
        "   and ($1::text is null or o.family_id = $1)"
        "   and ($2::text is null or o.kind = $2)"
        " order by o.id nulls last, o.ref", 2, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        gchb_log("error", "outbox: %s", PQerrorMessage(pg));
        PQclear(res);
        return -1;
    }

    for (row = 0; row < PQntuples(res); row++) {
        printf("--- #%s %s %s to %s\nSubject: %s\n\n%s\n",
               PQgetvalue(res, row, 0), PQgetvalue(res, row, 1),
               PQgetvalue(res, row, 2), PQgetvalue(res, row, 3),
               PQgetvalue(res, row, 4), PQgetvalue(res, row, 5));
    }

    printf("%d e-mails not sent\n", PQntuples(res));
    PQclear(res);

    return 0;
}
