/*
 * batch.c -- one batch of the stream {T}:stream into PostgreSQL
 * (persist.c reads, checks and acknowledges the entries): the set-based
 * statements, prepared once per connection, run in ONE transaction under
 * the advisory lock GCHB_LOCK_PERSIST, each only in batches holding the
 * entry types it concerns.  persist.c's comment tells what each type of
 * entry becomes and why a replay changes nothing.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gchw.h"


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
    "    when i->>'status' = 'waitlisted' then 'complet, "
    "sur la liste d''attente (' || (i->>'position') || 'ᵉ)'"
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
    "   case when e->>'idem' like '" GCH_WAIT_KEY_PREFIX "%'"
    "     and e->'items'->0->>'reason' = 'closed'"
    "   then format('Liste d''attente close : demande N° %s',"
    "     e->>'request_id')"
    "   when e->>'idem' like '" GCH_WAIT_KEY_PREFIX "%'"
    "   then format('Une place s''est libérée : demande N° %s',"
    "     e->>'request_id')"
    "   else format('Demande N° %s : %s', e->>'request_id', "
    GCHW_SQL_STATUS("e->>'status'") ") end,"
    "   case when e->>'idem' like '" GCH_WAIT_KEY_PREFIX "%'"
    "     and e->'items'->0->>'reason' = 'closed'"
    "   then format(E'Bonjour,\\n\\nLe délai de réservation est passé :"
    " la liste d''attente de la séance ci-dessous est close, aucune place"
    " ne s''est libérée à temps (demande N° %s).\\n\\n%s\\n\\n"
    "Le service enfance\\n', e->>'request_id', l.lines)"
    "   when e->>'idem' like '" GCH_WAIT_KEY_PREFIX "%'"
    "   then format(E'Bonjour,\\n\\nUne place s''est libérée sur la liste"
    " d''attente : la séance ci-dessous est réservée (demande N° %s)."
    "\\n\\n%s\\n\\nLe service enfance\\n', e->>'request_id', l.lines)"
    "   else format(E'Bonjour,\\n\\nVotre demande N° %s (réservation de"
    " séances) a été %s.\\n\\n%s\\n\\nLe service enfance\\n',"
    " e->>'request_id', "
    GCHW_SQL_STATUS("e->>'status'") ", l.lines) end"
    " from e left join l using (n)"
    " where not coalesce(l.voided, false)"
    /* a promotion that did not book (issue 23) mails nothing, but the
     * end of its list at the booking deadline */
    "   and not (e->>'idem' like '" GCH_WAIT_KEY_PREFIX "%'"
    "     and e->>'status' <> 'traitee_positivement'"
    "     and coalesce(e->'items'->0->>'reason', '') <> 'closed')"
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


/* See gchw.h. */
int
gchw_batch_write(PGconn *pg, const char *json, int types, char *err,
    size_t errlen)
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
