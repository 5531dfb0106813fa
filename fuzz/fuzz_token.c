/*
 * fuzz_token.c -- libFuzzer harness for bearer token and cookie checks
 * (gch_token_verify): nothing but a token made with the secret verifies.
 */

#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char            fid[128];
    int64_t         exp;
    static uint8_t  secret[GCH_SECRET_LEN] = { 1, 2, 3 };

    if (gch_token_verify(secret, "main", (const char *) data, size,
                         1700000000,
                         fid, sizeof(fid), &exp)
        == GCH_OK)
    {
        /* a forged MAC verified: only possible with the secret */
        abort();
    }

    return 0;
}
