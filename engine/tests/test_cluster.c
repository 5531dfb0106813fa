/*
 * test_cluster.c -- Redis Cluster routing (cluster.c, cluster_map.c,
 * cluster_resp.c): CRC16 and hash tags, the slot of commands and of MULTI
 * plans, the slot map from CLUSTER SLOTS / CLUSTER SHARDS replies recorded
 * on a real 3-master, 3-replica cluster of redis-server 7.0
 * (engine/tests/cluster/, made by tests/integration/cluster.py), -MOVED
 * and -ASK.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "gch_cluster.h"
#include "resp.h"


static int
tslot(const char *key)
{
    return gch_cluster_key_slot(key, strlen(key));
}


static void
test_cluster_slots(void)
{
    const char  *k;

    /* the check value of CRC16/XMODEM, and the example of the Redis
     * Cluster specification */
    tap_ok(gch_cluster_crc16("123456789", 9) == 0x31c3,
        "crc16: XMODEM check value 0x31c3 (got 0x%04x)",
        gch_cluster_crc16("123456789", 9));
    tap_ok(gch_cluster_crc16("", 0) == 0, "crc16: empty is 0");

    /* slots a real redis-server 7.0 gave (cluster/moved.resp) */
    tap_ok(tslot("{main}:catalogue") == 12501,
        "slot: {main}:catalogue is 12501 as Redis says (%d)",
        tslot("{main}:catalogue"));
    tap_ok(tslot("{demo}:catalogue") == 903, "slot: {demo}:catalogue 903");
    tap_ok(tslot("a") == 15495 && tslot("b") == 3300 && tslot("c") == 7365,
        "slot: a b c are 15495 3300 7365");
    tap_ok(tslot("foo") == 12182, "slot: foo is 12182 (CLUSTER KEYSLOT)");

    /* the hash-tag rule */
    tap_ok(tslot("{main}:s:12:left") == tslot("main")
           && tslot("{main}:f:9:idem:k") == tslot("main"),
        "tag: every {main} key is the slot of main");
    tap_ok(tslot("{user1000}.following") == tslot("{user1000}.followers"),
        "tag: {user1000}.following and .followers share a slot");
    k = "foo{}{bar}";
    tap_ok(tslot(k) == gch_cluster_crc16(k, strlen(k)) % 16384,
        "tag: foo{}{bar} (empty first tag) hashes the whole key");
    tap_ok(tslot("foo{{bar}}zap") == tslot("{bar"),
        "tag: foo{{bar}}zap hashes {bar");
    tap_ok(tslot("foo{bar}{zap}") == tslot("bar"),
        "tag: foo{bar}{zap} hashes bar (first tag only)");
    k = "nobrace{";
    tap_ok(tslot(k) == gch_cluster_crc16(k, strlen(k)) % 16384
           && tslot("x}{") == gch_cluster_crc16("x}{", 3) % 16384,
        "tag: an unclosed { hashes the whole key");
    tap_ok(gch_cluster_key_slot("{a\0b}", 5) ==
           (gch_cluster_crc16("a\0b", 3) & 16383),
        "tag: binary keys hash their bytes");
}


static int
targv(const char *line)
{
    char         buf[512], *p, *save;
    const char  *argv[32];
    int          argc;

    snprintf(buf, sizeof(buf), "%s", line);
    argc = 0;

    for (p = strtok_r(buf, " ", &save); p && argc < 32;
         p = strtok_r(NULL, " ", &save))
    {
        argv[argc++] = p;
    }

    return gch_cluster_argv_slot(argc, argv, NULL);
}


