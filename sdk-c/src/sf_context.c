/* statefun-c: Apache License 2.0.
 *
 * The API a function callback uses (sf.h, "Inside a callback"): addresses,
 * the message and its built-in type helpers, state get/set/delete, and
 * sending (messages, delayed messages and their cancellation, egress records).
 *
 * Everything a callback produces is copied into the batch's arena at once,
 * already in the shape of the FromFunction structs, so the core only has to
 * link the lists into the response. Built-in values are packed with
 * protobuf-c straight into arena memory (no temporary buffers); the
 * playground record's JSON is written by jansson.
 *
 * Threading: only on the thread running the callback, during the callback.
 */
#include <jansson.h>
#include <string.h>

#include "sf_sdk_int.h"

/*
 * Remembers that the batch lost something for lack of memory: the batch then
 * fails with SF_ENOMEM even if the callback ignored the error, because a
 * silently dropped message or state write would break exactly-once.
 */
static int note(sf_ctx_t *ctx, int rv)
{
    if (rv == SF_ENOMEM && ctx)
        ctx->out_of_memory = true;
    return rv;
}

/* ------------------------------------------------------------------------ */
/* Addresses and the message                                                  */

const sf_address_t *sf_self(const sf_ctx_t *ctx)
{
    return ctx ? &ctx->self : NULL;
}

const sf_address_t *sf_caller(const sf_ctx_t *ctx)
{
    return ctx && ctx->has_caller ? &ctx->caller : NULL;
}

const char *sf_message_typename(const sf_message_t *msg)
{
    return msg ? msg->type_name : "";
}

const uint8_t *sf_message_data(const sf_message_t *msg, size_t *len)
{
    if (len)
        *len = msg ? msg->len : 0;
    return msg ? msg->data : NULL;
}

bool sf_message_is(const sf_message_t *msg, const char *type_name)
{
    return msg && type_name && strcmp(msg->type_name, type_name) == 0;
}

/*
 * The scalar built-in types, one X(suffix, C type, typename, wrapper message,
 * wrapper initializer) each: every typed accessor below is generated from
 * this one table.
 */
#define SCALAR_TYPES(X)                                                                            \
    X(bool, bool, SF_TYPE_BOOL, Io__Statefun__Sdk__Types__BooleanWrapper,                          \
      IO__STATEFUN__SDK__TYPES__BOOLEAN_WRAPPER__INIT)                                             \
    X(int, int32_t, SF_TYPE_INT, Io__Statefun__Sdk__Types__IntWrapper,                             \
      IO__STATEFUN__SDK__TYPES__INT_WRAPPER__INIT)                                                 \
    X(long, int64_t, SF_TYPE_LONG, Io__Statefun__Sdk__Types__LongWrapper,                          \
      IO__STATEFUN__SDK__TYPES__LONG_WRAPPER__INIT)                                                \
    X(float, float, SF_TYPE_FLOAT, Io__Statefun__Sdk__Types__FloatWrapper,                         \
      IO__STATEFUN__SDK__TYPES__FLOAT_WRAPPER__INIT)                                               \
    X(double, double, SF_TYPE_DOUBLE, Io__Statefun__Sdk__Types__DoubleWrapper,                     \
      IO__STATEFUN__SDK__TYPES__DOUBLE_WRAPPER__INIT)

#define MESSAGE_IS(fn, ctype, tname, wrapper, init)                                                \
    bool sf_message_is_##fn(const sf_message_t *msg)                                               \
    {                                                                                              \
        return sf_message_is(msg, tname);                                                          \
    }

SCALAR_TYPES(MESSAGE_IS)

bool sf_message_is_string(const sf_message_t *msg)
{
    return sf_message_is(msg, SF_TYPE_STRING);
}

#define MESSAGE_AS(fn, ctype, tname, wrapper, init)                                                \
    int sf_message_as_##fn(const sf_message_t *msg, ctype *v)                                      \
    {                                                                                              \
        if (!msg || !v)                                                                            \
            return SF_EINVAL;                                                                      \
        if (strcmp(msg->type_name, tname) != 0)                                                    \
            return SF_EINVAL;                                                                      \
        return sf_proto_decode_##fn(msg->data, msg->len, v);                                       \
    }

SCALAR_TYPES(MESSAGE_AS)

