/*
 * ctl.c -- guichetctl, the operators' tool.
 *
 *   guichetctl [-c FILE] [--town ID] COMMAND ...; the commands:
 *
 *   guichetctl [-c FILE] migrate
 *   guichetctl [-c FILE] load-town FILE [--replace]
 *   guichetctl [-c FILE] publish [--rebuild]
 *   guichetctl [-c FILE] token FAMILY_ID [--ttl SECONDS]
 *   guichetctl [-c FILE] tokens [--ttl SECONDS]
 *   guichetctl [-c FILE] init-secret FILE
 *   guichetctl [-c FILE] config
 *   guichetctl [-c FILE] invoice --month YYYY-MM
 *   guichetctl [-c FILE] set-email FAMILY_ID ADDRESS
 *   guichetctl [-c FILE] staff-add LOGIN ROLE NAME   (password on stdin)
 *   guichetctl [-c FILE] sepa-export --month YYYY-MM [--out FILE]
 *   guichetctl [-c FILE] check
 *   guichetctl [-c FILE] recount SESSION...
 *   guichetctl [-c FILE] draw-verify ACTIVITY
 *
 * Without -c, the settings are $GUICHET_CONF, else the var/worker.conf of
 * the checkout whose build/ holds this program (make run writes it), else
 * the built-in defaults (gchb_conf_find).  --town ID: the town to work
 * on, else the setting town when the database has it, else the database's
 * only town (gchc_town_use); migrate applies the migrations to every town
 * of the database and creates the run's town when it is not there.  A
 * Redis still loading its data after a restart is waited for (one
 * progress line).
 *
 * Exit status 0 on success, 1 on failure (message on stderr), 2 on a usage
 * error.  See docs/worker.md.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "gchc.h"


#define GCHC_TOKEN_TTL  (12 * 3600)


/* --town ID, NULL when not given */
static const char  *gchc_town_arg;


/*
 * The town of this run, on the connection and in gchb_town: --town, else
 * the configured town when the database has it, else the database's only
 * town.  0, or -1 after saying why.
 */
static int
gchc_town_use(PGconn *pg)
{
    int   n, i, rc;
    char  ids[GCHB_TOWNS_MAX][GCH_TOWN_ID_MAX + 1];

    n = gchb_pg_towns(pg, ids, GCHB_TOWNS_MAX);
    if (n < 0) {
        return -1;
    }

    if (gchc_town_arg == NULL && n == 1) {
        for (i = 0; i < n && strcmp(ids[i], gchb_town) != 0; i++) {
            /* void */
        }

        if (i == n) {
            gchb_town_set(ids[0]);
        }
    }

    rc = gchb_pg_town(pg, gchb_town);

    if (rc == 1) {
        fprintf(stderr, "guichetctl: the database has no town \"%s\" "
                "(guichetctl --town %s migrate creates it)\n", gchb_town,
                gchb_town);
    }

    return rc == 0 ? 0 : -1;
}


/* What a command connects to (gchc_open). */
typedef enum {
    GCHC_PG,                     /* PostgreSQL alone */
    GCHC_PG_REDIS,               /* both, or nothing */
    GCHC_PG_REDIS_TRY            /* PostgreSQL, and Redis if it answers */
} gchc_need_t;


typedef struct {
    PGconn        *pg;
    redisContext  *redis;
} gchc_conn_t;


