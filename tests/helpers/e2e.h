/* statefun-c: Apache License 2.0.
 *
 * Helpers of the runtime's end-to-end tests (every test that starts a real
 * `statefun run`): start it with a generated module.yaml in a temporary
 * folder on free loopback ports, wait until it answers, talk to its ingress,
 * egress and admin listeners (blocking HTTP/1.1, one-shot or kept alive),
 * read /v1/state and /metrics, and stop or kill it by PID; start function
 * servers; send many ingress messages at once over one HTTP/2 connection.
 *
 * Every wait is bounded in time. Runs on the test's thread, except where a
 * function says otherwise (the load generator runs its own libuv loop inside
 * sf_e2e_load_run; a connection may be used on any one thread).
 */
#ifndef SF_E2E_H
#define SF_E2E_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sf_http.h"

/** Bounds, generous because the sanitizer build runs several times slower. */
#define SF_E2E_START_MS 30000
#define SF_E2E_STOP_MS 20000

/** The statefun binary as an absolute path ($STATEFUN, else $SF_BUILD/bin/statefun). */
const char *sf_e2e_statefun(void);

/** Writes the absolute path of |rel| inside the build dir ($SF_BUILD) into |out|. */
void sf_e2e_build_path(char *out, size_t len, const char *rel);

/** Writes the absolute path of |rel| inside the source tree ($SF_SRC) into |out|. */
void sf_e2e_src_path(char *out, size_t len, const char *rel);

/** Monotonic milliseconds. */
int64_t sf_e2e_now_ms(void);

/** Wall-clock milliseconds since the epoch (as the runtime's TTL and timers use). */
int64_t sf_e2e_wall_ms(void);

/** Sleeps |ms| milliseconds. */
void sf_e2e_sleep_ms(int ms);

/* ------------------------------------------------------------------------ */
/* A statefun run                                                             */

typedef struct sf_e2e_rt_s {
    char *dir;           /* temporary folder: module.yaml, run.log, state/ */
    char yaml[600];      /* dir/module.yaml */
    char log[600];       /* dir/run.log: stdout and stderr of every run, appended */
    char state_dir[600]; /* dir/state; a test may point it elsewhere before a start */
    uint16_t ingress;    /* playground ingress port */
    uint16_t egress;     /* playground egress port; 0 when the module has no egress */
    uint16_t admin;      /* admin port */
    pid_t pid;           /* running statefun, or -1 */
} sf_e2e_rt_t;

/** Creates the temporary folder (prefix |name|) and picks three free ports. */
void sf_e2e_rt_init(sf_e2e_rt_t *rt, const char *name);

/**
 * Writes module.yaml: the documents of |fmt| (printf-style; may be "" when
 * the caller adds none), then a playground ingress and a playground egress
 * with the topics |topics| ("a, b") and delivery semantic |semantic|
 * ("exactly-once" or "at-least-once"). |topics| NULL: no egress (and
 * |rt->egress| becomes 0).
 */
void sf_e2e_rt_module(sf_e2e_rt_t *rt, const char *topics, const char *semantic, const char *fmt,
                      ...) __attribute__((format(printf, 4, 5)));

/**
 * Starts `statefun run --state-dir STATE_DIR --admin 127.0.0.1:ADMIN
 * [args...] DIR/module.yaml` (the NULL-terminated extra arguments, such as
 * "--state-backend", "memory", "--restore", DIR) with its output appended to
 * run.log and without the STATEFUN_* variables of the test's environment,
 * and does not wait. The child does only async-signal-safe work before
 * exec, so other threads of the test may run meanwhile; it is killed should
 * the calling thread end first. Test's main thread.
 */
void sf_e2e_rt_spawn(sf_e2e_rt_t *rt, ...) __attribute__((sentinel));

/**
 * Waits up to |timeout_ms| until the ingress, egress (if any) and admin
 * ports accept connections and the admin answers GET /healthz, whatever its
 * status (the listeners accept from the start, but answer only once the
 * runtime has recovered and runs). Returns 0; -1 when the process exited
 * (reaped: |rt->pid| is -1); -2 on timeout (it still runs).
 */
int sf_e2e_rt_wait(sf_e2e_rt_t *rt, int timeout_ms);

