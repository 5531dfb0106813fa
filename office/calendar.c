/*
 * calendar.c -- guichet-office: a family's agenda as an iCalendar feed
 * (RFC 5545) that a phone's calendar subscribes to (issue 24).
 *
 *   GET    /api/calendar              family: is there a feed, since when
 *   POST   /api/calendar              family: a new private address (the
 *                                     old one stops answering)
 *   DELETE /api/calendar              family: revoke it
 *   GET    /api/calendar/<token>.ics  anyone holding the address
 *
 * The address carries 32 random bytes (libsodium); only their SHA-256 is
 * stored (calendar_feed, migration 0020), so it is shown once.  The feed
 * lists the family's confirmed bookings persisted in PostgreSQL from 60
 * days ago on, one VEVENT each (UID = the booking id, times in UTC: no
 * VTIMEZONE needed), lines folded at 75 octets and text escaped as RFC
 * 5545 says.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "office.h"


#define GCHO_CAL_BYTES  32


/* GET /api/calendar */
static int
gcho_cal_get(gcho_req_t *rq)
{
    const char  *p[1];

    p[0] = rq->family_id;

    return gcho_reply_row(rq, 200,
        "select json_build_object('active', c.family_id is not null,"
        " 'created_at', c.created_at)"
        " from family f left join calendar_feed c on c.family_id = f.id"
        " where f.id = $1", 1, p, "Famille inconnue.");
}


