/*
 * calendar.c -- civil days, French public holidays, working days,
 * Europe/Paris instants, RFC 3339, ages and booking deadlines.
 *
 * Days are counted from 1970-01-01 in the proleptic Gregorian calendar.
 * Europe/Paris is computed by rule, never through TZ or localtime(): UTC+1,
 * and UTC+2 from the last Sunday of March 01:00 UTC to the last Sunday of
 * October 01:00 UTC (the EU rule, in force since 1996; applied to every
 * year).  Time is always a parameter: nothing here reads a clock.
 */

#include <string.h>

#include "gch.h"


static int64_t
gch_floor_div(int64_t a, int64_t b)
{
    int64_t  q;

    q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) {
        q--;
    }

    return q;
}


static int
gch_is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}


static int
gch_month_days(int y, int m)
{
    static const int  days[12] = { 31, 28, 31, 30, 31, 30,
                                   31, 31, 30, 31, 30, 31 };

    if (m == 2 && gch_is_leap(y)) {
        return 29;
    }

    return days[m - 1];
}


/*
 * Days since 1970-01-01 of y-m-d.  The year is shifted to start in March
 * so that the leap day is the last day of the shifted year; 400-year
 * eras hold 146097 days.
 */
gch_day_t
gch_day_from_ymd(int y, int m, int d)
{
    int64_t  era, yoe, doy, doe, yy;

    yy = (m <= 2) ? (int64_t) y - 1 : y;
    era = gch_floor_div(yy, 400);
    yoe = yy - era * 400;                                   /* 0..399 */
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;  /* 0..365 */
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;            /* 0..146096 */

    return (gch_day_t) (era * 146097 + doe - 719468);
}


/* The inverse of gch_day_from_ymd(). */
void
gch_day_ymd(gch_day_t day, int *y, int *m, int *dd)
{
    int64_t  z, era, doe, yoe, doy, mp, yy;

    z = (int64_t) day + 719468;
    era = gch_floor_div(z, 146097);
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    yy = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;

    *dd = (int) (doy - (153 * mp + 2) / 5 + 1);
    *m = (int) (mp < 10 ? mp + 3 : mp - 9);
    *y = (int) (yy + (*m <= 2));
}


/* 1 = Monday .. 7 = Sunday; 1970-01-01 was a Thursday. */
int
gch_day_weekday(gch_day_t d)
{
    int64_t  w;

    w = ((int64_t) d + 3) % 7;
    if (w < 0) {
        w += 7;
    }

    return (int) w + 1;
}


static int
gch_digits(const char *s, size_t n, int *out)
{
    size_t  i;
    int     v;

    v = 0;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }

        v = v * 10 + (s[i] - '0');
    }

    *out = v;
    return 0;
}


/*
 * "YYYY-MM-DD", exactly 10 bytes, years 1000..9999, a date that exists.
 * s need not be NUL-terminated.  0, or GCH_EINVALID leaving *out alone.
 */
int
gch_day_parse(gch_day_t *out, const char *s, size_t len)
{
    int  y, m, d;

    if (len != 10 || s[4] != '-' || s[7] != '-'
        || gch_digits(s, 4, &y) != 0
        || gch_digits(s + 5, 2, &m) != 0
        || gch_digits(s + 8, 2, &d) != 0)
    {
        return GCH_EINVALID;
    }

    if (y < 1000 || m < 1 || m > 12 || d < 1 || d > gch_month_days(y, m)) {
        return GCH_EINVALID;
    }

    *out = gch_day_from_ymd(y, m, d);
    return GCH_OK;
}


static void
gch_put2(char *p, int v)
{
    p[0] = (char) ('0' + v / 10 % 10);
    p[1] = (char) ('0' + v % 10);
}


static void
gch_put4(char *p, int v)
{
    p[0] = (char) ('0' + v / 1000 % 10);
    p[1] = (char) ('0' + v / 100 % 10);
    p[2] = (char) ('0' + v / 10 % 10);
    p[3] = (char) ('0' + v % 10);
}


/* "YYYY-MM-DD" + NUL into buf (years 0..9999). */
void
gch_day_format(gch_day_t d, char buf[11])
{
    int  y, m, dd;

    gch_day_ymd(d, &y, &m, &dd);

    gch_put4(buf, y);
    buf[4] = '-';
    gch_put2(buf + 5, m);
    buf[7] = '-';
    gch_put2(buf + 8, dd);
    buf[10] = '\0';
}


