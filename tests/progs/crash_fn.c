/* statefun-c: Apache License 2.0.
 *
 * The crash test's command interpreter served remotely (HTTP/1.1 + HTTP/2),
 * for tests/runtime/check_crash.c:
 *
 *   crash_fn [--listen HOST:PORT]   (default 127.0.0.1:0: a free port; the
 *                                    other sf_serve_main options work too)
 *
 * Prints "listening on ADDRESS" once it listens and serves until SIGINT or
 * SIGTERM. Single-threaded. The functions are the ones of the embedded
 * library libcrash.so: test programs are built from one .c file, so the
 * interpreter's source is included here rather than linked.
 */
#include "../modules/crash/crash_fns.c"

int main(int argc, char **argv)
{
    /* The crash test starts it with no arguments: default to a free port
     * rather than sf_serve_main's 8000. */
    char *free_port[] = {argv[0], "--listen", "127.0.0.1:0", NULL};
    if (argc == 1) {
        argc = 3;
        argv = free_port;
    }
    return sf_serve_main(argc, argv, "crash_fn", "The crash test's command interpreter.",
                         crash_register);
}
