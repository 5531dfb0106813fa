/*
 * fuzz_sniff.c -- libFuzzer harness for uploaded documents: the type read
 * from the bytes (gch_sniff_document) and the stored file name
 * (gch_filename_clean).  A type is only ever given to bytes that start
 * with its signature; a cleaned name is never empty, never has a slash,
 * a backslash, a leading dot or a byte outside [A-Za-z0-9._-].
 */

#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char         name[64];
    size_t       n, i;
    const char  *t;

    t = gch_sniff_document(data, size);

    if (t != NULL) {
        if (strcmp(t, "application/pdf") == 0) {
            if (size < 6 || memcmp(data, "%PDF-", 5) != 0) {
                abort();
            }
        } else if (strcmp(t, "image/jpeg") == 0) {
            if (size < 3 || data[0] != 0xff || data[1] != 0xd8) {
                abort();
            }
        } else if (strcmp(t, "image/png") == 0) {
            if (size < 16 || data[0] != 0x89 || data[1] != 'P') {
                abort();
            }
        } else {
            abort();
        }
    }

    n = gch_filename_clean((const char *) data, size, name, sizeof(name));

    if (n == 0 || n >= sizeof(name) || name[n] != '\0' || name[0] == '.'
        || strlen(name) != n)
    {
        abort();
    }

    for (i = 0; i < n; i++) {
        if (!((name[i] >= 'a' && name[i] <= 'z')
              || (name[i] >= 'A' && name[i] <= 'Z')
              || (name[i] >= '0' && name[i] <= '9')
              || name[i] == '.' || name[i] == '-' || name[i] == '_'))
        {
            abort();
        }
    }

    return 0;
}
