/* statefun-c: Apache License 2.0.
 *
 * TLS contexts (see tls.h): SSL_CTX construction for servers and clients,
 * ALPN selection on the server side, and the logging of OpenSSL's error
 * queue at the boundary where its errors become SF_ETLS.
 *
 * A context is immutable after construction; the reference count is atomic
 * so contexts may be shared between loops. Any thread.
 */
#include "tls.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#define ALPN_MAX 256

struct sf_tls_ctx_s {
    atomic_int refs;
    bool server;
    bool verify;
    SSL_CTX *ssl_ctx;
    /* The server's ALPN preference list in wire format. */
    uint8_t alpn[ALPN_MAX];
    unsigned alpn_len;
    /* The key password, kept for OpenSSL's password callback during load. */
    char *password;
};

int sf__tls_log_errors(const char *what)
{
    unsigned long e;
    char text[256];
    int n = 0;

    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, text, sizeof text);
        fprintf(stderr, "statefun-c tls: %s: %s\n", what, text);
        n++;
    }
    if (n == 0)
        fprintf(stderr, "statefun-c tls: %s\n", what);
    return SF_ETLS;
}

ssize_t sf_tls_alpn_wire(const char *list, uint8_t *out, size_t cap)
{
    size_t len = 0;
    const char *p = list, *comma;

    if (!list || !*list)
        return SF_EINVAL;
    while (*p) {
        size_t n;
        comma = strchr(p, ',');
        n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == 0 || n > 255 || len + 1 + n > cap)
            return SF_EINVAL;
        out[len++] = (uint8_t)n;
        memcpy(out + len, p, n);
        len += n;
        if (!comma)
            break;
        p = comma + 1;
        if (!*p)
            return SF_EINVAL;
    }
    return (ssize_t)len;
}

/* Picks the first protocol in the server's list that the client offers; with
 * no overlap the handshake goes on without ALPN (the HTTP layer then sniffs
 * the connection preface). */
