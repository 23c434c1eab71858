/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * How cpr-pmem (often run by root) opens an image only to read it: it
 * follows a symlink (an inspection only reads, image-file.h), but never
 * opens what is not a regular file, for opening a device or a FIFO can
 * have effects of its own.
 */
#include "tool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

int tool_open_ro(const char *path, struct stat *st)
{
    int pfd = open(path, O_PATH | O_CLOEXEC), fd, e;
    char proc[64];

    if (pfd < 0) {
        return -1;
    }
    if (fstat(pfd, st) < 0) {
        e = errno;
        close(pfd);
        errno = e;
        return -1;
    }
    if (!S_ISREG(st->st_mode)) {
        close(pfd);
        return TOOL_NOT_REGULAR;
    }
    /* The very file checked, reopened through its descriptor. */
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
    fd = open(proc, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    e = errno;
    close(pfd);
    errno = e;
    return fd;
}
