/* statefun-c: Apache License 2.0.
 *
 * The checkpoint coordinator, manifests, verification and collection (see
 * checkpoint.h and docs/checkpointing.md).
 *
 * A MANIFEST is JSON: {"format": 1, "id", "time_ms", "routed_upto",
 * "max_parallelism", "workers", "backend", "pending", "files": [{"name",
 * "size", "xxh3"}]}. It is written to MANIFEST.tmp, fsynced, renamed and the
 * directory fsynced: a checkpoint without MANIFEST is incomplete.
 */
#define _GNU_SOURCE
#include "checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "dispatch.h"
#include "fs.h"
#include "log.h"
#include "xalloc.h"

#define CHK_PREFIX "chk-"

/* Paths are built in PATH_MAX-sized buffers; a truncated path only fails
 * the open or stat that uses it. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

typedef struct file_s {
    char *name; /* relative to the checkpoint directory */
    uint64_t size;
    uint64_t hash;
    dev_t dev;
    ino_t ino;
} file_t;

typedef struct files_s {
    file_t *v;
    size_t n, cap;
} files_t;

struct sf_checkpointer_s {
    sf_rt_t *rt;
    char *root;          /* STATE_DIR/checkpoints */
    uint64_t next_id;
    uint32_t retained;
    files_t last;        /* files of the previous checkpoint (to reuse hashes) */
};

static void files_free(files_t *f)
{
    size_t i;
    for (i = 0; i < f->n; i++)
        free(f->v[i].name);
    free(f->v);
    memset(f, 0, sizeof *f);
}

static void files_add(files_t *f, const char *name, const struct stat *st)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 64;
        f->v = sf_xrealloc(f->v, f->cap * sizeof *f->v);
    }
    f->v[f->n].name = sf_xstrdup(name);
    f->v[f->n].size = (uint64_t)st->st_size;
    f->v[f->n].hash = 0;
    f->v[f->n].dev = st->st_dev;
    f->v[f->n].ino = st->st_ino;
    f->n++;
}

/* Lists the regular files under |dir|/|sub| recursively (names relative to |dir|). */
static int list_files(const char *dir, const char *sub, files_t *out)
{
    char path[4096], rel[4096];
    DIR *d;
    struct dirent *e;
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    if (!(d = opendir(path)))
        return SF_EIO;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        char full[4096];
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(rel, sizeof rel, "%s%s%s", sub, *sub ? "/" : "", e->d_name);
        snprintf(full, sizeof full, "%s/%s", dir, rel);
        if (lstat(full, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            list_files(dir, rel, out);
        else if (S_ISREG(st.st_mode))
            files_add(out, rel, &st);
    }
    closedir(d);
    return SF_OK;
}

static int hash_file(const char *path, uint64_t *out)
{
    XXH3_state_t *s = XXH3_createState();
    static __thread uint8_t buf[1 << 16];
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || !s) {
        if (fd >= 0)
            close(fd);
        XXH3_freeState(s);
        return SF_EIO;
    }
    XXH3_64bits_reset(s);
    while ((n = read(fd, buf, sizeof buf)) > 0)
        XXH3_64bits_update(s, buf, (size_t)n);
    close(fd);
    *out = XXH3_64bits_digest(s);
    XXH3_freeState(s);
    return n < 0 ? SF_EIO : SF_OK;
}

static int fsync_file(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC), rv;
    if (fd < 0)
        return SF_EIO;
    rv = fsync(fd);
    close(fd);
    return rv == 0 ? SF_OK : SF_EIO;
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p) == 0 ? 0 : 0;
}