/* POST /api/calendar: a new address, replacing the old one */
static int
gcho_cal_post(gcho_req_t *rq)
{
    char            tok[sodium_base64_ENCODED_LEN(GCHO_CAL_BYTES,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    char            thash[crypto_hash_sha256_BYTES * 2 + 1];
    char            body[512];
    uint8_t         raw[GCHO_CAL_BYTES], h[crypto_hash_sha256_BYTES];
    const char     *p[2];

    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(tok, sizeof(tok), raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    crypto_hash_sha256(h, (const uint8_t *) tok, strlen(tok));
    sodium_bin2hex(thash, sizeof(thash), h, sizeof(h));
    sodium_memzero(raw, sizeof(raw));

    if (gcho_begin(rq) != 0) {
        return 0;
    }

    p[0] = rq->family_id;
    p[1] = thash;
    if (gcho_sql_do(rq, "insert into calendar_feed (family_id, token_hash)"
                        " values ($1, $2) on conflict (family_id) do update"
                        " set token_hash = excluded.token_hash,"
                        " created_at = now()", 2, p) != 0)
    {
        return 0;
    }

    if (gcho_audit(rq, "calendar.create", rq->family_id, NULL) != 0
        || gcho_commit(rq) != 0)
    {
        gcho_rollback();
        return 0;
    }

    snprintf(body, sizeof(body), "{\"active\":true,"
             "\"path\":\"/api/calendar/%s.ics\"}", tok);
    sodium_memzero(tok, sizeof(tok));

    return gcho_reply(rq, 201, body, strlen(body));
}


/* DELETE /api/calendar */
static int
gcho_cal_delete(gcho_req_t *rq)
{
    int          n;
    const char  *p[1];

    if (gcho_begin(rq) != 0) {
        return 0;
    }

    p[0] = rq->family_id;
    n = gcho_sql_changed(rq, "delete from calendar_feed where family_id = $1",
                         1, p);
    if (n < 0) {
        return 0;
    }

    if (n == 0) {
        gcho_rollback();
        return gcho_error(rq, 404, "not_found",
                          "Vous n'avez pas d'agenda partagé.");
    }

    if (gcho_audit(rq, "calendar.revoke", rq->family_id, NULL) != 0
        || gcho_commit(rq) != 0)
    {
        gcho_rollback();
        return 0;
    }

    return gcho_reply(rq, 204, "", 0);
}


/*
 * Appends one content line: name, ':', value (escaped as TEXT when text
 * is set: backslash, semicolon, comma, newline), CRLF, folded so that no
 * line is longer than 75 octets (a CRLF and a space before the 76th,
 * never inside a UTF-8 character).
 */
static void
gcho_ics_line(gchb_buf_t *b, const char *name, const char *value, int text)
{
    char         line[1024];
    size_t       n, i, w, start;
    const char  *s;

    n = 0;
    for (s = name; *s && n < sizeof(line) - 8; s++) {
        line[n++] = *s;
    }
    line[n++] = ':';

    for (s = value ? value : ""; *s && n < sizeof(line) - 8; s++) {
        if (text && (*s == '\\' || *s == ';' || *s == ',')) {
            line[n++] = '\\';
            line[n++] = *s;

        } else if (text && *s == '\n') {
            line[n++] = '\\';
            line[n++] = 'n';

        } else if ((unsigned char) *s >= 0x20 || *s == '\t') {
            line[n++] = *s;
        }
    }

    /* do not leave a UTF-8 character cut by the size limit */
    while (n > 0 && ((unsigned char) line[n - 1] & 0xC0) == 0x80) {
        n--;
    }
    if (n > 0 && (unsigned char) line[n - 1] >= 0xC0) {
        n--;
    }

    start = 0;
    w = 75;
    for (i = 0; i < n; ) {
        if (i - start >= w) {
            while (i > start && ((unsigned char) line[i] & 0xC0) == 0x80) {
                i--;
            }
            gchb_buf_add(b, line + start, i - start);
            gchb_buf_add(b, "\r\n ", 3);
            start = i;
            w = 74;
            continue;
        }
        i++;
    }
    gchb_buf_add(b, line + start, n - start);
    gchb_buf_add(b, "\r\n", 2);
}


/* GET /api/calendar/<token>.ics */
static int
gcho_cal_feed(gcho_req_t *rq)
{
    int          i, n, rc;
    char         thash[crypto_hash_sha256_BYTES * 2 + 1];
    char         summary[512], desc[512];
    size_t       len;
    uint8_t      h[crypto_hash_sha256_BYTES];
    PGresult    *res;
    gchb_buf_t   b = { 0 };
    const char  *tok, *p[1];

    tok = rq->param[0];
    len = strlen(tok);

    if (len < 5 || strcmp(tok + len - 4, ".ics") != 0) {
        return gcho_error(rq, 404, "not_found", "Agenda inconnu.");
    }

    crypto_hash_sha256(h, (const uint8_t *) tok, len - 4);
    sodium_bin2hex(thash, sizeof(thash), h, sizeof(h));

    p[0] = thash;
    res = gcho_sql(rq,
        "select b.id, c.first_name, a.name, s.label, coalesce(a.site, ''),"
        "  to_char((s.date + make_interval(mins => u.starts_min))"
        "          at time zone 'Europe/Paris' at time zone 'UTC',"
        "          'YYYYMMDD\"T\"HH24MISS\"Z\"'),"
        "  to_char((s.date + make_interval(mins => u.ends_min))"
        "          at time zone 'Europe/Paris' at time zone 'UTC',"
        "          'YYYYMMDD\"T\"HH24MISS\"Z\"'),"
        "  to_char(b.created_at at time zone 'UTC',"
        "          'YYYYMMDD\"T\"HH24MISS\"Z\"'),"
        "  b.price_cents, t.name"
        " from calendar_feed f"
        " join booking b on b.family_id = f.family_id"
        "  and b.status = 'confirmed'"
        " join child c on c.id = b.child_id"
        " join session s on s.id = b.session_id"
        " join activity a on a.id = s.activity_id"
        " join unit u on u.code = s.unit_code"
        " cross join (select coalesce((select name from town limit 1),"
        "   'Guichet') as name) t"
        " where f.token_hash = $1"
        "  and s.date >= (now() at time zone 'Europe/Paris')::date - 60"
        " order by s.date, u.starts_min, c.first_name, b.id", 1, p);
    if (res == NULL) {
        return 0;
    }

    n = PQntuples(res);

    if (n == 0) {
        PQclear(res);
        /* no booking yet, or an unknown (revoked) address */
        p[0] = thash;
        rc = gcho_sql_exists(rq, "select 1 from calendar_feed"
                                 " where token_hash = $1", 1, p);
        if (rc < 0) {
            return 0;
        }
        if (rc == 0) {
            return gcho_error(rq, 404, "not_found", "Agenda inconnu.");
        }
        res = NULL;
    }

    gchb_buf_add(&b, "BEGIN:VCALENDAR\r\n", 17);
    gcho_ics_line(&b, "VERSION", "2.0", 0);
    gcho_ics_line(&b, "PRODID", "-//Guichet//Agenda des reservations//FR",
                  0);
    gcho_ics_line(&b, "CALSCALE", "GREGORIAN", 0);
    gcho_ics_line(&b, "METHOD", "PUBLISH", 0);
    gcho_ics_line(&b, "X-WR-CALNAME", "Réservations (Espace Famille)", 1);
    gcho_ics_line(&b, "X-WR-TIMEZONE", "Europe/Paris", 0);

    for (i = 0; i < n; i++) {
        snprintf(desc, sizeof(desc), "Réservation %s, %d,%02d €.\n%s",
                 PQgetvalue(res, i, 0), atoi(PQgetvalue(res, i, 8)) / 100,
                 atoi(PQgetvalue(res, i, 8)) % 100, PQgetvalue(res, i, 9));

        gchb_buf_add(&b, "BEGIN:VEVENT\r\n", 14);
        snprintf(summary, sizeof(summary), "%s@guichet",
                 PQgetvalue(res, i, 0));
        gcho_ics_line(&b, "UID", summary, 0);
        snprintf(summary, sizeof(summary), "%s — %s (%s)",
                 PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
                 PQgetvalue(res, i, 3));
        gcho_ics_line(&b, "DTSTAMP", PQgetvalue(res, i, 7), 0);
        gcho_ics_line(&b, "DTSTART", PQgetvalue(res, i, 5), 0);
        gcho_ics_line(&b, "DTEND", PQgetvalue(res, i, 6), 0);
        gcho_ics_line(&b, "SUMMARY", summary, 1);
        if (PQgetvalue(res, i, 4)[0]) {
            gcho_ics_line(&b, "LOCATION", PQgetvalue(res, i, 4), 1);
        }
        gcho_ics_line(&b, "DESCRIPTION", desc, 1);
        gcho_ics_line(&b, "STATUS", "CONFIRMED", 0);
        gcho_ics_line(&b, "TRANSP", "OPAQUE", 0);
        gchb_buf_add(&b, "END:VEVENT\r\n", 12);
    }

    gchb_buf_add(&b, "END:VCALENDAR\r\n", 15);

    if (res) {
        PQclear(res);
    }

    if (b.failed) {
        gchb_buf_free(&b);
        return gcho_error(rq, 500, "internal", "Mémoire insuffisante.");
    }

    rc = gcho_reply_bytes(rq, 200, "text/calendar; charset=utf-8", b.data,
                          b.len);
    gchb_buf_free(&b);

    return rc;
}


const gcho_route_t  gcho_calendar_routes[] = {
    { "GET", "/api/calendar", GCHO_FAMILY, 0, 0, gcho_cal_get },
    { "POST", "/api/calendar", GCHO_FAMILY, 0, 0, gcho_cal_post },
    { "DELETE", "/api/calendar", GCHO_FAMILY, 0, 0, gcho_cal_delete },
    { "GET", "/api/calendar/*", GCHO_PUBLIC, 0, 0, gcho_cal_feed },
    { NULL, NULL, 0, 0, 0, NULL }
};