static int alpn_select_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                          const unsigned char *in, unsigned int inlen, void *arg)
{
    sf_tls_ctx_t *ctx = arg;
    unsigned char *sel = NULL;
    unsigned char sel_len = 0;

    (void)ssl;
    if (SSL_select_next_proto(&sel, &sel_len, ctx->alpn, ctx->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    *outlen = sel_len;
    return SSL_TLSEXT_ERR_OK;
}

static int password_cb(char *buf, int size, int rwflag, void *userdata)
{
    sf_tls_ctx_t *ctx = userdata;
    size_t n;

    (void)rwflag;
    if (!ctx->password)
        return 0;
    n = strlen(ctx->password);
    if (n > (size_t)size)
        n = (size_t)size;
    memcpy(buf, ctx->password, n);
    return (int)n;
}

static sf_tls_ctx_t *ctx_alloc(const SSL_METHOD *method, bool server)
{
    sf_tls_ctx_t *ctx = calloc(1, sizeof *ctx);

    if (!ctx)
        return NULL;
    atomic_init(&ctx->refs, 1);
    ctx->server = server;
    ctx->ssl_ctx = SSL_CTX_new(method);
    if (!ctx->ssl_ctx) {
        free(ctx);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx->ssl_ctx, TLS1_2_VERSION);
    /* Memory BIOs never block; let SSL_write accept what it can and keep
     * buffers around between records for speed. */
    SSL_CTX_set_mode(ctx->ssl_ctx,
                     SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return ctx;
}

static void ctx_destroy(sf_tls_ctx_t *ctx)
{
    if (ctx->ssl_ctx)
        SSL_CTX_free(ctx->ssl_ctx);
    if (ctx->password) {
        memset(ctx->password, 0, strlen(ctx->password));
        free(ctx->password);
    }
    free(ctx);
}

static int load_cert_key(sf_tls_ctx_t *ctx, const char *cert_file, const char *key_file)
{
    if (SSL_CTX_use_certificate_chain_file(ctx->ssl_ctx, cert_file) != 1)
        return sf__tls_log_errors("cannot load certificate");
    if (SSL_CTX_use_PrivateKey_file(ctx->ssl_ctx, key_file, SSL_FILETYPE_PEM) != 1)
        return sf__tls_log_errors("cannot load private key");
    if (SSL_CTX_check_private_key(ctx->ssl_ctx) != 1)
        return sf__tls_log_errors("private key does not match the certificate");
    return SF_OK;
}

int sf_tls_server_ctx_new(const char *cert_file, const char *key_file, const char *alpn_protos_pref,
                          sf_tls_ctx_t **out)
{
    sf_tls_ctx_t *ctx;
    ssize_t n;
    int rv;

    if (!cert_file || !key_file || !out)
        return SF_EINVAL;
    ctx = ctx_alloc(TLS_server_method(), true);
    if (!ctx)
        return SF_ENOMEM;
    n = sf_tls_alpn_wire(alpn_protos_pref ? alpn_protos_pref : "h2,http/1.1", ctx->alpn,
                         sizeof ctx->alpn);
    if (n < 0) {
        rv = SF_EINVAL;
        goto fail;
    }
    ctx->alpn_len = (unsigned)n;
    if ((rv = load_cert_key(ctx, cert_file, key_file)) != 0)
        goto fail;
    SSL_CTX_set_options(ctx->ssl_ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_alpn_select_cb(ctx->ssl_ctx, alpn_select_cb, ctx);
    *out = ctx;
    return SF_OK;

fail:
    ctx_destroy(ctx);
    return rv;
}

int sf_tls_client_ctx_new(const char *ca_file, const char *cert_file, const char *key_file,
                          const char *key_password, bool insecure, sf_tls_ctx_t **out)
{
    sf_tls_ctx_t *ctx;
    int rv;

    if (!out || (!cert_file) != (!key_file))
        return SF_EINVAL;
    ctx = ctx_alloc(TLS_client_method(), false);
    if (!ctx)
        return SF_ENOMEM;
    ctx->verify = !insecure;
    if (insecure) {
        SSL_CTX_set_verify(ctx->ssl_ctx, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(ctx->ssl_ctx, SSL_VERIFY_PEER, NULL);
        if (ca_file) {
            if (SSL_CTX_load_verify_locations(ctx->ssl_ctx, ca_file, NULL) != 1) {
                rv = sf__tls_log_errors("cannot load CA file");
                goto fail;
            }
        } else if (SSL_CTX_set_default_verify_paths(ctx->ssl_ctx) != 1) {
            rv = sf__tls_log_errors("cannot load the default trust store");
            goto fail;
        }
    }
    if (cert_file) {
        if (key_password) {
            ctx->password = strdup(key_password);
            if (!ctx->password) {
                rv = SF_ENOMEM;
                goto fail;
            }
            SSL_CTX_set_default_passwd_cb(ctx->ssl_ctx, password_cb);
            SSL_CTX_set_default_passwd_cb_userdata(ctx->ssl_ctx, ctx);
        }
        rv = load_cert_key(ctx, cert_file, key_file);
        /* The password is needed only while loading. */
        SSL_CTX_set_default_passwd_cb(ctx->ssl_ctx, NULL);
        SSL_CTX_set_default_passwd_cb_userdata(ctx->ssl_ctx, NULL);
        if (rv != 0)
            goto fail;
    }
    *out = ctx;
    return SF_OK;

fail:
    ctx_destroy(ctx);
    return rv;
}

sf_tls_ctx_t *sf_tls_ctx_ref(sf_tls_ctx_t *ctx)
{
    atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
    return ctx;
}

void sf_tls_ctx_free(sf_tls_ctx_t *ctx)
{
    if (!ctx)
        return;
    if (atomic_fetch_sub_explicit(&ctx->refs, 1, memory_order_acq_rel) == 1)
        ctx_destroy(ctx);
}

bool sf_tls_ctx_is_server(const sf_tls_ctx_t *ctx)
{
    return ctx->server;
}

bool sf_tls_ctx_verifies_peer(const sf_tls_ctx_t *ctx)
{
    return ctx->verify;
}

SSL_CTX *sf_tls_ctx_ssl_ctx(const sf_tls_ctx_t *ctx)
{
    return ctx->ssl_ctx;
}
