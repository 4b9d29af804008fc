/* statefun-c: Apache License 2.0.
 *
 * The benchmark functions (counter.c), shared by the remote server (main.c)
 * and the embedded library (libcounter.so).
 */
#ifndef SF_BENCH_COUNTER_H
#define SF_BENCH_COUNTER_H

#include <statefun/sf.h>

/** Binds bench/counter, bench/pong and bench/fanout into |fns|. */
int bench_counter_register(sf_functions_t *fns);

#endif
