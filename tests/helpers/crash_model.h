/* statefun-c: Apache License 2.0.
 *
 * The crash test's model (check_crash.c): a seeded generator of command
 * messages for the interpreter of tests/modules/crash (see crash_fns.h for
 * the encoding), which also computes what each message must cause: the
 * counter increments per address and the egress record ids, leaving out
 * everything inside a cancelled delayed message.
 *
 * Every command list the generator writes starts with an egress record, so
 * every invocation the runtime makes shows in the egress: a message's first
 * id (its marker) tells whether the runtime accepted it, and "every expected
 * record is visible" means "every invocation has been committed".
 *
 * Ids are unique across generators that share a |stride| and use different
 * |lane|s (id = seq * stride + lane). The same seed gives the same messages.
 *
 * Threading: a generator belongs to one thread.
 */
#ifndef SF_CRASH_MODEL_H
#define SF_CRASH_MODEL_H

#include <stddef.h>
#include <stdint.h>

/** What became of a message sent to the ingress. */
typedef enum {
    SF_CRASH_NOT_SENT = 0, /* never sent (the run stopped first) */
    SF_CRASH_ACKED = 1,    /* answered 200: durably accepted */
    SF_CRASH_UNKNOWN = 2,  /* sent, but the connection died before the answer */
} sf_crash_outcome;

typedef struct sf_crash_msg_s {
    uint32_t target; /* the address id the ingress message goes to */
    char *body;      /* the commands (owned, NUL-terminated) */
    size_t body_len;
    uint64_t *ids; /* the "e" ids it must produce, exactly once each; ids[0] is the marker */
    size_t nids;
    uint32_t *incs; /* the address of every increment it causes (repeats allowed) */
    size_t nincs;
    int max_delay_ms; /* the longest chain of delays in it */
    sf_crash_outcome outcome;
} sf_crash_msg_t;

typedef struct sf_crash_gen_s {
    uint64_t rng;     /* private: xorshift64* state */
    uint64_t seq;     /* read-only: ids handed out so far */
    uint32_t lane;    /* read-only */
    uint32_t stride;  /* read-only */
    uint32_t naddr;   /* read-only: address ids are 0 .. naddr - 1 */
    int max_depth;    /* nesting of sends (default 3) */
    int max_delay_ms; /* delays of sent-after messages are below it (default 500) */
} sf_crash_gen_t;

/** Seeds a xorshift64* state from |seed| and |lane|. */
uint64_t sf_crash_rng_seed(uint64_t seed, uint64_t lane);
/** The next pseudo-random number of |state|. */
uint64_t sf_crash_rng_next(uint64_t *state);

void sf_crash_gen_init(sf_crash_gen_t *g, uint64_t seed, uint32_t lane, uint32_t stride,
                       uint32_t naddr);

/**
 * Generates the next message into |m| (outcome SF_CRASH_NOT_SENT); release
 * it with sf_crash_msg_dispose. Returns 0, or -1 when out of memory.
 */
int sf_crash_gen_msg(sf_crash_gen_t *g, sf_crash_msg_t *m);

/** The largest id |g| has handed out, plus one (0 when none). */
uint64_t sf_crash_gen_id_end(const sf_crash_gen_t *g);

void sf_crash_msg_dispose(sf_crash_msg_t *m);

#endif
