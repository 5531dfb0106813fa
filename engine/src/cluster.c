/*
 * cluster.c -- Redis Cluster routing, sans I/O (see gch_cluster.h): the
 * slot of a key and of a command, and the redirections.
 *
 * Key slots (CRC16-XMODEM of the hash tag), the slot of a command from a
 * table of where each command keeps its keys (as arguments, as one RESP
 * command read with cluster_resp.c's cursor, or a whole plan), and
 * -MOVED / -ASK.  The slot map is cluster_map.c.
 */

#include <string.h>
#include <strings.h>

#include "gch_cluster.h"
#include "cluster.h"


/* ------------------------------------------------------------------ */
/* CRC16 and key slots                                                 */

static const uint16_t  gch_crc16tab[256] = {
    0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50a5, 0x60c6, 0x70e7,
    0x8108, 0x9129, 0xa14a, 0xb16b, 0xc18c, 0xd1ad, 0xe1ce, 0xf1ef,
    0x1231, 0x0210, 0x3273, 0x2252, 0x52b5, 0x4294, 0x72f7, 0x62d6,
    0x9339, 0x8318, 0xb37b, 0xa35a, 0xd3bd, 0xc39c, 0xf3ff, 0xe3de,
    0x2462, 0x3443, 0x0420, 0x1401, 0x64e6, 0x74c7, 0x44a4, 0x5485,
    0xa56a, 0xb54b, 0x8528, 0x9509, 0xe5ee, 0xf5cf, 0xc5ac, 0xd58d,
    0x3653, 0x2672, 0x1611, 0x0630, 0x76d7, 0x66f6, 0x5695, 0x46b4,
    0xb75b, 0xa77a, 0x9719, 0x8738, 0xf7df, 0xe7fe, 0xd79d, 0xc7bc,
    0x48c4, 0x58e5, 0x6886, 0x78a7, 0x0840, 0x1861, 0x2802, 0x3823,
    0xc9cc, 0xd9ed, 0xe98e, 0xf9af, 0x8948, 0x9969, 0xa90a, 0xb92b,
    0x5af5, 0x4ad4, 0x7ab7, 0x6a96, 0x1a71, 0x0a50, 0x3a33, 0x2a12,
    0xdbfd, 0xcbdc, 0xfbbf, 0xeb9e, 0x9b79, 0x8b58, 0xbb3b, 0xab1a,
    0x6ca6, 0x7c87, 0x4ce4, 0x5cc5, 0x2c22, 0x3c03, 0x0c60, 0x1c41,
    0xedae, 0xfd8f, 0xcdec, 0xddcd, 0xad2a, 0xbd0b, 0x8d68, 0x9d49,
    0x7e97, 0x6eb6, 0x5ed5, 0x4ef4, 0x3e13, 0x2e32, 0x1e51, 0x0e70,
    0xff9f, 0xefbe, 0xdfdd, 0xcffc, 0xbf1b, 0xaf3a, 0x9f59, 0x8f78,
    0x9188, 0x81a9, 0xb1ca, 0xa1eb, 0xd10c, 0xc12d, 0xf14e, 0xe16f,
    0x1080, 0x00a1, 0x30c2, 0x20e3, 0x5004, 0x4025, 0x7046, 0x6067,
    0x83b9, 0x9398, 0xa3fb, 0xb3da, 0xc33d, 0xd31c, 0xe37f, 0xf35e,
    0x02b1, 0x1290, 0x22f3, 0x32d2, 0x4235, 0x5214, 0x6277, 0x7256,
    0xb5ea, 0xa5cb, 0x95a8, 0x8589, 0xf56e, 0xe54f, 0xd52c, 0xc50d,
    0x34e2, 0x24c3, 0x14a0, 0x0481, 0x7466, 0x6447, 0x5424, 0x4405,
    0xa7db, 0xb7fa, 0x8799, 0x97b8, 0xe75f, 0xf77e, 0xc71d, 0xd73c,
    0x26d3, 0x36f2, 0x0691, 0x16b0, 0x6657, 0x7676, 0x4615, 0x5634,
    0xd94c, 0xc96d, 0xf90e, 0xe92f, 0x99c8, 0x89e9, 0xb98a, 0xa9ab,
    0x5844, 0x4865, 0x7806, 0x6827, 0x18c0, 0x08e1, 0x3882, 0x28a3,
    0xcb7d, 0xdb5c, 0xeb3f, 0xfb1e, 0x8bf9, 0x9bd8, 0xabbb, 0xbb9a,
    0x4a75, 0x5a54, 0x6a37, 0x7a16, 0x0af1, 0x1ad0, 0x2ab3, 0x3a92,
    0xfd2e, 0xed0f, 0xdd6c, 0xcd4d, 0xbdaa, 0xad8b, 0x9de8, 0x8dc9,
    0x7c26, 0x6c07, 0x5c64, 0x4c45, 0x3ca2, 0x2c83, 0x1ce0, 0x0cc1,
    0xef1f, 0xff3e, 0xcf5d, 0xdf7c, 0xaf9b, 0xbfba, 0x8fd9, 0x9ff8,
    0x6e17, 0x7e36, 0x4e55, 0x5e74, 0x2e93, 0x3eb2, 0x0ed1, 0x1ef0
};


