/* statefun-c: Apache License 2.0.
 *
 * The durable ingress log (see ingress_log.h for the format and the modes,
 * docs/ingress-log.md for the reasons).
 *
 * Three threads touch a log:
 *
 *   - the loop thread (the I/O thread) appends: it encodes and frames the
 *     records of one loop turn into one batch, hands the batch to the writer
 *     at the start of the next turn (uv_idle_t) and runs the done callbacks
 *     when the writer reports back (uv_async_t);
 *   - the writer thread takes every batch waiting for it, writes them with
 *     one pwritev() (and one fdatasync() in `always` mode) and queues them
 *     as completed. While it writes or syncs, later batches pile up and go
 *     together next time: that is the group commit;
 *   - the syncer thread runs the periodic fdatasync of `interval` mode and
 *     the sf_ilog_sync requests, on the segment that is active when it
 *     starts (it holds a reference so that a roll cannot close the file
 *     under it).
 *
 * Shared state lives under |mu|. The writer alone writes segment files and
 * creates them; it publishes sizes and offsets under |mu|. Invariants:
 * durable_end <= written_end <= the loop's next_offset; every record below
 * written_end is in a segment file at a byte below active_size (or in an
 * earlier segment); a segment whose records are all in earlier segments'
 * ranges never exists (names increase with offsets).
 *
 * A failed write is undone with ftruncate() and fails its batches; the log
 * goes on (a full disk may empty). A failed fdatasync(), or a failed undo,
 * makes the log unusable (|failed|): after a failed fdatasync the kernel may
 * have dropped the dirty pages, so nothing written since can be trusted.
 */
#include "ingress_log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxhash.h>

#include "fs.h"
#include "log.h"
#include "xalloc.h"

#define SEG_NAME_DIGITS 20
#define SEG_SUFFIX ".log"
/* Batches gathered into one pwritev() (well below IOV_MAX). */
#define MAX_GROUP 256
/* Batch objects kept for reuse, and the largest buffer worth keeping. */
#define MAX_SPARE 8
#define SPARE_KEEP_BYTES (1u << 20)
/* Read-ahead of the segment reader. */
#define READ_CHUNK (1u << 20)

/* One append: whom to tell. */
typedef struct ilog_done_s {
    sf_ilog_done_cb done;
    void *token;
} ilog_done_t;

/* The appends of one loop turn. */
typedef struct ilog_batch_s {
    struct ilog_batch_s *next;
    sf_buf_t data;      /* framed records */
    ilog_done_t *dones; /* in append order */
    size_t ndones, dones_cap;
    size_t nrecords;
    uint64_t first; /* offset of the first record (when nrecords > 0) */
    uint64_t end;   /* one past the last record's offset */
    int status;     /* set by the writer */
} ilog_batch_t;

/* An open segment file, shared by the writer and the syncer. */
typedef struct ilog_seg_s {
    int fd;
    int refs; /* under mu */
    uint64_t base;
} ilog_seg_t;

typedef struct ilog_counters_s {
    _Atomic uint64_t records, appends, batches, writes, syncs, bytes, write_errors,
        segments_created, segments_deleted, torn_bytes, next_offset, written_offset, durable_offset,
        segments;
} ilog_counters_t;

#define CTR_ADD(log, f, n) atomic_fetch_add_explicit(&(log)->ctr.f, (n), memory_order_relaxed)
#define CTR_SET(log, f, v) atomic_store_explicit(&(log)->ctr.f, (v), memory_order_relaxed)

struct sf_ilog_s {
    sf_ilog_fsync mode;
    uint64_t interval_ns;
    uint64_t segment_bytes;
    uint32_t max_parallelism;
    char *dir;
    int dirfd; /* holds the flock */

    /* Loop side: the loop's thread only. */
    uv_loop_t *loop;
    uv_idle_t idle;   /* armed while |cur| is open: hands it over next turn */
    uv_async_t async; /* rung by the writer when batches completed */
    int open_handles;
    bool started, stopped;
    uint64_t next_offset;
    ilog_batch_t *cur;   /* this turn's batch */
    ilog_batch_t *spare; /* reusable batch objects */
    size_t nspare;

    /* Shared, under mu. */
    uv_mutex_t mu;
    uv_cond_t writer_cv;           /* batches queued, or stop */
    uv_cond_t syncer_cv;           /* data to sync, a request, or stop */
    uv_cond_t synced_cv;           /* durable_end moved, failure, or the syncer ended */
    ilog_batch_t *q_head, *q_tail; /* handed over, not written yet */
    ilog_batch_t *c_head, *c_tail; /* completed, callbacks owed */
    bool stop_writer, stop_syncer, syncer_running;
    _Atomic int failed; /* 0, or the error that made the log unusable */
    uint64_t *segs;     /* segment bases, ascending; the last is the active one */
    size_t nsegs, segs_cap;
    ilog_seg_t *active;   /* the last segment, open; NULL while there is none */
    uint64_t active_size; /* bytes of whole records in the active segment */
    uint64_t written_end; /* every record below is written */
    uint64_t durable_end; /* every record below is fdatasynced */
    bool dirty;           /* written since the last sync began */
    uint64_t dirty_since; /* uv_hrtime() of the first such write */
    bool old_unsynced;    /* `never` mode: segments from unsynced_base on were rolled unsynced */
    uint64_t unsynced_base;
    unsigned sync_requests;

    uv_thread_t writer, syncer;
    bool writer_started, syncer_started;

    ilog_counters_t ctr;
};

/* ------------------------------------------------------------------------ */
/* Helpers                                                                    */

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void seg_path(const sf_ilog_t *log, uint64_t base, char *out, size_t len)
{
    snprintf(out, len, "%s/%0*" PRIu64 "%s", log->dir, SEG_NAME_DIGITS, base, SEG_SUFFIX);
}

