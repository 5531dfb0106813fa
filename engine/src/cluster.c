/*
 * cluster.c -- Redis Cluster routing, sans I/O (see gch_cluster.h).
 *
 * Key slots (CRC16-XMODEM of the hash tag), the slot of a command from a
 * table of where each command keeps its keys, the slot map from the RESP
 * bytes of CLUSTER SLOTS / CLUSTER SHARDS, and -MOVED / -ASK.  The RESP
 * reader here is a cursor over the caller's bytes: it allocates nothing,
 * bounds its depth and checks every length against the end of the input.
 */

#include <string.h>
#include <strings.h>

#include "gch_cluster.h"


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


#define GCH_ARGV_MAX  64

int
gch_cluster_argv_slot(int argc, const char **argv, const size_t *argvlen)
{
    int     i;
    size_t  len[GCH_ARGV_MAX];

    if (argvlen != NULL) {
        return gch_argv_slot(argc, argv, argvlen);
    }

    if (argc > GCH_ARGV_MAX) {
        return GCH_CLUSTER_BADCMD;
    }

    for (i = 0; i < argc; i++) {
        len[i] = strlen(argv[i]);
    }

    return gch_argv_slot(argc, argv, len);
}


/* ------------------------------------------------------------------ */
/* a RESP2 cursor                                                      */

#define GCH_RESP_DEPTH  8

typedef struct {
    const char  *p;
    const char  *end;
} gch_rr_t;

typedef struct {
    char          type;     /* '*' '$' ':' '+' '-'                     */
    long long     n;        /* array size, bulk length, integer; -1 nil */
    const char   *s;        /* string bytes ('$' '+' '-')              */
    size_t        len;
} gch_rv_t;


/* Reads a line's number (after the type byte) up to CRLF. */
static int
gch_rr_num(gch_rr_t *r, long long *v)
{
    int        neg, digits;
    long long  n;

    neg = 0;
    digits = 0;
    n = 0;

    if (r->p < r->end && *r->p == '-') {
        neg = 1;
        r->p++;
    }

    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
        if (n > 999999999999LL) {
            return -1;
        }
        n = n * 10 + (*r->p - '0');
        r->p++;
        digits++;
    }

    if (digits == 0 || r->end - r->p < 2 || r->p[0] != '\r'
        || r->p[1] != '\n')
    {
        return -1;
    }

    r->p += 2;
    *v = neg ? -n : n;

    return 0;
}


/* The next value's header (and a string's bytes). */
static int
gch_rr_next(gch_rr_t *r, gch_rv_t *v)
{
    const char  *e;

    if (r->p >= r->end) {
        return -1;
    }

    v->type = *r->p++;
    v->s = NULL;
    v->len = 0;
    v->n = 0;

    switch (v->type) {

    case '*':
    case ':':
        if (gch_rr_num(r, &v->n) != 0) {
            return -1;
        }
        return (v->type == '*' && v->n < -1) ? -1 : 0;

    case '$':
        if (gch_rr_num(r, &v->n) != 0 || v->n < -1) {
            return -1;
        }
        if (v->n == -1) {
            return 0;
        }
        if (r->end - r->p < v->n + 2 || r->p[v->n] != '\r'
            || r->p[v->n + 1] != '\n')
        {
            return -1;
        }
        v->s = r->p;
        v->len = (size_t) v->n;
        r->p += v->n + 2;
        return 0;

    case '+':
    case '-':
        for (e = r->p; e + 1 < r->end; e++) {
            if (e[0] == '\r' && e[1] == '\n') {
                v->s = r->p;
                v->len = (size_t) (e - r->p);
                r->p = e + 2;
                return 0;
            }
        }
        return -1;
    }

    return -1;
}