static void
gchc_usage(void)
{
    fprintf(stderr,
        "usage: guichetctl [-c FILE] [--town ID] COMMAND\n"
        "  (without -c: $GUICHET_CONF, else this checkout's var/worker.conf)\n"
        "  (without --town: the setting town when the database has it,\n"
        "   else the database's only town)\n"
        "  migrate                    apply sql migrations not yet applied\n"
        "                             to every town; creates the run's\n"
        "                             town when the database lacks it\n"
        "  load-town FILE [--replace] load a town file, then publish;\n"
        "                             --replace: even another town's, or\n"
        "                             one dropping families with bookings\n"
        "  publish [--rebuild]        publish the catalogue to redis\n"
        "  token FAMILY_ID [--ttl S]  print a bearer token (12 h)\n"
        "  tokens [--ttl S]           print \"family_id token\" for all\n"
        "  staff-token NAME [--ttl S] a token for a town agent at the\n"
        "                             counter (POST /api/staff/bookings)\n"
        "  init-secret FILE           create a token secret file\n"
        "  config                     print the settings in effect\n"
        "  invoice --month YYYY-MM    create the month's invoices and PDFs\n"
        "  set-email FAMILY_ID ADDR   set a family's e-mail address\n"
        "  invite [--rate N] [--days D]\n"
        "                             e-mail an activation code to every\n"
        "                             family without an account (N per\n"
        "                             minute, 30; codes valid D days, 60)\n"
        "  invite --letter FAMILY_ID [--days D]\n"
        "                             a new code for that family, printed\n"
        "                             for a letter (no e-mail)\n"
        "  outbox [--family F] [--kind K]\n"
        "                             print the e-mails not sent yet\n"
        "  staff-add LOGIN ROLE NAME  create or update a back-office\n"
        "                             account (agent|regie|admin), the\n"
        "                             password read from stdin\n"
        "  sepa-export --month YYYY-MM [--out FILE]\n"
        "                             the month's direct debits as a SEPA\n"
        "                             pain.008 file (once per month)\n"
        "  check                      compare redis with postgres\n"
        "  recount SESSION...         have the worker set each session's\n"
        "                             counter from its booked set\n"
        "  draw-verify ACTIVITY       recompute a draw's order from its\n"
        "                             seed and entries, compare with its\n"
        "                             decisions\n"
        "  migrate-keys               rename redis keys of the layout\n"
        "                             before towns to the town's\n");
}


/*
 * Every command's opening: PostgreSQL, then (need) Redis, waiting while
 * Redis loads its data after a restart (gchb_redis_connect_wait).  0 with
 * c->pg open and c->redis open, or NULL for GCHC_PG and for
 * GCHC_PG_REDIS_TRY when Redis does not answer; -1 after logging, nothing
 * open.  gchc_close() closes what is open.
 */
static int
gchc_open(gchc_conn_t *c, const gchb_conf_t *conf, gchc_need_t need)
{
    c->redis = NULL;

    c->pg = gchb_pg_connect(conf);
    if (c->pg == NULL) {
        return -1;
    }

    if (gchc_town_use(c->pg) != 0) {
        PQfinish(c->pg);
        c->pg = NULL;
        return -1;
    }

    if (need == GCHC_PG) {
        return 0;
    }

    c->redis = gchb_redis_connect_wait(conf);
    if (c->redis == NULL && need == GCHC_PG_REDIS) {
        PQfinish(c->pg);
        c->pg = NULL;
        return -1;
    }

    return 0;
}


