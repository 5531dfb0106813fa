/*
 * fuzz_demande.c -- libFuzzer harness for the compact demande decoder
 * (gch_dm_decode, gch_dm_json) and the planning entry's: they read what
 * Redis hands back (the idempotency record, the family's demande list,
 * the stream entry, {f:<fid>}:bookings, the in-flight record's plan).  A
 * text it accepts must encode back to the very same bytes and render the
 * three JSON forms; anything else is refused without a leak.
 */

#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int           rc, what;
    char         *enc, *js;
    size_t        n;
    gch_dm_t      d;
    gch_alloc_t   a = fuzz_alloc;

    fuzz_count_reset();

    rc = gch_dm_decode(&d, (const char *) data, size, &a);

    if (rc == GCH_OK) {
        /* canonical: what decodes encodes back to the same bytes */
        enc = gch_dm_encode(&d, &a, &n);
        if (enc == NULL || n != size || memcmp(enc, data, size) != 0) {
            abort();
        }
        a.free(a.ctx, enc);

        for (what = GCH_DM_ANSWER; what <= GCH_DM_DEMANDE; what++) {
            js = gch_dm_render(&d, what, &a, &n);
            if (js == NULL || js[0] != '{' || strlen(js) > n) {
                abort();
            }
            a.free(a.ctx, js);
        }

        gch_dm_free(&d, &a);

    } else if (rc != GCH_EINVALID || d.cells != NULL) {
        abort();
    }

    js = gch_dm_json((const char *) data, size, GCH_DM_ENTRY, &a, &n);
    if ((js == NULL) != (rc != GCH_OK && (size == 0 || data[0] != '{'))) {
        abort();
    }
    a.free(a.ctx, js);

    /* the planning entry: canonical too */
    {
        gch_dm_planning_t  e;

        if (gch_dm_planning_decode(&e, (const char *) data, size) == GCH_OK) {
            enc = gch_dm_planning_encode(&e, &a, &n);
            if (enc == NULL || n != size || memcmp(enc, data, size) != 0) {
                abort();
            }
            a.free(a.ctx, enc);
        }

        js = gch_dm_planning_json((const char *) data, size, &a, &n);
        a.free(a.ctx, js);

        /* the in-flight record's plan, without a catalogue */
        js = gch_dm_plan_json((const char *) data, size, NULL, "f", "k", 1,
                              &a, &n);
        if (js && js[0] != '[') {
            abort();
        }
        a.free(a.ctx, js);
    }

    fuzz_count_check();

    return 0;
}
