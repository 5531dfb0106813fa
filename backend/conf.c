/*
 * conf.c -- settings of guichet-worker and guichetctl.
 *
 * Settings are one table (key, type, offset, default), pgbouncer style:
 * the defaults, the parser and `guichetctl config` all walk it, and
 * tools/check-worker-settings.sh checks that every key is documented in
 * docs/worker.md and present in worker/guichet-worker.conf.example.
 *
 * File syntax: one "key = value" per line; blank lines and lines starting
 * with '#' or ';' are ignored; the value runs to the end of the line with
 * surrounding blanks removed, and may be quoted with "" to keep them.
 */

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gchb.h"


/* The settings file gchb_conf_load read last ("" for none): named by the
 * connection errors (gchb_conf_source). */
static char  gchb_conf_used[4096];

char         gchb_town[GCH_TOWN_ID_MAX + 1] = GCH_TOWN_DEFAULT;
gchb_keys_t  gchb_keys;


/* See gchb.h. */
void
gchb_town_set(const char *town)
{
    char          id[GCH_TOWN_ID_MAX + 1];
    gchb_keys_t  *k = &gchb_keys;

    /* town may be gchb_town itself */
    snprintf(id, sizeof(id), "%s", town);
    memcpy(gchb_town, id, sizeof(id));

    snprintf(k->catalogue, GCHB_KEY_MAX, GCH_KEY_CATALOGUE, id);
    snprintf(k->catalogue_version, GCHB_KEY_MAX, GCH_KEY_CATALOGUE_VERSION,
             id);
    snprintf(k->seq_demande, GCHB_KEY_MAX, GCH_KEY_SEQ_DEMANDE, id);
    snprintf(k->stream, GCHB_KEY_MAX, GCH_KEY_STREAM, id);
    snprintf(k->stream_dead, GCHB_KEY_MAX, GCH_KEY_STREAM_DEAD, id);
    snprintf(k->staff, GCHB_KEY_MAX, GCH_KEY_STAFF, id);
    snprintf(k->logins, GCHB_KEY_MAX, GCH_KEY_LOGINS, id);
    snprintf(k->absence_reasons, GCHB_KEY_MAX, GCH_KEY_ABSENCE_REASONS, id);
    snprintf(k->f, GCHB_KEY_MAX, GCH_KEY_T(GCH_N_F), id);
    k->f_len = strlen(k->f);
}


typedef enum {
    GCHB_STR,
    GCHB_INT,                    /* >= 0 */
    GCHB_POSINT                  /* >= 1 */
} gchb_type_t;


typedef struct {
    const char   *key;
    gchb_type_t   type;
    size_t        offset;
    const char   *dflt;          /* NULL: empty string / computed */
} gchb_setting_t;


#define GCHB_OFF(f)  offsetof(gchb_conf_t, f)

