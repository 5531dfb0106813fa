/*
 * tredis.c -- see tredis.h.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include "tredis.h"


static void
tb_add(tb_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (b->p == NULL) {
            abort();
        }
    }

    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}


static void
tb_fmt(tb_t *b, const char *fmt, long long v)
{
    char  buf[64];
    int   n;

    n = snprintf(buf, sizeof(buf), fmt, v);
    tb_add(b, buf, (size_t) n);
}


void
tb_init(tb_t *b)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
}


void
tb_arr(tb_t *b, size_t n)
{
    tb_fmt(b, "*%lld\r\n", (long long) n);
}


void
tb_nil(tb_t *b)
{
    tb_add(b, "$-1\r\n", 5);
}


void
tb_int(tb_t *b, long long v)
{
    tb_fmt(b, ":%lld\r\n", v);
}


void
tb_str(tb_t *b, const char *s)
{
    tb_fmt(b, "$%lld\r\n", (long long) strlen(s));
    tb_add(b, s, strlen(s));
    tb_add(b, "\r\n", 2);
}


void
tb_ok(tb_t *b)
{
    tb_add(b, "+OK\r\n", 5);
}


redisReply *
tb_reply(tb_t *b)
{
    redisReply  *r;

    r = treply(b->p, b->len);
    free(b->p);
    tb_init(b);

    return r;
}


redisReply *
treply(const char *resp, size_t len)
{
    void         *r, *more;
    redisReader  *rd;

    r = NULL;
    more = NULL;

    rd = redisReaderCreate();
    if (rd == NULL) {
        return NULL;
    }

    if (redisReaderFeed(rd, resp, len) != REDIS_OK
        || redisReaderGetReply(rd, &r) != REDIS_OK || r == NULL
        || redisReaderGetReply(rd, &more) != REDIS_OK || more != NULL)
    {
        if (r) {
            freeReplyObject(r);
        }
        if (more) {
            freeReplyObject(more);
        }
        redisReaderFree(rd);
        return NULL;
    }

    redisReaderFree(rd);
    return r;
}


redisReply *
tcmd(const gch_cmds_t *l, size_t i)
{
    size_t       j;
    redisReply  *r;

    if (l == NULL || i >= l->ncmds) {
        return NULL;
    }

    r = treply(l->cmds[i].data, l->cmds[i].len);
    if (r == NULL) {
        return NULL;
    }

    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        freeReplyObject(r);
        return NULL;
    }

    for (j = 0; j < r->elements; j++) {
        if (r->element[j]->type != REDIS_REPLY_STRING) {
            freeReplyObject(r);
            return NULL;
        }
    }

    return r;
}


char *
tcmd_line(const gch_cmds_t *l, size_t i)
{
    size_t       j, n;
    char        *p;
    redisReply  *r;

    r = tcmd(l, i);
    if (r == NULL) {
        return strdup("<bad command>");
    }

    n = 1;
    for (j = 0; j < r->elements; j++) {
        n += r->element[j]->len + 1;
    }

    p = malloc(n);
    p[0] = '\0';
    n = 0;

    for (j = 0; j < r->elements; j++) {
        if (j) {
            p[n++] = ' ';
        }
        memcpy(p + n, r->element[j]->str, r->element[j]->len);
        n += r->element[j]->len;
    }

    p[n] = '\0';
    freeReplyObject(r);

    return p;
}


char *
tcmd_arg(const gch_cmds_t *l, size_t i, size_t j)
{
    char        *p;
    redisReply  *r;

    r = tcmd(l, i);
    if (r == NULL || j >= r->elements) {
        if (r) {
            freeReplyObject(r);
        }
        return NULL;
    }

    p = malloc(r->element[j]->len + 1);
    memcpy(p, r->element[j]->str, r->element[j]->len);
    p[r->element[j]->len] = '\0';
    freeReplyObject(r);

    return p;
}


long
tcmds_find(const gch_cmds_t *l, size_t from, const char *prefix)
{
    int     hit;
    char   *s;
    size_t  i;

    if (l == NULL) {
        return -1;
    }

    for (i = from; i < l->ncmds; i++) {
        s = tcmd_line(l, i);
        hit = strncmp(s, prefix, strlen(prefix)) == 0;
        free(s);

        if (hit) {
            return (long) i;
        }
    }

    return -1;
}


size_t
tcmds_count(const gch_cmds_t *l, const char *prefix)
{
    size_t  n;
    long    i;

    n = 0;
    i = -1;

    while ((i = tcmds_find(l, (size_t) (i + 1), prefix)) >= 0) {
        n++;
    }

    return n;
}


int
tcmds_multi_exec(const gch_cmds_t *l)
{
    int          ok;
    char        *s;
    size_t       i;
    redisReply  *r;

    if (l == NULL || l->ncmds < 2) {
        return 0;
    }

    for (i = 0; i < l->ncmds; i++) {
        r = tcmd(l, i);
        if (r == NULL) {
            return 0;
        }
        freeReplyObject(r);
    }

    s = tcmd_line(l, 0);
    ok = strcmp(s, "MULTI") == 0;
    free(s);
    s = tcmd_line(l, l->ncmds - 1);
    ok = ok && strcmp(s, "EXEC") == 0;
    free(s);

    for (i = 1; ok && i + 1 < l->ncmds; i++) {
        s = tcmd_line(l, i);
        ok = strcmp(s, "MULTI") != 0 && strcmp(s, "EXEC") != 0;
        free(s);
    }

    return ok;
}


char *
tcmds_dump(const gch_cmds_t *l)
{
    tb_t    b;
    char   *s;
    size_t  i;

    tb_init(&b);
    tb_add(&b, "", 0);

    for (i = 0; l && i < l->ncmds; i++) {
        s = tcmd_line(l, i);
        tb_add(&b, "\n#   ", 5);
        tb_add(&b, s, strlen(s));
        free(s);
    }

    return b.p;
}


long long
tinstant(const char *s)
{
    int64_t  t;

    if (gch_instant_parse(&t, s, strlen(s)) != GCH_OK) {
        fprintf(stderr, "bad instant literal %s\n", s);
        abort();
    }

    return (long long) t;
}


/*
 * Units cut the day into three elementary intervals: q0 08:30-12:00,
 * q1 12:00-13:30, q2 13:30-17:30; JOURNEE covers all three.  "klub" opens
 * on 2021-06-07 at 18:00 and closes 9 working days before the session
 * (2021-06-24T00:00 for Wednesday 7 July); "semaine" is sold by whole
 * weeks (14 July is a holiday: no cell); "libre" has no deadline and a
 * cancellation deadline of 48 hours.
 */
