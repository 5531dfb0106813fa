/*
 * test_calendar.c -- table-driven cases for calendar.c: civil days, leap
 * years, French public holidays, working days, Europe/Paris DST, RFC 3339,
 * ages and deadlines (including the 9-working-days example of the issue).
 */

#include <stdio.h>
#include <string.h>

#include "tap.h"


static gch_day_t
D(const char *s)
{
    gch_day_t  d = 0;

    gch_day_parse(&d, s, strlen(s));
    return d;
}


static void
test_days(void)
{
    int        y, m, dd, bad;
    char       buf[11];
    gch_day_t  d, e;
    size_t     i;

    static const struct {
        const char  *s;
        int          ok;
        int          weekday;
    } cases[] = {
        { "1970-01-01", 1, 4 },
        { "2021-03-28", 1, 7 },
        { "2021-10-31", 1, 7 },
        { "2021-05-25", 1, 2 },
        { "2000-02-29", 1, 2 },          /* leap: divisible by 400 */
        { "2024-02-29", 1, 4 },
        { "2400-02-29", 1, 2 },
        { "1900-02-29", 0, 0 },          /* not leap: divisible by 100 */
        { "2100-02-29", 0, 0 },
        { "2023-02-29", 0, 0 },
        { "2021-04-31", 0, 0 },
        { "2021-13-01", 0, 0 },
        { "2021-00-10", 0, 0 },
        { "2021-1-01", 0, 0 },
        { "2021-01-01 ", 0, 0 },
        { "2021/01/01", 0, 0 },
        { "0999-01-01", 0, 0 },
        { "2021-12-31", 1, 5 },
        { "2022-01-01", 1, 6 },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int  rc = gch_day_parse(&d, cases[i].s, strlen(cases[i].s));

        if (!cases[i].ok) {
            tap_ok(rc == GCH_EINVALID, "day_parse refuses \"%s\"",
                   cases[i].s);
            continue;
        }

        gch_day_format(d, buf);
        tap_ok(rc == 0 && strcmp(buf, cases[i].s) == 0
               && gch_day_weekday(d) == cases[i].weekday,
               "day %s: round trip, weekday %d", cases[i].s,
               cases[i].weekday);
    }

    tap_ok(D("1970-01-01") == 0 && D("1969-12-31") == -1
           && D("2021-01-01") == 18628, "day numbers from the epoch");

    /* year boundary */
    gch_day_format(D("2021-12-31") + 1, buf);
    tap_ok(strcmp(buf, "2022-01-01") == 0, "2021-12-31 + 1 = 2022-01-01");
    gch_day_format(D("2024-02-28") + 1, buf);
    tap_ok(strcmp(buf, "2024-02-29") == 0, "2024-02-28 + 1 = 2024-02-29");
    gch_day_format(D("2023-02-28") + 1, buf);
    tap_ok(strcmp(buf, "2023-03-01") == 0, "2023-02-28 + 1 = 2023-03-01");

    /* every day of 1600..2400 and a bit before 1970 round-trips */
    bad = 0;
    for (d = gch_day_from_ymd(1600, 1, 1); d < gch_day_from_ymd(2401, 1, 1);
         d++)
    {
        gch_day_ymd(d, &y, &m, &dd);
        e = gch_day_from_ymd(y, m, dd);
        if (e != d || gch_day_weekday(d + 1) % 7 != (gch_day_weekday(d) + 1)
                                                    % 7)
        {
            bad++;
        }
    }

    tap_ok(bad == 0, "ymd <-> day and weekdays agree over 1600..2400");
}


static void
test_holidays(void)
{
    size_t  i;

    static const struct {
        const char  *day;
        int          holiday;
        int          working;
        const char  *what;
    } cases[] = {
        { "2021-01-01", 1, 0, "Jour de l'an" },
        { "2021-04-04", 0, 0, "Easter Sunday 2021 (not listed, Sunday)" },
        { "2021-04-05", 1, 0, "Easter Monday 2021" },
        { "2021-05-01", 1, 0, "1 May" },
        { "2021-05-08", 1, 0, "8 May" },
        { "2021-05-13", 1, 0, "Ascension 2021" },
        { "2021-05-23", 0, 0, "Pentecost Sunday 2021" },
        { "2021-05-24", 1, 0, "Whit Monday 2021" },
        { "2021-05-25", 0, 1, "Tuesday after Whit Monday" },
        { "2021-07-13", 0, 1, "13 July 2021" },
        { "2021-07-14", 1, 0, "14 July 2021" },
        { "2021-08-15", 1, 0, "15 August" },
        { "2021-11-01", 1, 0, "Toussaint" },
        { "2021-11-11", 1, 0, "Armistice" },
        { "2021-12-25", 1, 0, "Noel" },
        { "2021-12-24", 0, 1, "24 December 2021 (Friday)" },
        { "2021-05-22", 0, 0, "Saturday" },
        { "2019-04-22", 1, 0, "Easter Monday 2019" },
        { "2019-05-30", 1, 0, "Ascension 2019" },
        { "2019-06-10", 1, 0, "Whit Monday 2019" },
        { "2008-03-24", 1, 0, "Easter Monday 2008 (early Easter)" },
        { "2008-05-01", 1, 0, "Ascension 2008 = 1 May" },
        { "2008-05-12", 1, 0, "Whit Monday 2008" },
        { "2024-04-01", 1, 0, "Easter Monday 2024" },
        { "2024-05-09", 1, 0, "Ascension 2024" },
        { "2024-05-20", 1, 0, "Whit Monday 2024" },
        { "2038-04-26", 1, 0, "Easter Monday 2038 (late Easter)" },
        { "2038-06-14", 1, 0, "Whit Monday 2038" },
        { "2285-03-23", 1, 0, "Easter Monday 2285 (Easter on 22 March)" },
        { "2022-07-14", 1, 0, "14 July 2022" },
        { "2022-07-15", 0, 1, "15 July 2022" },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        gch_day_t  d = D(cases[i].day);

        tap_ok(gch_day_is_holiday(d) == cases[i].holiday
               && gch_day_is_working(d) == cases[i].working,
               "%s %s: holiday %d working %d", cases[i].day, cases[i].what,
               cases[i].holiday, cases[i].working);
    }
}


