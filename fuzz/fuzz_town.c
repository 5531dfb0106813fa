/*
 * fuzz_town.c -- libFuzzer harness for the town file / catalogue parser
 * (gch_town_parse).  A file that parses must write back as a catalogue
 * that parses again.
 */

#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char         *out;
    size_t        len;
    gch_town_t   *t, *t2;
    gch_error_t   err;

    fuzz_count_reset();

    if (gch_town_parse(&t, (const char *) data, size, &fuzz_alloc, &err)
        == GCH_OK)
    {
        if (gch_town_write(t, &out, &len, &fuzz_alloc) == GCH_OK) {
            if (gch_town_parse(&t2, out, len, &fuzz_alloc, &err) != GCH_OK) {
                abort();                 /* our own output must parse */
            }
            gch_town_free(t2);
            fuzz_alloc.free(NULL, out);
        }
        gch_town_free(t);
    }

    fuzz_count_check();
    return 0;
}
