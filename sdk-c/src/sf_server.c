/* statefun-c: Apache License 2.0.
 *
 * Serving bound functions remotely: the SDK's HTTP endpoint on top of the
 * shared transport (protocol/http/sf_http.h), which speaks HTTP/1.1 and
 * HTTP/2 on one port, optionally over TLS or a UNIX socket, and enforces the
 * body limit (413). This file adds the StateFun endpoint's rules: POST only
 * (405 otherwise), the path rules (one path for all functions, or one per
 * function from a "{function.name}" template; 404 for other paths), and the
 * mapping of the protocol core's results to 200 (FromFunction,
 * application/octet-stream) or 400/404/500 with a one-line reason.
 *
 * sf_serve wraps a server in a loop of its own that runs until SIGINT or
 * SIGTERM.
 *
 * Threading: a server belongs to the loop it was started on; everything
 * here runs on that loop's thread. Requests are answered from inside the
 * request callback, with one sf_handler_t per server reused for all of them.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "sf_http.h"
#include "sf_sdk_int.h"

#define DEFAULT_HOST "127.0.0.1"
#define DEFAULT_PORT 8000
#define NAME_PLACEHOLDER "{function.name}"

struct sf_server_options_s {
    const sf_mem *mem;           /* private: allocator of the options */
    char *host;                  /* private: TCP host, or NULL with unix_path */
    uint16_t port;               /* private */
    char *unix_path;             /* private */
    char *path;                  /* private: NULL: any path */
    char *tls_cert;              /* private */
    char *tls_key;               /* private */
    size_t max_body;             /* private: 0: the transport's default */
    sf_server_ready_cb ready_cb; /* private */
    void *ready_user_data;       /* private */
};

struct sf_server_s {
    const sf_functions_t *fns; /* borrowed; outlives the server */
    const sf_mem *mem;         /* the registry's allocator */
    sf_http_server_t *http;    /* the transport's server */
    sf_handler_t *handler;     /* decode arena and output buffer, reused per request */
    char *path;                /* the one accepted path, or NULL (any) when not per function */
    char **fn_paths;           /* per function (template): fns->n paths, else NULL */
    size_t n_fn_paths;
    sf_server_close_cb close_cb;
    void *close_user_data;
};

/* ------------------------------------------------------------------------ */
/* Options                                                                    */

static void replace_str(const sf_mem *mem, char **dst, char *s)
{
    sf_mem_free(mem, *dst);
    *dst = s;
}

int sf_server_options_new(const sf_mem *mem, sf_server_options_t **out)
{
    sf_server_options_t *o;
    if (!out)
        return SF_EINVAL;
    *out = NULL;
    if (!(o = sf_mem_calloc(mem, 1, sizeof *o)))
        return SF_ENOMEM;
    o->mem = mem;
    o->port = DEFAULT_PORT;
    if (!(o->host = sf_mem_strndup(mem, DEFAULT_HOST, strlen(DEFAULT_HOST)))) {
        sf_mem_free(mem, o);
        return SF_ENOMEM;
    }
    *out = o;
    return SF_OK;
}

void sf_server_options_free(sf_server_options_t *o)
{
    if (!o)
        return;
    sf_mem_free(o->mem, o->host);
    sf_mem_free(o->mem, o->unix_path);
    sf_mem_free(o->mem, o->path);
    sf_mem_free(o->mem, o->tls_cert);
    sf_mem_free(o->mem, o->tls_key);
    sf_mem_free(o->mem, o);
}

/* Parses a decimal port 0..65535 of exactly |len| characters. */
static int parse_port(const char *s, size_t len, uint16_t *port)
{
    unsigned long v = 0;
    size_t i;
    if (len == 0 || len > 5)
        return SF_EINVAL;
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return SF_EINVAL;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > 65535)
        return SF_EINVAL;
    *port = (uint16_t)v;
    return SF_OK;
}

