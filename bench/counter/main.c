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
#include "counter.h"

int main(int argc, char **argv)
{
    return sf_serve_main(argc, argv, "counter",
                         "Serves bench/counter, bench/pong, bench/fanout and bench/blob.",
                         bench_counter_register);
}
