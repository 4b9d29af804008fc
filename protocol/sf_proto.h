/* statefun-c: Apache License 2.0.
 *
 * The wire layer of the StateFun request-reply protocol (SPEC section 6).
 *
 * This is the only header that includes the protobuf-c output generated at
 * build time from the files in protocol/proto/. It gives the generated types short
 * names, owns packing and unpacking (unpacking always into an sf_arena_t, so a
 * decoded batch is released at once by resetting its arena), and helpers for
 * addresses, typed values and the built-in types (io.statefun.types/\*).
 *
 * Nothing here keeps global mutable state; any thread may call it with its own
 * arena and buffers.
 */
#ifndef SF_PROTO_H
#define SF_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kafka-egress.pb-c.h"
#include "request-reply.pb-c.h"
#include "types.pb-c.h"

#include "sf_common.h"

/* Short names for the generated types. */
typedef Io__Statefun__Sdk__Reqreply__Address sf_pb_address_t;
typedef Io__Statefun__Sdk__Reqreply__TypedValue sf_pb_typed_value_t;
typedef Io__Statefun__Sdk__Reqreply__ToFunction sf_pb_to_function_t;
typedef Io__Statefun__Sdk__Reqreply__ToFunction__PersistedValue sf_pb_persisted_value_t;
typedef Io__Statefun__Sdk__Reqreply__ToFunction__Invocation sf_pb_to_invocation_t;
typedef Io__Statefun__Sdk__Reqreply__ToFunction__InvocationBatchRequest sf_pb_batch_request_t;
typedef Io__Statefun__Sdk__Reqreply__FromFunction sf_pb_from_function_t;
typedef Io__Statefun__Sdk__Reqreply__FromFunction__PersistedValueMutation sf_pb_mutation_t;
typedef Io__Statefun__Sdk__Reqreply__FromFunction__Invocation sf_pb_from_invocation_t;
typedef Io__Statefun__Sdk__Reqreply__FromFunction__DelayedInvocation sf_pb_delayed_invocation_t;
typedef Io__Statefun__Sdk__Reqreply__FromFunction__EgressMessage sf_pb_egress_message_t;
typedef Io__Statefun__Sdk__Reqreply__FromFunction__InvocationResponse sf_pb_invocation_response_t;
typedef Io__Statefun__Sdk__Reqreply__FromFunction__ExpirationSpec sf_pb_expiration_spec_t;
typedef Io__Statefun__Sdk__Reqreply__FromFunction__PersistedValueSpec sf_pb_value_spec_t;
typedef Io__Statefun__Sdk__Reqreply__FromFunction__IncompleteInvocationContext sf_pb_incomplete_context_t;
typedef Io__Statefun__Sdk__Egress__KafkaProducerRecord sf_pb_kafka_record_t;

/* Oneof and enum values under short names. */
#define SF_PB_TO_FUNCTION_INVOCATION IO__STATEFUN__SDK__REQREPLY__TO_FUNCTION__REQUEST_INVOCATION
#define SF_PB_FROM_FUNCTION_NONE IO__STATEFUN__SDK__REQREPLY__FROM_FUNCTION__RESPONSE__NOT_SET
#define SF_PB_FROM_FUNCTION_RESULT IO__STATEFUN__SDK__REQREPLY__FROM_FUNCTION__RESPONSE_INVOCATION_RESULT
#define SF_PB_FROM_FUNCTION_INCOMPLETE                                                             \
    IO__STATEFUN__SDK__REQREPLY__FROM_FUNCTION__RESPONSE_INCOMPLETE_INVOCATION_CONTEXT
#define SF_PB_MUTATION_DELETE                                                                      \
    IO__STATEFUN__SDK__REQREPLY__FROM_FUNCTION__PERSISTED_VALUE_MUTATION__MUTATION_TYPE__DELETE
#define SF_PB_MUTATION_MODIFY                                                                      \
    IO__STATEFUN__SDK__REQREPLY__FROM_FUNCTION__PERSISTED_VALUE_MUTATION__MUTATION_TYPE__MODIFY
#define SF_PB_EXPIRE_NONE IO__STATEFUN__SDK__REQREPLY__FROM_FUNCTION__EXPIRATION_SPEC__EXPIRE_MODE__NONE
#define SF_PB_EXPIRE_AFTER_WRITE                                                                   \
    IO__STATEFUN__SDK__REQREPLY__FROM_FUNCTION__EXPIRATION_SPEC__EXPIRE_MODE__AFTER_WRITE
#define SF_PB_EXPIRE_AFTER_INVOKE                                                                  \
    IO__STATEFUN__SDK__REQREPLY__FROM_FUNCTION__EXPIRATION_SPEC__EXPIRE_MODE__AFTER_INVOKE