uint16_t
gch_cluster_crc16(const void *buf, size_t len)
{
    size_t          i;
    uint16_t        crc;
    const uint8_t  *p;

    p = buf;
    crc = 0;

    for (i = 0; i < len; i++) {
        crc = (uint16_t) ((crc << 8) ^ gch_crc16tab[((crc >> 8) ^ p[i])
                                                     & 0xff]);
    }

    return crc;
}


int
gch_cluster_key_slot(const void *key, size_t len)
{
    size_t       s, e;
    const char  *k;

    k = key;

    for (s = 0; s < len; s++) {
        if (k[s] == '{') {
            break;
        }
    }

    if (s < len) {
        for (e = s + 1; e < len; e++) {
            if (k[e] == '}') {
                break;
            }
        }

        if (e < len && e != s + 1) {
            return gch_cluster_crc16(k + s + 1, e - s - 1) & 16383;
        }
    }

    return gch_cluster_crc16(k, len) & 16383;
}


int
gch_cluster_slot_join(int a, int b)
{
    if (a == GCH_CLUSTER_NOKEY) {
        return b;
    }

    if (b == GCH_CLUSTER_NOKEY) {
        return a;
    }

    if (a < GCH_CLUSTER_CROSS || b < GCH_CLUSTER_CROSS) {
        return (a < b) ? a : b;         /* UNKNOWN, BADCMD: the worst  */
    }

    if (a == GCH_CLUSTER_CROSS || b == GCH_CLUSTER_CROSS || a != b) {
        return GCH_CLUSTER_CROSS;
    }

    return a;
}


/* ------------------------------------------------------------------ */
/* where commands keep their keys                                      */

/*
 * first: index of the first key (0: no key); last: of the last key (-1:
 * the last argument, -2: the one before); step between keys.  Special
 * layouts have their own kind.
 */
enum {
    GCH_KS_RANGE = 0,       /* first, last, step                        */
    GCH_KS_NUMKEYS,         /* numkeys at first, keys after it          */
    GCH_KS_DEST_NUMKEYS,    /* a key at 1, numkeys at 2, keys after it  */
    GCH_KS_STREAMS,         /* keys after STREAMS: half of what follows */
    GCH_KS_SUB2,            /* a subcommand, then a key at 2            */
    GCH_KS_NUMKEYS_AT2      /* timeout at 1, numkeys at 2 (BLMPOP)      */
};

typedef struct {
    const char  *name;
    signed char  kind;
    signed char  first;
    signed char  last;
    signed char  step;
} gch_keyspec_t;

