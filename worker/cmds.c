/*
 * cmds.c -- the engine's command lists (gch_cmds_t: a saga step's MULTI
 * ... EXEC) sent to Redis, alone or pipelined, for the tasks that run
 * the booking saga themselves: the promoter (promote.c, offer.c) and the
 * draw (draw.c).
 */

#include "gchw.h"


/* See gchw.h. */
int
gchw_append_cmds(redisContext *rc, const gch_cmds_t *l)
{
    size_t  i;

    for (i = 0; i < l->ncmds; i++) {
        if (redisAppendFormattedCommand(rc, l->cmds[i].data, l->cmds[i].len)
            != REDIS_OK)
        {
            return -1;
        }
    }

    return 0;
}


/* See gchw.h. */
redisReply *
gchw_read_cmds(redisContext *rc, const gch_cmds_t *l)
{
    size_t       i;
    void        *x;
    redisReply  *last;

    last = NULL;
    for (i = 0; i < l->ncmds; i++) {
        if (redisGetReply(rc, &x) != REDIS_OK) {
            if (last) {
                freeReplyObject(last);
            }
            return NULL;
        }

        if (last) {
            freeReplyObject(last);
        }
        last = x;
    }

    return last;
}


/* See gchw.h. */
redisReply *
gchw_send_cmds(redisContext *rc, const gch_cmds_t *l)
{
    if (gchw_append_cmds(rc, l) != 0) {
        return NULL;
    }

    return gchw_read_cmds(rc, l);
}