const char  ttown_json[] =
    "{\"town\":{\"name\":\"Testville\"},"
    "\"units\":["
    "{\"code\":\"MATIN\",\"label\":\"Matin\",\"starts\":\"08:30\","
    "\"ends\":\"12:00\"},"
    "{\"code\":\"REPAS\",\"label\":\"Repas\",\"starts\":\"12:00\","
    "\"ends\":\"13:30\"},"
    "{\"code\":\"APM\",\"label\":\"Apres-midi\",\"starts\":\"13:30\","
    "\"ends\":\"17:30\"},"
    "{\"code\":\"JOURNEE\",\"label\":\"Journee\",\"starts\":\"08:30\","
    "\"ends\":\"17:30\"}],"
    "\"activities\":["
    "{\"id\":\"klub\",\"name\":\"Klub 8-12\",\"age_min\":8,\"age_max\":12,"
    "\"booking_opens_at\":\"2021-06-07T18:00:00+02:00\","
    "\"deadline\":{\"working_days\":9},\"online_share_percent\":50,"
    "\"prices\":[{\"qf_max\":600,\"cents\":300},"
    "{\"qf_max\":null,\"cents\":900}],"
    "\"sessions\":["
    "{\"id\":\"k-m\",\"date\":\"2021-07-07\",\"unit\":\"MATIN\","
    "\"label\":\"Danse\",\"places\":10},"
    "{\"id\":\"k-r\",\"date\":\"2021-07-07\",\"unit\":\"REPAS\","
    "\"places\":10},"
    "{\"id\":\"k-a\",\"date\":\"2021-07-07\",\"unit\":\"APM\","
    "\"places\":10},"
    "{\"id\":\"k-j\",\"date\":\"2021-07-07\",\"unit\":\"JOURNEE\","
    "\"places\":4},"
    "{\"id\":\"k-m8\",\"date\":\"2021-07-08\",\"unit\":\"MATIN\","
    "\"places\":3}]},"
    "{\"id\":\"semaine\",\"name\":\"Semaine\",\"age_min\":3,\"age_max\":12,"
    "\"week_required\":true,"
    "\"prices\":[{\"qf_max\":null,\"cents\":1000}],"
    "\"calendar\":{\"from\":\"2021-07-12\",\"to\":\"2021-07-16\","
    "\"weekdays\":[1,2,3,4,5],\"units\":[\"MATIN\"],\"places\":10}},"
    "{\"id\":\"libre\",\"name\":\"Libre\","
    "\"cancel_deadline\":{\"hours\":48},"
    "\"prices\":[{\"qf_max\":null,\"cents\":500}],"
    "\"sessions\":["
    "{\"id\":\"l-1\",\"date\":\"2021-07-09\",\"unit\":\"APM\","
    "\"places\":2}]}],"
    "\"families\":["
    "{\"id\":\"f-martin\",\"login\":\"martin\",\"password\":\"pw\","
    "\"qf\":500,"
    "\"children\":["
    "{\"id\":\"c-thais\",\"first_name\":\"Thais\","
    "\"birth_date\":\"2011-03-04\"},"
    "{\"id\":\"c-leo\",\"first_name\":\"Leo\",\"birth_date\":\"2018-01-01\"},"
    "{\"id\":\"c-nina\",\"first_name\":\"Nina\","
    "\"birth_date\":\"2011-05-05\"}],"
    "\"enrolments\":["
    "{\"child_id\":\"c-thais\",\"activity_id\":\"klub\","
    "\"from\":\"2021-07-01\",\"to\":\"2021-08-31\",\"status\":\"validee\"},"
    "{\"child_id\":\"c-leo\",\"activity_id\":\"klub\","
    "\"from\":\"2021-07-01\",\"to\":\"2021-08-31\",\"status\":\"validee\"},"
    "{\"child_id\":\"c-thais\",\"activity_id\":\"semaine\","
    "\"from\":\"2021-07-01\",\"to\":\"2021-08-31\",\"status\":\"validee\"},"
    "{\"child_id\":\"c-thais\",\"activity_id\":\"libre\","
    "\"from\":\"2021-07-01\",\"to\":\"2021-08-31\",\"status\":\"validee\"},"
    "{\"child_id\":\"c-nina\",\"activity_id\":\"klub\","
    "\"from\":\"2021-07-01\",\"to\":\"2021-08-31\","
    "\"status\":\"demandee\"}]},"
    "{\"id\":\"f-noqf\",\"qf\":null,"
    "\"children\":[{\"id\":\"c-sam\",\"first_name\":\"Sam\","
    "\"birth_date\":\"2012-01-01\"}],"
    "\"enrolments\":[{\"child_id\":\"c-sam\",\"activity_id\":\"klub\","
    "\"from\":\"2021-07-01\",\"to\":\"2021-08-31\","
    "\"status\":\"validee\"}]},"
    "{\"id\":\"f-other\",\"qf\":100,"
    "\"children\":[{\"id\":\"c-other\",\"first_name\":\"Autre\","
    "\"birth_date\":\"2011-01-01\"}]}]}";


gch_town_t *
ttown(void)
{
    gch_town_t   *t;
    gch_error_t   err;

    if (gch_town_parse(&t, ttown_json, sizeof(ttown_json) - 1,
                       &gch_alloc_std, &err) != GCH_OK)
    {
        fprintf(stderr, "test town refused: %s %s\n", err.code,
                err.message);
        return NULL;
    }

    return t;
}