/* Sorted by name (binary search, case-insensitive). */
static const gch_keyspec_t  gch_keyspecs[] = {
    { "APPEND", GCH_KS_RANGE, 1, 1, 1 },
    { "ASKING", GCH_KS_RANGE, 0, 0, 0 },
    { "AUTH", GCH_KS_RANGE, 0, 0, 0 },
    { "BITCOUNT", GCH_KS_RANGE, 1, 1, 1 },
    { "BITFIELD", GCH_KS_RANGE, 1, 1, 1 },
    { "BITFIELD_RO", GCH_KS_RANGE, 1, 1, 1 },
    { "BITOP", GCH_KS_RANGE, 2, -1, 1 },
    { "BITPOS", GCH_KS_RANGE, 1, 1, 1 },
    { "BLMOVE", GCH_KS_RANGE, 1, 2, 1 },
    { "BLMPOP", GCH_KS_NUMKEYS_AT2, 2, 0, 0 },
    { "BLPOP", GCH_KS_RANGE, 1, -2, 1 },
    { "BRPOP", GCH_KS_RANGE, 1, -2, 1 },
    { "BRPOPLPUSH", GCH_KS_RANGE, 1, 2, 1 },
    { "BZMPOP", GCH_KS_NUMKEYS_AT2, 2, 0, 0 },
    { "BZPOPMAX", GCH_KS_RANGE, 1, -2, 1 },
    { "BZPOPMIN", GCH_KS_RANGE, 1, -2, 1 },
    { "CLIENT", GCH_KS_RANGE, 0, 0, 0 },
    { "CLUSTER", GCH_KS_RANGE, 0, 0, 0 },
    { "COMMAND", GCH_KS_RANGE, 0, 0, 0 },
    { "CONFIG", GCH_KS_RANGE, 0, 0, 0 },
    { "COPY", GCH_KS_RANGE, 1, 2, 1 },
    { "DBSIZE", GCH_KS_RANGE, 0, 0, 0 },
    { "DECR", GCH_KS_RANGE, 1, 1, 1 },
    { "DECRBY", GCH_KS_RANGE, 1, 1, 1 },
    { "DEL", GCH_KS_RANGE, 1, -1, 1 },
    { "DISCARD", GCH_KS_RANGE, 0, 0, 0 },
    { "DUMP", GCH_KS_RANGE, 1, 1, 1 },
    { "ECHO", GCH_KS_RANGE, 0, 0, 0 },
    { "EVAL", GCH_KS_NUMKEYS, 2, 0, 0 },
    { "EVALSHA", GCH_KS_NUMKEYS, 2, 0, 0 },
    { "EVALSHA_RO", GCH_KS_NUMKEYS, 2, 0, 0 },
    { "EVAL_RO", GCH_KS_NUMKEYS, 2, 0, 0 },
    { "EXEC", GCH_KS_RANGE, 0, 0, 0 },
    { "EXISTS", GCH_KS_RANGE, 1, -1, 1 },
    { "EXPIRE", GCH_KS_RANGE, 1, 1, 1 },
    { "EXPIREAT", GCH_KS_RANGE, 1, 1, 1 },
    { "EXPIRETIME", GCH_KS_RANGE, 1, 1, 1 },
    { "FCALL", GCH_KS_NUMKEYS, 2, 0, 0 },
    { "FCALL_RO", GCH_KS_NUMKEYS, 2, 0, 0 },
    { "FLUSHALL", GCH_KS_RANGE, 0, 0, 0 },
    { "FLUSHDB", GCH_KS_RANGE, 0, 0, 0 },
    { "GET", GCH_KS_RANGE, 1, 1, 1 },
    { "GETBIT", GCH_KS_RANGE, 1, 1, 1 },
    { "GETDEL", GCH_KS_RANGE, 1, 1, 1 },
    { "GETEX", GCH_KS_RANGE, 1, 1, 1 },
    { "GETRANGE", GCH_KS_RANGE, 1, 1, 1 },
    { "GETSET", GCH_KS_RANGE, 1, 1, 1 },
    { "HDEL", GCH_KS_RANGE, 1, 1, 1 },
    { "HELLO", GCH_KS_RANGE, 0, 0, 0 },
    { "HEXISTS", GCH_KS_RANGE, 1, 1, 1 },
    { "HGET", GCH_KS_RANGE, 1, 1, 1 },
    { "HGETALL", GCH_KS_RANGE, 1, 1, 1 },
    { "HINCRBY", GCH_KS_RANGE, 1, 1, 1 },
    { "HINCRBYFLOAT", GCH_KS_RANGE, 1, 1, 1 },
    { "HKEYS", GCH_KS_RANGE, 1, 1, 1 },
    { "HLEN", GCH_KS_RANGE, 1, 1, 1 },
    { "HMGET", GCH_KS_RANGE, 1, 1, 1 },
    { "HMSET", GCH_KS_RANGE, 1, 1, 1 },
    { "HRANDFIELD", GCH_KS_RANGE, 1, 1, 1 },
    { "HSCAN", GCH_KS_RANGE, 1, 1, 1 },
    { "HSET", GCH_KS_RANGE, 1, 1, 1 },
    { "HSETNX", GCH_KS_RANGE, 1, 1, 1 },
    { "HSTRLEN", GCH_KS_RANGE, 1, 1, 1 },
    { "HVALS", GCH_KS_RANGE, 1, 1, 1 },
    { "INCR", GCH_KS_RANGE, 1, 1, 1 },
    { "INCRBY", GCH_KS_RANGE, 1, 1, 1 },
    { "INCRBYFLOAT", GCH_KS_RANGE, 1, 1, 1 },
    { "INFO", GCH_KS_RANGE, 0, 0, 0 },
    { "KEYS", GCH_KS_RANGE, 0, 0, 0 },
    { "LINDEX", GCH_KS_RANGE, 1, 1, 1 },
    { "LINSERT", GCH_KS_RANGE, 1, 1, 1 },
    { "LLEN", GCH_KS_RANGE, 1, 1, 1 },
    { "LMOVE", GCH_KS_RANGE, 1, 2, 1 },
    { "LMPOP", GCH_KS_NUMKEYS, 1, 0, 0 },
    { "LPOP", GCH_KS_RANGE, 1, 1, 1 },
    { "LPOS", GCH_KS_RANGE, 1, 1, 1 },
    { "LPUSH", GCH_KS_RANGE, 1, 1, 1 },
    { "LPUSHX", GCH_KS_RANGE, 1, 1, 1 },
    { "LRANGE", GCH_KS_RANGE, 1, 1, 1 },
    { "LREM", GCH_KS_RANGE, 1, 1, 1 },
    { "LSET", GCH_KS_RANGE, 1, 1, 1 },
    { "LTRIM", GCH_KS_RANGE, 1, 1, 1 },
    { "MGET", GCH_KS_RANGE, 1, -1, 1 },
    { "MSET", GCH_KS_RANGE, 1, -1, 2 },
    { "MSETNX", GCH_KS_RANGE, 1, -1, 2 },
    { "MULTI", GCH_KS_RANGE, 0, 0, 0 },
    { "PERSIST", GCH_KS_RANGE, 1, 1, 1 },
    { "PEXPIRE", GCH_KS_RANGE, 1, 1, 1 },
    { "PEXPIREAT", GCH_KS_RANGE, 1, 1, 1 },
    { "PEXPIRETIME", GCH_KS_RANGE, 1, 1, 1 },
    { "PFADD", GCH_KS_RANGE, 1, 1, 1 },
    { "PFCOUNT", GCH_KS_RANGE, 1, -1, 1 },
    { "PFMERGE", GCH_KS_RANGE, 1, -1, 1 },
    { "PING", GCH_KS_RANGE, 0, 0, 0 },
    { "PSETEX", GCH_KS_RANGE, 1, 1, 1 },
    { "PTTL", GCH_KS_RANGE, 1, 1, 1 },
    { "QUIT", GCH_KS_RANGE, 0, 0, 0 },
    { "RANDOMKEY", GCH_KS_RANGE, 0, 0, 0 },
    { "READONLY", GCH_KS_RANGE, 0, 0, 0 },
    { "READWRITE", GCH_KS_RANGE, 0, 0, 0 },
    { "RENAME", GCH_KS_RANGE, 1, 2, 1 },
    { "RENAMENX", GCH_KS_RANGE, 1, 2, 1 },
    { "RESTORE", GCH_KS_RANGE, 1, 1, 1 },
    { "ROLE", GCH_KS_RANGE, 0, 0, 0 },
    { "RPOP", GCH_KS_RANGE, 1, 1, 1 },
    { "RPOPLPUSH", GCH_KS_RANGE, 1, 2, 1 },
    { "RPUSH", GCH_KS_RANGE, 1, 1, 1 },
    { "RPUSHX", GCH_KS_RANGE, 1, 1, 1 },
    { "SADD", GCH_KS_RANGE, 1, 1, 1 },
    { "SCAN", GCH_KS_RANGE, 0, 0, 0 },
    { "SCARD", GCH_KS_RANGE, 1, 1, 1 },
    { "SCRIPT", GCH_KS_RANGE, 0, 0, 0 },
    { "SDIFF", GCH_KS_RANGE, 1, -1, 1 },
    { "SDIFFSTORE", GCH_KS_RANGE, 1, -1, 1 },
    { "SELECT", GCH_KS_RANGE, 0, 0, 0 },
    { "SET", GCH_KS_RANGE, 1, 1, 1 },
    { "SETBIT", GCH_KS_RANGE, 1, 1, 1 },
    { "SETEX", GCH_KS_RANGE, 1, 1, 1 },
    { "SETNX", GCH_KS_RANGE, 1, 1, 1 },
    { "SETRANGE", GCH_KS_RANGE, 1, 1, 1 },
    { "SINTER", GCH_KS_RANGE, 1, -1, 1 },
    { "SINTERCARD", GCH_KS_NUMKEYS, 1, 0, 0 },
    { "SINTERSTORE", GCH_KS_RANGE, 1, -1, 1 },
    { "SISMEMBER", GCH_KS_RANGE, 1, 1, 1 },
    { "SMEMBERS", GCH_KS_RANGE, 1, 1, 1 },
    { "SMISMEMBER", GCH_KS_RANGE, 1, 1, 1 },
    { "SMOVE", GCH_KS_RANGE, 1, 2, 1 },
    { "SORT", GCH_KS_RANGE, 1, 1, 1 },
    { "SORT_RO", GCH_KS_RANGE, 1, 1, 1 },
    { "SPOP", GCH_KS_RANGE, 1, 1, 1 },
    { "SRANDMEMBER", GCH_KS_RANGE, 1, 1, 1 },
    { "SREM", GCH_KS_RANGE, 1, 1, 1 },
    { "SSCAN", GCH_KS_RANGE, 1, 1, 1 },
    { "STRLEN", GCH_KS_RANGE, 1, 1, 1 },
    { "SUNION", GCH_KS_RANGE, 1, -1, 1 },
    { "SUNIONSTORE", GCH_KS_RANGE, 1, -1, 1 },
    { "TIME", GCH_KS_RANGE, 0, 0, 0 },
    { "TOUCH", GCH_KS_RANGE, 1, -1, 1 },
    { "TTL", GCH_KS_RANGE, 1, 1, 1 },
    { "TYPE", GCH_KS_RANGE, 1, 1, 1 },
    { "UNLINK", GCH_KS_RANGE, 1, -1, 1 },
    { "UNWATCH", GCH_KS_RANGE, 0, 0, 0 },
    { "WAIT", GCH_KS_RANGE, 0, 0, 0 },
    { "WATCH", GCH_KS_RANGE, 1, -1, 1 },
    { "XACK", GCH_KS_RANGE, 1, 1, 1 },
    { "XADD", GCH_KS_RANGE, 1, 1, 1 },
    { "XAUTOCLAIM", GCH_KS_RANGE, 1, 1, 1 },
    { "XCLAIM", GCH_KS_RANGE, 1, 1, 1 },
    { "XDEL", GCH_KS_RANGE, 1, 1, 1 },
    { "XGROUP", GCH_KS_SUB2, 0, 0, 0 },
    { "XINFO", GCH_KS_SUB2, 0, 0, 0 },
    { "XLEN", GCH_KS_RANGE, 1, 1, 1 },
    { "XPENDING", GCH_KS_RANGE, 1, 1, 1 },
    { "XRANGE", GCH_KS_RANGE, 1, 1, 1 },
    { "XREAD", GCH_KS_STREAMS, 0, 0, 0 },
    { "XREADGROUP", GCH_KS_STREAMS, 0, 0, 0 },
    { "XREVRANGE", GCH_KS_RANGE, 1, 1, 1 },
    { "XSETID", GCH_KS_RANGE, 1, 1, 1 },
    { "XTRIM", GCH_KS_RANGE, 1, 1, 1 },
    { "ZADD", GCH_KS_RANGE, 1, 1, 1 },
    { "ZCARD", GCH_KS_RANGE, 1, 1, 1 },
    { "ZCOUNT", GCH_KS_RANGE, 1, 1, 1 },
    { "ZDIFF", GCH_KS_NUMKEYS, 1, 0, 0 },
    { "ZDIFFSTORE", GCH_KS_DEST_NUMKEYS, 0, 0, 0 },
    { "ZINCRBY", GCH_KS_RANGE, 1, 1, 1 },
    { "ZINTER", GCH_KS_NUMKEYS, 1, 0, 0 },
    { "ZINTERCARD", GCH_KS_NUMKEYS, 1, 0, 0 },
    { "ZINTERSTORE", GCH_KS_DEST_NUMKEYS, 0, 0, 0 },
    { "ZLEXCOUNT", GCH_KS_RANGE, 1, 1, 1 },
    { "ZMPOP", GCH_KS_NUMKEYS, 1, 0, 0 },
    { "ZMSCORE", GCH_KS_RANGE, 1, 1, 1 },
    { "ZPOPMAX", GCH_KS_RANGE, 1, 1, 1 },
    { "ZPOPMIN", GCH_KS_RANGE, 1, 1, 1 },
    { "ZRANDMEMBER", GCH_KS_RANGE, 1, 1, 1 },
    { "ZRANGE", GCH_KS_RANGE, 1, 1, 1 },
    { "ZRANGEBYLEX", GCH_KS_RANGE, 1, 1, 1 },
    { "ZRANGEBYSCORE", GCH_KS_RANGE, 1, 1, 1 },
    { "ZRANGESTORE", GCH_KS_RANGE, 1, 2, 1 },
    { "ZRANK", GCH_KS_RANGE, 1, 1, 1 },
    { "ZREM", GCH_KS_RANGE, 1, 1, 1 },
    { "ZREMRANGEBYLEX", GCH_KS_RANGE, 1, 1, 1 },
    { "ZREMRANGEBYRANK", GCH_KS_RANGE, 1, 1, 1 },
    { "ZREMRANGEBYSCORE", GCH_KS_RANGE, 1, 1, 1 },
    { "ZREVRANGE", GCH_KS_RANGE, 1, 1, 1 },
    { "ZREVRANGEBYLEX", GCH_KS_RANGE, 1, 1, 1 },
    { "ZREVRANGEBYSCORE", GCH_KS_RANGE, 1, 1, 1 },
    { "ZREVRANK", GCH_KS_RANGE, 1, 1, 1 },
    { "ZSCAN", GCH_KS_RANGE, 1, 1, 1 },
    { "ZSCORE", GCH_KS_RANGE, 1, 1, 1 },
    { "ZUNION", GCH_KS_NUMKEYS, 1, 0, 0 },
    { "ZUNIONSTORE", GCH_KS_DEST_NUMKEYS, 0, 0, 0 }
};


