/* statefun-c: Apache License 2.0.
 *
 * Directory helpers (see fs.h).
 */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sf_common.h"
#include "xalloc.h"

int sf_fs_mkdirs(const char *dir)
{
    char *p, *s;
    int rv = 0, err = 0;
    if (dir[0] == '\0')
        return SF_EINVAL;
    p = sf_xstrdup(dir);
    /* Each parent (the prefix before every '/' past the first byte), then |dir| itself. */
    for (s = p + 1;; s++) {
        char c = *s;
        if (c != '/' && c != '\0')
            continue;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            err = errno;
            rv = SF_EIO;
            break;
        }
        if (c == '\0')
            break;
        *s = c;
    }
    free(p);
    if (rv != 0)
        errno = err;
    return rv;
}

int sf_fs_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rv = 0, err = 0;
    if (fd < 0)
        return SF_EIO;
    if (fsync(fd) != 0) {
        err = errno;
        rv = SF_EIO;
    }
    close(fd);
    if (rv != 0)
        errno = err;
    return rv;
}
