/*
 * batch.c -- one batch of the stream {T}:stream into PostgreSQL
 * (persist.c reads, checks and acknowledges the entries), in ONE
 * transaction under the advisory lock GCHB_LOCK_PERSIST: a batch of
 * compact demandes only with COPY (below, "the rush's batches"), any
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


/* ----- the rush's batches: COPY ------------------------------------- */

/*
 * A batch of book entries only, each a compact demande (the rush: every
 * booking of nginx's saga), is written without JSON and without the
 * statement above: the worker decodes each demande (engine/src/demande.c)
 * into the rows gchw_sql_book_new would insert, and sends them with COPY
 * into demande, booking and demande_mail_batch.  PostgreSQL then parses
 * no batch JSON, plans nothing, and probes no unique index before
 * inserting.
 *
 * What the statement decides per row is decided here, from the demande
 * alone, in the cases COPY takes; every other case goes the statement's
 * way, found by ONE probe first (gchw_sql_probe):
 *   - a family of the batch is missing (its demande must fail 23503 and
 *     go to the dead letters, demande_family_missing());
 *   - a booking id of the batch is in voided_booking,
 *     booking_cancellation or booking_justification (its entry waited at
 *     a dead consumer while its cancellation, justification or void was
 *     persisted: the statement inserts it cancelled, justified, or not).
 * When the probe finds one, the transaction is rolled back and the batch
 * written by the statements.  A replayed batch (rows already there) fails
 * its COPY with a unique_violation, as the statement without "on
 * conflict" did, and is written again with "on conflict do nothing".
 *
 * The probe runs with a generic plan (gchw_batch_begin()), made once per
 * connection: PostgreSQL's plan cache kept a custom plan, made again for
 * each batch, estimating each of the 2,000 elements of each array
 * (1.3-1.9 ms a batch).  So the booking ids are joined to the three
 * tables rather than compared with "= any($2)", whose generic plan may
 * filter a small table by a sequential scan comparing every row with
 * every id (12.6 ms a batch with 300 voided bookings): the join's is a
 * hash join or an index nested loop, linear either way.
 */
static const char  gchw_sql_probe[] =
    "select exists (select 1 from unnest($1::text[]) f"
    "   where not exists (select 1 from family where id = f))"
    " or exists (select 1 from unnest($2::text[]) b"
    "   join voided_booking v on v.id = b)"
    " or exists (select 1 from unnest($2::text[]) b"
    "   join booking_cancellation c on c.booking_id = b)"
    " or exists (select 1 from unnest($2::text[]) b"
    "   join booking_justification j on j.booking_id = b)";

#define GCHW_PROBE  "gchw_persist_probe"

/* the columns COPY fills; the others keep their defaults (booking:
 * status 'confirmed', billed, not justified; demande_mail_batch: id, time) */
static const char  gchw_copy_demande[] =
    "copy demande (number, request_id, family_id, kind, status, idem_key,"
    " created_at, items) from stdin";
static const char  gchw_copy_booking[] =
    "copy booking (id, demande_number, family_id, child_id, session_id,"
    " price_cents, created_at, channel, booked_by) from stdin";
/* one row: the numbers of the batch's demandes that get an e-mail (0131) */
static const char  gchw_copy_mail[] =
    "copy demande_mail_batch (numbers) from stdin";


/* keys for the probe: NUL-terminated in text, at offsets off[0..n) */
typedef struct {
    gchb_buf_t  text;
    size_t     *off;
    size_t      n;
    size_t      cap;
} gchw_keys_t;

typedef struct {
    gchb_buf_t   demande;      /* COPY text rows */
    gchb_buf_t   booking;
    gchb_buf_t   mail;         /* "{n,n,...": the demande_mail_batch row */
    gchw_keys_t  families;     /* the probe's */
    gchw_keys_t  bids;
    char        *cbid;         /* an entry's booking ids, computed once */
    size_t       ncbid;        /* for the rows and gch_dm_render() */
    long long    ts_sec;       /* ts: the last second formatted, */
    char         ts[32];       /* "YYYY-MM-DD HH:MM:SS" */
    size_t       ts_len;       /* 0: none yet */
    int          failed;       /* out of memory */
} gchw_copy_t;


