/* statefun-c: Apache License 2.0.
 *
 * sf_runtime_run: opens the state backend, loads the embedded modules,
 * starts the workers and the I/O thread, waits for SIGINT/SIGTERM on the main
 * thread's loop, and stops everything in order (ingress first, so nothing new
 * is accepted, then the workers, then the I/O thread and the state).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "admin.h"
#include "dispatch.h"
#include "rt.h"
#include "runtime.h"
#include "xalloc.h"

int64_t sf_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

sf_fn_metrics_t *sf_rt_fn_metrics(sf_rt_t *rt, const char *name)
{
    uint32_t i, n;
    sf_fn_metrics_t *m = NULL;
    pthread_mutex_lock(&rt->fn_metrics_lock);
    n = atomic_load(&rt->nfn_metrics);
    for (i = 0; i < n; i++)
        if (strcmp(rt->fn_metrics[i].name, name) == 0) {
            m = &rt->fn_metrics[i];
            break;
        }
    if (!m) {
        /* Past the table's size, types share the last slot's counters. */
        m = &rt->fn_metrics[n < SF_MAX_FN_METRICS ? n : SF_MAX_FN_METRICS - 1];
        if (n < SF_MAX_FN_METRICS) {
            snprintf(m->name, sizeof m->name, "%s", name);
            atomic_store(&rt->nfn_metrics, n + 1);
        }
    }
    pthread_mutex_unlock(&rt->fn_metrics_lock);
    return m;
}

/* ------------------------------------------------------------------------ */
/* Hooks of the I/O thread                                                    */

static int hook_route(void *ud, sf_msg_fifo_t *chain)
{
    sf_rt_t *rt = ud;
    if (atomic_load(&rt->stopping))
        return SF_ECANCELED;
    sf_workers_route_chain(&rt->workers, chain);
    return SF_OK;
}

static bool hook_serves(void *ud, const char *ns, size_t ns_len, const char *type,
                        size_t type_len)
{
    sf_rt_t *rt = ud;
    char n[256], t[256];
    sf_fn_binding_t b;
    if (ns_len >= sizeof n || type_len >= sizeof t)
        return false;
    memcpy(n, ns, ns_len);
    n[ns_len] = '\0';
    memcpy(t, type, type_len);
    t[type_len] = '\0';
    return sf_module_find_function(rt->mod, n, t, &b) == 0;
}

static bool hook_accepting(void *ud, uint16_t kg)
{
    sf_rt_t *rt = ud;
    return atomic_load_explicit(&rt->blocked_kg[kg], memory_order_relaxed) == 0;
}

/* ------------------------------------------------------------------------ */

static int mkdirs(const char *path)
{
    char buf[4096];
    size_t i, len = strlen(path);
    if (len >= sizeof buf)
        return SF_EINVAL;
    memcpy(buf, path, len + 1);
    for (i = 1; i <= len; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return SF_EIO;
            buf[i] = c;
        }
    }
    return SF_OK;
}

static void on_signal(uv_signal_t *h, int signum)
{
    sf_log_info("received %s: stopping", signum == SIGINT ? "SIGINT" : "SIGTERM");
    uv_stop(h->loop);
}

static void on_closed(uv_handle_t *h) { (void)h; }

static void rt_free(sf_rt_t *rt)
{
    size_t i;
    sf_admin_free(rt->admin); /* first: it reads the I/O counters and the state */
    if (rt->io)
        sf_io_free(rt->io);
    if (rt->workers.w)
        sf_workers_dispose(&rt->workers);
    for (i = 0; rt->embedded && i < rt->mod->nembedded; i++)
        sf_embedded_close(rt->embedded[i]);
    free(rt->embedded);
    sf_state_close(rt->state);
    free((void *)rt->blocked_kg);
    free((void *)rt->unhealthy);
    pthread_mutex_destroy(&rt->fn_metrics_lock);
    free(rt);
}

