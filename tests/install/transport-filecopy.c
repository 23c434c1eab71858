/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * transport-filecopy.so: the smallest useful third-party transport, built
 * by tests/install/test-install.c against the *installed* ABI header and
 * pkg-config file only (nothing from this source tree).
 *
 * "filecopy:PATH" writes the stream to PATH.tmp; the commit makes it
 * durable and atomic (fsync, rename to PATH, fsync of the directory), an
 * abort removes it; a restore reads PATH back.
 */
#include <qemu/transport-plugin.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct QemuTransportOut {
    int fd;
    char *path, *tmp;
};

struct QemuTransportIn {
    int fd;
};

static void *fail(char **errp, const char *path, const char *what)
{
    char buf[512];

    snprintf(buf, sizeof(buf), "%s: %s: %s", path, what, strerror(errno));
    *errp = strdup(buf);
    return NULL;
}

static QemuTransportOut *out_open(const char *target,
                                  const QemuTransportVm *vm, char **errp)
{
    QemuTransportOut *t = calloc(1, sizeof(*t));
    size_t n = strlen(target) + 5;

    (void)vm;
    t->path = strdup(target);
    t->tmp = malloc(n);
    snprintf(t->tmp, n, "%s.tmp", target);
    t->fd = open(t->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (t->fd < 0) {
        fail(errp, t->tmp, "cannot create");
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

            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0) {
                fail(errp, t->tmp, "cannot write");
                return -1;
            }
            p += n;
            left -= (size_t)n;
            total += n;
        }
    }
    return total;
}

static int out_commit(QemuTransportOut *t, const QemuTransportVm *vm,
                      char **errp)
{
    char *copy = strdup(t->path);
    int dfd = -1, ret = -1;

    (void)vm;
    if (fsync(t->fd) < 0) {
        fail(errp, t->tmp, "cannot sync");
    } else if (rename(t->tmp, t->path) < 0) {
        fail(errp, t->path, "cannot rename into place");
    } else if ((dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY)) < 0 ||
               fsync(dfd) < 0) {
        fail(errp, t->path, "cannot sync its directory");
    } else {
        ret = 0;
    }
    if (dfd >= 0) {
        close(dfd);
    }
    free(copy);
    return ret;
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

static QemuTransportIn *in_open(const char *target, const QemuTransportVm *vm,
                                char **errp)
{
    QemuTransportIn *t = calloc(1, sizeof(*t));

    (void)vm;
    t->fd = open(target, O_RDONLY | O_CLOEXEC);
    if (t->fd < 0) {
        free(t);
        return fail(errp, target, "cannot open");
    }
    return t;
}

static ssize_t in_readv(QemuTransportIn *t, const struct iovec *iov,
                        int iovcnt, char **errp)
{
    ssize_t n;

    do {
        n = readv(t->fd, iov, iovcnt);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        fail(errp, "filecopy", "cannot read");
    }
    return n;
}

static void in_close(QemuTransportIn *t)
{
    close(t->fd);
    free(t);
}

static const QemuTransportOps ops = {
    .scheme = "filecopy",
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
    (void)host;
    (void)errp;
    return &ops;
}
