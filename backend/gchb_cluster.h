/*
 * gchb_cluster.h -- private to the Redis Cluster routing of the back-end
 * programs: the routing thread (cluster.c), the program's commands
 * (cluster_cmd.c) and the nodes (cluster_node.c) share these.
 */

#ifndef GCHB_CLUSTER_H
#define GCHB_CLUSTER_H

#include <stdint.h>

#include <gch_cluster.h>

#include "gchb.h"


#define GCHB_CLUSTER_NODES   256        /* node connections kept         */


typedef struct {
    char           host[256];
    int            port;
    redisContext  *c;
} gchb_cnode_t;

typedef struct gchb_cproxy_s {
    int                 fd;             /* our end of the socketpair      */
    char               *seeds;          /* "host:port,host:port"          */
    char               *password;       /* "" for none                    */
    gch_cluster_map_t  *map;
    gchb_cnode_t       *nodes[GCHB_CLUSTER_NODES];
    size_t              nnodes;
    gchb_buf_t          out;            /* replies not yet written        */
    int                 dead;           /* close the program's connection */
    int64_t             logged;         /* last "cannot connect" logged   */

    int                 multi;          /* between MULTI and EXEC         */
    redisReply        **queued;         /* commands of the transaction    */
    size_t              nqueued;
    size_t              capqueued;
    gchb_cnode_t       *pin;            /* WATCH's node                   */
    int                 pin_slot;
    int                 pin_ask;        /* pinned through -ASK: ASKING    */
    int                 pin_broken;     /* the watched slot moved         */

    unsigned long long  scan_token;     /* the cursor SCAN handed out     */
    size_t              scan_master;
    char                scan_cursor[32];

    struct gchb_cproxy_s  *next;        /* gchb_live, under gchb_live_mu */
} gchb_cproxy_t;


/* cluster_node.c */

/* The node host:port, found or added (not yet connected); NULL when the
 * table is full or out of memory. */
gchb_cnode_t *gchb_cnode(gchb_cproxy_t *p, const char *host, int port);
void gchb_cnode_drop(gchb_cnode_t *n);
/* Connects n if it is not; 0, or -1 (logged at most once a second). */
int gchb_cnode_connect(gchb_cproxy_t *p, gchb_cnode_t *n);

/* Reads the slot map again; 0, or -1 when no node answered. */
int gchb_cluster_map_refresh(gchb_cproxy_t *p);
/* The master of slot, or NULL; for NOKEY, the (skip mod masters)-th. */
gchb_cnode_t *gchb_cluster_master(gchb_cproxy_t *p, int slot, int skip);

/* Appends a command the program sent (an array of strings) to c. */
void gchb_cluster_append(redisContext *c, const redisReply *cmd);
/* What an error reply asks: a redirect kind, GCHB_TRYAGAIN (3), other
 * (0). */
int gchb_cluster_redirected(const redisReply *r,
    gch_cluster_redirect_t *to);
/* One command, or a transaction, to the master of slot through MOVED /
 * ASK / TRYAGAIN: its reply, or NULL (see cluster_node.c). */
redisReply *gchb_cluster_route(gchb_cproxy_t *p, int slot,
    redisReply **cmds, size_t n, int txn, int *nil_exec,
    gchb_cnode_t **used, int *used_ask);


/* cluster_cmd.c */

/* A hiredis reply (RESP2) written back as the bytes Redis sent. */
void gchb_cluster_resp_reply(gchb_buf_t *b, const redisReply *r);
/* Forgets the queued commands of a transaction (leaves MULTI). */
void gchb_cluster_txn_clear(gchb_cproxy_t *p);
/* The commands the program sent at once, in order (frees them). */
void gchb_cluster_batch(gchb_cproxy_t *p, redisReply **cmds, size_t n);

#endif /* GCHB_CLUSTER_H */
