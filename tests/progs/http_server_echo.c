/* statefun-c: Apache License 2.0.
 *
 * A tiny HTTP server over protocol/http (sf_http_server_*) for tests and
 * load measurements (h2load, curl). Every request is answered 200 with its
 * own body (or, when empty, "METHOD PATH\n"), plus x-version. Paths starting
 * with "/delay" are answered 50 ms later from a timer, to exercise
 * asynchronous responses.
 *
 *   http_server_echo [--listen HOST:PORT] [--unix PATH] [--tls CERT KEY]
 *                    [--max-streams N] [--max-body BYTES]
 *
 * Prints "listening PORT" on stdout once ready; SIGTERM or SIGINT closes the
 * server and exits 0. Single-threaded: everything runs on one uv loop.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sf_http.h"

typedef struct {
    uv_timer_t timer;
    sf_http_request_t *req;
} delayed_t;

static uv_loop_t loop;
static uv_signal_t sigterm, sigint;
static sf_http_server_t *server;

static void answer(sf_http_request_t *req)
{
    static const char ver1[] = "1", ver2[] = "2";
    sf_http_header_t h[2];
    size_t len;
    const uint8_t *body = sf_http_request_body(req, &len);
    char line[512];

    h[0].name = "content-type";
    h[0].namelen = 12;
    h[0].value = "application/octet-stream";
    h[0].valuelen = 24;
    h[1].name = "x-version";
    h[1].namelen = 9;
    h[1].value = sf_http_request_version(req) == 2 ? ver2 : ver1;
    h[1].valuelen = 1;
    if (len == 0) {
        int n = snprintf(line, sizeof line, "%s %s\n", sf_http_request_method(req),
                         sf_http_request_path(req));
        sf_http_respond(req, 200, h, 2, line, (size_t)n);
        return;
    }
    sf_http_respond(req, 200, h, 2, body, len);
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_delay(uv_timer_t *t)
{
    delayed_t *d = t->data;
    answer(d->req);
    uv_close((uv_handle_t *)t, on_timer_closed);
}

static void on_request(sf_http_request_t *req, void *user_data)
{
    (void)user_data;
    if (strncmp(sf_http_request_path(req), "/delay", 6) == 0) {
        delayed_t *d = malloc(sizeof *d);
        if (!d) {
            sf_http_respond(req, 503, NULL, 0, "out of memory\n", 14);
            return;
        }
        d->req = req;
        uv_timer_init(&loop, &d->timer);
        d->timer.data = d;
        uv_timer_start(&d->timer, on_delay, 50, 0);
        return;
    }
    answer(req);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)s;
    (void)signum;
    if (server) {
        sf_http_server_close(server, NULL, NULL);
        server = NULL;
    }
    uv_close((uv_handle_t *)&sigterm, NULL);
    uv_close((uv_handle_t *)&sigint, NULL);
}

int main(int argc, char **argv)
{
    sf_http_server_config_t cfg;
    static char host[256];
    int i, rv;

    memset(&cfg, 0, sizeof cfg);
    cfg.host = "127.0.0.1";
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
            char *colon;
            snprintf(host, sizeof host, "%s", argv[++i]);
            colon = strrchr(host, ':');
            if (!colon) {
                fprintf(stderr, "--listen wants HOST:PORT\n");
                return 2;
            }
            *colon = '\0';
            cfg.host = host;
            cfg.port = (uint16_t)atoi(colon + 1);
        } else if (strcmp(argv[i], "--unix") == 0 && i + 1 < argc) {
            cfg.unix_path = argv[++i];
            cfg.host = NULL;
        } else if (strcmp(argv[i], "--tls") == 0 && i + 2 < argc) {
            cfg.tls_cert_file = argv[++i];
            cfg.tls_key_file = argv[++i];
        } else if (strcmp(argv[i], "--max-body") == 0 && i + 1 < argc) {
            cfg.max_body_bytes = (size_t)atol(argv[++i]);
        } else if (strcmp(argv[i], "--max-streams") == 0 && i + 1 < argc) {
            cfg.h2_max_concurrent_streams = (uint32_t)atoi(argv[++i]);
        } else {
            fprintf(stderr,
                    "usage: %s [--listen HOST:PORT] [--unix PATH] [--tls CERT KEY] "
                    "[--max-streams N] [--max-body BYTES]\n",
                    argv[0]);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&loop);
    rv = sf_http_server_new(&loop, &cfg, on_request, NULL, &server);
    if (rv != 0) {
        fprintf(stderr, "cannot start the server: %s\n", sf_strerror(rv));
        uv_loop_close(&loop);
        return 1;
    }
    uv_signal_init(&loop, &sigterm);
    uv_signal_init(&loop, &sigint);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
    printf("listening %u\n", (unsigned)sf_http_server_port(server));
    fflush(stdout);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 0;
}
