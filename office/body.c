/*
 * body.c -- guichet-office's request data: headers, query arguments, the
 * clock, and JSON bodies read with the engine's strict reader
 * (gch_json.h) against a handler's field table.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "office.h"


/* ------------------------------------------------------------------ */
/* request data                                                         */

const char *
gcho_header(gcho_req_t *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}


const char *
gcho_query(gcho_req_t *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND,
                                       name);
}


int64_t
gcho_now(void)
{
    return (int64_t) time(NULL);
}
/* ------------------------------------------------------------------ */
/* bodies                                                               */

int
gcho_body_json(gcho_req_t *rq, gch_json_t *doc, const gch_jfield_t *f,
    size_t nf, const gch_jnode_t **vals)
{
    int           rc;
    const char   *ct;
    gch_jcx_t     cx;
    gch_error_t   err;

    ct = gcho_header(rq, "Content-Type");
    if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0
        || (ct[16] != '\0' && ct[16] != ';' && ct[16] != ' '))
    {
        gcho_error(rq, 415, "unsupported_media_type",
                   "Le corps de la demande doit être du JSON "
                   "(Content-Type: application/json).");
        return -1;
    }

    memset(&err, 0, sizeof(err));

    rc = (rq->body == NULL || rq->body_len == 0)
         ? GCH_EBADJSON
         : gch_json_parse(doc, rq->body, rq->body_len, 16, &gch_alloc_std,
                          &err);

    if (rc == GCH_ENOMEM) {
        /* the server's failure, not a malformed body */
        gcho_error(rq, 500, "internal",
                   "Mémoire insuffisante : rien n'a été enregistré.");
        return -1;
    }

    if (rc != GCH_OK) {
        gcho_error(rq, 400, "bad_json",
                   "Le corps de la demande n'est pas du JSON valide.");
        return -1;
    }

    gch_jcx_init(&cx, &err);

    if (doc->root->type != GCH_J_OBJECT
        || gch_json_fields(&cx, doc->root, f, nf, vals) != 0)
    {
        gch_json_free(doc);
        gcho_error(rq, 400, "invalid_field",
                   err.message[0] ? err.message
                                  : "Le corps doit être un objet JSON.");
        return -1;
    }

    return 0;
}


/* See office.h. */
int
gcho_json_object(gcho_req_t *rq, const gch_jnode_t *obj, const char *at,
    const gch_jfield_t *f, size_t nf, const gch_jnode_t **vals)
{
    char         msg[400];
    gch_jcx_t    cx;
    gch_error_t  err;

    memset(&err, 0, sizeof(err));
    gch_jcx_init(&cx, &err);

    if (obj->type == GCH_J_OBJECT
        && gch_json_fields(&cx, obj, f, nf, vals) == 0)
    {
        return 0;
    }

    if (err.message[0] == '$') {
        snprintf(msg, sizeof(msg), "%s%s", at, err.message + 1);
    } else {
        snprintf(msg, sizeof(msg), "%s : objet attendu", at);
    }
    gcho_error(rq, 400, "invalid_field", msg);
    return -1;
}


int
gcho_str(gcho_req_t *rq, const char *field, const gch_jnode_t *v, char *out,
    size_t size, size_t min)
{
    char         msg[160];
    gch_jcx_t    cx;
    gch_error_t  err;

    if (v == NULL || v->type != GCH_J_STRING) {
        if (min == 0) {
            out[0] = '\0';
            return 0;
        }
        goto invalid;
    }

    /* length, no NUL, strict UTF-8: the engine's checker */
    gch_jcx_init(&cx, &err);
    if (gch_json_str(&cx, field, v, min, size - 1) != GCH_OK) {
        goto invalid;
    }

    memcpy(out, v->str, v->len);
    out[v->len] = '\0';
    return 0;

invalid:

    snprintf(msg, sizeof(msg), "Le champ %s est invalide.", field);
    gcho_error(rq, 400, "invalid_field", msg);
    return -1;
}