static void
gchw_copy_add(gchb_buf_t *b, const char *s, size_t n, gchw_copy_t *c)
{
    if (gchb_buf_add(b, s, n)) {
        c->failed = 1;
    }
}


/* COPY's text format: the bytes escaped with a backslash, and the letter
 * that follows it */
static const char  gchw_copy_esc[256] = {
    ['\\'] = '\\', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'
};


/*
 * A row is written in place: gchw_copy_room() makes room for its longest
 * form (every byte of its fields escaped) and gives where to write,
 * gchw_copy_end() closes it.  In a rush's batch the rows were most of the
 * worker's CPU as a few dozen appends each (docs/worker.md).
 */
static char *
gchw_copy_room(gchb_buf_t *b, size_t n, gchw_copy_t *c)
{
    if (gchb_buf_reserve(b, n) != 0) {
        c->failed = 1;
        return NULL;
    }

    return b->data + b->len;
}


static void
gchw_copy_end(gchb_buf_t *b, char *p)
{
    b->len = (size_t) (p - b->data);
    *p = '\0';
}


static char *
gchw_copy_put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}


/* One field of a COPY text row, escaped (2n bytes at most); NULL is \N. */
static char *
gchw_copy_field(char *p, const char *s, size_t n)
{
    char    e;
    size_t  i, j;

    if (s == NULL) {
        return gchw_copy_put(p, "\\N", 2);
    }

    for (i = 0, j = 0; i < n; i++) {
        e = gchw_copy_esc[(unsigned char) s[i]];
        if (e == 0) {
            continue;
        }
        p = gchw_copy_put(p, s + j, i - j);
        *p++ = '\\';
        *p++ = e;
        j = i + 1;
    }

    return gchw_copy_put(p, s + j, n - j);
}


/* v in decimal, at least width digits (zeros before), and a NUL: its
 * length (v >= 0 here, else its digits after a '-') */
static size_t
gchw_copy_int(char *out, long long v, size_t width)
{
    char                t[24];
    size_t              n, i;
    unsigned long long  u;

    i = 0;
    u = (unsigned long long) v;
    if (v < 0) {
        out[i++] = '-';
        u = -u;
    }

    n = 0;
    do {
        t[n++] = (char) ('0' + u % 10);
        u /= 10;
    } while (u);

    while (n < width) {
        t[n++] = '0';
    }

    while (n) {
        out[i++] = t[--n];
    }
    out[i] = '\0';

    return i;
}


static void
gchw_keys_add(gchw_keys_t *k, const char *s, size_t n, gchw_copy_t *c)
{
    size_t  *off;

    if (k->n == k->cap) {
        k->cap = k->cap ? 2 * k->cap : 256;
        off = realloc(k->off, k->cap * sizeof(size_t));
        if (off == NULL) {
            c->failed = 1;
            return;
        }
        k->off = off;
    }

    k->off[k->n++] = k->text.len;
    gchw_copy_add(&k->text, s, n, c);
    gchw_copy_add(&k->text, "", 1, c);
}


/* a key to sort: its first 8 bytes as a big-endian number (zeros after
 * its end), compared first, which orders as strcmp() does */
typedef struct {
    uint64_t     pre;
    const char  *s;
} gchw_key_t;


static int
gchw_keys_cmp(const void *a, const void *b)
{
    const gchw_key_t  *x = a, *y = b;

    if (x->pre != y->pre) {
        return x->pre < y->pre ? -1 : 1;
    }

    if ((x->pre & 0xff) == 0) {
        return 0;                    /* both ended in those 8 bytes */
    }

    return strcmp(x->s + 8, y->s + 8);
}


/*
 * The distinct keys as a text[] literal in out, sorted by their bytes:
 * the order of PostgreSQL's collation too for the usual ids (ASCII
 * letters of one case, digits, '-'), so that the probe's index lookups
 * go through each index in its order, each key once.  The number of
 * distinct keys.
 */
