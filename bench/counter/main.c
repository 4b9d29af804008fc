/* statefun-c: Apache License 2.0.
 *
 * The benchmark functions served remotely: an HTTP/1.1 + HTTP/2 endpoint for
 * the functions of counter.c, for a StateFun runtime configured with an
 * io.statefun.endpoints.v2/http endpoint pointing here.
 *
 *   counter [--listen HOST:PORT | --listen unix:/PATH] [--path PATH]
 *           [--tls-cert FILE --tls-key FILE] [--max-body BYTES]
 *
 * Prints "listening on ADDRESS" once it listens (port 0 picks a free one) and
 * runs until SIGINT or SIGTERM. Single-threaded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "counter.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: counter [--listen HOST:PORT | --listen unix:/PATH] [--path PATH]\n"
               "               [--tls-cert FILE --tls-key FILE] [--max-body BYTES]\n"
               "Serves bench/counter, bench/pong, bench/fanout (default 127.0.0.1:8000, any\n"
               "path; a PATH with {function.name} gives each function its own path).\n");
}

static void on_ready(const char *address, void *user_data)
{
    printf("listening on %s\n", address);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:8000", *path = NULL, *cert = NULL, *key = NULL;
    unsigned long long max_body = 0;
    sf_server_options_t *opts = NULL;
    sf_functions_t *fns = NULL;
    int i, rv;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            usage(stderr);
            return 2;
        }
        if (strcmp(a, "--listen") == 0)
            listen = v;
        else if (strcmp(a, "--path") == 0)
            path = v;
        else if (strcmp(a, "--tls-cert") == 0)
            cert = v;
        else if (strcmp(a, "--tls-key") == 0)
            key = v;
        else if (strcmp(a, "--max-body") == 0)
            max_body = strtoull(v, NULL, 10);
        else {
            usage(stderr);
            return 2;
        }
        i++;
    }

    if ((rv = sf_functions_create(NULL, bench_counter_register, &fns)) != 0 ||
        (rv = sf_server_options_new(NULL, &opts)) != 0 ||
        (rv = sf_server_options_set_listen(opts, listen)) != 0 ||
        (rv = sf_server_options_set_path(opts, path)) != 0 ||
        (rv = sf_server_options_set_tls(opts, cert, key)) != 0 ||
        (rv = sf_server_options_set_max_body(opts, (size_t)max_body)) != 0 ||
        (rv = sf_server_options_set_ready_cb(opts, on_ready, NULL)) != 0)
        goto out;
    rv = sf_serve(fns, opts);
out:
    if (rv != 0)
        fprintf(stderr, "counter: %s\n", sf_strerror(rv));
    sf_server_options_free(opts);
    sf_functions_free(fns);
    return rv == 0 ? 0 : 1;
}
