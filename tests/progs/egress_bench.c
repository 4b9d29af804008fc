/* statefun-c: Apache License 2.0.
 *
 * Costs of the durable egress store (runtime/egress/store.h), by hand:
 *
 *   egress_bench publish DIR          ms per publish (one synced write of K
 *                                     records with the published epoch), for
 *                                     K = 0 (epoch only), 1, 100, 1000
 *   egress_bench serve DIR N          an egress on the store with N records
 *                                     published in topic "t"; prints
 *                                     "listening on PORT" and serves until
 *                                     stdin closes. Measure pops with
 *                                     h2load -n N -c C -m M http://127.0.0.1:PORT/t
 *
 * DIR must not hold a store already; put it on the disk being measured.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "io.h"
#include "store.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int bench_publish(const char *dir)
{
    static const size_t sizes[] = {0, 1, 100, 1000};
    sf_egress_store_t *s;
    sf_egress_store_batch_t *b;
    uint64_t epoch = 0;
    char payload[100];
    size_t i, k, r;
    int t;

    if (sf_egress_store_open(dir, true, &s) != 0)
        return 1;
    t = sf_egress_store_topic(s, "t", 1);
    memset(payload, 'x', sizeof payload);
    b = sf_egress_store_batch_new(s);
    printf("records/publish  median ms  p90 ms  (100-byte records, synced)\n");
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        double ms[50];
        for (r = 0; r < 50; r++) {
            uint64_t t0 = uv_hrtime();
            for (k = 0; k < sizes[i]; k++)
                sf_egress_store_batch_append(b, (uint32_t)t, payload, sizeof payload);
            sf_egress_store_batch_epoch(b, ++epoch);
            if (sf_egress_store_commit(b) != 0)
                return 1;
            sf_egress_store_batch_clear(b);
            ms[r] = (uv_hrtime() - t0) / 1e6;
        }
        qsort(ms, 50, sizeof ms[0], cmp_double);
        printf("%15zu  %9.3f  %6.3f\n", sizes[i], ms[25], ms[45]);
    }
    sf_egress_store_batch_free(b);
    sf_egress_store_close(s);
    return 0;
}

static int bench_serve(const char *dir, size_t n)
{
    static const char *const topics[] = {"t"};
    sf_io_egress_config_t eg = {.host = "127.0.0.1",
                                .topics = topics,
                                .ntopics = 1,
                                .exactly_once = true,
                                .max_records_per_topic = n + 1,
                                .store_dir = dir};
    sf_io_config_t cfg = {.egress = &eg, .max_parallelism = 128};
    sf_io_hooks_t hooks = {0};
    sf_msg_fifo_t chain;
    sf_io_t *io;
    size_t i;
    char c;

    if (sf_io_new(&cfg, &hooks, &io) != 0)
        return 1;
    sf_msg_fifo_init(&chain);
    for (i = 0; i < n; i++) {
        static const char json[] = "{\"topic\": \"t\", \"payload\": \"a record of some size\"}";
        sf_msg_init_t init = {.kind = SF_MSG_EGRESS,
                              .target = SF_IO_PLAYGROUND_EGRESS,
                              .target_len = strlen(SF_IO_PLAYGROUND_EGRESS),
                              .value = (const uint8_t *)json,
                              .value_len = sizeof json - 1};
        sf_msg_t *m;
        if (sf_msg_new(&init, 128, &m) != 0)
            return 1;
        sf_msg_fifo_push(&chain, m);
    }
    if (sf_io_egress_publish_durable(io, &chain, 1) != 0 || sf_io_start(io) != 0)
        return 1;
    printf("listening on %u\n", sf_io_egress_port(io));
    fflush(stdout);
    while (fread(&c, 1, 1, stdin) == 1)
        ;
    sf_io_free(io);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "publish") == 0)
        return bench_publish(argv[2]);
    if (argc == 4 && strcmp(argv[1], "serve") == 0)
        return bench_serve(argv[2], (size_t)strtoull(argv[3], NULL, 10));
    fprintf(stderr, "usage: egress_bench publish DIR | egress_bench serve DIR N\n");
    return 2;
}
