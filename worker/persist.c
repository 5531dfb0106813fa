/*
 * persist.c -- the stream gch:bookings into PostgreSQL, exactly once.
 *
 * The worker reads with the consumer group "persist" (created at id 0, so
 * nothing written before the group existed is missed).  Each batch is
 * checked entry by entry with yajl (an object with a string "type"), then
 * sent to PostgreSQL as one JSON array and written by a few set-based
 * statements inside ONE transaction:
 *
 *   void   -> insert into voided_booking, delete those bookings;
 *   book   -> ONE statement: insert into demande ... on conflict do
 *             nothing, insert into booking ... on conflict do nothing,
 *             skipping ids present in voided_booking, and the e-mails;
 *   cancel -> booking_cancellation (booking_id or booking_ids, at_ms,
 *             billed), applied to booking: status 'cancelled';
 *   absence-> demande (kind 'justification'), booking_justification,
 *             applied to booking: justified;
 *   and one outbox row (an e-mail) per book, cancel and absence entry,
 *   unique (kind, ref): a replay queues nothing more.
 *
 * Cancellations and justifications are applied whichever of them or the
 * booking arrives first (an entry may wait at a dead consumer while later
 * ones are read).  Batches are serialized across workers by an advisory
 * lock (GCHB_LOCK_PERSIST), so that two workers consuming at once cannot
 * each miss the other's uncommitted booking or cancellation.
 *
 * XACK is sent only after COMMIT.  A crash between the two redelivers the
 * batch, and the "on conflict do nothing" inserts make the replay a no-op:
 * at-least-once delivery plus idempotent writes = exactly-once effect.
 *
 * Entries first go to this consumer's pending list; after a PostgreSQL
 * error they are read again from there (XREADGROUP ... 0).  Entries of
 * dead consumers come back with XAUTOCLAIM once idle claim_idle_ms.  An
 * entry PostgreSQL refuses on its own (a constraint) or that is not JSON
 * stays pending, is logged, and is retried at each XAUTOCLAIM; it shows
 * in lag_ms.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "gchw.h"


struct gchw_persist_s {
    const gchb_conf_t  *conf;
    int                 read_pending;     /* re-read our pending list */
    char                pending_from[64]; /* cursor in it */
    int64_t             next_claim_ms;
    char                claim_from[64];   /* XAUTOCLAIM cursor */
};


static const char  gchw_sql_void[] =
    "with v as ("
    "  insert into voided_booking (id, family_id, idem_key)"
    "  select b, e->>'family_id', coalesce(e->>'idem', '')"
    "  from jsonb_array_elements($1::jsonb) e,"
    "       jsonb_array_elements_text(e->'booking_ids') b"
    "  where e->>'type' = 'void'"
    "  on conflict do nothing returning id)"
    " delete from booking where id in (select b"
    "  from jsonb_array_elements($1::jsonb) e,"
    "       jsonb_array_elements_text(e->'booking_ids') b"
    "  where e->>'type' = 'void')";

static const char  gchw_sql_absence_demande[] =
    "insert into demande (number, request_id, family_id, kind, status,"
    "   idem_key, created_at, items)"
    " select (e->>'number')::bigint, e->>'request_id', e->>'family_id',"
    "   'justification', 'traitee_positivement', '',"
    "   to_timestamp((e->>'at_ms')::bigint / 1000.0),"
    "   jsonb_build_array(jsonb_build_object('booking_id', e->'booking_id',"
    "     'reason', e->'reason', 'document_id', e->'document_id'))"
    " from jsonb_array_elements($1::jsonb) e"
    " where e->>'type' = 'absence'"
    " on conflict do nothing";

/* cancellations and justifications are facts of their own (0003) */
static const char  gchw_sql_cancel[] =
    "insert into booking_cancellation (booking_id, family_id, cancelled_at,"
    "   billed)"
    " select x.bid, e->>'family_id',"
    "   to_timestamp(coalesce((e->>'at_ms')::bigint,"
    "     (extract(epoch from now()) * 1000)::bigint) / 1000.0),"
    "   coalesce((e->>'billed')::boolean, false)"
    " from jsonb_array_elements($1::jsonb) e,"
    "   lateral (select e->>'booking_id' bid"
    "            union select jsonb_array_elements_text("
    "              case jsonb_typeof(e->'booking_ids') when 'array'"
    "              then e->'booking_ids' else '[]' end)) x"
    " where e->>'type' = 'cancel' and x.bid is not null"
    " on conflict do nothing";

static const char  gchw_sql_justify[] =
    "insert into booking_justification (booking_id, family_id,"
    "   demande_number, justified_at)"
    " select e->>'booking_id', e->>'family_id', (e->>'number')::bigint,"
    "   to_timestamp((e->>'at_ms')::bigint / 1000.0)"
    " from jsonb_array_elements($1::jsonb) e"
    " where e->>'type' = 'absence'"
    " on conflict do nothing";

