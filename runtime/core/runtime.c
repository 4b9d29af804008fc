/* statefun-c: Apache License 2.0.
 *
 * sf_runtime_run: opens the state backend, loads the embedded modules,
 * starts the workers and the I/O thread, waits for SIGINT/SIGTERM on the main
 * thread's loop, and stops everything in order (ingress first, so nothing new
 * is accepted, then the workers, then the I/O thread and the state).
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "admin.h"
#include "checkpoint.h"
#include "ingress_log.h"
#include "dispatch.h"
#include "fs.h"
#include "rt.h"
#include "runtime.h"
#include "xalloc.h"

int64_t sf_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sf_rt_checkpoint_done(sf_rt_t *rt, const sf_checkpoint_stats_t *st)
{
    atomic_fetch_add(&rt->checkpoints, 1);
    atomic_store(&rt->checkpoint_pause_us, st->pause_us);
    atomic_store(&rt->checkpoint_hold_us, st->hold_us);
    atomic_store(&rt->checkpoint_duration_us, st->duration_us);
    atomic_store(&rt->checkpoint_bytes, st->bytes);
    atomic_fetch_add(&rt->checkpoint_pause_us_sum, st->pause_us);
    atomic_fetch_add(&rt->checkpoint_duration_us_sum, st->duration_us);
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
    if (chain->tail) {
        /* Messages carry their ingress log offsets (0 without a log); they
         * are routed in offset order. */
        uint64_t seq = sf_container_of(chain->tail, sf_msg_t, link)->seq;
        uint64_t now = uv_hrtime() / 1000;
        sf_msg_link_t *l;
        if (seq + 1 > rt->routed_upto)
            rt->routed_upto = seq + 1;
        for (l = chain->head; l; l = l->next)
            sf_container_of(l, sf_msg_t, link)->accepted_us = now;
    }
    sf_workers_route_chain(&rt->workers, chain);
    return SF_OK;
}

/* Runs on the I/O thread while the workers are paused: what it has routed
 * is all in the workers' pending work. */
static void io_paused(void *arg)
{
    sf_rt_t *rt = arg;
    rt->routed_upto_at_pause = rt->routed_upto;
}

static void hook_io_start(void *ud, uv_loop_t *loop)
{
    sf_rt_t *rt = ud;
    if (rt->ilog && sf_ilog_start(rt->ilog, loop) != 0)
        sf_log_error("the ingress log could not start: requests will be answered 503");
}

static void hook_io_stop(void *ud, uv_loop_t *loop)
{
    sf_rt_t *rt = ud;
    (void)loop;
    if (rt->ilog)
        sf_ilog_stop(rt->ilog);
    uv_close((uv_handle_t *)&rt->io_pause.async, NULL);
}

/* The ingress answers 200 once the batch is in the ingress log. */
static int hook_persist(void *ud, const sf_msg_fifo_t *chain, sf_io_persist_done_cb done,
                        void *token)
{
    sf_rt_t *rt = ud;
    return sf_ilog_append(rt->ilog, chain, done, token);
}

static int replay_one(void *ud, sf_msg_t *m)
{
    sf_msg_fifo_push(ud, m);
    return 0;
}

bool sf_rt_find_function(const sf_rt_t *rt, const char *ns, const char *type,
                         const sf_endpoint_spec_t **ep, const sf_embedded_t **lib)
{
    sf_fn_binding_t b;
    *ep = NULL;
    *lib = NULL;
    memset(&b, 0, sizeof b);
    if (sf_module_find_function(rt->mod, ns, type, &b) != 0)
        return false;
    if (b.endpoint) {
        *ep = b.endpoint;
        return true;
    }
    if (b.embedded && sf_embedded_has(rt->embedded[b.embedded - rt->mod->embedded], ns, type)) {
        *lib = rt->embedded[b.embedded - rt->mod->embedded];
        return true;
    }
    return false;
}

static bool hook_serves(void *ud, const char *ns, size_t ns_len, const char *type,
                        size_t type_len)
{
    sf_rt_t *rt = ud;
    const sf_endpoint_spec_t *ep;
    const sf_embedded_t *lib;
    char n[256], t[256];
    if (ns_len >= sizeof n || type_len >= sizeof t)
        return false;
    memcpy(n, ns, ns_len);
    n[ns_len] = '\0';
    memcpy(t, type, type_len);
    t[type_len] = '\0';
    return sf_rt_find_function(rt, n, t, &ep, &lib);
}

/* A worker takes messages again (below its load bound, or a key group of it
 * unblocked): the requests parked for it need not wait for the ingress's next
 * tick. */
