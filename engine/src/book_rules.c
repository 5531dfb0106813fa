/*
 * book_rules.c -- the booking rules that need no Redis, and the unit
 * dependencies that step one reads.
 *
 * gch_precheck() refuses a cell before anything is sent: enrolment, age,
 * documents, unpaid invoices, opening, deadline, conflicts; the whole-week
 * rule (gch_week_rule(), gch_week_outcome()) and the units a cell depends
 * on (gch_dep_key(), gch_needs_outcome()).  See book.h.
 */

#include <stdlib.h>
#include <string.h>

#include "book.h"


static int
gch_enrolled(const gch_family_t *f, const gch_cell_t *c)
{
    size_t                  i;
    const gch_enrolment_t  *e;

    for (i = 0; i < f->nenrolments; i++) {
        e = &f->enrolments[i];

        if (e->status == GCH_ENROL_VALIDEE
            && e->activity == c->session->activity
            && strcmp(e->child_id, c->child->id) == 0
            && e->from <= c->session->date && c->session->date <= e->to)
        {
            return 1;
        }
    }

    return 0;
}


/* Every document the activity requires, valid on day d, on file for the
 * whole family or for this child (a child's document counts for that
 * child only). */
static int
gch_documents_ok(const gch_family_t *f, const gch_activity_t *act,
    const gch_child_t *child, gch_day_t d)
{
    size_t                 i, j;
    const gch_document_t  *doc;

    for (i = 0; i < act->nrequired_documents; i++) {
        for (j = 0; j < f->ndocuments; j++) {
            doc = &f->documents[j];

            if (strcmp(doc->type, act->required_documents[i]) == 0
                && doc->valid_from <= d && d <= doc->valid_to
                && (doc->child_id == NULL || doc->child_id == child->id
                    || strcmp(doc->child_id, child->id) == 0))
            {
                break;
            }
        }

        if (j == f->ndocuments) {
            return 0;
        }
    }

    return 1;
}


/* The rules that need no Redis, in the order a parent would ask them. */
void
gch_precheck(gch_book_t *b, gch_cell_t *c, size_t idx)
{
    int                    age, entered;
    size_t                 j;
    int64_t                now_s;
    const gch_cell_t      *p;
    const gch_session_t   *s;
    const gch_activity_t  *act;

    s = c->session;
    if (s == NULL) {
        c->reason = GCH_REASON_UNKNOWN_SESSION;
        return;
    }

    act = s->activity;
    now_s = b->in.now_ms / 1000;

    if (!gch_enrolled(b->in.family, c)) {
        c->reason = GCH_REASON_NOT_ENROLLED;
        return;
    }

    age = gch_age_on(c->child->birth_date, s->date);
    if (age < act->age_min || age > act->age_max) {
        c->reason = GCH_REASON_AGE;
        return;
    }

    if (!gch_documents_ok(b->in.family, act, c->child, s->date)) {
        c->reason = GCH_REASON_DOCUMENTS_MISSING;
        return;
    }

    if (act->blocks_unpaid && b->in.family->unpaid_invoices > 0) {
        c->reason = GCH_REASON_UNPAID_INVOICES;
        return;
    }

    entered = 0;

    switch (gch_draw_phase(act, b->in.now_ms)) {
    case GCH_DRAW_ENTRIES:
        entered = 1;                /* decided at the opening (draw.c) */
        break;
    case GCH_DRAW_HELD:
        /* until its draw is decided, nothing first come; a promotion
         * books a place the draw gave and a cancellation freed */
        if (b->in.draw
            || gch_wait_is_promotion(b->in.idem_key, b->in.idem_len))
        {
            break;
        }
        /* fall through */
    case GCH_DRAW_NOT_OPEN:
        if (!b->in.onsite) {
            c->reason = GCH_REASON_NOT_OPEN_YET;
            return;
        }
        break;
    default:
        break;
    }

    if (entered && b->in.onsite) {
        entered = 0;                /* the counter books as ever */
    }

    if (now_s >= s->book_until) {     /* gch_deadline_instant(), read */
        c->reason = GCH_REASON_CLOSED;
        return;
    }

    /* two cells of the same request that overlap for one child */

    for (j = 0; j < idx; j++) {
        p = &b->cells[j];

        if (p->reason || p->child != c->child
            || p->session->date != s->date)
        {
            continue;
        }

        if (p->session == s) {
            c->reason = GCH_REASON_ALREADY_BOOKED;
            return;
        }

        if (p->quanta & c->quanta) {
            c->reason = GCH_REASON_CONFLICT;
            return;
        }
    }

    if (entered) {
        c->reason = GCH_REASON_ENTERED;
    }
}


/*
 * Whole weeks (Ambérieu): for an activity with week_required, each child,
 * week and unit asked must cover every day of that week on which the
 * activity has that unit.  When it does not, or when one cell of that
 * child, activity, unit and week is refused for another reason, the other
 * cells of that group are refused week_incomplete; every other cell of the
 * request keeps its own outcome.
 */
static int
gch_week_same(const gch_cell_t *a, const gch_cell_t *c)
{
    gch_day_t  ma, mc;

    if (a->session == NULL || c->session == NULL || a->child != c->child
        || a->session->activity != c->session->activity
        || a->session->unit != c->session->unit)
    {
        return 0;
    }

    ma = a->session->date - (gch_day_weekday(a->session->date) - 1);
    mc = c->session->date - (gch_day_weekday(c->session->date) - 1);

    return ma == mc;
}