int sf_server_options_set_listen(sf_server_options_t *o, const char *listen)
{
    const char *host, *colon;
    size_t host_len;
    uint16_t port;
    char *copy;

    if (!o || !listen)
        return SF_EINVAL;
    if (strncmp(listen, "unix:", 5) == 0) {
        if (listen[5] == '\0')
            return SF_EINVAL;
        if (!(copy = sf_mem_strndup(o->mem, listen + 5, strlen(listen + 5))))
            return SF_ENOMEM;
        replace_str(o->mem, &o->unix_path, copy);
        replace_str(o->mem, &o->host, NULL);
        o->port = 0;
        return SF_OK;
    }
    if (listen[0] == '[') {
        /* "[v6addr]:port" */
        const char *close = strchr(listen, ']');
        if (!close || close == listen + 1 || close[1] != ':')
            return SF_EINVAL;
        host = listen + 1;
        host_len = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon || colon == listen || memchr(listen, ':', (size_t)(colon - listen)))
            return SF_EINVAL;
        host = listen;
        host_len = (size_t)(colon - listen);
    }
    if (parse_port(colon + 1, strlen(colon + 1), &port) != 0)
        return SF_EINVAL;
    if (!(copy = sf_mem_strndup(o->mem, host, host_len)))
        return SF_ENOMEM;
    replace_str(o->mem, &o->host, copy);
    replace_str(o->mem, &o->unix_path, NULL);
    o->port = port;
    return SF_OK;
}

int sf_server_options_set_path(sf_server_options_t *o, const char *path)
{
    char *copy = NULL;
    if (!o)
        return SF_EINVAL;
    if (path) {
        if (path[0] != '/' || strchr(path, '?'))
            return SF_EINVAL;
        if (!(copy = sf_mem_strndup(o->mem, path, strlen(path))))
            return SF_ENOMEM;
    }
    replace_str(o->mem, &o->path, copy);
    return SF_OK;
}

int sf_server_options_set_tls(sf_server_options_t *o, const char *cert_file, const char *key_file)
{
    char *cert = NULL, *key = NULL;
    if (!o || !cert_file != !key_file)
        return SF_EINVAL;
    if (cert_file) {
        cert = sf_mem_strndup(o->mem, cert_file, strlen(cert_file));
        key = sf_mem_strndup(o->mem, key_file, strlen(key_file));
        if (!cert || !key) {
            sf_mem_free(o->mem, cert);
            sf_mem_free(o->mem, key);
            return SF_ENOMEM;
        }
    }
    replace_str(o->mem, &o->tls_cert, cert);
    replace_str(o->mem, &o->tls_key, key);
    return SF_OK;
}

int sf_server_options_set_max_body(sf_server_options_t *o, size_t max_body_bytes)
{
    if (!o)
        return SF_EINVAL;
    o->max_body = max_body_bytes;
    return SF_OK;
}

int sf_server_options_set_ready_cb(sf_server_options_t *o, sf_server_ready_cb cb, void *user_data)
{
    if (!o)
        return SF_EINVAL;
    o->ready_cb = cb;
    o->ready_user_data = user_data;
    return SF_OK;
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                   */

static const sf_http_header_t text_plain = {"content-type", 12, "text/plain; charset=utf-8", 25};
static const sf_http_header_t octet_stream = {"content-type", 12, "application/octet-stream", 24};

static void respond_text(sf_http_request_t *req, int status, const char *text,
                         const sf_http_header_t *extra)
{
    sf_http_header_t headers[2];
    char body[512];
    size_t nheaders = 0;
    int n;
    headers[nheaders++] = text_plain;
    if (extra)
        headers[nheaders++] = *extra;
    n = snprintf(body, sizeof body, "%s\n", text);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof body)
        n = (int)sizeof body - 1;
    sf_http_respond(req, status, headers, nheaders, body, (size_t)n);
}

static int status_of(int err)
{
    switch (err) {
    case SF_EPROTO:
    case SF_EINVAL:
        return 400;
    case SF_ENOTFOUND:
        return 404;
    case SF_ETOOBIG:
        return 413;
    default:
        return 500;
    }
}

/*
 * Which function the request path is for: sets |*only| to it (per-function
 * paths) or NULL (any function). Returns false when the path serves nothing.
 */