static void
test_cluster_commands(void)
{
    int            m, s;
    const char    *k;
    gch_cmdlist_t  l;

    m = tslot("main");

    tap_ok(targv("GET {main}:catalogue") == m, "cmd: GET key");
    tap_ok(targv("get {main}:catalogue") == m, "cmd: names any case");
    tap_ok(targv("PING") == GCH_CLUSTER_NOKEY
           && targv("MULTI") == GCH_CLUSTER_NOKEY
           && targv("EXEC") == GCH_CLUSTER_NOKEY
           && targv("WAIT 1 100") == GCH_CLUSTER_NOKEY
           && targv("CLUSTER SLOTS") == GCH_CLUSTER_NOKEY,
        "cmd: PING MULTI EXEC WAIT CLUSTER have no key");
    tap_ok(targv("DEL {main}:a {main}:b {main}:c") == m,
        "cmd: DEL of three keys of one town");
    tap_ok(targv("DEL {main}:a {demo}:b") == GCH_CLUSTER_CROSS,
        "cmd: DEL across towns is CROSS");
    tap_ok(targv("MSET {main}:a {demo}x {main}:b {demo}y") == m,
        "cmd: MSET: keys every other argument, values ignored");
    tap_ok(targv("EVALSHA abc 2 {main}:a {main}:b {demo}:argv") == m,
        "cmd: EVALSHA: numkeys keys, arguments ignored");
    tap_ok(targv("EVAL s 0 x") == GCH_CLUSTER_NOKEY,
        "cmd: EVAL with 0 keys has none");
    tap_ok(targv("EVAL s 3 {main}:a") == GCH_CLUSTER_BADCMD,
        "cmd: EVAL with too few keys is BADCMD");
    tap_ok(targv("XREADGROUP GROUP g c COUNT 10 BLOCK 100 STREAMS "
                 "{main}:stream >") == m,
        "cmd: XREADGROUP: the key after STREAMS");
    tap_ok(targv("XREADGROUP GROUP g c STREAMS {main}:s1 {demo}:s2 > >")
           == GCH_CLUSTER_CROSS,
        "cmd: XREADGROUP of two towns' streams is CROSS");
    tap_ok(targv("XREAD STREAMS {main}:s1") == GCH_CLUSTER_BADCMD,
        "cmd: XREAD without ids is BADCMD");
    tap_ok(targv("XAUTOCLAIM {main}:stream g c 1000 0-0") == m
           && targv("XACK {main}:stream g 1-1") == m,
        "cmd: XAUTOCLAIM XACK key at 1");
    tap_ok(targv("XGROUP CREATE {main}:stream g $ MKSTREAM") == m
           && targv("XINFO GROUPS {main}:stream") == m
           && targv("XINFO HELP") == GCH_CLUSTER_NOKEY,
        "cmd: XGROUP XINFO key at 2");
    tap_ok(targv("ZUNIONSTORE {main}:d 2 {main}:a {main}:b WEIGHTS 1 2") == m
           && targv("ZUNIONSTORE {demo}:d 1 {main}:a") == GCH_CLUSTER_CROSS,
        "cmd: ZUNIONSTORE: destination and numkeys");
    tap_ok(targv("BLPOP {main}:a {main}:b 5") == m,
        "cmd: BLPOP: keys but not the timeout");
    tap_ok(targv("FROBNICATE {main}:a") == GCH_CLUSTER_UNKNOWN,
        "cmd: an unknown command is UNKNOWN");
    tap_ok(targv("GET") == GCH_CLUSTER_BADCMD,
        "cmd: GET without its key is BADCMD");
    tap_ok(gch_cluster_argv_slot(0, NULL, NULL) == GCH_CLUSTER_BADCMD,
        "cmd: no argument is BADCMD");

    /* RESP-formatted commands, as the engine and the module write them */
    k = "*2\r\n$3\r\nGET\r\n$16\r\n{main}:catalogue\r\n";
    s = gch_cluster_cmd_slot(k, strlen(k));
    tap_ok(s == m, "resp: GET {main}:catalogue (%d)", s);
    tap_ok(gch_cluster_cmd_slot("*2\r\n$3\r\nGET\r\n$16\r\n{main}:catalog",
                                30) == GCH_CLUSTER_BADCMD,
        "resp: cut short is BADCMD");
    {
        /* the module's EXISTS of a turn's refusals: 128 keys */
        char    big[128 * 64 + 64], *q;
        size_t  j;

        q = big + sprintf(big, "*129\r\n$6\r\nEXISTS\r\n");
        for (j = 0; j < 128; j++) {
            q += sprintf(q, "$22\r\n{main}:f:f-%04zu:idem:k\r\n", j);
        }
        s = gch_cluster_cmd_slot(big, (size_t) (q - big));
        tap_ok(s == m, "resp: EXISTS of 128 keys of a town (%d)", s);
    }
    tap_ok(gch_cluster_cmd_slot("*1\r\n:1\r\n", 8) == GCH_CLUSTER_BADCMD,
        "resp: an integer argument is BADCMD");
    tap_ok(gch_cluster_cmd_slot("*1\r\n$4\r\nPING\r\n*1\r\n", 18)
           == GCH_CLUSTER_BADCMD,
        "resp: bytes after the command are BADCMD");

    gch_cmdlist_init(&l, &gch_alloc_std);
    gch_cmdlist_cmd(&l, "MULTI", NULL);
    gch_cmdlist_cmd(&l, "INCR", "{main}:seq", NULL);
    gch_cmdlist_cmd(&l, "HSET", "{main}:f:9", "a", "{demo}", NULL);
    gch_cmdlist_cmd(&l, "EXEC", NULL);
    tap_ok(!l.failed && gch_cluster_cmds_slot(&l.list) == m,
        "plan: MULTI INCR HSET EXEC of one town is its slot");
    gch_cmdlist_cmd(&l, "MULTI", NULL);
    gch_cmdlist_cmd(&l, "INCR", "gch:seq:demande", NULL);
    gch_cmdlist_cmd(&l, "EXEC", NULL);
    tap_ok(gch_cluster_cmds_slot(&l.list) == GCH_CLUSTER_CROSS,
        "plan: an untagged key beside the town's is CROSS");
    gch_cmdlist_free(&l);

    tap_ok(gch_cluster_slot_join(GCH_CLUSTER_NOKEY, 5) == 5
           && gch_cluster_slot_join(5, 5) == 5
           && gch_cluster_slot_join(5, 6) == GCH_CLUSTER_CROSS
           && gch_cluster_slot_join(GCH_CLUSTER_CROSS, GCH_CLUSTER_UNKNOWN)
              == GCH_CLUSTER_UNKNOWN
           && gch_cluster_slot_join(GCH_CLUSTER_NOKEY, GCH_CLUSTER_NOKEY)
              == GCH_CLUSTER_NOKEY,
        "join: NOKEY neutral, two slots CROSS, errors win");
}


