/*
 * token.c -- bearer tokens and session cookies.
 *
 *     v4.<town>.<b64url family_id>.<expires>.<issued>.<b64url nonce16>.<mac>
 *     v3.<town>.<b64url family_id>.<expires>.<b64url nonce16>.<b64url mac>
 *     v2.<b64url family_id>.<expires>.<issued>.<b64url nonce16>.<b64url mac>
 *     v1.<b64url family_id>.<expires>.<b64url nonce16>.<b64url mac>
 *
 * mac = HMAC-SHA256(secret, everything before the last dot); base64url
 * without padding; <expires> and <issued> are Unix seconds in decimal.
 * A token names its town (issue 21): <town> is the town id (gch_town_id_ok)
 * of the server that issued it, under the MAC, and a server of another
 * town refuses it even when the towns share their secret.  v3 and v4 are
 * what is made now; v1 and v2, made before tokens named their town, are
 * tokens of the one town of those days and verify for the town "main"
 * only (GCH_TOWN_DEFAULT: a platform upgraded in place keeps its sessions).
 * v2 says when the token was issued, so that a family the catalogue of an
 * nginx worker does not know yet can be told "not yet" (the catalogue is
 * older than the token: 503 catalogue_behind) rather than "forbidden"
 * (docs/errors.md); v1 tokens, still made for staff by guichet-office,
 * verify as before.  The nginx module verifies one on every API request;
 * the module's login and guichetctl make v2 ones.  The libsodium
 * primitives used here (HMAC-SHA256, base64, sodium_memcmp) need no
 * sodium_init(), so these functions are safe before it; the nonce is the
 * caller's (randombytes_buf() after sodium_init()).
 *
 * HMAC's key schedule (the two padded key blocks hashed) is kept per thread
 * for the last secret used: a verification then hashes the message only,
 * 40 % fewer SHA-256 blocks for a token.  A process has one secret.
 */

#include <string.h>

#include <sodium.h>

#include "gch.h"


#define GCH_B64  sodium_base64_VARIANT_URLSAFE_NO_PADDING


static __thread struct {
    int                           ready;
    uint8_t                       secret[GCH_SECRET_LEN];
    crypto_auth_hmacsha256_state  keyed;   /* after init(secret) */
} gch_mac_key;


static void
gch_token_mac(uint8_t mac[crypto_auth_hmacsha256_BYTES],
    const uint8_t *secret, const char *msg, size_t len)
{
    crypto_auth_hmacsha256_state  st;

    if (!gch_mac_key.ready
        || sodium_memcmp(gch_mac_key.secret, secret, GCH_SECRET_LEN) != 0)
    {
        crypto_auth_hmacsha256_init(&gch_mac_key.keyed, secret,
                                    GCH_SECRET_LEN);
        memcpy(gch_mac_key.secret, secret, GCH_SECRET_LEN);
        gch_mac_key.ready = 1;
    }

    st = gch_mac_key.keyed;
    crypto_auth_hmacsha256_update(&st, (const unsigned char *) msg, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof(st));
}


static size_t
gch_decimal(char *out, int64_t v)
{
    char    digits[24];
    size_t  dl, i;

    dl = 0;
    do {
        digits[dl++] = (char) ('0' + v % 10);
        v /= 10;
    } while (v);

    for (i = 0; i < dl; i++) {
        out[i] = digits[dl - 1 - i];
    }

    return dl;
}


/* v3 when issued < 0, else v4 */
static int
gch_token_build(char out[GCH_TOKEN_MAX], const uint8_t *secret,
    const char *town, const char *family_id, int64_t issued, int64_t expires,
    const uint8_t nonce[16])
{
    char     num[2][24];
    size_t   n, tl, fl, el, il;
    uint8_t  mac[crypto_auth_hmacsha256_BYTES];

    out[0] = '\0';
    fl = strlen(family_id);
    tl = strlen(town);

    if (fl == 0 || fl > 120 || expires < 0
        || (issued >= 0 && issued > expires) || !gch_town_id_ok(town, tl))
    {
        return GCH_EINVALID;
    }

    el = gch_decimal(num[0], expires);
    il = (issued >= 0) ? gch_decimal(num[1], issued) : 0;

    /*
     * "vN." town "." fid "." expires ["." issued] "." nonce "." mac, and
     * the NUL
     */
    if (3 + tl + 1 + sodium_base64_ENCODED_LEN(fl, GCH_B64) + el + il + 4
        + sodium_base64_ENCODED_LEN(16, GCH_B64)
        + sodium_base64_ENCODED_LEN(sizeof(mac), GCH_B64) > GCH_TOKEN_MAX)
    {
        return GCH_EINVALID;
    }

    memcpy(out, issued >= 0 ? "v4." : "v3.", 3);
    n = 3;
    memcpy(out + n, town, tl);
    n += tl;
    out[n++] = '.';

    sodium_bin2base64(out + n, GCH_TOKEN_MAX - n,
                      (const unsigned char *) family_id, fl, GCH_B64);
    n += strlen(out + n);
    out[n++] = '.';

    memcpy(out + n, num[0], el);
    n += el;
    out[n++] = '.';

    if (issued >= 0) {
        memcpy(out + n, num[1], il);
        n += il;
        out[n++] = '.';
    }

    sodium_bin2base64(out + n, GCH_TOKEN_MAX - n, nonce, 16, GCH_B64);
    n += strlen(out + n);

    gch_token_mac(mac, secret, out, n);

    out[n++] = '.';
    sodium_bin2base64(out + n, GCH_TOKEN_MAX - n, mac, sizeof(mac), GCH_B64);

    return GCH_OK;
}


