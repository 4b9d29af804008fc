/* statefun-c: Apache License 2.0.
 *
 * An egress topic in memory (see topic.h): a ring of record pointers that
 * doubles up to the record bound, one allocation per record. Runs on the I/O
 * thread.
 */
#include "topic.h"

#include <stdlib.h>
#include <string.h>

#include "sf_common.h"
#include "xalloc.h"

void sf_topic_init(sf_topic_t *t, const char *name, size_t max_records, size_t max_bytes)
{
    SF_ASSERT(max_records >= 1);
    memset(t, 0, sizeof(*t));
    t->name = sf_xstrdup(name);
    t->max_records = max_records;
    t->max_bytes = max_bytes;
}

static sf_topic_rec_t **slot(const sf_topic_t *t, uint64_t offset)
{
    return &t->_ring[(t->_head + (size_t)(offset - t->base)) % t->_cap];
}

void sf_topic_dispose(sf_topic_t *t)
{
    uint64_t o;
    for (o = t->base; o < t->end; o++)
        free(*slot(t, o));
    free(t->_ring);
    free(t->name);
    memset(t, 0, sizeof(*t));
}

static void drop_oldest(sf_topic_t *t)
{
    sf_topic_rec_t **s = slot(t, t->base);
    t->bytes -= (*s)->len;
    free(*s);
    *s = NULL;
    /* A record was unread if the cursor had not passed it (hidden ones were
     * never readable at all). */
    if (t->cursor <= t->base)
        t->dropped_unread++;
    t->dropped++;
    t->_head = (t->_head + 1) % t->_cap;
    t->base++;
    if (t->visible < t->base)
        t->visible = t->base;
    if (t->cursor < t->base)
        t->cursor = t->base;
}

static void grow(sf_topic_t *t)
{
    size_t ncap = t->_cap ? t->_cap * 2 : 16, n = (size_t)sf_topic_count(t), i;
    sf_topic_rec_t **ring;
    if (ncap > t->max_records)
        ncap = t->max_records;
    ring = sf_xmalloc(ncap * sizeof(*ring));
    for (i = 0; i < n; i++)
        ring[i] = t->_ring[(t->_head + i) % t->_cap];
    free(t->_ring);
    t->_ring = ring;
    t->_cap = ncap;
    t->_head = 0;
}

uint64_t sf_topic_append(sf_topic_t *t, const void *data, size_t len)
{
    sf_topic_rec_t *r;
    while (sf_topic_count(t) > 0 &&
           (sf_topic_count(t) >= t->max_records || t->bytes + len > t->max_bytes))
        drop_oldest(t);
    if (sf_topic_count(t) == t->_cap)
        grow(t);
    r = sf_xmalloc(sizeof(*r) + len);
    r->len = len;
    if (len)
        memcpy(r->data, data, len);
    t->end++;
    *slot(t, t->end - 1) = r;
    t->bytes += len;
    return t->end - 1;
}

void sf_topic_publish(sf_topic_t *t, uint64_t upto)
{
    if (upto > t->end)
        upto = t->end;
    if (upto > t->visible)
        t->visible = upto;
}

const sf_topic_rec_t *sf_topic_get(const sf_topic_t *t, uint64_t offset)
{
    if (offset < t->base || offset >= t->visible)
        return NULL;
    return *slot(t, offset);
}

uint64_t sf_topic_unread(const sf_topic_t *t)
{
    uint64_t from = t->cursor > t->base ? t->cursor : t->base;
    return t->visible > from ? t->visible - from : 0;
}

const sf_topic_rec_t *sf_topic_pop(sf_topic_t *t, uint64_t *offset)
{
    const sf_topic_rec_t *r;
    if (t->cursor < t->base)
        t->cursor = t->base;
    r = sf_topic_get(t, t->cursor);
    if (!r)
        return NULL;
    *offset = t->cursor++;
    return r;
}

void sf_topic_start_at(sf_topic_t *t, uint64_t offset)
{
    SF_ASSERT(t->end == 0 && t->base == 0);
    t->base = t->end = t->visible = t->cursor = offset;
}

void sf_topic_skip(sf_topic_t *t, uint64_t offset)
{
    while (sf_topic_count(t) > 0 && t->base < offset)
        drop_oldest(t);
    if (offset > t->end) {
        uint64_t n = offset - t->end;
        /* Never kept here, so never read (the cursor is at most |end|). */
        t->dropped += n;
        t->dropped_unread += n;
        t->base = t->end = offset;
        t->_head = 0;
        if (t->visible < offset)
            t->visible = offset;
        if (t->cursor < offset)
            t->cursor = offset;
    }
}

void sf_topic_set_cursor(sf_topic_t *t, uint64_t cursor)
{
    t->cursor = cursor < t->end ? cursor : t->end;
}