static bool route(const sf_server_t *srv, const char *path, const sf__function_t **only)
{
    size_t len = strcspn(path, "?"), i;
    *only = NULL;
    if (srv->fn_paths) {
        for (i = 0; i < srv->n_fn_paths; i++) {
            if (strlen(srv->fn_paths[i]) == len && memcmp(srv->fn_paths[i], path, len) == 0) {
                *only = srv->fns->fns[i];
                return true;
            }
        }
        return false;
    }
    return !srv->path || (strlen(srv->path) == len && memcmp(srv->path, path, len) == 0);
}

static void on_request(sf_http_request_t *req, void *user_data)
{
    sf_server_t *srv = user_data;
    const char *method = sf_http_request_method(req);
    const char *path = sf_http_request_path(req);
    const sf__function_t *only;
    const uint8_t *body, *out;
    size_t body_len, out_len;
    int rv;

    if (!method || strcmp(method, "POST") != 0) {
        static const sf_http_header_t allow = {"allow", 5, "POST", 4};
        respond_text(req, 405, "method not allowed: StateFun functions take POST", &allow);
        return;
    }
    if (!route(srv, path ? path : "/", &only)) {
        respond_text(req, 404, "no function is served at this path", NULL);
        return;
    }
    body = sf_http_request_body(req, &body_len);
    rv = sf__handler_invoke_only(srv->handler, only, body, body_len, &out, &out_len);
    if (rv != 0) {
        respond_text(req, status_of(rv), sf_handler_reason(srv->handler), NULL);
        return;
    }
    /* sf_http_respond copies the body, so the handler's buffer is free again. */
    sf_http_respond(req, 200, &octet_stream, 1, out, out_len);
}

/* ------------------------------------------------------------------------ */
/* Server                                                                     */

static void server_free(sf_server_t *srv)
{
    size_t i;
    if (srv->fn_paths) {
        for (i = 0; i < srv->n_fn_paths; i++)
            sf_mem_free(srv->mem, srv->fn_paths[i]);
        sf_mem_free(srv->mem, srv->fn_paths);
    }
    sf_mem_free(srv->mem, srv->path);
    sf_handler_free(srv->handler);
    sf_mem_free(srv->mem, srv);
}

/* Substitutes every "{function.name}" of |tmpl| with |name|. NULL on OOM. */
static char *expand_template(const sf_mem *mem, const char *tmpl, const char *name)
{
    size_t nlen = strlen(name), plen = strlen(NAME_PLACEHOLDER), len = 0;
    const char *p;
    char *out, *w;
    for (p = tmpl; *p;) {
        if (strncmp(p, NAME_PLACEHOLDER, plen) == 0) {
            len += nlen;
            p += plen;
        } else {
            len++;
            p++;
        }
    }
    if (!(out = sf_mem_malloc(mem, len + 1)))
        return NULL;
    for (p = tmpl, w = out; *p;) {
        if (strncmp(p, NAME_PLACEHOLDER, plen) == 0) {
            memcpy(w, name, nlen);
            w += nlen;
            p += plen;
        } else {
            *w++ = *p++;
        }
    }
    *w = '\0';
    return out;
}

static int paths_init(sf_server_t *srv, const char *path)
{
    size_t i, j;
    if (!path)
        return SF_OK;
    if (!strstr(path, NAME_PLACEHOLDER)) {
        srv->path = sf_mem_strndup(srv->mem, path, strlen(path));
        return srv->path ? SF_OK : SF_ENOMEM;
    }
    srv->fn_paths = sf_mem_calloc(srv->mem, srv->fns->n ? srv->fns->n : 1, sizeof(char *));
    if (!srv->fn_paths)
        return SF_ENOMEM;
    for (i = 0; i < srv->fns->n; i++) {
        if (!(srv->fn_paths[i] = expand_template(srv->mem, path, srv->fns->fns[i]->name)))
            return SF_ENOMEM;
        srv->n_fn_paths++;
        /* Two namespaces binding the same name would share a path. */
        for (j = 0; j < i; j++)
            if (strcmp(srv->fn_paths[j], srv->fn_paths[i]) == 0)
                return SF_EINVAL;
    }
    return SF_OK;
}

