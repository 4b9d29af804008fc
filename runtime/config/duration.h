/* statefun-c: Apache License 2.0.
 *
 * Durations as StateFun (Flink's TimeUtils.parseDuration) writes them: a
 * non-negative integer, optional spaces, and an optional unit label, case
 * insensitive:
 *
 *     d, day, days                         h, hour, hours
 *     m, min, mins, minute, minutes        s, sec, secs, second, seconds
 *     ms, milli, millis, millisecond(s)    us, µs, micro(s), microsecond(s)
 *     ns, nano(s), nanosecond(s)
 *
 * So "500ms", "10s", "10 sec", "2m", "1 min", "15min", "1h", "1minute",
 * "30seconds" all parse. A number without a unit is milliseconds, as in
 * Flink ("0" is zero). We keep milliseconds: a sub-millisecond value that is
 * not zero is rounded up to 1 ms so that "non-zero" survives. Fractions
 * ("1.5s"), signs and values past UINT64_MAX milliseconds are errors.
 *
 * Pure functions: any thread.
 */
#ifndef SF_DURATION_H
#define SF_DURATION_H

#include <stddef.h>
#include <stdint.h>

#include "sf_common.h"

/**
 * Parses |text| into |*out_ms|. On failure returns SF_EINVAL and, when
 * |err| is not NULL, writes a one-line reason (without the input) into
 * |err| (|errlen| bytes, NUL-terminated).
 */
int sf_duration_parse(const char *text, uint64_t *out_ms, char *err, size_t errlen);

/**
 * Formats |ms| in the largest unit that divides it exactly ("2m", "1500ms",
 * "0"); the output is accepted back by sf_duration_parse. Returns |buf|.
 */
char *sf_duration_format(uint64_t ms, char *buf, size_t len);

#endif /* SF_DURATION_H */
