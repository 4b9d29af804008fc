/* statefun-c: Apache License 2.0.
 *
 * A placeholder for sf_runtime_run until the runtime core (workers, state,
 * ingress/egress, checkpoints) is built: it says so and fails, so that
 * `statefun run` is never mistaken for working. The core issue replaces this
 * file with the real entry point. Main thread.
 */
#include "runtime.h"

int sf_runtime_run(const sf_options_t *options, const sf_module_t *module)
{
    (void)options;
    (void)module;
    sf_log_error("the runtime core is not built yet: 'statefun run' only loads and checks the "
                 "configuration for now (use 'statefun validate')");
    return SF_EUNSUPPORTED;
}
