/* statefun-c: Apache License 2.0.
 *
 * The shopping cart served remotely (see README.md): an HTTP/1.1 + HTTP/2
 * endpoint for shopping.fns/cart, shopping.fns/stock and
 * shopping.fns/receipt.
 *
 *   shopping-cart [--listen HOST:PORT | --listen unix:/PATH] [--path PATH]
 *                 [--tls-cert FILE --tls-key FILE] [--max-body BYTES]
 *
 * Prints "listening on ADDRESS" once it listens and runs until SIGINT or
 * SIGTERM. Single-threaded.
 */
#include "shopping.h"

int main(int argc, char **argv)
{
    return sf_serve_main(argc, argv, "shopping-cart",
                         "Serves shopping.fns/cart, shopping.fns/stock and shopping.fns/receipt.",
                         shopping_register);
}
