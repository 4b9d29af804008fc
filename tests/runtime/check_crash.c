/* statefun-c: Apache License 2.0.
 *
 * The randomized crash test of the checkpoint issue, in the spirit of
 * StateFun's smoke test (statefun-smoke-e2e): a command interpreter
 * (tests/modules/crash: increment a counter, send commands to other
 * addresses, send them after a delay, send after and cancel, emit egress
 * records, verify) driven through the playground ingress by a seeded random
 * generator over many addresses, while the runtime is killed with SIGKILL at
 * random moments (now and then also while it recovers from the previous
 * kill) and restarted on the same state dir. Run with the function
 * remote (tests/progs/crash_fn, C SDK over HTTP/2, started once and kept up
 * across the runtime's crashes) and embedded (libcrash.so).
 *
 * The driver (sender threads) counts a message as accepted only when the
 * ingress answered 200. A request that was written whole but got no answer
 * (the runtime died meanwhile) has an unknown outcome and is never sent
 * again; since every command list starts with an egress record, the
 * message's first record (its marker) tells afterwards whether the runtime
 * accepted it, and then all of its effects must show, else none. This keeps
 * every final assertion exact:
 *
 *   - every egress record of an accepted message appears exactly once, in
 *     the offset read of the whole topic at the end (GET /crash?from=0), and
 *     nothing else does: no record of a cancelled delayed message ("x..."),
 *     no unknown id;
 *   - a message of unknown outcome shows all of its records once, or none;
 *   - every address's counter, read through the admin API after a graceful
 *     stop and restart, equals the sum of the increments of the accepted
 *     messages;
 *   - a verification command sent to every address, followed by one more
 *     kill -9, yields exactly one record "vID=COUNTER" per address with the
 *     expected counter;
 *   - a reader that popped the topic (GET /crash?wait=...) all along, through
 *     the crashes, saw each record once, at the offset the final read has it
 *     at, and missed only records whose pop answer a crash cut off.
 *
 * Knobs (environment): SF_CRASH_SEED (default: from the clock, printed),
 * SF_CRASH_KILLS (10), SF_CRASH_MESSAGES (1500: the least the driver sends;
 * it goes on until the kills are done), SF_CRASH_ADDRESSES (64),
 * SF_CRASH_RATE (messages per second, 300), SF_CRASH_SENDERS (4),
 * SF_CRASH_RECOVERY_KILLS (25: the percentage of kills followed by one more
 * kill 0..200 ms into the restart, while the runtime recovers),
 * SF_CRASH_BACKEND (rocksdb), SF_CRASH_KEEP=1 keeps the temporary directory.
 * The whole suite runs only with SF_CRASH_TEST=1 (it needs the durable
 * ingress log and exactly-once egress); otherwise it reports itself skipped.
 *
 * Threads: the test's main thread starts, kills and restarts the processes;
 * sender threads post messages; one reader thread pops the egress topic.
 * Every wait is bounded; every process is killed by PID and reaped.
 */
#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crash_model.h"
#include "e2e.h"
#include "testutil.h"

#define FN_TYPE_PATH "/statefun.smoke/cmd/"
#define COMMANDS_CT "application/vnd.statefun.smoke/Commands"
#define TOPIC "crash"
#define START_MS 30000        /* a (re)start of the runtime until it answers */
#define SETTLE_MS 30000       /* until every expected record is visible */
#define REQUEST_MS 10000      /* one HTTP request */
#define SEND_GIVE_UP_MS 60000 /* one message refused for that long: the run is broken */
#define MAX_ERRORS 60         /* error lines kept for the report */
#define MAX_KINDS 32          /* kinds of error (by format) counted */
#define LINES_PER_KIND 4      /* error lines kept per kind */

/* One popped egress record. */
typedef struct {
    int64_t offset;
    char *payload;
} rec_t;

typedef struct {
    rec_t *v;
    size_t n, cap;
} recs_t;

typedef struct crash_s crash_t;

typedef struct {
    crash_t *t;
    uint32_t lane;
    pthread_t thread;
    sf_crash_gen_t gen;
    sf_crash_msg_t *msgs;
    size_t nmsgs, cap;
    uint64_t acked, unknown, retries;
} sender_t;

