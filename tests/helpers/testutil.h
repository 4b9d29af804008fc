/* statefun-c: Apache License 2.0.
 *
 * Small helpers shared by the test suites: where the source and build trees
 * are (SF_SRC, SF_BUILD, set by `make test`), temporary directories, files,
 * running external tools and finding a free loopback port.
 */
#ifndef SF_TESTUTIL_H
#define SF_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/** The source root (env SF_SRC, default "."). */
const char *sf_test_src(void);
/** The build directory (env SF_BUILD, default "build"). */
const char *sf_test_build(void);
/** Creates a fresh directory under /tmp; caller frees the string. */
char *sf_test_mkdtemp(const char *prefix);
/** Removes |dir| recursively and frees the string. */
void sf_test_rmtree(char *dir);
/** Writes |len| bytes to |path|. Returns 0 or -1. */
int sf_test_write_file(const char *path, const void *data, size_t len);
/** Reads a whole file; NUL-terminated; caller frees. NULL on error. */
char *sf_test_read_file(const char *path, size_t *len);
/** Runs |cmd| with /bin/sh; returns its exit status (or -1). printf-style. */
int sf_test_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** Returns a TCP port on 127.0.0.1 that was free a moment ago. */
uint16_t sf_test_free_port(void);

#include <sys/types.h>

/**
 * In a child after fork (async-signal-safe): asks the kernel to SIGKILL it
 * when the thread that forked it ends, and exits at once if that already
 * happened. A test's processes then never outlive it: a failed assertion
 * ends the test with _exit, skipping its cleanup.
 */
void sf_test_die_with_parent(pid_t parent);

/**
 * Starts |argv| (argv[0] searched in PATH) with stdout on a pipe and waits up
 * to |timeout_ms| for its first line, copied into |line| without the newline.
 * Returns the child's PID, or -1 (and the child is killed) when no line came.
 * The child dies with the calling thread (sf_test_die_with_parent).
 */
pid_t sf_test_spawn_line(char *const argv[], char *line, size_t linesz, int timeout_ms);
/** Sends SIGTERM, waits up to 3 s, then SIGKILL; reaps the child. */
void sf_test_kill(pid_t pid);

#endif