static int
gch_cmpname(const char *name, const char *s, size_t n)
{
    size_t  i;
    int     c;

    for (i = 0; i < n; i++) {
        if (name[i] == '\0') {
            return -1;
        }

        c = (unsigned char) s[i];
        if (c >= 'a' && c <= 'z') {
            c -= 'a' - 'A';
        }

        if ((unsigned char) name[i] != c) {
            return (unsigned char) name[i] < c ? -1 : 1;
        }
    }

    return name[n] == '\0' ? 0 : 1;
}


static const gch_keyspec_t *
gch_keyspec(const char *s, size_t n)
{
    size_t  lo, hi, mid;
    int     c;

    lo = 0;
    hi = sizeof(gch_keyspecs) / sizeof(gch_keyspecs[0]);

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        c = gch_cmpname(gch_keyspecs[mid].name, s, n);

        if (c == 0) {
            return &gch_keyspecs[mid];
        }

        if (c < 0) {
            lo = mid + 1;

        } else {
            hi = mid;
        }
    }

    return NULL;
}


/* A small non-negative decimal argument, or -1. */
static long
gch_argnum(const char *s, size_t n)
{
    size_t  i;
    long    v;

    if (n == 0 || n > 9) {
        return -1;
    }

    v = 0;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }

    return v;
}


