/* statefun-c: Apache License 2.0.
 *
 * Duration parsing and formatting (see duration.h). The unit table follows
 * Flink's TimeUtils.TimeUnit labels, plus "mins"/"us" which users type and
 * which are unambiguous. Pure functions: any thread.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "duration.h"
#include "sf_common.h"

/* A unit as a fraction of a millisecond: value * mul / div milliseconds. */
typedef struct {
    const char *label;
    uint64_t mul;
    uint64_t div;
} unit_t;

static const unit_t units[] = {
    {"d", 86400000, 1},
    {"day", 86400000, 1},
    {"days", 86400000, 1},
    {"h", 3600000, 1},
    {"hour", 3600000, 1},
    {"hours", 3600000, 1},
    {"m", 60000, 1},
    {"min", 60000, 1},
    {"mins", 60000, 1},
    {"minute", 60000, 1},
    {"minutes", 60000, 1},
    {"s", 1000, 1},
    {"sec", 1000, 1},
    {"secs", 1000, 1},
    {"second", 1000, 1},
    {"seconds", 1000, 1},
    {"ms", 1, 1},
    {"milli", 1, 1},
    {"millis", 1, 1},
    {"millisecond", 1, 1},
    {"milliseconds", 1, 1},
    {"us", 1, 1000},
    {"\xc2\xb5s", 1, 1000},
    {"micro", 1, 1000},
    {"micros", 1, 1000},
    {"microsecond", 1, 1000},
    {"microseconds", 1, 1000},
    {"ns", 1, 1000000},
    {"nano", 1, 1000000},
    {"nanos", 1, 1000000},
    {"nanosecond", 1, 1000000},
    {"nanoseconds", 1, 1000000},
};

static int fail(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
    return SF_EINVAL;
}

int sf_duration_parse(const char *text, uint64_t *out_ms, char *err, size_t errlen)
{
    const char *p, *end, *unit_start;
    uint64_t value = 0;
    size_t unit_len, i;

    if (!text)
        return fail(err, errlen, "missing duration");
    p = text;
    end = text + strlen(text);
    while (p < end && isspace((unsigned char)*p))
        p++;
    while (end > p && isspace((unsigned char)end[-1]))
        end--;
    if (p == end)
        return fail(err, errlen, "empty duration (expected e.g. 500ms, 10s, 2m, 1h)");
    if (!isdigit((unsigned char)*p))
        return fail(err, errlen,
                    "a duration starts with a non-negative whole number "
                    "(e.g. 500ms, 10s, 2m, 1h)");
    while (p < end && isdigit((unsigned char)*p)) {
        unsigned d = (unsigned)(*p - '0');
        if (value > (UINT64_MAX - d) / 10)
            return fail(err, errlen, "duration is too large");
        value = value * 10 + d;
        p++;
    }
    if (p < end && (*p == '.' || *p == ','))
        return fail(err, errlen,
                    "fractional durations are not supported: use a smaller unit (1500ms, 90s)");
    while (p < end && isspace((unsigned char)*p))
        p++;
    unit_start = p;
    unit_len = (size_t)(end - p);
    if (unit_len == 0) {
        *out_ms = value; /* Flink: no unit means milliseconds. */
        return 0;
    }
    for (i = 0; i < SF_ARRAY_SIZE(units); i++) {
        const unit_t *u = &units[i];
        if (strlen(u->label) == unit_len && strncasecmp(unit_start, u->label, unit_len) == 0) {
            if (u->div > 1) {
                /* Round a non-zero sub-millisecond value up to 1 ms. */
                *out_ms = value / u->div + (value % u->div != 0);
                return 0;
            }
            if (value > UINT64_MAX / u->mul)
                return fail(err, errlen, "duration is too large");
            *out_ms = value * u->mul;
            return 0;
        }
    }
    if (err && errlen)
        snprintf(err, errlen,
                 "unknown time unit '%.*s' (use ms, s/sec/seconds, m/min/minutes, h/hours, "
                 "d/days)",
                 (int)(unit_len > 32 ? 32 : unit_len), unit_start);
    return SF_EINVAL;
}

char *sf_duration_format(uint64_t ms, char *buf, size_t len)
{
    if (ms == 0)
        snprintf(buf, len, "0");
    else if (ms % 86400000 == 0)
        snprintf(buf, len, "%llud", (unsigned long long)(ms / 86400000));
    else if (ms % 3600000 == 0)
        snprintf(buf, len, "%lluh", (unsigned long long)(ms / 3600000));
    else if (ms % 60000 == 0)
        snprintf(buf, len, "%llum", (unsigned long long)(ms / 60000));
    else if (ms % 1000 == 0)
        snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
    else
        snprintf(buf, len, "%llums", (unsigned long long)ms);
    return buf;
}
