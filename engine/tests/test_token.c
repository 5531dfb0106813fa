/*
 * test_token.c -- tokens: round trip, tampering, expiry, truncation, size,
 * for v3 and v4 (the issue time), the town a token names, tokens made
 * before towns (v1, v2), and the catalogue_behind comparison.
 */

#include <stdio.h>
#include <string.h>

#include "tap.h"


static void
test_token_v2(const uint8_t *secret, const uint8_t *other,
    const uint8_t *nonce)
{
    int      rc, bad;
    char     tok[GCH_TOKEN_MAX], t2[GCH_TOKEN_MAX + 8], fid[128];
    char     longid[200];
    size_t   n, i;
    int64_t  exp;

    rc = gch_token_issue(tok, secret, "main", "f-martin", 1600000000,
                         1700000000,
                         nonce);
    n = strlen(tok);
    tap_ok(rc == 0 && strncmp(tok, "v4.main.", 8) == 0 && n < GCH_TOKEN_MAX
           && strstr(tok, ".1700000000.1600000000.") != NULL,
           "token_issue: %s", tok);

    rc = gch_token_verify(secret, "main", tok, n, 1650000000, fid, sizeof(fid),
                          &exp);
    tap_ok(rc == 0 && strcmp(fid, "f-martin") == 0 && exp == 1700000000
           && gch_token_issued(tok, n) == 1600000000,
           "token v4: round trip, issue time read back");

    tap_ok(gch_token_verify(secret, "main", tok, n, 1700000000, fid,
                            sizeof(fid),
                            NULL) == GCH_EUNAUTH,
           "token v4: expired when now == expires");
    tap_ok(gch_token_verify(other, "main", tok, n, 1650000000, fid,
                            sizeof(fid),
                            NULL) == GCH_EUNAUTH,
           "token v4: other secret refused");

    bad = 0;
    for (i = 0; i < n; i++) {
        memcpy(t2, tok, n + 1);
        t2[i] = (t2[i] == '1') ? '2' : ((t2[i] == 'A') ? 'B' : 'A');
        bad += gch_token_verify(secret, "main", t2, n, 1650000000, fid,
                                sizeof(fid),
                                NULL) != GCH_EUNAUTH;
        bad += fid[0] != '\0';
    }

    tap_ok(bad == 0, "token v4: every tampered byte refused");

    bad = 0;
    for (i = 0; i < n; i++) {
        bad += gch_token_verify(secret, "main", tok, i, 1650000000, fid,
                                sizeof(fid),
                                NULL) != GCH_EUNAUTH;
    }

    tap_ok(bad == 0, "token v4: every truncation refused");

    memcpy(t2, tok, n);
    memcpy(t2 + n, ".x", 3);
    tap_ok(gch_token_verify(secret, "main", t2, n + 2, 1650000000, fid,
                            sizeof(fid),
                            NULL) == GCH_EUNAUTH, "token v4: extra field");

    /* a v4 token relabelled v3 (or the reverse) loses its MAC */
    memcpy(t2, tok, n + 1);
    t2[1] = '1';
    tap_ok(gch_token_verify(secret, "main", t2, n, 1650000000, fid,
                            sizeof(fid),
                            NULL) == GCH_EUNAUTH, "token v4 relabelled v1");

    tap_ok(gch_token_issue(tok, secret, "main", "f", 1700000001, 1700000000,
                           nonce)
           == GCH_EINVALID && tok[0] == '\0',
           "token_issue: issued after expiry refused");
    tap_ok(gch_token_issue(tok, secret, "main", "f", -1, 1700000000, nonce)
           == GCH_EINVALID, "token_issue: negative issue time refused");

    rc = gch_token_make(tok, secret, "main", "f-martin", 1700000000, nonce);
    tap_ok(rc == 0 && gch_token_issued(tok, strlen(tok)) == -1,
           "token v3: no issue time (-1)");

    /* the longest family id and ten-digit times still fit */
    memset(longid, 'f', 120);
    longid[120] = '\0';
    rc = gch_token_issue(tok, secret, "main", longid, 9999999999LL,
                         9999999999LL,
                         nonce);
    n = strlen(tok);
    tap_ok(rc == 0 && n < GCH_TOKEN_MAX
           && gch_token_verify(secret, "main", tok, n, 0, fid, sizeof(fid),
                               NULL) == 0
           && strcmp(fid, longid) == 0
           && gch_token_issued(tok, n) == 9999999999LL,
           "token v4: 120-byte family id, %zu bytes", n);

    rc = gch_token_issue(tok, secret, "main", longid, 1, 999999999999999999LL,
                         nonce);
    tap_ok(rc == GCH_EINVALID || strlen(tok) < GCH_TOKEN_MAX,
           "token v4: never longer than GCH_TOKEN_MAX");

    /* catalogue_behind: issued (s) against confirmed (ms) */
    tap_ok(gch_catalogue_behind(1000, 1000000) == 1,
           "catalogue_behind: token issued when the catalogue was "
           "confirmed: not yet");
    tap_ok(gch_catalogue_behind(1000, 1000000 + GCH_CATALOGUE_SLACK_MS)
           == 1, "catalogue_behind: issued the slack before: not yet");
    tap_ok(gch_catalogue_behind(1000, 1000001 + GCH_CATALOGUE_SLACK_MS)
           == 0, "catalogue_behind: confirmed after the slack: forbidden");
    tap_ok(gch_catalogue_behind(2000, 1000000) == 1,
           "catalogue_behind: token newer than the confirmation: not yet");
    tap_ok(gch_catalogue_behind(-1, 0) == 0,
           "catalogue_behind: v1 token (no issue time): forbidden");
}