static const gchb_setting_t  gchb_settings[] = {
    { "town",                GCHB_STR,    GCHB_OFF(town), GCH_TOWN_DEFAULT },
    { "redis",               GCHB_STR,    GCHB_OFF(redis),
      "127.0.0.1:6379" },
    { "redis_password",      GCHB_STR,    GCHB_OFF(redis_password), "" },
    { "redis_cluster",       GCHB_STR,    GCHB_OFF(redis_cluster), "" },
    { "postgres",            GCHB_STR,    GCHB_OFF(postgres), "" },
    { "secret_file",         GCHB_STR,    GCHB_OFF(secret_file),
      "var/secret.key" },
    { "migrations_dir",      GCHB_STR,    GCHB_OFF(migrations_dir),
      "sql/migrations" },
    { "consumer",            GCHB_STR,    GCHB_OFF(consumer), NULL },
    { "batch_size",          GCHB_POSINT, GCHB_OFF(batch_size), "2000" },
    { "batch_wait_ms",       GCHB_POSINT, GCHB_OFF(batch_wait_ms), "50" },
    { "batch_gather_ms",     GCHB_INT,    GCHB_OFF(batch_gather_ms), "100" },
    { "reap_after_ms",       GCHB_POSINT, GCHB_OFF(reap_after_ms), "30000" },
    { "recount_after_ms",    GCHB_POSINT, GCHB_OFF(recount_after_ms),
      "10000" },
    { "draw_settle_ms",      GCHB_INT,    GCHB_OFF(draw_settle_ms), "500" },
    { "heartbeat_ms",        GCHB_POSINT, GCHB_OFF(heartbeat_ms), "1000" },
    { "claim_idle_ms",       GCHB_POSINT, GCHB_OFF(claim_idle_ms), "60000" },
    { "publish_interval_ms", GCHB_POSINT, GCHB_OFF(publish_interval_ms),
      "250" },
    { "max_attempts",        GCHB_POSINT, GCHB_OFF(max_attempts), "5" },
    { "stream_keep_ms",      GCHB_INT,    GCHB_OFF(stream_keep_ms),
      "86400000" },
    { "invoice_dir",         GCHB_STR,    GCHB_OFF(invoice_dir),
      "var/invoices" },
    { "invoice_day",         GCHB_INT,    GCHB_OFF(invoice_day), "0" },
    { "smtp",                GCHB_STR,    GCHB_OFF(smtp), "" },
    { "smtp_from",           GCHB_STR,    GCHB_OFF(smtp_from),
      "guichet@localhost" },
    { "smtp_max_attempts",   GCHB_POSINT, GCHB_OFF(smtp_max_attempts), "10" },
    { "smtp_retry_ms",       GCHB_POSINT, GCHB_OFF(smtp_retry_ms), "60000" },
    { "office_listen",       GCHB_STR,    GCHB_OFF(office_listen),
      "unix:var/office.sock" },
    { "office_upload_dir",   GCHB_STR,    GCHB_OFF(office_upload_dir),
      "var/uploads" },
    { "office_upload_max",   GCHB_POSINT, GCHB_OFF(office_upload_max),
      "5242880" },
    { "office_documents_max", GCHB_POSINT,
      GCHB_OFF(office_documents_max), "100" },
    { "office_documents_bytes_max", GCHB_POSINT,
      GCHB_OFF(office_documents_bytes_max), "104857600" },
    { "office_socket_mode",  GCHB_STR,    GCHB_OFF(office_socket_mode),
      "0660" },
    { "office_socket_group", GCHB_STR,    GCHB_OFF(office_socket_group), "" },
    { "office_hash_threads", GCHB_POSINT, GCHB_OFF(office_hash_threads), "2" },
    { "token_ttl_s",         GCHB_POSINT, GCHB_OFF(token_ttl_s), "43200" },
    { "site_url",            GCHB_STR,    GCHB_OFF(site_url),
      "http://127.0.0.1:8080" },
    { "town_site_url",       GCHB_STR,    GCHB_OFF(town_site_url), "" },
    { "payfip_url",          GCHB_STR,    GCHB_OFF(payfip_url),
      "http://127.0.0.1:8090" },
    { "payfip_client",       GCHB_STR,    GCHB_OFF(payfip_client), "000000" },
    { "sepa_creditor_name",  GCHB_STR,    GCHB_OFF(sepa_creditor_name), "" },
    { "sepa_creditor_iban",  GCHB_STR,    GCHB_OFF(sepa_creditor_iban), "" },
    { "sepa_creditor_bic",   GCHB_STR,    GCHB_OFF(sepa_creditor_bic), "" },
    { "sepa_creditor_id",    GCHB_STR,    GCHB_OFF(sepa_creditor_id), "" },
    { NULL, 0, 0, NULL }
};


