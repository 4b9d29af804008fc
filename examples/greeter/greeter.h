/* statefun-c: Apache License 2.0.
 *
 * The greeter example's functions (greeter.c), shared by the remote server
 * (main.c) and the embedded library (libgreeter.so).
 */
#ifndef GREETER_H
#define GREETER_H

#include "statefun/sf.h"

/** Binds greeter.fns/person and greeter.fns/greeter into |fns|. 0 or an SF_E* code. */
int greeter_register(sf_functions_t *fns);

#endif
