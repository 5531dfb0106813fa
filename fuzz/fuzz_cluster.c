/*
 * fuzz_cluster.c -- libFuzzer harness for the Redis Cluster slot-map
 * parser (gch_cluster_map_parse, CLUSTER SLOTS and CLUSTER SHARDS
 * replies), the -MOVED/-ASK parser and the slot of a RESP command.  A map
 * that parses must be consistent: every covered slot names a node of the
 * map, the count of covered slots is right, and every node has a host and
 * a port.
 */

#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "gch_cluster.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                        s, i, rc;
    size_t                     n, k, covered, nodes;
    const uint16_t            *idx;
    gch_error_t                err;
    gch_cluster_map_t         *m;
    gch_cluster_redirect_t     r;
    const gch_cluster_node_t  *node;

    fuzz_count_reset();

    if (gch_cluster_map_parse(&m, (const char *) data, size, "asked",
                              &fuzz_alloc, &err)
        == GCH_OK)
    {
        nodes = gch_cluster_map_nnodes(m);
        for (k = 0; k < nodes; k++) {
            node = gch_cluster_map_node(m, k);
            if (node == NULL || node->host == NULL || node->id == NULL
                || node->port < 1 || node->port > 65535
                || strlen(node->host) > 255)
            {
                abort();
            }
        }

        covered = 0;
        for (s = 0; s < GCH_CLUSTER_SLOTS; s++) {
            i = gch_cluster_map_master(m, s);
            if (i >= (int) nodes || (i >= 0
                && !gch_cluster_map_node(m, (size_t) i)->master))
            {
                abort();
            }
            covered += (i >= 0);
            n = gch_cluster_map_replicas(m, s, &idx);
            for (k = 0; k < n; k++) {
                if (idx[k] >= nodes || (int) idx[k] == i) {
                    abort();
                }
            }
        }
        if (covered != gch_cluster_map_covered(m)) {
            abort();
        }
        gch_cluster_map_free(m);
    }

    fuzz_count_check();

    rc = gch_cluster_redirect((const char *) data, size, &r);
    if (rc > 0 && (r.slot < 0 || r.slot >= GCH_CLUSTER_SLOTS || r.port < 1
                   || r.port > 65535 || strlen(r.host) >= sizeof(r.host)))
    {
        abort();
    }

    s = gch_cluster_cmd_slot((const char *) data, size);
    if (s >= GCH_CLUSTER_SLOTS || s < GCH_CLUSTER_BADCMD) {
        abort();
    }

    return 0;
}