/* the booking ids an entry of the batch names */
#define GCHW_SQL_MENTIONED                                                    \
    "with m as ("                                                             \
    "  select i->>'booking_id' id from jsonb_array_elements($1::jsonb) e,"   \
    "    jsonb_array_elements(case when e->>'type' = 'book'"                  \
    "      and jsonb_typeof(e->'items') = 'array' then e->'items'"           \
    "      else '[]' end) i"                                                  \
    "  union select e->>'booking_id' from jsonb_array_elements($1::jsonb) e" \
    "  union select jsonb_array_elements_text(e->'booking_ids')"              \
    "    from jsonb_array_elements($1::jsonb) e"                              \
    "    where jsonb_typeof(e->'booking_ids') = 'array')"

/*
 * Run in batches with cancel (absence) entries: a booking persisted after
 * its cancellation (justification) is inserted with it (gchw_sql_book).
 * Both go from the facts of the mentioned ids to the bookings, by primary
 * key.  Written "b.id in (select id from m) and b.status = 'confirmed'",
 * the planner, with booking's statistics stale while a rush fills it,
 * scanned every confirmed booking (the partial index) for each batch.
 */
static const char  gchw_sql_apply_cancel[] =
    GCHW_SQL_MENTIONED
    " update booking b set status = 'cancelled',"
    "   cancelled_at = c.cancelled_at, billed = c.billed"
    " from booking_cancellation c"
    " where c.booking_id = any(array(select id from m))"
    "   and b.id = c.booking_id and b.status <> 'cancelled'";

static const char  gchw_sql_apply_justify[] =
    GCHW_SQL_MENTIONED
    " update booking b set justified = true"
    " from booking_justification j"
    " where j.booking_id = any(array(select id from m))"
    "   and b.id = j.booking_id and not b.justified";

/* one e-mail per persisted demande (0005), in the same transaction */

#define GCHW_SQL_STATUS(x)                                                    \
    "case " x " when 'traitee_positivement' then 'traitée positivement'"      \
    " when 'partielle' then 'traitée partiellement'"                          \
    " when 'traitee_negativement' then 'traitée négativement'"                \
    " else " x " end"

#define GCHW_SQL_CELL                                                         \
    "format('%s, %s, le %s (%s)', coalesce(c.first_name, ''),"               \
    " coalesce(a.name, ''), to_char(s.date, 'DD/MM/YYYY'), u.label)"

/*
 * The book entries of a batch, in ONE statement: the demandes, their
 * bookings and their e-mails (one outbox row per demande, one line per
 * cell).  $1 is parsed once (it was once per statement, and the demande,
 * booking and outbox statements, with the two updates that followed them,
 * cost a quarter more CPU per booking), and each item is looked at once:
 * its booking id against voided_booking, booking_cancellation and
 * booking_justification.
 *
 * A booking whose cancellation or justification was persisted first (its
 * entry read while the booking's waited at a dead consumer) is inserted
 * already cancelled or justified: the same row the update of
 * gchw_sql_apply_cancel / _justify made of it, which therefore run only
 * in batches with cancel or absence entries.
 *
 * The lookups are scalar subqueries, one index probe each, on purpose:
 * joined to the items, whose count the planner guesses at 100 per entry,
 * the tables were hash-joined with a sequential scan of each (child and
 * session once took 72 ms a batch of 100 at 7,500 children, growing with
 * the town).  A session's part of the e-mail's line ("Activité, le
 * 07/07/2031 (Matin)", GCHW_SQL_CELL written for a session that exists:
 * its activity and unit are foreign keys) is looked up once per session
 * of the batch: a rush books few sessions, and these lookups were a tenth
 * of the statement.  Data-modifying CTEs all see the same snapshot, and the
 * foreign keys of booking to demande are checked at the end of the
 * statement, when its demandes are there.
 *
 * euros() (0003) is written out: declared immutable around the stable
 * to_char(), it is never inlined, and each call went through the SQL
 * function machinery.  The text is the same to the byte.
 *
 * outbox: "on conflict (kind, ref)", the only key a replay can hit (id is
 * an identity), so that its unique index is the only one probed first.
 */
