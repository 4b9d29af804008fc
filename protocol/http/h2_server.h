/* statefun-c: Apache License 2.0.
 *
 * The HTTP/2 side of the server (h2_server.c): one nghttp2 server session
 * per connection, the callbacks object shared by a server's connections,
 * limits (431, 413 with RST_STREAM(NO_ERROR) when the upload is cut short),
 * and one gathered write of nghttp2's output per loop turn.
 *
 * Threading: loop thread only.
 */
#ifndef SF_H2_SERVER_H
#define SF_H2_SERVER_H

#include "server.h"

/** Builds the nghttp2 callbacks object of a server. 0 or SF_ENOMEM. */
int sf__h2s_callbacks_new(nghttp2_session_callbacks **out);
/** The connection speaks HTTP/2 from now on: session, SETTINGS. 0 or SF_ENOMEM. */
int sf__h2s_start(sf__sconn_t *hc);
/** Feeds plaintext bytes to nghttp2 and sends what it produced. */
void sf__h2s_on_read(sf__sconn_t *hc, const uint8_t *data, size_t len);
/** The connection timer fired: 408 for streams still receiving, else GOAWAY. */
void sf__h2s_on_timeout(sf__sconn_t *hc);
/** The output drained: resumes reading if it was paused for backpressure. */
void sf__h2s_on_drain(sf__sconn_t *hc);
/** sf_http_respond for an HTTP/2 request (DISPATCHED, connection alive). */
int sf__h2s_respond(sf_http_request_t *req, int status, const sf_http_header_t *headers,
                    size_t nheaders, const void *body, size_t body_len);
/** Deletes the session at connection close (requests are handled by the caller). */
void sf__h2s_dispose(sf__sconn_t *hc);

#endif /* SF_H2_SERVER_H */
