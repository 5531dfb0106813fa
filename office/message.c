/*
 * message.c -- guichet-office: messagerie: threads between families and the town's services.
 */

#include "office.h"


const gcho_route_t  gcho_message_routes[] = {
    { NULL, NULL, 0, 0, 0, NULL }
};
