/* statefun-c: Apache License 2.0.
 *
 * Packing and unpacking of the request-reply messages, the decode arena, and
 * the built-in type helpers. protobuf-c mallocs every submessage on unpack;
 * pointing its allocator at an arena turns that into bump allocations that a
 * single reset releases (MACHINE.md: unpack costs twice pack with malloc).
 */
#include "sf_proto.h"

#include <stdint.h>
#include <string.h>

#define ARENA_MIN_CHUNK 4096

void sf_arena_init(sf_arena_t *arena, const sf_mem *mem)
{
    arena->_head = NULL;
    arena->_mem = mem;
    arena->_bytes = 0;
}

void *sf__arena_alloc_chunk(sf_arena_t *arena, size_t size)
{
    sf_arena_chunk_t *c = arena->_head;
    size_t need;
    if (size == 0)
        size = 1; /* a zero-byte allocation still gets its own 16 bytes */
    need = (size + SF__ARENA_ALIGN - 1) & ~(size_t)(SF__ARENA_ALIGN - 1);
    if (need < size || need > SIZE_MAX / 4)
        return NULL; /* more than any allocator gives */
    if (!c || c->size - c->used < need) {
        size_t sz = c ? c->size * 2 : ARENA_MIN_CHUNK;
        while (sz < need)
            sz *= 2;
        c = sf_mem_malloc(arena->_mem, SF__ARENA_HDR + sz);
        if (!c)
            return NULL;
        c->size = sz;
        c->used = 0;
        c->next = arena->_head;
        arena->_head = c;
    }
    return sf_arena_alloc(arena, size); /* fits now */
}

char *sf_arena_strndup(sf_arena_t *arena, const char *s, size_t len)
{
    char *p = sf_arena_alloc(arena, len + 1);
    if (!p)
        return NULL;
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void sf_arena_reset(sf_arena_t *arena)
{
    /* Keep the largest (newest) chunk; free the rest. */
    sf_arena_chunk_t *c = arena->_head, *next;
    if (!c)
        return;
    next = c->next;
    c->next = NULL;
    c->used = 0;
    while (next) {
        sf_arena_chunk_t *n = next->next;
        sf_mem_free(arena->_mem, next);
        next = n;
    }
    arena->_bytes = 0;
}

void sf_arena_dispose(sf_arena_t *arena)
{
    sf_arena_chunk_t *c = arena->_head;
    while (c) {
        sf_arena_chunk_t *n = c->next;
        sf_mem_free(arena->_mem, c);
        c = n;
    }
    arena->_head = NULL;
    arena->_bytes = 0;
}

static void *arena_pb_alloc(void *ud, size_t size) { return sf_arena_alloc(ud, size); }
static void arena_pb_free(void *ud, void *ptr) { (void)ud, (void)ptr; }

static ProtobufCAllocator arena_allocator(sf_arena_t *arena)
{
    ProtobufCAllocator a = {arena_pb_alloc, arena_pb_free, arena};
    return a;
}

sf_pb_to_function_t *sf_proto_to_function_unpack(sf_arena_t *arena, const uint8_t *data,
                                                 size_t len)
{
    ProtobufCAllocator a = arena_allocator(arena);
    return io__statefun__sdk__reqreply__to_function__unpack(&a, len, data);
}

sf_pb_from_function_t *sf_proto_from_function_unpack(sf_arena_t *arena, const uint8_t *data,
                                                     size_t len)
{
    ProtobufCAllocator a = arena_allocator(arena);
    return io__statefun__sdk__reqreply__from_function__unpack(&a, len, data);
}

int sf_proto_pack_message(const ProtobufCMessage *msg, sf_buf_t *out)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    int rv = sf_buf_reserve(out, n);
    if (rv != 0)
        return rv;
    out->len += protobuf_c_message_pack(msg, out->base + out->len);
    return SF_OK;
}

int sf_proto_to_function_pack(const sf_pb_to_function_t *msg, sf_buf_t *out)
{
    return sf_proto_pack_message(&msg->base, out);
}

