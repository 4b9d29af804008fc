/* statefun-c: Apache License 2.0.
 *
 * The command interpreter of the randomized crash test
 * (tests/runtime/check_crash.c), shared by the remote program
 * (tests/progs/crash_fn.c) and the embedded library (libcrash.so).
 *
 * One function type, CRASH_FN_TYPE, keeps a long "counter" per address and
 * runs the commands of every message it gets (typename CRASH_COMMANDS_TYPE).
 * The encoding is text, so a failing run can be read in the logs:
 *
 *   commands := command*
 *   command  := 'i'                          counter += 1
 *             | 'e' N                        egress record "eN" (topic "crash")
 *             | 'x' N                        egress record "xN": generated only
 *                                            inside cancelled messages, so it
 *                                            must never be seen
 *             | 's' T '(' commands ')'       send the commands to address T
 *             | 'a' D ',' T ',' K '(' commands ')'
 *                                            send them to T after D ms, with
 *                                            the cancellation token "tK" (none
 *                                            when K is 0)
 *             | 'c' D ',' T ',' K '(' commands ')'
 *                                            the same, then cancel token "tK"
 *                                            in the same reply: never arrives
 *             | 'v'                          egress record "vID=COUNTER" (its
 *                                            own id and counter)
 *
 * where N, T, D and K are decimal numbers and T is an address id ("0",
 * "1", ...). Parentheses nest. A malformed message fails the batch.
 */
#ifndef CRASH_FNS_H
#define CRASH_FNS_H

#include "statefun/sf.h"

#define CRASH_FN_TYPE "statefun.smoke/cmd"
#define CRASH_COMMANDS_TYPE "statefun.smoke/Commands"
#define CRASH_TOPIC "crash"

/** Binds CRASH_FN_TYPE into |fns|. 0 or an SF_E* code. */
int crash_register(sf_functions_t *fns);

#endif
