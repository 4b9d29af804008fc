/* statefun-c: Apache License 2.0.
 *
 * The runtime log (see log.h). The level and descriptor are plain globals
 * written once by sf_log_init before any other thread exists, so readers need
 * no synchronization (pthread_create orders the write before them). The tag
 * is thread-local. A line is built in a stack buffer, falling back to the
 * heap for long messages, and leaves with one write(2): POSIX keeps such
 * writes from interleaving on a pipe up to PIPE_BUF bytes and, in practice,
 * on terminals and regular files opened for append.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sf_common.h"

#define TAG_MAX 24
#define LINE_STACK 1024

static sf_log_level g_level = SF_LOG_INFO;
static int g_fd = STDERR_FILENO;
static __thread char t_tag[TAG_MAX];

static const char *const level_names[] = {"error", "warn", "info", "debug"};
/* Padded upper-case names keep the message column aligned. */
static const char *const level_labels[] = {"ERROR", "WARN ", "INFO ", "DEBUG"};

void sf_log_init(sf_log_level level, int fd)
{
    if (level < SF_LOG_ERROR)
        level = SF_LOG_ERROR;
    if (level > SF_LOG_DEBUG)
        level = SF_LOG_DEBUG;
    g_level = level;
    g_fd = fd < 0 ? STDERR_FILENO : fd;
}

sf_log_level sf_log_get_level(void)
{
    return g_level;
}

void sf_log_set_tag(const char *tag)
{
    snprintf(t_tag, sizeof t_tag, "%s", tag ? tag : "");
}

const char *sf_log_level_name(sf_log_level level)
{
    if (level < SF_LOG_ERROR || level > SF_LOG_DEBUG)
        return "?";
    return level_names[level];
}

int sf_log_level_parse(const char *text, sf_log_level *out)
{
    size_t i;

    if (!text)
        return SF_EINVAL;
    for (i = 0; i < SF_ARRAY_SIZE(level_names); i++) {
        if (strcasecmp(text, level_names[i]) == 0) {
            *out = (sf_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(text, "warning") == 0) {
        *out = SF_LOG_WARN;
        return 0;
    }
    return SF_EINVAL;
}

/* Writes all of |len| bytes, retrying on EINTR and short writes. */
static void write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return; /* Nowhere left to report a failing log. */
        }
        p += n;
        len -= (size_t)n;
    }
}

/* Replaces control characters in the message part so one event is one line. */
static void flatten(char *s, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            s[i] = ' ';
    }
}

void sf__log(sf_log_level level, const char *fmt, ...)
{
    char stack[LINE_STACK];
    char *line = stack;
    struct timespec ts;
    struct tm tm;
    int head, body;
    size_t total;
    va_list ap;

    if (level < SF_LOG_ERROR || level > SF_LOG_DEBUG)
        level = SF_LOG_ERROR;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    head = snprintf(stack, sizeof stack, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s [%s] ",
                    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                    ts.tv_nsec / 1000000, level_labels[level], t_tag[0] ? t_tag : "main");
    if (head < 0 || (size_t)head >= sizeof stack)
        return;

    va_start(ap, fmt);
    body = vsnprintf(stack + head, sizeof stack - (size_t)head, fmt, ap);
    va_end(ap);
    if (body < 0)
        return;
    total = (size_t)head + (size_t)body + 1; /* + '\n' */
    if (total >= sizeof stack) {
        /* Too long for the stack buffer: format again on the heap. */
        line = malloc(total + 1);
        if (!line) {
            line = stack;
            total = sizeof stack - 1;
            body = (int)(total - 1 - (size_t)head);
        } else {
            memcpy(line, stack, (size_t)head);
            va_start(ap, fmt);
            vsnprintf(line + head, (size_t)body + 1, fmt, ap);
            va_end(ap);
        }
    }
    flatten(line + head, (size_t)body);
    line[total - 1] = '\n';
    write_all(g_fd, line, total);
    if (line != stack)
        free(line);
}
