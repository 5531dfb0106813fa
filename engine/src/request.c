/*
 * request.c -- the small JSON bodies of the API: booking requests
 * (POST /api/bookings) and logins (POST /api/session).
 *
 * Both are strict (gch_json.h): exactly the documented fields, no duplicate
 * keys, strings where strings are due, ids of 1..64 bytes, errors naming
 * the JSON path ("$.items[3].child_id").  The booking saga (book.c) takes
 * the parsed items; duplicates of one cell are its business, not ours.
 */

#include <string.h>

#include <sodium.h>

#include <gch_json.h>

#include "arena.h"


#define GCH_REQ_DEPTH    4
#define GCH_ID_MAX       64


static const gch_jfield_t  gch_booking_fields[] = {
    { "items", GCH_J_ARRAY, 1 }
};


static const gch_jfield_t  gch_staff_fields[] = {
    { "items", GCH_J_ARRAY, 1 },
    { "family_id", GCH_J_STRING, 1 }
};


static const gch_jfield_t  gch_item_fields[] = {
    { "child_id", GCH_J_STRING, 1 },
    { "session_id", GCH_J_STRING, 1 },
    { "waitlist", GCH_J_BOOL, 0 },
    { "replaces", GCH_J_STRING, 0 },
    { "offer", GCH_J_BOOL, 0 }
};


/*
 * Parses body[0..len) into *out: 1..max_items items.  Everything (ids
 * included, NUL-terminated) is owned by out->priv; the body may be freed
 * afterwards.  On error nothing is allocated, *out is zeroed and err says
 * why: GCH_EBADJSON, GCH_EINVALID (path), GCH_ENOMEM.  Free with
 * gch_booking_req_free() (safe on a zeroed request).
 */
static int
gch_req_parse(gch_booking_req_t *out, const char *body, size_t len,
    size_t max_items, int staff, const gch_alloc_t *a, gch_error_t *err)
{
    int                 rc;
    size_t              i, j, mark, mark2;
    gch_jcx_t           cx;
    gch_item_t         *it;
    gch_json_t          doc;
    gch_arena_t        *ar;
    const gch_jnode_t  *v[2], *iv[5], *e;

    out->items = NULL;
    out->nitems = 0;
    out->family_id = NULL;
    out->priv = NULL;

    rc = gch_json_parse(&doc, body, len, GCH_REQ_DEPTH, a, err);
    if (rc != GCH_OK) {
        return rc;
    }

    gch_jcx_init(&cx, err);

    rc = staff ? gch_json_fields(&cx, doc.root, gch_staff_fields, 2, v)
               : gch_json_fields(&cx, doc.root, gch_booking_fields, 1, v);
    if (rc == GCH_OK && staff) {
        rc = gch_json_str(&cx, "family_id", v[1], 1, GCH_ID_MAX);
    }

    if (rc != GCH_OK) {
        goto failed;
    }

    rc = gch_json_array(&cx, "items", v[0], 1, max_items);
    if (rc != GCH_OK) {
        goto failed;
    }

    mark = gch_jcx_key(&cx, "items", 5);

    for (i = 0, e = v[0]->child; e; i++, e = e->next) {
        mark2 = gch_jcx_index(&cx, i);

        rc = gch_json_fields(&cx, e, gch_item_fields, 5, iv);
        if (rc == GCH_OK) {
            rc = gch_json_str(&cx, "child_id", iv[0], 1, GCH_ID_MAX);
        }

        if (rc == GCH_OK) {
            rc = gch_json_str(&cx, "session_id", iv[1], 1, GCH_ID_MAX);
        }

        if (rc == GCH_OK && iv[3]) {
            rc = gch_json_str(&cx, "replaces", iv[3], 1, GCH_ID_MAX);
        }

        if (rc != GCH_OK) {
            goto failed;
        }

        gch_jcx_pop(&cx, mark2);
    }

    gch_jcx_pop(&cx, mark);

    /* all good: copy out of the tree */

    ar = gch_arena_new(a, 256 + v[0]->len * (sizeof(gch_item_t) + 160));
    if (ar == NULL) {
        rc = GCH_ENOMEM;
        gch_error_set(err, rc, NULL);
        goto failed;
    }

    it = gch_arena_alloc(ar, v[0]->len * sizeof(gch_item_t));
    if (it == NULL) {
        goto nomem;
    }

    for (i = 0, e = v[0]->child; e; i++, e = e->next) {
        gch_json_fields(&cx, e, gch_item_fields, 5, iv);

        it[i].child_len = iv[0]->len;
        it[i].child_id = gch_arena_strndup(ar, iv[0]->str, iv[0]->len);
        it[i].session_len = iv[1]->len;
        it[i].session_id = gch_arena_strndup(ar, iv[1]->str, iv[1]->len);
        it[i].replaces = NULL;
        it[i].replaces_len = 0;

        it[i].waitlist = (iv[2] != NULL && iv[2]->len != 0);
        it[i].offer = (iv[4] != NULL && iv[4]->len != 0);

        if (it[i].child_id == NULL || it[i].session_id == NULL) {
            goto nomem;
        }

        if (iv[3] == NULL) {
            continue;
        }

        /* a swap: one booking is replaced once per request */
        for (j = 0; j < i; j++) {
            if (it[j].replaces_len == iv[3]->len
                && memcmp(it[j].replaces, iv[3]->str, iv[3]->len) == 0)
            {
                gch_arena_free(ar);
                rc = GCH_EINVALID;
                gch_error_set(err, rc, "$.items[%zu].replaces : cette "
                              "réservation est déjà remplacée par un "
                              "autre élément", i);
                goto failed;
            }
        }

        it[i].replaces_len = iv[3]->len;
        it[i].replaces = gch_arena_strndup(ar, iv[3]->str, iv[3]->len);
        if (it[i].replaces == NULL) {
            goto nomem;
        }
    }

    if (staff) {
        out->family_id = gch_arena_strndup(ar, v[1]->str, v[1]->len);
        if (out->family_id == NULL) {
            goto nomem;
        }
    }

    out->items = it;
    out->nitems = v[0]->len;
    out->priv = ar;

    gch_json_free(&doc);
    return GCH_OK;

nomem:

    gch_arena_free(ar);
    rc = GCH_ENOMEM;
    gch_error_set(err, rc, NULL);

failed:

    gch_json_free(&doc);
    return rc;
}


