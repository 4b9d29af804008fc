/* statefun-c: Apache License 2.0.
 *
 * TLS contexts for the HTTP transport: a thin, reference-counted wrapper
 * around an OpenSSL SSL_CTX configured either as a server (certificate and
 * key, ALPN selection with the server's preference, "h2" before "http/1.1")
 * or as a client (CA bundle or the system default, optional client
 * certificate for mTLS, optional "insecure" mode for tests).
 *
 * The per-connection TLS state (SSL objects over memory BIOs) lives in
 * conn.c; this file only builds and owns contexts.
 *
 * Threading: a context is immutable once built. Its reference count is
 * atomic, so a context may be shared by connections on several loops; every
 * other function is "any thread".
 */
#ifndef SF_TLS_H
#define SF_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "sf_common.h"

typedef struct sf_tls_ctx_s sf_tls_ctx_t;

/**
 * Builds a server context from the PEM files |cert_file| (certificate chain)
 * and |key_file| (private key). |alpn_protos_pref| is a comma-separated list
 * of protocols in the server's order of preference, e.g. "h2,http/1.1"; NULL
 * means exactly that default. A client offering none of them (or no ALPN at
 * all) still connects, without a negotiated protocol.
 *
 * On success sets |*out| (reference count 1; release with sf_tls_ctx_free).
 * Returns 0, SF_EINVAL (NULL file names, bad ALPN list), SF_ENOMEM, or
 * SF_ETLS when a file cannot be loaded or the key does not match (OpenSSL's
 * error text is logged to stderr).
 */
int sf_tls_server_ctx_new(const char *cert_file, const char *key_file, const char *alpn_protos_pref,
                          sf_tls_ctx_t **out);

/**
 * Builds a client context. |ca_file| is a PEM CA bundle, NULL for the
 * system's default trust store. |cert_file| and |key_file| (both or neither)
 * are the client certificate for mTLS, the key decrypted with |key_password|
 * when not NULL. With |insecure| the peer certificate is not verified (tests
 * only). Host name verification is done per connection (sf_conn_connect_*
 * takes the expected name).
 *
 * On success sets |*out| (reference count 1). Returns 0, SF_EINVAL, SF_ENOMEM
 * or SF_ETLS (OpenSSL's error text logged to stderr).
 */
int sf_tls_client_ctx_new(const char *ca_file, const char *cert_file, const char *key_file,
                          const char *key_password, bool insecure, sf_tls_ctx_t **out);

/** Takes one more reference to |ctx| and returns it. */
sf_tls_ctx_t *sf_tls_ctx_ref(sf_tls_ctx_t *ctx);

/** Drops one reference; the context is freed with the last one. NULL is a no-op. */
void sf_tls_ctx_free(sf_tls_ctx_t *ctx);

/** True for a server context. */
bool sf_tls_ctx_is_server(const sf_tls_ctx_t *ctx);

/** True when the client context verifies the peer (not insecure). */
bool sf_tls_ctx_verifies_peer(const sf_tls_ctx_t *ctx);

/** The underlying OpenSSL context (borrowed). */
SSL_CTX *sf_tls_ctx_ssl_ctx(const sf_tls_ctx_t *ctx);

/**
 * Converts a comma-separated protocol list ("h2,http/1.1") into ALPN wire
 * format (length-prefixed names) in |out| of |cap| bytes. Returns the number
 * of bytes written, or SF_EINVAL when a name is empty, longer than 255 bytes,
 * or the result does not fit.
 */
ssize_t sf_tls_alpn_wire(const char *list, uint8_t *out, size_t cap);

/**
 * Logs OpenSSL's queued error texts to stderr, one line each after |what|,
 * and clears the queue. Returns SF_ETLS so callers can `return
 * sf__tls_log_errors("...")`.
 */
int sf__tls_log_errors(const char *what);

#endif /* SF_TLS_H */