/* Parses "NNNNNNNNNNNNNNNNNNNN.log"; false for any other name. */
static bool seg_name_parse(const char *name, uint64_t *base)
{
    uint64_t v = 0;
    int i;
    if (strlen(name) != SEG_NAME_DIGITS + strlen(SEG_SUFFIX) ||
        strcmp(name + SEG_NAME_DIGITS, SEG_SUFFIX) != 0)
        return false;
    for (i = 0; i < SEG_NAME_DIGITS; i++) {
        unsigned d = (unsigned)(name[i] - '0');
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *base = v;
    return true;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Marks the log unusable (the first error wins). Takes mu. */
static void set_failed(sf_ilog_t *log, int err)
{
    uv_mutex_lock(&log->mu);
    if (atomic_load(&log->failed) == 0)
        atomic_store(&log->failed, err);
    uv_cond_broadcast(&log->synced_cv);
    uv_mutex_unlock(&log->mu);
}

/* Drops a reference to |seg| (under mu); closes it with the last one. */
static void seg_release_locked(ilog_seg_t *seg)
{
    if (seg && --seg->refs == 0) {
        close(seg->fd);
        free(seg);
    }
}

/* ------------------------------------------------------------------------ */
/* Reading segments                                                           */

typedef struct ilog_reader_s {
    int fd;
    uint64_t limit; /* bytes of the file to look at */
    uint64_t pos;   /* file offset of buf[start] */
    uint8_t *buf;
    size_t cap, start, end;
    const char *path; /* for log lines */
} ilog_reader_t;

enum { REC_OK = 0, REC_END = 1, REC_TORN = 2, REC_BAD = 3 };

static void reader_init(ilog_reader_t *r, int fd, uint64_t limit, const char *path)
{
    memset(r, 0, sizeof *r);
    r->fd = fd;
    r->limit = limit;
    r->path = path;
}

static void reader_dispose(ilog_reader_t *r)
{
    free(r->buf);
    r->buf = NULL;
}

/* Makes |n| bytes available at buf + start. 1: yes; 0: the file (or the
 * limit) ends first; SF_EIO: a read failed. */
static int reader_fill(ilog_reader_t *r, size_t n)
{
    size_t have = r->end - r->start;
    if (have >= n)
        return 1;
    if (r->pos + n > r->limit)
        return 0;
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, have);
        r->start = 0;
        r->end = have;
    }
    if (n > r->cap) {
        r->cap = n > READ_CHUNK ? n : READ_CHUNK;
        r->buf = sf_xrealloc(r->buf, r->cap);
    }
    while (r->end < n) {
        uint64_t room = r->limit - (r->pos + r->end);
        size_t want = r->cap - r->end;
        ssize_t got;
        if (want > room)
            want = (size_t)room;
        got = pread(r->fd, r->buf + r->end, want, (off_t)(r->pos + r->end));
        if (got < 0) {
            if (errno == EINTR)
                continue;
            sf_log_error("ingress log: reading %s: %s", r->path, strerror(errno));
            return SF_EIO;
        }
        if (got == 0)
            return 0;
        r->end += (size_t)got;
    }
    return 1;
}

/* The next record: REC_OK with |*payload| (valid until the next call),
 * REC_END at a clean end, REC_TORN for an incomplete record, REC_BAD for an
 * impossible length or a checksum mismatch, or SF_EIO. |*at| is the file
 * offset of the record (or of the bad bytes). */
static int reader_next(ilog_reader_t *r, const uint8_t **payload, uint32_t *len, uint64_t *at)
{
    const uint8_t *p;
    uint32_t l;
    int rc;
    *at = r->pos;
    if ((rc = reader_fill(r, SF_ILOG_FRAME_BYTES)) < 0)
        return rc;
    if (rc == 0)
        return r->end == r->start ? REC_END : REC_TORN;
    p = r->buf + r->start;
    l = get_u32(p);
    if (l == 0 || l > SF_ILOG_MAX_RECORD)
        return REC_BAD;
    if ((rc = reader_fill(r, SF_ILOG_FRAME_BYTES + (size_t)l)) < 0)
        return rc;
    if (rc == 0)
        return REC_TORN;
    p = r->buf + r->start;
    if (XXH32(p + SF_ILOG_FRAME_BYTES, l, 0) != get_u32(p + 4))
        return REC_BAD;
    *payload = p + SF_ILOG_FRAME_BYTES;
    *len = l;
    r->start += SF_ILOG_FRAME_BYTES + (size_t)l;
    r->pos += SF_ILOG_FRAME_BYTES + (uint64_t)l;
    return REC_OK;
}

static const char *rec_why(int rc)
{
    return rc == REC_TORN ? "incomplete record" : "bad length or checksum";
}

/* ------------------------------------------------------------------------ */
/* Opening                                                                    */

void sf_ilog_config_init(sf_ilog_config_t *c)
{
    memset(c, 0, sizeof *c);
    c->fsync = SF_ILOG_FSYNC_INTERVAL;
    c->fsync_interval_ms = SF_ILOG_DEFAULT_FSYNC_INTERVAL_MS;
    c->segment_bytes = SF_ILOG_DEFAULT_SEGMENT_BYTES;
    c->max_parallelism = 128;
}

static const char *const fsync_names[] = {"always", "interval", "never"};

int sf_ilog_fsync_parse(const char *text, sf_ilog_fsync *out)
{
    size_t i;
    for (i = 0; text && i < SF_ARRAY_SIZE(fsync_names); i++) {
        if (strcmp(text, fsync_names[i]) == 0) {
            *out = (sf_ilog_fsync)i;
            return SF_OK;
        }
    }
    return SF_EINVAL;
}