static size_t
gchw_keys_literal(gchw_keys_t *k, gchb_buf_t *out, gchw_copy_t *c)
{
    size_t        i, j, distinct;
    uint64_t      pre;
    const char   *p;
    gchw_key_t   *v;

    gchw_copy_add(out, "{", 1, c);
    distinct = 0;

    if (k->n && !c->failed) {
        v = malloc(k->n * sizeof(gchw_key_t));
        if (v == NULL) {
            c->failed = 1;
            return 0;
        }

        for (i = 0; i < k->n; i++) {
            p = k->text.data + k->off[i];
            pre = 0;
            for (j = 0; j < 8; j++) {
                pre = pre << 8 | (unsigned char) *p;
                p += *p != '\0';
            }
            v[i].pre = pre;
            v[i].s = k->text.data + k->off[i];
        }
        qsort(v, k->n, sizeof(gchw_key_t), gchw_keys_cmp);

        for (i = 0; i < k->n; i++) {
            if (i && gchw_keys_cmp(&v[i], &v[i - 1]) == 0) {
                continue;
            }

            gchw_copy_add(out, distinct ? ",\"" : "\"",
                          distinct ? 2 : 1, c);
            distinct++;
            for (p = v[i].s; *p != '\0'; p += j) {
                j = strcspn(p, "\"\\");
                gchw_copy_add(out, p, j, c);
                if (p[j] != '\0') {
                    gchw_copy_add(out, "\\", 1, c);
                    gchw_copy_add(out, p + j, 1, c);
                    j++;
                }
            }
            gchw_copy_add(out, "\"", 1, c);
        }

        free(v);
    }

    gchw_copy_add(out, "}", 1, c);

    return distinct;
}


/*
 * The rows of one compact demande, appended to c's buffers.  0; 1 when it
 * is not a case COPY takes (the batch goes the statements' way); -1 when
 * memory is short.
 */
