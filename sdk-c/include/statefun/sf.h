/* statefun-c: Apache License 2.0.
 *
 * The public API of the statefun-c C SDK: the one header a function author
 * includes. It lets you bind function types to C callbacks with their state
 * specs, write those callbacks (addresses, message, state, sending, delayed
 * messages, egress), and run the bound functions either remotely (an HTTP/1.1 +
 * HTTP/2 server on libuv speaking the StateFun request-reply protocol) or
 * embedded (a shared library that the statefun runtime dlopens; see SF_MODULE).
 *
 * The header includes only standard C headers. Every object is opaque and
 * configured through setters. Every function returns 0 or a negative SF_E*
 * code (see sf_err); none of them aborts the host process, and running out of
 * memory is reported as SF_ENOMEM.
 *
 * Threading: a registry (sf_functions_t) is built on one thread and is then
 * read-only: any number of threads may invoke it at once, each through its own
 * sf_handler_t or arena. A callback's sf_ctx_t is valid only during that call,
 * on the calling thread. A server belongs to the libuv loop it was started on.
 *
 * The first block (errors, allocator) is also the source of truth for the
 * rest of the project: protocol/sf_common.h includes just that block.
 */

/* ------------------------------------------------------------------------ */
/* Errors and allocator (shared with the runtime and the protocol layer)      */

#ifndef SF_H_BASE
#define SF_H_BASE

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define SF_EXTERN __attribute__((visibility("default")))
#else
#define SF_EXTERN
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes. Public range is [-999, -1]; codes at or below SF_EFATAL mean
 * the object that returned them is dead and may only be closed or freed. */
typedef enum {
    SF_OK = 0,
    SF_EINVAL = -1,        /* invalid argument */
    SF_ENOMEM = -2,        /* out of memory */
    SF_EPROTO = -3,        /* malformed protocol message (protobuf, HTTP) */
    SF_ETIMEDOUT = -4,     /* a timeout fired */
    SF_ECONNREFUSED = -5,  /* connect refused */
    SF_ECONNRESET = -6,    /* the peer closed or reset the connection */
    SF_ETLS = -7,          /* TLS handshake or record failure */
    SF_ETOOBIG = -8,       /* a size limit was exceeded */
    SF_ENOTFOUND = -9,     /* no such thing (name, function, state) */
    SF_EIO = -10,          /* I/O error */
    SF_ECANCELED = -11,    /* the operation was canceled (close, shutdown) */
    SF_ESTATE = -12,       /* the state backend failed */
    SF_EEXIST = -13,       /* already exists */
    SF_EUNSUPPORTED = -14, /* not supported (e.g. h2 refused by the peer) */
    SF_EFUNCTION = -15,    /* a user function callback reported a failure */
    SF_EFATAL = -900       /* at or below: the object must be torn down */
} sf_err;

/**
 * Returns a static, human readable text for |err|. Never NULL.
 */
SF_EXTERN const char *sf_strerror(int err);

/**
 * A custom allocator: a user pointer plus the four C allocation functions,
 * each taking |mem_user_data|. NULL wherever an sf_mem pointer is accepted
 * means the C library's allocator. The same hooks are fed to nghttp2 and to
 * protobuf-c, so every allocation of an object goes through them.
 */
typedef struct sf_mem_s {
    void *mem_user_data;
    void *(*malloc)(size_t size, void *mem_user_data);
    void (*free)(void *ptr, void *mem_user_data);
    void *(*calloc)(size_t nmemb, size_t size, void *mem_user_data);
    void *(*realloc)(void *ptr, size_t size, void *mem_user_data);
} sf_mem;

#ifdef __cplusplus
}
#endif

#endif /* SF_H_BASE */

/* ------------------------------------------------------------------------ */
/* The SDK proper                                                             */

#if !defined(SF_H) && !defined(SF_H_BASE_ONLY)
#define SF_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SF_SDK_VERSION "0.1.0"

/**
 * Returned (it is not an error) by the state getters when the state is
 * declared but holds no value.
 */
#define SF_EMPTY 1

