/* statefun-c: Apache License 2.0.
 *
 * Directory helpers shared by the runtime's on-disk parts (state backend,
 * ingress log, egress store): "mkdir -p" and fsync of a directory, so that a
 * created or renamed file's directory entry is durable.
 *
 * No allocation that can fail (sf_xmalloc aborts), no logging: callers log with
 * their own context, errno still telling why. Any thread.
 */
#ifndef SF_FS_H
#define SF_FS_H

/**
 * Creates |dir| and its missing parents (mode 0755); existing ones are fine.
 * Returns 0, SF_EINVAL for an empty path, or SF_EIO when a mkdir failed
 * (errno is that mkdir's).
 */
int sf_fs_mkdirs(const char *dir);

/** fsyncs the directory |dir|. Returns 0 or SF_EIO (errno tells why). */
int sf_fs_fsync_dir(const char *dir);

#endif /* SF_FS_H */
