/* statefun-c: Apache License 2.0.
 *
 * Internals of the C SDK shared by its source files: the registry of bound
 * functions (sf_functions.c), the invocation context a callback sees
 * (sf_context.c) and the protocol core that runs a batch (sf_core.c). Not a
 * public header: tests include it to reach the internals.
 *
 * A registry is written only while binding and read-only afterwards, so any
 * number of threads may run batches against it, each with its own arena. An
 * sf_ctx_t lives on the stack of the thread running one batch.
 */
#ifndef SF_SDK_INT_H
#define SF_SDK_INT_H

#include <stdbool.h>

#include "sf_proto.h"
#include "statefun/sf.h"

/** One bound function type. Every string is owned by the registry. */
typedef struct sf__function_s {
    char *type;             /* "namespace/name" */
    size_t ns_len;          /* length of the namespace part of |type| */
    const char *name;       /* points after the '/' in |type| */
    sf_function_cb cb;      /* the user's callback */
    void *user_data;        /* passed to |cb| */
    sf_value_spec_t *specs; /* declared states, strings owned */
    size_t nspecs;
} sf__function_t;

struct sf_functions_s {
    const sf_mem *mem;    /* private: the allocator (NULL: libc) */
    sf__function_t **fns; /* private: bound types, in binding order */
    size_t n;             /* private */
    size_t cap;           /* private */
};

/**
 * Finds the function bound for namespace |ns| and type name |name|, or NULL.
 * Any thread, once binding is over.
 */
const sf__function_t *sf__functions_find(const sf_functions_t *fns, const char *ns,
                                         const char *name);

/**
 * A new |type| in |arena|, set to |init| (a generated *_INIT); NULL when the
 * arena is out of memory.
 */
#define ARENA_NEW(arena, type, init)                                                               \
    ({                                                                                             \
        type *p_ = sf_arena_alloc((arena), sizeof(type));                                          \
        if (p_) {                                                                                  \
            type i_ = init;                                                                        \
            *p_ = i_;                                                                              \
        }                                                                                          \
        p_;                                                                                        \
    })

/** A growable array of pointers that lives in an arena. */
typedef struct sf__vec_s {
    void **items;
    size_t n;
    size_t cap;
} sf__vec_t;

/** Appends |item|; returns 0 or SF_ENOMEM (the vector is unchanged then). */
int sf__vec_push(sf_arena_t *arena, sf__vec_t *vec, void *item);

/** The current value of one declared state during a batch. */
typedef struct sf__slot_s {
    const sf_value_spec_t *spec; /* the declaration (registry memory) */
    bool in_request;             /* the request carried the state (maybe empty) */
    bool has_value;              /* current value present */
    const uint8_t *data;         /* current bytes (request or arena memory) */
    size_t len;
    bool orig_has_value; /* the value the request carried */
    const uint8_t *orig_data;
    size_t orig_len;
    bool dirty; /* written or deleted during the batch */
} sf__slot_t;

/** What a callback sees; one per batch, on the stack of sf_functions_invoke_pb. */
struct sf_ctx_s {
    sf_arena_t *arena;        /* results and temporaries */
    const sf__function_t *fn; /* the function being run */
    sf_address_t self;        /* borrowed from the request */
    sf_address_t caller;      /* borrowed from the current invocation */
    bool has_caller;          /* false for a message from an ingress */
    sf__slot_t *slots;        /* one per declared spec, in declaration order */
    sf__vec_t messages;       /* sf_pb_from_invocation_t *, in order sent */
    sf__vec_t delayed;        /* sf_pb_delayed_invocation_t * (incl. cancellations) */
    sf__vec_t egresses;       /* sf_pb_egress_message_t * */
    bool out_of_memory;       /* an SDK call of this batch failed with SF_ENOMEM */
};

/** The message of one invocation, as a callback sees it. */
struct sf_message_s {
    const char *type_name; /* never NULL */
    const uint8_t *data;   /* may be NULL when len is 0 */
    size_t len;
    sf_ctx_t *ctx; /* for decoding strings into the arena */
};

/**
 * sf_handler_invoke, but a request whose target is not the function |only|
 * (when set) fails with SF_ENOTFOUND. Used by the server for paths that name
 * one function.
 */
int sf__handler_invoke_only(sf_handler_t *inv, const sf__function_t *only, const uint8_t *req,
                            size_t len, const uint8_t **out, size_t *out_len);

/** printf into |arena|; returns |fallback| when the arena is out of memory. */
const char *sf__arena_printf(sf_arena_t *arena, const char *fallback, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* SF_SDK_INT_H */
