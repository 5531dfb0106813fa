/*
 * reply.c -- guichet-office's answers: JSON and byte answers, the
 * {"error":{"code","message"}} form with its Retry-After, added headers.
 *
 * The handler fills rq's answer here; http.c (gcho_queue()) turns it into
 * libmicrohttpd's response with the headers every answer carries.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "office.h"


/* ------------------------------------------------------------------ */
/* answers                                                              */

void
gcho_add_header(gcho_req_t *rq, const char *name, const char *value)
{
    if (rq->nhdr == GCHO_HEADERS_MAX) {
        gchb_log("error", "office: too many headers for %s", rq->path);
        return;
    }

    rq->hdr_name[rq->nhdr] = strdup(name);
    rq->hdr_value[rq->nhdr] = strdup(value);

    if (rq->hdr_name[rq->nhdr] == NULL || rq->hdr_value[rq->nhdr] == NULL) {
        free(rq->hdr_name[rq->nhdr]);
        free(rq->hdr_value[rq->nhdr]);
        return;
    }

    rq->nhdr++;
}


int
gcho_reply_bytes(gcho_req_t *rq, int status, const char *type,
    const char *bytes, size_t len)
{
    char  *copy;

    copy = malloc(len + 1);
    if (copy == NULL) {
        return -1;
    }

    if (len) {
        memcpy(copy, bytes, len);
    }
    copy[len] = '\0';

    free(rq->out);
    rq->out = copy;
    rq->out_len = len;
    rq->out_type = type;
    rq->status = status;

    return 0;
}


int
gcho_reply(gcho_req_t *rq, int status, const char *json, size_t len)
{
    return gcho_reply_bytes(rq, status, "application/json; charset=utf-8",
                            json, len);
}


int
gcho_reply_jout(gcho_req_t *rq, int status, gch_jout_t *o)
{
    char    *text;
    size_t   len;

    if (gch_jout_detach(o, &text, &len) != 0) {
        return gcho_error(rq, 500, "internal",
                          "Une erreur interne est survenue.");
    }

    free(rq->out);
    rq->out = text;
    rq->out_len = len;
    rq->out_type = "application/json; charset=utf-8";
    rq->status = status;

    return 0;
}


int
gcho_error(gcho_req_t *rq, int status, const char *code,
    const char *message)
{
    gch_jout_t  o;

    if (gch_jout_init(&o, &gch_alloc_std) != 0) {
        return -1;
    }

    yajl_gen_map_open(o.g);
    gch_jout_cstr(&o, "error");
    yajl_gen_map_open(o.g);
    gch_jout_cstr(&o, "code");
    gch_jout_cstr(&o, code);
    gch_jout_cstr(&o, "message");
    gch_jout_cstr(&o, message);
    yajl_gen_map_close(o.g);
    yajl_gen_map_close(o.g);

    if (status == 429 || status == 503) {
        gcho_add_header(rq, "Retry-After", "1");
    }

    if (gch_jout_detach(&o, &rq->out, &rq->out_len) != 0) {
        return -1;
    }

    rq->out_type = "application/json; charset=utf-8";
    rq->status = status;

    return 0;
}


/* See office.h. */
int
gcho_unavailable(gcho_req_t *rq)
{
    if (rq == NULL) {
        return -1;
    }

    return gcho_error(rq, 503, "unavailable",
                      "Le service est momentanément indisponible, "
                      "réessayez dans un instant.");
}
