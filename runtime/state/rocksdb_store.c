/* statefun-c: Apache License 2.0.
 *
 * The RocksDB store: one database shared by every worker (RocksDB is
 * thread-safe), with the layout of codec.h in the default column family.
 * Reads use one shared read-options object and pinned slices (no copy inside
 * RocksDB); a batch is one rocksdb_writebatch_t, reused after each commit.
 * A compaction filter drops state values that expired at the backend's clock
 * (the latest time given to sf_state_reclaim), which is how RocksDB reclaims
 * values nobody reads again. The tuning is explained in docs/state.md.
 *
 * Errors from RocksDB's char **errptr are logged with their text, freed with
 * rocksdb_free and returned as SF_ESTATE, here and nowhere else.
 *
 * Threading: every function is "any thread"; a batch belongs to one thread.
 * Blocking calls (compact, checkpoint, restore) belong off the loops.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "log.h"
#include "state_int.h"
#include "xalloc.h"

typedef struct rocks_s {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_block_based_table_options_t *topts;
    rocksdb_cache_t *cache;
    rocksdb_compactionfilter_t *cfilter;
    rocksdb_readoptions_t *ropts;
    rocksdb_writeoptions_t *wopts;
    uint64_t checkpoint_flush_bytes;
    bool wal_buffered; /* the log reaches its file in a checkpoint (checkpoint_wal) */
} rocks_t;

static int rerr(const char *what, char *err)
{
    sf_log_error("state: rocksdb %s: %s", what, err ? err : "unknown error");
    rocksdb_free(err);
    return SF_ESTATE;
}

/* Compaction filter ------------------------------------------------------ */

static unsigned char ttl_filter(void *state, int level, const char *key, size_t klen,
                                const char *val, size_t vlen, char **new_value,
                                size_t *new_len, unsigned char *changed)
{
    (void)level;
    (void)new_value;
    (void)new_len;
    *changed = 0;
    return sf__expired_entry(state, (const uint8_t *)key, klen, (const uint8_t *)val, vlen);
}

static const char *ttl_filter_name(void *state)
{
    (void)state;
    return "statefun.ttl";
}

static void ttl_filter_destroy(void *state) { (void)state; }

/* Store operations ------------------------------------------------------- */

static void rocks_close(sf_state_backend_t *b)
{
    rocks_t *r = b->store;
    if (r->db)
        rocksdb_close(r->db);
    if (r->ropts)
        rocksdb_readoptions_destroy(r->ropts);
    if (r->wopts)
        rocksdb_writeoptions_destroy(r->wopts);
    if (r->opts)
        rocksdb_options_destroy(r->opts);
    if (r->topts)
        rocksdb_block_based_options_destroy(r->topts);
    if (r->cache)
        rocksdb_cache_destroy(r->cache);
    if (r->cfilter)
        rocksdb_compactionfilter_destroy(r->cfilter);
    free(r);
    b->store = NULL;
}

static int rocks_get(sf_state_backend_t *b, const uint8_t *key, size_t klen, sf_buf_t *out)
{
    rocks_t *r = b->store;
    char *err = NULL;
    rocksdb_pinnableslice_t *ps;
    const char *v;
    size_t vlen;
    ps = rocksdb_get_pinned(r->db, r->ropts, (const char *)key, klen, &err);
    if (err)
        return rerr("get", err);
    if (!ps)
        return 0;
    v = rocksdb_pinnableslice_value(ps, &vlen);
    sf__buf_put(out, v, vlen);
    rocksdb_pinnableslice_destroy(ps);
    return 1;
}

static int rocks_scan(sf_state_backend_t *b, const uint8_t *lo, size_t lolen, const uint8_t *hi,
                      size_t hilen, size_t limit, sf__kv_cb cb, void *user_data)
{
    rocks_t *r = b->store;
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_iterator_t *it;
    char *err = NULL;
    size_t n = 0;
    int rv = 0;
    /* The bound keeps the iterator from reading past the range (and over the
     * tombstones beyond it). The slice must outlive the iterator. */
    rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)hi, hilen);
    it = rocksdb_create_iterator(r->db, ro);
    for (rocksdb_iter_seek(it, (const char *)lo, lolen); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        const char *v = rocksdb_iter_value(it, &vl);
        if ((rv = cb((const uint8_t *)k, kl, (const uint8_t *)v, vl, user_data)) != 0)
            break;
        if (limit && ++n >= limit)
            break;
    }
    rocksdb_iter_get_error(it, &err);
    if (err)
        rv = rerr("iterate", err);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    return rv;
}