static void workers_room(sf_workers_t *g)
{
    sf_rt_t *rt = g->data;
    if (rt->io)
        sf_io_ingress_room(rt->io);
}

static bool hook_accepting(void *ud, uint16_t kg)
{
    sf_rt_t *rt = ud;
    return atomic_load_explicit(&rt->blocked_kg[kg], memory_order_relaxed) == 0 &&
           atomic_load_explicit(&sf_workers_owner(&rt->workers, kg)->load,
                                memory_order_relaxed) < SF_WORKER_MAX_LOAD;
}

/* ------------------------------------------------------------------------ */

/* Opens the state backend: from the newest complete checkpoint when there is
 * one (replacing the live store, which may be ahead of it after a crash),
 * else the live store as it is. */
static int open_state(sf_rt_t *rt, sf_state_options_t *so, char **chk_path, sf_manifest_t *m)
{
    const sf_options_t *o = rt->opts;
    uint64_t t0 = uv_hrtime();
    int rv, found = 0;

    memset(m, 0, sizeof *m);
    if (o->restore) {
        if ((rv = sf_checkpoint_verify(o->restore, m)) != 0) {
            sf_log_error("--restore %s: %s", o->restore,
                         rv == SF_ENOTFOUND ? "no MANIFEST there (not a complete checkpoint)"
                                            : "the checkpoint is corrupt");
            return rv;
        }
        *chk_path = sf_xstrdup(o->restore);
        found = 1;
    } else if (o->checkpoint_interval_ms > 0) {
        found = sf_checkpoint_find_latest(o->state_dir, chk_path, m);
    }
    if (found == 1) {
        char state[4096];
        if (m->max_parallelism != o->max_parallelism) {
            sf_log_error("checkpoint %s was taken with max-parallelism %u; it cannot change "
                         "(now %u)",
                         *chk_path, m->max_parallelism, o->max_parallelism);
            return SF_EINVAL;
        }
        if (strcmp(m->backend, so->kind) != 0) {
            sf_log_error("checkpoint %s holds %s state; --state-backend is %s", *chk_path,
                         m->backend, so->kind);
            return SF_EINVAL;
        }
        snprintf(state, sizeof state, "%s/state", *chk_path);
        /* The live store is replaced by the checkpoint's copy: whatever is
         * there (even a restore cut short by a crash) goes first. */
        sf_checkpoint_remove_dir(so->dir);
        rv = sf_state_open_from(so, state, &rt->state);
        atomic_store(&rt->restore_us, (uv_hrtime() - t0) / 1000);
        if (rv == 0)
            sf_log_info("restored checkpoint %llu (%llu bytes, %llu pending messages) in %.1f ms",
                        (unsigned long long)m->id, (unsigned long long)m->bytes,
                        (unsigned long long)m->pending, (uv_hrtime() - t0) / 1e6);
    } else {
        char ldir[4096];
        DIR *d;
        struct dirent *e;
        bool logged = false;
        /* No complete checkpoint, but an ingress log: the live store may hold
         * the effects of some of its messages (a crash before the first
         * checkpoint). Start from empty state and replay the whole log. */
        snprintf(ldir, sizeof ldir, "%s/ingress", o->state_dir);
        if (o->checkpoint_interval_ms > 0 && (d = opendir(ldir)) != NULL) {
            while ((e = readdir(d)) != NULL)
                if (e->d_name[0] != '.' && strstr(e->d_name, ".log"))
                    logged = true;
            closedir(d);
        }
        if (logged) {
            sf_log_warn("no complete checkpoint in %s: starting from empty state and replaying "
                        "the whole ingress log",
                        o->state_dir);
            sf_checkpoint_remove_dir(so->dir);
        }
        rv = sf_state_open2(so, &rt->state);
    }
    if (rv != 0)
        sf_log_error("cannot open the %s state backend in %s: %s", so->kind, so->dir,
                     sf_strerror(rv));
    return rv;
}

typedef struct publish_s {
    sf_rt_t *rt;
    uint64_t upto;
    uint64_t published; /* records of epochs up to it are in the egress store already */
    size_t skipped;     /* of those, found here again */
    sf_msg_fifo_t chain;
    sf_state_batch_t *batch;
} publish_t;