static void rmtree(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* ------------------------------------------------------------------------ */
/* Manifests                                                                  */

static int write_manifest(const char *dir, const sf_manifest_t *m, const files_t *files)
{
    char tmp[4096], final[4096];
    json_t *root = json_object(), *arr = json_array();
    size_t i;
    int rv = SF_OK;
    for (i = 0; i < files->n; i++) {
        char hex[17];
        snprintf(hex, sizeof hex, "%016" PRIx64, files->v[i].hash);
        json_array_append_new(arr, json_pack("{s:s, s:I, s:s}", "name", files->v[i].name, "size",
                                             (json_int_t)files->v[i].size, "xxh3", hex));
    }
    json_object_set_new(root, "format", json_integer(1));
    json_object_set_new(root, "id", json_integer((json_int_t)m->id));
    json_object_set_new(root, "time_ms", json_integer((json_int_t)m->time_ms));
    json_object_set_new(root, "routed_upto", json_integer((json_int_t)m->routed_upto));
    json_object_set_new(root, "max_parallelism", json_integer(m->max_parallelism));
    json_object_set_new(root, "workers", json_integer(m->workers));
    json_object_set_new(root, "backend", json_string(m->backend));
    json_object_set_new(root, "pending", json_integer((json_int_t)m->pending));
    json_object_set_new(root, "files", arr);
    snprintf(tmp, sizeof tmp, "%s/MANIFEST.tmp", dir);
    snprintf(final, sizeof final, "%s/MANIFEST", dir);
    if (json_dump_file(root, tmp, JSON_INDENT(1)) != 0 || fsync_file(tmp) != 0 ||
        rename(tmp, final) != 0 || sf_fs_fsync_dir(dir) != 0)
        rv = SF_EIO;
    json_decref(root);
    return rv;
}

/* Reads |path|/MANIFEST into |m|; |*root| (caller decrefs) holds the file
 * list as |*files|. Returns 0, SF_ENOTFOUND (no MANIFEST) or SF_ESTATE. */
static int read_manifest(const char *path, sf_manifest_t *m, json_t **root, json_t **files)
{
    char mf[4096];
    json_error_t err;
    const char *backend = NULL;
    json_int_t id = 0, t = 0, routed = 0, maxp = 0, workers = 0, pending = 0;

    snprintf(mf, sizeof mf, "%s/MANIFEST", path);
    if (access(mf, F_OK) != 0)
        return SF_ENOTFOUND;
    if (!(*root = json_load_file(mf, 0, &err))) {
        sf_log_warn("checkpoint %s: MANIFEST does not parse: %s (line %d)", path, err.text,
                    err.line);
        return SF_ESTATE;
    }
    if (json_unpack(*root, "{s:I, s:I, s:I, s:I, s:I, s:s, s:I, s:o}", "id", &id, "time_ms", &t,
                    "routed_upto", &routed, "max_parallelism", &maxp, "workers", &workers,
                    "backend", &backend, "pending", &pending, "files", files) != 0 ||
        !json_is_array(*files)) {
        sf_log_warn("checkpoint %s: MANIFEST lacks fields", path);
        json_decref(*root);
        *root = NULL;
        return SF_ESTATE;
    }
    memset(m, 0, sizeof *m);
    m->id = (uint64_t)id;
    m->time_ms = t;
    m->routed_upto = (uint64_t)routed;
    m->max_parallelism = (uint32_t)maxp;
    m->workers = (uint32_t)workers;
    m->pending = (uint64_t)pending;
    snprintf(m->backend, sizeof m->backend, "%s", backend);
    return SF_OK;
}

int sf_checkpoint_verify(const char *path, sf_manifest_t *m)
{
    json_t *root = NULL, *files, *f;
    size_t i;
    int rv;

    if ((rv = read_manifest(path, m, &root, &files)) != 0)
        return rv;
    json_array_foreach(files, i, f)
    {
        const char *name = NULL, *hex = NULL;
        json_int_t size = 0;
        char fp[4096];
        struct stat st;
        uint64_t h;
        if (json_unpack(f, "{s:s, s:I, s:s}", "name", &name, "size", &size, "xxh3", &hex) != 0 ||
            strstr(name, "..")) {
            rv = SF_ESTATE;
            break;
        }
        snprintf(fp, sizeof fp, "%s/%s", path, name);
        if (stat(fp, &st) != 0 || (json_int_t)st.st_size != size) {
            sf_log_warn("checkpoint %s: file %s is missing or has the wrong size", path, name);
            rv = SF_ESTATE;
            break;
        }
        if (hash_file(fp, &h) != 0 || strtoull(hex, NULL, 16) != h) {
            sf_log_warn("checkpoint %s: file %s does not match its checksum", path, name);
            rv = SF_ESTATE;
            break;
        }
        m->bytes += (uint64_t)size;
    }
    json_decref(root);
    return rv;
}

static int cmp_desc(const void *a, const void *b)
{
    return strcmp(*(char *const *)b, *(char *const *)a);
}

/* The chk-* names under |root|, newest first. */
static char **list_checkpoints(const char *root, size_t *n)
{
    DIR *d = opendir(root);
    struct dirent *e;
    char **v = NULL;
    size_t cap = 0;
    *n = 0;
    if (!d)
        return NULL;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, CHK_PREFIX, strlen(CHK_PREFIX)) != 0)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            v = sf_xrealloc(v, cap * sizeof *v);
        }
        v[(*n)++] = sf_xstrdup(e->d_name);
    }
    closedir(d);
    if (*n)
        qsort(v, *n, sizeof *v, cmp_desc);
    return v;
}