static int
gch_keys_slot(int argc, const char **argv, const size_t *len, long first,
    long last, long step)
{
    long  i;
    int   slot;

    if (first < 1 || last >= argc || first > last || step < 1) {
        return (first == last + 1) ? GCH_CLUSTER_NOKEY : GCH_CLUSTER_BADCMD;
    }

    slot = GCH_CLUSTER_NOKEY;

    for (i = first; i <= last; i += step) {
        slot = gch_cluster_slot_join(slot,
                                     gch_cluster_key_slot(argv[i], len[i]));
    }

    return slot;
}


static int
gch_argv_slot(int argc, const char **argv, const size_t *len)
{
    long                  first, last, n;
    int                   i;
    const gch_keyspec_t  *k;

    if (argc < 1) {
        return GCH_CLUSTER_BADCMD;
    }

    k = gch_keyspec(argv[0], len[0]);
    if (k == NULL) {
        return GCH_CLUSTER_UNKNOWN;
    }

    switch (k->kind) {

    case GCH_KS_RANGE:
        if (k->first == 0) {
            return GCH_CLUSTER_NOKEY;
        }
        last = (k->last < 0) ? argc + k->last : k->last;
        return gch_keys_slot(argc, argv, len, k->first, last, k->step);

    case GCH_KS_NUMKEYS:
    case GCH_KS_NUMKEYS_AT2:
        if (argc <= k->first) {
            return GCH_CLUSTER_BADCMD;
        }
        n = gch_argnum(argv[k->first], len[k->first]);
        if (n < 0 || k->first + n >= argc) {
            return GCH_CLUSTER_BADCMD;
        }
        if (n == 0) {
            return GCH_CLUSTER_NOKEY;
        }
        return gch_keys_slot(argc, argv, len, k->first + 1, k->first + n, 1);

    case GCH_KS_DEST_NUMKEYS:
        if (argc < 3) {
            return GCH_CLUSTER_BADCMD;
        }
        n = gch_argnum(argv[2], len[2]);
        if (n < 1 || 2 + n >= argc) {
            return GCH_CLUSTER_BADCMD;
        }
        return gch_cluster_slot_join(
                   gch_cluster_key_slot(argv[1], len[1]),
                   gch_keys_slot(argc, argv, len, 3, 2 + n, 1));

    case GCH_KS_STREAMS:
        for (i = 1; i < argc; i++) {
            if (gch_cmpname("STREAMS", argv[i], len[i]) == 0) {
                break;
            }
        }
        n = argc - i - 1;
        if (i == argc || n < 2 || n % 2 != 0) {
            return GCH_CLUSTER_BADCMD;
        }
        first = i + 1;
        return gch_keys_slot(argc, argv, len, first, first + n / 2 - 1, 1);

    case GCH_KS_SUB2:
        /* XINFO STREAM|GROUPS|CONSUMERS key, XGROUP CREATE|... key;
         * XINFO HELP and XGROUP HELP have none */
        if (argc >= 2 && gch_cmpname("HELP", argv[1], len[1]) == 0) {
            return GCH_CLUSTER_NOKEY;
        }
        if (argc < 3) {
            return GCH_CLUSTER_BADCMD;
        }
        return gch_cluster_key_slot(argv[2], len[2]);
    }

    return GCH_CLUSTER_UNKNOWN;
}


