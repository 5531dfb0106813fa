/*
 * tredis.h -- the engine tests' Redis stand-ins: RESP replies built in
 * memory and read back with hiredis's reader (no server), and the
 * engine's planned commands parsed back into argument lists.
 */

#ifndef GCH_TREDIS_H
#define GCH_TREDIS_H

#include <stddef.h>

#include "gch.h"


/* A RESP reply under construction. */
typedef struct {
    char    *p;
    size_t   len;
    size_t   cap;
} tb_t;

void tb_init(tb_t *b);
void tb_arr(tb_t *b, size_t n);
void tb_nil(tb_t *b);
void tb_int(tb_t *b, long long v);
void tb_str(tb_t *b, const char *s);
void tb_ok(tb_t *b);
/* Parses the bytes into one reply (freeReplyObject) and resets b. */
redisReply *tb_reply(tb_t *b);

/* One reply from RESP bytes; NULL if they are not exactly one reply. */
redisReply *treply(const char *resp, size_t len);

/* Command i of l as an array reply of bulk strings (freeReplyObject). */
redisReply *tcmd(const gch_cmds_t *l, size_t i);
/* Command i as its arguments joined by single spaces (malloc). */
char *tcmd_line(const gch_cmds_t *l, size_t i);
/* Argument j of command i (malloc), NULL when absent. */
char *tcmd_arg(const gch_cmds_t *l, size_t i, size_t j);
/* Number of commands whose line starts with prefix. */
size_t tcmds_count(const gch_cmds_t *l, const char *prefix);
/* First command at or after from whose line starts with prefix, or -1. */
long tcmds_find(const gch_cmds_t *l, size_t from, const char *prefix);
/* Every command is a well-formed RESP array, MULTI first, EXEC last. */
int tcmds_multi_exec(const gch_cmds_t *l);
/* All lines, one per line (malloc), for diagnostics. */
char *tcmds_dump(const gch_cmds_t *l);

/* Unix seconds of an RFC 3339 instant (aborts on a bad literal). */
long long tinstant(const char *s);



/* The shared test town (see tredis.c); from gch_alloc_std. */
gch_town_t *ttown(void);
extern const char  ttown_json[];
#endif /* GCH_TREDIS_H */
