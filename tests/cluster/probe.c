/*
 * probe.c -- a test driver of the back-end programs' Redis connection
 * (gchb_redis_connect, backend/cluster.c in cluster mode).
 *
 *   build/cluster-probe -c FILE
 *
 * Reads stdin line by line.  A line holds one or more commands separated
 * by " ; ", arguments by single spaces; they are appended to the
 * connection as one pipeline, then every reply is read and printed on its
 * own line as JSON: {"status":"OK"}, {"error":"MOVED ..."}, {"int":3},
 * {"str":"..."}, {"nil":true}, [ ... ] for arrays; a lost connection
 * prints {"io":"message"} and the probe reconnects for the next line.
 * Used by tests/integration/test_cluster_backend.py.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gchb.h"


static void
probe_str(const char *s, size_t n)
{
    size_t  i;

    putchar('"');
    for (i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\') {
            printf("\\%c", s[i]);
        } else if ((unsigned char) s[i] < 0x20) {
            printf("\\u%04x", (unsigned char) s[i]);
        } else {
            putchar(s[i]);
        }
    }
    putchar('"');
}


static void
probe_reply(const redisReply *r)
{
    size_t  i;

    switch (r->type) {
    case REDIS_REPLY_STATUS:
        printf("{\"status\":");
        probe_str(r->str, r->len);
        putchar('}');
        break;
    case REDIS_REPLY_ERROR:
        printf("{\"error\":");
        probe_str(r->str, r->len);
        putchar('}');
        break;
    case REDIS_REPLY_INTEGER:
        printf("{\"int\":%lld}", r->integer);
        break;
    case REDIS_REPLY_STRING:
        printf("{\"str\":");
        probe_str(r->str, r->len);
        putchar('}');
        break;
    case REDIS_REPLY_ARRAY:
        putchar('[');
        for (i = 0; i < r->elements; i++) {
            if (i) {
                putchar(',');
            }
            probe_reply(r->element[i]);
        }
        putchar(']');
        break;
    default:
        printf("{\"nil\":true}");
    }
}


int
main(int argc, char **argv)
{
    int            n, k, na;
    char           line[65536], *cmd, *save, *arg, *save2;
    const char    *args[64];
    void          *r;
    gchb_conf_t    conf;
    redisContext  *rc;

    if (argc != 3 || strcmp(argv[1], "-c") != 0) {
        fprintf(stderr, "usage: cluster-probe -c FILE\n");
        return 2;
    }

    gchb_log_init("cluster-probe");
    if (gchb_conf_load(&conf, argv[2]) != 0) {
        return 2;
    }

    rc = NULL;

    while (fgets(line, sizeof(line), stdin) != NULL) {
        line[strcspn(line, "\n")] = '\0';

        if (rc == NULL) {
            rc = gchb_redis_connect(&conf);
            if (rc == NULL) {
                printf("{\"io\":\"cannot connect\"}\n");
                fflush(stdout);
                continue;
            }
        }

        n = 0;
        for (cmd = strtok_r(line, ";", &save); cmd != NULL;
             cmd = strtok_r(NULL, ";", &save))
        {
            na = 0;
            for (arg = strtok_r(cmd, " ", &save2); arg && na < 64;
                 arg = strtok_r(NULL, " ", &save2))
            {
                args[na++] = arg;
            }
            if (na > 0) {
                redisAppendCommandArgv(rc, na, args, NULL);
                n++;
            }
        }

        for (k = 0; k < n; k++) {
            if (redisGetReply(rc, &r) != REDIS_OK || r == NULL) {
                printf("{\"io\":");
                probe_str(rc->errstr, strlen(rc->errstr));
                printf("}\n");
                redisFree(rc);
                rc = NULL;
                break;
            }
            probe_reply(r);
            putchar('\n');
            freeReplyObject(r);
        }

        fflush(stdout);
    }

    if (rc != NULL) {
        redisFree(rc);
    }
    gchb_conf_free(&conf);

    return 0;
}