/* "host:port" of the master of slot, or "-". */
static const char *
tmaster(const gch_cluster_map_t *m, int slot, char *buf, size_t n)
{
    int                        i;
    const gch_cluster_node_t  *node;

    i = gch_cluster_map_master(m, slot);
    if (i < 0) {
        return "-";
    }

    node = gch_cluster_map_node(m, (size_t) i);
    snprintf(buf, n, "%s:%d", node->host, node->port);

    return buf;
}


static const char *
treplica(const gch_cluster_map_t *m, int slot, char *buf, size_t n)
{
    size_t                     nr;
    const uint16_t            *idx;
    const gch_cluster_node_t  *node;

    nr = gch_cluster_map_replicas(m, slot, &idx);
    if (nr != 1) {
        snprintf(buf, n, "%zu replicas", nr);
        return buf;
    }

    node = gch_cluster_map_node(m, idx[0]);
    snprintf(buf, n, "%s:%d", node->host, node->port);

    return buf;
}


static gch_cluster_map_t *
tmap(const char *file, const char *asked, gch_error_t *err)
{
    int                 rc;
    char               *resp, path[128];
    size_t              len;
    gch_cluster_map_t  *m;

    snprintf(path, sizeof(path), "cluster/%s", file);
    resp = tread(path, &len);
    if (resp == NULL) {
        tap_diag("cannot read %s", path);
        return NULL;
    }

    rc = gch_cluster_map_parse(&m, resp, len, asked, &gch_alloc_std, err);
    free(resp);

    return rc == GCH_OK ? m : NULL;
}