/*
 * Writes a NUL-terminated v3 token into out.  secret is GCH_SECRET_LEN
 * bytes; town a town id; family_id is 1..120 bytes without NUL; expires
 * >= 0.  0, or GCH_EINVALID (out is then an empty string).
 */
int
gch_token_make(char out[GCH_TOKEN_MAX], const uint8_t *secret,
    const char *town, const char *family_id, int64_t expires,
    const uint8_t nonce[16])
{
    return gch_token_build(out, secret, town, family_id, -1, expires, nonce);
}


/* The same, v4: issued (Unix seconds, 0 <= issued <= expires) in it. */
int
gch_token_issue(char out[GCH_TOKEN_MAX], const uint8_t *secret,
    const char *town, const char *family_id, int64_t issued, int64_t expires,
    const uint8_t nonce[16])
{
    if (issued < 0) {
        out[0] = '\0';
        return GCH_EINVALID;
    }

    return gch_token_build(out, secret, town, family_id, issued, expires,
                           nonce);
}


/* "0" or 1..18 digits without a leading zero; -1 if not */
static int64_t
gch_token_number(const char *s, const char *end)
{
    int64_t  v;

    if (end - s < 1 || end - s > 18 || (s[0] == '0' && end - s > 1)) {
        return -1;
    }

    v = 0;
    for ( /* void */ ; s < end; s++) {
        if (*s < '0' || *s > '9') {
            return -1;
        }

        v = v * 10 + (*s - '0');
    }

    return v;
}


static int
gch_b64_decode(uint8_t *bin, size_t bin_max, size_t *bin_len,
    const char *s, size_t n)
{
    const char  *end;

    if (n == 0) {
        return -1;
    }

    if (sodium_base642bin(bin, bin_max, s, n, NULL, bin_len, &end, GCH_B64)
        != 0 || end != s + n)
    {
        return -1;
    }

    return 0;
}


/*
 * Checks tok[0..len): shape, town (v3, v4: the one it names is town; v1,
 * v2: town is "main"), MAC (constant time), then expiry (valid while now
 * < expires).  On success copies the family id NUL-terminated into fid
 * (fid_size bytes at most) and sets *expires if not NULL.  Any failure is
 * GCH_EUNAUTH and leaves fid empty.
 */
