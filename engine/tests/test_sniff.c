/*
 * test_sniff.c -- uploaded documents: type by content, safe file names.
 */

#include <string.h>

#include "tap.h"


typedef struct {
    const char  *bytes;
    size_t       len;
    const char  *type;          /* NULL: refused */
    const char  *name;
} tsniff_t;


void
test_sniff(void)
{
    char     out[32];
    size_t   i, n;
    const char  *t;

    static const tsniff_t  cases[] = {
        { "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", 16, "application/pdf", "pdf" },
        { "%PDF-2.0\n", 9, "application/pdf", "pdf 2.0" },
        { "%PDF-", 5, NULL, "pdf signature alone" },
        { "%PDF-x.7\n", 9, NULL, "pdf without version digit" },
        { " %PDF-1.7\n", 10, NULL, "pdf after a space" },
        { "\xff\xd8\xff\xe0\x00\x10JFIF", 10, "image/jpeg", "jpeg" },
        { "\xff\xd8\xff", 3, NULL, "jpeg too short" },
        { "\xff\xd8\xfe\xe0\x00\x10JFIF", 10, NULL, "jpeg bad third byte" },
        { "\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00", 18, "image/png",
          "png" },
        { "\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIDAT\x00\x00", 18, NULL,
          "png without IHDR" },
        { "\x89PNG\r\n\x1a\n", 8, NULL, "png signature alone" },
        { "hello, this is text", 19, NULL, "text" },
        { "", 0, NULL, "empty" },
        { "GIF89a\x01\x00\x01\x00\x00\x00\x00\x00\x00\x00", 16, NULL, "gif" },
    };

    static const char  *names[][2] = {
        { "certificat.pdf", "certificat.pdf" },
        { "../../etc/passwd", "passwd" },
        { "C:\\Users\\x\\scan 1.png", "scan_1.png" },
        { ".htaccess", "htaccess" },
        { "vaccins été 2027.pdf", "vaccins_t_2027.pdf" },
        { "a\r\nb\"c<d>.pdf", "a_b_c_d_.pdf" },
        { "", "document" },
        { "///", "document" },
        { "...", "document" },
        { "fin_.", "fin" },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        t = gch_sniff_document((const uint8_t *) cases[i].bytes,
                               cases[i].len);
        tap_ok(cases[i].type == NULL ? t == NULL
                                     : t != NULL && strcmp(t, cases[i].type)
                                                    == 0,
               "sniff: %s -> %s", cases[i].name,
               cases[i].type ? cases[i].type : "refused");
    }

    tap_ok(gch_sniff_document(NULL, 10) == NULL, "sniff: NULL bytes");

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        n = gch_filename_clean(names[i][0], strlen(names[i][0]), out,
                               sizeof(out));
        tap_ok(strcmp(out, names[i][1]) == 0 && n == strlen(out),
               "filename_clean: \"%s\" -> \"%s\" (got \"%s\")", names[i][0],
               names[i][1], out);
    }

    memset(out, 'x', sizeof(out));
    n = gch_filename_clean("abcdefghijklmnopqrstuvwxyz0123456789.pdf", 40,
                           out, 8);
    tap_ok(n == 7 && strcmp(out, "abcdefg") == 0,
           "filename_clean: truncated to size - 1");

    n = gch_filename_clean("abc", 3, out, 1);
    tap_ok(n == 0 && out[0] == '\0', "filename_clean: size 1");
}
