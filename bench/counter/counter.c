/* statefun-c: Apache License 2.0.
 *
 * The functions the benchmarks drive (bench/README.md):
 *
 *   bench/counter/ID  adds one to its long state "n" for every message,
 *                     whatever the message holds;
 *   bench/pong/X:Y    ping-pong: adds one to "n"; a message with an int k > 0
 *                     sends k - 1 to bench/pong/Y:X, so one message to X:Y
 *                     makes k + 1 invocations alternating between two
 *                     addresses;
 *   bench/fanout/ID   adds one to "n"; an int message k sends one message to
 *                     each of bench/counter/f0 .. f(k-1);
 *   bench/blob/ID     keeps 100 bytes of state "b" (type bench.types/blob)
 *                     whose first 8 bytes count the messages (little
 *                     endian): the state-scale and checkpoint workloads.
 *
 * The same code is served remotely by main.c and loaded embedded from
 * libcounter.so (SF_MODULE below). Callbacks keep no state of their own and
 * run on whatever thread invokes them.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "counter.h"

/* Adds one to the long state "n". */
static int bump(sf_ctx_t *ctx)
{
    int64_t n = 0;
    int rv = sf_storage_get_long(ctx, "n", &n);
    if (rv < 0)
        return rv;
    return sf_storage_set_long(ctx, "n", n + 1);
}

static int counter(sf_ctx_t *ctx, const sf_message_t *msg, void *user_data)
{
    return bump(ctx);
}

static int pong(sf_ctx_t *ctx, const sf_message_t *msg, void *user_data)
{
    const char *id = sf_self(ctx)->id, *colon = strchr(id, ':');
    char peer[256];
    size_t x, y;
    int32_t k = 0;
    int rv;

    if ((rv = bump(ctx)) != 0)
        return rv;
    if (!sf_message_is_int(msg) || sf_message_as_int(msg, &k) != 0 || k <= 0 || !colon)
        return 0;
    /* X:Y -> Y:X (copied: snprintf was 6% of the runtime's samples at 1M msg/s) */
    x = (size_t)(colon - id);
    y = strlen(colon + 1);
    if (x + y + 2 > sizeof peer)
        return SF_EINVAL;
    memcpy(peer, colon + 1, y);
    peer[y] = ':';
    memcpy(peer + y + 1, id, x);
    peer[x + y + 1] = '\0';
    return sf_send_int(ctx, "bench/pong", peer, k - 1);
}

static int fanout(sf_ctx_t *ctx, const sf_message_t *msg, void *user_data)
{
    char id[32];
    int32_t k = 0, i;
    int rv;

    if ((rv = bump(ctx)) != 0)
        return rv;
    if (!sf_message_is_int(msg) || sf_message_as_int(msg, &k) != 0)
        return 0;
    for (i = 0; i < k; i++) {
        snprintf(id, sizeof id, "f%d", (int)i);
        if ((rv = sf_send_int(ctx, "bench/counter", id, 1)) != 0)
            return rv;
    }
    return 0;
}

#define BLOB_BYTES 100

static int blob(sf_ctx_t *ctx, const sf_message_t *msg, void *user_data)
{
    uint8_t b[BLOB_BYTES];
    const uint8_t *old = NULL;
    size_t len = 0;
    uint64_t n = 0;
    int rv = sf_storage_get(ctx, "b", &old, &len);
    if (rv < 0)
        return rv;
    memset(b, 'x', sizeof b);
    if (old && len == sizeof b)
        memcpy(&n, old, sizeof n);
    n++;
    memcpy(b, &n, sizeof n);
    return sf_storage_set(ctx, "b", b, sizeof b);
}

int bench_counter_register(sf_functions_t *fns)
{
    static const sf_value_spec_t specs[] = {SF_SPEC_LONG("n")};
    static const sf_value_spec_t blob_specs[] = {SF_SPEC("b", "bench.types/blob")};
    int rv;
    if ((rv = sf_functions_bind(fns, "bench/counter", counter, NULL, specs, 1)) != 0 ||
        (rv = sf_functions_bind(fns, "bench/pong", pong, NULL, specs, 1)) != 0 ||
        (rv = sf_functions_bind(fns, "bench/blob", blob, NULL, blob_specs, 1)) != 0)
        return rv;
    return sf_functions_bind(fns, "bench/fanout", fanout, NULL, specs, 1);
}

SF_MODULE(bench_counter_register)
