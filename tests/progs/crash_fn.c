/* statefun-c: Apache License 2.0.
 *
 * The crash test's command interpreter served remotely (HTTP/1.1 + HTTP/2),
 * for tests/runtime/check_crash.c:
 *
 *   crash_fn [--listen HOST:PORT]     (default 127.0.0.1:0: a free port)
 *
 * Prints "listening on ADDRESS" once it listens and serves until SIGINT or
 * SIGTERM. Single-threaded. The functions are the ones of the embedded
 * library libcrash.so: test programs are built from one .c file, so the
 * interpreter's source is included here rather than linked.
 */
#include <stdio.h>
#include <string.h>

#include "../modules/crash/crash_fns.c"

static void on_ready(const char *address, void *user_data)
{
    printf("listening on %s\n", address);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:0";
    sf_server_options_t *opts = NULL;
    sf_functions_t *fns = NULL;
    int rv;

    if (argc == 3 && strcmp(argv[1], "--listen") == 0) {
        listen = argv[2];
    } else if (argc != 1) {
        fprintf(stderr, "usage: crash_fn [--listen HOST:PORT]\n");
        return 2;
    }
    if ((rv = sf_functions_create(NULL, crash_register, &fns)) != 0 ||
        (rv = sf_server_options_new(NULL, &opts)) != 0 ||
        (rv = sf_server_options_set_listen(opts, listen)) != 0 ||
        (rv = sf_server_options_set_ready_cb(opts, on_ready, NULL)) != 0)
        goto out;
    rv = sf_serve(fns, opts);
out:
    if (rv != 0)
        fprintf(stderr, "crash_fn: %s\n", sf_strerror(rv));
    sf_server_options_free(opts);
    sf_functions_free(fns);
    return rv == 0 ? 0 : 1;
}
