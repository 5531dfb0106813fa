/*
 * daily.c -- the back office's daily lists (issue 26): per session of a
 * day, the children booked with their allergies and the people who may
 * pick them up (JSON, and a printable PDF made with libharu as the
 * invoices are); the meal counts per day for the kitchen; the presence
 * hours per child and month for the CAF statistics (CSV).
 *
 * Everything is read from PostgreSQL: bookings as the worker persisted
 * them (a booking of the last second may be missing), attendance as the
 * agents ticked it (POST /api/staff/attendance), the family's record
 * (family.c: allergies; entourage.c: who may pick the child up).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "office.h"


#define GCHO_DAY_SPAN_MAX  62              /* days of a meal count */


static int
gcho_day_ok(const char *s)
{
    gch_day_t  d;

    return s != NULL && gch_day_parse(&d, s, strlen(s)) == 0;
}


/* One row per child booked: the session's columns, then the child's. */
static const char  gcho_day_sql[] =
    "select s.id, a.name, u.label, coalesce(nullif(s.label, u.label), ''),"
    "  to_char(make_time(u.starts_min / 60, u.starts_min % 60, 0),"
    "    'HH24:MI'),"
    "  to_char(make_time(u.ends_min / 60 % 24, u.ends_min % 60, 0),"
    "    'HH24:MI'),"
    "  b.id, c.id, c.first_name, c.family_id,"
    "  extract(year from age(s.date, c.birth_date))::int,"
    "  coalesce(c.allergies, ''),"
    "  coalesce((select string_agg(k.first_name || ' ' || k.last_name"
    "      || ' (' || k.relation || ') ' || k.phone,"
    "      ', ' order by k.last_name, k.first_name, k.id)"
    "    from entourage_person k where k.family_id = c.family_id"
    "      and k.can_pick_up and k.removed_at is null), ''),"
    "  coalesce(t.status, ''), b.channel, a.id, u.code"
    " from session s join activity a on a.id = s.activity_id"
    " join unit u on u.code = s.unit_code"
    " left join booking b on b.session_id = s.id"
    "   and b.status = 'confirmed'"
    " left join child c on c.id = b.child_id"
    " left join attendance t on t.booking_id = b.id"
    " where s.date = $1::date and ($2::text is null or s.activity_id = $2)"
    " order by a.name, u.starts_min, s.id, c.first_name, c.id";


/* GET /api/staff/daily?date=YYYY-MM-DD&activity_id=A */
static int
gcho_day_list(gcho_req_t *rq)
{
    const char  *p[2];

    p[0] = gcho_query(rq, "date");
    p[1] = gcho_query(rq, "activity_id");

    if (!gcho_day_ok(p[0])) {
        return gcho_error(rq, 400, "invalid_field",
                          "Le paramètre date doit être une date AAAA-MM-JJ.");
    }

    return gcho_reply_row(rq, 200,
        "with r as (select s.id sid, s.activity_id aid, a.name aname,"
        "    s.unit_code, u.label ulabel, s.label slabel, u.starts_min,"
        "    s.places"
        "  from session s join activity a on a.id = s.activity_id"
        "  join unit u on u.code = s.unit_code"
        "  where s.date = $1::date"
        "    and ($2::text is null or s.activity_id = $2))"
        " select json_build_object('date', $1::date, 'sessions',"
        "  coalesce(json_agg(json_build_object('id', r.sid,"
        "    'activity_id', r.aid, 'activity', r.aname,"
        "    'unit', r.unit_code, 'unit_label', r.ulabel,"
        "    'label', r.slabel, 'places', r.places,"
        "    'children', (select coalesce(json_agg(json_build_object("
        "        'booking_id', b.id, 'child_id', c.id,"
        "        'first_name', c.first_name, 'family_id', c.family_id,"
        "        'birth_date', c.birth_date, 'allergies', c.allergies,"
        "        'channel', b.channel, 'attendance', t.status,"
        "        'pick_up', (select coalesce(json_agg(json_build_object("
        "            'name', k.first_name || ' ' || k.last_name,"
        "            'relation', k.relation, 'phone', k.phone)"
        "            order by k.last_name, k.first_name, k.id), '[]')"
        "          from entourage_person k where k.family_id = c.family_id"
        "            and k.can_pick_up and k.removed_at is null))"
        "        order by c.first_name, c.id), '[]')"
        "      from booking b join child c on c.id = b.child_id"
        "      left join attendance t on t.booking_id = b.id"
        "      where b.session_id = r.sid and b.status = 'confirmed'))"
        "    order by r.aname, r.starts_min, r.sid), '[]'))"
        " from r", 2, p, "");
}


