/* statefun-c: Apache License 2.0.
 *
 * A quick load generator for the HTTP client: keeps |concurrency| requests in
 * flight to one URL for |seconds| and prints requests per second. Not a test
 * (timings depend on the machine); used to measure the client against an
 * independent server, e.g.
 *
 *   nghttpd --no-tls -a 127.0.0.1 -d /tmp/docroot 8080 &
 *   build/tests/http_client_bench http://127.0.0.1:8080/file h2c 100 5 [body-bytes]
 *
 * Protocols: auto, http1, h2c, h2. With body-bytes > 0 requests are POSTs.
 * Runs on one loop, the calling thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sf_http.h"

static sf_http_client_t *client;
static sf_http_url_t url;
static char *body;
static size_t body_len;
static uint64_t done, failed, stop_at;
static int inflight;
static bool stopping;

static void on_response(int err, const sf_http_response_t *res, void *user_data);

static void issue(void)
{
    int rv = sf_http_client_request(client, body_len ? "POST" : "GET", &url, NULL, 0, body,
                                    body_len, on_response, NULL);
    if (rv != 0) {
        fprintf(stderr, "request: %s\n", sf_strerror(rv));
        exit(1);
    }
    inflight++;
}

static void on_response(int err, const sf_http_response_t *res, void *user_data)
{
    (void)user_data;
    inflight--;
    if (err != 0 || res->status != 200) {
        if (failed++ < 5)
            fprintf(stderr, "failed: %s (status %d)\n", err ? sf_strerror(err) : "ok",
                    res ? res->status : 0);
    } else {
        done++;
    }
    if (!stopping)
        issue();
}

static void on_stop(uv_timer_t *t)
{
    (void)t;
    stopping = true;
}

int main(int argc, char **argv)
{
    sf_http_client_config_t cfg = {0};
    uv_loop_t loop;
    uv_timer_t timer;
    int concurrency, seconds, i;
    uint64_t t0, t1;

    if (argc < 5) {
        fprintf(stderr, "usage: %s URL auto|http1|h2c|h2 CONCURRENCY SECONDS [BODY_BYTES]\n",
                argv[0]);
        return 2;
    }
    if (sf_http_url_parse(argv[1], NULL, &url) != 0) {
        fprintf(stderr, "bad url\n");
        return 2;
    }
    cfg.protocol = strcmp(argv[2], "http1") == 0 ? SF_HTTP_PROTO_HTTP1
                 : strcmp(argv[2], "h2c") == 0   ? SF_HTTP_PROTO_H2C
                 : strcmp(argv[2], "h2") == 0    ? SF_HTTP_PROTO_H2
                                                 : SF_HTTP_PROTO_AUTO;
    cfg.tls_insecure = true;
    concurrency = atoi(argv[3]);
    seconds = atoi(argv[4]);
    body_len = argc > 5 ? (size_t)atol(argv[5]) : 0;
    body = calloc(1, body_len + 1);
    memset(body, 'b', body_len);

    uv_loop_init(&loop);
    if (sf_http_client_new(&loop, &cfg, &client) != 0)
        return 1;
    uv_timer_init(&loop, &timer);
    uv_timer_start(&timer, on_stop, (uint64_t)seconds * 1000, 0);
    t0 = uv_hrtime();
    for (i = 0; i < concurrency; i++)
        issue();
    while (inflight > 0)
        uv_run(&loop, UV_RUN_ONCE);
    t1 = uv_hrtime();
    (void)stop_at;
    printf("%llu requests in %.2f s: %.0f req/s (%llu failed), version %d\n",
           (unsigned long long)done, (double)(t1 - t0) / 1e9,
           (double)done / ((double)(t1 - t0) / 1e9), (unsigned long long)failed,
           sf_http_client_origin_version(client, &url));
    sf_http_client_close(client, NULL, NULL);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    sf_http_url_dispose(&url, NULL);
    free(body);
    return 0;
}