static const char  gchw_sql_book[] =
    "with e as materialized ("
    "  select value e, ordinality n"
    "  from jsonb_array_elements($1::jsonb) with ordinality"
    "  where value->>'type' = 'book'),"
    " i as materialized ("
    "  select e.n, t.o, e.e, t.i,"
    "   (select true from voided_booking v"
    "    where v.id = t.i->>'booking_id') voided,"
    "   (select c from booking_cancellation c"
    "    where c.booking_id = t.i->>'booking_id') c,"
    "   (select true from booking_justification j"
    "    where j.booking_id = t.i->>'booking_id') justified"
    "  from e, jsonb_array_elements(e.e->'items') with ordinality t(i, o)),"
    " d as ("
    "  insert into demande (number, request_id, family_id, kind, status,"
    "    idem_key, created_at, items)"
    "  select (e->>'number')::bigint, e->>'request_id', e->>'family_id',"
    "    'book', e->>'status', coalesce(e->>'idem', ''),"
    "    to_timestamp((e->>'at_ms')::bigint / 1000.0), e->'items'"
    "  from e"
    "  on conflict do nothing),"
    " b as ("
    "  insert into booking (id, demande_number, family_id, child_id,"
    "    session_id, price_cents, status, created_at, channel,"
    "    cancelled_at, billed, justified, booked_by)"
    "  select i->>'booking_id', (e->>'number')::bigint, e->>'family_id',"
    "    i->>'child_id', i->>'session_id', (i->>'price_cents')::integer,"
    "    case when (c).booking_id is null then 'confirmed'"
    "    else 'cancelled' end,"
    "    to_timestamp((e->>'at_ms')::bigint / 1000.0),"
    "    coalesce(i->>'channel', 'online'),"
    "    (c).cancelled_at, coalesce((c).billed, true),"
    "    justified is not null,"
    "    case when i->>'channel' = 'onsite' then e->>'agent' end"
    "  from i"
    "  where i->>'status' = 'confirmed' and voided is null"
    "  on conflict do nothing),"
    " ss as materialized ("
    "  select sid, (select a.name || ', le ' || to_char(s.date, 'DD/MM/YYYY')"
    "    || ' (' || u.label || ')' from session s"
    "    join activity a on a.id = s.activity_id"
    "    join unit u on u.code = s.unit_code where s.id = sid) cell"
    "  from (select distinct i->>'session_id' sid from i) x),"
    " l as ("
    "  select n, bool_or(voided) voided, string_agg(format('- %s : %s',"
    "    coalesce((select c.first_name from child c"
    "      where c.id = i->>'child_id'), '')"
    "    || ', ' || coalesce(ss.cell, ', le  ()'),"
    "    case when i->>'status' = 'confirmed' then 'confirmée ('"
    "      || replace(to_char((i->>'price_cents')::bigint / 100.0,"
    "           'FM999999990.00'), '.', ',') || ' €)'"
    "    else 'refusée (' || case i->>'reason'"
    "      when 'full' then 'complet'"
    "      when 'conflict' then 'conflit avec une autre activité'"
    "      when 'already_booked' then 'déjà réservée'"
    "      when 'not_enrolled' then 'pas d''inscription validée'"
    "      when 'age' then 'âge hors de la tranche'"
    "      when 'documents_missing' then 'pièces manquantes au dossier'"
    "      when 'unpaid_invoices' then 'factures impayées'"
    "      when 'not_open_yet' then 'réservations pas encore ouvertes'"
    "      when 'closed' then 'délai de réservation dépassé'"
    "      when 'week_incomplete' then 'semaine complète obligatoire'"
    "      when 'unknown_session' then 'séance inconnue'"
    "      else coalesce(i->>'reason', '') end || ')' end),"
    "    E'\\n' order by o) lines"
    "  from i left join ss on ss.sid = i->>'session_id' group by n)"
    " insert into outbox (family_id, kind, ref, subject, body)"
    " select e->>'family_id', 'demande', e->>'request_id',"
    "   format('Demande N° %s : %s', e->>'request_id', "
    GCHW_SQL_STATUS("e->>'status'") "),"
    "   format(E'Bonjour,\\n\\nVotre demande N° %s (réservation de séances)"
    " a été %s.\\n\\n%s\\n\\nLe service enfance\\n', e->>'request_id', "
    GCHW_SQL_STATUS("e->>'status'") ", l.lines)"
    " from e left join l using (n)"
    " where not coalesce(l.voided, false)"
    " order by n"
    " on conflict (kind, ref) do nothing";

static const char  gchw_sql_mail_cancel[] =
    "insert into outbox (family_id, kind, ref, subject, body)"
    " select e->>'family_id', 'cancellation', e->>'booking_id',"
    "   'Annulation de réservation',"
    "   format(E'Bonjour,\\n\\nLa réservation de %s est annulée."
    " %s\\n\\nLe service enfance\\n', " GCHW_SQL_CELL ","
    "     case when coalesce((e->>'billed')::boolean, false)"
    "     then 'Annulée après le délai, elle reste facturée, sauf absence"
    " justifiée par un certificat médical.'"
    "     else 'Elle ne sera pas facturée.' end)"
    " from jsonb_array_elements($1::jsonb) e"
    "   left join child c on c.id = e->>'child_id'"
    "   left join session s on s.id = e->>'session_id'"
    "   left join activity a on a.id = s.activity_id"
    "   left join unit u on u.code = s.unit_code"
    " where e->>'type' = 'cancel' and e->>'booking_id' is not null"
    " on conflict do nothing";

static const char  gchw_sql_mail_absence[] =
    "insert into outbox (family_id, kind, ref, subject, body)"
    " select e->>'family_id', 'justification', e->>'request_id',"
    "   format('Demande N° %s : absence justifiée', e->>'request_id'),"
    "   format(E'Bonjour,\\n\\nVotre demande N° %s (justification d''absence)"
    " a été traitée positivement : la séance %s ne sera pas facturée."
    "\\n\\nLe service enfance\\n', e->>'request_id', "
    "     coalesce((select " GCHW_SQL_CELL " from booking b"
    "       join child c on c.id = b.child_id"
    "       join session s on s.id = b.session_id"
    "       join activity a on a.id = s.activity_id"
    "       join unit u on u.code = s.unit_code"
    "       where b.id = e->>'booking_id'), e->>'booking_id'))"
    " from jsonb_array_elements($1::jsonb) e"
    " where e->>'type' = 'absence'"
    " on conflict do nothing";