int sf_proto_from_function_pack(const sf_pb_from_function_t *msg, sf_buf_t *out)
{
    return sf_proto_pack_message(&msg->base, out);
}

int sf_proto_address_parse(sf_arena_t *arena, const char *s, size_t len, sf_pb_address_t *addr)
{
    const char *end = s + len, *a, *b;
    sf_pb_address_t init = SF_PB_ADDRESS_INIT;
    a = memchr(s, '/', len);
    if (!a || a == s)
        return SF_EINVAL;
    b = memchr(a + 1, '/', (size_t)(end - a - 1));
    if (!b || b == a + 1 || b + 1 >= end)
        return SF_EINVAL;
    *addr = init;
    addr->namespace_ = sf_arena_strndup(arena, s, (size_t)(a - s));
    addr->type = sf_arena_strndup(arena, a + 1, (size_t)(b - a - 1));
    addr->id = sf_arena_strndup(arena, b + 1, (size_t)(end - b - 1));
    if (!addr->namespace_ || !addr->type || !addr->id)
        return SF_ENOMEM;
    return SF_OK;
}

int sf_proto_typename_split(sf_arena_t *arena, const char *s, size_t len, char **ns, char **name)
{
    const char *a = memchr(s, '/', len);
    if (!a || a == s || a + 1 >= s + len || memchr(a + 1, '/', (size_t)(s + len - a - 1)))
        return SF_EINVAL;
    *ns = sf_arena_strndup(arena, s, (size_t)(a - s));
    *name = sf_arena_strndup(arena, a + 1, (size_t)(s + len - a - 1));
    return (*ns && *name) ? SF_OK : SF_ENOMEM;
}