static void
test_cluster_map_files(void)
{
    char                b1[300], b2[300];
    size_t              i, masters;
    gch_error_t         err;
    gch_cluster_map_t  *m;

    /* a fresh cluster: 0-5460 54365 (replica 33365), 5461-10922 36109
     * (44909), 10923-16383 35953 (39191) */
    m = tmap("slots-3m3r.resp", NULL, &err);
    tap_ok(m != NULL, "map: CLUSTER SLOTS of a fresh cluster parses");
    if (m != NULL) {
        tap_ok(gch_cluster_map_covered(m) == 16384
               && gch_cluster_map_nnodes(m) == 6,
            "map: 16384 slots covered, 6 nodes");
        tap_ok(strcmp(tmaster(m, 0, b1, sizeof(b1)), "127.0.0.1:54365") == 0
               && strcmp(tmaster(m, 5460, b1, sizeof(b1)),
                         "127.0.0.1:54365") == 0
               && strcmp(tmaster(m, 5461, b1, sizeof(b1)),
                         "127.0.0.1:36109") == 0
               && strcmp(tmaster(m, 16383, b1, sizeof(b1)),
                         "127.0.0.1:35953") == 0,
            "map: range ends go to their masters");
        tap_ok(strcmp(treplica(m, 0, b2, sizeof(b2)), "127.0.0.1:33365") == 0
               && strcmp(treplica(m, 12501, b2, sizeof(b2)),
                         "127.0.0.1:39191") == 0,
            "map: each master's replica (%s)", b2);
        masters = 0;
        for (i = 0; i < gch_cluster_map_nnodes(m); i++) {
            masters += gch_cluster_map_node(m, i)->master;
        }
        tap_ok(masters == 3, "map: 3 of the 6 nodes are masters");
        tap_ok(strcmp(gch_cluster_map_node(m, 0)->id,
                      "4ceb28915ab3c1855a664868a42b2d238a8a4a3f") == 0,
            "map: node ids kept");
        tap_ok(gch_cluster_map_master(m, -1) == -1
               && gch_cluster_map_master(m, 16384) == -1,
            "map: slots out of range have no master");
        gch_cluster_map_free(m);
    }

    /* slot 12501 ({main}) moved to 54365 */
    m = tmap("slots-after-move.resp", NULL, &err);
    tap_ok(m != NULL
           && strcmp(tmaster(m, 12501, b1, sizeof(b1)),
                     "127.0.0.1:54365") == 0
           && strcmp(tmaster(m, 12500, b2, sizeof(b2)),
                     "127.0.0.1:35953") == 0
           && gch_cluster_map_covered(m) == 16384,
        "map: after the move, {main}'s slot alone is on 54365");
    gch_cluster_map_free(m);

    /* 54365 killed: its replica 33365 serves 0-5460 and 12501 */
    m = tmap("slots-after-failover.resp", NULL, &err);
    tap_ok(m != NULL
           && strcmp(tmaster(m, 0, b1, sizeof(b1)), "127.0.0.1:33365") == 0
           && strcmp(tmaster(m, 12501, b2, sizeof(b2)),
                     "127.0.0.1:33365") == 0
           && gch_cluster_map_nnodes(m) == 5,
        "map: after the failover the replica serves the dead one's slots");
    if (m != NULL) {
        tap_ok(strcmp(treplica(m, 0, b1, sizeof(b1)), "0 replicas") == 0,
            "map: the promoted replica has no replica (%s)", b1);
    }
    gch_cluster_map_free(m);

    /* CLUSTER SHARDS, same cluster */
    m = tmap("shards-3m3r.resp", NULL, &err);
    tap_ok(m != NULL && gch_cluster_map_covered(m) == 16384
           && strcmp(tmaster(m, 0, b1, sizeof(b1)), "127.0.0.1:54365") == 0
           && strcmp(treplica(m, 0, b2, sizeof(b2)), "127.0.0.1:33365") == 0
           && gch_cluster_map_nnodes(m) == 6,
        "map: CLUSTER SHARDS of a fresh cluster gives the same map");
    gch_cluster_map_free(m);

    m = tmap("shards-after-failover.resp", NULL, &err);
    tap_ok(m != NULL && gch_cluster_map_covered(m) == 16384
           && strcmp(tmaster(m, 12501, b1, sizeof(b1)),
                     "127.0.0.1:33365") == 0
           && gch_cluster_map_nnodes(m) == 5,
        "map: CLUSTER SHARDS after the failover leaves the failed node "
        "out");
    gch_cluster_map_free(m);
}


typedef struct {
    const char  *resp;
    int          rc;
    const char  *what;
} tbadmap_t;

