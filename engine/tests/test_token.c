/*
 * test_token.c -- tokens: round trip, tampering, expiry, truncation, size.
 */

#include <stdio.h>
#include <string.h>

#include "tap.h"


void
test_token(void)
{
    int       rc, bad;
    char      tok[GCH_TOKEN_MAX], t2[GCH_TOKEN_MAX + 8], fid[128];
    char      longid[200];
    size_t    n, i;
    int64_t   exp;
    uint8_t   secret[GCH_SECRET_LEN], other[GCH_SECRET_LEN], nonce[16];

    memset(secret, 0x42, sizeof(secret));
    memset(other, 0x43, sizeof(other));
    for (i = 0; i < sizeof(nonce); i++) {
        nonce[i] = (uint8_t) (i * 17);
    }

    rc = gch_token_make(tok, secret, "f-martin", 1700000000, nonce);
    n = strlen(tok);
    tap_ok(rc == 0 && strncmp(tok, "v1.", 3) == 0 && n < GCH_TOKEN_MAX,
           "token_make: %s", tok);

    rc = gch_token_verify(secret, tok, n, 1600000000, fid, sizeof(fid),
                          &exp);
    tap_ok(rc == 0 && strcmp(fid, "f-martin") == 0 && exp == 1700000000,
           "token_verify: round trip");

    rc = gch_token_verify(secret, tok, n, 1700000000, fid, sizeof(fid),
                          &exp);
    tap_ok(rc == GCH_EUNAUTH && fid[0] == '\0',
           "token_verify: expired when now == expires");

    rc = gch_token_verify(secret, tok, n, 1699999999, fid, sizeof(fid),
                          NULL);
    tap_ok(rc == 0, "token_verify: valid one second before expiry");

    rc = gch_token_verify(other, tok, n, 1600000000, fid, sizeof(fid), NULL);
    tap_ok(rc == GCH_EUNAUTH, "token_verify: other secret refused");

    rc = gch_token_verify(secret, tok, n, 1600000000, fid, sizeof(fid), NULL);
    tap_ok(rc == 0, "token_verify: the first secret again (key schedule "
           "kept per secret)");

    rc = gch_token_verify(secret, tok, n, 1600000000, fid, 8, NULL);
    tap_ok(rc == GCH_EUNAUTH, "token_verify: family id too long for fid");

    /* every single-byte change is refused */
    bad = 0;
    for (i = 0; i < n; i++) {
        memcpy(t2, tok, n + 1);
        t2[i] = (t2[i] == 'A') ? 'B' : 'A';
        if (gch_token_verify(secret, t2, n, 1600000000, fid, sizeof(fid),
                             NULL) != GCH_EUNAUTH)
        {
            bad++;
        }
    }

    tap_ok(bad == 0, "token_verify: every tampered byte refused");

    /* every truncation is refused */
    bad = 0;
    for (i = 0; i < n; i++) {
        if (gch_token_verify(secret, tok, i, 1600000000, fid, sizeof(fid),
                             NULL) != GCH_EUNAUTH)
        {
            bad++;
        }
    }

    tap_ok(bad == 0, "token_verify: every truncation refused");

    /* extended tokens */
    memcpy(t2, tok, n);
    memcpy(t2 + n, ".x", 3);
    tap_ok(gch_token_verify(secret, t2, n + 2, 1600000000, fid, sizeof(fid),
                            NULL) == GCH_EUNAUTH, "token_verify: extra field");
    memcpy(t2 + n, "A", 2);
    tap_ok(gch_token_verify(secret, t2, n + 1, 1600000000, fid, sizeof(fid),
                            NULL) == GCH_EUNAUTH, "token_verify: longer MAC");

    memset(t2, 'A', GCH_TOKEN_MAX + 4);
    tap_ok(gch_token_verify(secret, t2, GCH_TOKEN_MAX + 4, 0, fid,
                            sizeof(fid), NULL) == GCH_EUNAUTH,
           "token_verify: too long");

    tap_ok(gch_token_verify(secret, "v1....", 6, 0, fid, sizeof(fid), NULL)
           == GCH_EUNAUTH, "token_verify: empty fields");

    tap_ok(gch_token_verify(secret, "", 0, 0, fid, sizeof(fid), NULL)
           == GCH_EUNAUTH, "token_verify: empty");

    /* the longest family id still fits */
    memset(longid, 'f', 120);
    longid[120] = '\0';
    rc = gch_token_make(tok, secret, longid, 99999999999LL, nonce);
    n = strlen(tok);
    tap_ok(rc == 0 && n < GCH_TOKEN_MAX
           && gch_token_verify(secret, tok, n, 0, fid, sizeof(fid), NULL) == 0
           && strcmp(fid, longid) == 0, "token: 120-byte family id, %zu "
           "bytes", n);

    longid[121] = '\0';
    longid[120] = 'f';
    tap_ok(gch_token_make(tok, secret, longid, 1, nonce) == GCH_EINVALID
           && tok[0] == '\0', "token_make: 121-byte family id refused");
    tap_ok(gch_token_make(tok, secret, "", 1, nonce) == GCH_EINVALID,
           "token_make: empty family id refused");
}
