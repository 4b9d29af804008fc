/* statefun-c: Apache License 2.0.
 *
 * Messages, addresses and key groups (see message.h).
 *
 * Encoding of a message (all integers little-endian):
 *   u32 magic 'SFM1' | u8 kind | u8 has_caller | u16 reserved | u64 seq |
 *   u32 target_len | u32 caller_len | u32 typename_len | u32 value_len |
 *   target | caller | typename | value
 */
#include "message.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "xalloc.h"

#define MSG_MAGIC 0x314d4653u /* "SFM1" */
#define MSG_HDR 32

int sf_addr_parse(const char *s, size_t len, sf_addr_t *out)
{
    const char *a = memchr(s, '/', len), *b;
    if (!a || a == s)
        return SF_EINVAL;
    b = memchr(a + 1, '/', (size_t)(s + len - a - 1));
    if (!b || b == a + 1 || b + 1 >= s + len)
        return SF_EINVAL;
    out->ns = s;
    out->ns_len = (size_t)(a - s);
    out->type = a + 1;
    out->type_len = (size_t)(b - a - 1);
    out->id = b + 1;
    out->id_len = (size_t)(s + len - b - 1);
    return SF_OK;
}

uint16_t sf_key_group(const char *addr, size_t len, uint32_t max_parallelism)
{
    return (uint16_t)(XXH3_64bits(addr, len) % max_parallelism);
}

uint32_t sf_key_group_range_start(uint32_t worker, uint32_t nworkers, uint32_t max_parallelism)
{
    /* Flink's KeyGroupRangeAssignment: ceil(worker * maxp / n). */
    return (uint32_t)(((uint64_t)worker * max_parallelism + nworkers - 1) / nworkers);
}

uint32_t sf_key_group_owner(uint32_t kg, uint32_t nworkers, uint32_t max_parallelism)
{
    return (uint32_t)((uint64_t)kg * nworkers / max_parallelism);
}

static sf_msg_t *msg_alloc(size_t tl, size_t cl, size_t nl, size_t vl)
{
    sf_msg_t *m = sf_xmalloc(sizeof(*m) + tl + 1 + cl + 1 + nl + 1 + vl);
    m->link.next = NULL;
    m->seq = 0;
    m->accepted_us = 0;
    m->kind = SF_MSG_INVOKE;
    m->target_len = (uint32_t)tl;
    m->caller_len = (uint32_t)cl;
    m->typename_len = (uint32_t)nl;
    m->value_len = (uint32_t)vl;
    return m;
}

int sf_msg_new(const sf_msg_init_t *in, uint32_t max_parallelism, sf_msg_t **out)
{
    sf_addr_t a;
    sf_msg_t *m;
    char *p;
    if (in->kind == SF_MSG_EGRESS) {
        const char *slash = memchr(in->target, '/', in->target_len);
        if (!slash || slash == in->target || slash + 1 == in->target + in->target_len ||
            memchr(slash + 1, '/', (size_t)(in->target + in->target_len - slash - 1)))
            return SF_EINVAL;
    } else if (in->kind != SF_MSG_INVOKE || sf_addr_parse(in->target, in->target_len, &a) != 0) {
        return SF_EINVAL;
    }
    if (in->caller && sf_addr_parse(in->caller, in->caller_len, &a) != 0)
        return SF_EINVAL;
    m = msg_alloc(in->target_len, in->caller ? in->caller_len : 0, in->type_name_len,
                  in->value_len);
    m->has_caller = in->caller != NULL;
    m->kind = (uint8_t)in->kind;
    m->key_group = in->kind == SF_MSG_EGRESS
                       ? 0
                       : sf_key_group(in->target, in->target_len, max_parallelism);
    p = m->_data;
    memcpy(p, in->target, in->target_len);
    p += in->target_len;
    *p++ = '\0';
    if (in->caller) {
        memcpy(p, in->caller, in->caller_len);
        p += in->caller_len;
    }
    *p++ = '\0';
    memcpy(p, in->type_name, in->type_name_len);
    p += in->type_name_len;
    *p++ = '\0';
    if (in->value_len)
        memcpy(p, in->value, in->value_len);
    *out = m;
    return SF_OK;
}

/* Writes "a/b/c" at |dst|; returns its length. */
static size_t join3(char *dst, const char *a, size_t la, const char *b, size_t lb, const char *c,
                    size_t lc)
{
    memcpy(dst, a, la);
    dst[la] = '/';
    memcpy(dst + la + 1, b, lb);
    dst[la + 1 + lb] = '/';
    memcpy(dst + la + 2 + lb, c, lc);
    return la + lb + lc + 2;
}