const char *sf_ilog_fsync_name(sf_ilog_fsync mode)
{
    return (unsigned)mode < SF_ARRAY_SIZE(fsync_names) ? fsync_names[mode] : "?";
}

/* Lists the segment files into log->segs, ascending. */
static int list_segments(sf_ilog_t *log)
{
    DIR *d = opendir(log->dir);
    struct dirent *e;
    uint64_t base;
    if (!d) {
        sf_log_error("ingress log: cannot list %s: %s", log->dir, strerror(errno));
        return SF_EIO;
    }
    while ((e = readdir(d)) != NULL) {
        if (!seg_name_parse(e->d_name, &base))
            continue;
        if (log->nsegs == log->segs_cap) {
            log->segs_cap = log->segs_cap ? 2 * log->segs_cap : 16;
            log->segs = sf_xrealloc(log->segs, log->segs_cap * sizeof *log->segs);
        }
        log->segs[log->nsegs++] = base;
    }
    closedir(d);
    if (log->nsegs > 1)
        qsort(log->segs, log->nsegs, sizeof *log->segs, cmp_u64);
    return SF_OK;
}

/* Scans the last segment, cuts its torn tail, syncs it, opens it for
 * appending and sets |*next| past its last record. */
static int recover_last(sf_ilog_t *log, uint64_t *next)
{
    uint64_t base = log->segs[log->nsegs - 1], valid = 0, last_at = 0, at = 0;
    uint32_t len = 0, last_len = 0;
    const uint8_t *payload;
    char path[4200];
    ilog_reader_t r;
    struct stat st;
    bool any = false;
    int fd, rc, rv = SF_OK;

    seg_path(log, base, path, sizeof path);
    if ((fd = open(path, O_RDWR | O_CLOEXEC)) < 0 || fstat(fd, &st) != 0) {
        sf_log_error("ingress log: cannot open %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return SF_EIO;
    }
    reader_init(&r, fd, (uint64_t)st.st_size, path);
    while ((rc = reader_next(&r, &payload, &len, &at)) == REC_OK) {
        last_at = at;
        last_len = len;
        valid = at + SF_ILOG_FRAME_BYTES + len;
        any = true;
    }
    reader_dispose(&r);
    if (rc < 0) {
        rv = rc;
        goto fail;
    }
    if (valid < (uint64_t)st.st_size) {
        uint64_t dropped = (uint64_t)st.st_size - valid;
        sf_log_warn("ingress log: %s: dropped %" PRIu64 " bytes of a torn tail at byte %" PRIu64
                    " (%s)",
                    path, dropped, valid, rec_why(rc));
        if (ftruncate(fd, (off_t)valid) != 0) {
            sf_log_error("ingress log: cannot truncate %s: %s", path, strerror(errno));
            rv = SF_EIO;
            goto fail;
        }
        CTR_ADD(log, torn_bytes, dropped);
    }
    *next = base;
    if (any) {
        uint8_t *buf = sf_xmalloc(last_len);
        sf_msg_t *m = NULL;
        ssize_t got = pread(fd, buf, last_len, (off_t)(last_at + SF_ILOG_FRAME_BYTES));
        if (got != (ssize_t)last_len) {
            sf_log_error("ingress log: reading %s: %s", path,
                         got < 0 ? strerror(errno) : "short read");
            rv = SF_EIO;
        } else if (sf_msg_decode(buf, last_len, log->max_parallelism, &m, NULL) != 0) {
            sf_log_error("ingress log: %s: the record at byte %" PRIu64
                         " is intact but not a message this version can read",
                         path, last_at);
            rv = SF_EPROTO;
        } else {
            if (m->seq + 1 > *next)
                *next = m->seq + 1;
            sf_msg_free(m);
        }
        free(buf);
        if (rv != SF_OK)
            goto fail;
    }
    /* What survived a kill -9 in the page cache is made durable now, so that
     * offsets handed out from here on follow records that are on disk. */
    if (fdatasync(fd) != 0 || fsync(log->dirfd) != 0) {
        sf_log_error("ingress log: cannot sync %s: %s", path, strerror(errno));
        rv = SF_EIO;
        goto fail;
    }
    CTR_ADD(log, syncs, 1);
    log->active = sf_xcalloc(1, sizeof *log->active);
    log->active->fd = fd;
    log->active->refs = 1;
    log->active->base = base;
    log->active_size = valid;
    return SF_OK;
fail:
    close(fd);
    return rv;
}

int sf_ilog_open(const sf_ilog_config_t *config, sf_ilog_t **out)
{
    sf_ilog_t *log;
    uint64_t next;
    int rv;

    *out = NULL;
    if (!config || !config->dir || !config->dir[0] ||
        (unsigned)config->fsync > SF_ILOG_FSYNC_NEVER || config->max_parallelism == 0)
        return SF_EINVAL;
    log = sf_xcalloc(1, sizeof *log);
    log->mode = config->fsync;
    log->interval_ns = (uint64_t)(config->fsync_interval_ms ? config->fsync_interval_ms
                                                            : SF_ILOG_DEFAULT_FSYNC_INTERVAL_MS) *
                       1000000u;
    log->segment_bytes =
        config->segment_bytes ? config->segment_bytes : SF_ILOG_DEFAULT_SEGMENT_BYTES;
    log->max_parallelism = config->max_parallelism;
    log->dir = sf_xstrdup(config->dir);
    log->dirfd = -1;
    if (uv_mutex_init(&log->mu) != 0 || uv_cond_init(&log->writer_cv) != 0 ||
        uv_cond_init(&log->syncer_cv) != 0 || uv_cond_init(&log->synced_cv) != 0)
        sf__panic(__FILE__, __LINE__, "cannot create a mutex or condition variable");

    if ((rv = sf_fs_mkdirs(log->dir)) != 0) {
        sf_log_error("ingress log: cannot create %s: %s", log->dir, strerror(errno));
        goto fail;
    }
    if ((log->dirfd = open(log->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        sf_log_error("ingress log: cannot open %s: %s", log->dir, strerror(errno));
        rv = SF_EIO;
        goto fail;
    }
    if (flock(log->dirfd, LOCK_EX | LOCK_NB) != 0) {
        rv = errno == EWOULDBLOCK ? SF_EEXIST : SF_EIO;
        sf_log_error("ingress log: cannot lock %s: %s", log->dir,
                     rv == SF_EEXIST ? "another process (or log) uses it" : strerror(errno));
        goto fail;
    }
    if ((rv = list_segments(log)) != 0)
        goto fail;
    next = 0;
    if (log->nsegs > 0 && (rv = recover_last(log, &next)) != 0)
        goto fail;
    if (next < config->first_offset)
        next = config->first_offset;
    log->next_offset = log->written_end = log->durable_end = next;
    if (log->mode == SF_ILOG_FSYNC_NEVER && log->nsegs > 1) {
        /* An earlier run may have rolled these without syncing them: the
         * first sf_ilog_sync covers them too. */
        log->old_unsynced = true;
        log->unsynced_base = log->segs[0];
        log->durable_end = log->segs[0];
        log->dirty = true;
        log->dirty_since = uv_hrtime();
    }
    CTR_SET(log, next_offset, next);
    CTR_SET(log, written_offset, next);
    CTR_SET(log, durable_offset, log->durable_end);
    CTR_SET(log, segments, log->nsegs);
    sf_log_info("ingress log: %s: %zu segment(s), next offset %" PRIu64 ", fsync %s", log->dir,
                log->nsegs, next, sf_ilog_fsync_name(log->mode));
    *out = log;
    return SF_OK;
fail:
    sf_ilog_free(log);
    return rv;
}

/* ------------------------------------------------------------------------ */
/* The writer thread                                                          */

/* Writes every byte of |iov| at |pos|. Counts each system call. */
static int write_all(sf_ilog_t *log, int fd, struct iovec *iov, int niov, uint64_t pos)
{
    while (niov > 0) {
        ssize_t n = pwritev(fd, iov, niov, (off_t)pos);
        CTR_ADD(log, writes, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            char path[4200];
            seg_path(log, log->active->base, path, sizeof path);
            sf_log_error("ingress log: writing %s at byte %" PRIu64 ": %s", path, pos,
                         n < 0 ? strerror(errno) : "nothing written");
            return SF_EIO;
        }
        CTR_ADD(log, bytes, (uint64_t)n);
        pos += (uint64_t)n;
        while (niov > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            niov--;
        }
        if (niov > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return SF_OK;
}

/* Starts a new segment named |base|. The previous one is made durable first
 * (unless the mode is `never`), so that records never become durable out of
 * order across segments. Writer thread. */
static int roll(sf_ilog_t *log, uint64_t base)
{
    ilog_seg_t *old = log->active, *seg;
    char path[4200];
    int fd;

    if (old && log->mode != SF_ILOG_FSYNC_NEVER) {
        if (fdatasync(old->fd) != 0) {
            seg_path(log, old->base, path, sizeof path);
            sf_log_error("ingress log: cannot sync %s: %s", path, strerror(errno));
            CTR_ADD(log, write_errors, 1);
            set_failed(log, SF_EIO);
            return SF_EIO;
        }
        CTR_ADD(log, syncs, 1);
        uv_mutex_lock(&log->mu);
        log->durable_end = log->written_end;
        log->dirty = false;
        CTR_SET(log, durable_offset, log->durable_end);
        uv_cond_broadcast(&log->synced_cv);
        uv_mutex_unlock(&log->mu);
    }
    seg_path(log, base, path, sizeof path);
    if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0) {
        sf_log_error("ingress log: cannot create %s: %s", path, strerror(errno));
        CTR_ADD(log, write_errors, 1);
        return SF_EIO;
    }
    if (log->mode != SF_ILOG_FSYNC_NEVER && fsync(log->dirfd) != 0) {
        sf_log_error("ingress log: cannot sync %s: %s", log->dir, strerror(errno));
        CTR_ADD(log, write_errors, 1);
        close(fd);
        unlink(path);
        return SF_EIO;
    }
    seg = sf_xcalloc(1, sizeof *seg);
    seg->fd = fd;
    seg->refs = 1;
    seg->base = base;
    uv_mutex_lock(&log->mu);
    if (log->nsegs == log->segs_cap) {
        log->segs_cap = log->segs_cap ? 2 * log->segs_cap : 16;
        log->segs = sf_xrealloc(log->segs, log->segs_cap * sizeof *log->segs);
    }
    log->segs[log->nsegs++] = base;
    log->active = seg;
    log->active_size = 0;
    if (old && log->mode == SF_ILOG_FSYNC_NEVER && !log->old_unsynced) {
        log->old_unsynced = true;
        log->unsynced_base = old->base;
    }
    seg_release_locked(old);
    CTR_SET(log, segments, log->nsegs);
    uv_mutex_unlock(&log->mu);
    CTR_ADD(log, segments_created, 1);
    return SF_OK;
}

/* Writes a group of batches with one pwritev (and one fdatasync in `always`
 * mode). Returns the status of every batch of the group. Writer thread. */
static int write_group(sf_ilog_t *log, ilog_batch_t *group)
{
    struct iovec iov[MAX_GROUP];
    uint64_t first = 0, end = 0, total = 0, pos;
    ilog_batch_t *b;
    int niov = 0, fd, rv;

    for (b = group; b; b = b->next) {
        if (b->nrecords == 0)
            continue;
        SF_ASSERT(niov < MAX_GROUP);
        iov[niov].iov_base = b->data.base;
        iov[niov].iov_len = b->data.len;
        if (niov++ == 0)
            first = b->first;
        end = b->end;
        total += b->data.len;
    }
    if (niov == 0)
        return SF_OK;
    if (!log->active || (log->active_size > 0 && log->active_size + total > log->segment_bytes)) {
        if ((rv = roll(log, first)) != 0)
            return rv;
    }
    fd = log->active->fd;
    pos = log->active_size;
    if ((rv = write_all(log, fd, iov, niov, pos)) != 0) {
        CTR_ADD(log, write_errors, 1);
        /* Undo a partial write, so the next batch does not follow garbage. */
        if (ftruncate(fd, (off_t)pos) != 0) {
            sf_log_error("ingress log: cannot undo a failed write: %s", strerror(errno));
            set_failed(log, SF_EIO);
        }
        return rv;
    }
    if (log->mode == SF_ILOG_FSYNC_ALWAYS) {
        if (fdatasync(fd) != 0) {
            sf_log_error("ingress log: fdatasync: %s", strerror(errno));
            CTR_ADD(log, write_errors, 1);
            set_failed(log, SF_EIO);
            return SF_EIO;
        }
        CTR_ADD(log, syncs, 1);
    }
    uv_mutex_lock(&log->mu);
    log->active_size = pos + total;
    log->written_end = end;
    CTR_SET(log, written_offset, end);
    if (log->mode == SF_ILOG_FSYNC_ALWAYS) {
        log->durable_end = end;
        CTR_SET(log, durable_offset, end);
        uv_cond_broadcast(&log->synced_cv);
    } else if (!log->dirty) {
        log->dirty = true;
        log->dirty_since = uv_hrtime();
        if (log->mode == SF_ILOG_FSYNC_INTERVAL || log->sync_requests > 0)
            uv_cond_signal(&log->syncer_cv);
    }
    uv_mutex_unlock(&log->mu);
    return SF_OK;
}

static void writer_main(void *arg)
{
    sf_ilog_t *log = arg;
    ilog_batch_t *group, *last;
    int n, status;

    sf_log_set_tag("ingress-log");
    uv_mutex_lock(&log->mu);
    for (;;) {
        while (!log->q_head && !log->stop_writer)
            uv_cond_wait(&log->writer_cv, &log->mu);
        if (!log->q_head)
            break;
        /* Everything that piled up goes in one write (up to MAX_GROUP). */
        group = last = log->q_head;
        for (n = 1; last->next && n < MAX_GROUP; n++)
            last = last->next;
        log->q_head = last->next;
        if (!log->q_head)
            log->q_tail = NULL;
        last->next = NULL;
        status = atomic_load(&log->failed);
        uv_mutex_unlock(&log->mu);

        if (status == 0)
            status = write_group(log, group);
        for (last = group; last; last = last->next)
            last->status = status;

        uv_mutex_lock(&log->mu);
        for (last = group; last->next; last = last->next)
            ;
        if (log->c_tail)
            log->c_tail->next = group;
        else
            log->c_head = group;
        log->c_tail = last;
        uv_mutex_unlock(&log->mu);
        /* MACHINE.md: uv_async_send reads its flag without a fence. */
        atomic_thread_fence(memory_order_seq_cst);
        uv_async_send(&log->async);
        uv_mutex_lock(&log->mu);
    }
    uv_mutex_unlock(&log->mu);
}

/* ------------------------------------------------------------------------ */
/* The syncer thread                                                          */

/* `never` mode rolls segments without syncing them: the bases of those still
 * unsynced before the active one, for a sync to cover (under mu). */
static size_t take_unsynced_locked(sf_ilog_t *log, uint64_t **out)
{
    size_t i, n = 0;
    *out = NULL;
    if (!log->old_unsynced)
        return 0;
    log->old_unsynced = false;
    *out = sf_xmalloc(log->nsegs * sizeof **out);
    for (i = 0; i + 1 < log->nsegs; i++)
        if (log->segs[i] >= log->unsynced_base)
            (*out)[n++] = log->segs[i];
    return n;
}

/* fdatasyncs the segment files |bases| through new descriptors (the sync
 * covers the file, whichever descriptor wrote). 0 or -1 with errno. */
static int sync_old_segments(sf_ilog_t *log, const uint64_t *bases, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        char path[4200];
        int fd, rc, err;
        seg_path(log, bases[i], path, sizeof path);
        if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
            if (errno == ENOENT) /* deleted: nothing to keep */
                continue;
            return -1;
        }
        rc = fdatasync(fd);
        err = errno;
        close(fd);
        CTR_ADD(log, syncs, 1);
        if (rc != 0) {
            errno = err;
            return -1;
        }
    }
    return 0;
}

static void syncer_main(void *arg)
{
    sf_ilog_t *log = arg;
    ilog_seg_t *seg;
    uint64_t target, now, deadline, *olds;
    size_t nolds;
    int rc, err;

    sf_log_set_tag("ingress-sync");
    uv_mutex_lock(&log->mu);
    for (;;) {
        bool due = false;
        now = uv_hrtime();
        deadline = log->dirty_since + log->interval_ns;
        if (log->dirty && atomic_load(&log->failed) == 0) {
            if (log->sync_requests > 0)
                due = true;
            else if (log->mode == SF_ILOG_FSYNC_INTERVAL && (now >= deadline || log->stop_syncer))
                due = true;
        }
        if (!due) {
            if (log->stop_syncer)
                break;
            if (log->dirty && log->mode == SF_ILOG_FSYNC_INTERVAL && atomic_load(&log->failed) == 0)
                uv_cond_timedwait(&log->syncer_cv, &log->mu, deadline - now);
            else
                uv_cond_wait(&log->syncer_cv, &log->mu);
            continue;
        }
        seg = log->active;
        seg->refs++;
        target = log->written_end;
        log->dirty = false;
        nolds = take_unsynced_locked(log, &olds);
        uv_mutex_unlock(&log->mu);

        rc = sync_old_segments(log, olds, nolds);
        if (rc == 0) {
            rc = fdatasync(seg->fd);
            CTR_ADD(log, syncs, 1);
        }
        err = errno;
        free(olds);

        uv_mutex_lock(&log->mu);
        if (rc != 0) {
            sf_log_error("ingress log: fdatasync: %s", strerror(err));
            CTR_ADD(log, write_errors, 1);
            if (atomic_load(&log->failed) == 0)
                atomic_store(&log->failed, SF_EIO);
        } else if (log->durable_end < target) {
            log->durable_end = target;
            CTR_SET(log, durable_offset, target);
        }
        seg_release_locked(seg);
        uv_cond_broadcast(&log->synced_cv);
    }
    log->syncer_running = false;
    uv_cond_broadcast(&log->synced_cv);
    uv_mutex_unlock(&log->mu);
}

/* ------------------------------------------------------------------------ */
/* The loop side                                                              */

static ilog_batch_t *batch_get(sf_ilog_t *log)
{
    ilog_batch_t *b = log->spare;
    if (b) {
        log->spare = b->next;
        log->nspare--;
    } else {
        b = sf_xcalloc(1, sizeof *b);
        sf_buf_init(&b->data, NULL);
    }
    b->next = NULL;
    sf_buf_reset(&b->data);
    b->ndones = 0;
    b->nrecords = 0;
    b->first = b->end = 0;
    b->status = 0;
    return b;
}

static void batch_free(ilog_batch_t *b)
{
    sf_buf_dispose(&b->data);
    free(b->dones);
    free(b);
}

static void batch_put(sf_ilog_t *log, ilog_batch_t *b)
{
    if (log->nspare < MAX_SPARE && b->data.cap <= SPARE_KEEP_BYTES) {
        b->next = log->spare;
        log->spare = b;
        log->nspare++;
    } else {
        batch_free(b);
    }
}

/* Hands this turn's batch to the writer. */
static void submit_cur(sf_ilog_t *log)
{
    ilog_batch_t *b = log->cur;
    if (!b)
        return;
    log->cur = NULL;
    uv_idle_stop(&log->idle);
    CTR_ADD(log, batches, 1);
    uv_mutex_lock(&log->mu);
    if (log->q_tail)
        log->q_tail->next = b;
    else
        log->q_head = b;
    log->q_tail = b;
    uv_cond_signal(&log->writer_cv);
    uv_mutex_unlock(&log->mu);
}

static void on_idle(uv_idle_t *h)
{
    submit_cur(h->data);
}

/* Runs the done callbacks of every completed batch, in order. */
static void drain_completed(sf_ilog_t *log)
{
    ilog_batch_t *b, *list;
    size_t i;
    uv_mutex_lock(&log->mu);
    list = log->c_head;
    log->c_head = log->c_tail = NULL;
    uv_mutex_unlock(&log->mu);
    while ((b = list) != NULL) {
        list = b->next;
        for (i = 0; i < b->ndones; i++)
            b->dones[i].done(b->dones[i].token, b->status);
        batch_put(log, b);
    }
}

static void on_async(uv_async_t *h)
{
    drain_completed(h->data);
}

static void on_handle_closed(uv_handle_t *h)
{
    sf_ilog_t *log = h->data;
    log->open_handles--;
}

int sf_ilog_start(sf_ilog_t *log, uv_loop_t *loop)
{
    int rc;
    SF_ASSERT(!log->started);
    log->loop = loop;
    log->started = true;
    uv_idle_init(loop, &log->idle);
    log->idle.data = log;
    if ((rc = uv_async_init(loop, &log->async, on_async)) != 0) {
        uv_close((uv_handle_t *)&log->idle, on_handle_closed);
        log->open_handles = 1;
        log->stopped = true;
        return sf_err_from_uv(rc);
    }
    log->async.data = log;
    log->open_handles = 2;
    log->syncer_running = true;
    if ((rc = uv_thread_create(&log->writer, writer_main, log)) != 0)
        goto fail;
    log->writer_started = true;
    if ((rc = uv_thread_create(&log->syncer, syncer_main, log)) != 0)
        goto fail;
    log->syncer_started = true;
    return SF_OK;
fail:
    sf_log_error("ingress log: cannot start a thread: %s", uv_strerror(rc));
    log->syncer_running = false;
    sf_ilog_stop(log);
    return sf_err_from_uv(rc);
}

int sf_ilog_append(sf_ilog_t *log, const sf_msg_fifo_t *chain, sf_ilog_done_cb done, void *token)
{
    ilog_batch_t *b;
    sf_msg_link_t *l;
    size_t old_len, old_nrecords;
    uint64_t old_next = log->next_offset;
    int rv;

    SF_ASSERT(log->started && done);
    if (log->stopped)
        return SF_ECANCELED;
    if ((rv = atomic_load_explicit(&log->failed, memory_order_relaxed)) != 0)
        return rv;
    if (!log->cur) {
        log->cur = batch_get(log);
        uv_idle_start(&log->idle, on_idle);
    }
    b = log->cur;
    old_len = b->data.len;
    old_nrecords = b->nrecords;
    for (l = chain->head; l; l = l->next) {
        sf_msg_t *m = sf_container_of(l, sf_msg_t, link);
        size_t at = b->data.len, len;
        uint8_t *p;
        m->seq = log->next_offset;
        if ((rv = sf_buf_reserve(&b->data, SF_ILOG_FRAME_BYTES)) != 0)
            goto undo;
        b->data.len += SF_ILOG_FRAME_BYTES;
        if ((rv = sf_msg_encode(m, &b->data)) != 0)
            goto undo;
        len = b->data.len - at - SF_ILOG_FRAME_BYTES;
        if (len > SF_ILOG_MAX_RECORD) {
            rv = SF_ETOOBIG;
            goto undo;
        }
        p = b->data.base + at;
        put_u32(p, (uint32_t)len);
        put_u32(p + 4, XXH32(p + SF_ILOG_FRAME_BYTES, len, 0));
        if (b->nrecords++ == 0)
            b->first = m->seq;
        b->end = ++log->next_offset;
    }
    if (b->ndones == b->dones_cap) {
        b->dones_cap = b->dones_cap ? 2 * b->dones_cap : 8;
        b->dones = sf_xrealloc(b->dones, b->dones_cap * sizeof *b->dones);
    }
    b->dones[b->ndones].done = done;
    b->dones[b->ndones].token = token;
    b->ndones++;
    CTR_ADD(log, appends, 1);
    CTR_ADD(log, records, log->next_offset - old_next);
    CTR_SET(log, next_offset, log->next_offset);
    return SF_OK;
undo:
    /* Nothing of this append is kept; its offsets go to the next one. */
    b->data.len = old_len;
    b->nrecords = old_nrecords;
    b->end = old_next;
    log->next_offset = old_next;
    return rv;
}

int sf_ilog_persist(void *log, const sf_msg_fifo_t *chain, sf_ilog_done_cb done, void *token)
{
    return sf_ilog_append(log, chain, done, token);
}

void sf_ilog_on_start(void *log, uv_loop_t *loop)
{
    int rv = sf_ilog_start(log, loop);
    if (rv != 0)
        sf_log_error("ingress log: cannot start: %s", sf_strerror(rv));
}

void sf_ilog_on_stop(void *log, uv_loop_t *loop)
{
    (void)loop;
    sf_ilog_stop(log);
}

void sf_ilog_stop(sf_ilog_t *log)
{
    if (!log->started || (log->stopped && !log->writer_started && !log->syncer_started))
        return;
    log->stopped = true;
    submit_cur(log);
    uv_mutex_lock(&log->mu);
    log->stop_writer = true;
    uv_cond_signal(&log->writer_cv);
    uv_mutex_unlock(&log->mu);
    if (log->writer_started) {
        uv_thread_join(&log->writer);
        log->writer_started = false;
    }
    /* The syncer goes last: in `interval` mode it syncs what the writer wrote. */
    uv_mutex_lock(&log->mu);
    log->stop_syncer = true;
    uv_cond_signal(&log->syncer_cv);
    uv_mutex_unlock(&log->mu);
    if (log->syncer_started) {
        uv_thread_join(&log->syncer);
        log->syncer_started = false;
    }
    /* Batches the writer never saw (it could not start) fail. */
    uv_mutex_lock(&log->mu);
    while (log->q_head) {
        ilog_batch_t *b = log->q_head;
        log->q_head = b->next;
        b->next = NULL;
        b->status = SF_ECANCELED;
        if (log->c_tail)
            log->c_tail->next = b;
        else
            log->c_head = b;
        log->c_tail = b;
    }
    log->q_tail = NULL;
    uv_mutex_unlock(&log->mu);
    drain_completed(log);
    if (!uv_is_closing((uv_handle_t *)&log->idle))
        uv_close((uv_handle_t *)&log->idle, on_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&log->async))
        uv_close((uv_handle_t *)&log->async, on_handle_closed);
}

void sf_ilog_free(sf_ilog_t *log)
{
    ilog_batch_t *b;
    if (!log)
        return;
    SF_ASSERT(!log->started || (log->stopped && log->open_handles == 0));
    SF_ASSERT(!log->writer_started && !log->syncer_started);
    SF_ASSERT(!log->cur && !log->q_head && !log->c_head);
    while ((b = log->spare) != NULL) {
        log->spare = b->next;
        batch_free(b);
    }
    if (log->active) {
        SF_ASSERT(log->active->refs == 1);
        seg_release_locked(log->active);
    }
    if (log->dirfd >= 0)
        close(log->dirfd); /* releases the lock */
    uv_cond_destroy(&log->synced_cv);
    uv_cond_destroy(&log->syncer_cv);
    uv_cond_destroy(&log->writer_cv);
    uv_mutex_destroy(&log->mu);
    free(log->segs);
    free(log->dir);
    free(log);
}

/* ------------------------------------------------------------------------ */
/* Replay, truncation, sync, counters                                         */

int sf_ilog_replay(sf_ilog_t *log, uint64_t from, sf_ilog_replay_cb cb, void *user_data)
{
    uint64_t *segs, last_limit, prev = 0, at = 0;
    const uint8_t *payload;
    bool have_prev = false;
    size_t n, i;
    uint32_t len;
    int rv = SF_OK;

    uv_mutex_lock(&log->mu);
    n = log->nsegs;
    segs = sf_xmalloc((n ? n : 1) * sizeof *segs);
    if (n > 0)
        memcpy(segs, log->segs, n * sizeof *segs);
    last_limit = log->active_size;
    uv_mutex_unlock(&log->mu);

    /* Segment i holds offsets in [segs[i], segs[i + 1]). */
    for (i = 0; i + 1 < n && segs[i + 1] <= from; i++)
        ;
    for (; i < n && rv == SF_OK; i++) {
        char path[4200];
        ilog_reader_t r;
        struct stat st;
        int fd, rc;

        seg_path(log, segs[i], path, sizeof path);
        if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
            if (errno == ENOENT) /* deleted by sf_ilog_truncate_before meanwhile */
                continue;
            sf_log_error("ingress log: cannot open %s: %s", path, strerror(errno));
            rv = SF_EIO;
            break;
        }
        if (fstat(fd, &st) != 0) {
            sf_log_error("ingress log: cannot stat %s: %s", path, strerror(errno));
            close(fd);
            rv = SF_EIO;
            break;
        }
        reader_init(&r, fd, i + 1 == n ? last_limit : (uint64_t)st.st_size, path);
        while ((rc = reader_next(&r, &payload, &len, &at)) == REC_OK) {
            sf_msg_t *m;
            if (sf_msg_decode(payload, len, log->max_parallelism, &m, NULL) != 0) {
                sf_log_error("ingress log: %s: the record at byte %" PRIu64
                             " is intact but not a message this version can read",
                             path, at);
                rv = SF_EPROTO;
                break;
            }
            if (have_prev && m->seq <= prev) {
                sf_log_error("ingress log: %s: offset %" PRIu64 " at byte %" PRIu64
                             " does not follow %" PRIu64,
                             path, m->seq, at, prev);
                sf_msg_free(m);
                rv = SF_EPROTO;
                break;
            }
            prev = m->seq;
            have_prev = true;
            if (m->seq < from) {
                sf_msg_free(m);
                continue;
            }
            if ((rv = cb(user_data, m)) < 0)
                break;
            rv = SF_OK;
        }
        if (rc < 0 && rv == SF_OK) {
            rv = rc;
        } else if ((rc == REC_TORN || rc == REC_BAD) && rv == SF_OK) {
            uint64_t end = i + 1 == n ? last_limit : (uint64_t)st.st_size;
            sf_log_error("ingress log: %s: %" PRIu64 " bytes from byte %" PRIu64
                         " cannot be read (%s) and are skipped: messages in them are lost",
                         path, end - at, at, rec_why(rc));
        }
        reader_dispose(&r);
        close(fd);
    }
    free(segs);
    return rv;
}