/* Typenames of the built-in types and of the well-known egress records. */
#define SF_TYPE_BOOL "io.statefun.types/bool"
#define SF_TYPE_INT "io.statefun.types/int"
#define SF_TYPE_LONG "io.statefun.types/long"
#define SF_TYPE_FLOAT "io.statefun.types/float"
#define SF_TYPE_DOUBLE "io.statefun.types/double"
#define SF_TYPE_STRING "io.statefun.types/string"
#define SF_TYPE_PLAYGROUND_EGRESS_RECORD "io.statefun.playground/EgressRecord"
#define SF_TYPE_KAFKA_PRODUCER_RECORD                                                              \
    "type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord"
/** The playground egress of StateFun's examples. */
#define SF_PLAYGROUND_EGRESS "io.statefun.playground/egress"

typedef struct sf_functions_s sf_functions_t;
typedef struct sf_ctx_s sf_ctx_t;
typedef struct sf_message_s sf_message_t;
typedef struct sf_handler_s sf_handler_t;
typedef struct sf_server_s sf_server_t;
typedef struct sf_server_options_s sf_server_options_t;

/** An address "namespace/type/id". Read-only view; the strings are borrowed. */
typedef struct sf_address_s {
    const char *ns;   /* namespace, e.g. "greeter.fns" */
    const char *type; /* function type name, e.g. "person" */
    const char *id;   /* instance id, e.g. "alice" */
} sf_address_t;

/* ------------------------------------------------------------------------ */
/* Binding functions                                                          */

/** State expiration (TTL) modes, as in StateFun. */
typedef enum {
    SF_EXPIRE_NONE = 0,
    SF_EXPIRE_AFTER_WRITE = 1,  /* expires |expire_after_ms| after the last write */
    SF_EXPIRE_AFTER_INVOKE = 2, /* expires |expire_after_ms| after the last read or write */
} sf_expire_mode;

/** One declared state of a function type. Copied by sf_functions_bind. */
typedef struct sf_value_spec_s {
    const char *name;           /* state name, unique within the function type */
    const char *type;           /* typename, e.g. SF_TYPE_INT or "com.example/Cart" */
    sf_expire_mode expire_mode; /* SF_EXPIRE_NONE: never expires */
    int64_t expire_after_ms;    /* TTL in milliseconds (ignored with SF_EXPIRE_NONE) */
} sf_value_spec_t;

/* Shorthands for specs without TTL. */
#define SF_SPEC(name_, type_)                                                                      \
    {                                                                                              \
        (name_), (type_), SF_EXPIRE_NONE, 0                                                        \
    }
#define SF_SPEC_BOOL(name_) SF_SPEC(name_, SF_TYPE_BOOL)
#define SF_SPEC_INT(name_) SF_SPEC(name_, SF_TYPE_INT)
#define SF_SPEC_LONG(name_) SF_SPEC(name_, SF_TYPE_LONG)
#define SF_SPEC_FLOAT(name_) SF_SPEC(name_, SF_TYPE_FLOAT)
#define SF_SPEC_DOUBLE(name_) SF_SPEC(name_, SF_TYPE_DOUBLE)
#define SF_SPEC_STRING(name_) SF_SPEC(name_, SF_TYPE_STRING)

/**
 * A function callback, called once per message of an invocation batch, in
 * order; state changes made by one call are seen by the next call of the same
 * batch. |ctx| and |msg| are valid only during the call.
 *
 * Return 0 on success. Any other value fails the whole batch: nothing of it
 * takes effect and the runtime retries it (HTTP 500 when served remotely).
 * Returning SF_ENOMEM (for instance passed on from sf_send) is reported as
 * SF_ENOMEM; any other failure as SF_EFUNCTION. A batch in which any SDK call
 * failed with SF_ENOMEM fails with SF_ENOMEM even if the callback returned 0,
 * so nothing sent or written is silently lost.
 */
typedef int (*sf_function_cb)(sf_ctx_t *ctx, const sf_message_t *msg, void *user_data);

/** A registration function: binds function types into |fns|; 0 or an error. */
typedef int (*sf_register_cb)(sf_functions_t *fns);

/**
 * Creates an empty function registry that allocates with |mem| (NULL: the C
 * library's allocator; the allocator must outlive the registry). Caller frees
 * it with sf_functions_free. Returns 0, SF_EINVAL or SF_ENOMEM.
 */