/* See gch.h (both). */
int
gch_booking_req_parse(gch_booking_req_t *out, const char *body,
    size_t len, size_t max_items, const gch_alloc_t *a, gch_error_t *err)
{
    return gch_req_parse(out, body, len, max_items, 0, a, err);
}


int
gch_staff_req_parse(gch_booking_req_t *out, const char *body,
    size_t len, size_t max_items, const gch_alloc_t *a, gch_error_t *err)
{
    return gch_req_parse(out, body, len, max_items, 1, a, err);
}


/* Releases what gch_booking_req_parse() made; r itself is the caller's. */
void
gch_booking_req_free(gch_booking_req_t *r)
{
    gch_arena_free(r->priv);
    r->priv = NULL;
    r->items = NULL;
    r->nitems = 0;
}


static const gch_jfield_t  gch_login_fields[] = {
    { "login", GCH_J_STRING, 1 },
    { "password", GCH_J_STRING, 1 }
};


#define GCH_LOGIN_BODY_MAX  2048


/*
 * Parses {"login": "...", "password": "..."} and copies both strings,
 * NUL-terminated, into the caller's buffers (each must fit, with its NUL,
 * else GCH_EINVALID naming the field).  Bodies over 2 KiB are
 * GCH_ETOOLARGE.  Needs no allocator: the parser works in a 48 KiB buffer
 * on the stack, enough for any 2 KiB body with one level of nesting.  The
 * buffer (it may hold a copy of the password) is wiped before returning.
 */
