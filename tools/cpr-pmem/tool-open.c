/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * How cpr-pmem (often run by root) opens an image outside the backend's
 * writer and reader: it follows a symlink (an inspection only reads,
 * image-file.h; the exec: status block is written only in a file with a
 * valid superblock), but never opens what is not a regular file, for
 * opening a device or a FIFO can have effects of its own.
 */
#include "tool-open.h"
#include "media.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

/* tool_open_regular -- see tool-open.h. */
int tool_open_regular(const char *path, int flags, struct stat *st)
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
    fd = open(proc, flags | O_CLOEXEC);
    e = errno;
    close(pfd);
    errno = e;
    return fd;
}

/* tool_open_ro -- see tool-open.h. */
int tool_open_ro(const char *path, struct stat *st)
{
    return tool_open_regular(path, O_RDONLY | O_NONBLOCK, st);
}

/* tool_image_media -- see tool-open.h. */
int tool_image_media(const char *path, char *detail, size_t size)
{
    struct stat st;
    int fd = tool_open_ro(path, &st);
    int media;

    if (fd < 0) {
        snprintf(detail, size, fd == TOOL_NOT_REGULAR ? "not a regular file"
                                                      : "cannot open");
        return CPR_MEDIA_VOLATILE;
    }
    media = cpr_media_of_file(fd, detail, size);
    close(fd);
    return media;
}
