/* statefun-c: Apache License 2.0.
 *
 * The HTTP/1.1 half of the client (h1_client.c): one request at a time on a
 * keep-alive connection of the origin's pool, the request serialized straight
 * into the connection's output buffer, the response parsed with http-parser.
 * A finished response is handed back with sf__hreq_finish; c->h1_close then
 * says whether the connection may be reused.
 *
 * Threading: loop thread only.
 */
#ifndef SF_HTTP_H1_CLIENT_H
#define SF_HTTP_H1_CLIENT_H

#include "client.h"

/* ------------------------------------------------------------------------ */
/* The HTTP/1.1 core (h1_client.c)                                           */

/** Prepares |c| for HTTP/1.1. */
void sf__h1_init(sf__hconn_t *c);
/** Writes |r| (the caller has put it in c->active) to the connection. 0 or SF_E*. */
int sf__h1_send(sf__hconn_t *c, sf__hreq_t *r);
/**
 * Feeds received bytes. Returns 0, or a negative SF_E* when the connection is
 * unusable (the caller closes it and fails what is still active).
 */
int sf__h1_recv(sf__hconn_t *c, const uint8_t *data, size_t len);
/**
 * The peer closed its side. Completes a response delimited by the end of the
 * connection; returns 0 when that happened, SF_ECONNRESET otherwise.
 */
int sf__h1_eof(sf__hconn_t *c);

#endif /* SF_HTTP_H1_CLIENT_H */