static void
gchc_close(gchc_conn_t *c)
{
    if (c->redis) {
        redisFree(c->redis);
        c->redis = NULL;
    }

    if (c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
}


static int
gchc_cmd_migrate(const gchb_conf_t *conf)
{
    int          applied, rc;
    gchc_conn_t  c;

    /* every town of the database, this run's town created if need be */
    c.redis = NULL;
    c.pg = gchb_pg_connect(conf);
    if (c.pg == NULL) {
        return 1;
    }

    rc = gchb_migrate_towns(c.pg, conf->migrations_dir, conf->town,
                            gchb_town, &applied);
    gchc_close(&c);

    if (rc != 0) {
        return 1;
    }

    printf("%d migration%s applied\n", applied, applied == 1 ? "" : "s");
    return 0;
}


static int
gchc_cmd_publish(const gchb_conf_t *conf, int rebuild)
{
    int          rc;
    gchc_conn_t  c;

    if (gchc_open(&c, conf, GCHC_PG_REDIS) != 0) {
        return 1;
    }

    rc = gchw_publish(c.pg, c.redis, rebuild);
    gchc_close(&c);

    return rc == 0 ? 0 : 1;
}


static int
gchc_cmd_load_town(const gchb_conf_t *conf, const char *file, int replace)
{
    int          rc;
    gchc_conn_t  c;

    if (gchc_open(&c, conf, GCHC_PG) != 0) {
        return 1;
    }

    rc = gchc_load_town(c.pg, file, replace);
    if (rc < 0) {
        gchc_close(&c);
        return 1;
    }

    printf("%s\n", rc == 1 ? "unchanged" : "loaded");

    /* Redis only now: what is loaded stays loaded without it */
    c.redis = gchb_redis_connect_wait(conf);
    if (c.redis == NULL) {
        fprintf(stderr, "guichetctl: loaded in postgres, not published: "
                "the worker will publish when redis is back\n");
        gchc_close(&c);
        return 1;
    }

    rc = gchw_publish(c.pg, c.redis, 0);
    gchc_close(&c);

    return rc == 0 ? 0 : 1;
}


static int
gchc_cmd_invoice(const gchb_conf_t *conf, const char *month)
{
    int          rc, created, published;
    gchc_conn_t  c;

    if (gchc_open(&c, conf, GCHC_PG_REDIS_TRY) != 0) {
        return 1;
    }

    published = c.redis != NULL;
    if (!published) {
        fprintf(stderr, "guichetctl: invoices not published: the worker "
                "republishes them after a rebuild, or run this again\n");
    }

    rc = gchb_invoice_run(c.pg, c.redis, conf, month, &created);
    if (rc == 0) {
        printf("%d invoice%s created\n", created, created == 1 ? "" : "s");
    }

    gchc_close(&c);

    return rc == 0 && published ? 0 : 1;
}


/*
 * sepa-export --month YYYY-MM [--out FILE]: ctl/sepa.c; 0, or 1 when
 * the month was already exported, has nothing to debit, or failed.
 */
static int
gchc_cmd_sepa_export(const gchb_conf_t *conf, const char *month,
    const char *out)
{
    int          rc;
    gchc_conn_t  c;

    if (strlen(month) != 7 || month[4] != '-'
        || strspn(month, "0123456789-") != 7
        || strcmp(month + 5, "01") < 0 || strcmp(month + 5, "12") > 0)
    {
        fprintf(stderr, "guichetctl: --month attend un mois AAAA-MM\n");
        return 2;
    }

    if (gchc_open(&c, conf, GCHC_PG_REDIS_TRY) != 0) {
        return 1;
    }

    rc = gchc_sepa_export(c.pg, c.redis, conf, month, out, "guichetctl");
    gchc_close(&c);

    return rc == 0 ? 0 : 1;
}


static int
gchc_cmd_invite(const gchb_conf_t *conf, char **argv, int argc)
{
    int          i, rc, rate, days;
    char        *end;
    long         v;
    const char  *letter;
    gchc_conn_t  c;

    rate = 30;
    days = 60;
    letter = NULL;

    for (i = 0; i < argc; i += 2) {
        if (i + 1 >= argc) {
            return 2;
        }
        if (strcmp(argv[i], "--letter") == 0) {
            letter = argv[i + 1];
            continue;
        }
        v = strtol(argv[i + 1], &end, 10);
        if (*end != '\0' || v < 1 || v > 100000) {
            fprintf(stderr, "guichetctl: %s wants a number from 1 to "
                    "100000\n", argv[i]);
            return 2;
        }
        if (strcmp(argv[i], "--rate") == 0) {
            rate = (int) v;
        } else if (strcmp(argv[i], "--days") == 0 && v <= 365) {
            days = (int) v;
        } else {
            return 2;
        }
    }

    if (gchc_open(&c, conf, GCHC_PG) != 0) {
        return 1;
    }

    rc = (letter != NULL ? gchc_invite_letter(c.pg, letter, days)
                         : gchc_invite(c.pg, conf, rate, days)) == 0 ? 0 : 1;
    gchc_close(&c);

    return rc;
}


static int
gchc_cmd_outbox(const gchb_conf_t *conf, char **argv, int argc)
{
    int          i, rc;
    const char  *fid, *kind;
    gchc_conn_t  c;

    fid = kind = NULL;

    for (i = 0; i < argc; i += 2) {
        if (i + 1 >= argc) {
            return 2;
        }
        if (strcmp(argv[i], "--family") == 0) {
            fid = argv[i + 1];
        } else if (strcmp(argv[i], "--kind") == 0) {
            kind = argv[i + 1];
        } else {
            return 2;
        }
    }

    if (gchc_open(&c, conf, GCHC_PG) != 0) {
        return 1;
    }

    rc = gchc_outbox(c.pg, fid, kind) == 0 ? 0 : 1;
    gchc_close(&c);

    return rc;
}


static int
gchc_cmd_set_email(const gchb_conf_t *conf, const char *fid,
    const char *address)
{
    int           rc;
    PGconn       *pg;
    PGresult     *res;
    const char   *params[2];
    gchc_conn_t   c;

    if (gchc_open(&c, conf, GCHC_PG) != 0) {
        return 1;
    }

    pg = c.pg;

    params[0] = fid;
    params[1] = address;
    res = PQexecParams(pg,
        "insert into family_email (family_id, address)"
        " select id, $2 from family where id = $1 and archived_at is null"
        " on conflict (family_id) do update set address = excluded.address,"
        "   updated_at = now()"
        " where family_email.address is distinct from excluded.address",
        2, NULL, params, NULL, NULL, 0);

    rc = 0;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        fprintf(stderr, "guichetctl: %s", PQerrorMessage(pg));
        rc = 1;

    } else if (strcmp(PQcmdTuples(res), "0") == 0) {
        PQclear(res);
        res = PQexecParams(pg, "select archived_at is not null from family"
                           " where id = $1", 1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 0) {
            fprintf(stderr, "guichetctl: no family \"%s\"\n", fid);
            rc = 1;

        } else if (PQresultStatus(res) == PGRES_TUPLES_OK
                   && strcmp(PQgetvalue(res, 0, 0), "t") == 0)
        {
            /* archiving erased its address: its file changes no more */
            fprintf(stderr, "guichetctl: family \"%s\" is archived\n", fid);
            rc = 1;
        }
    }

    PQclear(res);
    gchc_close(&c);

    return rc;
}


