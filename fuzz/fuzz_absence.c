/*
 * fuzz_absence.c -- libFuzzer harness for the absence body parser
 * (gch_absence_req_parse, POST /api/absences): bounded copies,
 * NUL-terminated, the booking id never empty, nothing accepted that is
 * not JSON, the same answer twice.
 */

#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int          rc, rc2;
    char         bid[72], doc[72], bid2[72], doc2[72];
    char         reason[40], reason2[40];
    gch_error_t  err;

    memset(bid, 0x5a, sizeof(bid));
    memset(doc, 0x5a, sizeof(doc));
    memset(reason, 0x5a, sizeof(reason));

    rc = gch_absence_req_parse((const char *) data, size, bid, sizeof(bid),
                               reason, sizeof(reason), doc, sizeof(doc),
                               &err);

    if (memchr(bid, '\0', sizeof(bid)) == NULL
        || memchr(reason, '\0', sizeof(reason)) == NULL
        || memchr(doc, '\0', sizeof(doc)) == NULL)
    {
        abort();
    }

    if (rc == GCH_OK) {
        if (bid[0] == '\0' || strlen(bid) > 64 || strlen(doc) > 64
            || reason[0] == '\0' || strlen(reason) > 32
            || strspn(reason, "abcdefghijklmnopqrstuvwxyz0123456789_-")
               != strlen(reason)
            || memchr(data, '\f', size) || memchr(data, '\v', size))
        {
            abort();
        }

    } else if (bid[0] != '\0' || doc[0] != '\0' || reason[0] != '\0'
               || err.code == NULL
               || err.message[0] == '\0')
    {
        abort();
    }

    rc2 = gch_absence_req_parse((const char *) data, size, bid2,
                                sizeof(bid2), reason2, sizeof(reason2), doc2,
                                sizeof(doc2), &err);

    if (rc2 != rc
        || (rc == GCH_OK
            && (strcmp(bid, bid2) != 0 || strcmp(doc, doc2) != 0
                || strcmp(reason, reason2) != 0)))
    {
        abort();
    }

    return 0;
}
