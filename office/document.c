/*
 * document.c -- guichet-office: documents: upload, list, download, staff decisions.
 */

#include "office.h"


const gcho_route_t  gcho_document_routes[] = {
    { NULL, NULL, 0, 0, 0, NULL }
};