int sf_checkpoint_find_latest(const char *state_dir, char **path, sf_manifest_t *m)
{
    char root[4096], p[4096];
    size_t n, i;
    char **names;
    int found = 0;
    snprintf(root, sizeof root, "%s/checkpoints", state_dir);
    names = list_checkpoints(root, &n);
    for (i = 0; i < n; i++) {
        int rv;
        snprintf(p, sizeof p, "%s/%s", root, names[i]);
        if (!found) {
            rv = sf_checkpoint_verify(p, m);
            if (rv == 0) {
                *path = sf_xstrdup(p);
                found = 1;
            } else {
                sf_log_warn("checkpoint %s is %s: skipped", p,
                            rv == SF_ENOTFOUND ? "incomplete (no MANIFEST)" : "corrupt");
            }
        }
        free(names[i]);
    }
    free(names);
    return found;
}

/* ------------------------------------------------------------------------ */
/* Taking checkpoints                                                         */

/* Test hook: a file named .crash-before-manifest in the state dir makes the
 * process kill itself (SIGKILL, as a crash) once a checkpoint's files are
 * written and before its MANIFEST is, leaving a torn checkpoint behind; if
 * the file holds a number N, at the N-th checkpoint from now. The file is
 * removed first, so the restart does not crash again. */
static void crash_hook(sf_rt_t *rt, const char *path)
{
    char hook[4096];
    FILE *f;
    int n = 1;
    snprintf(hook, sizeof hook, "%s/.crash-before-manifest", rt->opts->state_dir);
    if (!(f = fopen(hook, "r+")))
        return;
    /* The file may hold a count: crash at that many-th checkpoint from now. */
    if (fscanf(f, "%d", &n) == 1 && n > 1) {
        rewind(f);
        fprintf(f, "%d\n", n - 1);
        fclose(f);
        return;
    }
    fclose(f);
    unlink(hook);
    sf_log_warn("test hook: crashing before the MANIFEST of %s", path);
    raise(SIGKILL);
}

sf_checkpointer_t *sf_checkpointer_new(sf_rt_t *rt, uint64_t next_id, uint32_t retained)
{
    sf_checkpointer_t *c = sf_xcalloc(1, sizeof *c);
    char root[4096];
    c->rt = rt;
    snprintf(root, sizeof root, "%s/checkpoints", rt->opts->state_dir);
    mkdir(root, 0755);
    c->root = sf_xstrdup(root);
    c->next_id = next_id ? next_id : 1;
    {
        /* After a restore from elsewhere, continue past the ids already here. */
        size_t n, i;
        char **names = list_checkpoints(root, &n);
        for (i = 0; i < n; i++) {
            uint64_t id = strtoull(names[i] + strlen(CHK_PREFIX), NULL, 10);
            if (id >= c->next_id)
                c->next_id = id + 1;
            free(names[i]);
        }
        free(names);
    }
    c->retained = retained ? retained : 1;
    return c;
}

uint64_t sf_checkpointer_next_id(const sf_checkpointer_t *c) { return c->next_id; }

void sf_checkpoint_remove_dir(const char *dir) { rmtree(dir); }