SF_EXTERN int sf_functions_new(const sf_mem *mem, sf_functions_t **out);

/** Frees |fns| (NULL is fine). No invocation, handler or server may use it any more. */
SF_EXTERN void sf_functions_free(sf_functions_t *fns);

/**
 * Binds the function type |type| ("namespace/name") to |cb|, called with
 * |user_data|, declaring |nspecs| states |specs| (copied; |specs| may be NULL
 * when |nspecs| is 0). Bind everything before serving: the registry must not
 * change while it is invoked.
 *
 * Returns 0, SF_EINVAL (malformed type, empty or duplicate state name, empty
 * typename, negative TTL), SF_EEXIST (the type is already bound) or SF_ENOMEM.
 */
SF_EXTERN int sf_functions_bind(sf_functions_t *fns, const char *type, sf_function_cb cb,
                                void *user_data, const sf_value_spec_t *specs, size_t nspecs);

/** Number of bound function types. */
SF_EXTERN size_t sf_functions_count(const sf_functions_t *fns);
/** The |i|-th bound type as "namespace/name" (borrowed), or NULL past the end. */
SF_EXTERN const char *sf_functions_type(const sf_functions_t *fns, size_t i);

/**
 * sf_functions_new followed by |register_fn|(*out); on failure of either the
 * registry is freed and the error returned. This is what SF_MODULE exports.
 */
SF_EXTERN int sf_functions_create(const sf_mem *mem, sf_register_cb register_fn,
                                  sf_functions_t **out);

/* ------------------------------------------------------------------------ */
/* Inside a callback: addresses and the message                               */

/** This function's own address. Never NULL; valid during the callback. */
SF_EXTERN const sf_address_t *sf_self(const sf_ctx_t *ctx);
/** The sending function's address, or NULL when the message came from an ingress. */
SF_EXTERN const sf_address_t *sf_caller(const sf_ctx_t *ctx);

/** The message's typename ("" when the runtime sent none). */
SF_EXTERN const char *sf_message_typename(const sf_message_t *msg);
/** The message's raw value bytes (may be NULL when |*len| is 0). */
SF_EXTERN const uint8_t *sf_message_data(const sf_message_t *msg, size_t *len);
/** True when the message's typename is |type_name|. */
SF_EXTERN bool sf_message_is(const sf_message_t *msg, const char *type_name);
SF_EXTERN bool sf_message_is_bool(const sf_message_t *msg);
SF_EXTERN bool sf_message_is_int(const sf_message_t *msg);
SF_EXTERN bool sf_message_is_long(const sf_message_t *msg);
SF_EXTERN bool sf_message_is_float(const sf_message_t *msg);
SF_EXTERN bool sf_message_is_double(const sf_message_t *msg);
SF_EXTERN bool sf_message_is_string(const sf_message_t *msg);

/**
 * Decode the message as a built-in type. Return 0, SF_EINVAL when the
 * message has another typename, or SF_EPROTO when its bytes are not a valid
 * value of that type. sf_message_as_string sets |*s| to a NUL-terminated
 * string valid until the callback returns and |*len| (may be NULL) to its
 * length; it may also return SF_ENOMEM.
 */
SF_EXTERN int sf_message_as_bool(const sf_message_t *msg, bool *v);
SF_EXTERN int sf_message_as_int(const sf_message_t *msg, int32_t *v);
SF_EXTERN int sf_message_as_long(const sf_message_t *msg, int64_t *v);
SF_EXTERN int sf_message_as_float(const sf_message_t *msg, float *v);
SF_EXTERN int sf_message_as_double(const sf_message_t *msg, double *v);
SF_EXTERN int sf_message_as_string(const sf_message_t *msg, const char **s, size_t *len);

/* ------------------------------------------------------------------------ */
/* Inside a callback: state                                                   */

/**
 * Read the state |name| declared for this function type. Return 0 with the
 * value, SF_EMPTY (a positive code, not an error) when the state holds no
 * value (|*v| untouched), SF_ENOTFOUND when no such state is declared,
 * SF_EINVAL when the state is declared with another type, or SF_EPROTO when
 * the stored bytes do not decode. sf_storage_get gives the raw bytes of a state
 * of any type (borrowed until the callback returns; NULL/0 when empty);
 * sf_storage_get_string's |*s| is NUL-terminated and lives as long, and |len|
 * may be NULL.
 */