int
gch_login_req_parse(const char *body, size_t len, char *login,
    size_t login_size, char *password, size_t password_size,
    gch_error_t *err)
{
    int                 rc;
    gch_jcx_t           cx;
    gch_json_t          doc;
    gch_fixed_t         fixed;
    gch_alloc_t         a;
    const gch_jnode_t  *v[2];
    union {
        long double     align;
        char            bytes[49152];
    } mem;

    if (login_size) {
        login[0] = '\0';
    }

    if (password_size) {
        password[0] = '\0';
    }

    if (len > GCH_LOGIN_BODY_MAX) {
        gch_error_set(err, GCH_ETOOLARGE, NULL);
        return GCH_ETOOLARGE;
    }

    gch_fixed_init(&fixed, &a, mem.bytes, sizeof(mem.bytes));

    rc = gch_json_parse(&doc, body, len, 1, &a, err);
    if (rc != GCH_OK) {
        goto done;
    }

    gch_jcx_init(&cx, err);

    rc = gch_json_fields(&cx, doc.root, gch_login_fields, 2, v);

    if (rc == GCH_OK) {
        rc = gch_json_str(&cx, "login", v[0], 1,
                          login_size ? login_size - 1 : 0);
    }

    if (rc == GCH_OK) {
        rc = gch_json_str(&cx, "password", v[1], 1,
                          password_size ? password_size - 1 : 0);
    }

    if (rc == GCH_OK) {
        memcpy(login, v[0]->str, v[0]->len);
        login[v[0]->len] = '\0';
        memcpy(password, v[1]->str, v[1]->len);
        password[v[1]->len] = '\0';
    }

    gch_json_free(&doc);

done:

    /* the parser may have copied the password (escapes) into mem */
    sodium_memzero(mem.bytes, sizeof(mem.bytes));

    return rc;
}


static const gch_jfield_t  gch_absence_fields[] = {
    { "booking_id", GCH_J_STRING, 1 },
    { "reason", GCH_J_STRING, 1 },
    { "document_id", GCH_J_STRING | GCH_J_NULL, 0 }
};


/*
 * {"booking_id": "...", "reason": "medical", "document_id": "..."|null}
 * (POST /api/absences).  Copies into the caller's buffers (document_id ""
 * when absent or null).  Strict like the others; the reason is a code
 * ([a-z0-9_-]{1,32}), which the saga checks against the town's reasons
 * (absence.c).
 */
int
gch_absence_req_parse(const char *body, size_t len, char *bid,
    size_t bid_size, char *reason, size_t reason_size, char *doc,
    size_t doc_size, gch_error_t *err)
{
    int                 rc;
    gch_jcx_t           cx;
    gch_json_t          doc_;
    gch_fixed_t         fixed;
    gch_alloc_t         a;
    const gch_jnode_t  *v[3];
    union {
        long double     align;
        char            bytes[16384];
    } mem;

    bid[0] = '\0';
    doc[0] = '\0';
    reason[0] = '\0';

    if (len > GCH_LOGIN_BODY_MAX) {
        gch_error_set(err, GCH_ETOOLARGE, NULL);
        return GCH_ETOOLARGE;
    }

    gch_fixed_init(&fixed, &a, mem.bytes, sizeof(mem.bytes));

    rc = gch_json_parse(&doc_, body, len, 1, &a, err);
    if (rc != GCH_OK) {
        return rc;
    }

    gch_jcx_init(&cx, err);

    rc = gch_json_fields(&cx, doc_.root, gch_absence_fields, 3, v);

    if (rc == GCH_OK) {
        rc = gch_json_str(&cx, "booking_id", v[0], 1,
                          bid_size - 1 < GCH_ID_MAX ? bid_size - 1
                                                    : GCH_ID_MAX);
    }

    if (rc == GCH_OK) {
        rc = gch_json_str(&cx, "reason", v[1], 1,
                          reason_size - 1 < 32 ? reason_size - 1 : 32);
    }

    if (rc == GCH_OK
        && strspn(v[1]->str, "abcdefghijklmnopqrstuvwxyz0123456789_-")
           < v[1]->len)
    {
        rc = gch_jcx_fail(&cx, "reason", "un des motifs de la commune "
                          "(GET /api/absence-reasons), par exemple "
                          "« medical »");
    }

    if (rc == GCH_OK && v[2] && v[2]->type == GCH_J_STRING) {
        rc = gch_json_str(&cx, "document_id", v[2], 1,
                          doc_size - 1 < GCH_ID_MAX ? doc_size - 1
                                                    : GCH_ID_MAX);
        if (rc == GCH_OK) {
            memcpy(doc, v[2]->str, v[2]->len);
            doc[v[2]->len] = '\0';
        }
    }

    if (rc == GCH_OK) {
        memcpy(bid, v[0]->str, v[0]->len);
        bid[v[0]->len] = '\0';
        memcpy(reason, v[1]->str, v[1]->len);
        reason[v[1]->len] = '\0';
    }

    gch_json_free(&doc_);

    return rc;
}
