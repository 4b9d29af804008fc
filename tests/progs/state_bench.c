/* statefun-c: Apache License 2.0.
 *
 * state_bench: loads N addresses with one state of V bytes each into a state
 * backend and reports the rates and memory of the operations the runtime
 * performs: batched puts (one commit per B states, as a loop turn commits),
 * single-put commits, uniform random gets (a first pass, then warm), a
 * checkpoint, RSS and disk use.
 *
 *   state_bench [--backend rocksdb|memory] [--n N] [--value-size V]
 *               [--batch B] [--gets G] [--singles S] [--max-parallelism P]
 *               [--dir DIR] [--block-cache-mib M]
 *
 * Without --dir a temporary directory is used and removed at the end. The
 * program runs on one thread, like one worker.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "message.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* VmRSS and VmHWM of this process, in MiB. */
static void rss_mib(double *rss, double *hwm)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    *rss = *hwm = 0;
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        unsigned long kb;
        if (sscanf(line, "VmRSS: %lu kB", &kb) == 1)
            *rss = (double)kb / 1024;
        else if (sscanf(line, "VmHWM: %lu kB", &kb) == 1)
            *hwm = (double)kb / 1024;
    }
    fclose(f);
}

static double dir_mib(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    double total = 0;
    if (!d)
        return 0;
    while ((e = readdir(d)) != NULL) {
        char p[4096];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (lstat(p, &st) == 0 && S_ISREG(st.st_mode))
            total += (double)st.st_blocks * 512;
    }
    closedir(d);
    return total / (1 << 20);
}

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

/* Random bytes: state values rarely compress as well as a repeated pattern. */
static void fill_random(uint8_t *p, size_t n)
{
    while (n >= 8) {
        uint64_t x = rnd();
        memcpy(p, &x, 8);
        p += 8;
        n -= 8;
    }
    while (n--)
        *p++ = (uint8_t)rnd();
}

/* Address i: "bench/counter/<i>", its key group and the id slice. */
typedef struct {
    char text[64];
    sf_addr_t addr;
    uint16_t kg;
} bench_addr_t;

static void make_addr(bench_addr_t *a, uint64_t i, uint32_t maxp)
{
    int n = snprintf(a->text, sizeof a->text, "bench/counter/%llu", (unsigned long long)i);
    a->addr.ns = a->text;
    a->addr.ns_len = 5;
    a->addr.type = a->text + 6;
    a->addr.type_len = 7;
    a->addr.id = a->text + 14;
    a->addr.id_len = (size_t)n - 14;
    a->kg = sf_key_group(a->text, (size_t)n, maxp);
}