/* See gchw.h. */
gchw_persist_t *
gchw_persist_new(const gchb_conf_t *conf)
{
    gchw_persist_t  *p;

    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return NULL;
    }

    p->conf = conf;
    p->read_pending = 1;
    strcpy(p->pending_from, "0");
    strcpy(p->claim_from, "0-0");

    return p;
}


/* See gchw.h; NULL is a no-op. */
void
gchw_persist_free(gchw_persist_t *p)
{
    free(p);
}


/* See gchw.h. */
int
gchw_persist_group(redisContext *rc)
{
    redisReply  *r;
    int          ok;

    r = redisCommand(rc, "XGROUP CREATE " GCHW_STREAM " " GCHW_GROUP
                     " 0 MKSTREAM");
    if (r == NULL) {
        gchb_log("error", "redis: %s", rc->errstr);
        return -1;
    }

    ok = r->type != REDIS_REPLY_ERROR
         || strncmp(r->str, "BUSYGROUP", 9) == 0;

    if (!ok) {
        gchb_log("error", "redis: XGROUP CREATE: %s", r->str);

    } else if (r->type != REDIS_REPLY_ERROR) {
        gchb_log("info", "created consumer group " GCHW_GROUP " on "
                 GCHW_STREAM);
    }

    freeReplyObject(r);

    return ok ? 0 : -1;
}


/* what a batch holds: the statements of gchw_write() it needs */
#define GCHW_T_BOOK     0x01
#define GCHW_T_CANCEL   0x02
#define GCHW_T_ABSENCE  0x04
#define GCHW_T_VOID     0x08
#define GCHW_T_ALL      0xff


/*
 * Is the entry's "d" an object with a string "type"?  0 if not, else its
 * GCHW_T_* bit (GCHW_T_ALL for a type of no statement of ours).
 */
static int
gchw_entry_ok(const char *d, size_t len)
{
    int          ok;
    char         ebuf[128], *copy;
    yajl_val     v, t;
    const char  *path[] = { "type", NULL };

    copy = malloc(len + 1);
    if (copy == NULL) {
        return 0;
    }
    memcpy(copy, d, len);
    copy[len] = '\0';

    v = yajl_tree_parse(copy, ebuf, sizeof(ebuf));
    free(copy);

    if (v == NULL) {
        return 0;
    }

    t = yajl_tree_get(v, path, yajl_t_string);
    ok = 0;

    if (YAJL_IS_OBJECT(v) && t != NULL) {
        ok = strcmp(t->u.string, "book") == 0 ? GCHW_T_BOOK
             : strcmp(t->u.string, "cancel") == 0 ? GCHW_T_CANCEL
             : strcmp(t->u.string, "absence") == 0 ? GCHW_T_ABSENCE
             : strcmp(t->u.string, "void") == 0 ? GCHW_T_VOID
             : GCHW_T_ALL;
    }

    yajl_tree_free(v);

    return ok;
}


/* The "d" field of one XREADGROUP/XAUTOCLAIM entry [id, [f, v, ...]]. */
static const redisReply *
gchw_entry_d(const redisReply *e)
{
    size_t             i;
    const redisReply  *f;

    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2
        || e->element[1]->type != REDIS_REPLY_ARRAY)
    {
        return NULL;                 /* deleted entry (nil fields) */
    }

    f = e->element[1];
    for (i = 0; i + 1 < f->elements; i += 2) {
        if (f->element[i]->type == REDIS_REPLY_STRING
            && strcmp(f->element[i]->str, "d") == 0
            && f->element[i + 1]->type == REDIS_REPLY_STRING)
        {
            return f->element[i + 1];
        }
    }

    return NULL;
}


/*
 * The statements of a batch, in order, each with the entry types it
 * concerns (0: every batch).  They are prepared once per connection:
 * parsed and planned again for every batch, they cost PostgreSQL about as
 * much as writing the rows.
 */
static const struct {
    const char  *sql;
    int          types;
} gchw_stmts[] = {
    { gchw_sql_void, GCHW_T_VOID },
    { gchw_sql_book, GCHW_T_BOOK },
    { gchw_sql_absence_demande, GCHW_T_ABSENCE },
    { gchw_sql_cancel, GCHW_T_CANCEL },
    { gchw_sql_justify, GCHW_T_ABSENCE },
    { gchw_sql_apply_cancel, GCHW_T_CANCEL },
    { gchw_sql_apply_justify, GCHW_T_ABSENCE },
    { gchw_sql_mail_cancel, GCHW_T_CANCEL },
    { gchw_sql_mail_absence, GCHW_T_ABSENCE },
};

#define GCHW_NSTMTS  (sizeof(gchw_stmts) / sizeof(gchw_stmts[0]))


/* The connection (and its server process) the statements are prepared on. */
static PGconn  *gchw_prepared_pg;
static int      gchw_prepared_pid;


static PGresult *
gchw_prepare(PGconn *pg)
{
    char       name[16];
    size_t     i;
    PGresult  *res;

    if (pg == gchw_prepared_pg && PQbackendPID(pg) == gchw_prepared_pid) {
        return NULL;
    }

    gchw_prepared_pg = NULL;

    for (i = 0; i < GCHW_NSTMTS; i++) {
        snprintf(name, sizeof(name), "gchw_persist_%zu", i);
        res = PQprepare(pg, name, gchw_stmts[i].sql, 1, NULL);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            return res;
        }
        PQclear(res);
    }

    gchw_prepared_pg = pg;
    gchw_prepared_pid = PQbackendPID(pg);

    return NULL;
}