static int
gchc_cmd_check(const gchb_conf_t *conf)
{
    int          n;
    gchc_conn_t  c;

    if (gchc_open(&c, conf, GCHC_PG_REDIS) != 0) {
        return 2;
    }

    n = gchc_check(c.pg, c.redis);
    gchc_close(&c);

    if (n < 0) {
        return 2;
    }

    if (n == 0) {
        printf("redis and postgres agree\n");
        return 0;
    }

    printf("%d difference%s\n", n, n == 1 ? "" : "s");
    return 1;
}


/* Redis only: the keys of the layout before towns to the town's
 * (gchb_migrate_keys), then the town's old on-site counters into its
 * :left keys (gchb_merge_counters); prints how many. */
static int
gchc_cmd_migrate_keys(const gchb_conf_t *conf)
{
    int            rc, busy;
    long           n, m;
    redisContext  *redis;

    redis = gchb_redis_connect_wait(conf);
    if (redis == NULL) {
        return 1;
    }

    m = 0;
    busy = 0;
    rc = gchb_migrate_keys(redis, gchb_town, &n);
    if (rc == 0) {
        rc = gchb_merge_counters(redis, gchb_town, &m);
        busy = rc == 1;
        rc = rc == 1 ? 0 : rc;
    }
    redisFree(redis);

    if (rc != 0) {
        return 1;
    }

    printf("%ld key%s renamed to the layout of town %s\n", n,
           n == 1 ? "" : "s", gchb_town);
    if (m) {
        printf("%ld on-site counter%s merged into " GCH_KEY_S(GCH_KEY_LEFT)
               "\n", m, m == 1 ? "" : "s", gchb_town, "<sid>");
    }
    if (busy) {
        fprintf(stderr, "guichetctl: some on-site counters kept moving: "
                "run migrate-keys again (the worker merges them too)\n");
    }

    return 0;
}


static int
gchc_cmd_recount(const gchb_conf_t *conf, char **sids, int n)
{
    int          rc;
    gchc_conn_t  c;

    if (gchc_open(&c, conf, GCHC_PG_REDIS) != 0) {
        return 1;
    }

    rc = gchc_recount_schedule(c.pg, c.redis, sids, n);
    gchc_close(&c);

    return rc;
}


