/* statefun-c: Apache License 2.0.
 *
 * Implementation of the shared test helpers (see testutil.h).
 */
#define _GNU_SOURCE /* pipe2 */
#include "testutil.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *sf_test_src(void)
{
    const char *s = getenv("SF_SRC");
    return s && *s ? s : ".";
}

const char *sf_test_build(void)
{
    const char *s = getenv("SF_BUILD");
    return s && *s ? s : "build";
}

char *sf_test_mkdtemp(const char *prefix)
{
    char *tmpl = malloc(256);
    if (!tmpl)
        return NULL;
    snprintf(tmpl, 256, "/tmp/sf-%s-XXXXXX", prefix);
    if (!mkdtemp(tmpl)) {
        free(tmpl);
        return NULL;
    }
    return tmpl;
}

void sf_test_rmtree(char *dir)
{
    if (!dir)
        return;
    if (strncmp(dir, "/tmp/sf-", 8) == 0)
        sf_test_sh("rm -rf '%s'", dir);
    free(dir);
}

int sf_test_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    if (len && fwrite(data, 1, len, f) != len) {
        fclose(f);
        return -1;
    }
    return fclose(f) == 0 ? 0 : -1;
}

char *sf_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0, r;
    if (!f)
        return NULL;
    do {
        if (n + 4096 + 1 > cap) {
            char *nb;
            cap = cap ? cap * 2 : 8192;
            nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        r = fread(buf + n, 1, 4096, f);
        n += r;
    } while (r > 0);
    fclose(f);
    if (!buf && !(buf = malloc(1)))
        return NULL;
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

int sf_test_sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    int st;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    st = system(cmd);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

uint16_t sf_test_free_port(void)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    uint16_t port = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &alen) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

void sf_test_die_with_parent(pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
}

pid_t sf_test_spawn_line(char *const argv[], char *line, size_t linesz, int timeout_ms)
{
    int fds[2];
    pid_t pid, parent = getpid();
    size_t n = 0;
    struct timespec start, now;
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        sf_test_die_with_parent(parent);
        dup2(fds[1], 1);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (n + 1 < linesz) {
        struct pollfd p = {fds[0], POLLIN, 0};
        long waited;
        char c;
        clock_gettime(CLOCK_MONOTONIC, &now);
        waited = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (waited >= timeout_ms || poll(&p, 1, (int)(timeout_ms - waited)) <= 0)
            break;
        if (read(fds[0], &c, 1) != 1)
            break;
        if (c == '\n') {
            line[n] = '\0';
            close(fds[0]);
            return pid;
        }
        line[n++] = c;
    }
    close(fds[0]);
    sf_test_kill(pid);
    return -1;
}

void sf_test_kill(pid_t pid)
{
    int i, st;
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    for (i = 0; i < 300; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
}
