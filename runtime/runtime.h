/* statefun-c: Apache License 2.0.
 *
 * The runtime's map header (STYLE 4): it includes the module headers the
 * core needs, with a word on each, and declares the entry point main() calls.
 *
 *   log.h       one-line events on stderr; sf_log_error/warn/info/debug
 *   diag.h      FILE:LINE diagnostics collected while loading configuration
 *   duration.h  StateFun durations ("500ms", "10 sec", "2m", "1h")
 *   options.h   sf_options_t: the effective command line / env / YAML options
 *   module.h    sf_module_t: endpoints, embedded modules, ingress, egress
 *
 * Threading: main() loads and resolves everything on its own thread; the
 * options and the module are immutable once sf_runtime_run is called.
 */
#ifndef SF_RUNTIME_H
#define SF_RUNTIME_H

#include "diag.h"
#include "duration.h"
#include "log.h"
#include "module.h"
#include "options.h"

/** The runtime's version, printed by `statefun --version`. */
#define SF_RUNTIME_VERSION "0.1.0"

/**
 * Runs the application described by |module| with |options| until SIGINT or
 * SIGTERM: starts the workers, the state backend, the ingress, egress and
 * admin listeners, and stops them gracefully. Both arguments are borrowed and
 * must stay valid (and unchanged) until it returns. Main thread.
 *
 * Returns 0 after a graceful stop, or a negative SF_E* error after logging
 * why (main() exits with status 2).
 */
int sf_runtime_run(const sf_options_t *options, const sf_module_t *module);

#endif /* SF_RUNTIME_H */
