/*
 * sniff.c -- documents families upload: their type read from their bytes,
 * and a file name safe to store and to send back.
 *
 * guichet-office accepts PDF, JPEG and PNG files only, judged by content,
 * never by the name or the declared Content-Type alone: a file is what its
 * first bytes say (PDF "%PDF-" and a version digit, JPEG FF D8 FF, PNG the
 * 8-byte signature followed by its IHDR chunk).  Pure functions: no
 * allocation, no I/O.
 */

#include <string.h>

#include "gch.h"


/* See gch.h. */
const char *
gch_sniff_document(const uint8_t *p, size_t len)
{
    static const uint8_t  png[8] = { 0x89, 'P', 'N', 'G', '\r', '\n',
                                     0x1a, '\n' };

    if (p == NULL) {
        return NULL;
    }

    if (len >= 8 && memcmp(p, "%PDF-", 5) == 0
        && p[5] >= '1' && p[5] <= '9')
    {
        return "application/pdf";
    }

    if (len >= 4 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff) {
        return "image/jpeg";
    }

    if (len >= 16 && memcmp(p, png, 8) == 0
        && memcmp(p + 12, "IHDR", 4) == 0)
    {
        return "image/png";
    }

    return NULL;
}


/* See gch.h. */
size_t
gch_filename_clean(const char *in, size_t len, char *out, size_t size)
{
    size_t         i, n;
    unsigned char  c;

    if (size == 0) {
        return 0;
    }

    n = 0;

    for (i = 0; in != NULL && i < len && n + 1 < size; i++) {
        c = (unsigned char) in[i];

        if (c == '/' || c == '\\') {
            n = 0;                       /* only the last path segment */
            continue;
        }

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || c == '-' || c == '_'
            || (c == '.' && n > 0))
        {
            out[n++] = (char) c;
            continue;
        }

        if (c == '.') {
            continue;                    /* no leading dot: no hidden file */
        }

        if (n > 0 && out[n - 1] != '_') {
            out[n++] = '_';              /* spaces, accents, controls */
        }
    }

    while (n > 0 && (out[n - 1] == '_' || out[n - 1] == '.')) {
        n--;
    }

    if (n == 0) {
        n = strlen("document") < size ? strlen("document") : size - 1;
        memcpy(out, "document", n);
    }

    out[n] = '\0';
    return n;
}