static int
gchb_conf_set(gchb_conf_t *conf, const gchb_setting_t *s, const char *value)
{
    long    n;
    char   *end, **sp, *copy;
    int    *ip;

    switch (s->type) {

    case GCHB_STR:
        copy = strdup(value);
        if (copy == NULL) {
            return -1;
        }
        sp = (char **) ((char *) conf + s->offset);
        free(*sp);
        *sp = copy;
        return 0;

    case GCHB_INT:
    case GCHB_POSINT:
        errno = 0;
        n = strtol(value, &end, 10);
        if (errno || end == value || *end != '\0' || n > INT_MAX
            || n < (s->type == GCHB_POSINT ? 1 : 0))
        {
            return -1;
        }
        ip = (int *) ((char *) conf + s->offset);
        *ip = (int) n;
        return 0;
    }

    return -1;
}


static const gchb_setting_t *
gchb_setting_find(const char *key)
{
    const gchb_setting_t  *s;

    for (s = gchb_settings; s->key; s++) {
        if (strcmp(s->key, key) == 0) {
            return s;
        }
    }

    return NULL;
}


static int
gchb_conf_defaults(gchb_conf_t *conf)
{
    char                   host[256], buf[300];
    const gchb_setting_t  *s;

    memset(conf, 0, sizeof(*conf));

    for (s = gchb_settings; s->key; s++) {
        if (s->dflt) {
            if (gchb_conf_set(conf, s, s->dflt) != 0) {
                return -1;
            }
        }
    }

    if (gethostname(host, sizeof(host)) != 0) {
        strcpy(host, "localhost");
    }
    host[sizeof(host) - 1] = '\0';
    snprintf(buf, sizeof(buf), "%s-%ld", host, (long) getpid());

    return gchb_conf_set(conf, gchb_setting_find("consumer"), buf);
}


static char *
gchb_trim(char *s)
{
    char  *e;

    while (isspace((unsigned char) *s)) {
        s++;
    }

    e = s + strlen(s);
    while (e > s && isspace((unsigned char) e[-1])) {
        *--e = '\0';
    }

    return s;
}


/*
 * See gchb.h.  Later lines win over earlier ones; a key given twice is
 * allowed (the last one counts), an unknown key is an error.
 */
int
gchb_conf_load(gchb_conf_t *conf, const char *file)
{
    int                    lineno, rc;
    char                   line[4096], *p, *eq, *key, *value;
    FILE                  *f;
    size_t                 n;
    const gchb_setting_t  *s;

    if (gchb_conf_defaults(conf) != 0) {
        gchb_log("error", "out of memory");
        gchb_conf_free(conf);
        return -1;
    }

    gchb_conf_used[0] = '\0';

    if (file == NULL) {
        gchb_town_set(conf->town);
        return 0;
    }

    f = fopen(file, "r");
    if (f == NULL) {
        gchb_log("error", "cannot open settings \"%s\": %s", file,
                 strerror(errno));
        gchb_conf_free(conf);
        return -1;
    }

    rc = 0;
    lineno = 0;

    while (fgets(line, sizeof(line), f)) {
        lineno++;
        p = gchb_trim(line);

        if (*p == '\0' || *p == '#' || *p == ';') {
            continue;
        }

        eq = strchr(p, '=');
        if (eq == NULL) {
            gchb_log("error", "%s:%d: expected \"key = value\"", file,
                     lineno);
            rc = -1;
            break;
        }

        *eq = '\0';
        key = gchb_trim(p);
        value = gchb_trim(eq + 1);

        n = strlen(value);
        if (n >= 2 && value[0] == '"' && value[n - 1] == '"') {
            value[n - 1] = '\0';
            value++;
        }

        s = gchb_setting_find(key);
        if (s == NULL) {
            gchb_log("error", "%s:%d: unknown setting \"%s\"", file, lineno,
                     key);
            rc = -1;
            break;
        }

        if (gchb_conf_set(conf, s, value) != 0) {
            gchb_log("error", "%s:%d: invalid value \"%s\" for \"%s\"",
                     file, lineno, value, key);
            rc = -1;
            break;
        }
    }

    fclose(f);

    if (rc == 0 && conf->invoice_day > 28) {
        gchb_log("error", "%s: invoice_day must be 0 (off) to 28", file);
        rc = -1;
    }

    if (rc == 0 && !gch_town_id_ok(conf->town, strlen(conf->town))) {
        gchb_log("error", "%s: town \"%s\" is not a town id (1 to %d "
                 "characters among a-z, 0-9 and \"-\")", file, conf->town,
                 GCH_TOWN_ID_MAX);
        rc = -1;
    }

    if (rc != 0) {
        gchb_conf_free(conf);

    } else {
        snprintf(gchb_conf_used, sizeof(gchb_conf_used), "%s", file);
        gchb_town_set(conf->town);
    }

    return rc;
}