static int
gchw_copy_entry(gchw_copy_t *c, const char *d, size_t len)
{
    int             rc, mail;
    char           *items, *p, *bid, ts[48], num[24], rid[32], fid[128],
                    cid[128], sid[128], price[24];
    size_t          i, n, ilen, numlen, tslen;
    time_t          t;
    struct tm       tm;
    gch_dm_t        dm;
    const char     *agent, *status;
    gch_dm_cell_t  *cell;

    if (len == 0 || d[0] != GCH_DM_MAGIC[0]) {
        return 1;                    /* a JSON entry */
    }

    rc = gch_dm_decode(&dm, d, len, &gch_alloc_std);
    if (rc != GCH_OK) {
        return rc == GCH_ENOMEM ? -1 : 1;
    }

    items = NULL;
    rc = 1;

    if (dm.number < 0 || dm.at_ms < 0 || dm.family_len >= sizeof(fid)
        || memchr(dm.family, '\0', dm.family_len) != NULL)
    {
        goto done;
    }

    memcpy(fid, dm.family, dm.family_len);
    fid[dm.family_len] = '\0';

    if (dm.ncells > c->ncbid) {
        bid = realloc(c->cbid, dm.ncells * GCH_BOOKING_ID_MAX);
        if (bid == NULL) {
            rc = -1;
            goto done;
        }
        c->cbid = bid;
        c->ncbid = dm.ncells;
    }

    for (i = 0; i < dm.ncells; i++) {
        cell = &dm.cells[i];
        if (cell->released_len
            || (cell->reason == GCH_REASON_NONE
                && (cell->child_len >= sizeof(cid)
                    || cell->session_len >= sizeof(sid))))
        {
            goto done;               /* a swap's release: a cancellation */
        }

        if (cell->reason != GCH_REASON_NONE) {
            continue;
        }

        /* its booking id, once: for the items' JSON and the row */
        memcpy(cid, cell->child, cell->child_len);
        cid[cell->child_len] = '\0';
        memcpy(sid, cell->session, cell->session_len);
        sid[cell->session_len] = '\0';
        bid = c->cbid + i * GCH_BOOKING_ID_MAX;
        gch_book_id(bid, fid, dm.key, dm.key_len, cid, sid);
        cell->bid = bid;
    }

    /* the items and the status as the statement copies them from the
     * entry's JSON (gch_dm_render(), GCH_DM_ENTRY, renders both so) */
    items = gch_dm_render(&dm, GCH_DM_ITEMS, &gch_alloc_std, &ilen);
    if (items == NULL) {
        rc = -1;
        goto done;
    }
    status = gch_dm_status(&dm);

    numlen = gchw_copy_int(num, dm.number, 1);
    rid[0] = 'D';
    rid[1] = '-';
    gchw_copy_int(rid + 2, dm.number, 6);

    /* to_timestamp(at_ms / 1000.0): milliseconds, UTC; the second's text
     * kept for the next entries (a rush's are of the same seconds) */
    if (c->ts_len == 0 || c->ts_sec != dm.at_ms / 1000) {
        t = (time_t) (dm.at_ms / 1000);
        if (gmtime_r(&t, &tm) == NULL) {
            goto done;
        }
        c->ts_len = strftime(c->ts, sizeof(c->ts), "%Y-%m-%d %H:%M:%S", &tm);
        if (c->ts_len == 0) {
            goto done;
        }
        c->ts_sec = dm.at_ms / 1000;
    }
    memcpy(ts, c->ts, c->ts_len);
    tslen = c->ts_len;
    ts[tslen++] = '.';
    gchw_copy_int(ts + tslen, dm.at_ms % 1000, 3);
    tslen += 3;
    memcpy(ts + tslen, "+00", 4);
    tslen += 3;


    /* demande */
    n = strlen(rid) + strlen(status) + 2 * (dm.family_len + dm.key_len + ilen);
    p = gchw_copy_room(&c->demande, numlen + tslen + n + 16, c);
    if (p == NULL) {
        rc = -1;
        goto done;
    }
    p = gchw_copy_put(p, num, numlen);
    *p++ = '\t';
    p = gchw_copy_put(p, rid, strlen(rid));
    *p++ = '\t';
    p = gchw_copy_field(p, dm.family, dm.family_len);
    p = gchw_copy_put(p, "\tbook\t", 6);
    p = gchw_copy_put(p, status, strlen(status));
    *p++ = '\t';
    p = gchw_copy_field(p, dm.key, dm.key_len);
    *p++ = '\t';
    p = gchw_copy_put(p, ts, tslen);
    *p++ = '\t';
    p = gchw_copy_field(p, items, ilen);
    *p++ = '\n';
    gchw_copy_end(&c->demande, p);

    gchw_keys_add(&c->families, dm.family, dm.family_len, c);

    /* booking: the confirmed cells; booked_by the agent at the counter */
    agent = dm.onsite && dm.agent_len ? dm.agent : NULL;

    for (i = 0; i < dm.ncells; i++) {
        cell = &dm.cells[i];
        if (cell->reason != GCH_REASON_NONE) {
            continue;
        }

        n = gchw_copy_int(price, cell->price_cents, 1);
        p = gchw_copy_room(&c->booking, 2 * (GCH_BOOKING_ID_MAX
            + dm.family_len + cell->child_len + cell->session_len
            + dm.agent_len) + numlen + n + tslen + 24, c);
        if (p == NULL) {
            rc = -1;
            goto done;
        }
        p = gchw_copy_field(p, cell->bid, strlen(cell->bid));
        *p++ = '\t';
        p = gchw_copy_put(p, num, numlen);
        *p++ = '\t';
        p = gchw_copy_field(p, dm.family, dm.family_len);
        *p++ = '\t';
        p = gchw_copy_field(p, cell->child, cell->child_len);
        *p++ = '\t';
        p = gchw_copy_field(p, cell->session, cell->session_len);
        *p++ = '\t';
        p = gchw_copy_put(p, price, n);
        *p++ = '\t';
        p = gchw_copy_put(p, ts, tslen);
        p = gchw_copy_put(p, dm.onsite ? "\tonsite\t" : "\tonline\t", 8);
        p = gchw_copy_field(p, agent, dm.agent_len);
        *p++ = '\n';
        gchw_copy_end(&c->booking, p);

        gchw_keys_add(&c->bids, cell->bid, strlen(cell->bid), c);
    }

    /* e-mail: one per demande (its number in the batch's row), but none
     * for a promotion that did not book, unless its list closed
     * (gchw_sql_book) */
    mail = !(dm.key_len >= sizeof(GCH_WAIT_KEY_PREFIX) - 1
             && memcmp(dm.key, GCH_WAIT_KEY_PREFIX,
                       sizeof(GCH_WAIT_KEY_PREFIX) - 1) == 0
             && strcmp(status, "traitee_positivement") != 0
             && !(dm.ncells && dm.cells[0].reason == GCH_REASON_CLOSED));

    if (mail) {
        gchw_copy_add(&c->mail, c->mail.len ? "," : "{", 1, c);
        gchw_copy_add(&c->mail, num, numlen, c);
    }

    rc = c->failed ? -1 : 0;

done:

    free(items);
    gch_dm_free(&dm, &gch_alloc_std);

    return rc;
}


