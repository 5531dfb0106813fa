/*
 * batch.c -- one batch of the stream {T}:stream into PostgreSQL
 * (persist.c reads, checks and acknowledges the entries), in ONE
 * transaction under the advisory lock GCHB_LOCK_PERSIST: a batch of
 * compact demandes only with COPY (copy.c, "the rush's batches"), any
 * other as one JSON array by the set-based statements, prepared once per
 * connection, each only in batches holding the entry types it concerns.
 * persist.c's comment tells what each type of entry becomes and why a
 * replay changes nothing.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gchw.h"
#include "gchw_batch.h"


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
    "   and (exists (select 1 from family f where f.id = e->>'family_id')"
    "        or demande_family_missing(e->>'family_id'))"
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
    /* a swap's released booking: its book entry's item (demande.c) */
    " union all"
    " select i->'released'->>'booking_id', e->>'family_id',"
    "   to_timestamp((e->>'at_ms')::bigint / 1000.0),"
    "   coalesce((i->'released'->>'billed')::boolean, false)"
    " from jsonb_array_elements($1::jsonb) e,"
    "   jsonb_array_elements(case when e->>'type' = 'book'"
    "     and jsonb_typeof(e->'items') = 'array' then e->'items'"
    "     else '[]' end) i"
    " where jsonb_typeof(i->'released') = 'object'"
    "   and not exists (select 1 from voided_booking v"
    "                   where v.id = i->>'booking_id')"
    " on conflict do nothing";

/*
 * A fenced swap (its step two ran after the reaper released the attempt)
 * gave its old booking back: the void entry's "restore".  Its
 * cancellation, if its book entry was persisted first, is undone.
 */
static const char  gchw_sql_restore[] =
    "with r as ("
    "  select b from jsonb_array_elements($1::jsonb) e,"
    "    jsonb_array_elements_text(case when e->>'type' = 'void'"
    "      and jsonb_typeof(e->'restore') = 'array' then e->'restore'"
    "      else '[]' end) b),"
    " d as (delete from booking_cancellation"
    "  where booking_id in (select b from r))"
    " update booking set status = 'confirmed', cancelled_at = null,"
    "   billed = true"
    " where id in (select b from r) and status = 'cancelled'";

/*
 * A justification is recorded en_examen (0101): the town accepts or
 * refuses it in guichet-office (office/absence.c), and only an accepted
 * one marks the booking justified (gchw_sql_apply_justify and the book
 * entries' insert below).  Keyed by the booking: a replayed entry, or a
 * second justification of the same booking, changes nothing.
 */
static const char  gchw_sql_justify[] =
    "insert into booking_justification (booking_id, family_id,"
    "   demande_number, justified_at, reason, document_id)"
    " select e->>'booking_id', e->>'family_id', (e->>'number')::bigint,"
    "   to_timestamp((e->>'at_ms')::bigint / 1000.0),"
    "   coalesce(e->>'reason', 'medical'), e->>'document_id'"
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
    "    where jsonb_typeof(e->'booking_ids') = 'array'"                  \
    "  union select i->'released'->>'booking_id'"                            \
    "  from jsonb_array_elements($1::jsonb) e,"                               \
    "    jsonb_array_elements(case when e->>'type' = 'book'"                  \
    "      and jsonb_typeof(e->'items') = 'array' then e->'items'"           \
    "      else '[]' end) i"                                                  \
    "  where jsonb_typeof(i->'released') = 'object')"

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
    "   and b.id = j.booking_id and not b.justified"
    "   and j.status = 'acceptee'";

/* one e-mail per persisted demande (0005), queued in the same transaction */

#define GCHW_SQL_CELL                                                         \
    "format('%s, %s, le %s (%s)', coalesce(c.first_name, ''),"               \
    " coalesce(a.name, ''), to_char(s.date, 'DD/MM/YYYY'), u.label)"