int
gch_cluster_argv_slot(int argc, const char **argv, const size_t *argvlen)
{
    int     i;
    size_t  len[GCH_CLUSTER_ARGV_MAX];

    if (argvlen != NULL) {
        return gch_argv_slot(argc, argv, argvlen);
    }

    if (argc > GCH_CLUSTER_ARGV_MAX) {
        return GCH_CLUSTER_BADCMD;
    }

    for (i = 0; i < argc; i++) {
        len[i] = strlen(argv[i]);
    }

    return gch_argv_slot(argc, argv, len);
}


int
gch_cluster_cmd_slot(const char *resp, size_t len)
{
    int          i, argc;
    gch_rr_t     r;
    gch_rv_t     v;
    const char  *argv[GCH_CLUSTER_ARGV_MAX];
    size_t       argvlen[GCH_CLUSTER_ARGV_MAX];

    r.p = resp;
    r.end = resp + len;

    if (gch_rr_next(&r, &v) != 0 || v.type != '*' || v.n < 1
        || v.n > GCH_CLUSTER_ARGV_MAX)
    {
        return GCH_CLUSTER_BADCMD;
    }

    argc = (int) v.n;

    for (i = 0; i < argc; i++) {
        if (gch_rr_next(&r, &v) != 0 || v.type != '$' || v.n < 0) {
            return GCH_CLUSTER_BADCMD;
        }
        argv[i] = v.s;
        argvlen[i] = v.len;
    }

    if (r.p != r.end) {
        return GCH_CLUSTER_BADCMD;
    }

    return gch_argv_slot(argc, argv, argvlen);
}