/*
 * Writes the JSON array in one transaction, with the statements its entry
 * types (GCHW_T_* bits) need.  0; -1 when PostgreSQL
 * refused the data (SQLSTATE class 22 data exception or 23 integrity
 * constraint: the entry's own fault, the connection is fine); -2 on any
 * other error (connection lost, server shutting down, a missing table or
 * a bug of ours: not the entry's fault, never dead-lettered; the caller
 * backs off).  PostgreSQL's message is copied to err (errlen bytes).
 */
static int
gchw_write(PGconn *pg, const char *json, int types, char *err, size_t errlen)
{
    int           data;
    char          name[16];
    size_t        i;
    PGresult     *res;
    const char   *params[1], *state;

    params[0] = json;

    res = gchw_prepare(pg);
    if (res != NULL) {
        goto failed;
    }

    /*
     * One batch at a time across workers: each statement then sees every
     * batch committed before this one (a booking's cancellation persisted
     * by another worker meanwhile), not just those committed before its
     * own snapshot.  Same round trip as the begin.
     */
    res = PQexec(pg, "begin; select pg_advisory_xact_lock("
                     GCHB_LOCK_PERSIST ")");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        goto failed;
    }
    PQclear(res);

    for (i = 0; i < GCHW_NSTMTS; i++) {
        if (gchw_stmts[i].types && !(gchw_stmts[i].types & types)) {
            continue;
        }

        snprintf(name, sizeof(name), "gchw_persist_%zu", i);
        res = PQexecPrepared(pg, name, 1, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            goto failed;
        }
        PQclear(res);
    }

    res = PQexec(pg, "commit");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        goto failed;
    }
    PQclear(res);

    return 0;

failed:

    state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    data = state && (strncmp(state, "22", 2) == 0
                     || strncmp(state, "23", 2) == 0);

    gchb_log("error", "postgres: %s", PQerrorMessage(pg));
    snprintf(err, errlen, "%s", PQerrorMessage(pg));
    i = strcspn(err, "\n");
    err[i] = '\0';
    PQclear(res);
    PQclear(PQexec(pg, "rollback"));

    return data && PQstatus(pg) == CONNECTION_OK ? -1 : -2;
}


static int
gchw_ack(redisContext *rc, const char **ids, size_t n)
{
    size_t        i;
    const char  **argv;
    redisReply   *r;

    if (n == 0) {
        return 0;
    }

    argv = malloc((n + 3) * sizeof(char *));
    if (argv == NULL) {
        return -1;
    }

    argv[0] = "XACK";
    argv[1] = GCHW_STREAM;
    argv[2] = GCHW_GROUP;
    for (i = 0; i < n; i++) {
        argv[i + 3] = ids[i];
    }

    r = redisCommandArgv(rc, (int) n + 3, argv, NULL);
    free(argv);

    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        gchb_log("error", "redis: XACK: %s", r ? r->str : rc->errstr);
        if (r) {
            freeReplyObject(r);
        }
        return -1;
    }

    freeReplyObject(r);
    return 0;
}


/*
 * The delivery counter of a pending entry (XPENDING's extended form), 0
 * when it is not pending (any more), -1 on a Redis error.
 */
static long long
gchw_deliveries(redisContext *rc, const char *id)
{
    long long    n;
    redisReply  *r, *e;

    r = redisCommand(rc, "XPENDING " GCHW_STREAM " " GCHW_GROUP " %s %s 1",
                     id, id);
    if (r == NULL) {
        gchb_log("error", "redis: %s", rc->errstr);
        return -1;
    }

    n = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        e = r->element[0];
        if (e->type == REDIS_REPLY_ARRAY && e->elements == 4
            && e->element[3]->type == REDIS_REPLY_INTEGER)
        {
            n = e->element[3]->integer;
        }

    } else if (r->type == REDIS_REPLY_ERROR) {
        gchb_log("error", "redis: XPENDING: %s", r->str);
        n = -1;
    }

    freeReplyObject(r);
    return n;
}


/*
 * An entry failed on its own (not a demande, or refused by PostgreSQL).
 * Once delivered max_attempts times, it is copied to the dead-letter
 * stream with its error, then acknowledged: XADD first, XACK second, so a
 * crash in between leaves it pending and it is dead-lettered again (the
 * field "id" names the original entry: a duplicate is recognisable).
 * Returns 1 dead-lettered, 0 left pending, -1 Redis error.
 */