/* ------------------------------------------------------------------ */
/* the PDF                                                              */

static void
gcho_pdf_heads(gcho_pdf_t *d)
{
    gcho_pdf_text(d, d->bold, 9, 40, 110, "Enfant");
    gcho_pdf_text(d, d->bold, 9, 155, 30, "Âge");
    gcho_pdf_text(d, d->bold, 9, 190, 140, "Allergies");
    gcho_pdf_text(d, d->bold, 9, 335, 180, "Peut venir le chercher");
    gcho_pdf_text(d, d->bold, 9, 520, 40, "Présent");
    gcho_pdf_rule(d);
    d->y -= 16;
}


/* A new page headed by the session (row of res), its columns' names. */
static void
gcho_pdf_session(gcho_pdf_t *d, PGresult *res, int row, const char *date,
    int more)
{
    char  title[512], sub[256];

    gcho_pdf_page(d);

    snprintf(title, sizeof(title), "%s%s%s", PQgetvalue(res, row, 1),
             PQgetvalue(res, row, 3)[0] ? " - " : "",
             PQgetvalue(res, row, 3));
    snprintf(sub, sizeof(sub), "%.2s/%.2s/%.4s, %s (%s - %s)%s", date + 8,
             date + 5, date, PQgetvalue(res, row, 2),
             PQgetvalue(res, row, 4), PQgetvalue(res, row, 5),
             more ? " (suite)" : "");

    gcho_pdf_text(d, d->bold, 14, 40, 515, title);
    d->y -= 18;
    gcho_pdf_text(d, d->font, 11, 40, 515, sub);
    d->y -= 26;
    gcho_pdf_heads(d);
}


/* GET /api/staff/daily.pdf?date=YYYY-MM-DD&activity_id=A: one page (or
 * more) per session of the day: its children, their age, allergies, who
 * may pick them up, and a box to tick. */
static int
gcho_day_pdf(gcho_req_t *rq)
{
    int          row, n, count;
    char         age[16], total[64], name[32];
    PGresult    *res;
    gcho_pdf_t   d;
    const char  *p[2], *sid;

    p[0] = gcho_query(rq, "date");
    p[1] = gcho_query(rq, "activity_id");

    if (!gcho_day_ok(p[0])) {
        return gcho_error(rq, 400, "invalid_field",
                          "Le paramètre date doit être une date AAAA-MM-JJ.");
    }

    res = gcho_sql(rq, gcho_day_sql, 2, p);
    if (res == NULL) {
        return 0;
    }

    if (gcho_pdf_open(&d) != 0) {
        PQclear(res);
        if (d.pdf != NULL) {
            HPDF_Free(d.pdf);
        }
        return gcho_error(rq, 500, "internal",
                          "Une erreur interne est survenue.");
    }

    n = PQntuples(res);
    sid = NULL;
    count = 0;

    if (n == 0) {
        gcho_pdf_page(&d);
        gcho_pdf_text(&d, d.font, 12, 40, 515, "Aucune séance ce jour-là.");
    }

    for (row = 0; row < n && !d.failed; row++) {
        if (sid == NULL || strcmp(sid, PQgetvalue(res, row, 0)) != 0) {
            if (sid != NULL) {
                snprintf(total, sizeof(total), "%d enfant%s", count,
                         count > 1 ? "s" : "");
                d.y -= 6;
                gcho_pdf_text(&d, d.bold, 10, 40, 200, total);
            }
            sid = PQgetvalue(res, row, 0);
            count = 0;
            gcho_pdf_session(&d, res, row, p[0], 0);
        }

        if (PQgetisnull(res, row, 6)) {
            continue;                      /* a session nobody booked */
        }

        if (d.y < 60) {
            gcho_pdf_session(&d, res, row, p[0], 1);
        }

        count++;
        snprintf(age, sizeof(age), "%s ans", PQgetvalue(res, row, 10));
        gcho_pdf_text(&d, d.font, 10, 40, 110, PQgetvalue(res, row, 8));
        gcho_pdf_text(&d, d.font, 10, 155, 30, age);
        gcho_pdf_text(&d, PQgetvalue(res, row, 11)[0] ? d.bold : d.font,
                      10, 190, 140, PQgetvalue(res, row, 11)[0]
                                    ? PQgetvalue(res, row, 11) : "-");
        gcho_pdf_text(&d, d.font, 8, 335, 180, PQgetvalue(res, row, 12)[0]
                                               ? PQgetvalue(res, row, 12)
                                               : "-");
        HPDF_Page_SetLineWidth(d.page, 0.8);
        HPDF_Page_Rectangle(d.page, 530, d.y - 2, 10, 10);
        HPDF_Page_Stroke(d.page);
        gcho_pdf_rule(&d);
        d.y -= 18;
    }

    if (sid != NULL && !d.failed) {
        snprintf(total, sizeof(total), "%d enfant%s", count,
                 count > 1 ? "s" : "");
        d.y -= 6;
        gcho_pdf_text(&d, d.bold, 10, 40, 200, total);
    }

    PQclear(res);

    snprintf(name, sizeof(name), "liste-%s.pdf", p[0]);
    return gcho_pdf_reply(rq, &d, name);
}


