/* statefun-c: Apache License 2.0.
 *
 * The playground ingress (io.statefun.playground.v1/ingress, SPEC 5.2): an
 * HTTP/1.1 + h2c listener that turns `PUT|POST /{namespace}/{type}/{id}`
 * into messages for the function instance namespace/type/id.
 *
 * The body's type comes from Content-Type:
 *   application/vnd.{typename}            the raw value bytes of {typename}
 *   none, text/plain (any charset),       a UTF-8 string, delivered as
 *   application/x-www-form-urlencoded     io.statefun.types/string (the
 *                                         StringWrapper message); the last is
 *                                         what `curl -d` sends by default, and
 *                                         the body is taken verbatim
 *   anything else                         415
 * A typename must look like namespace/name (a '/' with text on both sides).
 * A string body must be UTF-8 without NUL bytes (400 otherwise): every SDK
 * decodes it as a protobuf string.
 *
 * Path: the query and fragment are ignored; namespace and type are the first
 * two segments and the id is the rest, so an id may contain '/' (as it may in
 * StateFun); all three are %XX-decoded and must be non-empty UTF-8 without
 * NUL; namespace and type may not contain '/' (%2F) or control characters.
 *
 * Batching: requests accepted during one loop turn form one batch, closed in
 * a uv_check_t (an idle handle keeps the loop from blocking in between). See
 * io.h for persist, route and the order of answers.
 *
 * Threading: I/O thread only, except the pure parsers (any thread).
 */
#ifndef SF_IO_INGRESS_H
#define SF_IO_INGRESS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "io.h"
#include "io_int.h"
#include "message.h"
#include "sf_http.h"

/** What a Content-Type header asks for (sf_ingress_content_type). */
typedef enum {
    SF_INGRESS_BODY_STRING = 0, /* a UTF-8 string -> io.statefun.types/string */
    SF_INGRESS_BODY_TYPED = 1,  /* raw bytes of the given typename */
} sf_ingress_body_kind;

/**
 * Parses a request path "/{ns}/{type}/{id}[?query]" into |out| (room for at
 * least strlen(|path|) + 1 bytes): the decoded "ns/type/id", NUL-terminated,
 * with |addr| pointing into it. Returns 0, or SF_EINVAL and sets |*why| to a
 * static one-line reason.
 */
int sf_ingress_parse_path(const char *path, char *out, sf_addr_t *addr, const char **why);

/**
 * Classifies the Content-Type value |v| (|len| bytes; NULL for no header).
 * Returns SF_INGRESS_BODY_STRING, or SF_INGRESS_BODY_TYPED with |*type_name|
 * and |*type_name_len| pointing into |v|; SF_EINVAL (400) for a malformed
 * typename, SF_EUNSUPPORTED (415) for another media type, with |*why| set to
 * a static reason.
 */
int sf_ingress_content_type(const char *v, size_t len, const char **type_name,
                            size_t *type_name_len, const char **why);

typedef struct sf_ingress_batch_s sf_ingress_batch_t;
typedef struct sf_ingress_parked_s sf_ingress_parked_t;

/* Per key group: requests parked, and the last unpark pass that left one. */
typedef struct {
    uint32_t parked;
    uint32_t kept_pass;
} sf_ingress_kg_t;

typedef struct sf_ingress_s {
    /* All private: the I/O object embeds it. */
    uv_loop_t *loop;
    const sf_io_hooks_t *hooks;
    sf__io_counters_t *ctr;
    const _Atomic bool *shutting_down;
    uint32_t max_parallelism;
    sf_http_server_t *server;
    uint16_t port;
    uv_check_t flush;          /* closes the batch of the turn */
    uv_idle_t keep_awake;      /* no blocking poll while a batch is open */
    bool armed;                /* flush and keep_awake are started */
    bool handles_open;         /* flush and keep_awake are initialized */
    bool closing;              /* sf_ingress_close was called */
    sf_ingress_batch_t *cur;   /* the open batch, NULL when none */
    sf_ingress_batch_t *oldest, *newest; /* closed batches not finished yet */
    size_t inflight;           /* closed batches not finished yet */
    /* Requests waiting for their key group to accept (arrival order). */
    sf_ingress_parked_t *parked, **parked_tail;
    size_t nparked, parked_bytes;
    sf_ingress_kg_t *kgs;      /* max_parallelism entries, allocated on first park */
    uint32_t pass;             /* unpark passes so far */
    uint32_t max_park_ms;
    uv_timer_t unpark;         /* retries the parked requests while there are any */
    uv_async_t room;           /* sf_ingress_room: retry them now */
    sf_buf_t scratch;          /* a string body's wrapper encoding */
    char *pathbuf;
    size_t pathcap;
    void (*on_idle)(void *arg); /* called once no batch is in flight after close */
    void *on_idle_arg;
} sf_ingress_t;

/**
 * Binds the listener on |loop| and prepares the batch handles. Returns 0 or
 * the transport's error (nothing is left open then).
 */
int sf_ingress_init(sf_ingress_t *ing, uv_loop_t *loop, const sf_io_ingress_config_t *cfg,
                    const sf_io_hooks_t *hooks, sf__io_counters_t *ctr,
                    const _Atomic bool *shutting_down, uint32_t max_parallelism);

/**
 * Closes the open batch now (its requests are persisted, routed and answered
 * as usual) and stops taking requests. Calls |on_idle|(|arg|) once no batch
 * is in flight any more (maybe from within this call).
 */
void sf_ingress_drain(sf_ingress_t *ing, void (*on_idle)(void *arg), void *arg);

/** Any thread: retry the parked requests now (see sf_io_ingress_room). */
void sf_ingress_room(sf_ingress_t *ing);

/** Closes the listener and the handles; call after the drain finished. */
void sf_ingress_close(sf_ingress_t *ing);

/** Frees the buffers; after the loop closed the handles. */
void sf_ingress_dispose(sf_ingress_t *ing);

#endif /* SF_IO_INGRESS_H */