static int
gchw_dead_letter(gchw_persist_t *p, redisContext *rc, const redisReply *e,
    const redisReply *d, const char *error)
{
    int           i;
    char          nbuf[24], tbuf[24];
    long long     n;
    const char   *id, *argv[13];
    size_t        lens[13];
    redisReply   *r;

    id = e->element[0]->str;

    n = gchw_deliveries(rc, id);
    if (n < 0) {
        return -1;
    }

    if (n < p->conf->max_attempts) {
        gchb_log("error", "stream entry %s failed (delivery %lld of %d): "
                 "%s; left pending", id, n, p->conf->max_attempts, error);
        return 0;
    }

    snprintf(nbuf, sizeof(nbuf), "%lld", n);
    snprintf(tbuf, sizeof(tbuf), "%lld", (long long) gchb_now_ms());

    argv[0] = "XADD";       argv[1] = GCHW_DEAD;     argv[2] = "*";
    argv[3] = "id";         argv[4] = id;
    argv[5] = "error";      argv[6] = error;
    argv[7] = "deliveries"; argv[8] = nbuf;
    argv[9] = "at_ms";      argv[10] = tbuf;
    argv[11] = "d";         argv[12] = d ? d->str : "";
    for (i = 0; i < 12; i++) {
        lens[i] = strlen(argv[i]);
    }
    lens[12] = d ? d->len : 0;

    r = redisCommandArgv(rc, 13, argv, lens);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        gchb_log("error", "redis: XADD " GCHW_DEAD ": %s",
                 r ? r->str : rc->errstr);
        if (r) {
            freeReplyObject(r);
        }
        return -1;
    }
    freeReplyObject(r);

    if (gchw_ack(rc, &id, 1) != 0) {
        return -1;
    }

    gchb_log("error", "stream entry %s moved to " GCHW_DEAD " after %lld "
             "deliveries: %s", id, n, error);

    return 1;
}


/*
 * What to do with each entry of list: ok[i] 0 not a demande, 1 to write
 * (ty[i] its type), 2 deleted from the stream.  The ones to write go into
 * json ("[d1,d2...]"), their ids into ids (*nok of them), their types
 * or'ed into *types.  0, or -1 when out of memory.
 */
static int
gchw_entries_sort(const redisReply *list, unsigned char *ok,
    unsigned char *ty, const char **ids, size_t *nok, int *types,
    gchb_buf_t *json)
{
    int                 t;
    size_t              i;
    const redisReply   *d, *e;

    if (gchb_buf_add(json, "[", 1)) {
        return -1;
    }

    for (i = 0; i < list->elements; i++) {
        e = list->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 1) {
            continue;
        }

        if (e->elements != 2 || e->element[1]->type != REDIS_REPLY_ARRAY) {
            ok[i] = 2;               /* deleted: nothing to persist */
            continue;
        }

        d = gchw_entry_d(e);
        t = d ? gchw_entry_ok(d->str, d->len) : 0;
        if (t == 0) {
            continue;
        }

        ok[i] = 1;
        ty[i] = (unsigned char) t;
        *types |= t;
        if ((*nok && gchb_buf_add(json, ",", 1))
            || gchb_buf_add(json, d->str, d->len))
        {
            return -1;
        }
        ids[(*nok)++] = e->element[0]->str;
    }

    return gchb_buf_add(json, "]", 1);
}


/*
 * The batch had a data error: one transaction per entry to write, the
 * refused ones to the dead letters.  The number persisted, or -1 (Redis)
 * or -2 (PostgreSQL's connection).
 */
static int
gchw_entries_one_by_one(gchw_persist_t *p, redisContext *rc, PGconn *pg,
    const redisReply *list, const unsigned char *ok,
    const unsigned char *ty, const char **ids, gchb_buf_t *json)
{
    int                 rc2, done;
    char                err[512];
    size_t              i;
    const redisReply   *d, *e;

    done = 0;

    for (i = 0; i < list->elements; i++) {
        if (ok[i] != 1) {
            continue;
        }

        e = list->element[i];
        d = gchw_entry_d(e);
        json->len = 0;
        if (gchb_buf_add(json, "[", 1)
            || gchb_buf_add(json, d->str, d->len)
            || gchb_buf_add(json, "]", 1))
        {
            return -1;
        }

        rc2 = gchw_write(pg, json->data, ty[i], err, sizeof(err));
        if (rc2 == -2) {
            return -2;
        }

        if (rc2 == -1) {
            if (gchw_dead_letter(p, rc, e, d, err) < 0) {
                return -1;
            }
            continue;
        }

        ids[0] = e->element[0]->str;
        if (gchw_ack(rc, ids, 1) != 0) {
            return -1;
        }
        done++;
    }

    return done;
}


/* The entries not to write: deleted ones acknowledged, the ones that are
 * not demandes to the dead letters.  0 or -1 (Redis). */
static int
gchw_entries_others(gchw_persist_t *p, redisContext *rc,
    const redisReply *list, const unsigned char *ok, const char **ids)
{
    size_t              i;
    const redisReply   *e;

    for (i = 0; i < list->elements; i++) {
        e = list->element[i];
        if (ok[i] == 2) {
            ids[0] = e->element[0]->str;
            if (gchw_ack(rc, ids, 1) != 0) {
                return -1;
            }

        } else if (ok[i] == 0 && e->type == REDIS_REPLY_ARRAY
                   && e->elements >= 1)
        {
            if (gchw_dead_letter(p, rc, e, gchw_entry_d(e),
                                 "not a demande: field d must be a JSON "
                                 "object with a string \"type\"") < 0)
            {
                return -1;
            }
        }
    }

    return 0;
}