/* Initializers for the generated structs. */
#define SF_PB_ADDRESS_INIT IO__STATEFUN__SDK__REQREPLY__ADDRESS__INIT
#define SF_PB_TYPED_VALUE_INIT IO__STATEFUN__SDK__REQREPLY__TYPED_VALUE__INIT
#define SF_PB_TO_FUNCTION_INIT IO__STATEFUN__SDK__REQREPLY__TO_FUNCTION__INIT
#define SF_PB_PERSISTED_VALUE_INIT IO__STATEFUN__SDK__REQREPLY__TO_FUNCTION__PERSISTED_VALUE__INIT
#define SF_PB_TO_INVOCATION_INIT IO__STATEFUN__SDK__REQREPLY__TO_FUNCTION__INVOCATION__INIT
#define SF_PB_BATCH_REQUEST_INIT                                                                   \
    IO__STATEFUN__SDK__REQREPLY__TO_FUNCTION__INVOCATION_BATCH_REQUEST__INIT
#define SF_PB_FROM_FUNCTION_INIT IO__STATEFUN__SDK__REQREPLY__FROM_FUNCTION__INIT
#define SF_PB_MUTATION_INIT                                                                        \
    IO__STATEFUN__SDK__REQREPLY__FROM_FUNCTION__PERSISTED_VALUE_MUTATION__INIT
#define SF_PB_FROM_INVOCATION_INIT IO__STATEFUN__SDK__REQREPLY__FROM_FUNCTION__INVOCATION__INIT
#define SF_PB_DELAYED_INVOCATION_INIT                                                              \
    IO__STATEFUN__SDK__REQREPLY__FROM_FUNCTION__DELAYED_INVOCATION__INIT
#define SF_PB_EGRESS_MESSAGE_INIT IO__STATEFUN__SDK__REQREPLY__FROM_FUNCTION__EGRESS_MESSAGE__INIT
#define SF_PB_INVOCATION_RESPONSE_INIT                                                             \
    IO__STATEFUN__SDK__REQREPLY__FROM_FUNCTION__INVOCATION_RESPONSE__INIT
#define SF_PB_EXPIRATION_SPEC_INIT IO__STATEFUN__SDK__REQREPLY__FROM_FUNCTION__EXPIRATION_SPEC__INIT
#define SF_PB_VALUE_SPEC_INIT IO__STATEFUN__SDK__REQREPLY__FROM_FUNCTION__PERSISTED_VALUE_SPEC__INIT
#define SF_PB_INCOMPLETE_CONTEXT_INIT                                                              \
    IO__STATEFUN__SDK__REQREPLY__FROM_FUNCTION__INCOMPLETE_INVOCATION_CONTEXT__INIT
#define SF_PB_KAFKA_RECORD_INIT IO__STATEFUN__SDK__EGRESS__KAFKA_PRODUCER_RECORD__INIT

/* Typenames of the built-in types and of the well-known records. */
#define SF_TYPE_BOOL "io.statefun.types/bool"
#define SF_TYPE_INT "io.statefun.types/int"
#define SF_TYPE_LONG "io.statefun.types/long"
#define SF_TYPE_FLOAT "io.statefun.types/float"
#define SF_TYPE_DOUBLE "io.statefun.types/double"
#define SF_TYPE_STRING "io.statefun.types/string"
#define SF_TYPE_PLAYGROUND_EGRESS_RECORD "io.statefun.playground/EgressRecord"
#define SF_TYPE_KAFKA_PRODUCER_RECORD                                                              \
    "type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord"

/* ------------------------------------------------------------------------ */
/* Arena                                                                      */

/**
 * A bump allocator for everything decoded from one message (and for
 * temporaries built next to it). Allocations are 16-byte aligned and freed
 * all at once by sf_arena_reset (which keeps the first chunk for reuse) or
 * sf_arena_dispose. Single-threaded.
 */
typedef struct sf_arena_chunk_s sf_arena_chunk_t;
typedef struct sf_arena_s {
    sf_arena_chunk_t *_head; /* private: newest chunk first */
    const sf_mem *_mem;      /* private */
    size_t _bytes;           /* private: bytes handed out since the last reset */
} sf_arena_t;

/* Private, here for the inline sf_arena_alloc. Part of the embedded module ABI
 * (an embedded library allocates from the runtime's arena with its own copy
 * of this code): changing it changes SF_MODULE_ABI_VERSION. */
struct sf_arena_chunk_s {
    sf_arena_chunk_t *next;
    size_t size; /* usable bytes after the header */
    size_t used;
    /* data follows, aligned */
};
#define SF__ARENA_ALIGN 16
#define SF__ARENA_HDR                                                                              \
    ((sizeof(sf_arena_chunk_t) + SF__ARENA_ALIGN - 1) & ~(size_t)(SF__ARENA_ALIGN - 1))

void sf_arena_init(sf_arena_t *arena, const sf_mem *mem);
/** sf_arena_alloc when the current chunk has no room (or |size| is 0): takes a
 * new chunk, then allocates from it. */
void *sf__arena_alloc_chunk(sf_arena_t *arena, size_t size);

