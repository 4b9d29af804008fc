/* statefun-c: Apache License 2.0.
 *
 * Small text helpers of the playground ingress and egress: percent-decoding
 * of URL paths and query values, iteration over a query string, and UTF-8
 * validation (protobuf strings must be UTF-8, and every SDK rejects a string
 * field that is not, so the ingress refuses such ids and string bodies with
 * a 400 instead of handing the functions a message they cannot decode).
 *
 * Pure functions, no allocation: any thread.
 */
#ifndef SF_IO_TEXT_H
#define SF_IO_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/**
 * True when the |len| bytes at |s| are well-formed UTF-8 (no overlong forms,
 * no surrogates, nothing past U+10FFFF). NUL bytes are valid UTF-8; callers
 * that cannot carry them check separately.
 */
bool sf_text_utf8_valid(const uint8_t *s, size_t len);

/**
 * Iterates over the "key=value" pairs of a query string: |*pos| starts at the
 * first byte after '?' and |end| is one past the last byte. Sets the raw (not
 * yet decoded) key and value; a pair without '=' has an empty value. Empty
 * pairs ("a=1&&b=2") are skipped. Returns false when there are no more pairs.
 */
bool sf_text_query_next(const char **pos, const char *end, const char **key, size_t *key_len,
                        const char **value, size_t *value_len);

/** True when |a| (|alen| bytes) equals NUL-terminated |b|, ignoring ASCII case. */
bool sf_text_ieq(const char *a, size_t alen, const char *b);

#endif /* SF_IO_TEXT_H */
