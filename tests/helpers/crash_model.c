/* statefun-c: Apache License 2.0.
 *
 * The crash test's message generator and expectations (see crash_model.h).
 * Runs on the thread that owns the generator.
 */
#include "crash_model.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A message being built: its text and its expectations, grown as needed. */
typedef struct {
    sf_crash_msg_t *m;
    size_t body_cap, ids_cap, incs_cap;
    bool failed;
} build_t;

uint64_t sf_crash_rng_seed(uint64_t seed, uint64_t lane)
{
    /* splitmix64 of the pair, never 0 (xorshift's fixed point). */
    uint64_t z = seed + 0x9e3779b97f4a7c15ull * (lane + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return z ? z : 0x2545f4914f6cdd1dull;
}

uint64_t sf_crash_rng_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dull;
}

static uint32_t below(sf_crash_gen_t *g, uint32_t n)
{
    return (uint32_t)(sf_crash_rng_next(&g->rng) % n);
}

void sf_crash_gen_init(sf_crash_gen_t *g, uint64_t seed, uint32_t lane, uint32_t stride,
                       uint32_t naddr)
{
    memset(g, 0, sizeof *g);
    g->rng = sf_crash_rng_seed(seed, lane);
    g->lane = lane;
    g->stride = stride ? stride : 1;
    g->naddr = naddr ? naddr : 1;
    g->max_depth = 3;
    g->max_delay_ms = 500;
}

uint64_t sf_crash_gen_id_end(const sf_crash_gen_t *g)
{
    return g->seq ? (g->seq - 1) * g->stride + g->lane + 1 : 0;
}

static uint64_t next_id(sf_crash_gen_t *g)
{
    return g->seq++ * g->stride + g->lane;
}

static void grow(build_t *b, void **p, size_t *cap, size_t need, size_t elem)
{
    size_t c = *cap ? *cap : 16;
    void *q;
    if (need <= *cap || b->failed)
        return;
    while (c < need)
        c *= 2;
    if (!(q = realloc(*p, c * elem))) {
        b->failed = true;
        return;
    }
    *p = q;
    *cap = c;
}

static void emit(build_t *b, const char *fmt, unsigned long long a, unsigned long long c,
                 unsigned long long d)
{
    char tmp[96];
    int n = snprintf(tmp, sizeof tmp, fmt, a, c, d);
    sf_crash_msg_t *m = b->m;
    grow(b, (void **)&m->body, &b->body_cap, m->body_len + (size_t)n + 1, 1);
    if (b->failed)
        return;
    memcpy(m->body + m->body_len, tmp, (size_t)n + 1);
    m->body_len += (size_t)n;
}

static void expect_id(build_t *b, uint64_t id)
{
    sf_crash_msg_t *m = b->m;
    grow(b, (void **)&m->ids, &b->ids_cap, m->nids + 1, sizeof *m->ids);
    if (!b->failed)
        m->ids[m->nids++] = id;
}

static void expect_inc(build_t *b, uint32_t addr)
{
    sf_crash_msg_t *m = b->m;
    grow(b, (void **)&m->incs, &b->incs_cap, m->nincs + 1, sizeof *m->incs);
    if (!b->failed)
        m->incs[m->nincs++] = addr;
}

static void egress(sf_crash_gen_t *g, build_t *b, bool cancelled)
{
    uint64_t id = next_id(g);
    emit(b, cancelled ? "x%llu" : "e%llu", id, 0, 0);
    if (!cancelled)
        expect_id(b, id);
}

/*
 * Writes the commands run by address |addr|, |delay| ms after the ingress
 * message at the earliest; |cancelled|: they never run.
 */
static void gen_list(sf_crash_gen_t *g, build_t *b, uint32_t addr, int depth, bool cancelled,
                     int delay)
{
    uint32_t i, n = 1 + below(g, 4);

    if (!cancelled && delay > b->m->max_delay_ms)
        b->m->max_delay_ms = delay;
    egress(g, b, cancelled);
    for (i = 0; i < n; i++) {
        uint32_t r = below(g, 100), t = below(g, g->naddr);
        if (r < 45 || depth >= g->max_depth) {
            emit(b, "i", 0, 0, 0);
            if (!cancelled)
                expect_inc(b, addr);
        } else if (r < 55) {
            egress(g, b, cancelled);
        } else if (r < 72) {
            emit(b, "s%llu(", t, 0, 0);
            gen_list(g, b, t, depth + 1, cancelled, delay);
            emit(b, ")", 0, 0, 0);
        } else if (r < 90) {
            int d = (int)below(g, (uint32_t)g->max_delay_ms);
            uint64_t token = below(g, 2) ? next_id(g) + 1 : 0; /* 0: no token */
            emit(b, "a%llu,%llu,%llu(", (unsigned long long)d, t, token);
            gen_list(g, b, t, depth + 1, cancelled, delay + d);
            emit(b, ")", 0, 0, 0);
        } else {
            /* Sent after a delay and cancelled in the same reply: never runs. */
            int d = 100 + (int)below(g, (uint32_t)g->max_delay_ms);
            emit(b, "c%llu,%llu,%llu(", (unsigned long long)d, t, next_id(g) + 1);
            gen_list(g, b, t, depth + 1, true, delay + d);
            emit(b, ")", 0, 0, 0);
        }
    }
}

int sf_crash_gen_msg(sf_crash_gen_t *g, sf_crash_msg_t *m)
{
    build_t b;
    memset(m, 0, sizeof *m);
    memset(&b, 0, sizeof b);
    b.m = m;
    m->target = below(g, g->naddr);
    gen_list(g, &b, m->target, 0, false, 0);
    if (b.failed || !m->body) {
        sf_crash_msg_dispose(m);
        return -1;
    }
    return 0;
}

void sf_crash_msg_dispose(sf_crash_msg_t *m)
{
    free(m->body);
    free(m->ids);
    free(m->incs);
    memset(m, 0, sizeof *m);
}