static int
gchc_cmd_draw_verify(const gchb_conf_t *conf, const char *aid)
{
    int          rc;
    gchc_conn_t  c;

    if (gchc_open(&c, conf, GCHC_PG) != 0) {
        return 1;
    }

    rc = gchc_draw_verify(c.pg, aid);
    gchc_close(&c);

    return rc;
}


/*
 * Prints a token for fid.  A family's token (rc not NULL) is also recorded
 * like a website login's, its BLAKE2b-128 hash in {T}:f:<fid>:tokens scored
 * by its expiry (ngx_http_guichet_login_record), so that a password change
 * or reset ends it too (guichet-office).  The command is only appended:
 * the caller reads the replies (gchc_tokens_recorded).
 */
static int
gchc_print_token(const uint8_t *secret, const char *fid, long ttl,
    const char *prefix, redisContext *rc)
{
    char      tok[GCH_TOKEN_MAX], hex[2 * GCH_TOKEN_HASH_LEN + 1];
    int64_t   exp, now;
    uint8_t   nonce[16], hash[GCH_TOKEN_HASH_LEN];

    randombytes_buf(nonce, sizeof(nonce));
    now = (int64_t) time(NULL);
    exp = now + ttl;

    /*
     * v4: the town it is for, and the issue time that tells nginx whether
     * its catalogue is older
     */
    if (gch_token_issue(tok, secret, gchb_town, fid, now, exp, nonce)
        != GCH_OK)
    {
        fprintf(stderr, "guichetctl: cannot make a token for \"%s\"\n",
                fid);
        return 1;
    }

    if (rc) {
        gch_token_hash(tok, strlen(tok), hash);
        sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
        /* an agent's ("staff:<login>") in {T}:staff:<login>:tokens */
        if ((strncmp(fid, "staff:", 6) == 0
             ? redisAppendCommand(rc, "ZADD " GCH_KEY_STAFF_TOKENS
                                      " %lld %s", gchb_town, fid + 6,
                                  (long long) exp, hex)
             : redisAppendCommand(rc, "ZADD " GCH_KEY_F(GCH_KEY_TOKENS)
                                      " %lld %s", gchb_town, fid,
                                  (long long) exp, hex))
            != REDIS_OK)
        {
            fprintf(stderr, "guichetctl: redis: %s\n", rc->errstr);
            return 1;
        }
    }

    printf("%s%s%s\n", prefix ? prefix : "", prefix ? " " : "", tok);
    return 0;
}


/* Reads the n replies of gchc_print_token's ZADDs: 0, or 1 on an error. */
static int
gchc_tokens_recorded(redisContext *rc, int n)
{
    int          i, ret;
    redisReply  *r;

    ret = 0;
    for (i = 0; i < n; i++) {
        if (redisGetReply(rc, (void **) &r) != REDIS_OK) {
            fprintf(stderr, "guichetctl: redis: %s\n", rc->errstr);
            return 1;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "guichetctl: redis: %s\n", r->str);
            ret = 1;
        }
        freeReplyObject(r);
    }

    return ret;
}


/*
 * A staff token is a token whose subject is "staff:<name>": the module
 * takes it only for the counter's endpoints (and never from a cookie).
 */
static int
gchc_cmd_staff_token(const gchb_conf_t *conf, const char *name, long ttl)
{
    int            rc;
    char           sub[128];
    uint8_t        secret[GCH_SECRET_LEN];
    redisContext  *redis;

    if (strlen(name) > 64 || snprintf(sub, sizeof(sub), "staff:%s", name)
                             >= (int) sizeof(sub))
    {
        fprintf(stderr, "guichetctl: staff name too long\n");
        return 1;
    }

    if (gchb_secret_read(conf->secret_file, secret) != 0) {
        return 1;
    }

    /* recorded like a login's, so that a password change ends it */
    redis = gchb_redis_connect(conf);
    if (redis == NULL) {
        sodium_memzero(secret, sizeof(secret));
        return 1;
    }

    rc = gchc_print_token(secret, sub, ttl, NULL, redis);
    if (rc == 0) {
        rc = gchc_tokens_recorded(redis, 1);
    }

    redisFree(redis);
    sodium_memzero(secret, sizeof(secret));

    return rc;
}