ssize_t sf_ilog_truncate_before(sf_ilog_t *log, uint64_t offset)
{
    uint64_t *doomed;
    size_t k = 0, i;
    ssize_t rv;

    uv_mutex_lock(&log->mu);
    while (k + 1 < log->nsegs && log->segs[k + 1] <= offset)
        k++;
    doomed = sf_xmalloc((k ? k : 1) * sizeof *doomed);
    if (k > 0) {
        memcpy(doomed, log->segs, k * sizeof *doomed);
        memmove(log->segs, log->segs + k, (log->nsegs - k) * sizeof *log->segs);
        log->nsegs -= k;
    }
    CTR_SET(log, segments, log->nsegs);
    uv_mutex_unlock(&log->mu);

    rv = (ssize_t)k;
    for (i = 0; i < k; i++) {
        char path[4200];
        seg_path(log, doomed[i], path, sizeof path);
        if (unlink(path) != 0 && errno != ENOENT) {
            sf_log_error("ingress log: cannot delete %s: %s", path, strerror(errno));
            rv = SF_EIO;
        }
    }
    if (k > 0) {
        CTR_ADD(log, segments_deleted, k);
        sf_log_debug("ingress log: deleted %zu segment(s) below offset %" PRIu64, k, offset);
    }
    free(doomed);
    return rv;
}