static int
gch_week_complete(gch_book_t *b, const gch_cell_t *c)
{
    size_t                 i, j, n;
    gch_day_t              monday;
    const gch_session_t   *s, *t, *first;
    const gch_cell_t      *o;

    s = c->session;
    monday = s->date - (gch_day_weekday(s->date) - 1);

    /* the activity's sessions only, not the town's (10^6 of them in a
     * town with years of calendars) */
    first = gch_town_act_sessions(b->in.town, s->activity, &n);

    for (i = 0; i < n; i++) {
        t = &first[i];

        if (t->unit != s->unit || t->date < monday || t->date > monday + 6) {
            continue;
        }

        for (j = 0; j < b->ncells; j++) {
            o = &b->cells[j];
            if (o->reason == GCH_REASON_NONE && o->session == t
                && o->child == c->child)
            {
                break;
            }
        }

        if (j == b->ncells) {
            return 0;
        }
    }

    return 1;
}


/* c's group goes: each of its cells still open is week_incomplete. */
static void
gch_week_refuse(gch_book_t *b, const gch_cell_t *c)
{
    size_t       i;
    gch_cell_t  *o;

    for (i = 0; i < b->ncells; i++) {
        o = &b->cells[i];
        if (o->reason == GCH_REASON_NONE && gch_week_same(o, c)) {
            o->reason = GCH_REASON_WEEK_INCOMPLETE;
        }
    }
}


/* c is the same cell asked twice, the first one still open. */
static int
gch_week_twice(gch_book_t *b, const gch_cell_t *c)
{
    size_t             i;
    const gch_cell_t  *o;

    if (c->reason != GCH_REASON_ALREADY_BOOKED) {
        return 0;
    }

    for (i = 0; i < b->ncells; i++) {
        o = &b->cells[i];
        if (o != c && o->reason == GCH_REASON_NONE && o->session == c->session
            && o->child == c->child)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * Refusing a group's cells changes no other group's completeness: one pass
 * is enough.  A group refused by its first cell is seen again, refused, by
 * its other cells (harmless).  A copy of a cell asked twice refuses nothing
 * more.
 */
void
gch_week_rule(gch_book_t *b)
{
    size_t       i;
    gch_cell_t  *c;

    for (i = 0; i < b->ncells; i++) {
        c = &b->cells[i];

        if (c->session && c->session->activity->week_required
            && !gch_week_twice(b, c)
            && (c->reason != GCH_REASON_NONE || !gch_week_complete(b, c)))
        {
            gch_week_refuse(b, c);
        }
    }

    b->nopen = 0;
    for (i = 0; i < b->ncells; i++) {
        if (b->cells[i].reason == GCH_REASON_NONE) {
            b->nopen++;
        }
    }
}


/*
 * After step one: a refused cell (full, conflict) of a whole week refuses
 * its group; step two gives back what the group's cells took.
 */
void
gch_week_outcome(gch_book_t *b)
{
    size_t       i;
    gch_cell_t  *c;

    for (i = 0; i < b->ncells; i++) {
        c = &b->cells[i];
        if (c->session && c->session->activity->week_required && c->reason
            && !gch_week_twice(b, c))
        {
            gch_week_refuse(b, c);
        }
    }
}


/* The claim key of the first elementary interval of unit u, that day. */
void
gch_dep_key(char *buf, size_t size, const gch_book_t *b, const gch_cell_t *c,
    int u)
{
    int       q;
    uint32_t  quanta;

    quanta = b->in.town->units[u].quanta;
    for (q = 0; q < 31 && !(quanta & (1u << q)); q++) { /* void */ }

    (void) gch_claim_key_of(buf, size, b->in.town, c->child->id,
                            c->session->date, q);
}


/*
 * Unit dependencies ("REPAS only with MATIN or APM", unit_requires): a
 * cell needing one of c->needs is refused unit_required unless the child
 * holds one of them in the same activity that day -- booked before (the
 * GET replies of step one) or confirmed in this very request.
 */
void
gch_needs_outcome(gch_book_t *b, const redisReply *exec)
{
    int                   u;
    size_t                i, j, k;
    const char           *sp;
    const gch_cell_t     *o;
    const redisReply     *r;
    const gch_session_t  *held;
    gch_cell_t           *c;

    for (i = 0; i < b->ncells; i++) {
        c = &b->cells[i];
        if (c->reason || c->needs == 0) {
            continue;
        }

        for (j = 0; j < b->ncells; j++) {
            o = &b->cells[j];
            if (j != i && o->reason == GCH_REASON_NONE && o->child == c->child
                && o->session->activity == c->session->activity
                && o->session->date == c->session->date
                && (c->needs & (1u << o->session->unit)))
            {
                break;
            }
        }

        if (j < b->ncells) {
            continue;
        }

        k = c->needs_at;

        for (u = 0; u < 32; u++) {
            if (!(c->needs & (1u << u))) {
                continue;
            }

            r = (k < exec->elements) ? exec->element[k] : NULL;
            k++;

            if (r == NULL || r->type != REDIS_REPLY_STRING) {
                continue;
            }

            sp = strrchr(r->str, ' ');
            held = sp ? gch_town_session(b->in.town, r->str, sp - r->str)
                      : NULL;

            if (held && held->activity == c->session->activity
                && held->unit == u)
            {
                break;
            }
        }

        if (u == 32) {
            c->reason = GCH_REASON_UNIT_REQUIRED;
        }
    }
}