uint64_t sf_checkpointer_oldest_routed(sf_checkpointer_t *c)
{
    size_t n, i;
    char **names = list_checkpoints(c->root, &n);
    uint64_t oldest = UINT64_MAX;
    for (i = 0; i < n; i++) {
        char p[4096];
        sf_manifest_t m;
        json_t *root = NULL, *files;
        snprintf(p, sizeof p, "%s/%s", c->root, names[i]);
        if (read_manifest(p, &m, &root, &files) == 0) {
            if (m.routed_upto < oldest)
                oldest = m.routed_upto;
            json_decref(root);
        }
        free(names[i]);
    }
    free(names);
    return oldest == UINT64_MAX ? 0 : oldest;
}

void sf_checkpointer_free(sf_checkpointer_t *c)
{
    if (!c)
        return;
    files_free(&c->last);
    free(c->root);
    free(c);
}

static int write_file(const char *path, const sf_buf_t *b)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644), rv = SF_OK;
    size_t off = 0;
    if (fd < 0)
        return SF_EIO;
    while (off < b->len) {
        ssize_t n = write(fd, b->base + off, b->len - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rv = SF_EIO;
            break;
        }
        off += (size_t)n;
    }
    if (rv == 0 && fdatasync(fd) != 0)
        rv = SF_EIO;
    close(fd);
    return rv;
}

/* The pending work of every worker: pending-local-NNNN then pending-out-NNNN
 * (recovery routes all local parts before all out parts). */
static int write_pending(const char *dir, const sf_snapshot_arg_t *sa, uint32_t n)
{
    char p[4096];
    uint32_t i;
    for (i = 0; i < n; i++) {
        snprintf(p, sizeof p, "%s/pending-local-%04u.bin", dir, i);
        if (write_file(p, &sa->local[i]) != 0)
            return SF_EIO;
        snprintf(p, sizeof p, "%s/pending-out-%04u.bin", dir, i);
        if (write_file(p, &sa->out[i]) != 0)
            return SF_EIO;
    }
    return SF_OK;
}

static int read_pending_file(const char *path, uint32_t maxp, sf_msg_fifo_t *chain)
{
    size_t len, off = 0;
    FILE *f = fopen(path, "rb");
    uint8_t *data;
    int rv = SF_OK;
    if (!f)
        return SF_EIO;
    fseek(f, 0, SEEK_END);
    len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    data = sf_xmalloc(len ? len : 1);
    if (len && fread(data, 1, len, f) != len)
        rv = SF_EIO;
    fclose(f);
    while (rv == 0 && off < len) {
        sf_msg_t *m;
        size_t used;
        if (sf_msg_decode(data + off, len - off, maxp, &m, &used) != 0) {
            rv = SF_ESTATE;
            break;
        }
        sf_msg_fifo_push(chain, m);
        off += used;
    }
    free(data);
    return rv;
}

int sf_checkpoint_read_pending(const char *path, uint32_t workers, uint32_t maxp,
                               sf_msg_fifo_t *chain)
{
    static const char *const parts[] = {"local", "out"};
    char p[4096];
    uint32_t i, k;
    for (k = 0; k < 2; k++)
        for (i = 0; i < workers; i++) {
            int rv;
            snprintf(p, sizeof p, "%s/pending-%s-%04u.bin", path, parts[k], i);
            if ((rv = read_pending_file(p, maxp, chain)) != 0) {
                sf_log_error("checkpoint %s: %s does not read back", path, p);
                return rv;
            }
        }
    return SF_OK;
}

static void collect(sf_checkpointer_t *c)
{
    size_t n, i;
    char **names = list_checkpoints(c->root, &n);
    size_t complete = 0;
    for (i = 0; i < n; i++) {
        char p[4096], mf[4096];
        snprintf(p, sizeof p, "%s/%s", c->root, names[i]);
        snprintf(mf, sizeof mf, "%s/MANIFEST", p);
        if (access(mf, F_OK) == 0 && ++complete <= c->retained) {
            free(names[i]);
            continue;
        }
        /* Older than the retained ones, or incomplete and older than a
         * complete one: not needed for recovery any more. */
        if (complete > 0)
            rmtree(p);
        free(names[i]);
    }
    free(names);
}

