/* statefun-c: Apache License 2.0.
 *
 * The HTTP transport shared by the runtime and the C SDK: a server that speaks
 * HTTP/1.1 (http-parser) and HTTP/2 (nghttp2) on one port, told apart by the
 * connection preface, with optional TLS (ALPN h2 / http/1.1) and UNIX domain
 * sockets; and a client with HTTP/2 multiplexing, a keep-alive HTTP/1.1 pool,
 * the "auto" protocol mode of SPEC 5.1, timeouts, TLS/mTLS and http+unix URLs.
 *
 * Threading: every object here belongs to the libuv loop it was created on,
 * and every function is "loop thread only". A runtime worker creates its own
 * servers and clients on its own loop; nothing is shared between loops.
 */
#ifndef SF_HTTP_H
#define SF_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "sf_common.h"

/** One header field. Names are compared case-insensitively. */
typedef struct sf_http_header_s {
    const char *name;
    size_t namelen;
    const char *value;
    size_t valuelen;
} sf_http_header_t;

/* ------------------------------------------------------------------------ */
/* URLs                                                                       */

typedef enum {
    SF_HTTP_SCHEME_HTTP = 0,  /* http:// */
    SF_HTTP_SCHEME_HTTPS = 1, /* https:// */
} sf_http_scheme;

/**
 * A parsed endpoint URL. Supports http://, https://, http+unix:// and
 * https+unix://. For the unix forms the socket path comes first and the
 * request path follows the ".sock" component, as in StateFun:
 * "http+unix:///var/run/fn.sock/path/to/fn". A URL may also carry
 * "{function.name}"; sf_http_url_parse keeps it in |path| verbatim (the caller
 * substitutes it before parsing, or formats the path per request).
 */
typedef struct sf_http_url_s {
    sf_http_scheme scheme;
    bool tls;          /* https or https+unix */
    char *host;        /* TCP host (NULL for unix) */
    uint16_t port;     /* TCP port (default 80/443) */
    char *unix_path;   /* socket path (NULL for TCP) */
    char *path;        /* request path with query, at least "/" */
    char *authority;   /* value for Host / :authority */
    char *origin_key;  /* "scheme://host:port" or "scheme+unix://path": pools are keyed by it */
} sf_http_url_t;

/**
 * Parses |url| into |out| (strings allocated with |mem|).
 * Returns 0, SF_EINVAL for a malformed or unsupported URL, or SF_ENOMEM.
 */
int sf_http_url_parse(const char *url, const sf_mem *mem, sf_http_url_t *out);
void sf_http_url_dispose(sf_http_url_t *url, const sf_mem *mem);

/* ------------------------------------------------------------------------ */
/* Server                                                                     */

typedef struct sf_http_server_s sf_http_server_t;
typedef struct sf_http_request_s sf_http_request_t;

/**
 * Called once per complete request (headers and whole body received). The
 * callee must eventually call sf_http_respond() exactly once on |req|, from
 * inside the callback or later on the same loop; |req| stays valid until then
 * even if the connection goes away (the response is then dropped).
 */
typedef void (*sf_http_request_cb)(sf_http_request_t *req, void *user_data);

typedef struct sf_http_server_config_s {
    const char *host;          /* TCP bind address, e.g. "127.0.0.1"; NULL with unix_path */
    uint16_t port;             /* 0 picks a free port (see sf_http_server_port) */
    const char *unix_path;     /* bind a UNIX domain socket instead of TCP */
    size_t max_header_bytes;   /* 0: 16 KiB; over it: 431 */
    size_t max_body_bytes;     /* 0: 4 MiB; over it: 413 */
    uint64_t idle_timeout_ms;  /* 0: 60 s; an idle keep-alive connection is closed */
    uint64_t read_timeout_ms;  /* 0: 10 s; a started request must complete within it */
    uint32_t h2_max_concurrent_streams; /* 0: 256 */
    const char *tls_cert_file; /* PEM; NULL: plaintext */
    const char *tls_key_file;  /* PEM */
    const sf_mem *mem;         /* NULL: default allocator */
} sf_http_server_config_t;

/**
 * Creates a server listening on |loop| as |config| says and calls |cb| with
 * |user_data| for every request. Returns 0 and sets |*out|, SF_EEXIST when the
 * address is in use, SF_ETLS when the certificate or key cannot be loaded,
 * SF_EINVAL or SF_ENOMEM.
 */
int sf_http_server_new(uv_loop_t *loop, const sf_http_server_config_t *config,
                       sf_http_request_cb cb, void *user_data, sf_http_server_t **out);

/** The TCP port actually bound (useful with port 0). */
uint16_t sf_http_server_port(const sf_http_server_t *server);

typedef void (*sf_http_server_close_cb)(sf_http_server_t *server, void *user_data);
/**
 * Stops listening, closes every connection, and frees |server| once all its
 * handles are closed; then calls |cb| (may be NULL). Requests not yet answered
 * stay valid until answered; their responses are dropped.
 */