SF_EXTERN int sf_storage_get(sf_ctx_t *ctx, const char *name, const uint8_t **data, size_t *len);
SF_EXTERN int sf_storage_get_bool(sf_ctx_t *ctx, const char *name, bool *v);
SF_EXTERN int sf_storage_get_int(sf_ctx_t *ctx, const char *name, int32_t *v);
SF_EXTERN int sf_storage_get_long(sf_ctx_t *ctx, const char *name, int64_t *v);
SF_EXTERN int sf_storage_get_float(sf_ctx_t *ctx, const char *name, float *v);
SF_EXTERN int sf_storage_get_double(sf_ctx_t *ctx, const char *name, double *v);
SF_EXTERN int sf_storage_get_string(sf_ctx_t *ctx, const char *name, const char **s, size_t *len);

/**
 * Write the state |name| (copied). The change is seen by later calls of the
 * same batch and sent back to the runtime as a mutation at the end of the
 * batch. sf_storage_set stores raw bytes under the state's declared typename.
 * Return 0, SF_ENOTFOUND (not declared), SF_EINVAL (declared with another
 * type; for strings also: |s| is NULL) or SF_ENOMEM.
 */
SF_EXTERN int sf_storage_set(sf_ctx_t *ctx, const char *name, const void *data, size_t len);
SF_EXTERN int sf_storage_set_bool(sf_ctx_t *ctx, const char *name, bool v);
SF_EXTERN int sf_storage_set_int(sf_ctx_t *ctx, const char *name, int32_t v);
SF_EXTERN int sf_storage_set_long(sf_ctx_t *ctx, const char *name, int64_t v);
SF_EXTERN int sf_storage_set_float(sf_ctx_t *ctx, const char *name, float v);
SF_EXTERN int sf_storage_set_double(sf_ctx_t *ctx, const char *name, double v);
/** |s| must be valid UTF-8 of |len| bytes (no NUL inside). */
SF_EXTERN int sf_storage_set_string(sf_ctx_t *ctx, const char *name, const char *s, size_t len);

/** Clears the state |name|. Returns 0 or SF_ENOTFOUND. */
SF_EXTERN int sf_storage_delete(sf_ctx_t *ctx, const char *name);

/* ------------------------------------------------------------------------ */
/* Inside a callback: sending                                                 */

/*
 * Every sending function copies its arguments, so they may be released right
 * after the call. |type| is a function type "namespace/name" and |id| the
 * target instance's id (any non-empty string, '/' allowed). Messages of one
 * kind reach the runtime in the order they were sent. They return 0,
 * SF_EINVAL (malformed type, empty id, NULL data with a length, ...) or
 * SF_ENOMEM.
 */

/** Sends a message of typename |type_name| with raw value bytes |data|. */
SF_EXTERN int sf_send(sf_ctx_t *ctx, const char *type, const char *id, const char *type_name,
                      const void *data, size_t len);
SF_EXTERN int sf_send_bool(sf_ctx_t *ctx, const char *type, const char *id, bool v);
SF_EXTERN int sf_send_int(sf_ctx_t *ctx, const char *type, const char *id, int32_t v);
SF_EXTERN int sf_send_long(sf_ctx_t *ctx, const char *type, const char *id, int64_t v);
SF_EXTERN int sf_send_float(sf_ctx_t *ctx, const char *type, const char *id, float v);
SF_EXTERN int sf_send_double(sf_ctx_t *ctx, const char *type, const char *id, double v);
/** Sends a NUL-terminated UTF-8 string as io.statefun.types/string. */
SF_EXTERN int sf_send_string(sf_ctx_t *ctx, const char *type, const char *id, const char *s);

/**
 * Sends a message that the runtime delivers after |delay_ms| (>= 0). With a
 * non-empty |cancellation_token| (NULL: none), the message can be cancelled
 * with sf_cancel_delayed until it fires; tokens are unique per sending
 * address.
 */
SF_EXTERN int sf_send_after(sf_ctx_t *ctx, int64_t delay_ms, const char *type, const char *id,
                            const char *cancellation_token, const char *type_name, const void *data,
                            size_t len);