/* Decodes a StringWrapper into the arena. Returns 0, SF_EPROTO or SF_ENOMEM. */
static int decode_string(sf_arena_t *arena, const uint8_t *data, size_t len, const char **s,
                         size_t *slen)
{
    char *v;
    int rv = sf_proto_decode_string(arena, data, len, &v, slen);
    if (rv == SF_OK)
        *s = v;
    return rv;
}

int sf_message_as_string(const sf_message_t *msg, const char **s, size_t *len)
{
    if (!msg || !s)
        return SF_EINVAL;
    if (strcmp(msg->type_name, SF_TYPE_STRING) != 0)
        return SF_EINVAL;
    return note(msg->ctx, decode_string(msg->ctx->arena, msg->data, msg->len, s, len));
}

/* ------------------------------------------------------------------------ */
/* Packing built-in values into the arena                                     */

/* Packs |m| into fresh arena memory. Returns 0 or SF_ENOMEM. */
static int arena_pack(sf_arena_t *arena, const ProtobufCMessage *m, uint8_t **data, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *p = sf_arena_alloc(arena, n);
    if (!p)
        return SF_ENOMEM;
    *len = protobuf_c_message_pack(m, p);
    *data = p;
    return SF_OK;
}

/* Packs the scalar |v| as its wrapper message into fresh arena memory. */
#define PACK_SCALAR(fn, ctype, tname, wrapper, init)                                               \
    static int pack_##fn(sf_arena_t *a, ctype v, uint8_t **d, size_t *n)                           \
    {                                                                                              \
        wrapper m = init;                                                                          \
        m.value = v;                                                                               \
        return arena_pack(a, &m.base, d, n);                                                       \
    }

SCALAR_TYPES(PACK_SCALAR)

/* |s| of |slen| bytes; a NUL inside would be cut by the wrapper: SF_EINVAL. */
static int pack_string(sf_arena_t *a, const char *s, size_t slen, uint8_t **d, size_t *n)
{
    Io__Statefun__Sdk__Types__StringWrapper m = IO__STATEFUN__SDK__TYPES__STRING_WRAPPER__INIT;
    if (!s || memchr(s, '\0', slen))
        return SF_EINVAL;
    if (!(m.value = sf_arena_strndup(a, s, slen)))
        return SF_ENOMEM;
    return arena_pack(a, &m.base, d, n);
}

/* ------------------------------------------------------------------------ */
/* State                                                                      */

/* Finds the slot of state |name|, checking its declared type when |type| is set. */
static int slot_find(sf_ctx_t *ctx, const char *name, const char *type, sf__slot_t **out)
{
    size_t i;
    if (!ctx || !name)
        return SF_EINVAL;
    for (i = 0; i < ctx->fn->nspecs; i++) {
        sf__slot_t *s = &ctx->slots[i];
        if (strcmp(s->spec->name, name) == 0) {
            if (type && strcmp(s->spec->type, type) != 0)
                return SF_EINVAL;
            *out = s;
            return SF_OK;
        }
    }
    return SF_ENOTFOUND;
}

int sf_storage_get(sf_ctx_t *ctx, const char *name, const uint8_t **data, size_t *len)
{
    sf__slot_t *s;
    int rv = slot_find(ctx, name, NULL, &s);
    if (rv != 0)
        return rv;
    if (data)
        *data = s->has_value ? s->data : NULL;
    if (len)
        *len = s->has_value ? s->len : 0;
    return s->has_value ? SF_OK : SF_EMPTY;
}

#define STATE_GET(fn, ctype, tname, wrapper, init)                                                 \
    int sf_storage_get_##fn(sf_ctx_t *ctx, const char *name, ctype *v)                             \
    {                                                                                              \
        sf__slot_t *s;                                                                             \
        int rv = slot_find(ctx, name, tname, &s);                                                  \
        if (rv != 0)                                                                               \
            return rv;                                                                             \
        if (!v)                                                                                    \
            return SF_EINVAL;                                                                      \
        if (!s->has_value)                                                                         \
            return SF_EMPTY;                                                                       \
        return sf_proto_decode_##fn(s->data, s->len, v);                                           \
    }

SCALAR_TYPES(STATE_GET)