int sf_runtime_run(const sf_options_t *o, const sf_module_t *mod)
{
    sf_rt_t *rt = sf_xcalloc(1, sizeof *rt);
    sf_state_options_t so;
    sf_io_config_t ioc;
    sf_io_ingress_config_t inc;
    sf_io_egress_config_t egc;
    sf_io_hooks_t hooks;
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    char dbdir[4096];
    size_t i;
    int rv;

    rt->opts = o;
    rt->mod = mod;
    pthread_mutex_init(&rt->fn_metrics_lock, NULL);
    rt->blocked_kg = sf_xcalloc(o->max_parallelism, sizeof *rt->blocked_kg);
    rt->unhealthy = sf_xcalloc(mod->nendpoints + 1, sizeof *rt->unhealthy);

    /* State. */
    if ((rv = mkdirs(o->state_dir)) != 0) {
        sf_log_error("cannot create the state directory %s", o->state_dir);
        rt_free(rt);
        return rv;
    }
    snprintf(dbdir, sizeof dbdir, "%s/db", o->state_dir);
    sf_state_options_init(&so);
    so.kind = o->state_backend == SF_STATE_BACKEND_MEMORY ? "memory" : "rocksdb";
    so.dir = dbdir;
    so.max_parallelism = o->max_parallelism;
    if ((rv = sf_state_open2(&so, &rt->state)) != 0) {
        sf_log_error("cannot open the %s state backend in %s: %s", so.kind, dbdir,
                     sf_strerror(rv));
        rt_free(rt);
        return rv;
    }

    /* Embedded modules. */
    rt->embedded = sf_xcalloc(mod->nembedded + 1, sizeof *rt->embedded);
    for (i = 0; i < mod->nembedded; i++) {
        if ((rv = sf_embedded_open(mod->embedded[i].library, &rt->embedded[i])) != 0) {
            rt_free(rt);
            return rv;
        }
    }

    /* Workers. */
    if ((rv = sf_workers_init(&rt->workers, o->workers, o->max_parallelism, sf_dispatch_deliver,
                              sf_dispatch_start, sf_dispatch_stop, rt)) != 0) {
        sf_log_error("cannot create %u workers: %s", o->workers, sf_strerror(rv));
        rt_free(rt);
        return rv;
    }

    /* Ingress and egress on the I/O thread. */
    memset(&ioc, 0, sizeof ioc);
    memset(&hooks, 0, sizeof hooks);
    ioc.max_parallelism = o->max_parallelism;
    if (mod->ingress) {
        memset(&inc, 0, sizeof inc);
        inc.host = mod->ingress->host;
        inc.port = mod->ingress->port;
        ioc.ingress = &inc;
    }
    if (mod->egress) {
        memset(&egc, 0, sizeof egc);
        egc.host = mod->egress->host;
        egc.port = mod->egress->port;
        egc.topics = (const char *const *)mod->egress->topics;
        egc.ntopics = mod->egress->ntopics;
        egc.exactly_once = mod->egress->exactly_once;
        ioc.egress = &egc;
    }
    hooks.ud = rt;
    hooks.route = hook_route;
    hooks.serves = hook_serves;
    hooks.accepting = hook_accepting;
    if ((ioc.ingress || ioc.egress) && (rv = sf_io_new(&ioc, &hooks, &rt->io)) != 0) {
        sf_log_error("cannot start the ingress/egress listeners: %s", sf_strerror(rv));
        rt_free(rt);
        return rv;
    }

    /* The admin listener: bound now, so a busy port stops us before anything runs. */
    if ((rv = sf_admin_new(rt, o->admin.host, o->admin.port, &rt->admin)) != 0) {
        rt_free(rt);
        return rv;
    }

    if ((rv = sf_workers_start(&rt->workers)) != 0 || (rt->io && (rv = sf_io_start(rt->io)) != 0) ||
        (rv = sf_admin_start(rt->admin)) != 0) {
        sf_log_error("cannot start threads: %s", sf_strerror(rv));
        sf_workers_stop(&rt->workers);
        rt_free(rt);
        return rv;
    }
    sf_log_info("statefun %s running: %u worker(s), %u key groups, %s state in %s",
                SF_RUNTIME_VERSION, o->workers, o->max_parallelism, so.kind, o->state_dir);
    if (rt->io && mod->ingress)
        sf_log_info("playground ingress on http://%s:%u/{namespace}/{type}/{id}",
                    mod->ingress->host, sf_io_ingress_port(rt->io));
    if (rt->io && mod->egress)
        sf_log_info("playground egress on http://%s:%u/{topic}", mod->egress->host,
                    sf_io_egress_port(rt->io));
    sf_log_info("admin on http://%s:%u (/healthz, /metrics, /v1/state/{namespace}/{type}/{id})",
                o->admin.host, sf_admin_port(rt->admin));

    /* Wait for a signal. */
    uv_loop_init(&loop);
    uv_signal_init(&loop, &sigint);
    uv_signal_init(&loop, &sigterm);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_run(&loop, UV_RUN_DEFAULT);

    /* Graceful stop: refuse new input, stop the workers, then the rest. */
    atomic_store(&rt->stopping, 1);
    if (rt->io)
        sf_io_shutdown(rt->io);
    sf_workers_stop(&rt->workers);
    if (rt->io)
        sf_io_stop(rt->io);
    sf_admin_stop(rt->admin); /* last: /healthz says "stopping" until here */
    uv_close((uv_handle_t *)&sigint, on_closed);
    uv_close((uv_handle_t *)&sigterm, on_closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    rt_free(rt);
    sf_log_info("stopped");
    return SF_OK;
}