/*
 * Persists the entries of an array reply (XREADGROUP's or XAUTOCLAIM's
 * entry list): the demandes in one transaction (one by one when it has a
 * data error), acknowledged after COMMIT; then the others.  Returns
 * entries persisted, -1 Redis error, -2 PostgreSQL connection error.
 */
static int
gchw_persist_entries(gchw_persist_t *p, redisContext *rc, PGconn *pg,
    const redisReply *list)
{
    int                 rc2, done, types;
    char                err[512];
    size_t              n, nok;
    gchb_buf_t          json = { 0 };
    const char        **ids;
    unsigned char      *ok, *ty;

    n = list->elements;
    if (n == 0) {
        return 0;
    }

    ids = calloc(n, sizeof(char *));
    ok = calloc(n, 1);
    ty = calloc(n, 1);
    types = 0;
    nok = 0;

    if (ids == NULL || ok == NULL || ty == NULL
        || gchw_entries_sort(list, ok, ty, ids, &nok, &types, &json) != 0)
    {
        rc2 = -1;
        goto done;
    }

    done = 0;

    if (nok) {
        rc2 = gchw_write(pg, json.data, types, err, sizeof(err));

        if (rc2 == -2) {
            goto done;
        }

        if (rc2 == 0) {
            done = (int) nok;
            if (gchw_ack(rc, ids, nok) != 0) {
                rc2 = -1;
                goto done;
            }

        } else {
            rc2 = gchw_entries_one_by_one(p, rc, pg, list, ok, ty, ids,
                                          &json);
            if (rc2 < 0) {
                goto done;
            }
            done = rc2;
        }
    }

    rc2 = gchw_entries_others(p, rc, list, ok, ids) == 0 ? done : -1;

done:

    gchb_buf_free(&json);
    free(ids);
    free(ok);
    free(ty);

    return rc2;
}


/* See gchw.h. */
void
gchw_persist_reread(gchw_persist_t *p)
{
    p->read_pending = 1;
    strcpy(p->pending_from, "0");
}


/* See gchw.h. */
int
gchw_persist_round(gchw_persist_t *p, redisContext *rc, PGconn *pg)
{
    int                n;
    int64_t            now;
    redisReply        *r;
    const redisReply  *list;
    const gchb_conf_t *conf;

    conf = p->conf;
    now = gchb_now_ms();

    if (p->read_pending) {
        r = redisCommand(rc, "XREADGROUP GROUP " GCHW_GROUP " %s COUNT %d"
                         " STREAMS " GCHW_STREAM " %s", conf->consumer,
                         conf->batch_size, p->pending_from);

    } else if (now >= p->next_claim_ms) {
        p->next_claim_ms = now + 1000;
        r = redisCommand(rc, "XAUTOCLAIM " GCHW_STREAM " " GCHW_GROUP
                         " %s %d %s COUNT %d", conf->consumer,
                         conf->claim_idle_ms, p->claim_from,
                         conf->batch_size);

    } else {
        r = redisCommand(rc, "XREADGROUP GROUP " GCHW_GROUP " %s COUNT %d"
                         " BLOCK %d STREAMS " GCHW_STREAM " >",
                         conf->consumer, conf->batch_size,
                         conf->batch_wait_ms);
    }

    if (r == NULL) {
        gchb_log("error", "redis: %s", rc->errstr);
        return -1;
    }

    if (r->type == REDIS_REPLY_ERROR) {
        if (strncmp(r->str, "NOGROUP", 7) == 0) {
            freeReplyObject(r);
            return gchw_persist_group(rc) == 0 ? 0 : -1;
        }
        gchb_log("error", "redis: %s", r->str);
        freeReplyObject(r);
        return -1;
    }

    list = NULL;

    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2
        && r->element[0]->type == REDIS_REPLY_STRING
        && r->element[1]->type == REDIS_REPLY_ARRAY)
    {
        /* XAUTOCLAIM: [next cursor, entries, (deleted ids)] */
        snprintf(p->claim_from, sizeof(p->claim_from), "%s",
                 r->element[0]->str);
        list = r->element[1];
        if (list->elements) {
            gchb_log("info", "claimed %zu idle entries of other consumers",
                     list->elements);
        }

    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 1
               && r->element[0]->type == REDIS_REPLY_ARRAY
               && r->element[0]->elements == 2)
    {
        /* XREADGROUP: [[stream, entries]] */
        list = r->element[0]->element[1];
    }

    if (list == NULL || list->type != REDIS_REPLY_ARRAY) {
        /* nil: BLOCK timed out */
        if (p->read_pending) {
            p->read_pending = 0;
        }
        freeReplyObject(r);
        return 0;
    }

    if (p->read_pending) {
        if (list->elements == 0) {
            p->read_pending = 0;
            strcpy(p->pending_from, "0");

        } else {
            snprintf(p->pending_from, sizeof(p->pending_from), "%s",
                     list->element[list->elements - 1]->element[0]->str);
        }
    }

    n = gchw_persist_entries(p, rc, pg, list);

    if (n == -2) {
        /* everything stays pending: read it again after reconnecting */
        gchw_persist_reread(p);
    }

    freeReplyObject(r);

    return n;
}


static int64_t
gchw_id_ms(const char *id)
{
    return strtoll(id, NULL, 10);
}