struct crash_s {
    /* Parameters. */
    bool remote;
    uint64_t seed;
    int kills, min_messages, naddr, rate, nsenders;
    int recovery_pct; /* chance of one more kill during the recovery after a kill */
    const char *backend;
    /* Processes and places. */
    sf_e2e_rt_t rt; /* its dir holds module.yaml, run.log and state/ */
    char fn_bin[1024];
    pid_t fn_pid;
    int starts;
    /* Shared with the threads. */
    _Atomic bool kills_done, stop_senders, reader_drain, reader_stop;
    _Atomic int sent;
    pthread_mutex_t lock;
    char *errors[MAX_ERRORS]; /* under |lock|: the first lines of each kind */
    int nlines;               /* under |lock| */
    int nerrors;              /* under |lock|: all of them */
    struct {
        const char *fmt;
        int count;
    } kinds[MAX_KINDS]; /* under |lock| */
    int nkinds;         /* under |lock| */
    /* Senders and the popping reader. */
    sender_t *senders;
    pthread_t reader;
    recs_t popped;         /* reader thread only until joined */
    uint64_t unknown_pops; /* reader thread only until joined */
    /* The model, built once the senders are done. */
    uint64_t id_end;
    int32_t *owner; /* id -> message index in |all|, or -1 */
    sf_crash_msg_t **all;
    size_t nall;
    int64_t *expected; /* per address */
};

/* ------------------------------------------------------------------------ */
/* Small things                                                               */

static int env_int(const char *name, int def, int min)
{
    const char *s = getenv(name);
    int v = s && *s ? atoi(s) : def;
    return v < min ? min : v;
}

/*
 * Records an error line (any thread). Errors are grouped by their format:
 * the first few lines of each kind are kept, and every kind is counted.
 */
static void report(crash_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(crash_t *t, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    int k;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&t->lock);
    for (k = 0; k < t->nkinds && t->kinds[k].fmt != fmt; k++)
        ;
    if (k == t->nkinds && k < MAX_KINDS) {
        t->kinds[k].fmt = fmt;
        t->kinds[k].count = 0;
        t->nkinds++;
    }
    if (k < t->nkinds && t->kinds[k].count++ < LINES_PER_KIND && t->nlines < MAX_ERRORS)
        t->errors[t->nlines++] = strdup(line);
    t->nerrors++;
    pthread_mutex_unlock(&t->lock);
}

static int nerrors(crash_t *t)
{
    int n;
    pthread_mutex_lock(&t->lock);
    n = t->nerrors;
    pthread_mutex_unlock(&t->lock);
    return n;
}

static void kill_live(void);

static bool keep_dir(void)
{
    const char *keep = getenv("SF_CRASH_KEEP");
    return keep && strcmp(keep, "1") == 0;
}

/*
 * Fails the test after killing the processes it started and removing its
 * directory (unless SF_CRASH_KEEP=1): Check ends a failed test with _exit,
 * so nothing else would.
 */
#define crash_abort(...)                                                                           \
    do {                                                                                           \
        kill_live();                                                                               \
        ck_abort_msg(__VA_ARGS__);                                                                 \
    } while (0)

/* Prints every recorded error and the log's tail, then fails the test. */
static void report_and_assert(crash_t *t, const char *phase)
{
    int i, n = nerrors(t);
    if (n == 0)
        return;
    fprintf(stderr, "runtime_crash(%s, seed %llu): %d error(s) %s, by kind:\n",
            t->remote ? "remote" : "embedded", (unsigned long long)t->seed, n, phase);
    for (i = 0; i < t->nkinds; i++)
        fprintf(stderr, "  %6d x %s\n", t->kinds[i].count, t->kinds[i].fmt);
    fprintf(stderr, "first lines of each kind:\n");
    for (i = 0; i < t->nlines; i++)
        fprintf(stderr, "  %s\n", t->errors[i]);
    sf_e2e_rt_dump_log(&t->rt, 40);
    if (keep_dir())
        fprintf(stderr, "kept %s\n", t->rt.dir);
    crash_abort("%d error(s) %s (seed %llu); first: %s", n, phase, (unsigned long long)t->seed,
                t->errors[0]);
}

static void recs_push(recs_t *r, int64_t offset, const char *payload, size_t len)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 1024;
        r->v = realloc(r->v, r->cap * sizeof *r->v);
        ck_assert_ptr_nonnull(r->v);
    }
    r->v[r->n].offset = offset;
    r->v[r->n].payload = strndup(payload, len);
    ck_assert_ptr_nonnull(r->v[r->n].payload);
    r->n++;
}

