/* statefun-c: Apache License 2.0.
 *
 * A small blocking HTTP/1.1 client for the crash test (check_crash.c): one
 * keep-alive connection to a loopback port, one request at a time, every
 * wait bounded. What matters to the test is telling apart a request that
 * certainly did not reach the server (it may be sent again) from one whose
 * outcome is unknown (it was sent whole but no answer came back: the server
 * may or may not have acted on it).
 *
 * Responses are parsed with http_parser. A connection is owned by one
 * thread; different connections may be used on different threads.
 */
#ifndef SF_CRASH_HTTP_H
#define SF_CRASH_HTTP_H

#include <stddef.h>
#include <stdint.h>

/** How a request ended (sf_crash_http_request). */
typedef enum {
    SF_CRASH_HTTP_DONE = 0,     /* a complete response is in |resp| */
    SF_CRASH_HTTP_NOT_SENT = 1, /* connect failed or the request was not written whole */
    SF_CRASH_HTTP_UNKNOWN = 2,  /* written whole, no complete response (reset, EOF, timeout) */
} sf_crash_http_outcome;

typedef struct sf_crash_http_s {
    uint16_t port; /* read-only: 127.0.0.1:port */
    int _fd;       /* private: -1 when not connected */
} sf_crash_http_t;

typedef struct sf_crash_http_resp_s {
    int status; /* HTTP status */
    char *body; /* NUL-terminated, owned (sf_crash_http_resp_dispose) */
    size_t body_len;
    int64_t offset; /* the X-Statefun-Offset header, or -1 */
} sf_crash_http_resp_t;

void sf_crash_http_init(sf_crash_http_t *c, uint16_t port);
/** Closes the connection, if any. */
void sf_crash_http_dispose(sf_crash_http_t *c);

/**
 * Sends |method| |path| with |body| (|len| bytes; NULL/0 for none, and then
 * no Content-Type) of |content_type| (NULL: none) and waits for the answer
 * at most |timeout_ms|. A kept-alive connection that the server closed in
 * the meantime is noticed before writing and replaced. After anything but
 * DONE the connection is closed. |resp| is filled only on DONE; release it
 * with sf_crash_http_resp_dispose.
 */
sf_crash_http_outcome sf_crash_http_request(sf_crash_http_t *c, const char *method,
                                            const char *path, const char *content_type,
                                            const void *body, size_t len, int timeout_ms,
                                            sf_crash_http_resp_t *resp);

void sf_crash_http_resp_dispose(sf_crash_http_resp_t *resp);

#endif
