/*
 * enrolment.c -- guichet-office: enrolment requests (families) and their decisions (staff).
 */

#include "office.h"


const gcho_route_t  gcho_enrolment_routes[] = {
    { NULL, NULL, 0, 0, 0, NULL }
};
