/*
 * gch_cluster.h -- Redis Cluster routing, sans I/O.
 *
 * What a client of Redis Cluster computes before it sends anything: the
 * hash slot of a key (CRC16-XMODEM of its hash tag, mod 16384), the slot of
 * a command or of a whole MULTI ... EXEC plan (from the keys of its
 * commands; keys in two slots are a programming error, GCH_CLUSTER_CROSS),
 * the slot map (slot -> master, replicas) read from the RESP bytes of a
 * CLUSTER SLOTS or CLUSTER SHARDS reply, and the -MOVED / -ASK redirections.
 * The nginx module, the worker, guichetctl and guichet-office own the
 * sockets; this file only reads and computes (docs/architecture.md, "Redis
 * Cluster").
 */

#ifndef GCH_CLUSTER_H
#define GCH_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "gch.h"


#define GCH_CLUSTER_SLOTS      16384

/* Negative "slots": what a command's slot can be besides 0..16383. */
#define GCH_CLUSTER_NOKEY      -1   /* no key: any node (PING, MULTI, WAIT) */
#define GCH_CLUSTER_CROSS      -2   /* keys in two slots: never send it     */
#define GCH_CLUSTER_UNKNOWN    -3   /* a command whose keys we don't know   */
#define GCH_CLUSTER_BADCMD     -4   /* not a RESP array of bulk strings     */


/* CRC16, the XMODEM variant (poly 0x1021, init 0) Redis Cluster uses. */
uint16_t gch_cluster_crc16(const void *buf, size_t len);

/* The hash slot of a key: of the part between the first '{' and the next
 * '}' when that part is not empty, of the whole key otherwise. */
int gch_cluster_key_slot(const void *key, size_t len);

/* The most arguments (the command's name included) of a command whose
 * slot is computed from its RESP text or without argvlen: more is
 * _BADCMD.  The booking path's EXISTS of one turn's refusals has up to
 * 129 (its caller checks that at compile time). */
#define GCH_CLUSTER_ARGV_MAX   256

/* The slot of one command given as arguments (argvlen NULL: strlen), of
 * one RESP-formatted command, or of every command of a plan (MULTI/EXEC
 * and the like have no key).  A slot, or GCH_CLUSTER_NOKEY / _CROSS /
 * _UNKNOWN / _BADCMD. */
int gch_cluster_argv_slot(int argc, const char **argv,
    const size_t *argvlen);
int gch_cluster_cmd_slot(const char *resp, size_t len);
int gch_cluster_cmds_slot(const gch_cmds_t *cmds);

/* The slot of two pieces of a transaction together: NOKEY joins
 * anything, two different slots give CROSS, errors stay errors. */
int gch_cluster_slot_join(int a, int b);


/* ------------------------------------------------------------------ */
/* the slot map                                                        */

typedef struct {
    const char  *host;          /* NUL-terminated                      */
    int          port;
    const char  *id;            /* node id, "" when the reply had none */
    int          master;        /* serves a slot range as master       */
} gch_cluster_node_t;

typedef struct gch_cluster_map_s  gch_cluster_map_t;

/*
 * Builds the map from the whole RESP2 reply of CLUSTER SLOTS or CLUSTER
 * SHARDS (told apart by their shape).  An empty host (the node does not
 * know its own address) becomes asked_host, the host of the node that
 * answered (when NULL: the node is left out); "?" (unknown endpoint) is
 * left out.  CLUSTER SHARDS nodes whose health is not "online" are left
 * out (a master left out leaves its slots uncovered).  Returns GCH_OK,
 * GCH_ENOMEM, or GCH_EREDIS when the bytes are not such a reply (err
 * then says why).
 */
int gch_cluster_map_parse(gch_cluster_map_t **out, const char *resp,
    size_t len, const char *asked_host, const gch_alloc_t *a,
    gch_error_t *err);
void gch_cluster_map_free(gch_cluster_map_t *m);

/* The nodes of the map, masters and replicas, each once (by host:port). */
size_t gch_cluster_map_nnodes(const gch_cluster_map_t *m);
const gch_cluster_node_t *gch_cluster_map_node(const gch_cluster_map_t *m,
    size_t i);
/* The index of the master of a slot, or -1 when no node serves it. */
int gch_cluster_map_master(const gch_cluster_map_t *m, int slot);
/* The replicas of a slot's master: their count, and *idx their node
 * indices (owned by the map). */
size_t gch_cluster_map_replicas(const gch_cluster_map_t *m, int slot,
    const uint16_t **idx);
/* How many of the 16384 slots have a master. */
size_t gch_cluster_map_covered(const gch_cluster_map_t *m);


/* ------------------------------------------------------------------ */
/* redirections                                                        */

#define GCH_CLUSTER_MOVED   1
#define GCH_CLUSTER_ASK     2

typedef struct {
    int     kind;               /* GCH_CLUSTER_MOVED or _ASK           */
    int     slot;
    int     port;
    char    host[256];          /* "" when the error named none: the
                                   node that answered                  */
} gch_cluster_redirect_t;

/* An error reply's text ("MOVED 3999 127.0.0.1:6381", with or without
 * the leading '-' and the CRLF): GCH_CLUSTER_MOVED or _ASK with r filled,
 * 0 when it is another error, GCH_EREDIS when it says MOVED/ASK but is
 * malformed. */
int gch_cluster_redirect(const char *err, size_t len,
    gch_cluster_redirect_t *r);

#endif /* GCH_CLUSTER_H */
