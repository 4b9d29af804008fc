/* statefun-c: Apache License 2.0.
 *
 * The runtime's log: one line per event on stderr (or on the descriptor given
 * to sf_log_init), shaped
 *
 *     2024-05-01T12:00:00.123Z INFO  [worker-3] message text
 *
 * that is a UTC timestamp with milliseconds, the level, the tag of the thread
 * that logged and the printf-formatted message. Each line is formatted into
 * one buffer and written with a single write(2), so lines from different
 * threads never interleave. Newlines and other control characters inside a
 * message are replaced by spaces: one event is always one line.
 *
 * Threading: sf_log_init is called once by main() before any thread starts
 * (the level is immutable configuration afterwards). sf_log_set_tag is called
 * by each thread for itself. Everything else is "any thread".
 */
#ifndef SF_LOG_H
#define SF_LOG_H

#include <stdbool.h>

#include "sf_common.h"

/** Log levels, most severe first; a level enables itself and all before it. */
typedef enum {
    SF_LOG_ERROR = 0,
    SF_LOG_WARN = 1,
    SF_LOG_INFO = 2,
    SF_LOG_DEBUG = 3,
} sf_log_level;

/**
 * Sets the level and the output descriptor (|fd| < 0 means stderr). Call once
 * at start, before other threads exist. Without a call the level is
 * SF_LOG_INFO and the output stderr.
 */
void sf_log_init(sf_log_level level, int fd);

/** The level set by sf_log_init. Any thread. */
sf_log_level sf_log_get_level(void);

/** True when events of |level| are written. Any thread. */
static inline bool sf_log_enabled(sf_log_level level)
{
    return level <= sf_log_get_level();
}

/**
 * Names the calling thread in its log lines ("main", "io", "worker-3"). The
 * text is copied (at most 23 bytes kept). Calling thread only.
 */
void sf_log_set_tag(const char *tag);

/** "error", "warn", "info" or "debug". */
const char *sf_log_level_name(sf_log_level level);

/**
 * Parses "error", "warn" (or "warning"), "info" or "debug", case-insensitive.
 * Returns 0 and sets |*out|, or SF_EINVAL.
 */
int sf_log_level_parse(const char *text, sf_log_level *out);

/** Writes one event. Prefer the sf_log_* macros, which skip disabled levels. */
void sf__log(sf_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define sf_log_error(...)                                                                          \
    do {                                                                                           \
        if (sf_log_enabled(SF_LOG_ERROR))                                                          \
            sf__log(SF_LOG_ERROR, __VA_ARGS__);                                                    \
    } while (0)
#define sf_log_warn(...)                                                                           \
    do {                                                                                           \
        if (sf_log_enabled(SF_LOG_WARN))                                                           \
            sf__log(SF_LOG_WARN, __VA_ARGS__);                                                     \
    } while (0)
#define sf_log_info(...)                                                                           \
    do {                                                                                           \
        if (sf_log_enabled(SF_LOG_INFO))                                                           \
            sf__log(SF_LOG_INFO, __VA_ARGS__);                                                     \
    } while (0)
#define sf_log_debug(...)                                                                          \
    do {                                                                                           \
        if (sf_log_enabled(SF_LOG_DEBUG))                                                          \
            sf__log(SF_LOG_DEBUG, __VA_ARGS__);                                                    \
    } while (0)

#endif /* SF_LOG_H */