int sf_ilog_sync(sf_ilog_t *log)
{
    uint64_t target;
    int rv;

    uv_mutex_lock(&log->mu);
    target = log->written_end;
    if (log->durable_end < target && !log->syncer_running && log->active &&
        atomic_load(&log->failed) == 0) {
        /* No syncer (not started or stopped): sync here. */
        uint64_t *olds;
        size_t nolds = take_unsynced_locked(log, &olds);
        int rc = sync_old_segments(log, olds, nolds);
        free(olds);
        if (rc == 0 && fdatasync(log->active->fd) == 0) {
            CTR_ADD(log, syncs, 1);
            log->durable_end = target;
            log->dirty = false;
            CTR_SET(log, durable_offset, target);
        } else {
            sf_log_error("ingress log: fdatasync: %s", strerror(errno));
            CTR_ADD(log, write_errors, 1);
            atomic_store(&log->failed, SF_EIO);
        }
    }
    log->sync_requests++;
    uv_cond_signal(&log->syncer_cv);
    while (log->durable_end < target && atomic_load(&log->failed) == 0 && log->syncer_running)
        uv_cond_wait(&log->synced_cv, &log->mu);
    log->sync_requests--;
    if (log->durable_end >= target)
        rv = SF_OK;
    else if ((rv = atomic_load(&log->failed)) == 0)
        rv = SF_ECANCELED;
    uv_mutex_unlock(&log->mu);
    return rv;
}

uint64_t sf_ilog_next_offset(const sf_ilog_t *log)
{
    return atomic_load_explicit(&log->ctr.next_offset, memory_order_relaxed);
}

uint64_t sf_ilog_first_offset(sf_ilog_t *log)
{
    uint64_t v;
    uv_mutex_lock(&log->mu);
    v = log->nsegs ? log->segs[0] : sf_ilog_next_offset(log);
    uv_mutex_unlock(&log->mu);
    return v;
}

void sf_ilog_stats(const sf_ilog_t *log, sf_ilog_stats_t *out)
{
#define LOAD(f) out->f = atomic_load_explicit(&log->ctr.f, memory_order_relaxed)
    LOAD(records);
    LOAD(appends);
    LOAD(batches);
    LOAD(writes);
    LOAD(syncs);
    LOAD(bytes);
    LOAD(write_errors);
    LOAD(segments_created);
    LOAD(segments_deleted);
    LOAD(torn_bytes);
    LOAD(next_offset);
    LOAD(written_offset);
    LOAD(durable_offset);
    LOAD(segments);
#undef LOAD
}
