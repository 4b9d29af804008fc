/* statefun-c: Apache License 2.0.
 *
 * `statefun savepoint`: asks a running runtime's admin listener for a
 * savepoint (POST /v1/savepoints, the directory as the body) with the
 * project's HTTP client, and reports the answer. Main thread of the
 * command-line process.
 */
#include "savepoint_cmd.h"

#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "sf_http.h"

typedef struct {
    int done, err, status;
    char *msg;
    size_t msglen;
} result_t;

static void on_response(int err, const sf_http_response_t *res, void *ud)
{
    result_t *r = ud;
    r->done = 1;
    r->err = err;
    if (res) {
        size_t n = res->body_len < r->msglen - 1 ? res->body_len : r->msglen - 1;
        r->status = res->status;
        memcpy(r->msg, res->body, n);
        while (n && (r->msg[n - 1] == '\n' || r->msg[n - 1] == '\r'))
            n--;
        r->msg[n] = '\0';
    }
}

static void on_closed(sf_http_client_t *c, void *ud)
{
    (void)c;
    (void)ud;
}

int sf_savepoint_request(const char *host, uint16_t port, const char *dir, char *msg,
                         size_t msglen)
{
    static const sf_http_header_t hdrs[] = {{"content-type", 12, "text/plain", 10}};
    uv_loop_t loop;
    sf_http_client_t *client = NULL;
    sf_http_client_config_t cfg;
    sf_http_url_t url;
    result_t r;
    char u[128];
    int rv;

    memset(&r, 0, sizeof r);
    r.msg = msg;
    r.msglen = msglen;
    msg[0] = '\0';
    snprintf(u, sizeof u, strchr(host, ':') ? "http://[%s]:%u/v1/savepoints"
                                            : "http://%s:%u/v1/savepoints",
             host, port);
    if ((rv = sf_http_url_parse(u, NULL, &url)) != 0)
        return rv;
    uv_loop_init(&loop);
    memset(&cfg, 0, sizeof cfg);
    cfg.protocol = SF_HTTP_PROTO_HTTP1;
    cfg.call_timeout_ms = 10 * 60 * 1000; /* a savepoint of a large state takes a while */
    cfg.read_timeout_ms = cfg.call_timeout_ms;
    if ((rv = sf_http_client_new(&loop, &cfg, &client)) == 0 &&
        (rv = sf_http_client_request(client, "POST", &url, hdrs, 1, dir, strlen(dir), on_response,
                                     &r)) == 0) {
        while (!r.done)
            uv_run(&loop, UV_RUN_ONCE);
        rv = r.err ? r.err : (r.status == 200 ? 0 : SF_EIO);
        if (r.err)
            snprintf(msg, msglen, "%s", sf_strerror(r.err));
    }
    if (client)
        sf_http_client_close(client, on_closed, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    sf_http_url_dispose(&url, NULL);
    return rv;
}