SF_EXTERN int sf_send_after_string(sf_ctx_t *ctx, int64_t delay_ms, const char *type,
                                   const char *id, const char *cancellation_token, const char *s);

/**
 * Cancels the delayed message sent with |cancellation_token| (non-empty).
 * Cancelling an unknown or already delivered token is a no-op in the runtime.
 * Delayed messages and cancellations of one batch are applied in order, so a
 * message and its cancellation may be sent in the same batch.
 */
SF_EXTERN int sf_cancel_delayed(sf_ctx_t *ctx, const char *cancellation_token);

/** Sends |data| of typename |type_name| to the egress |egress| ("namespace/name"). */
SF_EXTERN int sf_send_egress(sf_ctx_t *ctx, const char *egress, const char *type_name,
                             const void *data, size_t len);

/**
 * Sends a playground egress record: JSON {"topic": |topic|, "payload":
 * |payload|} of typename io.statefun.playground/EgressRecord, to |egress|
 * (NULL: SF_PLAYGROUND_EGRESS). |topic| and |payload| (|payload_len| bytes)
 * must be valid UTF-8; else SF_EINVAL.
 */
SF_EXTERN int sf_send_egress_playground(sf_ctx_t *ctx, const char *egress, const char *topic,
                                        const char *payload, size_t payload_len);

/**
 * Sends a Kafka producer record (KafkaProducerRecord protobuf) to the Kafka
 * egress |egress|: |topic|, an optional UTF-8 |key| (NULL: none) and the
 * value bytes.
 */
SF_EXTERN int sf_send_egress_kafka(sf_ctx_t *ctx, const char *egress, const char *topic,
                                   const char *key, const void *value, size_t value_len);

/* ------------------------------------------------------------------------ */
/* Invoking: the protocol core (no I/O)                                       */

/**
 * Creates a handler: the per-thread scratch space (decode arena, output
 * buffer) to run requests against |fns|, which must outlive it. Caller frees
 * it with sf_handler_free. Returns 0 or SF_ENOMEM.
 */
SF_EXTERN int sf_handler_new(const sf_functions_t *fns, sf_handler_t **out);
SF_EXTERN void sf_handler_free(sf_handler_t *inv);

/**
 * Runs one serialized ToFunction |req| of |len| bytes and sets |*out| and
 * |*out_len| to the serialized FromFunction: an InvocationResponse, or an
 * IncompleteInvocationContext listing every declared state missing from the
 * request. The output is borrowed: valid until the next call on |inv|.
 *
 * Returns 0, SF_EPROTO (malformed request; HTTP 400), SF_ENOTFOUND (no
 * function bound for the target type; HTTP 404), SF_EFUNCTION (a callback
 * failed; HTTP 500) or SF_ENOMEM. On failure sf_handler_reason says why.
 */
SF_EXTERN int sf_handler_invoke(sf_handler_t *inv, const uint8_t *req, size_t len,
                                const uint8_t **out, size_t *out_len);

/** One line saying why the last sf_handler_invoke failed ("" after success). */
SF_EXTERN const char *sf_handler_reason(const sf_handler_t *inv);

/* The decoded protocol structs and the arena, as the embedded runtime holds
 * them (protocol/sf_proto.h); opaque here. */
struct Io__Statefun__Sdk__Reqreply__ToFunction;
struct Io__Statefun__Sdk__Reqreply__FromFunction;
struct sf_arena_s;

/**
 * The same as sf_handler_invoke on decoded structs, for the embedded runtime:
 * no pack/unpack round trip. Everything the result points to is allocated in
 * the caller's |arena| or belongs to |fns| (state names and typenames of
 * specs), so it stays valid until the arena is reset and while |fns| lives;
 * nothing points into |req|. On failure |*reason| (may be NULL) gets a
 * one-line text, static or in |arena|. Same return codes.
 */
SF_EXTERN int sf_functions_invoke_pb(const sf_functions_t *fns,
                                     const struct Io__Statefun__Sdk__Reqreply__ToFunction *req,
                                     struct sf_arena_s *arena,
                                     struct Io__Statefun__Sdk__Reqreply__FromFunction **out,
                                     const char **reason);