int
gch_cluster_cmds_slot(const gch_cmds_t *cmds)
{
    int     slot;
    size_t  i;

    slot = GCH_CLUSTER_NOKEY;

    for (i = 0; i < cmds->ncmds; i++) {
        slot = gch_cluster_slot_join(slot,
                   gch_cluster_cmd_slot(cmds->cmds[i].data,
                                        cmds->cmds[i].len));
    }

    return slot;
}


/* ------------------------------------------------------------------ */
/* redirections                                                        */

int
gch_cluster_redirect(const char *err, size_t len,
    gch_cluster_redirect_t *r)
{
    size_t       n, i, colon;
    long         slot, port;
    const char  *p, *end;

    p = err;
    end = err + len;

    if (p < end && *p == '-') {
        p++;
    }

    if (end - p >= 2 && end[-2] == '\r' && end[-1] == '\n') {
        end -= 2;
    }

    if (end - p > 6 && memcmp(p, "MOVED ", 6) == 0) {
        r->kind = GCH_CLUSTER_MOVED;
        p += 6;

    } else if (end - p > 4 && memcmp(p, "ASK ", 4) == 0) {
        r->kind = GCH_CLUSTER_ASK;
        p += 4;

    } else {
        return 0;
    }

    /* <slot> <host>:<port>; the host may be empty, or IPv6 (last ':') */
    slot = 0;
    for (n = 0; p < end && *p >= '0' && *p <= '9' && n < 6; n++, p++) {
        slot = slot * 10 + (*p - '0');
    }

    if (n == 0 || slot >= GCH_CLUSTER_SLOTS || p >= end || *p != ' ') {
        return GCH_EREDIS;
    }
    p++;

    colon = (size_t) -1;
    for (i = 0; p + i < end; i++) {
        if (p[i] == ':') {
            colon = i;

        } else if (p[i] == ' ' || p[i] == '\0' || p[i] == '\r'
                   || p[i] == '\n')
        {
            return GCH_EREDIS;
        }
    }

    if (colon == (size_t) -1 || colon >= sizeof(r->host)) {
        return GCH_EREDIS;
    }

    port = 0;
    for (n = 0, i = colon + 1; p + i < end; i++, n++) {
        if (p[i] < '0' || p[i] > '9' || n >= 5) {
            return GCH_EREDIS;
        }
        port = port * 10 + (p[i] - '0');
    }

    if (n == 0 || port < 1 || port > 65535) {
        return GCH_EREDIS;
    }

    memcpy(r->host, p, colon);
    r->host[colon] = '\0';
    r->slot = (int) slot;
    r->port = (int) port;

    return r->kind;
}
