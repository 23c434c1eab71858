/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Helpers for the hardening tests (hostile images, third parties, growth,
 * creation): forged headers, children that may die of a signal, private
 * size-limited mounts.  Only the ABI and format.h are used, so the same
 * tests build against any version of the backend.
 */
#ifndef HOSTILE_UTIL_H
#define HOSTILE_UTIL_H

#include <glib.h>
#include <stdint.h>
#include <sys/types.h>

#include "qemu/transport-plugin.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

/*
 * Run fn(arg) in a forked child (stdio flushed first); the child exits
 * with fn's result through exit(), so a sanitizer build checks it for
 * leaks too.  Returns the raw wait status.
 */
int hu_run_child(int (*fn)(void *), void *arg);

/* "exit 0", "exit 3", "killed by SIGBUS (Bus error)": g_free() it. */
char *hu_status_str(int status);

/* Assert @status is a clean exit 0, naming @what and the status if not. */
void hu_assert_exit_ok(int status, const char *what);

/*
 * In a child: a private mount namespace with a tmpfs of @opts at @dir.
 * FALSE if this host cannot (then the caller skips).
 */
gboolean hu_private_tmpfs(const char *dir, const char *opts);

/* Whether @dir is on a tmpfs. */
gboolean hu_on_tmpfs(const char *dir);

/*
 * A child's guard against a runaway file: fallocate/ftruncate/write past
 * @bytes fail with EFBIG, before allocating anything, instead of filling
 * the disk.  With @fatal the attempt kills the child (SIGXFSZ), so that
 * it shows as a failure even where it would end in a clean error.
 */
void hu_limit_file_size(uint64_t bytes, gboolean fatal);

uint64_t hu_file_size(const char *path);
/* Bytes an unprivileged user could still allocate on @dir's filesystem. */
uint64_t hu_fs_free(const char *dir);

/*
 * Write a valid superblock (and zeros up to 12 KiB) at the start of @fd,
 * and, if @len != 0, a valid record of generation @gen claiming payload
 * [@off, @off + @len) with checksum @xxh3, in its slot.
 */
void hu_write_header(int fd, uint64_t gen, uint64_t off, uint64_t len,
                     uint64_t xxh3);
/* The same record (checksums correct) into an existing file. */
void hu_forge_record(const char *path, uint64_t gen, uint64_t off,
                     uint64_t len, uint64_t xxh3);

/* Generation of the newest valid record, 0 if none (or file too short). */
uint64_t hu_newest_generation(const char *path);
/* Whether the file starts with a valid superblock. */
gboolean hu_superblock_valid(const char *path);

/*
 * Read the whole stream through in_readv in odd-sized chunks into @buf
 * (at most @cap bytes).  Returns the bytes read, or -1 with *errp; *@got
 * (if not NULL) is what the calls before that returned.
 */
ssize_t hu_read_all(QemuTransportIn *t, uint8_t *buf, size_t cap,
                    size_t *got, char **errp);

/* Copy the file @from to a new file @to (replacing it). */
void hu_copy_file(const char *from, const char *to);

/* Assert @err names @path first and contains @what; frees it. */
void hu_assert_error(const char *path, char *err, const char *what);

/* Monotonic seconds. */
double hu_now(void);

#endif