/* ------------------------------------------------------------------------ */
/* Serving remotely (HTTP/1.1 and HTTP/2 on libuv)                            */

/** Creates server options with defaults (listen "127.0.0.1:8000", any path). */
SF_EXTERN int sf_server_options_new(const sf_mem *mem, sf_server_options_t **out);
SF_EXTERN void sf_server_options_free(sf_server_options_t *opts);

/**
 * Where to listen: "HOST:PORT" ("[::1]:PORT" for IPv6; port 0 picks a free
 * one) or "unix:/path/to/socket". Returns 0 or SF_EINVAL (malformed), SF_ENOMEM.
 */
SF_EXTERN int sf_server_options_set_listen(sf_server_options_t *opts, const char *listen);

/**
 * The request path. NULL (the default): every path serves every function.
 * A fixed path ("/statefun"): only that path. A template containing
 * "{function.name}" ("/fn/{function.name}"): one path per function type, with
 * the type's name (the part after the namespace) substituted; a request must
 * then target the function its path names. Returns 0, SF_EINVAL or SF_ENOMEM.
 */
SF_EXTERN int sf_server_options_set_path(sf_server_options_t *opts, const char *path);

/** Serves HTTPS (ALPN h2 and http/1.1) with these PEM files. NULL, NULL: plaintext. */
SF_EXTERN int sf_server_options_set_tls(sf_server_options_t *opts, const char *cert_file,
                                        const char *key_file);

/** Largest accepted request body (default 0: the transport's 4 MiB); larger: 413. */
SF_EXTERN int sf_server_options_set_max_body(sf_server_options_t *opts, size_t max_body_bytes);

/**
 * Called once the server listens, with the bound address as "HOST:PORT" or
 * "unix:/path" (the actual port when 0 was asked). Used by sf_serve, where the
 * loop is hidden. NULL: none.
 */
typedef void (*sf_server_ready_cb)(const char *address, void *user_data);
SF_EXTERN int sf_server_options_set_ready_cb(sf_server_options_t *opts, sf_server_ready_cb cb,
                                             void *user_data);

/* libuv's loop, kept opaque so this header needs no <uv.h>. */
struct uv_loop_s;

/**
 * Starts serving |fns| on |loop| as |opts| says (|opts| may be freed after
 * the call; |fns| must outlive the server). Every request is a POST whose
 * body is a ToFunction; the answer is 200 with the FromFunction
 * (application/octet-stream), 400 for a malformed request, 404 for an
 * unknown function or path, 405 for another method, 413 for a body over the
 * limit, 500 when a function fails. Loop thread only.
 *
 * Returns 0 and sets |*out|, SF_EEXIST (address in use), SF_ETLS (bad
 * certificate or key), SF_EINVAL or SF_ENOMEM.
 */
SF_EXTERN int sf_server_start(struct uv_loop_s *loop, const sf_functions_t *fns,
                              const sf_server_options_t *opts, sf_server_t **out);

/** The bound TCP port (0 for a UNIX socket). */
SF_EXTERN uint16_t sf_server_port(const sf_server_t *srv);

typedef void (*sf_server_close_cb)(sf_server_t *srv, void *user_data);
/**
 * Stops the server and frees it once all its handles are closed, then calls
 * |cb| (may be NULL) on the loop.
 */
SF_EXTERN void sf_server_close(sf_server_t *srv, sf_server_close_cb cb, void *user_data);

/**
 * Serves |fns| with |opts| on a loop of its own, blocking until SIGINT or
 * SIGTERM; then stops gracefully and returns 0. Returns a negative code when
 * the server cannot start.
 */
SF_EXTERN int sf_serve(const sf_functions_t *fns, const sf_server_options_t *opts);

/**
 * A complete main() for a remote function program: parses the standard
 * options
 *
 *   [--listen HOST:PORT | --listen unix:/PATH] [--path PATH]
 *   [--tls-cert FILE --tls-key FILE] [--max-body BYTES] [--help]
 *
 * (default listen 127.0.0.1:8000), builds the registry with |register_fn|,
 * prints "listening on ADDRESS" on stdout once it listens, and serves with
 * sf_serve until SIGINT or SIGTERM. |program| and |description| (one or more
 * lines, may be NULL) are used in the usage text. Returns the process exit
 * status: 0, 1 (the server failed; the reason is printed) or 2 (bad usage).
 */
