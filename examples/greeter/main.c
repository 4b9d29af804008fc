/* statefun-c: Apache License 2.0.
 *
 * The greeter served remotely: an HTTP/1.1 + HTTP/2 endpoint for the
 * functions of greeter.c, for a StateFun runtime (statefun-c's or Flink's)
 * configured with an io.statefun.endpoints.v2/http endpoint pointing here.
 *
 *   greeter [--listen HOST:PORT | --listen unix:/PATH] [--path PATH]
 *           [--tls-cert FILE --tls-key FILE] [--max-body BYTES]
 *
 * Prints "listening on ADDRESS" once it listens (port 0 picks a free one) and
 * runs until SIGINT or SIGTERM. Single-threaded.
 */
#include "greeter.h"

int main(int argc, char **argv)
{
    return sf_serve_main(argc, argv, "greeter",
                         "Serves greeter.fns/person and greeter.fns/greeter.", greeter_register);
}