int
gch_token_verify(const uint8_t *secret, const char *town, const char *tok,
    size_t len, int64_t now, char *fid, size_t fid_size, int64_t *expires)
{
    size_t       i, ndots, want, bl, f;
    int64_t      e, iss;
    uint8_t      mac[crypto_auth_hmacsha256_BYTES];
    uint8_t      got[crypto_auth_hmacsha256_BYTES + 3];
    uint8_t      bin[GCH_TOKEN_MAX];
    const char  *dot[6], *nonce;

    if (fid_size) {
        fid[0] = '\0';
    }

    if (len < 3 || len >= GCH_TOKEN_MAX) {
        return GCH_EUNAUTH;
    }

    /* f: the dot before the family id */

    if (memcmp(tok, "v1.", 3) == 0) {
        want = 4;
        f = 0;

    } else if (memcmp(tok, "v2.", 3) == 0) {
        want = 5;
        f = 0;

    } else if (memcmp(tok, "v3.", 3) == 0) {
        want = 5;
        f = 1;

    } else if (memcmp(tok, "v4.", 3) == 0) {
        want = 6;
        f = 1;

    } else {
        return GCH_EUNAUTH;
    }

    ndots = 0;

    for (i = 0; i < len; i++) {
        if (tok[i] == '.') {
            if (ndots == want) {
                return GCH_EUNAUTH;
            }

            dot[ndots++] = tok + i;
        }
    }

    if (ndots != want) {
        return GCH_EUNAUTH;
    }

    /* the town it names, or "main" for a token before towns */

    if (f == 0) {
        if (strcmp(town, GCH_TOWN_DEFAULT) != 0) {
            return GCH_EUNAUTH;
        }

    } else if ((size_t) (dot[1] - dot[0] - 1) != strlen(town)
               || memcmp(dot[0] + 1, town, strlen(town)) != 0)
    {
        return GCH_EUNAUTH;
    }

    /*
     * dot[f] ends "vN" (v3, v4: "vN.<town>"), dot[f + 1] the family,
     * dot[f + 2] expires, (v2, v4: dot[f + 3] issued), the last one the
     * nonce
     */

    if (gch_b64_decode(got, sizeof(got), &bl, dot[want - 1] + 1,
                       (size_t) (tok + len - dot[want - 1] - 1)) != 0
        || bl != sizeof(mac))
    {
        return GCH_EUNAUTH;
    }

    gch_token_mac(mac, secret, tok, (size_t) (dot[want - 1] - tok));

    if (sodium_memcmp(mac, got, sizeof(mac)) != 0) {
        return GCH_EUNAUTH;
    }

    /* authentic: now the fields */

    nonce = dot[want - 2] + 1;

    if (gch_b64_decode(bin, sizeof(bin), &bl, nonce,
                       (size_t) (dot[want - 1] - nonce)) != 0 || bl != 16)
    {
        return GCH_EUNAUTH;
    }

    e = gch_token_number(dot[f + 1] + 1, dot[f + 2]);
    if (e < 0) {
        return GCH_EUNAUTH;
    }

    if (want - f == 5) {
        iss = gch_token_number(dot[f + 2] + 1, dot[f + 3]);
        if (iss < 0 || iss > e) {
            return GCH_EUNAUTH;
        }
    }

    if (now >= e) {
        return GCH_EUNAUTH;
    }

    if (gch_b64_decode(bin, sizeof(bin), &bl, dot[f] + 1,
                       (size_t) (dot[f + 1] - dot[f] - 1)) != 0
        || bl == 0 || bl >= fid_size || memchr(bin, '\0', bl) != NULL)
    {
        return GCH_EUNAUTH;
    }

    memcpy(fid, bin, bl);
    fid[bl] = '\0';

    if (expires) {
        *expires = e;
    }

    return GCH_OK;
}


/*
 * When a token that gch_token_verify() accepted was issued (Unix seconds),
 * or -1 for a v1 or v3 token, which does not say.
 */
int64_t
gch_token_issued(const char *tok, size_t len)
{
    size_t       i, ndots, f;
    const char  *dot[5];

    if (len < 3) {
        return -1;
    }

    if (memcmp(tok, "v2.", 3) == 0) {
        f = 0;

    } else if (memcmp(tok, "v4.", 3) == 0) {
        f = 1;

    } else {
        return -1;
    }

    ndots = 0;

    for (i = 0; i < len && ndots < 4 + f; i++) {
        if (tok[i] == '.') {
            dot[ndots++] = tok + i;
        }
    }

    if (ndots != 4 + f) {
        return -1;
    }

    return gch_token_number(dot[f + 2] + 1, dot[f + 3]);
}


/*
 * A family that a catalogue does not know, named by an authentic token
 * issued at `issued` (Unix seconds, -1: unknown): is the catalogue older
 * than the token?  confirmed_ms is when the catalogue was last confirmed
 * to be the newest published (Unix ms, the reader's clock).  The token
 * was issued by another process, maybe on another host, and a login sees
 * a new family a moment before the catalogue that holds it is published
 * (the logins are written first): a token issued up to
 * GCH_CATALOGUE_SLACK_MS before the confirmation still counts as newer.
 * 1: "not yet" (503 catalogue_behind, refresh the catalogue); 0: the
 * family is really not there (403 forbidden).
 */
int
gch_catalogue_behind(int64_t issued, int64_t confirmed_ms)
{
    if (issued < 0) {
        return 0;
    }

    return issued * 1000 + GCH_CATALOGUE_SLACK_MS >= confirmed_ms;
}


/* See gch.h. */
void
gch_token_hash(const char *tok, size_t len, uint8_t out[GCH_TOKEN_HASH_LEN])
{
    crypto_generichash(out, GCH_TOKEN_HASH_LEN, (const unsigned char *) tok,
                       len, NULL, 0);
}
