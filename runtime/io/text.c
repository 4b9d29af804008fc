/* statefun-c: Apache License 2.0.
 *
 * Query iteration and UTF-8 validation (see text.h; percent-decoding is
 * sf_pct_decode in protocol/sf_common.h).
 * The UTF-8 check follows the table of well-formed byte sequences in the
 * Unicode standard (chapter 3, table 3-7).
 */
#include "text.h"

#include <string.h>
#include <strings.h>

#include "sf_common.h"

bool sf_text_utf8_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0; /* no overlong forms */
            else if (c == 0xED)
                hi = 0x9F; /* no surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90; /* no overlong forms */
            else if (c == 0xF4)
                hi = 0x8F; /* nothing past U+10FFFF */
        } else {
            return false;
        }
        if (len - i - 1 < need)
            return false;
        /* The first continuation byte has the narrowed range, the rest the
         * usual 80..BF. */
        if (s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (size_t k = 2; k <= need; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                return false;
        i += need + 1;
    }
    return true;
}

bool sf_text_query_next(const char **pos, const char *end, const char **key, size_t *key_len,
                        const char **value, size_t *value_len)
{
    const char *p = *pos;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq;
        if (stop == p) {
            p = stop + 1;
            continue;
        }
        eq = memchr(p, '=', (size_t)(stop - p));
        *key = p;
        if (eq) {
            *key_len = (size_t)(eq - p);
            *value = eq + 1;
            *value_len = (size_t)(stop - eq - 1);
        } else {
            *key_len = (size_t)(stop - p);
            *value = stop;
            *value_len = 0;
        }
        *pos = amp ? amp + 1 : end;
        return true;
    }
    *pos = end;
    return false;
}

bool sf_text_ieq(const char *a, size_t alen, const char *b)
{
    return strlen(b) == alen && strncasecmp(a, b, alen) == 0;
}