int sf_msg_new_parts(const char *ns, const char *type, const char *id, const char *caller_ns,
                     const char *caller_type, const char *caller_id, const char *type_name,
                     const uint8_t *value, size_t value_len, uint32_t max_parallelism,
                     sf_msg_t **out)
{
    size_t nl, tl, il, cnl = 0, ctl = 0, cil = 0, target_len, caller_len = 0, name_len;
    bool caller = caller_ns && caller_type && caller_id;
    sf_addr_t a;
    sf_msg_t *m;
    char *p;

    if (!ns || !type || !id)
        return SF_EINVAL;
    nl = strlen(ns);
    tl = strlen(type);
    il = strlen(id);
    if (caller) {
        cnl = strlen(caller_ns);
        ctl = strlen(caller_type);
        cil = strlen(caller_id);
        caller_len = cnl + ctl + cil + 2;
    }
    target_len = nl + tl + il + 2;
    if (!type_name)
        type_name = "";
    name_len = strlen(type_name);
    /* Built in place: one allocation, no intermediate copy. */
    m = msg_alloc(target_len, caller_len, name_len, value_len);
    m->has_caller = caller;
    p = m->_data;
    join3(p, ns, nl, type, tl, id, il);
    /* The joined strings must parse as addresses, as sf_msg_new demands. */
    if (sf_addr_parse(p, target_len, &a) != 0) {
        free(m);
        return SF_EINVAL;
    }
    m->key_group = sf_key_group(p, target_len, max_parallelism);
    p += target_len;
    *p++ = '\0';
    if (caller) {
        join3(p, caller_ns, cnl, caller_type, ctl, caller_id, cil);
        if (sf_addr_parse(p, caller_len, &a) != 0) {
            free(m);
            return SF_EINVAL;
        }
        p += caller_len;
    }
    *p++ = '\0';
    memcpy(p, type_name, name_len);
    p += name_len;
    *p++ = '\0';
    if (value_len)
        memcpy(p, value, value_len);
    *out = m;
    return SF_OK;
}

void sf_msg_free(sf_msg_t *m) { free(m); }

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int sf_msg_encode(const sf_msg_t *m, sf_buf_t *out)
{
    uint8_t h[MSG_HDR];
    size_t body = (size_t)m->target_len + m->caller_len + m->typename_len + m->value_len;
    const char *d = m->_data;
    int rv;
    put_u32(h, MSG_MAGIC);
    h[4] = m->kind;
    h[5] = m->has_caller;
    h[6] = h[7] = 0;
    put_u32(h + 8, (uint32_t)m->seq);
    put_u32(h + 12, (uint32_t)(m->seq >> 32));
    put_u32(h + 16, m->target_len);
    put_u32(h + 20, m->caller_len);
    put_u32(h + 24, m->typename_len);
    put_u32(h + 28, m->value_len);
    if ((rv = sf_buf_reserve(out, MSG_HDR + body)) != 0)
        return rv;
    sf_buf_append(out, h, MSG_HDR);
    sf_buf_append(out, d, m->target_len);
    d += m->target_len + 1;
    sf_buf_append(out, d, m->caller_len);
    d += m->caller_len + 1;
    sf_buf_append(out, d, m->typename_len);
    d += m->typename_len + 1;
    sf_buf_append(out, d, m->value_len);
    return SF_OK;
}

int sf_msg_decode(const uint8_t *data, size_t len, uint32_t max_parallelism, sf_msg_t **out,
                  size_t *consumed)
{
    uint32_t tl, cl, nl, vl;
    uint64_t total;
    sf_msg_init_t in;
    int rv;
    if (len < MSG_HDR || get_u32(data) != MSG_MAGIC || data[4] > SF_MSG_EGRESS || data[5] > 1)
        return SF_EPROTO;
    tl = get_u32(data + 16);
    cl = get_u32(data + 20);
    nl = get_u32(data + 24);
    vl = get_u32(data + 28);
    total = (uint64_t)MSG_HDR + tl + cl + nl + vl;
    if (total > len || (!data[5] && cl != 0))
        return SF_EPROTO;
    in.kind = (sf_msg_kind)data[4];
    in.target = (const char *)data + MSG_HDR;
    in.target_len = tl;
    in.caller = data[5] ? in.target + tl : NULL;
    in.caller_len = cl;
    in.type_name = in.target + tl + cl;
    in.type_name_len = nl;
    in.value = (const uint8_t *)in.type_name + nl;
    in.value_len = vl;
    if ((rv = sf_msg_new(&in, max_parallelism, out)) != 0)
        return SF_EPROTO;
    (*out)->seq = (uint64_t)get_u32(data + 8) | (uint64_t)get_u32(data + 12) << 32;
    if (consumed)
        *consumed = (size_t)total;
    return SF_OK;
}

void sf_msg_fifo_clear(sf_msg_fifo_t *q)
{
    sf_msg_t *m;
    while ((m = sf_msg_fifo_pop(q)) != NULL)
        sf_msg_free(m);
}
