/* statefun-c: Apache License 2.0.
 *
 * The admin listener (SPEC 9, `--admin ADDR:PORT`, default 127.0.0.1:8081):
 * health, Prometheus metrics and a read-only view of one address's state,
 * over HTTP/1.1 and h2c on one port (the transport's sf_http_server).
 *
 *   GET /healthz   200 "ok", or 503 "degraded" followed by one reason per
 *                  line: an endpoint whose unhealthy counter is above zero
 *                  (some worker saw no successful call within its call
 *                  timeout), or the runtime stopping.
 *   GET /metrics   Prometheus text format 0.0.4 (see admin.c for the list):
 *                  per function type (label function_type="ns/type") the
 *                  counters and gauges of sf_fn_metrics_t, the remote
 *                  latency histogram of remote types, the ingress and
 *                  egress counters of sf_io_stats, a health gauge per
 *                  endpoint. Only metrics the runtime really measures.
 *   GET /v1/state/{namespace}/{type}/{id}
 *                  the address's states as JSON (ids %-decoded with the
 *                  ingress's rules): {"address": "ns/type/id", "states":
 *                  {"name": {"typename": "...", "value": V,
 *                  "expires_at_ms": N}}}, where V is a JSON value for the
 *                  built-in types (io.statefun.types/bool, int, long, float,
 *                  double, string) and the raw bytes are given as "base64"
 *                  instead of "value" for every other type (and for a
 *                  built-in value that does not decode or has no JSON form,
 *                  such as NaN); "expires_at_ms" only for values with a TTL.
 *                  404 when the address has no state, 400 for a malformed
 *                  path.
 *   Anything else: 404 (unknown path) or 405 (a method other than GET), with
 *   a one-line text reason.
 *
 * Threading. The listener runs on its own thread and loop, not on the I/O
 * thread's (admin.c says why). sf_admin_new binds on the calling thread, so a
 * busy port is reported before anything runs; sf_admin_start starts the
 * thread; sf_admin_stop closes the listener and joins it. Requests read the
 * runtime only through its atomics, its immutable configuration and the
 * state backend's read path (a peek, which the backend allows from any
 * thread). The runtime must outlive the admin: stop it before freeing the
 * I/O object or closing the state backend.
 */
#ifndef SF_ADMIN_H
#define SF_ADMIN_H

#include <stdint.h>

#include "rt.h"
#include "sf_common.h"

typedef struct sf_admin_s sf_admin_t;

/**
 * Creates the admin listener for |rt| on |host|:|port| (an IP literal; port
 * 0 picks a free port, see sf_admin_port), bound now on the calling thread.
 * |rt| is borrowed and must stay valid until sf_admin_free; of it the admin
 * reads opts, mod, state, io (may be NULL), unhealthy, stopping and the
 * function metrics.
 *
 * Returns 0 and sets |*out|, SF_EEXIST when the address is in use, or another
 * negative code from the transport (logged).
 */
int sf_admin_new(sf_rt_t *rt, const char *host, uint16_t port, sf_admin_t **out);

/** The bound port. Any thread. */
uint16_t sf_admin_port(const sf_admin_t *admin);

/** Starts the admin thread. Returns 0 or a negative code. Call once. */
int sf_admin_start(sf_admin_t *admin);

/**
 * Closes the listener and its connections and joins the thread. Any thread
 * except the admin thread; idempotent. Without sf_admin_start, closes on the
 * calling thread.
 */
void sf_admin_stop(sf_admin_t *admin);

/** Stops if needed and frees |admin| (NULL is fine). */
void sf_admin_free(sf_admin_t *admin);

/* ------------------------------------------------------------------------ */
/* The answers, without HTTP (tests call these directly). Any thread.         */

/**
 * Writes the /healthz body into |out| (appended): "ok\n", or "degraded\n"
 * and one reason per line. Returns 200 or 503.
 */
int sf_admin_render_health(sf_rt_t *rt, sf_buf_t *out);

/** Appends the /metrics text to |out|. Returns 0 or SF_ENOMEM. */
int sf_admin_render_metrics(sf_rt_t *rt, sf_buf_t *out);

/**
 * Appends the JSON of the states of the address "ns/type/id" |addr| (|len|
 * bytes, already decoded) to |out|, followed by a newline. Returns 200, 404
 * (no state: |out| gets a one-line reason) or 500 (a read or encoding
 * failure: |out| gets a one-line reason).
 */
int sf_admin_render_state(sf_rt_t *rt, const char *addr, size_t len, sf_buf_t *out);

#endif /* SF_ADMIN_H */