/**
 * sf_e2e_rt_spawn, then sf_e2e_rt_wait up to SF_E2E_START_MS. Fails the test
 * (with the log's tail) when the process exits or does not answer in time.
 */
void sf_e2e_rt_start(sf_e2e_rt_t *rt, ...) __attribute__((sentinel));

/**
 * Stops the runtime gracefully: SIGTERM, then waits up to SF_E2E_STOP_MS
 * (then SIGKILL). Returns its exit status, or -1 when it had to be killed or
 * died of a signal (or was not running).
 */
int sf_e2e_rt_stop(sf_e2e_rt_t *rt);

/** kill -9 and reap, if it runs. */
void sf_e2e_rt_kill(sf_e2e_rt_t *rt);

/** Kills the runtime if it still runs and removes the folder. */
void sf_e2e_rt_dispose(sf_e2e_rt_t *rt);

/** Prints the last |lines| lines of run.log to stderr (for failure messages). */
void sf_e2e_rt_dump_log(const sf_e2e_rt_t *rt, int lines);

/** Number of lines of run.log that contain |needle|. */
int sf_e2e_rt_log_count(const sf_e2e_rt_t *rt, const char *needle);

/** Fails the test when run.log holds a sanitizer report (ASan, UBSan, LSan). */
void sf_e2e_rt_check_log_clean(const sf_e2e_rt_t *rt);

/* ------------------------------------------------------------------------ */
/* Other processes                                                            */

/* (sf_test_spawn_line and sf_test_kill, testutil.h, start and stop others.) */

/**
 * Starts a server program (argv[0] an absolute path or in PATH) that prints
 * one line naming its port ("listening on HOST:PORT" or "listening PORT")
 * and returns its PID; the port goes to |*port|. Fails the test when no such
 * line comes within SF_E2E_START_MS. Stop it with sf_test_kill.
 */
pid_t sf_e2e_spawn_server(char *const argv[], uint16_t *port);

/* ------------------------------------------------------------------------ */
/* Blocking HTTP/1.1 requests                                                 */

typedef struct sf_e2e_resp_s {
    int status; /* 0 when no response came */
    char *body; /* NUL-terminated, owned; NULL when no response came */
    size_t len;
    char retry_after[32]; /* the Retry-After header's value, or "" */
    int64_t offset;       /* the X-Statefun-Offset header's value, or -1 */
} sf_e2e_resp_t;

void sf_e2e_resp_dispose(sf_e2e_resp_t *r);

/**
 * Sends |method| |path| (sent as is) to 127.0.0.1:|port| with |body|
 * (|content_type| NULL: no header) on a connection of its own
 * (`Connection: close`) and reads the whole response within 10 s. Returns
 * 0, or -1 when no complete response came (|out->status| 0). Dispose |out|
 * in either case. Any thread.
 */
int sf_e2e_http(uint16_t port, const char *method, const char *path, const char *content_type,
                const void *body, size_t len, sf_e2e_resp_t *out);

/**
 * A kept-alive connection to 127.0.0.1:|port|, one request at a time, that
 * tells a request that certainly did not reach the server (it may be sent
 * again) from one whose outcome is unknown (written whole, and no complete
 * answer came: the server may or may not have acted on it). Owned by one
 * thread; different connections may be used on different threads.
 */
typedef struct sf_e2e_conn_s {
    uint16_t port; /* read-only */
    int _fd;       /* private: -1 when not connected */
} sf_e2e_conn_t;

/** How a request ended (sf_e2e_conn_request). */
typedef enum {
    SF_E2E_HTTP_DONE = 0,     /* a complete response is in |out| */
    SF_E2E_HTTP_NOT_SENT = 1, /* no connection, or the request was not written whole */
    SF_E2E_HTTP_UNKNOWN = 2,  /* written whole, no complete response (reset, EOF, timeout) */
} sf_e2e_http_outcome;

void sf_e2e_conn_init(sf_e2e_conn_t *c, uint16_t port);
/** Closes the connection, if any. */
void sf_e2e_conn_dispose(sf_e2e_conn_t *c);

/**
 * Sends |method| |path| with |body| (|content_type| NULL: no header) on |c|
 * and waits for the answer at most |timeout_ms|. A kept-alive connection
 * that the server closed in the meantime is noticed before writing and
 * replaced. After anything but DONE the connection is closed. Dispose |out|
 * in every case.
 */