/*
 * The book entries of a batch, in ONE statement: the demandes, their
 * bookings and their e-mails (one demande_mail_batch row, 0131: the
 * numbers of the demandes that get one, which the mailer turns into
 * outbox rows at its own pace; demande_mail() of 0016 writes the text
 * from the demande row when it sends it).
 * $1 is parsed once (it was once per statement, and the demande, booking
 * and outbox statements, with the two updates that followed them, cost a
 * quarter more CPU per booking), and each item is looked at once: its
 * booking id against voided_booking, booking_cancellation and
 * booking_justification.
 *
 * A booking whose cancellation or justification was persisted first (its
 * entry read while the booking's waited at a dead consumer) is inserted
 * already cancelled or justified: the same row the update of
 * gchw_sql_apply_cancel / _justify made of it, which therefore run only
 * in batches with cancel or absence entries.  A demande with a voided
 * booking queues no e-mail ("not in": one hashed subplan, where "not
 * exists" rescanned i for each entry).
 *
 * The lookups are scalar subqueries, one index probe each, on purpose:
 * joined to the items, whose count the planner guesses at 100 per entry,
 * the tables were hash-joined with a sequential scan of each (child and
 * session once took 72 ms a batch of 100 at 7,500 children, growing with
 * the town).  Data-modifying CTEs all see the same snapshot.  No foreign
 * key checks a booking's demande, child or session (0015): the demande is
 * written here, the engine booked the child on the session.  The
 * demande's family is checked once per distinct family of the batch
 * (0017: nof, a one-time filter of the e-mails' insert, so always run),
 * without the foreign key's row lock: families are deleted only under the
 * advisory lock this batch holds.  A missing one raises 23503, as the
 * foreign key did.
 *
 * A replay queues no e-mail: only the demandes this statement inserted
 * (d's "returning") are queued, where the outbox row's "on conflict
 * (kind, ref) do nothing" did it before; the mailer's insert into outbox
 * keeps that clause.
 */
#define GCHW_SQL_BOOK(C)                                                      \
    "with e as materialized ("                                                \
    "  select value e, ordinality n"                                          \
    "  from jsonb_array_elements($1::jsonb) with ordinality"                  \
    "  where value->>'type' = 'book'),"                                       \
    " i as materialized ("                                                    \
    "  select e.n, t.o, e.e, t.i,"                                            \
    "   (select true from voided_booking v"                                   \
    "    where v.id = t.i->>'booking_id') voided,"                            \
    "   (select c from booking_cancellation c"                                \
    "    where c.booking_id = t.i->>'booking_id') c,"                         \
    "   (select true from booking_justification j"                            \
    "    where j.booking_id = t.i->>'booking_id'"                             \
    "    and j.status = 'acceptee') justified"                                \
    "  from e, jsonb_array_elements(e.e->'items') with ordinality t(i, o)),"  \
    " f as (select distinct e->>'family_id' f from e),"                       \
    " nof as (select demande_family_missing(f) from f"                        \
    "  where not exists (select 1 from family where id = f.f)),"              \
    " d as ("                                                                 \
    "  insert into demande (number, request_id, family_id, kind, status,"     \
    "    idem_key, created_at, items)"                                        \
    "  select (e->>'number')::bigint, e->>'request_id', e->>'family_id',"     \
    "    'book', e->>'status', coalesce(e->>'idem', ''),"                     \
    "    to_timestamp((e->>'at_ms')::bigint / 1000.0), e->'items'"            \
    "  from e"                                                                \
    C " returning number),"                                                   \
    " b as ("                                                                 \
    "  insert into booking (id, demande_number, family_id, child_id,"         \
    "    session_id, price_cents, status, created_at, channel,"               \
    "    cancelled_at, billed, justified, booked_by)"                         \
    "  select i->>'booking_id', (e->>'number')::bigint, e->>'family_id',"     \
    "    i->>'child_id', i->>'session_id', (i->>'price_cents')::integer,"     \
    "    case when (c).booking_id is null then 'confirmed'"                   \
    "    else 'cancelled' end,"                                               \
    "    to_timestamp((e->>'at_ms')::bigint / 1000.0),"                       \
    "    coalesce(i->>'channel', 'online'),"                                  \
    "    (c).cancelled_at, coalesce((c).billed, true),"                       \
    "    justified is not null,"                                              \
    "    case when i->>'channel' = 'onsite' then e->>'agent' end"             \
    "  from i"                                                                \
    "  where i->>'status' = 'confirmed' and voided is null"                   \
    C ")"                                                                     \
    " insert into demande_mail_batch (numbers)"                               \
    " select array_agg(m.num order by m.n) from ("                            \
    "  select distinct on (1) (e->>'number')::bigint num, n"                  \
    "  from e"                                                                \
    "  where n not in (select n from i where voided)"                         \
    "   and (e->>'number')::bigint in (select number from d)"                 \
    "   and not exists (select 1 from nof)"                                   \
    /* a promotion that did not book mails nothing, but for the end of */    \
    /* its list at the booking deadline (issue 23, 0035) */                  \
    "   and not (coalesce(e->>'idem', '') like '" GCH_WAIT_KEY_PREFIX "%'"    \
    "     and e->>'status' <> 'traitee_positivement'"                        \
    "     and coalesce(e->'items'->0->>'reason', '') <> 'closed')"           \
    "  order by 1, n) m"                                                      \
    " having count(*) > 0"