static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        char p[4096];
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_dir(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static void die(const char *what, int rv)
{
    fprintf(stderr, "state_bench: %s: %s\n", what, sf_strerror(rv));
    exit(1);
}

int main(int argc, char **argv)
{
    const char *kind = "rocksdb", *dir = NULL;
    uint64_t n = 1000000, gets = 0, singles = 100000, i;
    size_t vsize = 100, batch_size = 100, cache_mib = 0;
    uint32_t maxp = 128;
    char tmpdir[] = "/tmp/sf-state-bench-XXXXXX", live[4200], cp[4200];
    sf_state_options_t o;
    sf_state_backend_t *b;
    sf_state_batch_t *batch;
    sf_state_value_t v;
    sf_buf_t buf;
    bench_addr_t a;
    uint8_t *value;
    double t0, t, rss, hwm;
    uint64_t found = 0;
    int rv, k;

    for (k = 1; k < argc; k++) {
        const char *arg = argv[k], *val = k + 1 < argc ? argv[k + 1] : NULL;
        if (!val) {
            fprintf(stderr, "usage: see the header of tests/progs/state_bench.c\n");
            return 2;
        }
        if (strcmp(arg, "--backend") == 0)
            kind = val;
        else if (strcmp(arg, "--n") == 0)
            n = strtoull(val, NULL, 10);
        else if (strcmp(arg, "--value-size") == 0)
            vsize = strtoull(val, NULL, 10);
        else if (strcmp(arg, "--batch") == 0)
            batch_size = strtoull(val, NULL, 10);
        else if (strcmp(arg, "--gets") == 0)
            gets = strtoull(val, NULL, 10);
        else if (strcmp(arg, "--singles") == 0)
            singles = strtoull(val, NULL, 10);
        else if (strcmp(arg, "--max-parallelism") == 0)
            maxp = (uint32_t)strtoul(val, NULL, 10);
        else if (strcmp(arg, "--dir") == 0)
            dir = val;
        else if (strcmp(arg, "--block-cache-mib") == 0)
            cache_mib = strtoull(val, NULL, 10);
        else {
            fprintf(stderr, "state_bench: unknown option %s\n", arg);
            return 2;
        }
        k++;
    }
    if (n == 0 || batch_size == 0)
        return 2;
    if (gets == 0)
        gets = n;
    if (!dir) {
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            return 1;
        }
    }
    snprintf(live, sizeof live, "%s/db", dir ? dir : tmpdir);
    snprintf(cp, sizeof cp, "%s/checkpoint", dir ? dir : tmpdir);

    sf_state_options_init(&o);
    o.kind = kind;
    o.dir = live;
    o.max_parallelism = maxp;
    if (cache_mib)
        o.block_cache_bytes = cache_mib << 20;
    if ((rv = sf_state_open2(&o, &b)) != 0)
        die("open", rv);
    sf_state_batch_new(b, &batch);
    sf_buf_init(&buf, NULL);
    value = malloc(vsize ? vsize : 1);
    fill_random(value, vsize);

    rss_mib(&rss, &hwm);
    printf("backend=%s n=%llu value=%zu batch=%zu max_parallelism=%u (RSS at start %.0f MiB)\n",
           kind, (unsigned long long)n, vsize, batch_size, maxp, rss);

    /* Load: one commit per batch_size puts. */
    t0 = now_s();
    for (i = 0; i < n; i++) {
        make_addr(&a, i, maxp);
        fill_random(value, vsize);
        sf_state_batch_put(batch, a.kg, &a.addr, "count", "io.statefun.types/long", value, vsize,
                           SF_STATE_TTL_NONE, 0, 0);
        if (sf_state_batch_count(batch) >= batch_size && (rv = sf_state_batch_commit(batch)) != 0)
            die("commit", rv);
    }
    if ((rv = sf_state_batch_commit(batch)) != 0)
        die("commit", rv);
    t = now_s() - t0;
    rss_mib(&rss, &hwm);
    printf("load:    %llu puts in batches of %zu: %.2f s = %.0f puts/s; RSS %.0f MiB\n",
           (unsigned long long)n, batch_size, t, (double)n / t, rss);

    /* Single-put commits: one WriteBatch per state, overwriting. */
    t0 = now_s();
    for (i = 0; i < singles; i++) {
        make_addr(&a, rnd() % n, maxp);
        sf_state_batch_put(batch, a.kg, &a.addr, "count", "io.statefun.types/long", value, vsize,
                           SF_STATE_TTL_NONE, 0, 0);
        if ((rv = sf_state_batch_commit(batch)) != 0)
            die("commit", rv);
    }
    t = now_s() - t0;
    if (singles)
        printf("singles: %llu single-put commits: %.2f s = %.0f puts/s\n",
               (unsigned long long)singles, t, (double)singles / t);

    /* Gets: a first uniform pass, then a warm one. */
    for (k = 0; k < 2; k++) {
        found = 0;
        t0 = now_s();
        for (i = 0; i < gets; i++) {
            make_addr(&a, rnd() % n, maxp);
            rv = sf_state_get(b, NULL, a.kg, &a.addr, "count", 0, 0, &buf, &v);
            if (rv < 0)
                die("get", rv);
            found += (uint64_t)rv;
        }
        t = now_s() - t0;
        rss_mib(&rss, &hwm);
        printf("gets:    %llu uniform random (%s pass): %.2f s = %.0f gets/s, %llu found; RSS "
               "%.0f MiB\n",
               (unsigned long long)gets, k == 0 ? "first" : "warm", t, (double)gets / t,
               (unsigned long long)found, rss);
    }

    /* A checkpoint of everything loaded. */
    t0 = now_s();
    if ((rv = sf_state_checkpoint(b, cp)) != 0)
        die("checkpoint", rv);
    t = now_s() - t0;
    printf("checkpoint: %.1f ms (%.0f MiB in the checkpoint dir%s)\n", t * 1000, dir_mib(cp),
           strcmp(kind, "rocksdb") == 0 ? ", hard-linked tables counted" : "");

    rss_mib(&rss, &hwm);
    printf("memory:  RSS %.0f MiB, peak %.0f MiB", rss, hwm);
    if (strcmp(kind, "rocksdb") == 0)
        printf("; live dir %.0f MiB on disk", dir_mib(live));
    printf("\n");

    free(value);
    sf_buf_dispose(&buf);
    sf_state_batch_free(batch);
    sf_state_close(b);
    if (!dir)
        rm_dir(tmpdir);
    return found == gets ? 0 : 1;
}