static const tbadmap_t  tbadmaps[] = {
    { "", GCH_EREDIS, "nothing" },
    { "-ERR This instance has cluster support disabled\r\n", GCH_EREDIS,
      "an error reply" },
    { ":1\r\n", GCH_EREDIS, "an integer" },
    { "*0\r\n", GCH_OK, "an empty map (no slot assigned yet)" },
    { "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$9\r\n127.0.0.1\r\n:7000\r\n",
      GCH_OK, "one master, no id" },
    { "*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$9\r\n127.0.0.1\r\n:7000\r\n",
      GCH_EREDIS, "a slot past 16383" },
    { "*1\r\n*3\r\n:9\r\n:3\r\n*2\r\n$9\r\n127.0.0.1\r\n:7000\r\n",
      GCH_EREDIS, "a range backwards" },
    { "*2\r\n*3\r\n:0\r\n:10\r\n*2\r\n$1\r\na\r\n:7000\r\n"
      "*3\r\n:10\r\n:20\r\n*2\r\n$1\r\nb\r\n:7000\r\n",
      GCH_EREDIS, "a slot served twice" },
    { "*1\r\n*3\r\n:0\r\n:10\r\n*2\r\n$1\r\na\r\n:0\r\n", GCH_OK,
      "port 0: node left out, slots uncovered" },
    { "*1\r\n*3\r\n:0\r\n:10\r\n*2\r\n$1\r\na\r\n:7000\r\n", GCH_OK,
      "a partial map" },
    { "*1\r\n*3\r\n:0\r\n:10\r\n*2\r\n$5\r\na\r\n:7000\r\n", GCH_EREDIS,
      "a bulk length past its bytes" },
    { "*1\r\n*3\r\n:0\r\n:10\r\n*2\r\n$1\r\na\r\n:7000\r\n:1\r\n",
      GCH_EREDIS, "bytes after the reply" },
    { "*2\r\n*3\r\n:0\r\n:10\r\n*2\r\n$1\r\na\r\n:7000\r\n", GCH_EREDIS,
      "fewer ranges than announced" },
    { "*1\r\n*2\r\n:0\r\n:10\r\n", GCH_EREDIS, "a range without master" },
    { "*1\r\n*2\r\n$5\r\nslots\r\n*1\r\n:0\r\n", GCH_EREDIS,
      "SHARDS: odd slot list" },
    { "*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n"
      "*1\r\n*6\r\n$4\r\nport\r\n:7000\r\n$2\r\nip\r\n$1\r\nx\r\n"
      "$4\r\nrole\r\n$6\r\nmaster\r\n", GCH_OK,
      "SHARDS: one master" },
    { "*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n"
      "*1\r\n*6\r\n$4\r\nport\r\n:7000\r\n$2\r\nip\r\n$1\r\nx\r\n"
      "$4\r\nrole\r\n$6\r\nmaster\r\n*0\r\n", GCH_EREDIS,
      "SHARDS: bytes after" },
};


static void
test_cluster_map_bad(void)
{
    int                 rc;
    char                b[300];
    long                n;
    size_t              i, len;
    char               *resp;
    tcount_t            c;
    gch_alloc_t         a;
    gch_error_t         err;
    gch_cluster_map_t  *m;

    for (i = 0; i < sizeof(tbadmaps) / sizeof(tbadmaps[0]); i++) {
        tcount_init(&c, &a, 0);
        memset(&err, 0, sizeof(err));
        rc = gch_cluster_map_parse(&m, tbadmaps[i].resp,
                                   strlen(tbadmaps[i].resp), NULL, &a, &err);
        tap_ok(rc == tbadmaps[i].rc
               && (rc == GCH_OK) == (m != NULL)
               && (rc == GCH_OK || (err.status == 503 && err.message[0])),
            "map: %s -> %d (%s)", tbadmaps[i].what, rc, err.message);
        gch_cluster_map_free(m);
        tap_ok(c.live == 0, "map: %s frees all", tbadmaps[i].what);
    }

    m = NULL;
    gch_cluster_map_parse(&m, tbadmaps[9].resp, strlen(tbadmaps[9].resp),
                          NULL, &gch_alloc_std, &err);
    tap_ok(m != NULL && gch_cluster_map_covered(m) == 11
           && gch_cluster_map_master(m, 11) == -1
           && strcmp(tmaster(m, 10, b, sizeof(b)), "a:7000") == 0,
        "map: a partial map covers what it names");
    gch_cluster_map_free(m);

    /* an empty host is the node that answered; "?" is left out */
    resp = "*2\r\n*3\r\n:0\r\n:10\r\n*3\r\n$0\r\n\r\n:7000\r\n$2\r\nid\r\n"
           "*3\r\n:11\r\n:20\r\n*2\r\n$1\r\n?\r\n:7001\r\n";
    gch_cluster_map_parse(&m, resp, strlen(resp), "10.0.0.9",
                          &gch_alloc_std, &err);
    tap_ok(m != NULL && strcmp(tmaster(m, 0, b, sizeof(b)),
                               "10.0.0.9:7000") == 0
           && gch_cluster_map_master(m, 11) == -1
           && gch_cluster_map_covered(m) == 11,
        "map: empty host = the asked node, ? = unknown");
    gch_cluster_map_free(m);

    /* every allocation failing in turn: GCH_ENOMEM and nothing leaked */
    resp = tread("cluster/shards-after-failover.resp", &len);
    for (n = 1; resp != NULL && n < 200; n++) {
        tcount_init(&c, &a, n);
        rc = gch_cluster_map_parse(&m, resp, len, NULL, &a, &err);
        gch_cluster_map_free(m);
        if (c.live != 0 || (rc != GCH_OK && rc != GCH_ENOMEM)
            || (rc == GCH_OK && c.failed))
        {
            break;
        }
        if (!c.failed) {
            break;                      /* went through without failing */
        }
    }
    tap_ok(resp != NULL && c.live == 0 && rc == GCH_OK,
        "map: out of memory at each of %ld allocations: clean", n - 1);
    free(resp);
}