static const char  gchw_sql_book[] =
    GCHW_SQL_BOOK("  on conflict do nothing");

/* the same for a batch none of whose rows exists yet (see gchw_stmts) */
static const char  gchw_sql_book_new[] = GCHW_SQL_BOOK("");

static const char  gchw_sql_mail_cancel[] =
    "insert into outbox (family_id, kind, ref, subject, body)"
    " select e->>'family_id', 'cancellation', e->>'booking_id',"
    "   'Annulation de réservation',"
    "   format(E'Bonjour,\\n\\nLa réservation de %s est annulée."
    " %s\\n\\nLe service enfance\\n', " GCHW_SQL_CELL ","
    "     case when coalesce((e->>'billed')::boolean, false)"
    "     then 'Annulée après le délai, elle reste facturée, sauf absence"
    " justifiée que la mairie accepte (certificat médical...).'"
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
    "   format('Demande N° %s : justificatif d''absence reçu',"
    "     e->>'request_id'),"
    "   format(E'Bonjour,\\n\\nVotre demande N° %s (justification d''absence)"
    " est enregistrée : la mairie examine votre justificatif pour la séance"
    " %s. Une fois qu''elle l''a accepté, la séance ne sera pas facturée ;"
    " vous recevrez sa décision.\\n\\nLe service enfance\\n',"
    "   e->>'request_id', "
    "     coalesce((select " GCHW_SQL_CELL " from booking b"
    "       join child c on c.id = b.child_id"
    "       join session s on s.id = b.session_id"
    "       join activity a on a.id = s.activity_id"
    "       join unit u on u.code = s.unit_code"
    "       where b.id = e->>'booking_id'), e->>'booking_id'))"
    " from jsonb_array_elements($1::jsonb) e"
    " where e->>'type' = 'absence'"
    " on conflict do nothing";

/*
 * The statements of a batch, in order, each with the entry types it
 * concerns (0: every batch).  They are prepared once per connection:
 * parsed and planned again for every batch, they cost PostgreSQL about as
 * much as writing the rows.
 *
 * A batch is first written with "new", where a statement has one: the
 * same rows without "on conflict", whose probe of every unique index
 * before each insert was a fifth of the book statement.  Only a replay
 * (entries persisted under the consumer group of before 0050, read
 * again from stream_position's first '0-0'; a duplicate in the stream)
 * finds rows already there: its unique_violation rolls the batch back,
 * and it is written again with "on conflict do nothing", as every batch
 * once was.
 */
static const struct {
    const char  *sql;
    const char  *new;
    int          types;
} gchw_stmts[] = {
    { gchw_sql_void, NULL, GCHW_T_VOID },
    { gchw_sql_restore, NULL, GCHW_T_VOID },
    { gchw_sql_book, gchw_sql_book_new, GCHW_T_BOOK },
    { gchw_sql_absence_demande, NULL, GCHW_T_ABSENCE },
    { gchw_sql_cancel, NULL, GCHW_T_CANCEL },
    { gchw_sql_justify, NULL, GCHW_T_ABSENCE },
    { gchw_sql_apply_cancel, NULL, GCHW_T_CANCEL },
    { gchw_sql_apply_justify, NULL, GCHW_T_ABSENCE },
    { gchw_sql_mail_cancel, NULL, GCHW_T_CANCEL },
    { gchw_sql_mail_absence, NULL, GCHW_T_ABSENCE },
};

#define GCHW_NSTMTS  (sizeof(gchw_stmts) / sizeof(gchw_stmts[0]))