SF_EXTERN int sf_serve_main(int argc, char **argv, const char *program, const char *description,
                            sf_register_cb register_fn);

/* ------------------------------------------------------------------------ */
/* Embedded: the module ABI                                                   */

/*
 * A function library for the embedded runtime is a shared object that links
 * its own static copy of this SDK and exports ONE symbol, SF_MODULE_SYMBOL,
 * defined by writing SF_MODULE(register_fn) in one of its .c files. The
 * runtime dlopens the library with RTLD_LOCAL, calls the symbol and then
 * calls the library only through the function pointers of the returned
 * struct. It checks |abi_version| == SF_MODULE_ABI_VERSION and |struct_size|
 * >= the size it knows. The version changes whenever this struct, the decoded
 * protocol structs or sf_arena_t change layout.
 */
#define SF_MODULE_ABI_VERSION 1
#define SF_MODULE_SYMBOL "statefun_module_v1"

typedef struct sf_module_abi_s {
    uint32_t abi_version;    /* SF_MODULE_ABI_VERSION */
    uint32_t struct_size;    /* sizeof(sf_module_abi_t) of the library */
    const char *sdk_version; /* SF_SDK_VERSION of the library */
    /* Creates the registry and binds the library's functions into it. */
    int (*functions_new)(const sf_mem *mem, sf_functions_t **out);
    void (*functions_free)(sf_functions_t *fns);
    size_t (*functions_count)(const sf_functions_t *fns);
    const char *(*functions_type)(const sf_functions_t *fns, size_t i);
    /* Bytes in, bytes out (see sf_handler_invoke). */
    int (*handler_new)(const sf_functions_t *fns, sf_handler_t **out);
    void (*handler_free)(sf_handler_t *inv);
    int (*handler_invoke)(sf_handler_t *inv, const uint8_t *req, size_t len, const uint8_t **out,
                          size_t *out_len);
    const char *(*handler_reason)(const sf_handler_t *inv);
    /* Struct in, struct out in the caller's arena (see sf_functions_invoke_pb). */
    int (*invoke_pb)(const sf_functions_t *fns,
                     const struct Io__Statefun__Sdk__Reqreply__ToFunction *req,
                     struct sf_arena_s *arena,
                     struct Io__Statefun__Sdk__Reqreply__FromFunction **out, const char **reason);
    const char *(*strerror)(int err);
} sf_module_abi_t;

/** The entry point SF_MODULE defines. */
SF_EXTERN const sf_module_abi_t *statefun_module_v1(void);

/**
 * Defines the module entry point of a function library. |register_fn| is an
 * sf_register_cb that binds the library's functions. Use it once per library,
 * at file scope.
 */
#define SF_MODULE(register_fn)                                                                     \
    static int sf__module_functions_new(const sf_mem *mem, sf_functions_t **out)                   \
    {                                                                                              \
        return sf_functions_create(mem, (register_fn), out);                                       \
    }                                                                                              \
    SF_EXTERN const sf_module_abi_t *statefun_module_v1(void)                                      \
    {                                                                                              \
        static const sf_module_abi_t module = {                                                    \
            .abi_version = SF_MODULE_ABI_VERSION,                                                  \
            .struct_size = (uint32_t)sizeof(sf_module_abi_t),                                      \
            .sdk_version = SF_SDK_VERSION,                                                         \
            .functions_new = sf__module_functions_new,                                             \
            .functions_free = sf_functions_free,                                                   \
            .functions_count = sf_functions_count,                                                 \
            .functions_type = sf_functions_type,                                                   \
            .handler_new = sf_handler_new,                                                         \
            .handler_free = sf_handler_free,                                                       \
            .handler_invoke = sf_handler_invoke,                                                   \
            .handler_reason = sf_handler_reason,                                                   \
            .invoke_pb = sf_functions_invoke_pb,                                                   \
            .strerror = sf_strerror,                                                               \
        };                                                                                         \
        return &module;                                                                            \
    }

#ifdef __cplusplus
}
#endif

#endif /* SF_H */
