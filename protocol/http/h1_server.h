/* statefun-c: Apache License 2.0.
 *
 * The HTTP/1.1 side of the server (h1_server.c): http-parser callbacks,
 * keep-alive and pipelining with responses written in request order, limits
 * (431, 413, 400, 408) and the idle/read timers of a connection.
 *
 * Threading: loop thread only.
 */
#ifndef SF_H1_SERVER_H
#define SF_H1_SERVER_H

#include "server.h"

/** Fills the parser callbacks shared by all connections of a server. */
void sf__h1s_settings_init(http_parser_settings *s);
/** The connection speaks HTTP/1.1 from now on. */
void sf__h1s_start(sf__sconn_t *hc);
/** Parses plaintext bytes; dispatches complete requests. */
void sf__h1s_on_read(sf__sconn_t *hc, const uint8_t *data, size_t len);
/** The connection timer fired: 408 for a started request, else idle close. */
void sf__h1s_on_timeout(sf__sconn_t *hc);
/** The output drained: resumes reading if it was paused for backpressure. */
void sf__h1s_on_drain(sf__sconn_t *hc);
/** sf_http_respond for an HTTP/1.1 request (DISPATCHED, connection alive). */
int sf__h1s_respond(sf_http_request_t *req, int status, const sf_http_header_t *headers,
                    size_t nheaders, const void *body, size_t body_len);
/** Releases HTTP/1.1 state at connection close (requests are handled by the caller). */
void sf__h1s_dispose(sf__sconn_t *hc);

#endif /* SF_H1_SERVER_H */
