/* statefun-c: Apache License 2.0.
 *
 * The HTTP/2 half of the client (h2_client.c): one nghttp2 client session per
 * connection, with no I/O of its own. Bytes received are fed in with
 * sf__h2_recv; sf__h2_flush moves nghttp2's output into the connection's
 * gathered output buffer (conn.h), so everything produced in one loop turn
 * leaves in one write. Requests are streams; a request's result is handed
 * back with sf__hreq_finish (or sf__hreq_retry for streams the peer refused or
 * never processed, e.g. beyond a GOAWAY's last stream id). The client keeps
 * the count of open streams within the peer's SETTINGS_MAX_CONCURRENT_STREAMS
 * (sf__h2_can_submit) and queues the rest per origin.
 *
 * Threading: loop thread only.
 */
#ifndef SF_HTTP_H2_CLIENT_H
#define SF_HTTP_H2_CLIENT_H

#include "client.h"

/* ------------------------------------------------------------------------ */
/* The HTTP/2 core (h2_client.c)                                             */

/** Builds the shared nghttp2 callbacks of |client|. Returns 0 or SF_ENOMEM. */
int sf__h2_callbacks_new(sf_http_client_t *client);
void sf__h2_callbacks_free(sf_http_client_t *client);

/** Starts an HTTP/2 session on |c| (queues the preface and SETTINGS). 0 or SF_ENOMEM. */
int sf__h2_session_init(sf__hconn_t *c);
void sf__h2_session_dispose(sf__hconn_t *c);
/** Feeds received bytes. Returns 0, or a negative SF_E* when the connection is broken. */
int sf__h2_recv(sf__hconn_t *c, const uint8_t *data, size_t len);
/** Moves nghttp2's pending output into the connection. 0 or negative SF_E*. */
int sf__h2_flush(sf__hconn_t *c);
/** True when one more stream may be opened now. */
bool sf__h2_can_submit(const sf__hconn_t *c);
/** Opens a stream for |r| (which the caller has put in c->active). 0 or SF_E*. */
int sf__h2_submit(sf__hconn_t *c, sf__hreq_t *r);
/** Resets the stream of |r| (timed out); |r| is detached from the stream. */
void sf__h2_cancel(sf__hconn_t *c, sf__hreq_t *r);
/** True when the session has nothing more to read or write (peer done). */
bool sf__h2_finished(const sf__hconn_t *c);
/** Stops taking streams and sends GOAWAY (graceful close of an idle connection). */
void sf__h2_goaway(sf__hconn_t *c);

#endif /* SF_HTTP_H2_CLIENT_H */