/* The connection (and its server process) the statements are prepared on. */
static PGconn  *gchw_prepared_pg;
static int      gchw_prepared_pid;


/* "gchw_persist_<i>", or "gchw_persist_<i>_new" for its "new" form */
static void
gchw_stmt_name(char *name, size_t len, size_t i, int new)
{
    snprintf(name, len, "gchw_persist_%zu%s", i, new ? "_new" : "");
}


static PGresult *
gchw_prepare(PGconn *pg)
{
    int        new;
    char       name[24];
    size_t     i;
    PGresult  *res;

    if (pg == gchw_prepared_pg && PQbackendPID(pg) == gchw_prepared_pid) {
        return NULL;
    }

    gchw_prepared_pg = NULL;

    for (i = 0; i < GCHW_NSTMTS; i++) {
        for (new = 0; new < 2; new++) {
            if (new && gchw_stmts[i].new == NULL) {
                continue;
            }

            gchw_stmt_name(name, sizeof(name), i, new);
            res = PQprepare(pg, name,
                            new ? gchw_stmts[i].new : gchw_stmts[i].sql, 1,
                            NULL);
            if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                return res;
            }
            PQclear(res);
        }
    }

    res = gchw_copy_prepare(pg);
    if (res != NULL) {
        return res;
    }

    gchw_prepared_pg = pg;
    gchw_prepared_pid = PQbackendPID(pg);

    return NULL;
}


/*
 * The batch's COMMIT, in both ways of writing it, with the stream's
 * position moved in the same transaction when there is one
 * (persist.c: a compare-and-set, SQLSTATE GCHW_STALE when another worker
 * moved it first).  NULL once committed, else the failed result.
 */
PGresult *
gchw_batch_commit(PGconn *pg, const gchw_position_t *position)
{
    PGresult    *res;
    const char  *params[2];

    if (position != NULL) {
        params[0] = position->from;
        params[1] = position->to;
        res = PQexecParams(pg, "select stream_position_move($1, $2)", 2,
                           NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            return res;
        }
        PQclear(res);
    }

    res = PQexec(pg, "commit");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        return res;
    }
    PQclear(res);

    return NULL;
}


/*
 * One batch at a time across workers: each statement then sees every
 * batch committed before this one (a booking's cancellation persisted by
 * another worker meanwhile), not just those committed before its own
 * snapshot.  Same round trip as the begin.  NULL, or the failed result.
 */
PGresult *
gchw_batch_begin(PGconn *pg, int generic)
{
    PGresult  *res;

    /* generic: the rush's batches (COPY) plan their probe once per
     * connection, not once per batch (gchw_sql_probe) */
    res = PQexec(pg, generic
                     ? "begin; set local plan_cache_mode = force_generic_plan;"
                       " select pg_advisory_xact_lock(" GCHB_LOCK_PERSIST ")"
                     : "begin; select pg_advisory_xact_lock("
                       GCHB_LOCK_PERSIST ")");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        return res;
    }
    PQclear(res);

    return NULL;
}


/*
 * One transaction: the statements of the batch's types, their "new" forms
 * when new.  NULL once committed, else the failed result (the transaction
 * is left aborted: the caller rolls back).
 */
static PGresult *
gchw_batch_run(PGconn *pg, const char *json, int types, int new,
    const gchw_position_t *position)
{
    char         name[24];
    size_t       i;
    PGresult    *res;
    const char  *params[1];

    params[0] = json;

    res = gchw_batch_begin(pg, 0);
    if (res != NULL) {
        return res;
    }

    for (i = 0; i < GCHW_NSTMTS; i++) {
        if (gchw_stmts[i].types && !(gchw_stmts[i].types & types)) {
            continue;
        }

        gchw_stmt_name(name, sizeof(name), i,
                       new && gchw_stmts[i].new != NULL);
        res = PQexecPrepared(pg, name, 1, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            return res;
        }
        PQclear(res);
    }

    return gchw_batch_commit(pg, position);
}


/*
 * Appends the JSON of an entry's "d" to json: a booking's compact demande
 * (engine/src/demande.c) rendered as the JSON entry docs/architecture.md
 * shows, anything else as it is.  0, or -1 when memory is short (persist.c
 * checked that a compact demande decodes).
 */
