/*
 * staff.c -- guichet-office: the back office: staff login, families, attendance, invoicing, audit.
 */

#include "office.h"


const gcho_route_t  gcho_staff_routes[] = {
    { NULL, NULL, 0, 0, 0, NULL }
};
