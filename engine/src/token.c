/*
 * token.c -- bearer tokens and session cookies.
 *
 *     v1.<b64url family_id>.<expires>.<b64url nonce16>.<b64url mac>
 *
 * mac = HMAC-SHA256(secret, everything before the last dot); base64url
 * without padding; <expires> is Unix seconds in decimal.  The nginx module
 * verifies one on every API request, guichetctl makes them.  The libsodium
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


/*
 * Writes a NUL-terminated token into out.  secret is GCH_SECRET_LEN bytes;
 * family_id is 1..120 bytes without NUL; expires >= 0.  0, or
 * GCH_EINVALID (out is then an empty string).
 */
int
gch_token_make(char out[GCH_TOKEN_MAX], const uint8_t *secret,
    const char *family_id, int64_t expires, const uint8_t nonce[16])
{
    char     digits[24];
    size_t   n, fl, dl, i;
    uint8_t  mac[crypto_auth_hmacsha256_BYTES];
    int64_t  e;

    out[0] = '\0';
    fl = strlen(family_id);

    if (fl == 0 || fl > 120 || expires < 0) {
        return GCH_EINVALID;
    }

    /* expires in decimal */

    dl = 0;
    e = expires;
    do {
        digits[dl++] = (char) ('0' + e % 10);
        e /= 10;
    } while (e);

    memcpy(out, "v1.", 3);
    n = 3;

    sodium_bin2base64(out + n, GCH_TOKEN_MAX - n,
                      (const unsigned char *) family_id, fl, GCH_B64);
    n += strlen(out + n);
    out[n++] = '.';

    for (i = 0; i < dl; i++) {
        out[n++] = digits[dl - 1 - i];
    }

    out[n++] = '.';

    sodium_bin2base64(out + n, GCH_TOKEN_MAX - n, nonce, 16, GCH_B64);
    n += strlen(out + n);

    gch_token_mac(mac, secret, out, n);

    out[n++] = '.';
    sodium_bin2base64(out + n, GCH_TOKEN_MAX - n, mac, sizeof(mac), GCH_B64);

    return GCH_OK;
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
 * Checks tok[0..len): shape, MAC (constant time), then expiry (valid while
 * now < expires).  On success copies the family id NUL-terminated into
 * fid (fid_size bytes at most) and sets *expires if not NULL.  Any failure
 * is GCH_EUNAUTH and leaves fid empty.
 */
int
gch_token_verify(const uint8_t *secret, const char *tok, size_t len,
    int64_t now, char *fid, size_t fid_size, int64_t *expires)
{
    size_t       i, ndots, bl;
    int64_t      e;
    uint8_t      mac[crypto_auth_hmacsha256_BYTES];
    uint8_t      got[crypto_auth_hmacsha256_BYTES + 3];
    uint8_t      bin[GCH_TOKEN_MAX];
    const char  *dot[4];

    if (fid_size) {
        fid[0] = '\0';
    }

    if (len < 3 || len >= GCH_TOKEN_MAX || memcmp(tok, "v1.", 3) != 0) {
        return GCH_EUNAUTH;
    }

    ndots = 0;

    for (i = 0; i < len; i++) {
        if (tok[i] == '.') {
            if (ndots == 4) {
                return GCH_EUNAUTH;
            }

            dot[ndots++] = tok + i;
        }
    }

    if (ndots != 4) {
        return GCH_EUNAUTH;
    }

    /* dot[0] ends "v1", dot[1] the family, dot[2] expires, dot[3] nonce */

    if (gch_b64_decode(got, sizeof(got), &bl, dot[3] + 1,
                       (size_t) (tok + len - dot[3] - 1)) != 0
        || bl != sizeof(mac))
    {
        return GCH_EUNAUTH;
    }

    gch_token_mac(mac, secret, tok, (size_t) (dot[3] - tok));

    if (sodium_memcmp(mac, got, sizeof(mac)) != 0) {
        return GCH_EUNAUTH;
    }

    /* authentic: now the fields */

    if (gch_b64_decode(bin, sizeof(bin), &bl, dot[2] + 1,
                       (size_t) (dot[3] - dot[2] - 1)) != 0 || bl != 16)
    {
        return GCH_EUNAUTH;
    }

    if (dot[2] - dot[1] - 1 < 1 || dot[2] - dot[1] - 1 > 18
        || (dot[1][1] == '0' && dot[2] - dot[1] - 1 > 1))
    {
        return GCH_EUNAUTH;
    }

    e = 0;
    for (i = 1; dot[1] + i < dot[2]; i++) {
        if (dot[1][i] < '0' || dot[1][i] > '9') {
            return GCH_EUNAUTH;
        }

        e = e * 10 + (dot[1][i] - '0');
    }

    if (now >= e) {
        return GCH_EUNAUTH;
    }

    if (gch_b64_decode(bin, sizeof(bin), &bl, dot[0] + 1,
                       (size_t) (dot[1] - dot[0] - 1)) != 0
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


/* See gch.h. */
void
gch_token_hash(const char *tok, size_t len, uint8_t out[GCH_TOKEN_HASH_LEN])
{
    crypto_generichash(out, GCH_TOKEN_HASH_LEN, (const unsigned char *) tok,
                       len, NULL, 0);
}