static void rocks_batch_init(sf_state_batch_t *batch)
{
    batch->impl = rocksdb_writebatch_create();
}

static void rocks_batch_dispose(sf_state_batch_t *batch)
{
    rocksdb_writebatch_destroy(batch->impl);
    batch->impl = NULL;
}

static void rocks_batch_clear(sf_state_batch_t *batch) { rocksdb_writebatch_clear(batch->impl); }

static void rocks_batch_op(sf_state_batch_t *batch, const uint8_t *key, size_t klen,
                           const uint8_t *val, size_t vlen)
{
    if (val)
        rocksdb_writebatch_put(batch->impl, (const char *)key, klen, (const char *)val, vlen);
    else
        rocksdb_writebatch_delete(batch->impl, (const char *)key, klen);
}

static void rocks_batch_savepoint(sf_state_batch_t *batch)
{
    rocksdb_writebatch_set_save_point(batch->impl);
}

/* Ends the savepoint with |op| (roll back to it, or pop it). Only "no
 * savepoint set" can fail: a caller's bug. */
static void savepoint_end(sf_state_batch_t *batch,
                          void (*op)(rocksdb_writebatch_t *, char **), const char *what)
{
    char *err = NULL;
    op(batch->impl, &err);
    if (err) {
        rerr(what, err);
        abort();
    }
}

static void rocks_batch_rollback(sf_state_batch_t *batch)
{
    savepoint_end(batch, rocksdb_writebatch_rollback_to_save_point, "batch rollback");
}

static void rocks_batch_release(sf_state_batch_t *batch)
{
    savepoint_end(batch, rocksdb_writebatch_pop_save_point, "batch savepoint release");
}

typedef struct {
    sf__kv_cb cb;
    void *user_data;
} batch_iter_t;

static void iter_put(void *ud, const char *k, size_t klen, const char *v, size_t vlen)
{
    batch_iter_t *it = ud;
    it->cb((const uint8_t *)k, klen, (const uint8_t *)v, vlen, it->user_data);
}

static void iter_deleted(void *ud, const char *k, size_t klen)
{
    batch_iter_t *it = ud;
    it->cb((const uint8_t *)k, klen, NULL, 0, it->user_data);
}

static void rocks_batch_iterate(sf_state_batch_t *batch, sf__kv_cb cb, void *user_data)
{
    batch_iter_t it = {cb, user_data};
    rocksdb_writebatch_iterate(batch->impl, &it, iter_put, iter_deleted);
}

static int rocks_batch_write(sf_state_batch_t *batch)
{
    rocks_t *r = batch->backend->store;
    char *err = NULL;
    rocksdb_write(r->db, r->wopts, batch->impl, &err);
    return err ? rerr("write", err) : 0;
}

static ssize_t rocks_reclaim(sf_state_backend_t *b, uint32_t kg_lo, uint32_t kg_hi, int64_t now,
                             size_t budget)
{
    /* The compaction filter reads the clock sf_state_reclaim just set. */
    (void)b;
    (void)kg_lo;
    (void)kg_hi;
    (void)now;
    (void)budget;
    return 0;
}

static int rocks_compact(sf_state_backend_t *b)
{
    rocks_t *r = b->store;
    rocksdb_compact_range(r->db, NULL, 0, NULL, 0);
    return 0;
}

static int rocks_flush(sf_state_backend_t *b)
{
    rocks_t *r = b->store;
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    char *err = NULL;
    rocksdb_flushoptions_set_wait(fo, 1);
    rocksdb_flush(r->db, fo, &err);
    rocksdb_flushoptions_destroy(fo);
    return err ? rerr("flush", err) : 0;
}

static int rocks_checkpoint(sf_state_backend_t *b, const char *dir)
{
    rocks_t *r = b->store;
    rocksdb_checkpoint_t *cp;
    char *err = NULL;
    if (r->wal_buffered) {
        rocksdb_flush_wal(r->db, 0, &err);
        if (err)
            return rerr("log write", err);
    }
    cp = rocksdb_checkpoint_object_create(r->db, &err);
    if (err)
        return rerr("checkpoint", err);
    rocksdb_checkpoint_create(cp, dir, r->checkpoint_flush_bytes, &err);
    rocksdb_checkpoint_object_destroy(cp);
    return err ? rerr("checkpoint", err) : 0;
}