/*
 * See gchb.h.  The checkout's settings are <checkout>/var/worker.conf,
 * written by scripts/run.sh, and the programs are <checkout>/build/NAME:
 * the file is found from the program's own path, whatever the current
 * directory.  The installed programs (/usr/sbin/NAME, package guichet)
 * take /etc/guichet/guichet.conf instead.
 */
const char *
gchb_conf_find(const char *given)
{
    char         exe[4096], *slash;
    ssize_t      n;
    const char  *env;
    static char  found[4096 + 32];

    if (given != NULL) {
        return given;
    }

    env = getenv("GUICHET_CONF");
    if (env != NULL && *env != '\0') {
        return env;
    }

    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0 || n >= (ssize_t) sizeof(exe) - 1) {
        return NULL;
    }
    exe[n] = '\0';

    /* <checkout>/build/guichetctl -> <checkout> */
    slash = strrchr(exe, '/');
    if (slash == NULL) {
        return NULL;
    }
    *slash = '\0';
    slash = strrchr(exe, '/');
    if (slash == NULL) {
        return NULL;
    }
    *slash = '\0';

    if (strcmp(exe, "/usr") == 0) {
        return access(GCHB_CONF_INSTALLED, R_OK) == 0
               ? GCHB_CONF_INSTALLED : NULL;
    }

    snprintf(found, sizeof(found), "%s/var/worker.conf", exe);

    return access(found, R_OK) == 0 ? found : NULL;
}


/* See gchb.h. */
const char *
gchb_conf_source(void)
{
    return gchb_conf_used[0] ? gchb_conf_used : NULL;
}


/* See gchb.h. */
const char *
gchb_conf_note(void)
{
    static char  note[sizeof(gchb_conf_used) + 32];

    if (gchb_conf_used[0] == '\0') {
        return "no settings file: the built-in defaults, give -c FILE or "
               "set GUICHET_CONF";
    }

    snprintf(note, sizeof(note), "settings from %s", gchb_conf_used);
    return note;
}


/* See gchb.h; conf may be all zeroes. */
void
gchb_conf_free(gchb_conf_t *conf)
{
    const gchb_setting_t  *s;
    char                 **sp;

    for (s = gchb_settings; s->key; s++) {
        if (s->type == GCHB_STR) {
            sp = (char **) ((char *) conf + s->offset);
            free(*sp);
            *sp = NULL;
        }
    }
}


/* See gchb.h; the password is not printed. */
void
gchb_conf_dump(const gchb_conf_t *conf)
{
    const gchb_setting_t  *s;
    const char            *v;

    for (s = gchb_settings; s->key; s++) {
        if (s->type == GCHB_STR) {
            v = *(char *const *) ((const char *) conf + s->offset);
            if (strcmp(s->key, "redis_password") == 0 && v && *v) {
                v = "********";
            }
            printf("%s = %s\n", s->key, v ? v : "");

        } else {
            printf("%s = %d\n", s->key,
                   *(const int *) ((const char *) conf + s->offset));
        }
    }
}