static int publish_one(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *ud)
{
    publish_t *p = ud;
    uint64_t epoch = sf_egress_key_epoch(key, klen);
    sf_msg_t *m;
    if (klen != SF_EGRESS_KEY_LEN || epoch > p->upto)
        return 1; /* sorted by epoch: the rest is later */
    /* Up to the published epoch: stored before a crash (or its deletion here
     * was lost), so it is only deleted. */
    if (epoch > p->published) {
        if (sf_msg_decode(val, vlen, p->rt->opts->max_parallelism, &m, NULL) == 0)
            sf_msg_fifo_push(&p->chain, m);
        else
            sf_log_error("an egress record held for a checkpoint does not decode; dropped");
    } else {
        p->skipped++;
    }
    sf_state_batch_log_delete(p->batch, SF_LOG_COL_EGRESS, key, klen);
    return 0;
}

/* Makes the exactly-once egress records of checkpoints up to |upto| visible:
 * they move from the state store into the durable egress store
 * (STATE_DIR/egress, never rolled back) in one synced write that also
 * records |upto| as the published epoch, then are deleted from the state
 * store; the I/O thread serves them, in production order per worker.
 * Records of epochs up to the published epoch were stored before (recovery
 * republishing the checkpoint published last before a crash) and are only
 * deleted: readers must not see them twice. When the egress store cannot be
 * written, the records stay in the state store and the next checkpoint's
 * publish takes them along. Main thread. */
static void publish_egress(sf_rt_t *rt, uint64_t upto)
{
    publish_t p;
    int rv = 0;
    memset(&p, 0, sizeof p);
    p.rt = rt;
    p.upto = upto;
    p.published = rt->io ? sf_io_egress_published_epoch(rt->io) : 0;
    sf_msg_fifo_init(&p.chain);
    sf_state_batch_new(rt->state, &p.batch);
    if (sf_state_log_scan(rt->state, SF_LOG_COL_EGRESS, NULL, 0, 0, publish_one, &p) < 0)
        rv = SF_ESTATE;
    else if (p.chain.head && rt->io)
        rv = sf_io_egress_publish_durable(rt->io, &p.chain, upto);
    if (rv == 0 && sf_state_batch_commit(p.batch) != 0)
        sf_log_error("publishing checkpoint %llu: the published egress records could not be "
                     "deleted from the state store (they are not published again)",
                     (unsigned long long)upto);
    else if (rv != 0)
        sf_log_error("publishing the egress records of checkpoint %llu failed: %s (kept for "
                     "the next checkpoint)",
                     (unsigned long long)upto, sf_strerror(rv));
    if (p.skipped)
        sf_log_info("checkpoint %llu: %zu egress records were published before (not again)",
                    (unsigned long long)upto, p.skipped);
    sf_state_batch_free(p.batch);
    sf_msg_fifo_clear(&p.chain);
}

static void on_checkpoint_timer(uv_timer_t *t)
{
    sf_rt_t *rt = t->data;
    sf_checkpoint_stats_t st;
    uint64_t id = sf_checkpointer_next_id(rt->checkpointer);
    if (sf_checkpointer_take(rt->checkpointer, NULL, &st) == 0) {
        sf_rt_checkpoint_done(rt, &st);
        publish_egress(rt, id);
        if (rt->ilog)
            sf_ilog_truncate_before(rt->ilog, sf_checkpointer_oldest_routed(rt->checkpointer));
    } else {
        atomic_fetch_add(&rt->checkpoint_failures, 1);
    }
}

static void on_savepoint_async(uv_async_t *h)
{
    sf_rt_t *rt = h->data;
    const char *dir;
    int rv;
    uv_mutex_lock(&rt->savepoint_lock);
    dir = rt->savepoint_done ? NULL : rt->savepoint_dir;
    uv_mutex_unlock(&rt->savepoint_lock);
    if (!dir)
        return;
    rv = sf_checkpointer_take(rt->checkpointer, dir, NULL);
    if (rv == 0)
        sf_log_info("savepoint written to %s", dir);
    uv_mutex_lock(&rt->savepoint_lock);
    rt->savepoint_rv = rv;
    rt->savepoint_done = true;
    uv_cond_broadcast(&rt->savepoint_cond);
    uv_mutex_unlock(&rt->savepoint_lock);
}