void sf_http_server_close(sf_http_server_t *server, sf_http_server_close_cb cb, void *user_data);

/* Request accessors: borrowed, valid until sf_http_respond(). */
const char *sf_http_request_method(const sf_http_request_t *req);
/** The path with query, as sent ("/a/b?x=1"). */
const char *sf_http_request_path(const sf_http_request_t *req);
/** 1 for HTTP/1.x, 2 for HTTP/2. */
int sf_http_request_version(const sf_http_request_t *req);
/** The first header named |name| (case-insensitive), or NULL. Sets |*len|. */
const char *sf_http_request_header(const sf_http_request_t *req, const char *name, size_t *len);
const uint8_t *sf_http_request_body(const sf_http_request_t *req, size_t *len);
/** The server's user data (to reach the owner from a request). */
void *sf_http_request_user_data(const sf_http_request_t *req);

/**
 * Answers |req| with |status|, the given extra headers (content-length is
 * added by the transport) and |body| (copied). Frees |req|. Returns 0, or
 * SF_ECONNRESET when the connection was gone (the response is dropped, |req|
 * is freed all the same).
 */
int sf_http_respond(sf_http_request_t *req, int status, const sf_http_header_t *headers,
                    size_t nheaders, const void *body, size_t body_len);

/* ------------------------------------------------------------------------ */
/* Client                                                                     */

typedef enum {
    SF_HTTP_PROTO_AUTO = 0, /* https: ALPN; http: try h2 prior knowledge, fall back to 1.1 */
    SF_HTTP_PROTO_HTTP1 = 1,
    SF_HTTP_PROTO_H2C = 2,  /* HTTP/2 prior knowledge over plaintext */
    SF_HTTP_PROTO_H2 = 3,   /* HTTP/2 over TLS (ALPN must pick h2) */
} sf_http_protocol;

typedef struct sf_http_client_config_s {
    sf_http_protocol protocol;
    uint64_t connect_timeout_ms; /* 0: 10 s */
    uint64_t read_timeout_ms;    /* 0: 10 s; no byte received for that long fails the call */
    uint64_t write_timeout_ms;   /* 0: 10 s */
    uint64_t call_timeout_ms;    /* 0: 60 s; bounds one request end to end */
    uint32_t pool_size;          /* 0: 16; max HTTP/1.1 connections per origin */
    uint64_t pool_ttl_ms;        /* 0: 60 s; idle pooled connections are closed after it */
    uint32_t h2_max_concurrent_streams; /* 0: take the peer's SETTINGS */
    size_t max_response_bytes;   /* 0: 16 MiB */
    const char *tls_ca_file;     /* PEM CA bundle; NULL: system default */
    const char *tls_cert_file;   /* client certificate (mTLS) */
    const char *tls_key_file;
    const char *tls_key_password;
    bool tls_insecure;           /* skip verification (tests only) */
    const sf_mem *mem;
} sf_http_client_config_t;

typedef struct sf_http_client_s sf_http_client_t;

/** A response: borrowed, valid only during the response callback. */
typedef struct sf_http_response_s {
    int status;
    int version; /* 1 or 2 */
    const sf_http_header_t *headers;
    size_t nheaders;
    const uint8_t *body;
    size_t body_len;
} sf_http_response_t;

/**
 * Called exactly once per request: |err| is 0 and |res| set on a response
 * (any status), or |err| is negative (SF_ETIMEDOUT, SF_ECONNREFUSED,
 * SF_ECONNRESET, SF_EPROTO, SF_ETLS, SF_ETOOBIG, SF_ECANCELED) and |res| NULL.
 */
typedef void (*sf_http_response_cb)(int err, const sf_http_response_t *res, void *user_data);

int sf_http_client_new(uv_loop_t *loop, const sf_http_client_config_t *config,
                       sf_http_client_t **out);

/**
 * Sends one request to |url| (the url must stay valid until the callback).
 * |body| is copied. Connections are opened, pooled and multiplexed as the
 * config says. Returns 0 (|cb| will be called exactly once, never from within
 * this call), SF_EINVAL or SF_ENOMEM (|cb| will not be called).
 */
int sf_http_client_request(sf_http_client_t *client, const char *method, const sf_http_url_t *url,
                           const sf_http_header_t *headers, size_t nheaders, const void *body,
                           size_t body_len, sf_http_response_cb cb, void *user_data);

/**
 * The protocol the client settled on for |url|'s origin: 1, 2, or 0 when not
 * known yet (auto mode before the first connection).
 */
int sf_http_client_origin_version(sf_http_client_t *client, const sf_http_url_t *url);

typedef void (*sf_http_client_close_cb)(sf_http_client_t *client, void *user_data);
/**
 * Fails every pending request with SF_ECANCELED, closes every connection,
 * frees |client| once all handles are closed, then calls |cb| (may be NULL).
 */
void sf_http_client_close(sf_http_client_t *client, sf_http_client_close_cb cb, void *user_data);

#endif /* SF_HTTP_H */