/* Write-back: every worker sweeps the state its cache holds back into the store,
 * on its own thread, all at once, a step a loop turn (so their loops go on), its
 * cache closed to new dirty entries (|close|) or open. Adds the values written to
 * |*written|. A worker that stopped first (its step cancelled) has nothing cached
 * to lose. Returns 0 or the first failure. */
static int write_back(sf_rt_t *rt, bool close, size_t *written)
{
    size_t i, n = rt->workers.n;
    sf_write_back_arg_t *x = sf_xcalloc(n, sizeof *x);
    void **args = sf_xcalloc(n, sizeof *args);
    int rv = 0;
    for (i = 0; i < n; i++) {
        x[i].close_dirty = close;
        args[i] = &x[i];
    }
    sf_workers_step_each(&rt->workers, sf_dispatch_write_back, args, NULL);
    for (i = 0; i < n; i++) {
        if (rv == 0)
            rv = x[i].rv;
        *written += x[i].n;
    }
    free(x);
    free(args);
    return rv;
}

static int store_checkpoint(sf_state_backend_t *state, const char *dir, uint64_t *us)
{
    uint64_t t = uv_hrtime();
    int rv = sf_state_checkpoint(state, dir);
    *us = (uv_hrtime() - t) / 1000;
    return rv;
}