static void
test_paris(void)
{
    int        minute, off;
    char       buf[26];
    size_t     i;
    int64_t    t;
    gch_day_t  d;

    static const struct {
        const char  *day;
        int          minute;
        int64_t      ut;
        const char  *what;
    } local[] = {
        { "2021-03-28", 60, 1616889600, "01:00 CET before the change" },
        { "2021-03-28", 179, 1616896740,
          "02:59 does not exist: read as CET (= 03:59 CEST)" },
        { "2021-03-28", 150, 1616895000, "02:30 -> 03:30 CEST" },
        { "2021-03-28", 180, 1616893200, "03:00 CEST, first summer minute" },
        { "2021-10-31", 150, 1635640200, "02:30 twice: the CEST one" },
        { "2021-10-31", 180, 1635645600, "03:00 CET" },
        { "2021-10-31", 119, 1635638340, "01:59 CEST" },
        { "2021-06-07", 1080, 1623081600, "2021-06-07 18:00 CEST" },
        { "2021-12-25", 600, 1640422800, "2021-12-25 10:00 CET" },
        { "2022-01-01", 30, 1640993400, "2022-01-01 00:30 CET" },
    };

    static const struct {
        int64_t      ut;
        const char  *text;
    } fmt[] = {
        { 1616893199, "2021-03-28T01:59:59+01:00" },
        { 1616893200, "2021-03-28T03:00:00+02:00" },
        { 1635641999, "2021-10-31T02:59:59+02:00" },
        { 1635642000, "2021-10-31T02:00:00+01:00" },
        { 1623081600, "2021-06-07T18:00:00+02:00" },
        { 1640993400, "2022-01-01T00:30:00+01:00" },
        { 1640991599, "2021-12-31T23:59:59+01:00" },
        { 0, "1970-01-01T01:00:00+01:00" },
        { 951782400 + 3600 * 23, "2000-03-01T00:00:00+01:00" },
    };

    for (i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
        t = gch_paris_to_unix(D(local[i].day), local[i].minute);
        tap_ok(t == local[i].ut, "paris_to_unix %s %02d:%02d, %s = %lld "
               "(got %lld)", local[i].day, local[i].minute / 60,
               local[i].minute % 60, local[i].what,
               (long long) local[i].ut, (long long) t);
    }

    for (i = 0; i < sizeof(fmt) / sizeof(fmt[0]); i++) {
        gch_instant_format(fmt[i].ut, buf);
        tap_ok(strcmp(buf, fmt[i].text) == 0, "instant_format %lld = %s "
               "(got %s)", (long long) fmt[i].ut, fmt[i].text, buf);
    }

    gch_unix_to_paris(1635642000, &d, &minute, &off);
    gch_day_format(d, buf);
    tap_ok(strcmp(buf, "2021-10-31") == 0 && minute == 120 && off == 60,
           "unix_to_paris at the autumn change: 02:00 +01:00");
}


static void
test_rfc3339(void)
{
    size_t   i;
    int64_t  t;

    static const struct {
        const char  *s;
        int          ok;
        int64_t      ut;
    } cases[] = {
        { "2021-06-07T18:00:00+02:00", 1, 1623081600 },
        { "2021-06-07T16:00:00Z", 1, 1623081600 },
        { "2021-06-07t16:00:00z", 1, 1623081600 },
        { "2021-06-07T16:00:00.999Z", 1, 1623081600 },
        { "2021-06-07T11:30:00-04:30", 1, 1623081600 },
        { "2021-06-07T18:00:00", 0, 0 },
        { "2021-06-07 18:00:00+02:00", 0, 0 },
        { "2021-06-07T24:00:00+02:00", 0, 0 },
        { "2021-06-07T18:00:60+02:00", 0, 0 },
        { "2021-06-07T18:00:00+2:00", 0, 0 },
        { "2021-06-07T18:00:00+02:00 ", 0, 0 },
        { "2021-06-07T18:00:00.+02:00", 0, 0 },
        { "2021-02-29T18:00:00Z", 0, 0 },
        { "", 0, 0 },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int  rc = gch_instant_parse(&t, cases[i].s, strlen(cases[i].s));

        tap_ok(cases[i].ok ? rc == 0 && t == cases[i].ut
                           : rc == GCH_EINVALID,
               "instant_parse \"%s\" %s", cases[i].s,
               cases[i].ok ? "accepted" : "refused");
    }
}