static int
gchc_cmd_tokens(const gchb_conf_t *conf, const char *fid, long ttl)
{
    int           rc, row;
    uint8_t       secret[GCH_SECRET_LEN];
    PGresult     *res;
    const char   *params[1];
    gchc_conn_t   c;

    if (gchb_secret_read(conf->secret_file, secret) != 0) {
        return 1;
    }

    if (gchc_open(&c, conf, GCHC_PG_REDIS) != 0) {
        sodium_memzero(secret, sizeof(secret));
        return 1;
    }

    params[0] = fid;
    res = PQexecParams(c.pg, fid
                       ? "select id from family where id = $1"
                       : "select id from family order by id",
                       fid ? 1 : 0, NULL, params, NULL, NULL, 0);

    rc = 0;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        gchb_log("error", "postgres: %s", PQerrorMessage(c.pg));
        rc = 1;

    } else if (fid && PQntuples(res) == 0) {
        fprintf(stderr, "guichetctl: no family \"%s\"\n", fid);
        rc = 1;

    } else {
        for (row = 0; row < PQntuples(res) && rc == 0; row++) {
            rc = gchc_print_token(secret, PQgetvalue(res, row, 0), ttl,
                                  fid ? NULL : PQgetvalue(res, row, 0),
                                  c.redis);
        }
        if (rc == 0) {
            rc = gchc_tokens_recorded(c.redis, row);
        }
    }

    PQclear(res);
    gchc_close(&c);
    sodium_memzero(secret, sizeof(secret));

    return rc;
}


/*
 * The account is active with this password from now on: {T}:staff says so
 * to the module, and the tokens made before (an old password's) end.
 */
static int
gchc_staff_redis(const gchb_conf_t *conf, const char *login,
    const char *role)
{
    int            rc;
    redisContext  *redis;

    redis = gchb_redis_connect(conf);
    rc = redis ? gchb_staff_changed(redis, login, role) : -1;

    if (redis) {
        redisFree(redis);
    }

    if (rc != 0) {
        fprintf(stderr, "guichetctl: redis: the counter does not know %s "
                "yet and its old tokens are still valid: run staff-add "
                "again\n", login);
        return 1;
    }

    return 0;
}


/*
 * staff-add LOGIN ROLE NAME: creates (or updates: role, name, password,
 * active again) a back-office account of guichet-office.  The password is
 * the first line of stdin (8 to 255 bytes), stored as an argon2id hash;
 * the account and its audit_log row are one transaction.
 */