/**
 * Returns |size| bytes, or NULL when the allocator fails. Inline: building a
 * request or reply takes dozens of these (bench/instructions.py).
 */
static inline void *sf_arena_alloc(sf_arena_t *arena, size_t size)
{
    sf_arena_chunk_t *c = arena->_head;
    size_t need = (size + SF__ARENA_ALIGN - 1) & ~(size_t)(SF__ARENA_ALIGN - 1);
    void *p;
    if (!c || size == 0 || need < size || need > c->size - c->used)
        return sf__arena_alloc_chunk(arena, size);
    p = (char *)c + SF__ARENA_HDR + c->used;
    c->used += need;
    arena->_bytes += need;
    return p;
}
/** Copies |len| bytes and NUL-terminates them in the arena. */
char *sf_arena_strndup(sf_arena_t *arena, const char *s, size_t len);
void sf_arena_reset(sf_arena_t *arena);
void sf_arena_dispose(sf_arena_t *arena);
/** Bytes handed out since the last reset (for metrics and tests). */
static inline size_t sf_arena_used(const sf_arena_t *arena) { return arena->_bytes; }

/* ------------------------------------------------------------------------ */
/* Pack and unpack                                                            */

/**
 * Decodes a ToFunction from |data|. The result and everything it points to
 * live in |arena|; they stay valid until the arena is reset. |data| may be
 * released right after the call (bytes fields are copied).
 * Returns NULL when the bytes are not a valid ToFunction (or on OOM).
 */
sf_pb_to_function_t *sf_proto_to_function_unpack(sf_arena_t *arena, const uint8_t *data,
                                                 size_t len);
/** As sf_proto_to_function_unpack, for a FromFunction. */
sf_pb_from_function_t *sf_proto_from_function_unpack(sf_arena_t *arena, const uint8_t *data,
                                                     size_t len);

/**
 * Appends the encoding of |msg| to |out|. Returns 0 or SF_ENOMEM.
 */
int sf_proto_to_function_pack(const sf_pb_to_function_t *msg, sf_buf_t *out);
int sf_proto_from_function_pack(const sf_pb_from_function_t *msg, sf_buf_t *out);
/** Appends the encoding of any generated message. Returns 0 or SF_ENOMEM. */
int sf_proto_pack_message(const ProtobufCMessage *msg, sf_buf_t *out);

/* ------------------------------------------------------------------------ */
/* Addresses                                                                  */

/**
 * Parses "namespace/type/id" (the id may contain further '/') into |addr|
 * with strings copied into |arena|. Returns 0, SF_EINVAL when a part is
 * missing or empty, or SF_ENOMEM.
 */
int sf_proto_address_parse(sf_arena_t *arena, const char *s, size_t len, sf_pb_address_t *addr);

/**
 * Parses a function type "namespace/type" into two arena strings.
 * Returns 0 or SF_EINVAL.
 */
int sf_proto_typename_split(sf_arena_t *arena, const char *s, size_t len, char **ns, char **name);

/** Returns true when both addresses name the same function instance. */
bool sf_proto_address_equal(const sf_pb_address_t *a, const sf_pb_address_t *b);

/* ------------------------------------------------------------------------ */
/* Built-in types (io.statefun.types/\*)                                      */

/**
 * Appends the wrapper-message encoding of a built-in value to |out|; this is
 * what goes into TypedValue.value for the matching typename.
 * Returns 0 or SF_ENOMEM.
 */
int sf_proto_encode_bool(bool v, sf_buf_t *out);
int sf_proto_encode_int(int32_t v, sf_buf_t *out);
int sf_proto_encode_long(int64_t v, sf_buf_t *out);
int sf_proto_encode_float(float v, sf_buf_t *out);
int sf_proto_encode_double(double v, sf_buf_t *out);
int sf_proto_encode_string(const char *s, size_t len, sf_buf_t *out);

/**
 * Decodes a built-in value from its wrapper-message bytes.
 * Returns 0 or SF_EPROTO when the bytes are not that wrapper.
 */
int sf_proto_decode_bool(const uint8_t *data, size_t len, bool *v);
int sf_proto_decode_int(const uint8_t *data, size_t len, int32_t *v);
int sf_proto_decode_long(const uint8_t *data, size_t len, int64_t *v);
int sf_proto_decode_float(const uint8_t *data, size_t len, float *v);
int sf_proto_decode_double(const uint8_t *data, size_t len, double *v);
/**
 * Decodes a StringWrapper; |*s| is NUL-terminated and lives in |arena|. As
 * with sf_proto_encode_string, a value ends at its first NUL (protobuf-c
 * keeps C strings). |data| may be NULL when |len| is 0. Returns 0, SF_EPROTO
 * or SF_ENOMEM (the arena's allocator failed).
 */
int sf_proto_decode_string(sf_arena_t *arena, const uint8_t *data, size_t len, char **s,
                           size_t *slen);

#endif /* SF_PROTO_H */