/* Easter Sunday of year y: the anonymous Gregorian algorithm. */
static gch_day_t
gch_easter(int y)
{
    int  a, b, c, d, e, f, g, h, i, k, l, m, month, day;

    a = y % 19;
    b = y / 100;
    c = y % 100;
    d = b / 4;
    e = b % 4;
    f = (b + 8) / 25;
    g = (b - f + 1) / 3;
    h = (19 * a + b - d - g + 15) % 30;
    i = c / 4;
    k = c % 4;
    l = (32 + 2 * e + 2 * i - h - k) % 7;
    m = (a + 11 * h + 22 * l) / 451;
    month = (h + l - 7 * m + 114) / 31;
    day = (h + l - 7 * m + 114) % 31 + 1;

    return gch_day_from_ymd(y, month, day);
}


/*
 * French public holidays: 1 Jan, Easter Monday, 1 May, 8 May, Ascension
 * (Easter + 39), Whit Monday (Easter + 50), 14 Jul, 15 Aug, 1 Nov, 11 Nov,
 * 25 Dec.  (Alsace-Moselle's extra days are not included.)
 */
int
gch_day_is_holiday(gch_day_t d)
{
    int        y, m, dd, md;
    gch_day_t  easter;

    gch_day_ymd(d, &y, &m, &dd);
    md = m * 100 + dd;

    switch (md) {
    case 101:
    case 501:
    case 508:
    case 714:
    case 815:
    case 1101:
    case 1111:
    case 1225:
        return 1;
    }

    if (m < 3 || m > 6) {
        return 0;
    }

    easter = gch_easter(y);

    return d == easter + 1 || d == easter + 39 || d == easter + 50;
}


/* Monday to Friday and not a public holiday. */
int
gch_day_is_working(gch_day_t d)
{
    return gch_day_weekday(d) <= 5 && !gch_day_is_holiday(d);
}


/* The last Sunday of month m (March or October) of year y. */
static gch_day_t
gch_last_sunday(int y, int m)
{
    gch_day_t  last;

    last = gch_day_from_ymd(y, m, gch_month_days(y, m));

    return last - (gch_day_weekday(last) % 7);
}


/* Is Paris on summer time at Unix instant t? */
static int
gch_paris_dst(int64_t t)
{
    int      y, m, d;
    int64_t  start, end;

    gch_day_ymd((gch_day_t) gch_floor_div(t, 86400), &y, &m, &d);

    if (m < 3 || m > 10) {
        return 0;
    }

    start = (int64_t) gch_last_sunday(y, 3) * 86400 + 3600;
    end = (int64_t) gch_last_sunday(y, 10) * 86400 + 3600;

    return t >= start && t < end;
}


/*
 * The instant of Paris wall-clock time minute_of_day on day d.  In the
 * autumn hour that happens twice the first (summer time) one is chosen;
 * in the spring hour that does not exist the time is read in winter time,
 * i.e. one hour later on the wall clock (02:30 -> 03:30 CEST).
 * minute_of_day may be out of 0..1439 (it then spills into other days).
 */
int64_t
gch_paris_to_unix(gch_day_t d, int minute_of_day)
{
    int64_t  local, t;

    local = (int64_t) d * 86400 + (int64_t) minute_of_day * 60;

    t = local - 7200;
    if (gch_paris_dst(t)) {
        return t;
    }

    return local - 3600;
}


/* Paris civil day, minute of day and UTC offset (60 or 120) of t. */
void
gch_unix_to_paris(int64_t t, gch_day_t *d, int *minute_of_day,
    int *utc_offset_min)
{
    int      off;
    int64_t  local, day;

    off = gch_paris_dst(t) ? 120 : 60;
    local = t + off * 60;
    day = gch_floor_div(local, 86400);

    if (d) {
        *d = (gch_day_t) day;
    }

    if (minute_of_day) {
        *minute_of_day = (int) ((local - day * 86400) / 60);
    }

    if (utc_offset_min) {
        *utc_offset_min = off;
    }
}


/*
 * RFC 3339 date-time with a mandatory offset: "YYYY-MM-DDTHH:MM:SS",
 * optional fraction (ignored: instants are whole seconds, truncated
 * towards the past), then "Z" or "+HH:MM"/"-HH:MM".  "T"/"Z" may be lower
 * case as RFC 3339 allows.  Leap seconds (":60") are refused.
 */