static void recs_dispose(recs_t *r)
{
    size_t i;
    for (i = 0; i < r->n; i++)
        free(r->v[i].payload);
    free(r->v);
    memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------------------ */
/* Processes                                                                  */

/*
 * The running test, for crash_abort. Its processes die with it anyway
 * (sf_test_die_with_parent); they are killed first so that its directory
 * can be removed (unless SF_CRASH_KEEP=1). Main thread only.
 */
static crash_t *live;

static void kill_live(void)
{
    crash_t *t = live;
    if (!t)
        return;
    live = NULL;
    sf_e2e_rt_kill(&t->rt);
    if (t->fn_pid > 0) {
        kill(t->fn_pid, SIGKILL);
        waitpid(t->fn_pid, NULL, 0);
        t->fn_pid = -1;
    }
    if (!keep_dir()) {
        sf_test_rmtree(t->rt.dir);
        t->rt.dir = NULL;
    }
}

static void write_yaml(crash_t *t, uint16_t fn_port)
{
    char lib[1024];
    if (t->remote) {
        sf_e2e_rt_module(&t->rt, TOPIC, "exactly-once",
                         "kind: io.statefun.endpoints.v2/http\n"
                         "spec:\n"
                         "  functions: statefun.smoke/*\n"
                         "  urlPathTemplate: http://127.0.0.1:%u/\n"
                         "  transport:\n"
                         "    type: io.statefun.transports.v1/async\n"
                         "    protocol: h2c\n",
                         fn_port);
    } else {
        sf_e2e_build_path(lib, sizeof lib, "tests/libcrash.so");
        sf_e2e_rt_module(&t->rt, TOPIC, "exactly-once",
                         "kind: statefun.c.v1/embedded\n"
                         "spec:\n"
                         "  library: %s\n"
                         "  functions: statefun.smoke/*\n",
                         lib);
    }
}

/* Starts statefun on the state dir, without waiting for it (other threads run meanwhile). */
static void rt_spawn(crash_t *t)
{
    sf_e2e_rt_spawn(&t->rt, "--state-backend", t->backend, "--checkpoint-interval", "200ms",
                    "--workers", "2", NULL);
    t->starts++;
}

/* Starts statefun and waits until it has recovered and answers. */
static void rt_start(crash_t *t)
{
    int rv;
    rt_spawn(t);
    if ((rv = sf_e2e_rt_wait(&t->rt, START_MS)) != 0) {
        sf_e2e_rt_dump_log(&t->rt, 40);
        crash_abort("statefun %s within %d ms of start %d", rv == -1 ? "exited" : "did not answer",
                    START_MS, t->starts);
    }
}

/* SIGTERM and wait for a clean exit (status 0); SIGKILL after SF_E2E_STOP_MS. */
static void rt_stop(crash_t *t)
{
    int st = sf_e2e_rt_stop(&t->rt);
    if (st != 0)
        report(t, "graceful stop: statefun did not exit with status 0 (%d; -1: killed)", st);
}

/* ------------------------------------------------------------------------ */
/* Sender threads                                                             */

/* Sends |m| until the ingress accepted it or the outcome is unknown. */
static void send_one(sender_t *s, sf_e2e_conn_t *conn, sf_crash_msg_t *m)
{
    crash_t *t = s->t;
    char path[64];
    int64_t give_up = sf_e2e_now_ms() + SEND_GIVE_UP_MS;

    snprintf(path, sizeof path, FN_TYPE_PATH "%u", m->target);
    for (;;) {
        sf_e2e_resp_t resp;
        sf_e2e_http_outcome o = sf_e2e_conn_request(conn, "PUT", path, COMMANDS_CT, m->body,
                                                    m->body_len, REQUEST_MS, &resp);
        if (o == SF_E2E_HTTP_UNKNOWN) {
            m->outcome = SF_CRASH_UNKNOWN;
            s->unknown++;
            return;
        }
        if (o == SF_E2E_HTTP_DONE) {
            int status = resp.status;
            if (status == 200) {
                sf_e2e_resp_dispose(&resp);
                m->outcome = SF_CRASH_ACKED;
                s->acked++;
                return;
            }
            if (status != 503) {
                report(t, "ingress answered %d to %s: %s", status, path, resp.body);
                sf_e2e_resp_dispose(&resp);
                atomic_store(&t->stop_senders, true);
                return;
            }
            sf_e2e_resp_dispose(&resp);
        }
        /* Refused (the runtime is down) or 503: not accepted, send it again. */
        s->retries++;
        if (sf_e2e_now_ms() > give_up || atomic_load(&t->stop_senders)) {
            if (sf_e2e_now_ms() > give_up)
                report(t, "a message to %s was refused for %d ms", path, SEND_GIVE_UP_MS);
            atomic_store(&t->stop_senders, true);
            return;
        }
        sf_e2e_sleep_ms(10 + (int)(sf_crash_rng_next(&s->gen.rng) % 20));
    }
}

static void *sender_main(void *arg)
{
    sender_t *s = arg;
    crash_t *t = s->t;
    sf_e2e_conn_t conn;
    int64_t interval_us = (int64_t)t->nsenders * 1000000 / t->rate;
    int64_t next = sf_e2e_now_ms() * 1000;

    sf_e2e_conn_init(&conn, t->rt.ingress);
    while (!atomic_load(&t->stop_senders)) {
        sf_crash_msg_t *m;
        int64_t now;
        if (atomic_load(&t->kills_done) && atomic_load(&t->sent) >= t->min_messages)
            break;
        if (s->nmsgs == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 256;
            s->msgs = realloc(s->msgs, s->cap * sizeof *s->msgs);
            if (!s->msgs) {
                report(t, "out of memory");
                break;
            }
        }
        m = &s->msgs[s->nmsgs];
        if (sf_crash_gen_msg(&s->gen, m) != 0) {
            report(t, "out of memory");
            break;
        }
        s->nmsgs++;
        send_one(s, &conn, m);
        atomic_fetch_add(&t->sent, 1);
        /* Pace: one message per interval on average, never catching up in a burst. */
        next += interval_us;
        now = sf_e2e_now_ms() * 1000;
        if (next > now)
            sf_e2e_sleep_ms((int)((next - now) / 1000));
        else
            next = now;
    }
    sf_e2e_conn_dispose(&conn);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* The popping reader                                                         */

static void *reader_main(void *arg)
{
    crash_t *t = arg;
    sf_e2e_conn_t conn;
    sf_e2e_conn_init(&conn, t->rt.egress);
    while (!atomic_load(&t->reader_stop)) {
        bool drain = atomic_load(&t->reader_drain);
        sf_e2e_resp_t resp;
        sf_e2e_http_outcome o =
            sf_e2e_conn_request(&conn, "GET", drain ? "/" TOPIC : "/" TOPIC "?wait=300ms", NULL,
                                NULL, 0, REQUEST_MS, &resp);
        if (o == SF_E2E_HTTP_DONE) {
            int status = resp.status;
            if (status == 200) {
                if (resp.offset < 0)
                    report(t, "a popped record has no X-Statefun-Offset: %s", resp.body);
                recs_push(&t->popped, resp.offset, resp.body, resp.len);
            } else if (status == 404 && drain) {
                sf_e2e_resp_dispose(&resp);
                break;
            } else if (status != 404 && status != 503) {
                report(t, "egress answered %d: %s", status, resp.body);
            }
            sf_e2e_resp_dispose(&resp);
            if (status == 503)
                sf_e2e_sleep_ms(20);
            continue;
        }
        if (o == SF_E2E_HTTP_UNKNOWN)
            t->unknown_pops++; /* a record may have been popped and its answer lost */
        sf_e2e_sleep_ms(10);
    }
    sf_e2e_conn_dispose(&conn);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Reading the results                                                        */

/* A GET that must be answered (retried while refused or 503). */
static int get(crash_t *t, uint16_t port, const char *path, sf_e2e_resp_t *resp)
{
    sf_e2e_conn_t conn;
    int64_t deadline = sf_e2e_now_ms() + REQUEST_MS;
    sf_e2e_conn_init(&conn, port);
    for (;;) {
        sf_e2e_http_outcome o =
            sf_e2e_conn_request(&conn, "GET", path, NULL, NULL, 0, REQUEST_MS, resp);
        if (o == SF_E2E_HTTP_DONE && resp->status != 503)
            break;
        if (o == SF_E2E_HTTP_DONE)
            sf_e2e_resp_dispose(resp);
        if (sf_e2e_now_ms() > deadline) {
            sf_e2e_conn_dispose(&conn);
            return -1;
        }
        sf_e2e_sleep_ms(20);
    }
    sf_e2e_conn_dispose(&conn);
    return 0;
}

/* Reads the whole topic without consuming it (?from=&max=) into |out|. */
static void read_topic(crash_t *t, recs_t *out)
{
    int64_t from = 0;
    memset(out, 0, sizeof *out);
    for (;;) {
        char path[128];
        sf_e2e_resp_t resp;
        char *line, *save = NULL;
        size_t before = out->n;
        int64_t start = from;
        snprintf(path, sizeof path, "/" TOPIC "?from=%lld&max=10000", (long long)from);
        if (get(t, t->rt.egress, path, &resp) != 0) {
            report(t, "egress read %s: no answer", path);
            return;
        }
        if (resp.status != 200) {
            report(t, "egress read %s answered %d: %s", path, resp.status, resp.body);
            sf_e2e_resp_dispose(&resp);
            return;
        }
        for (line = strtok_r(resp.body, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            json_error_t jerr;
            json_t *j = json_loads(line, 0, &jerr), *off, *pay;
            if (!j || !json_is_integer(off = json_object_get(j, "offset")) ||
                !json_is_string(pay = json_object_get(j, "payload"))) {
                report(t, "egress read: bad line '%.100s'", line);
            } else {
                int64_t o = (int64_t)json_integer_value(off);
                if (out->n && o <= out->v[out->n - 1].offset)
                    report(t, "egress read: offset %lld after %lld", (long long)o,
                           (long long)out->v[out->n - 1].offset);
                recs_push(out, o, json_string_value(pay), json_string_length(pay));
                from = o + 1;
            }
            json_decref(j);
        }
        sf_e2e_resp_dispose(&resp);
        if (out->n == before || from <= start)
            return;
    }
}

/* The counter of address |a| through the admin API (0 when it has no state), or -1. */
static int64_t read_counter(crash_t *t, int a)
{
    char path[128];
    sf_e2e_resp_t resp;
    json_error_t jerr;
    json_t *j, *v;
    int64_t value = -1;
    snprintf(path, sizeof path, "/v1/state" FN_TYPE_PATH "%d", a);
    if (get(t, t->rt.admin, path, &resp) != 0)
        return -1;
    if (resp.status == 404) {
        sf_e2e_resp_dispose(&resp);
        return 0;
    }
    j = resp.status == 200 ? json_loads(resp.body, 0, &jerr) : NULL;
    v = json_object_get(json_object_get(json_object_get(j, "states"), "counter"), "value");
    if (json_is_integer(v))
        value = (int64_t)json_integer_value(v);
    else
        report(t, "admin %s answered %d: %.200s", path, resp.status, resp.body);
    json_decref(j);
    sf_e2e_resp_dispose(&resp);
    return value;
}

/* ------------------------------------------------------------------------ */
/* The model against what the runtime shows                                   */

/* Indexes every sent message by its ids (after the senders are joined). */
static void build_model(crash_t *t)
{
    int i;
    size_t j, k;
    t->id_end = 0;
    t->nall = 0;
    for (i = 0; i < t->nsenders; i++) {
        uint64_t e = sf_crash_gen_id_end(&t->senders[i].gen);
        if (e > t->id_end)
            t->id_end = e;
        t->nall += t->senders[i].nmsgs;
    }
    t->owner = malloc((t->id_end + 1) * sizeof *t->owner);
    t->all = calloc(t->nall + 1, sizeof *t->all);
    t->expected = calloc((size_t)t->naddr, sizeof *t->expected);
    ck_assert(t->owner && t->all && t->expected);
    memset(t->owner, 0xff, (t->id_end + 1) * sizeof *t->owner);
    t->nall = 0;
    for (i = 0; i < t->nsenders; i++) {
        for (j = 0; j < t->senders[i].nmsgs; j++) {
            sf_crash_msg_t *m = &t->senders[i].msgs[j];
            if (m->outcome == SF_CRASH_NOT_SENT)
                continue;
            for (k = 0; k < m->nids; k++)
                t->owner[m->ids[k]] = (int32_t)t->nall;
            t->all[t->nall++] = m;
        }
    }
}

typedef struct {
    uint64_t missing;     /* records of accepted messages not (yet) visible */
    uint64_t verified;    /* addresses with a verification record */
    uint64_t unknown_in;  /* unknown-outcome messages the runtime accepted */
    uint64_t unknown_out; /* and those it did not */
} tally_t;

/*
 * Checks the records |r| against the model: with |final|, every problem is
 * an error (report()) and the expected counters are computed; without, only
 * the tally is filled (to wait for the runtime to catch up).
 */
static void check_records(crash_t *t, const recs_t *r, bool final, tally_t *tally)
{
    uint32_t *count = calloc(t->id_end + 1, sizeof *count);
    int *vcount = calloc((size_t)t->naddr, sizeof *vcount);
    int64_t *vvalue = calloc((size_t)t->naddr, sizeof *vvalue);
    size_t i, k;

    ck_assert(count && vcount && vvalue);
    memset(tally, 0, sizeof *tally);
    for (i = 0; i < r->n; i++) {
        const char *p = r->v[i].payload;
        char *end;
        unsigned long long id;
        if (p[0] == 'e') {
            id = strtoull(p + 1, &end, 10);
            if (*end || end == p + 1 || id >= t->id_end || t->owner[id] < 0) {
                if (final)
                    report(t, "egress record '%s' (offset %lld) was never sent", p,
                           (long long)r->v[i].offset);
            } else {
                count[id]++;
            }
        } else if (p[0] == 'x') {
            if (final)
                report(t, "egress record '%s' (offset %lld) comes from a cancelled delayed message",
                       p, (long long)r->v[i].offset);
        } else if (p[0] == 'v') {
            long long a = strtoll(p + 1, &end, 10);
            if (*end != '=' || a < 0 || a >= t->naddr) {
                if (final)
                    report(t, "bad verification record '%s'", p);
            } else {
                vcount[a]++;
                vvalue[a] = strtoll(end + 1, NULL, 10);
            }
        } else if (final) {
            report(t, "unexpected egress record '%s' (offset %lld)", p, (long long)r->v[i].offset);
        }
    }

    if (final)
        memset(t->expected, 0, (size_t)t->naddr * sizeof *t->expected);
    for (i = 0; i < t->nall; i++) {
        sf_crash_msg_t *m = t->all[i];
        bool applied = true;
        if (m->outcome == SF_CRASH_ACKED) {
            for (k = 0; k < m->nids; k++) {
                if (count[m->ids[k]] == 0)
                    tally->missing++;
                if (final && count[m->ids[k]] != 1)
                    report(t,
                           "record e%llu of an accepted message to %u appears %u times "
                           "(message: %.120s)",
                           (unsigned long long)m->ids[k], m->target, count[m->ids[k]], m->body);
            }
        } else {
            /* Unknown outcome: its marker says whether the runtime took it; all or nothing. */
            uint32_t c = count[m->ids[0]];
            applied = c == 1;
            if (applied)
                tally->unknown_in++;
            else
                tally->unknown_out++;
            for (k = 0; final && k < m->nids; k++) {
                if (count[m->ids[k]] != c || c > 1)
                    report(t,
                           "message of unknown outcome to %u: record e%llu appears %u times, "
                           "its marker e%llu %u times (message: %.120s)",
                           m->target, (unsigned long long)m->ids[k], count[m->ids[k]],
                           (unsigned long long)m->ids[0], c, m->body);
            }
        }
        if (final && applied)
            for (k = 0; k < m->nincs; k++)
                t->expected[m->incs[k]]++;
    }
    for (i = 0; i < (size_t)t->naddr; i++)
        tally->verified += vcount[i] > 0;
    if (final) {
        /* Verification records: none before the verify phase, then one per address. */
        for (i = 0; i < (size_t)t->naddr; i++) {
            if (vcount[i] > 1)
                report(t, "address %zu: %d verification records", i, vcount[i]);
            else if (vcount[i] == 1 && vvalue[i] != t->expected[i])
                report(t, "address %zu: verification says counter %lld, expected %lld", i,
                       (long long)vvalue[i], (long long)t->expected[i]);
        }
    }
    free(count);
    free(vcount);
    free(vvalue);
}

/*
 * Reads the topic until every accepted record is visible and, with
 * |verified|, every address's verification record; then waits |extra_ms|
 * more (so that late duplicates and wrongly delivered cancelled messages
 * show) and does the final check into |tally|.
 */
static void settle(crash_t *t, bool verified, int extra_ms, tally_t *tally)
{
    int64_t deadline = sf_e2e_now_ms() + SETTLE_MS;
    recs_t r;
    for (;;) {
        read_topic(t, &r);
        check_records(t, &r, false, tally);
        recs_dispose(&r);
        if (tally->missing == 0 && (!verified || tally->verified == (uint64_t)t->naddr))
            break;
        if (sf_e2e_now_ms() > deadline) {
            report(t,
                   "after %d ms, %llu records of accepted messages are still not visible (and "
                   "%llu of %d verification records are)",
                   SETTLE_MS, (unsigned long long)tally->missing,
                   (unsigned long long)tally->verified, t->naddr);
            break;
        }
        sf_e2e_sleep_ms(300);
    }
    sf_e2e_sleep_ms(extra_ms);
    read_topic(t, &r);
    check_records(t, &r, true, tally);
    recs_dispose(&r);
}

static void check_counters(crash_t *t, const char *when)
{
    int a;
    for (a = 0; a < t->naddr; a++) {
        int64_t v = read_counter(t, a);
        if (v != t->expected[a])
            report(t, "%s: address %d has counter %lld, expected %lld", when, a, (long long)v,
                   (long long)t->expected[a]);
    }
}

/* The popped records against the final offset read |all|. */
static void check_popped(crash_t *t, const recs_t *all)
{
    size_t i, missing;
    uint8_t *seen = calloc(all->n + 1, 1);
    ck_assert_ptr_nonnull(seen);
    for (i = 0; i < t->popped.n; i++) {
        const rec_t *p = &t->popped.v[i];
        size_t lo = 0, hi = all->n;
        /* |all| is sorted by offset. */
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (all->v[mid].offset < p->offset)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo == all->n || all->v[lo].offset != p->offset) {
            report(t, "popped '%s' at offset %lld, which the final read does not have", p->payload,
                   (long long)p->offset);
        } else if (strcmp(all->v[lo].payload, p->payload) != 0) {
            report(t, "popped '%s' at offset %lld, where the final read has '%s'", p->payload,
                   (long long)p->offset, all->v[lo].payload);
        } else if (seen[lo]++) {
            report(t, "the reader popped '%s' (offset %lld) twice", p->payload,
                   (long long)p->offset);
        }
    }
    for (i = 0, missing = 0; i < all->n; i++)
        missing += !seen[i];
    if (missing > t->unknown_pops)
        report(t,
               "the reader never popped %zu of %zu records (only %llu pops lost their answer "
               "in a crash)",
               missing, all->n, (unsigned long long)t->unknown_pops);
    free(seen);
}

/* ------------------------------------------------------------------------ */
/* The run                                                                    */

static void crash_setup(crash_t *t, bool remote)
{
    const char *s;
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->lock, NULL);
    t->remote = remote;
    s = getenv("SF_CRASH_SEED");
    t->seed = s && *s ? strtoull(s, NULL, 10)
                      : (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid() ^ (remote ? 7 : 0);
    t->kills = env_int("SF_CRASH_KILLS", 10, 0);
    t->min_messages = env_int("SF_CRASH_MESSAGES", 1500, 1);
    t->naddr = env_int("SF_CRASH_ADDRESSES", 64, 1);
    t->rate = env_int("SF_CRASH_RATE", 300, 1);
    t->nsenders = env_int("SF_CRASH_SENDERS", 4, 1);
    t->recovery_pct = env_int("SF_CRASH_RECOVERY_KILLS", 25, 0);
    t->backend = getenv("SF_CRASH_BACKEND") && *getenv("SF_CRASH_BACKEND")
                     ? getenv("SF_CRASH_BACKEND")
                     : "rocksdb";
    t->fn_pid = -1;
    sf_e2e_build_path(t->fn_bin, sizeof t->fn_bin, "tests/crash_fn");
    sf_e2e_rt_init(&t->rt, "crash");
    live = t;
    fprintf(stderr,
            "runtime_crash(%s): seed %llu (SF_CRASH_SEED=%llu reruns it), %d kills, >= %d "
            "messages at %d/s over %d addresses, %s; dir %s\n",
            remote ? "remote" : "embedded", (unsigned long long)t->seed,
            (unsigned long long)t->seed, t->kills, t->min_messages, t->rate, t->naddr, t->backend,
            t->rt.dir);
}

static void crash_teardown(crash_t *t)
{
    int i;
    live = NULL;
    sf_e2e_rt_kill(&t->rt);
    sf_test_kill(t->fn_pid);
    for (i = 0; i < t->nsenders && t->senders; i++) {
        size_t j;
        for (j = 0; j < t->senders[i].nmsgs; j++)
            sf_crash_msg_dispose(&t->senders[i].msgs[j]);
        free(t->senders[i].msgs);
    }
    free(t->senders);
    recs_dispose(&t->popped);
    free(t->owner);
    free(t->all);
    free(t->expected);
    for (i = 0; i < t->nlines; i++)
        free(t->errors[i]);
    if (keep_dir())
        free(t->rt.dir);
    else
        sf_test_rmtree(t->rt.dir);
    pthread_mutex_destroy(&t->lock);
}

static void crash_run(bool remote)
{
    crash_t t;
    uint64_t krng;
    int64_t t0;
    int i, a, kills, early = 0;
    uint64_t acked = 0, unknown = 0, retries = 0;
    tally_t tally;
    recs_t final;

    crash_setup(&t, remote);
    krng = sf_crash_rng_seed(t.seed, 1000);
    t0 = sf_e2e_now_ms();
    if (remote) {
        char line[256], *argv[] = {t.fn_bin, NULL};
        unsigned port = 0;
        t.fn_pid = sf_test_spawn_line(argv, line, sizeof line, 10000);
        ck_assert_msg(t.fn_pid > 0, "crash_fn did not start (%s)", t.fn_bin);
        if (sscanf(line, "listening on 127.0.0.1:%u", &port) != 1 || !port)
            crash_abort("crash_fn said '%s'", line);
        write_yaml(&t, (uint16_t)port);
    } else {
        write_yaml(&t, 0);
    }
    rt_start(&t);

    /* Senders and the reader run through the kills. */
    t.senders = calloc((size_t)t.nsenders, sizeof *t.senders);
    ck_assert_ptr_nonnull(t.senders);
    for (i = 0; i < t.nsenders; i++) {
        sender_t *s = &t.senders[i];
        s->t = &t;
        s->lane = (uint32_t)i;
        sf_crash_gen_init(&s->gen, t.seed, (uint32_t)i, (uint32_t)t.nsenders, (uint32_t)t.naddr);
        ck_assert_int_eq(pthread_create(&s->thread, NULL, sender_main, s), 0);
    }
    ck_assert_int_eq(pthread_create(&t.reader, NULL, reader_main, &t), 0);

    for (kills = 0; kills < t.kills && nerrors(&t) == 0; kills++) {
        /* Up for 50..1500 ms (sometimes right after recovery), then kill -9. */
        sf_e2e_sleep_ms(50 + (int)(sf_crash_rng_next(&krng) % 1450));
        sf_e2e_rt_kill(&t.rt);
        sf_e2e_sleep_ms((int)(sf_crash_rng_next(&krng) % 100));
        if ((int)(sf_crash_rng_next(&krng) % 100) < t.recovery_pct) {
            /* Now and then, one more kill during recovery (restore, replay). */
            rt_spawn(&t);
            sf_e2e_sleep_ms((int)(sf_crash_rng_next(&krng) % 200));
            sf_e2e_rt_kill(&t.rt);
            early++;
        }
        rt_start(&t);
    }
    atomic_store(&t.kills_done, true);
    for (i = 0; i < t.nsenders; i++) {
        pthread_join(t.senders[i].thread, NULL);
        acked += t.senders[i].acked;
        unknown += t.senders[i].unknown;
        retries += t.senders[i].retries;
    }
    fprintf(stderr,
            "runtime_crash(%s): %d kills (and %d more during recovery) in %lld ms; %d messages "
            "sent: %llu accepted, %llu of unknown outcome, %llu resends\n",
            remote ? "remote" : "embedded", kills, early, (long long)(sf_e2e_now_ms() - t0),
            atomic_load(&t.sent), (unsigned long long)acked, (unsigned long long)unknown,
            (unsigned long long)retries);
    if (nerrors(&t)) {
        atomic_store(&t.reader_stop, true);
        pthread_join(t.reader, NULL);
        report_and_assert(&t, "while sending");
    }
    build_model(&t);

    /* Everything accepted shows up (delayed messages included); nothing else does. */
    settle(&t, false, 1500, &tally);
    fprintf(stderr,
            "runtime_crash(%s): settled at %lld ms; of the unknown-outcome messages %llu were "
            "accepted and %llu not\n",
            remote ? "remote" : "embedded", (long long)(sf_e2e_now_ms() - t0),
            (unsigned long long)tally.unknown_in, (unsigned long long)tally.unknown_out);

    /* Counters after a graceful stop and a restart. */
    rt_stop(&t);
    rt_start(&t);
    check_counters(&t, "after a graceful restart");

    /* Verification: one command per address, then one more kill -9. */
    for (a = 0; a < t.naddr; a++) {
        sf_e2e_conn_t conn;
        sf_e2e_resp_t resp;
        char path[64];
        int64_t deadline = sf_e2e_now_ms() + REQUEST_MS;
        snprintf(path, sizeof path, FN_TYPE_PATH "%d", a);
        sf_e2e_conn_init(&conn, t.rt.ingress);
        for (;;) {
            sf_e2e_http_outcome o =
                sf_e2e_conn_request(&conn, "PUT", path, COMMANDS_CT, "v", 1, REQUEST_MS, &resp);
            int status = o == SF_E2E_HTTP_DONE ? resp.status : 0;
            if (o == SF_E2E_HTTP_DONE)
                sf_e2e_resp_dispose(&resp);
            if (status == 200)
                break;
            if (o == SF_E2E_HTTP_UNKNOWN || (status && status != 503) ||
                sf_e2e_now_ms() > deadline) {
                report(&t, "verification of %d: outcome %d, status %d", a, (int)o, status);
                break;
            }
            sf_e2e_sleep_ms(20);
        }
        sf_e2e_conn_dispose(&conn);
    }
    sf_e2e_sleep_ms((int)(sf_crash_rng_next(&krng) % 300));
    sf_e2e_rt_kill(&t.rt);
    rt_start(&t);
    settle(&t, true, 1000, &tally);
    check_counters(&t, "after the verification");

    /* The reader drains what is left and stops; then every pop is checked. */
    atomic_store(&t.reader_drain, true);
    pthread_join(t.reader, NULL);
    read_topic(&t, &final);
    check_popped(&t, &final);
    fprintf(stderr,
            "runtime_crash(%s): done in %lld ms, %d starts; %zu records, %zu popped (%llu pops "
            "cut by a crash)\n",
            remote ? "remote" : "embedded", (long long)(sf_e2e_now_ms() - t0), t.starts, final.n,
            t.popped.n, (unsigned long long)t.unknown_pops);
    recs_dispose(&final);
    rt_stop(&t);
    report_and_assert(&t, "at the end");
    crash_teardown(&t);
}

START_TEST(test_crash_remote)
{
    crash_run(true);
}
END_TEST

START_TEST(test_crash_embedded)
{
    crash_run(false);
}
END_TEST

START_TEST(test_crash_skipped)
{
    fprintf(stderr, "runtime_crash: skipped (set SF_CRASH_TEST=1 to run the crash test)\n");
}
END_TEST

Suite *sf_runtime_crash_suite(void)
{
    Suite *s = suite_create("runtime_crash");
    TCase *tc = tcase_create("crash");
    const char *on = getenv("SF_CRASH_TEST");
    if (on && strcmp(on, "1") == 0) {
        tcase_set_timeout(tc, 150);
        tcase_add_test(tc, test_crash_remote);
        tcase_add_test(tc, test_crash_embedded);
    } else {
        tcase_add_test(tc, test_crash_skipped);
    }
    suite_add_tcase(s, tc);
    return s;
}
