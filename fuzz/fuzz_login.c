/*
 * fuzz_login.c -- libFuzzer harness for the login body parser
 * (gch_login_req_parse): bounded copies, NUL-terminated, no overflow.
 */

#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char         login[128], password[256];
    gch_error_t  err;

    if (gch_login_req_parse((const char *) data, size, login, sizeof(login),
                            password, sizeof(password), &err)
        == GCH_OK)
    {
        if (strlen(login) >= sizeof(login)
            || strlen(password) >= sizeof(password))
        {
            abort();
        }
    }

    return 0;
}