/* ------------------------------------------------------------------ */
/* the kitchen, the CAF                                                 */

/*
 * GET /api/staff/meals?from=YYYY-MM-DD&to=YYYY-MM-DD&unit=REPAS: per day
 * (at most 62), the confirmed bookings of the unit (the meal; REPAS when
 * not given), by activity, and their allergies.
 */
static int
gcho_day_meals(gcho_req_t *rq)
{
    gch_day_t    a, b;
    const char  *p[3];

    p[0] = gcho_query(rq, "from");
    p[1] = gcho_query(rq, "to");
    p[2] = gcho_query(rq, "unit");
    if (p[2] == NULL) {
        p[2] = "REPAS";
    }

    if (!gcho_day_ok(p[0]) || !gcho_day_ok(p[1])
        || gch_day_parse(&a, p[0], strlen(p[0])) != 0
        || gch_day_parse(&b, p[1], strlen(p[1])) != 0
        || b < a || b - a >= GCHO_DAY_SPAN_MAX)
    {
        return gcho_error(rq, 400, "invalid_field", "Les paramètres from "
                          "et to doivent être des dates AAAA-MM-JJ, to au "
                          "plus 61 jours après from.");
    }

    return gcho_reply_row(rq, 200,
        "select json_build_object('unit', $3::text, 'from', $1::date,"
        "  'to', $2::date, 'days', coalesce(json_agg(json_build_object("
        "    'date', d.dd, 'count', d.n, 'by_activity', d.acts,"
        "    'allergies', d.allergies) order by d.dd), '[]'))"
        " from (select s.date dd, count(*) n,"
        "   (select json_agg(json_build_object('activity_id', x.aid,"
        "      'name', x.name, 'count', x.n) order by x.name)"
        "    from (select a.id aid, a.name, count(*) n from session s2"
        "      join activity a on a.id = s2.activity_id"
        "      join booking b2 on b2.session_id = s2.id"
        "        and b2.status = 'confirmed'"
        "      where s2.date = s.date and s2.unit_code = $3"
        "      group by a.id, a.name) x) acts,"
        "   (select coalesce(json_agg(json_build_object('first_name',"
        "      c.first_name, 'allergies', c.allergies)"
        "      order by c.first_name), '[]')"
        "    from session s3 join booking b3 on b3.session_id = s3.id"
        "      and b3.status = 'confirmed'"
        "    join child c on c.id = b3.child_id"
        "    where s3.date = s.date and s3.unit_code = $3"
        "      and c.allergies is not null) allergies"
        "  from session s join booking b on b.session_id = s.id"
        "    and b.status = 'confirmed'"
        "  where s.date between $1::date and $2::date"
        "    and s.unit_code = $3"
        "  group by s.date) d", 3, p, "");
}


