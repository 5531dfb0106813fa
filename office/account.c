/*
 * account.c -- guichet-office: the family's account: history, password change and reset.
 */

#include "office.h"


const gcho_route_t  gcho_account_routes[] = {
    { NULL, NULL, 0, 0, 0, NULL }
};