int
gch_instant_parse(int64_t *out, const char *s, size_t len)
{
    int        hh, mi, ss, oh, om, sign;
    size_t     i;
    int64_t    t;
    gch_day_t  d;

    if (len < 20 || gch_day_parse(&d, s, 10) != GCH_OK) {
        return GCH_EINVALID;
    }

    if ((s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':'
        || gch_digits(s + 11, 2, &hh) != 0
        || gch_digits(s + 14, 2, &mi) != 0
        || gch_digits(s + 17, 2, &ss) != 0
        || hh > 23 || mi > 59 || ss > 59)
    {
        return GCH_EINVALID;
    }

    i = 19;

    if (s[i] == '.') {
        i++;
        if (i == len || s[i] < '0' || s[i] > '9') {
            return GCH_EINVALID;
        }

        while (i < len && s[i] >= '0' && s[i] <= '9') {
            i++;
        }
    }

    if (i == len) {
        return GCH_EINVALID;
    }

    if (s[i] == 'Z' || s[i] == 'z') {
        if (i + 1 != len) {
            return GCH_EINVALID;
        }

        sign = 0;
        oh = 0;
        om = 0;

    } else if (s[i] == '+' || s[i] == '-') {
        if (len - i != 6 || s[i + 3] != ':'
            || gch_digits(s + i + 1, 2, &oh) != 0
            || gch_digits(s + i + 4, 2, &om) != 0
            || oh > 23 || om > 59)
        {
            return GCH_EINVALID;
        }

        sign = (s[i] == '+') ? 1 : -1;

    } else {
        return GCH_EINVALID;
    }

    t = (int64_t) d * 86400 + hh * 3600 + mi * 60 + ss;
    t -= sign * (oh * 3600 + om * 60);

    *out = t;
    return GCH_OK;
}


/* "YYYY-MM-DDTHH:MM:SS+0H:00" in Paris time + NUL (26 bytes). */
void
gch_instant_format(int64_t t, char buf[26])
{
    int        minute, off;
    int64_t    local;
    gch_day_t  d;

    gch_unix_to_paris(t, &d, &minute, &off);
    local = t + off * 60;

    gch_day_format(d, buf);
    buf[10] = 'T';
    gch_put2(buf + 11, minute / 60);
    buf[13] = ':';
    gch_put2(buf + 14, minute % 60);
    buf[16] = ':';
    gch_put2(buf + 17, (int) (local - gch_floor_div(local, 60) * 60));
    buf[19] = '+';
    gch_put2(buf + 20, off / 60);
    buf[22] = ':';
    gch_put2(buf + 23, off % 60);
    buf[25] = '\0';
}


/*
 * Whole years on day d of a child born on day birth (0 before the first
 * birthday; negative when d is before birth).  Someone born on 29 February
 * turns a year older on 1 March in common years.
 */
int
gch_age_on(gch_day_t birth, gch_day_t d)
{
    int  by, bm, bd, y, m, dd, age;

    gch_day_ymd(birth, &by, &bm, &bd);
    gch_day_ymd(d, &y, &m, &dd);

    age = y - by;

    if (m * 100 + dd < bm * 100 + bd) {
        age--;
    }

    return age;
}


/*
 * The booking and cancellation deadline of a cell on day d whose unit
 * starts at minute starts_min (Paris).  The result is exclusive: the cell
 * can be booked while now < result.
 *
 * - GCH_DEADLINE_WORKING_DAYS n: count n working days back from the day
 *   before d (weekends and public holidays are skipped, not counted); the
 *   window closes at 00:00 Paris at the start of the nth one.  Example
 *   (engine/tests): n = 9, Tuesday 25 May 2021 (the day after Whit Monday):
 *   Mon 24 (holiday) is skipped, then Fri 21, Thu 20, Wed 19, Tue 18,
 *   Mon 17, Fri 14, (Thu 13 Ascension skipped), Wed 12, Tue 11, Mon 10:
 *   closes at 2021-05-10T00:00:00+02:00; the last instant to book is
 *   Sunday 9 May 2021 at 23:59:59.  n = 0 closes at 00:00 on d itself.
 * - GCH_DEADLINE_HOURS n: n hours before the unit starts.
 * - GCH_DEADLINE_DAY_BEFORE_AT n: the day before d at minute n, Paris.
 * - GCH_DEADLINE_NONE: when the unit starts.
 */
int64_t
gch_deadline_instant(const gch_deadline_t *dl, gch_day_t d, int starts_min)
{
    int        k;
    gch_day_t  day;

    switch (dl->kind) {

    case GCH_DEADLINE_WORKING_DAYS:
        day = d;

        for (k = 0; k < dl->n; /* void */) {
            day--;
            if (gch_day_is_working(day)) {
                k++;
            }
        }

        return gch_paris_to_unix(day, 0);

    case GCH_DEADLINE_HOURS:
        return gch_paris_to_unix(d, starts_min) - (int64_t) dl->n * 3600;

    case GCH_DEADLINE_DAY_BEFORE_AT:
        return gch_paris_to_unix(d - 1, dl->n);

    default:
        return gch_paris_to_unix(d, starts_min);
    }
}