/*
 * GET /api/staff/exports/caf?month=YYYY-MM: text/csv (as the accounting
 * export), one row per child and activity with a booking that month:
 *   famille;enfant;prenom;date_naissance;activite;heures_presence;
 *   heures_reservees;jours_presence
 * hours from the units' times (decimal comma); presence = attendance
 * ticked « présent ».
 */
static int
gcho_day_caf(gcho_req_t *rq)
{
    int          rc;
    char         day[11], disp[96];
    gch_day_t    d;
    PGresult    *res;
    const char  *p[1];

    p[0] = gcho_query(rq, "month");
    if (p[0] == NULL || strlen(p[0]) != 7
        || (snprintf(day, sizeof(day), "%s-01", p[0]),
            gch_day_parse(&d, day, 10) != 0))
    {
        return gcho_error(rq, 400, "invalid_field",
                          "Le paramètre month doit être un mois AAAA-MM.");
    }

    res = gcho_sql(rq,
        "with r as (select c.family_id fam, c.id cid, c.first_name fn,"
        "   c.birth_date bd, a.name act,"
        "   sum(case when t.status = 'present'"
        "       then u.ends_min - u.starts_min else 0 end) pres,"
        "   sum(u.ends_min - u.starts_min) booked,"
        "   count(distinct s.date) filter (where t.status = 'present') days"
        "  from booking b join session s on s.id = b.session_id"
        "  join unit u on u.code = s.unit_code"
        "  join activity a on a.id = s.activity_id"
        "  join child c on c.id = b.child_id"
        "  left join attendance t on t.booking_id = b.id"
        "  where b.status = 'confirmed'"
        "    and s.date >= ($1 || '-01')::date"
        "    and s.date < ($1 || '-01')::date + interval '1 month'"
        "  group by c.family_id, c.id, c.first_name, c.birth_date, a.name)"
        " select 'famille;enfant;prenom;date_naissance;activite;"
        "heures_presence;heures_reservees;jours_presence' || E'\\r\\n'"
        "  || coalesce(string_agg(concat_ws(';',"
        "     '\"' || replace(fam, '\"', '\"\"') || '\"',"
        "     '\"' || replace(cid, '\"', '\"\"') || '\"',"
        "     '\"' || replace(fn, '\"', '\"\"') || '\"',"
        "     to_char(bd, 'YYYY-MM-DD'),"
        "     '\"' || replace(act, '\"', '\"\"') || '\"',"
        "     replace(to_char(pres / 60.0, 'FM9999990.00'), '.', ','),"
        "     replace(to_char(booked / 60.0, 'FM9999990.00'), '.', ','),"
        "     days) || E'\\r\\n', '' order by fam, cid, act), '')"
        " from r", 1, p);
    if (res == NULL) {
        return 0;
    }

    snprintf(disp, sizeof(disp), "attachment; filename=\"guichet-caf-%s"
             ".csv\"", p[0]);
    gcho_add_header(rq, "Content-Disposition", disp);
    rc = gcho_reply_bytes(rq, 200, "text/csv; charset=utf-8",
                          PQgetvalue(res, 0, 0), PQgetlength(res, 0, 0));
    PQclear(res);

    return rc;
}


const gcho_route_t  gcho_daily_routes[] = {
    { "GET", "/api/staff/daily", GCHO_STAFF, GCHO_AGENT, 0, gcho_day_list },
    { "GET", "/api/staff/daily.pdf", GCHO_STAFF, GCHO_AGENT, 0,
      gcho_day_pdf },
    { "GET", "/api/staff/meals", GCHO_STAFF, GCHO_AGENT, 0,
      gcho_day_meals },
    { "GET", "/api/staff/exports/caf", GCHO_STAFF, GCHO_REGIE, 0,
      gcho_day_caf },
    { NULL, NULL, 0, 0, 0, NULL }
};