static int
gchw_entry_add(gchb_buf_t *json, const char *d, size_t len)
{
    int      rc;
    char    *js;
    size_t   n;

    if (len == 0 || d[0] != GCH_DM_MAGIC[0]) {
        return gchb_buf_add(json, d, len);
    }

    js = gch_dm_json(d, len, GCH_DM_ENTRY, &gch_alloc_std, &n);
    if (js == NULL) {
        return -1;
    }

    rc = gchb_buf_add(json, js, n);
    free(js);

    return rc ? -1 : 0;
}


/* The statements' $1: the entries as one JSON array.  0 or -1. */
static int
gchw_batch_json(gchb_buf_t *json, const gchw_entry_t *e, size_t n)
{
    size_t  i;

    if (gchb_buf_add(json, "[", 1)) {
        return -1;
    }

    for (i = 0; i < n; i++) {
        if ((i && gchb_buf_add(json, ",", 1))
            || gchw_entry_add(json, e[i].d, e[i].len))
        {
            return -1;
        }
    }

    return gchb_buf_add(json, "]", 1);
}


/*
 * A batch refused with a unique violation holds rows PostgreSQL has
 * already (a replay): its transaction is rolled back and 1 is returned,
 * for the batch to be written again with "on conflict do nothing".  0:
 * another failure, *res unchanged; -1: the rollback failed, *res its
 * result.
 */
static int
gchw_batch_replayed(PGconn *pg, PGresult **res)
{
    const char  *state;

    state = PQresultErrorField(*res, PG_DIAG_SQLSTATE);
    if (state == NULL || strcmp(state, "23505") != 0
        || PQstatus(pg) != CONNECTION_OK)
    {
        return 0;
    }

    gchb_log("info", "batch rows already in PostgreSQL (a replay): "
             "written again with on conflict do nothing");
    PQclear(*res);
    *res = PQexec(pg, "rollback");
    if (PQresultStatus(*res) != PGRES_COMMAND_OK) {
        return -1;
    }
    PQclear(*res);
    *res = NULL;

    return 1;
}


/* See gchw.h. */
int
gchw_batch_write(PGconn *pg, const gchw_entry_t *e, size_t n, int types,
    const gchw_position_t *position, char *err, size_t errlen)
{
    int           data, new, rc;
    size_t        i;
    PGresult     *res;
    gchb_buf_t    json = { 0 };
    const char   *state;

    res = gchw_prepare(pg);
    if (res != NULL) {
        goto failed;
    }

    new = 1;

    if (types == GCHW_T_BOOK) {
        rc = gchw_batch_copy(pg, e, n, position, &res);
        if (rc == 0) {
            return 0;
        }

        if (rc == -2) {
            goto nomem;
        }

        if (rc == -1) {
            if (gchw_batch_replayed(pg, &res) != 1) {
                goto failed;
            }
            new = 0;
        }
    }

    if (gchw_batch_json(&json, e, n) != 0) {
        goto nomem;
    }

    for ( ;; ) {
        res = gchw_batch_run(pg, json.data, types, new, position);
        if (res == NULL) {
            gchb_buf_free(&json);
            return 0;
        }

        if (!new || gchw_batch_replayed(pg, &res) != 1) {
            break;
        }
        new = 0;
    }

failed:

    gchb_buf_free(&json);

    state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

    if (state && strcmp(state, GCHW_STALE) == 0
        && PQstatus(pg) == CONNECTION_OK)
    {
        /* another worker persisted these entries: nothing written */
        PQclear(res);
        PQclear(PQexec(pg, "rollback"));
        return -3;
    }

    data = state && (strncmp(state, "22", 2) == 0
                     || strncmp(state, "23", 2) == 0);

    gchb_log("error", "postgres: %s", PQerrorMessage(pg));
    snprintf(err, errlen, "%s", PQerrorMessage(pg));
    i = strcspn(err, "\n");
    err[i] = '\0';
    PQclear(res);
    PQclear(PQexec(pg, "rollback"));

    return data && PQstatus(pg) == CONNECTION_OK ? -1 : -2;

nomem:

    gchb_buf_free(&json);
    gchb_log("error", "persist: out of memory");
    snprintf(err, errlen, "out of memory");

    return -2;
}