static void notify_ready(const sf_server_t *srv, const sf_server_options_t *o)
{
    char addr[512];
    if (!o->ready_cb)
        return;
    if (o->unix_path)
        snprintf(addr, sizeof addr, "unix:%s", o->unix_path);
    else if (strchr(o->host, ':'))
        snprintf(addr, sizeof addr, "[%s]:%u", o->host, (unsigned)sf_http_server_port(srv->http));
    else
        snprintf(addr, sizeof addr, "%s:%u", o->host, (unsigned)sf_http_server_port(srv->http));
    o->ready_cb(addr, o->ready_user_data);
}

int sf_server_start(struct uv_loop_s *loop, const sf_functions_t *fns,
                    const sf_server_options_t *opts, sf_server_t **out)
{
    sf_http_server_config_t cfg;
    sf_server_t *srv;
    int rv;

    if (!loop || !fns || !opts || !out)
        return SF_EINVAL;
    *out = NULL;
    if (!(srv = sf_mem_calloc(fns->mem, 1, sizeof *srv)))
        return SF_ENOMEM;
    srv->fns = fns;
    srv->mem = fns->mem;
    if ((rv = sf_handler_new(fns, &srv->handler)) != 0)
        goto fail;
    if ((rv = paths_init(srv, opts->path)) != 0)
        goto fail;

    memset(&cfg, 0, sizeof cfg);
    cfg.host = opts->host;
    cfg.port = opts->port;
    cfg.unix_path = opts->unix_path;
    cfg.max_body_bytes = opts->max_body;
    cfg.tls_cert_file = opts->tls_cert;
    cfg.tls_key_file = opts->tls_key;
    cfg.mem = fns->mem;
    if ((rv = sf_http_server_new(loop, &cfg, on_request, srv, &srv->http)) != 0)
        goto fail;
    notify_ready(srv, opts);
    *out = srv;
    return SF_OK;

fail:
    server_free(srv);
    return rv;
}

uint16_t sf_server_port(const sf_server_t *srv)
{
    return srv && srv->http ? sf_http_server_port(srv->http) : 0;
}

static void on_http_closed(sf_http_server_t *http, void *user_data)
{
    sf_server_t *srv = user_data;
    sf_server_close_cb cb = srv->close_cb;
    void *cb_data = srv->close_user_data;
    server_free(srv);
    if (cb)
        cb(srv, cb_data);
}

void sf_server_close(sf_server_t *srv, sf_server_close_cb cb, void *user_data)
{
    if (!srv)
        return;
    srv->close_cb = cb;
    srv->close_user_data = user_data;
    sf_http_server_close(srv->http, on_http_closed, srv);
}

/* ------------------------------------------------------------------------ */
/* sf_serve: a loop of its own until SIGINT or SIGTERM                        */

typedef struct {
    uv_signal_t sigint;
    uv_signal_t sigterm;
    sf_server_t *srv;
} serve_t;

static void on_signal(uv_signal_t *sig, int signum)
{
    serve_t *s = sig->data;
    if (s->srv) {
        sf_server_close(s->srv, NULL, NULL);
        s->srv = NULL;
    }
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
}

int sf_serve(const sf_functions_t *fns, const sf_server_options_t *opts)
{
    uv_loop_t loop;
    serve_t s;
    int rv, err;

    if (!fns || !opts)
        return SF_EINVAL;
    /* A peer closing its connection must not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    if ((rv = uv_loop_init(&loop)) != 0)
        return sf_err_from_uv(rv);
    memset(&s, 0, sizeof s);
    /* The signal handlers are armed before the server starts, so a signal
     * sent as soon as the ready callback said "listening" stops it cleanly. */
    uv_signal_init(&loop, &s.sigint);
    uv_signal_init(&loop, &s.sigterm);
    s.sigint.data = s.sigterm.data = &s;
    uv_signal_start(&s.sigint, on_signal, SIGINT);
    uv_signal_start(&s.sigterm, on_signal, SIGTERM);
    err = sf_server_start(&loop, fns, opts, &s.srv);
    if (err != 0) {
        uv_close((uv_handle_t *)&s.sigint, NULL);
        uv_close((uv_handle_t *)&s.sigterm, NULL);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    rv = uv_loop_close(&loop);
    if (err != 0)
        return err;
    return rv == 0 ? SF_OK : sf_err_from_uv(rv);
}