sf_e2e_http_outcome sf_e2e_conn_request(sf_e2e_conn_t *c, const char *method, const char *path,
                                        const char *content_type, const void *body, size_t len,
                                        int timeout_ms, sf_e2e_resp_t *out);

/** PUT |text| as text/plain to the ingress at |path|; returns the status (0: none). */
int sf_e2e_put(uint16_t port, const char *path, const char *text);

/** As sf_e2e_put, retrying 503s every 20 ms for up to 10 s. */
int sf_e2e_put_retry(uint16_t port, const char *path, const char *text);

/**
 * Pops one record of |topic| from the egress, long-polling up to |wait_ms|.
 * Returns the payload (owned) or NULL when there was none.
 */
char *sf_e2e_egress_pop(uint16_t port, const char *topic, int wait_ms);

/**
 * Pops records of |topic| until |n| were read or |timeout_ms| passed;
 * returns how many were stored in |out| (owned strings).
 */
size_t sf_e2e_egress_take(uint16_t port, const char *topic, char **out, size_t n, int timeout_ms);

/**
 * The states of |addr| ("ns/type/id") through the admin API, as the JSON
 * object under "states", or NULL (404: no state). Caller json_decref()s.
 */
json_t *sf_e2e_state(uint16_t admin, const char *addr);

/**
 * An int (or long) state |name| of |addr|, or |dflt| when the address or the
 * state has no value.
 */
long long sf_e2e_state_int(uint16_t admin, const char *addr, const char *name, long long dflt);

/** A string state |name| of |addr| (owned), or NULL. */
char *sf_e2e_state_str(uint16_t admin, const char *addr, const char *name);

/**
 * Polls sf_e2e_state_int until it equals |want| or |timeout_ms| passes;
 * returns the last value read.
 */
long long sf_e2e_wait_state_int(uint16_t admin, const char *addr, const char *name, long long want,
                                int timeout_ms);

/** GET /healthz on the admin port; returns the status, |*body| (may be NULL) owned. */
int sf_e2e_health(uint16_t admin, char **body);

/** GET /metrics on the admin port: the text (owned), or NULL unless it answered 200. */
char *sf_e2e_metrics(uint16_t admin);

/**
 * The value of the sample line "|name|{|labels|} VALUE" (or "|name| VALUE"
 * when |labels| is NULL) in the metrics |text|, or -1 when there is none.
 */
double sf_e2e_sample(const char *text, const char *name, const char *labels);

/* ------------------------------------------------------------------------ */
/* Load: many ingress messages over one HTTP/2 (or HTTP/1.1) client           */

/** Writes the path and text body of message |seq| (1-based) of |lane| (0-based). */
typedef void (*sf_e2e_make_cb)(unsigned lane, unsigned seq, char *path, size_t path_len, char *body,
                               size_t body_len, void *user_data);

typedef struct sf_e2e_load_s {
    /* In. */
    uint16_t port;             /* the ingress */
    sf_http_protocol protocol; /* SF_HTTP_PROTO_H2C (one multiplexed connection) or HTTP1 */
    unsigned nlanes;           /* independent senders */
    unsigned per_lane;         /* messages per lane */
    unsigned window;           /* requests in flight per lane (1: strictly one at a time) */
    bool retry_503;            /* resend a 503 (after 5-20 ms); needs window 1 */
    int timeout_ms;            /* bound of the whole run */
    sf_e2e_make_cb make;
    void *user_data;
    /* Out. */
    unsigned accepted;     /* 200 */
    unsigned rejected_503; /* 503 answers (each retry counted) */
    unsigned other;        /* any other status */
    int other_status;      /* the first such status */
    unsigned errors;       /* transport errors */
    int first_error;
    bool timed_out;
    int64_t elapsed_ms;
} sf_e2e_load_t;

/**
 * Sends every message, each lane in order: message seq+1 of a lane is sent
 * only once fewer than |window| of the lane are in flight (and, with
 * retry_503, only once seq was accepted). Returns 0 when every message was
 * accepted, else -1 (see the counters).
 */
int sf_e2e_load_run(sf_e2e_load_t *load);

#endif /* SF_E2E_H */