/* a token names its town: another town refuses it, and tokens made before
 * towns (v1, v2, by the code of that time) are the town "main"'s */
static void
test_token_town(const uint8_t *secret, const uint8_t *nonce)
{
    int          rc, bad;
    char         tok[GCH_TOKEN_MAX], t2[GCH_TOKEN_MAX], fid[128];
    size_t       n, i;
    const char  *v2 =
        "v2.Zi1tYXJ0aW4.1700000000.1600000000.ABEiM0RVZneImaq7zN3"
        "u_w.vGsvLzb7Xyg3rmLOCPa66qk3wMHWhN4Sc-HKiaAyCeQ";
    const char  *v1 =
        "v1.c3RhZmY6YW5h.1700000000.ABEiM0RVZneImaq7zN3u_w.Qy9zls"
        "bm43LHITsa7HVZZ7hQz-6lsrLyDe5w6ghWSms";

    rc = gch_token_issue(tok, secret, "bellerive", "f-martin", 1600000000,
                         1700000000, nonce);
    n = strlen(tok);
    tap_ok(rc == 0 && strncmp(tok, "v4.bellerive.", 13) == 0
           && gch_token_verify(secret, "bellerive", tok, n, 1650000000, fid,
                               sizeof(fid), NULL) == 0
           && strcmp(fid, "f-martin") == 0
           && gch_token_issued(tok, n) == 1600000000,
           "token v4: names its town, verifies for it");
    tap_ok(gch_token_verify(secret, "main", tok, n, 1650000000, fid,
                            sizeof(fid), NULL) == GCH_EUNAUTH
           && fid[0] == '\0'
           && gch_token_verify(secret, "belleriv", tok, n, 1650000000, fid,
                               sizeof(fid), NULL) == GCH_EUNAUTH
           && gch_token_verify(secret, "bellerive2", tok, n, 1650000000, fid,
                               sizeof(fid), NULL) == GCH_EUNAUTH,
           "token v4: another town (same secret) refuses it");

    /* renamed to another town in the text: the MAC says no */
    memcpy(t2, "v4.amberieu.", 12);
    memcpy(t2 + 12, tok + 13, n - 13 + 1);
    tap_ok(gch_token_verify(secret, "amberieu", t2, strlen(t2), 1650000000,
                            fid, sizeof(fid), NULL) == GCH_EUNAUTH,
           "token v4: its town rewritten is refused");

    rc = gch_token_make(tok, secret, "bellerive", "staff:ana", 1700000000,
                        nonce);
    n = strlen(tok);
    tap_ok(rc == 0 && strncmp(tok, "v3.bellerive.", 13) == 0
           && gch_token_verify(secret, "bellerive", tok, n, 1650000000, fid,
                               sizeof(fid), NULL) == 0
           && strcmp(fid, "staff:ana") == 0
           && gch_token_issued(tok, n) == -1
           && gch_token_verify(secret, "main", tok, n, 1650000000, fid,
                               sizeof(fid), NULL) == GCH_EUNAUTH,
           "token v3: names its town, refused by another");

    bad = 0;
    for (i = 0; i < n; i++) {
        memcpy(t2, tok, n + 1);
        t2[i] = (t2[i] == 'A') ? 'B' : 'A';
        bad += gch_token_verify(secret, "bellerive", t2, n, 1650000000, fid,
                                sizeof(fid), NULL) != GCH_EUNAUTH;
    }

    tap_ok(bad == 0, "token v3: every tampered byte refused");

    tap_ok(gch_token_make(tok, secret, "Bellerive", "f", 1, nonce)
           == GCH_EINVALID && tok[0] == '\0'
           && gch_token_issue(tok, secret, "", "f", 0, 1, nonce)
           == GCH_EINVALID, "token: a bad town id is refused");

    /* before towns */
    tap_ok(gch_token_verify(secret, "main", v2, strlen(v2), 1650000000, fid,
                            sizeof(fid), NULL) == 0
           && strcmp(fid, "f-martin") == 0
           && gch_token_issued(v2, strlen(v2)) == 1600000000,
           "token v2 (before towns): the town main's");
    tap_ok(gch_token_verify(secret, "bellerive", v2, strlen(v2), 1650000000,
                            fid, sizeof(fid), NULL) == GCH_EUNAUTH,
           "token v2 (before towns): refused by another town");
    tap_ok(gch_token_verify(secret, "main", v1, strlen(v1), 1650000000, fid,
                            sizeof(fid), NULL) == 0
           && strcmp(fid, "staff:ana") == 0
           && gch_token_verify(secret, "bellerive", v1, strlen(v1),
                               1650000000, fid, sizeof(fid), NULL)
           == GCH_EUNAUTH,
           "token v1 (before towns): the town main's only");
}


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

    rc = gch_token_make(tok, secret, "main", "f-martin", 1700000000, nonce);
    n = strlen(tok);
    tap_ok(rc == 0 && strncmp(tok, "v3.main.", 8) == 0 && n < GCH_TOKEN_MAX,
           "token_make: %s", tok);

    rc = gch_token_verify(secret, "main", tok, n, 1600000000, fid, sizeof(fid),
                          &exp);
    tap_ok(rc == 0 && strcmp(fid, "f-martin") == 0 && exp == 1700000000,
           "token_verify: round trip");

    rc = gch_token_verify(secret, "main", tok, n, 1700000000, fid, sizeof(fid),
                          &exp);
    tap_ok(rc == GCH_EUNAUTH && fid[0] == '\0',
           "token_verify: expired when now == expires");

    rc = gch_token_verify(secret, "main", tok, n, 1699999999, fid, sizeof(fid),
                          NULL);
    tap_ok(rc == 0, "token_verify: valid one second before expiry");

    rc = gch_token_verify(other, "main", tok, n, 1600000000, fid,
                          sizeof(fid), NULL);
    tap_ok(rc == GCH_EUNAUTH, "token_verify: other secret refused");

    rc = gch_token_verify(secret, "main", tok, n, 1600000000, fid,
                          sizeof(fid), NULL);
    tap_ok(rc == 0, "token_verify: the first secret again (key schedule "
           "kept per secret)");

    rc = gch_token_verify(secret, "main", tok, n, 1600000000, fid, 8, NULL);
    tap_ok(rc == GCH_EUNAUTH, "token_verify: family id too long for fid");

    /* every single-byte change is refused */
    bad = 0;
    for (i = 0; i < n; i++) {
        memcpy(t2, tok, n + 1);
        t2[i] = (t2[i] == 'A') ? 'B' : 'A';
        if (gch_token_verify(secret, "main", t2, n, 1600000000, fid,
                             sizeof(fid),
                             NULL) != GCH_EUNAUTH)
        {
            bad++;
        }
    }

    tap_ok(bad == 0, "token_verify: every tampered byte refused");

    /* every truncation is refused */
    bad = 0;
    for (i = 0; i < n; i++) {
        if (gch_token_verify(secret, "main", tok, i, 1600000000, fid,
                             sizeof(fid),
                             NULL) != GCH_EUNAUTH)
        {
            bad++;
        }
    }

    tap_ok(bad == 0, "token_verify: every truncation refused");

    /* extended tokens */
    memcpy(t2, tok, n);
    memcpy(t2 + n, ".x", 3);
    tap_ok(gch_token_verify(secret, "main", t2, n + 2, 1600000000, fid,
                            sizeof(fid),
                            NULL) == GCH_EUNAUTH, "token_verify: extra field");
    memcpy(t2 + n, "A", 2);
    tap_ok(gch_token_verify(secret, "main", t2, n + 1, 1600000000, fid,
                            sizeof(fid),
                            NULL) == GCH_EUNAUTH, "token_verify: longer MAC");

    memset(t2, 'A', GCH_TOKEN_MAX + 4);
    tap_ok(gch_token_verify(secret, "main", t2, GCH_TOKEN_MAX + 4, 0, fid,
                            sizeof(fid), NULL) == GCH_EUNAUTH,
           "token_verify: too long");

    tap_ok(gch_token_verify(secret, "main", "v1....", 6, 0, fid, sizeof(fid),
                            NULL)
           == GCH_EUNAUTH, "token_verify: empty fields");

    tap_ok(gch_token_verify(secret, "main", "", 0, 0, fid, sizeof(fid), NULL)
           == GCH_EUNAUTH, "token_verify: empty");

    /* the longest family id still fits */
    memset(longid, 'f', 120);
    longid[120] = '\0';
    rc = gch_token_make(tok, secret, "main", longid, 99999999999LL, nonce);
    n = strlen(tok);
    tap_ok(rc == 0 && n < GCH_TOKEN_MAX
           && gch_token_verify(secret, "main", tok, n, 0, fid, sizeof(fid),
                               NULL) == 0
           && strcmp(fid, longid) == 0, "token: 120-byte family id, %zu "
           "bytes", n);

    longid[121] = '\0';
    longid[120] = 'f';
    tap_ok(gch_token_make(tok, secret, "main", longid, 1,
                          nonce) == GCH_EINVALID
           && tok[0] == '\0', "token_make: 121-byte family id refused");
    tap_ok(gch_token_make(tok, secret, "main", "", 1, nonce) == GCH_EINVALID,
           "token_make: empty family id refused");

    test_token_v2(secret, other, nonce);
    test_token_town(secret, nonce);
}
