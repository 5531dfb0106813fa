/*
 * fuzz_booking.c -- libFuzzer harness for the booking request parser
 * (gch_booking_req_parse), the first parser every POST /api/bookings body
 * meets.  Every allocation is counted: a leak or a double free fails.
 */

#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gch_error_t        err;
    gch_booking_req_t  req;

    fuzz_count_reset();

    if (gch_booking_req_parse(&req, (const char *) data, size, 200,
                              &fuzz_alloc, &err)
        == GCH_OK)
    {
        if (req.nitems == 0 || req.nitems > 200) {
            abort();
        }
        gch_booking_req_free(&req);

    } else if (err.code == NULL || err.status != 400) {
        abort();
    }

    fuzz_count_check();
    return 0;
}
