/* statefun-c: Apache License 2.0.
 *
 * sf_serve_main: the option parsing and serving every remote function
 * program needs, so that an example's main() is one call (see sf.h).
 * Main thread of the program.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "statefun/sf.h"

static void usage(FILE *f, const char *program, const char *description)
{
    fprintf(f,
            "usage: %s [--listen HOST:PORT | --listen unix:/PATH] [--path PATH]\n"
            "       [--tls-cert FILE --tls-key FILE] [--max-body BYTES]\n",
            program);
    if (description)
        fprintf(f, "%s\n", description);
    fprintf(f, "Listens on 127.0.0.1:8000 by default (port 0 picks a free port) and serves any\n"
               "path; a PATH with {function.name} gives each function its own path.\n");
}

static void on_ready(const char *address, void *user_data)
{
    (void)user_data;
    printf("listening on %s\n", address);
    fflush(stdout);
}

int sf_serve_main(int argc, char **argv, const char *program, const char *description,
                  sf_register_cb register_fn)
{
    const char *listen = "127.0.0.1:8000", *path = NULL, *cert = NULL, *key = NULL;
    unsigned long long max_body = 0;
    sf_server_options_t *opts = NULL;
    sf_functions_t *fns = NULL;
    int i, rv;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout, program, description);
            return 0;
        }
        if (!v) {
            usage(stderr, program, description);
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
            usage(stderr, program, description);
            return 2;
        }
        i++;
    }

    if ((rv = sf_functions_create(NULL, register_fn, &fns)) != 0 ||
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
        fprintf(stderr, "%s: %s\n", program, sf_strerror(rv));
    sf_server_options_free(opts);
    sf_functions_free(fns);
    return rv == 0 ? 0 : 1;
}