int sf_storage_get_string(sf_ctx_t *ctx, const char *name, const char **str, size_t *len)
{
    sf__slot_t *s;
    int rv = slot_find(ctx, name, SF_TYPE_STRING, &s);
    if (rv != 0)
        return rv;
    if (!str)
        return SF_EINVAL;
    if (!s->has_value)
        return SF_EMPTY;
    return note(ctx, decode_string(ctx->arena, s->data, s->len, str, len));
}

static void slot_store(sf__slot_t *s, const uint8_t *data, size_t len)
{
    s->has_value = true;
    s->data = data;
    s->len = len;
    s->dirty = true;
}

int sf_storage_set(sf_ctx_t *ctx, const char *name, const void *data, size_t len)
{
    sf__slot_t *s;
    uint8_t *copy;
    int rv = slot_find(ctx, name, NULL, &s);
    if (rv != 0)
        return rv;
    if (!data && len)
        return SF_EINVAL;
    if (!(copy = sf_arena_alloc(ctx->arena, len)))
        return note(ctx, SF_ENOMEM);
    if (len)
        memcpy(copy, data, len);
    slot_store(s, copy, len);
    return SF_OK;
}

#define STATE_SET(fn, ctype, tname, wrapper, init)                                                 \
    int sf_storage_set_##fn(sf_ctx_t *ctx, const char *name, ctype v)                              \
    {                                                                                              \
        sf__slot_t *s;                                                                             \
        uint8_t *d;                                                                                \
        size_t n;                                                                                  \
        int rv = slot_find(ctx, name, tname, &s);                                                  \
        if (rv != 0)                                                                               \
            return rv;                                                                             \
        if ((rv = pack_##fn(ctx->arena, v, &d, &n)) != 0)                                          \
            return note(ctx, rv);                                                                  \
        slot_store(s, d, n);                                                                       \
        return SF_OK;                                                                              \
    }

SCALAR_TYPES(STATE_SET)

int sf_storage_set_string(sf_ctx_t *ctx, const char *name, const char *str, size_t len)
{
    sf__slot_t *s;
    uint8_t *d;
    size_t n;
    int rv = slot_find(ctx, name, SF_TYPE_STRING, &s);
    if (rv != 0)
        return rv;
    if ((rv = pack_string(ctx->arena, str, len, &d, &n)) != 0)
        return note(ctx, rv);
    slot_store(s, d, n);
    return SF_OK;
}

int sf_storage_delete(sf_ctx_t *ctx, const char *name)
{
    sf__slot_t *s;
    int rv = slot_find(ctx, name, NULL, &s);
    if (rv != 0)
        return rv;
    s->has_value = false;
    s->data = NULL;
    s->len = 0;
    s->dirty = true;
    return SF_OK;
}

/* ------------------------------------------------------------------------ */
/* Sending                                                                    */

/*
 * A TypedValue in the arena around |data|. When |owned|, |type_name| is a
 * built-in constant and |data| is in the arena already, so neither is copied;
 * otherwise both are the caller's and are copied.
 */
static sf_pb_typed_value_t *typed_value(sf_arena_t *arena, const char *type_name, const void *data,
                                        size_t len, bool owned)
{
    sf_pb_typed_value_t *tv = ARENA_NEW(arena, sf_pb_typed_value_t, SF_PB_TYPED_VALUE_INIT);
    if (!tv)
        return NULL;
    /* The generated struct is not const-correct; a built-in name is never
     * written through. */
    tv->typename_ =
        owned ? (char *)type_name : sf_arena_strndup(arena, type_name, strlen(type_name));
    if (!tv->typename_)
        return NULL;
    tv->has_value = 1;
    if (owned || len == 0) {
        tv->value.data = (uint8_t *)data;
    } else {
        if (!(tv->value.data = sf_arena_alloc(arena, len)))
            return NULL;
        memcpy(tv->value.data, data, len);
    }
    tv->value.len = len;
    return tv;
}

/* Builds the address |type| ("ns/name") + |id| in the arena. */
static int target_address(sf_arena_t *arena, const char *type, const char *id,
                          sf_pb_address_t **out)
{
    sf_pb_address_t *a;
    int rv;
    if (!type || !id || !*id)
        return SF_EINVAL;
    if (!(a = ARENA_NEW(arena, sf_pb_address_t, SF_PB_ADDRESS_INIT)))
        return SF_ENOMEM;
    rv = sf_proto_typename_split(arena, type, strlen(type), &a->namespace_, &a->type);
    if (rv != 0)
        return rv;
    if (!(a->id = sf_arena_strndup(arena, id, strlen(id))))
        return SF_ENOMEM;
    *out = a;
    return SF_OK;
}

static int send_message(sf_ctx_t *ctx, const char *type, const char *id, const char *type_name,
                        const void *data, size_t len, bool owned)
{
    sf_pb_from_invocation_t *m;
    int rv;
    if (!ctx || !type_name || !*type_name || (!data && len))
        return SF_EINVAL;
    if (!(m = ARENA_NEW(ctx->arena, sf_pb_from_invocation_t, SF_PB_FROM_INVOCATION_INIT)))
        return SF_ENOMEM;
    if ((rv = target_address(ctx->arena, type, id, &m->target)) != 0)
        return rv;
    if (!(m->argument = typed_value(ctx->arena, type_name, data, len, owned)))
        return SF_ENOMEM;
    return sf__vec_push(ctx->arena, &ctx->messages, m);
}

int sf_send(sf_ctx_t *ctx, const char *type, const char *id, const char *type_name,
            const void *data, size_t len)
{
    return note(ctx, send_message(ctx, type, id, type_name, data, len, false));
}

#define SEND_TYPED(fn, ctype, tname, wrapper, init)                                                \
    int sf_send_##fn(sf_ctx_t *ctx, const char *type, const char *id, ctype v)                     \
    {                                                                                              \
        uint8_t *d;                                                                                \
        size_t n;                                                                                  \
        int rv;                                                                                    \
        if (!ctx)                                                                                  \
            return SF_EINVAL;                                                                      \
        if ((rv = pack_##fn(ctx->arena, v, &d, &n)) != 0)                                          \
            return note(ctx, rv);                                                                  \
        return note(ctx, send_message(ctx, type, id, tname, d, n, true));                          \
    }

SCALAR_TYPES(SEND_TYPED)

int sf_send_string(sf_ctx_t *ctx, const char *type, const char *id, const char *s)
{
    uint8_t *d;
    size_t n;
    int rv;
    if (!ctx || !s)
        return SF_EINVAL;
    if ((rv = pack_string(ctx->arena, s, strlen(s), &d, &n)) != 0)
        return note(ctx, rv);
    return note(ctx, send_message(ctx, type, id, SF_TYPE_STRING, d, n, true));
}

static int send_delayed(sf_ctx_t *ctx, int64_t delay_ms, const char *type, const char *id,
                        const char *token, const char *type_name, const void *data, size_t len,
                        bool owned)
{
    sf_pb_delayed_invocation_t *d;
    int rv;
    if (!ctx || delay_ms < 0 || !type_name || !*type_name || (!data && len))
        return SF_EINVAL;
    if (!(d = ARENA_NEW(ctx->arena, sf_pb_delayed_invocation_t, SF_PB_DELAYED_INVOCATION_INIT)))
        return SF_ENOMEM;
    d->delay_in_ms = delay_ms;
    if ((rv = target_address(ctx->arena, type, id, &d->target)) != 0)
        return rv;
    if (!(d->argument = typed_value(ctx->arena, type_name, data, len, owned)))
        return SF_ENOMEM;
    if (token && *token &&
        !(d->cancellation_token = sf_arena_strndup(ctx->arena, token, strlen(token))))
        return SF_ENOMEM;
    return sf__vec_push(ctx->arena, &ctx->delayed, d);
}

int sf_send_after(sf_ctx_t *ctx, int64_t delay_ms, const char *type, const char *id,
                  const char *cancellation_token, const char *type_name, const void *data,
                  size_t len)
{
    return note(ctx, send_delayed(ctx, delay_ms, type, id, cancellation_token, type_name, data, len,
                                  false));
}

int sf_send_after_string(sf_ctx_t *ctx, int64_t delay_ms, const char *type, const char *id,
                         const char *cancellation_token, const char *s)
{
    uint8_t *d;
    size_t n;
    int rv;
    if (!ctx || !s)
        return SF_EINVAL;
    if ((rv = pack_string(ctx->arena, s, strlen(s), &d, &n)) != 0)
        return note(ctx, rv);
    return note(
        ctx, send_delayed(ctx, delay_ms, type, id, cancellation_token, SF_TYPE_STRING, d, n, true));
}

int sf_cancel_delayed(sf_ctx_t *ctx, const char *cancellation_token)
{
    sf_pb_delayed_invocation_t *d;
    if (!ctx || !cancellation_token || !*cancellation_token)
        return SF_EINVAL;
    if (!(d = ARENA_NEW(ctx->arena, sf_pb_delayed_invocation_t, SF_PB_DELAYED_INVOCATION_INIT)))
        return note(ctx, SF_ENOMEM);
    d->is_cancellation_request = 1;
    d->cancellation_token =
        sf_arena_strndup(ctx->arena, cancellation_token, strlen(cancellation_token));
    if (!d->cancellation_token)
        return note(ctx, SF_ENOMEM);
    return note(ctx, sf__vec_push(ctx->arena, &ctx->delayed, d));
}

static int send_egress(sf_ctx_t *ctx, const char *egress, const char *type_name, const void *data,
                       size_t len, bool owned)
{
    sf_pb_egress_message_t *e;
    int rv;
    if (!ctx || !egress || !type_name || !*type_name || (!data && len))
        return SF_EINVAL;
    if (!(e = ARENA_NEW(ctx->arena, sf_pb_egress_message_t, SF_PB_EGRESS_MESSAGE_INIT)))
        return SF_ENOMEM;
    rv = sf_proto_typename_split(ctx->arena, egress, strlen(egress), &e->egress_namespace,
                                 &e->egress_type);
    if (rv != 0)
        return rv;
    if (!(e->argument = typed_value(ctx->arena, type_name, data, len, owned)))
        return SF_ENOMEM;
    return sf__vec_push(ctx->arena, &ctx->egresses, e);
}

int sf_send_egress(sf_ctx_t *ctx, const char *egress, const char *type_name, const void *data,
                   size_t len)
{
    return note(ctx, send_egress(ctx, egress, type_name, data, len, false));
}

int sf_send_egress_playground(sf_ctx_t *ctx, const char *egress, const char *topic,
                              const char *payload, size_t payload_len)
{
    json_t *rec = NULL, *jtopic = NULL, *jpayload = NULL;
    uint8_t *d;
    size_t n;
    int rv = SF_EINVAL;

    if (!ctx || !topic || !*topic || (!payload && payload_len))
        return SF_EINVAL;
    /* json_stringn refuses invalid UTF-8 (NULL), which is what we want. */
    jtopic = json_string(topic);
    jpayload = json_stringn(payload ? payload : "", payload_len);
    if (!jtopic || !jpayload)
        goto out;
    rv = SF_ENOMEM;
    if (!(rec = json_object()))
        goto out;
    /* Insertion order is kept, so the record reads {"topic":...,"payload":...}. */
    if (json_object_set(rec, "topic", jtopic) != 0 ||
        json_object_set(rec, "payload", jpayload) != 0)
        goto out;
    n = json_dumpb(rec, NULL, 0, JSON_COMPACT);
    if (n == 0 || !(d = sf_arena_alloc(ctx->arena, n)))
        goto out;
    if (json_dumpb(rec, (char *)d, n, JSON_COMPACT) != n)
        goto out;
    rv = send_egress(ctx, egress ? egress : SF_PLAYGROUND_EGRESS, SF_TYPE_PLAYGROUND_EGRESS_RECORD,
                     d, n, true);
out:
    json_decref(rec);
    json_decref(jtopic);
    json_decref(jpayload);
    return note(ctx, rv);
}

int sf_send_egress_kafka(sf_ctx_t *ctx, const char *egress, const char *topic, const char *key,
                         const void *value, size_t value_len)
{
    sf_pb_kafka_record_t rec = SF_PB_KAFKA_RECORD_INIT;
    uint8_t *d;
    size_t n;
    int rv;
    if (!ctx || !egress || !topic || !*topic || (!value && value_len))
        return SF_EINVAL;
    rec.topic = (char *)topic;
    if (key)
        rec.key = (char *)key;
    rec.value_bytes.data = (uint8_t *)value;
    rec.value_bytes.len = value_len;
    if ((rv = arena_pack(ctx->arena, &rec.base, &d, &n)) != 0)
        return note(ctx, rv);
    return note(ctx, send_egress(ctx, egress, SF_TYPE_KAFKA_PRODUCER_RECORD, d, n, true));
}