/* Skips what an aggregate header announced. */
static int
gch_rr_skip(gch_rr_t *r, const gch_rv_t *v, int depth)
{
    long long  i;
    gch_rv_t   c;

    if (v->type != '*' || v->n <= 0) {
        return 0;
    }

    if (depth >= GCH_RESP_DEPTH) {
        return -1;
    }

    for (i = 0; i < v->n; i++) {
        if (gch_rr_next(r, &c) != 0 || gch_rr_skip(r, &c, depth + 1) != 0) {
            return -1;
        }
    }

    return 0;
}


static int
gch_rv_is(const gch_rv_t *v, const char *s)
{
    size_t  n;

    n = strlen(s);

    return (v->type == '$' || v->type == '+') && v->len == n
           && memcmp(v->s, s, n) == 0;
}


int
gch_cluster_cmd_slot(const char *resp, size_t len)
{
    int          i, argc;
    gch_rr_t     r;
    gch_rv_t     v;
    const char  *argv[GCH_ARGV_MAX];
    size_t       argvlen[GCH_ARGV_MAX];

    r.p = resp;
    r.end = resp + len;

    if (gch_rr_next(&r, &v) != 0 || v.type != '*' || v.n < 1
        || v.n > GCH_ARGV_MAX)
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
/* the slot map                                                        */

typedef struct {
    uint16_t  start;
    uint16_t  end;
    uint16_t  master;
    uint16_t  nreplicas;
    size_t    replicas;     /* offset in m->repl */
} gch_cluster_range_t;

struct gch_cluster_map_s {
    const gch_alloc_t    *a;
    const char           *asked;
    gch_cluster_node_t   *nodes;
    size_t                nnodes;
    size_t                capnodes;
    gch_cluster_range_t  *ranges;
    size_t                nranges;
    size_t                capranges;
    uint16_t             *repl;
    size_t                nrepl;
    size_t                caprepl;
    size_t                covered;
    uint16_t              slot[GCH_CLUSTER_SLOTS];  /* range + 1; 0: none */
};

#define GCH_MAP_NODES_MAX   1000    /* Redis advises at most 1000 nodes */


static void *
gch_grow(const gch_alloc_t *a, void *p, size_t n, size_t *cap, size_t size)
{
    size_t  ncap;
    void   *np;

    if (n < *cap) {
        return p;
    }

    ncap = *cap ? *cap * 2 : 8;
    np = a->alloc(a->ctx, ncap * size);
    if (np == NULL) {
        return NULL;
    }

    if (p != NULL) {
        memcpy(np, p, n * size);
        a->free(a->ctx, p);
    }

    *cap = ncap;

    return np;
}


static char *
gch_strdupn(const gch_alloc_t *a, const char *s, size_t n)
{
    char  *d;

    d = a->alloc(a->ctx, n + 1);
    if (d == NULL) {
        return NULL;
    }

    memcpy(d, s, n);
    d[n] = '\0';

    return d;
}


/*
 * The index of the node host:port (added when new), -1 when the node is
 * to be left out (unknown endpoint), -2 out of memory, -3 too many.
 */
static int
gch_map_node(gch_cluster_map_t *m, const char *host, size_t hlen,
    long long port, const char *id, size_t idlen)
{
    size_t               i;
    void                *p;
    gch_cluster_node_t  *n;

    if (hlen == 0) {
        if (m->asked == NULL) {
            return -1;
        }
        host = m->asked;
        hlen = strlen(host);
    }

    if ((hlen == 1 && host[0] == '?') || hlen > 255 || port <= 0
        || port > 65535 || memchr(host, '\0', hlen) != NULL)
    {
        return -1;
    }

    for (i = 0; i < m->nnodes; i++) {
        n = &m->nodes[i];
        if (n->port == port && strlen(n->host) == hlen
            && memcmp(n->host, host, hlen) == 0)
        {
            return (int) i;
        }
    }

    if (m->nnodes >= GCH_MAP_NODES_MAX) {
        return -3;
    }

    p = gch_grow(m->a, m->nodes, m->nnodes, &m->capnodes, sizeof(*n));
    if (p == NULL) {
        return -2;
    }
    m->nodes = p;

    n = &m->nodes[m->nnodes];
    n->port = (int) port;
    n->master = 0;
    n->host = gch_strdupn(m->a, host, hlen);
    n->id = gch_strdupn(m->a, id ? id : "", id ? idlen : 0);

    if (n->host == NULL || n->id == NULL) {
        m->a->free(m->a->ctx, (void *) n->host);
        m->a->free(m->a->ctx, (void *) n->id);
        return -2;
    }

    m->nnodes++;

    return (int) (m->nnodes - 1);
}


static int
gch_map_range(gch_cluster_map_t *m, long long start, long long end,
    int master, const uint16_t *repl, size_t nrepl)
{
    size_t                i, off;
    long long             s;
    void                 *p;
    gch_cluster_range_t  *r;

    if (start < 0 || end >= GCH_CLUSTER_SLOTS || start > end) {
        return GCH_EREDIS;
    }

    if (master < 0) {
        return GCH_OK;                  /* its slots stay uncovered */
    }

    for (s = start; s <= end; s++) {
        if (m->slot[s] != 0) {
            return GCH_EREDIS;          /* a slot served twice */
        }
    }

    p = gch_grow(m->a, m->ranges, m->nranges, &m->capranges, sizeof(*r));
    if (p == NULL) {
        return GCH_ENOMEM;
    }
    m->ranges = p;

    off = m->nrepl;

    for (i = 0; i < nrepl; i++) {
        p = gch_grow(m->a, m->repl, m->nrepl, &m->caprepl,
                     sizeof(uint16_t));
        if (p == NULL) {
            return GCH_ENOMEM;
        }
        m->repl = p;
        m->repl[m->nrepl++] = repl[i];
    }

    r = &m->ranges[m->nranges];
    r->start = (uint16_t) start;
    r->end = (uint16_t) end;
    r->master = (uint16_t) master;
    r->nreplicas = (uint16_t) nrepl;
    r->replicas = off;
    m->nranges++;

    m->nodes[master].master = 1;

    for (s = start; s <= end; s++) {
        m->slot[s] = (uint16_t) m->nranges;
    }

    m->covered += (size_t) (end - start + 1);

    return GCH_OK;
}


#define GCH_REPL_MAX  16            /* replicas kept per range */

/* Turns gch_map_node's failures into a return code (0: usable). */
static int
gch_node_err(int i, gch_error_t *err)
{
    if (i == -2) {
        gch_error_set(err, GCH_ENOMEM, NULL);
        return GCH_ENOMEM;
    }

    if (i == -3) {
        gch_error_set(err, GCH_EREDIS, "cluster: more than %d nodes",
                      GCH_MAP_NODES_MAX);
        return GCH_EREDIS;
    }

    return GCH_OK;
}


/* One node of CLUSTER SLOTS: *M host port [id [metadata]]; *idx its
 * index, or -1 when left out. */
static int
gch_slots_node(gch_cluster_map_t *m, gch_rr_t *r, int *idx,
    gch_error_t *err)
{
    int        i, rc;
    long long  k;
    gch_rv_t   v, host, port, id, x;

    if (gch_rr_next(r, &v) != 0 || v.type != '*' || v.n < 2
        || gch_rr_next(r, &host) != 0 || host.type != '$' || host.n < 0
        || gch_rr_next(r, &port) != 0 || port.type != ':')
    {
        goto bad;
    }

    id.s = NULL;
    id.len = 0;

    if (v.n >= 3
        && (gch_rr_next(r, &id) != 0 || id.type != '$' || id.n < 0))
    {
        goto bad;
    }

    for (k = 3; k < v.n; k++) {
        if (gch_rr_next(r, &x) != 0 || gch_rr_skip(r, &x, 3) != 0) {
            goto bad;
        }
    }

    i = gch_map_node(m, host.s, host.len, port.n, id.s, id.len);
    rc = gch_node_err(i, err);
    if (rc != GCH_OK) {
        return rc;
    }

    *idx = i;

    return GCH_OK;

bad:

    gch_error_set(err, GCH_EREDIS, "CLUSTER SLOTS: malformed node");
    return GCH_EREDIS;
}


/* The rest of CLUSTER SLOTS once its first header was read. */
static int
gch_parse_slots(gch_cluster_map_t *m, gch_rr_t *r, long long nranges,
    gch_error_t *err)
{
    int        rc, master, node;
    size_t     nrepl;
    long long  i, k;
    gch_rv_t   v, start, end;
    uint16_t   repl[GCH_REPL_MAX];

    for (i = 0; i < nranges; i++) {
        if (gch_rr_next(r, &v) != 0 || v.type != '*' || v.n < 3
            || gch_rr_next(r, &start) != 0 || start.type != ':'
            || gch_rr_next(r, &end) != 0 || end.type != ':')
        {
            gch_error_set(err, GCH_EREDIS, "CLUSTER SLOTS: malformed range");
            return GCH_EREDIS;
        }

        rc = gch_slots_node(m, r, &master, err);
        if (rc != GCH_OK) {
            return rc;
        }

        nrepl = 0;

        for (k = 3; k < v.n; k++) {
            rc = gch_slots_node(m, r, &node, err);
            if (rc != GCH_OK) {
                return rc;
            }
            if (node >= 0 && node != master && nrepl < GCH_REPL_MAX) {
                repl[nrepl++] = (uint16_t) node;
            }
        }

        rc = gch_map_range(m, start.n, end.n, master, repl, nrepl);
        if (rc != GCH_OK) {
            gch_error_set(err, rc, rc == GCH_ENOMEM ? NULL
                          : "CLUSTER SLOTS: bad range %lld-%lld",
                          start.n, end.n);
            return rc;
        }
    }

    return GCH_OK;
}


/*
 * One node of CLUSTER SHARDS: a flat map (id, port, ip, endpoint, role,
 * health...).  *idx its index (-1 when left out), *master whether its role
 * is master.
 */
static int
gch_shards_node(gch_cluster_map_t *m, gch_rr_t *r, int *idx, int *master,
    gch_error_t *err)
{
    int        i, rc, online;
    long long  k;
    gch_rv_t   v, key, val, ip, endpoint, id;
    long long  port;

    if (gch_rr_next(r, &v) != 0 || v.type != '*' || v.n < 0 || v.n % 2) {
        goto bad;
    }

    ip.len = endpoint.len = id.len = 0;
    ip.s = endpoint.s = id.s = NULL;
    ip.n = endpoint.n = -1;
    port = -1;
    online = 1;
    *master = 0;

    for (k = 0; k < v.n; k += 2) {
        if (gch_rr_next(r, &key) != 0 || key.type != '$' || key.n < 0
            || gch_rr_next(r, &val) != 0)
        {
            goto bad;
        }

        if (gch_rv_is(&key, "port") && val.type == ':') {
            port = val.n;

        } else if (gch_rv_is(&key, "ip") && val.type == '$') {
            ip = val;

        } else if (gch_rv_is(&key, "endpoint") && val.type == '$') {
            endpoint = val;

        } else if (gch_rv_is(&key, "id") && val.type == '$') {
            id = val;

        } else if (gch_rv_is(&key, "role")) {
            *master = gch_rv_is(&val, "master");

        } else if (gch_rv_is(&key, "health")) {
            online = gch_rv_is(&val, "online");

        } else if (gch_rr_skip(r, &val, 4) != 0) {
            goto bad;
        }
    }

    *idx = -1;

    if (!online || port < 0 || (endpoint.n < 0 && ip.n < 0)) {
        return GCH_OK;
    }

    if (endpoint.n >= 0) {
        ip = endpoint;
    }

    i = gch_map_node(m, ip.s, ip.len, port, id.s, id.len);
    rc = gch_node_err(i, err);
    if (rc != GCH_OK) {
        return rc;
    }

    *idx = i;

    return GCH_OK;

bad:

    gch_error_set(err, GCH_EREDIS, "CLUSTER SHARDS: malformed node");
    return GCH_EREDIS;
}


/* One shard: a flat map with "slots" (start, end, ...) and "nodes". */
static int
gch_shards_one(gch_cluster_map_t *m, gch_rr_t *r, gch_error_t *err)
{
    int        rc, master, node, is_master, have_slots;
    size_t     nrepl;
    long long  k, j;
    gch_rr_t   slots;
    gch_rv_t   v, key, val, start, end;
    uint16_t   repl[GCH_REPL_MAX];

    if (gch_rr_next(r, &v) != 0 || v.type != '*' || v.n < 0 || v.n % 2) {
        goto bad;
    }

    master = -1;
    nrepl = 0;
    have_slots = 0;
    slots = *r;
    val.n = 0;

    for (k = 0; k < v.n; k += 2) {
        if (gch_rr_next(r, &key) != 0 || key.type != '$' || key.n < 0) {
            goto bad;
        }

        if (gch_rv_is(&key, "slots")) {
            if (have_slots) {
                goto bad;
            }
            slots = *r;
            have_slots = 1;
            if (gch_rr_next(r, &val) != 0 || val.type != '*'
                || val.n < 0 || val.n % 2
                || gch_rr_skip(r, &val, 2) != 0)
            {
                goto bad;
            }
            continue;
        }

        if (gch_rr_next(r, &val) != 0) {
            goto bad;
        }

        if (!gch_rv_is(&key, "nodes")) {
            if (gch_rr_skip(r, &val, 2) != 0) {
                goto bad;
            }
            continue;
        }

        if (val.type != '*' || val.n < 0) {
            goto bad;
        }

        for (j = 0; j < val.n; j++) {
            rc = gch_shards_node(m, r, &node, &is_master, err);
            if (rc != GCH_OK) {
                return rc;
            }
            if (node < 0) {
                continue;
            }
            if (is_master && master < 0) {
                master = node;

            } else if (!is_master && nrepl < GCH_REPL_MAX) {
                repl[nrepl++] = (uint16_t) node;
            }
        }
    }

    if (!have_slots) {
        return GCH_OK;                  /* a shard without slots */
    }

    /* the slots, read again from where they were */
    if (gch_rr_next(&slots, &val) != 0) {
        goto bad;
    }

    for (j = 0; j < val.n; j += 2) {
        if (gch_rr_next(&slots, &start) != 0 || start.type != ':'
            || gch_rr_next(&slots, &end) != 0 || end.type != ':')
        {
            goto bad;
        }

        rc = gch_map_range(m, start.n, end.n, master, repl, nrepl);
        if (rc != GCH_OK) {
            gch_error_set(err, rc, rc == GCH_ENOMEM ? NULL
                          : "CLUSTER SHARDS: bad range %lld-%lld",
                          start.n, end.n);
            return rc;
        }
    }

    return GCH_OK;

bad:

    gch_error_set(err, GCH_EREDIS, "CLUSTER SHARDS: malformed shard");
    return GCH_EREDIS;
}


int
gch_cluster_map_parse(gch_cluster_map_t **out, const char *resp,
    size_t len, const char *asked_host, const gch_alloc_t *a,
    gch_error_t *err)
{
    int                 rc;
    long long           i;
    gch_rr_t            r, peek;
    gch_rv_t            v, first, inner;
    gch_cluster_map_t  *m;

    *out = NULL;

    m = a->alloc(a->ctx, sizeof(*m));
    if (m == NULL) {
        gch_error_set(err, GCH_ENOMEM, NULL);
        return GCH_ENOMEM;
    }

    memset(m, 0, sizeof(*m));
    m->a = a;
    m->asked = asked_host;

    r.p = resp;
    r.end = resp + len;

    if (gch_rr_next(&r, &v) != 0) {
        gch_error_set(err, GCH_EREDIS, "cluster: not a RESP reply");
        rc = GCH_EREDIS;
        goto failed;
    }

    if (v.type == '-') {
        gch_error_set(err, GCH_EREDIS, "cluster: error reply: %.*s",
                      (int) (v.len > 200 ? 200 : v.len), v.s);
        rc = GCH_EREDIS;
        goto failed;
    }

    if (v.type != '*' || v.n < 0) {
        gch_error_set(err, GCH_EREDIS, "cluster: not an array");
        rc = GCH_EREDIS;
        goto failed;
    }

    rc = GCH_OK;

    if (v.n > 0) {
        /* CLUSTER SLOTS: *K :start ...; CLUSTER SHARDS: *2k $5 slots ... */
        peek = r;
        if (gch_rr_next(&peek, &inner) != 0 || inner.type != '*'
            || inner.n < 1 || gch_rr_next(&peek, &first) != 0)
        {
            gch_error_set(err, GCH_EREDIS, "cluster: unknown reply shape");
            rc = GCH_EREDIS;
            goto failed;
        }

        if (first.type == ':') {
            rc = gch_parse_slots(m, &r, v.n, err);

        } else if (first.type == '$') {
            for (i = 0; i < v.n && rc == GCH_OK; i++) {
                rc = gch_shards_one(m, &r, err);
            }

        } else {
            gch_error_set(err, GCH_EREDIS, "cluster: unknown reply shape");
            rc = GCH_EREDIS;
        }

        if (rc != GCH_OK) {
            goto failed;
        }
    }

    if (r.p != r.end) {
        gch_error_set(err, GCH_EREDIS, "cluster: bytes after the reply");
        rc = GCH_EREDIS;
        goto failed;
    }

    m->asked = NULL;
    *out = m;

    return GCH_OK;

failed:

    gch_cluster_map_free(m);
    return rc;
}


void
gch_cluster_map_free(gch_cluster_map_t *m)
{
    size_t              i;
    const gch_alloc_t  *a;

    if (m == NULL) {
        return;
    }

    a = m->a;

    for (i = 0; i < m->nnodes; i++) {
        a->free(a->ctx, (void *) m->nodes[i].host);
        a->free(a->ctx, (void *) m->nodes[i].id);
    }

    a->free(a->ctx, m->nodes);
    a->free(a->ctx, m->ranges);
    a->free(a->ctx, m->repl);
    a->free(a->ctx, m);
}


size_t
gch_cluster_map_nnodes(const gch_cluster_map_t *m)
{
    return m->nnodes;
}


const gch_cluster_node_t *
gch_cluster_map_node(const gch_cluster_map_t *m, size_t i)
{
    return (i < m->nnodes) ? &m->nodes[i] : NULL;
}


int
gch_cluster_map_master(const gch_cluster_map_t *m, int slot)
{
    if (slot < 0 || slot >= GCH_CLUSTER_SLOTS || m->slot[slot] == 0) {
        return -1;
    }

    return m->ranges[m->slot[slot] - 1].master;
}


size_t
gch_cluster_map_replicas(const gch_cluster_map_t *m, int slot,
    const uint16_t **idx)
{
    const gch_cluster_range_t  *r;

    *idx = NULL;

    if (slot < 0 || slot >= GCH_CLUSTER_SLOTS || m->slot[slot] == 0) {
        return 0;
    }

    r = &m->ranges[m->slot[slot] - 1];
    if (r->nreplicas > 0) {
        *idx = &m->repl[r->replicas];
    }

    return r->nreplicas;
}


size_t
gch_cluster_map_covered(const gch_cluster_map_t *m)
{
    return m->covered;
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
