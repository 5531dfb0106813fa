/*
 * payment.c -- guichet-office: online payments (PayFiP-like) and direct debit.
 */

#include "office.h"


const gcho_route_t  gcho_payment_routes[] = {
    { NULL, NULL, 0, 0, 0, NULL }
};