static int
gchc_cmd_staff_add(const gchb_conf_t *conf, const char *login,
    const char *role, const char *name)
{
    int           rc;
    char          pw[258], hash[crypto_pwhash_STRBYTES];
    size_t        n;
    PGconn       *pg;
    PGresult     *res;
    const char   *p[4];
    gchc_conn_t   c;

    if (strcmp(role, "agent") != 0 && strcmp(role, "regie") != 0
        && strcmp(role, "admin") != 0)
    {
        fprintf(stderr, "guichetctl: le rôle est agent, regie ou admin\n");
        return 2;
    }

    n = strlen(login);
    if (n == 0 || n > 64
        || strspn(login, "abcdefghijklmnopqrstuvwxyz0123456789._-") != n)
    {
        fprintf(stderr, "guichetctl: identifiant invalide (1 à 64 de "
                "a-z 0-9 . _ -)\n");
        return 1;
    }

    if (*name == '\0' || strlen(name) > 200) {
        fprintf(stderr, "guichetctl: nom vide ou trop long\n");
        return 1;
    }

    if (fgets(pw, sizeof(pw), stdin) == NULL) {
        fprintf(stderr, "guichetctl: mot de passe attendu sur l'entrée "
                "standard\n");
        return 1;
    }

    n = strcspn(pw, "\r\n");
    if (pw[n] == '\0' && n == sizeof(pw) - 1) {
        n = sizeof(pw);                  /* no end of line: too long */
    }
    pw[n < sizeof(pw) ? n : sizeof(pw) - 1] = '\0';

    if (n < 8 || n > 255) {
        sodium_memzero(pw, sizeof(pw));
        fprintf(stderr, "guichetctl: le mot de passe fait de 8 à 255 "
                "caractères\n");
        return 1;
    }

    rc = crypto_pwhash_str(hash, pw, n, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                           crypto_pwhash_MEMLIMIT_INTERACTIVE);
    sodium_memzero(pw, sizeof(pw));

    if (rc != 0) {
        fprintf(stderr, "guichetctl: cannot hash the password (memory)\n");
        return 1;
    }

    if (gchc_open(&c, conf, GCHC_PG) != 0) {
        return 1;
    }

    pg = c.pg;
    p[0] = login;
    p[1] = name;
    p[2] = hash;
    p[3] = role;

    rc = 1;

    if (gchb_pg_exec(pg, "begin") != 0) {
        goto done;
    }

    res = PQexecParams(pg,
        "with a as (insert into staff_account (login, name, password_hash,"
        "   role) values ($1, $2, $3, $4)"
        " on conflict (login) do update set name = excluded.name,"
        "   password_hash = excluded.password_hash, role = excluded.role,"
        "   active = true"
        " returning (xmax = 0) as created)"
        " insert into audit_log (actor, action, target, detail)"
        " select 'guichetctl', case when created then 'staff.add'"
        "   else 'staff.update' end, 'staff:' || $1,"
        "   jsonb_build_object('role', $4::text, 'name', $2::text)"
        " from a returning action", 4, NULL, p, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        fprintf(stderr, "guichetctl: postgres: %s", PQerrorMessage(pg));
        PQclear(res);
        (void) gchb_pg_exec(pg, "rollback");
        goto done;
    }

    if (gchb_pg_exec(pg, "commit") == 0) {
        printf("%s %s (%s)\n",
               strcmp(PQgetvalue(res, 0, 0), "staff.add") == 0
               ? "added" : "updated", login, role);
        rc = gchc_staff_redis(conf, login, role);
    }

    PQclear(res);

done:

    sodium_memzero(hash, sizeof(hash));
    gchc_close(&c);

    return rc;
}


static long
gchc_ttl_arg(int argc, char **argv, int from)
{
    int    i;
    long   ttl;
    char  *end;

    ttl = GCHC_TOKEN_TTL;

    for (i = from; i < argc; i++) {
        if (strcmp(argv[i], "--ttl") == 0 && i + 1 < argc) {
            ttl = strtol(argv[++i], &end, 10);
            if (*end != '\0' || ttl <= 0) {
                return -1;
            }

        } else {
            return -1;
        }
    }

    return ttl;
}


/*
 * Runs cmd with its arguments argv[i..argc): the command's exit status,
 * 2 when the arguments are not the command's (a usage error), 3 when
 * check failed to compare (not a usage error).
 */
