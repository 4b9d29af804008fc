/* statefun-c: Apache License 2.0.
 *
 * The client side of `statefun savepoint` (see savepoint_cmd.c).
 */
#ifndef SF_SAVEPOINT_CMD_H
#define SF_SAVEPOINT_CMD_H

#include <stddef.h>
#include <stdint.h>

/**
 * Asks the admin listener at |host|:|port| for a savepoint into |dir| and
 * waits for it. |msg| gets the listener's one-line answer (or the transport
 * error). Returns 0 on success, else a negative SF_E*.
 */
int sf_savepoint_request(const char *host, uint16_t port, const char *dir, char *msg,
                         size_t msglen);

#endif
