/*
 * copy.c -- the rush's batches (batch.c): a batch of compact demandes
 * only, decoded into the rows of demande, booking and demande_mail_batch
 * and written with COPY, after ONE probe for the cases only the
 * statements take.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gchw.h"
#include "gchw_batch.h"


/* ----- the rush's batches: COPY ------------------------------------- */

/*
 * A batch of book entries only, each a compact demande (the rush: every
 * booking of nginx's saga), is written without JSON and without the
 * book statement (batch.c): the worker decodes each demande
 * (engine/src/demande.c) into the rows gchw_sql_book_new would insert,
 * and sends them with COPY into demande, booking and
 * demande_mail_batch.  PostgreSQL then parses
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
     * (gchw_sql_book, batch.c) */
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


/* Prepares the probe on pg (gchw_prepare() of batch.c, once per
 * connection).  NULL, or the failed result. */
PGresult *
gchw_copy_prepare(PGconn *pg)
{
    PGresult  *res;

    res = PQprepare(pg, GCHW_PROBE, gchw_sql_probe, 2, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
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
int
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