/* See gchw.h. */
int64_t
gchw_persist_lag(redisContext *rc)
{
    size_t        i, j;
    int64_t       oldest, now;
    redisReply   *r, *g, *x;
    const char   *last;

    oldest = 0;
    last = NULL;

    r = redisCommand(rc, "XINFO GROUPS " GCHW_STREAM);
    if (r == NULL) {
        return -1;
    }

    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return 0;                          /* no stream yet */
    }

    for (i = 0; i < r->elements; i++) {
        g = r->element[i];
        if (g->type != REDIS_REPLY_ARRAY) {
            continue;
        }

        for (j = 0; j + 1 < g->elements; j += 2) {
            if (strcmp(g->element[j]->str, "name") == 0
                && strcmp(g->element[j + 1]->str, GCHW_GROUP) != 0)
            {
                break;
            }
            if (strcmp(g->element[j]->str, "last-delivered-id") == 0) {
                last = g->element[j + 1]->str;
            }
        }
    }

    /* oldest pending */
    x = redisCommand(rc, "XPENDING " GCHW_STREAM " " GCHW_GROUP);
    if (x && x->type == REDIS_REPLY_ARRAY && x->elements >= 2
        && x->element[1]->type == REDIS_REPLY_STRING)
    {
        oldest = gchw_id_ms(x->element[1]->str);
    }
    if (x) {
        freeReplyObject(x);
    }

    /* oldest undelivered */
    if (last && oldest == 0) {
        x = redisCommand(rc, "XRANGE " GCHW_STREAM " (%s + COUNT 1", last);
        if (x && x->type == REDIS_REPLY_ARRAY && x->elements == 1) {
            oldest = gchw_id_ms(x->element[0]->element[0]->str);
        }
        if (x) {
            freeReplyObject(x);
        }
    }

    freeReplyObject(r);

    if (oldest == 0) {
        return 0;
    }

    now = gchb_now_ms();

    return now > oldest ? now - oldest : 0;
}


/* See gchw.h. */
long long
gchw_persist_dead(redisContext *rc)
{
    long long    n;
    redisReply  *r;

    r = redisCommand(rc, "XLEN " GCHW_DEAD);
    if (r == NULL) {
        return -1;
    }

    n = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);

    return n;
}


/* -1, 0, 1 as a stream id "ms-seq" compares with b. */
static int
gchw_id_cmp(const char *a, const char *b)
{
    unsigned long long  am, as, bm, bs;

    am = as = bm = bs = 0;
    sscanf(a, "%llu-%llu", &am, &as);
    sscanf(b, "%llu-%llu", &bm, &bs);

    if (am != bm) {
        return am < bm ? -1 : 1;
    }

    return as < bs ? -1 : (as > bs ? 1 : 0);
}


/* See gchw.h. */
long long
gchw_persist_trim(redisContext *rc, int keep_ms)
{
    size_t        i, j;
    char          minid[64], keep[32];
    long long     n;
    redisReply   *r, *g, *x;

    if (keep_ms == 0) {
        return 0;
    }

    snprintf(keep, sizeof(keep), "%lld-0",
             (long long) (gchb_now_ms() - keep_ms));
    minid[0] = '\0';

    r = redisCommand(rc, "XINFO GROUPS " GCHW_STREAM);
    if (r == NULL) {
        gchb_log("error", "redis: %s", rc->errstr);
        return -1;
    }

    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return 0;                          /* no stream yet */
    }

    for (i = 0; i < r->elements; i++) {
        g = r->element[i];
        if (g->type != REDIS_REPLY_ARRAY) {
            continue;
        }

        for (j = 0; j + 1 < g->elements; j += 2) {
            if (strcmp(g->element[j]->str, "name") == 0
                && strcmp(g->element[j + 1]->str, GCHW_GROUP) != 0)
            {
                break;
            }
            if (strcmp(g->element[j]->str, "last-delivered-id") == 0) {
                snprintf(minid, sizeof(minid), "%s", g->element[j + 1]->str);
            }
        }
    }

    freeReplyObject(r);

    if (minid[0] == '\0') {
        return 0;                          /* no group: trim nothing */
    }

    /* the oldest pending entry (older than the last delivered one) */
    x = redisCommand(rc, "XPENDING " GCHW_STREAM " " GCHW_GROUP);
    if (x == NULL) {
        gchb_log("error", "redis: %s", rc->errstr);
        return -1;
    }
    if (x->type == REDIS_REPLY_ARRAY && x->elements >= 2
        && x->element[1]->type == REDIS_REPLY_STRING
        && gchw_id_cmp(x->element[1]->str, minid) < 0)
    {
        snprintf(minid, sizeof(minid), "%s", x->element[1]->str);
    }
    freeReplyObject(x);

    if (gchw_id_cmp(keep, minid) < 0) {
        snprintf(minid, sizeof(minid), "%s", keep);
    }

    r = redisCommand(rc, "XTRIM " GCHW_STREAM " MINID %s", minid);
    if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
        gchb_log("error", "redis: XTRIM: %s",
                 r ? (r->str ? r->str : "bad reply") : rc->errstr);
        if (r) {
            freeReplyObject(r);
        }
        return -1;
    }

    n = r->integer;
    freeReplyObject(r);

    return n;
}