static void
test_age(void)
{
    size_t  i;

    static const struct {
        const char  *birth;
        const char  *on;
        int          age;
    } cases[] = {
        { "2011-03-04", "2021-03-03", 9 },
        { "2011-03-04", "2021-03-04", 10 },
        { "2011-03-04", "2021-07-07", 10 },
        { "2012-02-29", "2021-02-28", 8 },
        { "2012-02-29", "2021-03-01", 9 },
        { "2012-02-29", "2024-02-29", 12 },
        { "2015-12-31", "2016-01-01", 0 },
        { "2015-12-31", "2021-12-31", 6 },
        { "2021-01-01", "2020-12-31", -1 },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int  age = gch_age_on(D(cases[i].birth), D(cases[i].on));

        tap_ok(age == cases[i].age, "age of a child born %s on %s is %d "
               "(got %d)", cases[i].birth, cases[i].on, cases[i].age, age);
    }
}


static void
test_deadlines(void)
{
    char     buf[26];
    size_t   i;
    int64_t  t;

    static const struct {
        gch_deadline_kind_t  kind;
        int                  n;
        const char          *day;
        int                  starts;
        const char          *closes;
        const char          *what;
    } cases[] = {
        /* the example: see gch_deadline_instant() */
        { GCH_DEADLINE_WORKING_DAYS, 9, "2021-05-25", 510,
          "2021-05-10T00:00:00+02:00",
          "9 working days before Tue 25 May 2021 (after Whit Monday, "
          "Ascension in between): last instant Sun 9 May 23:59:59" },
        { GCH_DEADLINE_WORKING_DAYS, 1, "2021-05-25", 510,
          "2021-05-21T00:00:00+02:00", "1 working day, Whit Monday skipped" },
        { GCH_DEADLINE_WORKING_DAYS, 1, "2021-03-29", 510,
          "2021-03-26T00:00:00+01:00", "1 working day across the DST "
          "weekend" },
        { GCH_DEADLINE_WORKING_DAYS, 2, "2021-11-02", 510,
          "2021-10-28T00:00:00+02:00", "2 working days across Toussaint and "
          "the autumn change" },
        { GCH_DEADLINE_WORKING_DAYS, 0, "2021-07-07", 510,
          "2021-07-07T00:00:00+02:00", "0 working days: the day itself" },
        { GCH_DEADLINE_WORKING_DAYS, 3, "2022-01-03", 510,
          "2021-12-29T00:00:00+01:00", "3 working days across New Year" },
        { GCH_DEADLINE_HOURS, 72, "2021-07-07", 510,
          "2021-07-04T08:30:00+02:00", "72 hours before 08:30" },
        { GCH_DEADLINE_HOURS, 24, "2021-03-28", 600,
          "2021-03-27T09:00:00+01:00", "24 real hours across the spring "
          "change" },
        { GCH_DEADLINE_DAY_BEFORE_AT, 540, "2021-03-29", 510,
          "2021-03-28T09:00:00+02:00", "la veille a 9 h, after the change" },
        { GCH_DEADLINE_DAY_BEFORE_AT, 540, "2022-01-01", 510,
          "2021-12-31T09:00:00+01:00", "la veille a 9 h across the year" },
        { GCH_DEADLINE_NONE, 0, "2021-07-07", 510,
          "2021-07-07T08:30:00+02:00", "no deadline: when the unit starts" },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        gch_deadline_t  dl = { cases[i].kind, cases[i].n };

        t = gch_deadline_instant(&dl, D(cases[i].day), cases[i].starts);
        gch_instant_format(t, buf);
        tap_ok(strcmp(buf, cases[i].closes) == 0, "deadline %s: %s closes "
               "at %s (got %s)", cases[i].what, cases[i].day,
               cases[i].closes, buf);
    }

    /* the example, in seconds: bookable at 23:59:59, not at 00:00:00 */
    {
        gch_deadline_t  dl = { GCH_DEADLINE_WORKING_DAYS, 9 };
        int64_t         last;

        gch_instant_parse(&last, "2021-05-09T23:59:59+02:00", 25);
        t = gch_deadline_instant(&dl, D("2021-05-25"), 510);
        tap_ok(last < t && last + 1 == t, "9 working days: "
               "2021-05-09T23:59:59+02:00 is the last bookable second");
    }
}


void
test_calendar(void)
{
    test_days();
    test_holidays();
    test_paris();
    test_rfc3339();
    test_age();
    test_deadlines();
}