static const sf__store_vt_t rocks_vt = {
    .kind = "rocksdb",
    .close = rocks_close,
    .get = rocks_get,
    .scan = rocks_scan,
    .batch_init = rocks_batch_init,
    .batch_dispose = rocks_batch_dispose,
    .batch_clear = rocks_batch_clear,
    .batch_op = rocks_batch_op,
    .batch_write = rocks_batch_write,
    .batch_savepoint = rocks_batch_savepoint,
    .batch_rollback = rocks_batch_rollback,
    .batch_release = rocks_batch_release,
    .reclaim = rocks_reclaim,
    .compact = rocks_compact,
    .flush = rocks_flush,
    .checkpoint = rocks_checkpoint,
    .checkpoint_concurrent = true,
    .cache_reads = true,
    .batch_iterate = rocks_batch_iterate,
};

/* Default options but for one: no fallocate() of new files. RocksDB preallocates
 * each new log file (about 1.1 write buffers), and it does so in the first commit
 * that writes the file: on a worker, since the workers commit. ext4 then reads block
 * bitmaps from the disk while the checkpoint's flush keeps it busy, and the worker
 * waits for them: for 100 ms to 1 s at times on this machine, while messages pile up
 * behind it (remote-counter at a fixed 50 000 msg/s: p99 of 100-500 ms in such runs
 * against 4-5 ms; docs/benchmarks.md). Without it the log's pages are allocated when
 * the kernel writes them back. The option has no setter in RocksDB 7.8's C API, so it
 * goes through RocksDB's own option-string parser, before any other setting. */
static int options_new(rocks_t *r)
{
    rocksdb_options_t *defaults = rocksdb_options_create();
    char *err = NULL;
    r->opts = rocksdb_options_create();
    rocksdb_get_options_from_string(defaults, "allow_fallocate=false", r->opts, &err);
    rocksdb_options_destroy(defaults);
    return err ? rerr("options", err) : 0;
}