static bool str_eq(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

bool sf_proto_address_equal(const sf_pb_address_t *a, const sf_pb_address_t *b)
{
    return str_eq(a->namespace_, b->namespace_) && str_eq(a->type, b->type) &&
           str_eq(a->id, b->id);
}

/* Built-in types: each is a wrapper message with one field |value = 1|. */

int sf_proto_encode_bool(bool v, sf_buf_t *out)
{
    Io__Statefun__Sdk__Types__BooleanWrapper m = IO__STATEFUN__SDK__TYPES__BOOLEAN_WRAPPER__INIT;
    m.value = v;
    return sf_proto_pack_message(&m.base, out);
}

int sf_proto_encode_int(int32_t v, sf_buf_t *out)
{
    Io__Statefun__Sdk__Types__IntWrapper m = IO__STATEFUN__SDK__TYPES__INT_WRAPPER__INIT;
    m.value = v;
    return sf_proto_pack_message(&m.base, out);
}

int sf_proto_encode_long(int64_t v, sf_buf_t *out)
{
    Io__Statefun__Sdk__Types__LongWrapper m = IO__STATEFUN__SDK__TYPES__LONG_WRAPPER__INIT;
    m.value = v;
    return sf_proto_pack_message(&m.base, out);
}

int sf_proto_encode_float(float v, sf_buf_t *out)
{
    Io__Statefun__Sdk__Types__FloatWrapper m = IO__STATEFUN__SDK__TYPES__FLOAT_WRAPPER__INIT;
    m.value = v;
    return sf_proto_pack_message(&m.base, out);
}

int sf_proto_encode_double(double v, sf_buf_t *out)
{
    Io__Statefun__Sdk__Types__DoubleWrapper m = IO__STATEFUN__SDK__TYPES__DOUBLE_WRAPPER__INIT;
    m.value = v;
    return sf_proto_pack_message(&m.base, out);
}

int sf_proto_encode_string(const char *s, size_t len, sf_buf_t *out)
{
    /* StringWrapper is one length-delimited field 1: the tag byte 0x0a, the
     * length as a varint, the bytes. Written by hand rather than through the
     * generated struct, which would want a NUL-terminated copy of |s| (one
     * allocation per value on the ingress path). As with that copy, the
     * value ends at the first NUL, and proto3 leaves an empty string out. */
    uint8_t hdr[1 + 10];
    size_t n = 0, v;
    int rv;

    len = len ? strnlen(s, len) : 0;
    if (len == 0)
        return SF_OK;
    hdr[n++] = 0x0a;
    for (v = len; v >= 0x80; v >>= 7)
        hdr[n++] = (uint8_t)(v | 0x80);
    hdr[n++] = (uint8_t)v;
    if ((rv = sf_buf_reserve(out, n + len)) != 0)
        return rv;
    memcpy(out->base + out->len, hdr, n);
    memcpy(out->base + out->len + n, s, len);
    out->len += n + len;
    return SF_OK;
}

/* The numeric wrappers hold no pointers, so they unpack into a small buffer
 * on the stack instead of an arena: no allocation per decoded value. */
typedef struct {
    _Alignas(16) unsigned char mem[128];
    size_t used;
} stack_alloc_t;

static void *stack_pb_alloc(void *ud, size_t size)
{
    stack_alloc_t *s = ud;
    size = (size + 15) & ~(size_t)15;
    if (s->used + size > sizeof(s->mem))
        return NULL;
    s->used += size;
    return s->mem + s->used - size;
}

#define DECODE_SCALAR(fn, type, ctype)                                                             \
    int sf_proto_decode_##fn(const uint8_t *data, size_t len, ctype *v)                            \
    {                                                                                              \
        stack_alloc_t st;                                                                          \
        ProtobufCAllocator a = {stack_pb_alloc, arena_pb_free, &st};                               \
        type *m;                                                                                   \
        st.used = 0;                                                                               \
        m = (type *)protobuf_c_message_unpack(&type##_DESC, &a, len, data);                        \
        if (!m)                                                                                    \
            return SF_EPROTO;                                                                      \
        *v = (ctype)m->value;                                                                      \
        return SF_OK;                                                                              \
    }

#define Io__Statefun__Sdk__Types__BooleanWrapper_DESC io__statefun__sdk__types__boolean_wrapper__descriptor
#define Io__Statefun__Sdk__Types__IntWrapper_DESC io__statefun__sdk__types__int_wrapper__descriptor
#define Io__Statefun__Sdk__Types__LongWrapper_DESC io__statefun__sdk__types__long_wrapper__descriptor
#define Io__Statefun__Sdk__Types__FloatWrapper_DESC io__statefun__sdk__types__float_wrapper__descriptor
#define Io__Statefun__Sdk__Types__DoubleWrapper_DESC io__statefun__sdk__types__double_wrapper__descriptor

DECODE_SCALAR(bool, Io__Statefun__Sdk__Types__BooleanWrapper, bool)
DECODE_SCALAR(int, Io__Statefun__Sdk__Types__IntWrapper, int32_t)
DECODE_SCALAR(long, Io__Statefun__Sdk__Types__LongWrapper, int64_t)
DECODE_SCALAR(float, Io__Statefun__Sdk__Types__FloatWrapper, float)
DECODE_SCALAR(double, Io__Statefun__Sdk__Types__DoubleWrapper, double)

/* An arena allocator for protobuf-c that notes failures, so that a decode
 * which failed for lack of memory is told from malformed bytes (protobuf-c
 * returns NULL for both). */
typedef struct noting_alloc_s {
    sf_arena_t *arena;
    bool failed;
} noting_alloc_t;

static void *noting_alloc(void *ud, size_t size)
{
    noting_alloc_t *na = ud;
    void *p = sf_arena_alloc(na->arena, size);
    na->failed |= p == NULL;
    return p;
}

int sf_proto_decode_string(sf_arena_t *arena, const uint8_t *data, size_t len, char **s,
                           size_t *slen)
{
    noting_alloc_t na = {arena, false};
    ProtobufCAllocator a = {noting_alloc, arena_pb_free, &na};
    Io__Statefun__Sdk__Types__StringWrapper *m = io__statefun__sdk__types__string_wrapper__unpack(
        &a, len, data ? data : (const uint8_t *)"");
    if (!m)
        return na.failed ? SF_ENOMEM : SF_EPROTO;
    *s = m->value;
    if (slen)
        *slen = strlen(m->value);
    return SF_OK;
}