static void
test_cluster_redirects(void)
{
    char                     *resp;
    size_t                    len;
    gch_cluster_redirect_t    r;

    resp = tread("cluster/ask.resp", &len);
    tap_ok(resp != NULL
           && gch_cluster_redirect(resp, len, &r) == GCH_CLUSTER_ASK
           && r.slot == 12501 && r.port == 54365
           && strcmp(r.host, "127.0.0.1") == 0,
        "redirect: a recorded -ASK");
    free(resp);

    resp = tread("cluster/moved.resp", &len);
    tap_ok(resp != NULL
           && gch_cluster_redirect(resp, 30, &r) == GCH_CLUSTER_MOVED
           && r.slot == 12501 && r.port == 35953
           && strcmp(r.host, "127.0.0.1") == 0,
        "redirect: a recorded -MOVED");
    free(resp);

    tap_ok(gch_cluster_redirect("MOVED 3999 127.0.0.1:6381", 25, &r)
           == GCH_CLUSTER_MOVED && r.slot == 3999 && r.port == 6381,
        "redirect: hiredis's text (no '-', no CRLF)");
    tap_ok(gch_cluster_redirect("MOVED 3999 :6380", 16, &r)
           == GCH_CLUSTER_MOVED && r.host[0] == '\0' && r.port == 6380,
        "redirect: an empty host (the node that answered)");
    tap_ok(gch_cluster_redirect("ASK 1 ::1:6380", 14, &r)
           == GCH_CLUSTER_ASK && strcmp(r.host, "::1") == 0
           && r.port == 6380,
        "redirect: IPv6 host: the port after the last ':'");
    tap_ok(gch_cluster_redirect("ERR wrong number", 16, &r) == 0
           && gch_cluster_redirect("CROSSSLOT Keys", 14, &r) == 0
           && gch_cluster_redirect("MOVEDX", 6, &r) == 0,
        "redirect: other errors are not redirections");
    tap_ok(gch_cluster_redirect("MOVED 16384 h:1", 15, &r) == GCH_EREDIS
           && gch_cluster_redirect("MOVED 1 h", 9, &r) == GCH_EREDIS
           && gch_cluster_redirect("MOVED 1 h:70000", 15, &r) == GCH_EREDIS
           && gch_cluster_redirect("MOVED 1 h:", 10, &r) == GCH_EREDIS
           && gch_cluster_redirect("MOVED x h:1", 11, &r) == GCH_EREDIS
           && gch_cluster_redirect("MOVED 1 h:1 x", 13, &r) == GCH_EREDIS,
        "redirect: malformed MOVED is an error");
}


void
test_cluster(void)
{
    test_cluster_slots();
    test_cluster_commands();
    test_cluster_map_files();
    test_cluster_map_bad();
    test_cluster_redirects();
}