int sf__rocks_open(sf_state_backend_t *b, const sf_state_options_t *o)
{
    rocks_t *r;
    char *err = NULL;
    int jobs = o->background_jobs > 0 ? o->background_jobs : 2;
    bool logged;
    size_t wbuf = o->write_buffer_bytes ? o->write_buffer_bytes : (size_t)32 << 20;
    int rv;

    if ((rv = sf__mkdirs(o->dir)) != 0)
        return rv;
    r = sf_xcalloc(1, sizeof *r);
    b->vt = &rocks_vt;
    b->store = r;
    /* With no log at all (neither |wal| nor |checkpoint_wal|) the memtables hold the
     * only copy of recent commits: a checkpoint must flush them. */
    logged = o->wal || o->checkpoint_wal || o->sync_commits;
    r->checkpoint_flush_bytes = logged ? o->checkpoint_flush_bytes : 0;

    r->cache = rocksdb_cache_create_lru(o->block_cache_bytes ? o->block_cache_bytes
                                                             : (size_t)256 << 20);
    r->topts = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(r->topts, r->cache);
    /* Whole-key bloom filters: the first invocation of an address reads
     * every registered state and misses; filters keep misses off the disk. */
    rocksdb_block_based_options_set_filter_policy(r->topts,
                                                  rocksdb_filterpolicy_create_bloom_full(10));
    /* Index and filter blocks are not in the block cache: each table reader loads its
     * file's whole index and filter when it opens it and keeps them (max_open_files -1
     * keeps every reader), about 2.4 bytes a key (10M addresses: ~24 MiB). A get then
     * finds them without a cache lookup per level. Kept in the cache instead, a whole
     * filter of a large table outgrew its 4 MiB cache shard and was read again by every
     * get; partitioning them into 4 KiB cached blocks cured that but cost two cache
     * lookups and a partition search per level and get (10M addresses, uniform keys:
     * gets 1.4x faster without, and 70 MiB less RSS; docs/benchmarks.md). */
    rocksdb_block_based_options_set_cache_index_and_filter_blocks(r->topts, 0);
    rocksdb_block_based_options_set_format_version(r->topts, 5);
    /* A hash index inside data blocks speeds up point reads. */
    rocksdb_block_based_options_set_data_block_index_type(
        r->topts, rocksdb_block_based_table_data_block_index_type_binary_search_and_hash);
    rocksdb_block_based_options_set_data_block_hash_ratio(r->topts, 0.75);

    if ((rv = options_new(r)) != 0) {
        rocks_close(b);
        b->vt = NULL;
        return rv;
    }
    rocksdb_options_set_create_if_missing(r->opts, 1);
    rocksdb_options_increase_parallelism(r->opts, jobs);
    rocksdb_options_set_max_background_jobs(r->opts, jobs);
    rocksdb_options_set_write_buffer_size(r->opts, wbuf);
    rocksdb_options_set_max_write_buffer_number(r->opts,
                                                o->max_write_buffers > 1 ? o->max_write_buffers
                                                                         : 2);
    rocksdb_options_set_max_total_wal_size(r->opts, 4 * (uint64_t)wbuf);
    rocksdb_options_set_memtable_whole_key_filtering(r->opts, 1);
    /* Written through (every commit writes its state): overwrite a key's value inside
     * the memtable when the new value is no larger (a counter, a fixed-size record), so
     * a hot address keeps one memtable entry instead of one per update, and gets and
     * puts search a skip list of live keys, not of versions (bench embedded, RocksDB:
     * 72% of the time in skip-list searches before). Needs memtable writes from one
     * thread at a time; the workers' commits go through RocksDB's write group either
     * way. Written back, hot addresses stay in the workers' caches and what reaches the
     * store is mostly keys the memtable does not hold: there an in-place update is a
     * skip-list search that finds nothing before the insert's own (state-scale,
     * uniform: 7% of the CPU samples; docs/benchmarks.md). */
    rocksdb_options_set_allow_concurrent_memtable_write(r->opts, 0);
    rocksdb_options_set_inplace_update_support(r->opts, o->write_back ? 0 : 1);
    rocksdb_options_set_memtable_prefix_bloom_size_ratio(r->opts, 0.02);
    rocksdb_options_set_level_compaction_dynamic_level_bytes(r->opts, 1);
    /* A small base level and small files: with 10M addresses of compressible state the
     * whole key space is ~200 MiB, so a 256 MiB base level was the last level, and every
     * L0 compaction of uniformly spread updates rewrote all of it (a vCPU of compaction).
     * With a 32 MiB base there is a level in between, and 8 MiB files let a compaction
     * touch only the part of the next level it overlaps (bench state-scale: uniform
     * 18.6k -> 33.5k msg/s, load 142 -> 104 s, peak RSS 551 -> 442 MiB). Compacting L0
     * at 8 files instead of 4 (a checkpoint flushes one each second) halves how often the
     * level below is rewritten (Zipf 42k -> 60k msg/s). docs/benchmarks.md, state-scale. */
    rocksdb_options_set_max_bytes_for_level_base(r->opts, 32ull << 20);
    rocksdb_options_set_target_file_size_base(r->opts, 8ull << 20);
    rocksdb_options_set_level0_file_num_compaction_trigger(r->opts, 8);
    rocksdb_options_set_compression(r->opts, rocksdb_lz4_compression);
    rocksdb_options_set_max_open_files(r->opts, -1);
    rocksdb_options_set_bytes_per_sync(r->opts, 1ull << 20);
    rocksdb_options_set_keep_log_file_num(r->opts, 2);
    rocksdb_options_set_max_log_file_size(r->opts, 4ull << 20);
    rocksdb_options_set_block_based_table_factory(r->opts, r->topts);
    r->cfilter = rocksdb_compactionfilter_create(b, ttl_filter_destroy, ttl_filter,
                                                 ttl_filter_name);
    rocksdb_options_set_compaction_filter(r->opts, r->cfilter);
    /* A log kept only for checkpoints is written to its file by the checkpoint (and when
     * its buffer fills), not by every commit: a write() per commit cost remote-counter
     * 10-25% of its msg/s (docs/benchmarks.md). */
    r->wal_buffered = o->checkpoint_wal && !o->wal && !o->sync_commits;
    if (r->wal_buffered)
        rocksdb_options_set_manual_wal_flush(r->opts, 1);

    r->ropts = rocksdb_readoptions_create();
    r->wopts = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(r->wopts, o->sync_commits ? 1 : 0);
    if (!logged)
        rocksdb_writeoptions_disable_WAL(r->wopts, 1);

    r->db = rocksdb_open(r->opts, o->dir, &err);
    if (err) {
        rv = rerr("open", err);
        rocks_close(b);
        b->vt = NULL;
        return rv;
    }
    return 0;
}