static int
gchc_command(const gchb_conf_t *conf, const char *cmd, int argc,
    char **argv, int i)
{
    int   rc;
    long  ttl;

    rc = 2;

    if (strcmp(cmd, "migrate") == 0 && i == argc) {
        rc = gchc_cmd_migrate(conf);

    } else if (strcmp(cmd, "load-town") == 0 && i + 1 == argc
               && strcmp(argv[i], "--replace") != 0)
    {
        rc = gchc_cmd_load_town(conf, argv[i], 0);

    } else if (strcmp(cmd, "load-town") == 0 && i + 2 == argc
               && (strcmp(argv[i], "--replace") == 0
                   || strcmp(argv[i + 1], "--replace") == 0))
    {
        rc = gchc_cmd_load_town(conf,
                                argv[strcmp(argv[i], "--replace") == 0
                                     ? i + 1 : i], 1);

    } else if (strcmp(cmd, "publish") == 0
               && (i == argc
                   || (i + 1 == argc && strcmp(argv[i], "--rebuild") == 0)))
    {
        rc = gchc_cmd_publish(conf, i + 1 == argc);

    } else if (strcmp(cmd, "token") == 0 && i < argc
               && argv[i][0] != '-')
    {
        ttl = gchc_ttl_arg(argc, argv, i + 1);
        if (ttl > 0) {
            rc = gchc_cmd_tokens(conf, argv[i], ttl);
        }

    } else if (strcmp(cmd, "staff-token") == 0 && i < argc
               && argv[i][0] != '-')
    {
        ttl = gchc_ttl_arg(argc, argv, i + 1);
        if (ttl > 0) {
            rc = gchc_cmd_staff_token(conf, argv[i], ttl);
        }

    } else if (strcmp(cmd, "tokens") == 0) {
        ttl = gchc_ttl_arg(argc, argv, i);
        if (ttl > 0) {
            rc = gchc_cmd_tokens(conf, NULL, ttl);
        }

    } else if (strcmp(cmd, "config") == 0 && i == argc) {
        gchb_conf_dump(conf);
        rc = 0;

    } else if (strcmp(cmd, "invoice") == 0 && i + 2 == argc
               && strcmp(argv[i], "--month") == 0)
    {
        rc = gchc_cmd_invoice(conf, argv[i + 1]);

    } else if (strcmp(cmd, "sepa-export") == 0 && (i + 2 == argc
               || (i + 4 == argc && strcmp(argv[i + 2], "--out") == 0))
               && strcmp(argv[i], "--month") == 0)
    {
        rc = gchc_cmd_sepa_export(conf, argv[i + 1],
                                  i + 4 == argc ? argv[i + 3] : NULL);

    } else if (strcmp(cmd, "invite") == 0) {
        rc = gchc_cmd_invite(conf, argv + i, argc - i);

    } else if (strcmp(cmd, "outbox") == 0) {
        rc = gchc_cmd_outbox(conf, argv + i, argc - i);

    } else if (strcmp(cmd, "set-email") == 0 && i + 2 == argc) {
        rc = gchc_cmd_set_email(conf, argv[i], argv[i + 1]);

    } else if (strcmp(cmd, "staff-add") == 0 && i + 3 == argc) {
        rc = gchc_cmd_staff_add(conf, argv[i], argv[i + 1], argv[i + 2]);

    } else if (strcmp(cmd, "draw-verify") == 0 && i + 1 == argc) {
        rc = gchc_cmd_draw_verify(conf, argv[i]);

    } else if (strcmp(cmd, "recount") == 0 && i < argc) {
        rc = gchc_cmd_recount(conf, argv + i, argc - i);

    } else if (strcmp(cmd, "migrate-keys") == 0 && i == argc) {
        rc = gchc_cmd_migrate_keys(conf);

    } else if (strcmp(cmd, "check") == 0 && i == argc) {
        rc = gchc_cmd_check(conf);
        if (rc == 2) {
            rc = 3;                  /* an error, not a usage error */
        }
    }

    return rc;
}


int
main(int argc, char **argv)
{
    int           i, rc;
    const char   *file, *cmd;
    gchb_conf_t   conf;

    gchb_log_init("guichetctl");

    file = NULL;
    i = 1;

    if (i + 1 < argc && strcmp(argv[i], "-c") == 0) {
        file = argv[i + 1];
        i += 2;
    }

    if (i + 1 < argc && strcmp(argv[i], "--town") == 0) {
        gchc_town_arg = argv[i + 1];
        i += 2;

        if (!gch_town_id_ok(gchc_town_arg, strlen(gchc_town_arg))) {
            fprintf(stderr, "guichetctl: --town \"%s\" is not a town id "
                    "(1 to %d characters among a-z, 0-9 and \"-\")\n",
                    gchc_town_arg, GCH_TOWN_ID_MAX);
            return 2;
        }
    }

    if (i >= argc) {
        gchc_usage();
        return 2;
    }

    if (sodium_init() < 0) {
        fprintf(stderr, "guichetctl: libsodium cannot start\n");
        return 1;
    }

    cmd = argv[i++];

    if (strcmp(cmd, "init-secret") == 0) {
        if (i + 1 != argc) {
            gchc_usage();
            return 2;
        }
        return gchb_secret_create(argv[i]) == 0 ? 0 : 1;
    }

    if (gchb_conf_load(&conf, gchb_conf_find(file)) != 0) {
        return 1;
    }

    if (gchc_town_arg) {
        gchb_town_set(gchc_town_arg);
    }

    rc = gchc_command(&conf, cmd, argc, argv, i);

    if (rc == 2) {
        gchc_usage();
    }

    gchb_conf_free(&conf);

    return rc;
}
