/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ABI glue: the only file that knows about QEMU.  The opaque handles QEMU
 * holds are our writer and reader objects themselves.
 */
#include "qemu/transport-plugin.h"

#include "errmsg.h"
#include "image-file.h"
#include "placement.h"
#include "populate.h"
#include "reader.h"
#include "writer.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#define SELF "transport-pmem.so"

const uint32_t qemu_transport_plugin_version = QEMU_TRANSPORT_PLUGIN_VERSION;

static char qemu_version[64];

/* Room for the next save, being populated since the last restore.  QEMU
 * calls in_close and out_open from its main thread. */
static CprPopulator *room;

static CprWriter *W(QemuTransportOut *t)
{
    return (CprWriter *)t;
}

static CprReader *R(QemuTransportIn *t)
{
    return (CprReader *)t;
}

static QemuTransportOut *out_open(const char *target,
                                  const QemuTransportVm *vm, char **errp)
{
    CprWriter *w;

    (void)vm;   /* issue 9: bound below */

    /* Whatever it has not done, the save does; it must not compete. */
    cpr_populator_free(room);
    room = NULL;
    w = cpr_writer_open(target, qemu_version, errp);
    if (w && cpr_writer_populate(w, errp) < 0) {
        cpr_writer_close(w);
        return NULL;
    }
    return (QemuTransportOut *)w;
}

static ssize_t out_writev(QemuTransportOut *t, const struct iovec *iov,
                          int iovcnt, char **errp)
{
    return cpr_writer_appendv(W(t), iov, iovcnt, errp);
}

static ssize_t out_pwritev(QemuTransportOut *t, const struct iovec *iov,
                           int iovcnt, int64_t offset, char **errp)
{
    if (offset < 0) {
        cpr_error(errp, cpr_writer_path(W(t)), "invalid write offset");
        return -1;
    }
    return cpr_writer_pwritev(W(t), (uint64_t)offset, iov, iovcnt, errp);
}

static int out_commit(QemuTransportOut *t, const QemuTransportVm *vm,
                      char **errp)
{
    (void)vm;   /* issue 9: bound below */
    return cpr_writer_commit(W(t), errp);
}

static void out_abort(QemuTransportOut *t)
{
    cpr_writer_abort(W(t));
}

static void out_close(QemuTransportOut *t)
{
    cpr_writer_close(W(t));
}

static QemuTransportIn *in_open(const char *target,
                                const QemuTransportVm *vm, char **errp)
{
    (void)vm;   /* issue 9: bound below */
    return (QemuTransportIn *)cpr_reader_open(target, errp);
}

static ssize_t in_preadv(QemuTransportIn *t, const struct iovec *iov,
                         int iovcnt, int64_t offset, char **errp)
{
    size_t total = 0;

    if (offset < 0) {
        cpr_error(errp, cpr_reader_path(R(t)), "invalid read offset");
        return -1;
    }
    for (int i = 0; i < iovcnt && total < SSIZE_MAX; i++) {
        size_t len = iov[i].iov_len;
        ssize_t n;

        if (len > (size_t)SSIZE_MAX - total) {
            len = (size_t)SSIZE_MAX - total;
        }
        n = cpr_reader_pread(R(t), (uint64_t)offset + total, iov[i].iov_base,
                             len, errp);
        if (n < 0) {
            return -1;
        }
        total += (size_t)n;
        if ((size_t)n < iov[i].iov_len) {
            break;
        }
    }
    return (ssize_t)total;
}

static ssize_t in_readv(QemuTransportIn *t, const struct iovec *iov,
                        int iovcnt, char **errp)
{
    size_t total = 0;

    for (int i = 0; i < iovcnt && total < SSIZE_MAX; i++) {
        size_t len = iov[i].iov_len;
        ssize_t n;

        if (len > (size_t)SSIZE_MAX - total) {
            len = (size_t)SSIZE_MAX - total;
        }
        n = cpr_reader_read(R(t), iov[i].iov_base, len, errp);
        if (n < 0) {
            return -1;
        }
        total += (size_t)n;
        if ((size_t)n < iov[i].iov_len) {
            break;
        }
    }
    return (ssize_t)total;
}

static void in_close(QemuTransportIn *t)
{
    const CprRecord *rec = cpr_reader_record(R(t));
    CprPlacement next = cpr_place_new(rec->payload_off, rec->payload_len);
    uint64_t len = cpr_place_room(rec->payload_len);
    /* The very file that was verified, not whatever the path names now. */
    int fd = cpr_image_reopen_rw(cpr_reader_file(R(t)));

    /* The next save into this image goes to @next, about as long (and
     * never into the payload just restored). */
    cpr_populator_free(room);
    room = fd < 0 ? NULL :
           cpr_populator_start_file(fd, cpr_reader_path(R(t)), next.base,
                                    next.base + (len < next.limit ?
                                                 len : next.limit));
    cpr_reader_close(R(t));
}

static const QemuTransportOps ops = {
    .scheme = "pmem",
    .out_open = out_open,
    .out_writev = out_writev,
    .out_pwritev = out_pwritev,
    .out_commit = out_commit,
    .out_abort = out_abort,
    .out_close = out_close,
    .in_open = in_open,
    .in_readv = in_readv,
    .in_preadv = in_preadv,
    .in_close = in_close,
};

const QemuTransportOps *
qemu_transport_plugin_init(const QemuTransportHostInfo *host, char **errp)
{
    if (!host) {
        cpr_error(errp, SELF, "no host information");
        return NULL;
    }
    if (host->min_version > QEMU_TRANSPORT_PLUGIN_VERSION ||
        host->cur_version < QEMU_TRANSPORT_PLUGIN_VERSION) {
        cpr_error(errp, SELF, "built for transport ABI version %u, but this "
                  "QEMU speaks versions %u to %u",
                  QEMU_TRANSPORT_PLUGIN_VERSION, host->min_version,
                  host->cur_version);
        return NULL;
    }
    snprintf(qemu_version, sizeof(qemu_version), "%s",
             host->qemu_version ? host->qemu_version : "");
    return &ops;
}
