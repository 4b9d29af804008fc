/* statefun-c: Apache License 2.0.
 *
 * Incrementally rehashed chained hash table (see actmap.h).
 */
#include "actmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "xalloc.h"

#define REHASH_STEP 16

void sf_actmap_init(sf_actmap_t *m)
{
    memset(m, 0, sizeof *m);
    m->_rehash_idx = SIZE_MAX;
}

void sf_actmap_dispose(sf_actmap_t *m)
{
    free(m->_tab[0]);
    free(m->_tab[1]);
    sf_actmap_init(m);
}

uint64_t sf_actmap_hash(const char *key, size_t len) { return XXH3_64bits(key, len); }

static int rehashing(const sf_actmap_t *m) { return m->_rehash_idx != SIZE_MAX; }

static void rehash_step(sf_actmap_t *m, size_t n)
{
    while (n-- && rehashing(m)) {
        sf_actmap_node_t *e;
        while (m->_rehash_idx < m->_size[0] && !m->_tab[0][m->_rehash_idx])
            m->_rehash_idx++;
        if (m->_rehash_idx >= m->_size[0]) {
            free(m->_tab[0]);
            m->_tab[0] = m->_tab[1];
            m->_size[0] = m->_size[1];
            m->_used[0] = m->_used[1];
            m->_tab[1] = NULL;
            m->_size[1] = m->_used[1] = 0;
            m->_rehash_idx = SIZE_MAX;
            return;
        }
        e = m->_tab[0][m->_rehash_idx];
        while (e) {
            sf_actmap_node_t *next = e->next;
            size_t b = e->hash & (m->_size[1] - 1);
            e->next = m->_tab[1][b];
            m->_tab[1][b] = e;
            m->_used[0]--;
            m->_used[1]++;
            e = next;
        }
        m->_tab[0][m->_rehash_idx++] = NULL;
    }
}

static void maybe_grow(sf_actmap_t *m)
{
    if (rehashing(m))
        return;
    if (m->_size[0] == 0) {
        m->_size[0] = 16;
        m->_tab[0] = sf_xcalloc(16, sizeof(sf_actmap_node_t *));
        return;
    }
    if (m->_used[0] >= m->_size[0]) {
        m->_size[1] = m->_size[0] * 2;
        m->_tab[1] = sf_xcalloc(m->_size[1], sizeof(sf_actmap_node_t *));
        m->_used[1] = 0;
        m->_rehash_idx = 0;
    }
}

sf_actmap_node_t *sf_actmap_get(sf_actmap_t *m, const char *key, size_t len, uint64_t hash)
{
    int t;
    if (rehashing(m))
        rehash_step(m, 1);
    for (t = 0; t < 2; t++) {
        sf_actmap_node_t *e;
        if (!m->_size[t])
            continue;
        for (e = m->_tab[t][hash & (m->_size[t] - 1)]; e; e = e->next)
            if (e->hash == hash && e->key_len == len && memcmp(e->key, key, len) == 0)
                return e;
        if (!rehashing(m))
            break;
    }
    return NULL;
}

void sf_actmap_put(sf_actmap_t *m, sf_actmap_node_t *node)
{
    int t;
    size_t b;
    maybe_grow(m);
    if (rehashing(m))
        rehash_step(m, REHASH_STEP);
    t = rehashing(m) ? 1 : 0;
    b = node->hash & (m->_size[t] - 1);
    node->next = m->_tab[t][b];
    m->_tab[t][b] = node;
    m->_used[t]++;
}

void sf_actmap_del(sf_actmap_t *m, sf_actmap_node_t *node)
{
    int t;
    for (t = 0; t < 2; t++) {
        sf_actmap_node_t **pp;
        if (!m->_size[t])
            continue;
        for (pp = &m->_tab[t][node->hash & (m->_size[t] - 1)]; *pp; pp = &(*pp)->next) {
            if (*pp == node) {
                *pp = node->next;
                node->next = NULL;
                m->_used[t]--;
                return;
            }
        }
    }
}

size_t sf_actmap_count(const sf_actmap_t *m) { return m->_used[0] + m->_used[1]; }

void sf_actmap_foreach(sf_actmap_t *m, void (*fn)(sf_actmap_node_t *node, void *ud), void *ud)
{
    int t;
    size_t i;
    for (t = 0; t < 2; t++)
        for (i = 0; i < m->_size[t]; i++) {
            sf_actmap_node_t *e = m->_tab[t][i];
            while (e) {
                sf_actmap_node_t *next = e->next;
                fn(e, ud);
                e = next;
            }
        }
}
