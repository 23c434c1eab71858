/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * write() may write less than asked (a pipe to QEMU, a signal): the
 * tools' writes of a stream or a manifest go on until all is written.
 */
#include "write-all.h"

#include <errno.h>
#include <unistd.h>

/* tool_write_all -- see write-all.h. */
int tool_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}