int sf_rt_savepoint(sf_rt_t *rt, const char *dir)
{
    int rv;
    uv_mutex_lock(&rt->savepoint_lock);
    /* One at a time: wait for a request in progress to finish. */
    while (rt->savepoint_dir && !rt->savepoint_done)
        uv_cond_wait(&rt->savepoint_cond, &rt->savepoint_lock);
    if (!rt->savepoint_ready || atomic_load(&rt->stopping)) {
        uv_mutex_unlock(&rt->savepoint_lock);
        return SF_ECANCELED;
    }
    rt->savepoint_dir = dir;
    rt->savepoint_done = false;
    uv_async_send(&rt->savepoint_async);
    while (!rt->savepoint_done)
        uv_cond_wait(&rt->savepoint_cond, &rt->savepoint_lock);
    rv = rt->savepoint_rv;
    rt->savepoint_dir = NULL;
    uv_cond_broadcast(&rt->savepoint_cond);
    uv_mutex_unlock(&rt->savepoint_lock);
    return rv;
}

static void on_signal(uv_signal_t *h, int signum)
{
    sf_log_info("received %s: stopping", signum == SIGINT ? "SIGINT" : "SIGTERM");
    uv_stop(h->loop);
}

static void on_closed(uv_handle_t *h) { (void)h; }

