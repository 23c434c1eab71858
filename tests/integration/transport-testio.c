/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * transport-test-io1.so: a plain-file transport for the tests of QEMU's
 * side of the ABI, with what the pmem backend never does on purpose.
 *
 * "test-io1:PATH" writes PATH.tmp and renames it to PATH at commit, and
 * reads PATH back.  "test-io1:PATH,fail-read-at=N" makes in_readv fail
 * with a distinctive message once N bytes have been read.  If
 * $TEST_IO1_INIT_MARK is set, qemu_transport_plugin_init() creates that
 * file, so a test can tell whether QEMU initialised the transport.
 *
 * The scheme has a digit and a '-' on purpose: -incoming must take it
 * for a URI.
 */
#include "qemu/transport-plugin.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FAIL_OPT ",fail-read-at="

struct QemuTransportOut {
    int fd;
    char *path;
    char *tmp;
};

struct QemuTransportIn {
    int fd;
    char *path;
    long long pos;
    long long fail_at;      /* -1: never */
};

static char *message(const char *fmt, const char *path, long long n)
{
    char *msg = NULL;

    if (asprintf(&msg, fmt, path, n) < 0) {
        return NULL;
    }
    return msg;
}

static QemuTransportOut *out_open(const char *target, char **errp)
{
    QemuTransportOut *t = calloc(1, sizeof(*t));

    t->path = strdup(target);
    if (asprintf(&t->tmp, "%s.tmp", target) < 0) {
        abort();
    }
    t->fd = open(t->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (t->fd < 0) {
        *errp = message("test-io1: %s: cannot create (errno %lld)", t->tmp,
                        errno);
        free(t->tmp);
        free(t->path);
        free(t);
        return NULL;
    }
    return t;
}

static ssize_t out_writev(QemuTransportOut *t, const struct iovec *iov,
                          int iovcnt, char **errp)
{
    ssize_t total = 0;

    for (int i = 0; i < iovcnt; i++) {
        const char *p = iov[i].iov_base;
        size_t left = iov[i].iov_len;

        while (left) {
            ssize_t n = write(t->fd, p, left);

            if (n < 0) {
                *errp = message("test-io1: %s: write failed (errno %lld)",
                                t->tmp, errno);
                return -1;
            }
            p += n;
            left -= n;
            total += n;
        }
    }
    return total;
}

static int out_commit(QemuTransportOut *t, char **errp)
{
    if (fsync(t->fd) < 0 || rename(t->tmp, t->path) < 0) {
        *errp = message("test-io1: %s: commit failed (errno %lld)", t->path,
                        errno);
        return -1;
    }
    return 0;
}

static void out_abort(QemuTransportOut *t)
{
    unlink(t->tmp);
}

static void out_close(QemuTransportOut *t)
{
    close(t->fd);
    free(t->tmp);
    free(t->path);
    free(t);
}

static QemuTransportIn *in_open(const char *target, char **errp)
{
    QemuTransportIn *t = calloc(1, sizeof(*t));
    const char *opt = strstr(target, FAIL_OPT);

    t->path = opt ? strndup(target, opt - target) : strdup(target);
    t->fail_at = opt ? atoll(opt + strlen(FAIL_OPT)) : -1;
    t->fd = open(t->path, O_RDONLY | O_CLOEXEC);
    if (t->fd < 0) {
        *errp = message("test-io1: %s: cannot open (errno %lld)", t->path,
                        errno);
        free(t->path);
        free(t);
        return NULL;
    }
    return t;
}

static ssize_t in_readv(QemuTransportIn *t, const struct iovec *iov,
                        int iovcnt, char **errp)
{
    size_t len = iovcnt ? iov[0].iov_len : 0;
    ssize_t n;

    if (t->fail_at >= 0 && t->pos >= t->fail_at) {
        *errp = message("test-io1: %s: injected read failure at byte %lld",
                        t->path, t->pos);
        return -1;
    }
    if (t->fail_at >= 0 && (long long)len > t->fail_at - t->pos) {
        len = t->fail_at - t->pos;
    }
    n = read(t->fd, iov[0].iov_base, len);
    if (n < 0) {
        *errp = message("test-io1: %s: read failed (errno %lld)", t->path,
                        errno);
        return -1;
    }
    t->pos += n;
    return n;
}

static void in_close(QemuTransportIn *t)
{
    close(t->fd);
    free(t->path);
    free(t);
}

static const char *const schemes[] = { "test-io1", NULL };

static const QemuTransportOps ops = {
    .schemes = schemes,
    .out_open = out_open,
    .out_writev = out_writev,
    .out_commit = out_commit,
    .out_abort = out_abort,
    .out_close = out_close,
    .in_open = in_open,
    .in_readv = in_readv,
    .in_close = in_close,
};

QEMU_TRANSPORT_EXPORT const uint32_t qemu_transport_plugin_version =
    QEMU_TRANSPORT_PLUGIN_VERSION;

QEMU_TRANSPORT_EXPORT const QemuTransportOps *
qemu_transport_plugin_init(const QemuTransportHostInfo *host, char **errp)
{
    const char *mark = getenv("TEST_IO1_INIT_MARK");

    (void)host;
    (void)errp;
    if (mark) {
        int fd = open(mark, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

        if (fd >= 0) {
            close(fd);
        }
    }
    return &ops;
}