int sf_checkpointer_take(sf_checkpointer_t *c, const char *dir, sf_checkpoint_stats_t *stats)
{
    sf_rt_t *rt = c->rt;
    sf_snapshot_arg_t sa;
    sf_manifest_t m;
    files_t files;
    char path[4096], state[4096];
    uint64_t t0 = uv_hrtime(), start, pause_us, hold_us, new_bytes = 0, stopped_us, store_us = 0;
    uint64_t flushed, duration_us;
    size_t written = 0, written_held = 0;
    size_t i, j;
    bool concurrent;
    int rv = 0;

    memset(&sa, 0, sizeof sa);
    sa.id = c->next_id;
    if (dir)
        snprintf(path, sizeof path, "%s", dir);
    else
        snprintf(path, sizeof path, "%s/" CHK_PREFIX "%020" PRIu64, c->root, sa.id);
    if (mkdir(path, 0755) != 0) {
        sf_log_error("checkpoint %" PRIu64 ": cannot create %s: %s", sa.id, path,
                     strerror(errno));
        return errno == EEXIST ? SF_EEXIST : SF_EIO;
    }
    snprintf(state, sizeof state, "%s/state", path);

    /* Before the pause: write the cached state back and the memtables out, so
     * that the checkpoint after the pause copies from the store's log (or, with
     * no log, flushes) only what was committed since. Two sweeps: the second
     * writes what the caches took during the first, and from its start until
     * the pause they take no new dirty entries (those are written with their
     * commits, as without the cache), so that little is left to write while
     * commits are held (with a million addresses written uniformly the caches
     * filled again: 8 192 values and a 100 ms hold). The flush comes last, so
     * that the checkpoint has only the moments from it to the pause to copy. */
    if ((rv = write_back(rt, false, &written)) != 0 ||
        (rv = write_back(rt, true, &written)) != 0) {
        sf_log_error("checkpoint %" PRIu64 ": writing the cached state back failed", sa.id);
        rmtree(path);
        return rv;
    }
    flushed = uv_hrtime();
    sf_state_flush(rt->state);
    start = uv_hrtime();
    sa.local = sf_xcalloc(rt->workers.n, sizeof *sa.local);
    sa.out = sf_xcalloc(rt->workers.n, sizeof *sa.out);
    for (i = 0; i < rt->workers.n; i++) {
        sf_buf_init(&sa.local[i], NULL);
        sf_buf_init(&sa.out[i], NULL);
    }

    /* The pause: pending work into memory. Then the store's checkpoint: with
     * RocksDB after the workers go on, their commits held meanwhile (so the
     * store does not change, and what they stage is in flight for this
     * checkpoint); the memory store is walked with everyone stopped. */
    stopped_us = sf_workers_pause(&rt->workers, sf_dispatch_snapshot, &sa);
    concurrent = sf_state_checkpoint_concurrent(rt->state);
    if (concurrent)
        sf_workers_hold_commits(&rt->workers, true);
    else
        rv = store_checkpoint(rt->state, state, &store_us);
    /* Whatever is committed from now on belongs to the next checkpoint. */
    atomic_store(&rt->epoch, sa.id + 1);
    sf_workers_resume(&rt->workers);
    pause_us = (uv_hrtime() - start) / 1000;
    if (concurrent) {
        /* Commits are held, so the caches hold the state as of the pause. */
        if ((rv = write_back(rt, false, &written_held)) == 0)
            rv = store_checkpoint(rt->state, state, &store_us);
        sf_workers_hold_commits(&rt->workers, false);
    }
    hold_us = concurrent ? (uv_hrtime() - start) / 1000 - pause_us : 0;
    c->next_id++;
    if (rv == 0)
        rv = write_pending(path, &sa, rt->workers.n);
    for (i = 0; i < rt->workers.n; i++) {
        sf_buf_dispose(&sa.local[i]);
        sf_buf_dispose(&sa.out[i]);
    }
    free(sa.local);
    free(sa.out);
    if (rv != 0) {
        sf_log_error("checkpoint %" PRIu64 " failed: %s", sa.id, sf_strerror(rv));
        rmtree(path);
        return rv;
    }

    /* Outside the pause: checksums (reused for files hard-linked from the
     * previous checkpoint) and the MANIFEST. */
    memset(&files, 0, sizeof files);
    list_files(path, "", &files);
    for (i = 0; i < files.n; i++) {
        file_t *f = &files.v[i];
        bool reused = false;
        for (j = 0; j < c->last.n; j++) {
            if (c->last.v[j].ino == f->ino && c->last.v[j].dev == f->dev &&
                c->last.v[j].size == f->size) {
                f->hash = c->last.v[j].hash;
                reused = true;
                break;
            }
        }
        if (!reused) {
            char fp[4096];
            snprintf(fp, sizeof fp, "%s/%s", path, f->name);
            if (hash_file(fp, &f->hash) != 0) {
                sf_log_error("checkpoint %" PRIu64 ": cannot read %s", sa.id, fp);
                files_free(&files);
                rmtree(path);
                return SF_EIO;
            }
            new_bytes += f->size;
        }
    }
    memset(&m, 0, sizeof m);
    m.id = sa.id;
    m.time_ms = sf_wall_ms();
    m.routed_upto = rt->routed_upto_at_pause;
    m.max_parallelism = rt->opts->max_parallelism;
    m.workers = rt->workers.n;
    m.pending = atomic_load(&sa.messages);
    snprintf(m.backend, sizeof m.backend, "%s", sf_state_kind(rt->state));
    for (i = 0; i < files.n; i++)
        m.bytes += files.v[i].size;
    crash_hook(rt, path);
    if ((rv = write_manifest(path, &m, &files)) != 0) {
        sf_log_error("checkpoint %" PRIu64 ": writing the MANIFEST failed", sa.id);
        files_free(&files);
        rmtree(path);
        return rv;
    }
    files_free(&c->last);
    c->last = files;
    duration_us = (uv_hrtime() - t0) / 1000;
    if (stats) {
        stats->pause_us = pause_us;
        stats->hold_us = hold_us;
        stats->duration_us = duration_us;
        stats->bytes = m.bytes;
        stats->new_bytes = new_bytes;
    }
    sf_log_debug("checkpoint %" PRIu64 " complete in %" PRIu64 " us: write-back %" PRIu64
                 " us, flush %" PRIu64 " us, pause %" PRIu64 " us (stop and snapshot %" PRIu64
                 " us), commits held %" PRIu64 " us, store %" PRIu64 " us (%s), %" PRIu64
                 " bytes (%" PRIu64 " new), %" PRIu64
                 " pending messages, %zu + %zu cached values written back",
                 sa.id, duration_us, (flushed - t0) / 1000, (start - flushed) / 1000, pause_us,
                 stopped_us, hold_us, store_us,
                 concurrent ? "after the pause, commits held" : "in the pause", m.bytes, new_bytes,
                 m.pending, written, written_held);
    if (!dir)
        collect(c);
    return SF_OK;
}