static void rt_free(sf_rt_t *rt)
{
    sf_ilog_free(rt->ilog);
    sf_checkpointer_free(rt->checkpointer);
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
    uv_mutex_destroy(&rt->savepoint_lock);
    uv_cond_destroy(&rt->savepoint_cond);
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
    uv_timer_t chk_timer;
    char dbdir[4096], egdir[4096], *chk_path = NULL;
    sf_manifest_t manifest;
    sf_msg_fifo_t pending;
    size_t i;
    int rv;

    rt->opts = o;
    rt->mod = mod;
    pthread_mutex_init(&rt->fn_metrics_lock, NULL);
    uv_mutex_init(&rt->savepoint_lock);
    uv_cond_init(&rt->savepoint_cond);
    rt->blocked_kg = sf_xcalloc(o->max_parallelism, sizeof *rt->blocked_kg);
    rt->unhealthy = sf_xcalloc(mod->nendpoints + 1, sizeof *rt->unhealthy);

    /* State. */
    if ((rv = sf_fs_mkdirs(o->state_dir)) != 0) {
        sf_log_error("cannot create the state directory %s", o->state_dir);
        rt_free(rt);
        return rv;
    }
    snprintf(dbdir, sizeof dbdir, "%s/db", o->state_dir);
    sf_state_options_init(&so);
    so.kind = o->state_backend == SF_STATE_BACKEND_MEMORY ? "memory" : "rocksdb";
    so.dir = dbdir;
    so.max_parallelism = o->max_parallelism;
    /* With checkpoints every start restores the newest one (or replays the whole
     * ingress log from empty state), never the live store: it needs no WAL. */
    so.wal = o->checkpoint_interval_ms == 0;
    /* But a checkpoint copies the commits since its last flush from the log rather than
     * flushing them into one more small level-0 table (docs/state.md: checkpoints). */
    so.checkpoint_wal = !so.wal;
    /* And the state a worker commits stays in its cache until a checkpoint needs it
     * (docs/state.md: write-back). */
    so.write_back = !so.wal;
    if ((rv = open_state(rt, &so, &chk_path, &manifest)) != 0) {
        rt_free(rt);
        return rv;
    }
    if (o->checkpoint_interval_ms > 0 && mod->ingress) {
        sf_ilog_config_t lc;
        char ldir[4096];
        snprintf(ldir, sizeof ldir, "%s/ingress", o->state_dir);
        sf_ilog_config_init(&lc);
        lc.dir = ldir;
        lc.fsync = (sf_ilog_fsync)o->ingress_fsync;
        lc.max_parallelism = o->max_parallelism;
        lc.first_offset = manifest.routed_upto;
        if ((rv = sf_ilog_open(&lc, &rt->ilog)) != 0) {
            sf_log_error("cannot open the ingress log in %s: %s", ldir, sf_strerror(rv));
            rt_free(rt);
            return rv;
        }
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
    rt->workers.commit = sf_dispatch_commit;
    rt->workers.on_room = workers_room;

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
        /* Records, read cursors and the published epoch: never rolled back. */
        snprintf(egdir, sizeof egdir, "%s/egress", o->state_dir);
        egc.store_dir = egdir;
        ioc.egress = &egc;
    }
    hooks.ud = rt;
    hooks.route = hook_route;
    hooks.serves = hook_serves;
    hooks.accepting = hook_accepting;
    hooks.on_stop = hook_io_stop;
    hooks.on_start = hook_io_start;
    if (rt->ilog)
        hooks.persist = hook_persist;
    if ((ioc.ingress || ioc.egress) && (rv = sf_io_new(&ioc, &hooks, &rt->io)) != 0) {
        sf_log_error("cannot start the ingress/egress listeners: %s", sf_strerror(rv));
        rt_free(rt);
        return rv;
    }
    if (rt->io) {
        /* The I/O thread stands still with the workers during a pause. */
        rt->io_pause.cb = io_paused;
        rt->io_pause.arg = rt;
        sf_pause_extra_init(&rt->workers, &rt->io_pause, sf_io_loop(rt->io));
    }

    /* The admin listener: bound now, so a busy port stops us before anything runs. */
    if ((rv = sf_admin_new(rt, o->admin.host, o->admin.port, &rt->admin)) != 0) {
        rt_free(rt);
        return rv;
    }

    /* Recovery: the checkpoint's pending work goes first, in order. */
    sf_msg_fifo_init(&pending);
    if (chk_path && (rv = sf_checkpoint_read_pending(chk_path, manifest.workers,
                                                     o->max_parallelism, &pending)) != 0) {
        sf_log_error("cannot read the checkpoint's pending work: %s", sf_strerror(rv));
        rt_free(rt);
        return rv;
    }
    if (pending.count)
        sf_log_info("resending %zu pending messages of the checkpoint", pending.count);
    /* Then every message the ingress accepted after the checkpoint's offset. */
    if (rt->ilog) {
        size_t before = pending.count;
        if ((rv = sf_ilog_replay(rt->ilog, manifest.routed_upto, replay_one, &pending)) != 0) {
            sf_log_error("cannot replay the ingress log: %s", sf_strerror(rv));
            sf_msg_fifo_clear(&pending);
            rt_free(rt);
            return rv;
        }
        if (pending.count > before)
            sf_log_info("replaying %zu ingress messages from offset %llu",
                        pending.count - before, (unsigned long long)manifest.routed_upto);
        rt->routed_upto = sf_ilog_next_offset(rt->ilog);
    }
    sf_workers_route_chain(&rt->workers, &pending);
    {
        /* Continue past anything the egress already published: after a
         * recovery from an older checkpoint (the newest was corrupt, or an
         * older savepoint), new records must not look published already. */
        uint64_t next = manifest.id + 1;
        if (rt->io && sf_io_egress_published_epoch(rt->io) >= next)
            next = sf_io_egress_published_epoch(rt->io) + 1;
        rt->checkpointer = sf_checkpointer_new(rt, next, o->checkpoints_retained);
    }
    atomic_store(&rt->epoch, sf_checkpointer_next_id(rt->checkpointer));
    /* Records the restored checkpoint holds are complete: publish them. */
    if (manifest.id > 0)
        publish_egress(rt, manifest.id);
    free(chk_path);

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
    uv_timer_init(&loop, &chk_timer);
    chk_timer.data = rt;
    uv_async_init(&loop, &rt->savepoint_async, on_savepoint_async);
    rt->savepoint_async.data = rt;
    uv_mutex_lock(&rt->savepoint_lock);
    rt->savepoint_ready = true;
    uv_mutex_unlock(&rt->savepoint_lock);
    if (o->checkpoint_interval_ms > 0)
        uv_timer_start(&chk_timer, on_checkpoint_timer, o->checkpoint_interval_ms,
                       o->checkpoint_interval_ms);
    uv_run(&loop, UV_RUN_DEFAULT);

    /* Graceful stop: refuse new input, take a final checkpoint (with the
     * work still pending), stop the workers, then the rest. */
    atomic_store(&rt->stopping, 1);
    uv_mutex_lock(&rt->savepoint_lock);
    rt->savepoint_ready = false;
    if (rt->savepoint_dir && !rt->savepoint_done) {
        rt->savepoint_rv = SF_ECANCELED; /* a request that came with the signal */
        rt->savepoint_done = true;
        uv_cond_broadcast(&rt->savepoint_cond);
    }
    uv_mutex_unlock(&rt->savepoint_lock);
    if (rt->io)
        sf_io_shutdown(rt->io);
    uv_timer_stop(&chk_timer);
    if (o->checkpoint_interval_ms > 0)
        on_checkpoint_timer(&chk_timer);
    sf_workers_stop(&rt->workers);
    if (rt->io)
        sf_io_stop(rt->io);
    sf_admin_stop(rt->admin); /* last: /healthz says "stopping" until here */
    uv_close((uv_handle_t *)&sigint, on_closed);
    uv_close((uv_handle_t *)&sigterm, on_closed);
    uv_close((uv_handle_t *)&chk_timer, on_closed);
    uv_close((uv_handle_t *)&rt->savepoint_async, on_closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    rt_free(rt);
    sf_log_info("stopped");
    return SF_OK;
}