/* Restore ---------------------------------------------------------------- */

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int copy_file(const char *src, const char *dst)
{
    char buf[65536];
    int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, rv = SF_EIO;
    ssize_t n;
    if (in < 0)
        goto done;
    out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0)
        goto done;
    while ((n = read(in, buf, sizeof buf)) > 0) {
        char *p = buf;
        while (n > 0) {
            ssize_t w = write(out, p, (size_t)n);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                goto done;
            }
            p += w;
            n -= w;
        }
    }
    if (n == 0 && fdatasync(out) == 0)
        rv = 0;
done:
    if (rv != 0)
        sf_log_error("state: cannot copy %s to %s: %s", src, dst, strerror(errno));
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out) != 0)
        rv = SF_EIO;
    return rv;
}

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = sf_xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/*
 * Empties the live directory |dir|: refuses anything that does not look like
 * a RocksDB directory (a CURRENT or IDENTITY file) unless it is empty, and
 * anything with subdirectories.
 */
static int clear_live_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    bool rocks = false, files = false, subdirs = false;
    int rv = 0;
    if (!d)
        return errno == ENOENT ? 0 : SF_EIO;
    while ((e = readdir(d)) != NULL) {
        char *p;
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        p = path_join(dir, e->d_name);
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            subdirs = true;
        free(p);
        files = true;
        if (strcmp(e->d_name, "CURRENT") == 0 || strcmp(e->d_name, "IDENTITY") == 0)
            rocks = true;
    }
    if (files && (!rocks || subdirs)) {
        sf_log_error("state: will not replace %s: not a RocksDB directory", dir);
        closedir(d);
        return SF_EINVAL;
    }
    rewinddir(d);
    while ((e = readdir(d)) != NULL) {
        char *p;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        p = path_join(dir, e->d_name);
        if (unlink(p) != 0) {
            sf_log_error("state: cannot remove %s: %s", p, strerror(errno));
            rv = SF_EIO;
        }
        free(p);
    }
    closedir(d);
    return rv;
}

int sf__rocks_restore(const sf_state_options_t *o, const char *cpdir)
{
    DIR *d;
    struct dirent *e;
    struct stat st;
    char *current = path_join(cpdir, "CURRENT");
    int rv;

    rv = stat(current, &st);
    free(current);
    if (rv != 0) {
        sf_log_error("state: no RocksDB checkpoint in %s", cpdir);
        return SF_ENOTFOUND;
    }
    if ((rv = clear_live_dir(o->dir)) != 0)
        return rv;
    if ((rv = sf__mkdirs(o->dir)) != 0)
        return rv;
    if (!(d = opendir(cpdir)))
        return SF_EIO;
    while (rv == 0 && (e = readdir(d)) != NULL) {
        char *src, *dst;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            strcmp(e->d_name, "LOCK") == 0)
            continue;
        src = path_join(cpdir, e->d_name);
        dst = path_join(o->dir, e->d_name);
        if (lstat(src, &st) != 0 || !S_ISREG(st.st_mode)) {
            /* Checkpoints hold regular files only. */
        } else if (has_suffix(e->d_name, ".sst")) {
            /* Table files are immutable: share them with the checkpoint. */
            if (link(src, dst) != 0)
                rv = errno == EXDEV ? copy_file(src, dst) : SF_EIO;
            if (rv != 0)
                sf_log_error("state: cannot link %s: %s", src, strerror(errno));
        } else {
            /* MANIFEST, CURRENT, OPTIONS and WAL files are written again by
             * RocksDB: private copies keep the checkpoint intact. */
            rv = copy_file(src, dst);
        }
        free(src);
        free(dst);
    }
    closedir(d);
    if (rv == 0)
        rv = sf_fs_fsync_dir(o->dir);
    return rv;
}