static void
gchw_copy_free(gchw_copy_t *c)
{
    gchb_buf_free(&c->demande);
    gchb_buf_free(&c->booking);
    gchb_buf_free(&c->mail);
    gchb_buf_free(&c->families.text);
    free(c->families.off);
    gchb_buf_free(&c->bids.text);
    free(c->bids.off);
    free(c->cbid);
}


/* COPY sql FROM STDIN with the rows of b: NULL, or the failed result. */
static PGresult *
gchw_copy_send(PGconn *pg, const char *sql, const gchb_buf_t *b)
{
    PGresult  *res;

    res = PQexec(pg, sql);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        return res;
    }
    PQclear(res);

    if ((b->len && PQputCopyData(pg, b->data, (int) b->len) != 1)
        || PQputCopyEnd(pg, NULL) != 1)
    {
        /* the connection is gone: PQgetResult says so */
    }

    res = PQgetResult(pg);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        return res;
    }
    PQclear(res);

    /* the end of the command */
    while ((res = PQgetResult(pg)) != NULL) {
        PQclear(res);
    }

    return NULL;
}


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

    res = PQprepare(pg, GCHW_PROBE, gchw_sql_probe, 2, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        return res;
    }
    PQclear(res);

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
static PGresult *
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
static PGresult *
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
 * The rush's way (above): 0 committed; 1 not a batch COPY takes, or the
 * probe found a case it does not (nothing written, no transaction open);
 * -1 failed, *res the failed result (the transaction is left aborted: the
 * caller rolls back); -2 memory is short.
 */
static int
gchw_batch_copy(PGconn *pg, const gchw_entry_t *e, size_t n,
    const gchw_position_t *position, PGresult **res)
{
    int           rc;
    size_t        i;
    gchb_buf_t    families = { 0 }, bids = { 0 };
    gchw_copy_t   c;
    const char   *params[2];

    memset(&c, 0, sizeof(c));

    for (i = 0; i < n; i++) {
        rc = gchw_copy_entry(&c, e[i].d, e[i].len);
        if (rc != 0) {
            rc = rc < 0 ? -2 : 1;
            goto done;
        }
    }

    if (c.mail.len) {
        gchw_copy_add(&c.mail, "}\n", 2, &c);
    }
    gchw_keys_literal(&c.families, &families, &c);
    gchw_keys_literal(&c.bids, &bids, &c);
    if (c.failed) {
        rc = -2;
        goto done;
    }

    rc = -1;

    *res = gchw_batch_begin(pg, 1);
    if (*res != NULL) {
        goto done;
    }

    params[0] = families.data;
    params[1] = bids.data;
    *res = PQexecPrepared(pg, GCHW_PROBE, 2, params, NULL, NULL, 0);
    if (PQresultStatus(*res) != PGRES_TUPLES_OK || PQntuples(*res) != 1) {
        goto done;
    }

    if (PQgetvalue(*res, 0, 0)[0] == 't') {
        gchb_log("info", "batch of %zu entries written by the statements: "
                 "a family missing, or a booking voided, cancelled or "
                 "justified before it was persisted", n);
        PQclear(*res);
        *res = PQexec(pg, "rollback");
        if (PQresultStatus(*res) != PGRES_COMMAND_OK) {
            goto done;
        }
        PQclear(*res);
        *res = NULL;
        rc = 1;
        goto done;
    }
    PQclear(*res);

    *res = gchw_copy_send(pg, gchw_copy_demande, &c.demande);
    if (*res == NULL && c.booking.len) {
        *res = gchw_copy_send(pg, gchw_copy_booking, &c.booking);
    }
    if (*res == NULL && c.mail.len) {
        *res = gchw_copy_send(pg, gchw_copy_mail, &c.mail);
    }
    if (*res == NULL) {
        *res = gchw_batch_commit(pg, position);
    }

    rc = *res == NULL ? 0 : -1;

done:

    gchb_buf_free(&families);
    gchb_buf_free(&bids);
    gchw_copy_free(&c);

    return rc;
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
