/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ABI glue: the only file that knows about QEMU.  The opaque handles QEMU
 * holds are our writer and reader objects themselves.
 */
#include "qemu/transport-plugin.h"

#include "binding.h"
#include "binding-early.h"
#include "cmdline.h"
#include "errmsg.h"
#include "probes.h"
#include "image-file.h"
#include "reader.h"
#include "room.h"
#include "warmup.h"
#include "writer.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SELF "transport-pmem.so"

const uint32_t qemu_transport_plugin_version = QEMU_TRANSPORT_PLUGIN_VERSION;

static char qemu_version[64];
/* QemuTransportHostInfo.warn, copied at init. */
static void (*qemu_warn)(const char *msg);

static void host_warn(void *opaque, const char *msg)
{
    (void)opaque;
    if (qemu_warn) {
        qemu_warn(msg);
    }
}

static const CprHost cpr_host = { qemu_version, host_warn, NULL };

/*
 * vm_problem -- what is wrong with @vm as the backend reads it, in place
 * (arrays present where counted, elements at least this build's size: a
 * later ABI appends to them), into @buf; NULL if nothing.  Every QEMU
 * that passes the init check (version 3) states both sizes.  NULL @vm:
 * none.
 */
static const char *vm_problem(const QemuTransportVm *vm, char *buf,
                              size_t size)
{
    if (!vm) {
        return NULL;
    }
    if (vm->nr_disks &&
        (!vm->disks || vm->disk_size < sizeof(QemuTransportDisk))) {
        snprintf(buf, size, "block node elements of %" PRIu32 " bytes, "
                 "fewer than this transport's %zu", vm->disk_size,
                 sizeof(QemuTransportDisk));
        return buf;
    }
    if (vm->nr_ram && !vm->ram) {
        return "no RAM block list";
    }
    if (vm->nr_ram && vm->ram_block_size < sizeof(QemuTransportRamBlock)) {
        snprintf(buf, size, "RAM block elements of %" PRIu32 " bytes, "
                 "fewer than this transport's %zu", vm->ram_block_size,
                 sizeof(QemuTransportRamBlock));
        return buf;
    }
    return NULL;
}

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
    const CprVm cvm = { vm, NULL, 0 };
    CprWriter *w = NULL;
    const char *bad;
    char buf[128];

    DTRACE_PROBE1(cpr_pmem, out_open_entry, target);
    cpr_room_stop();
    cpr_reader_unprepare();
    bad = vm_problem(vm, buf, sizeof(buf));
    if (bad) {
        cpr_error(errp, target, "%s", bad);
    } else {
        w = cpr_writer_open_vm(target, &cpr_host, &cvm, errp);
    }
    if (w && cpr_writer_populate(w, errp) < 0) {
        cpr_writer_close(w);
        w = NULL;
    }
    DTRACE_PROBE1(cpr_pmem, out_open_return, w);
    return (QemuTransportOut *)w;
}

static ssize_t out_writev(QemuTransportOut *t, const struct iovec *iov,
                          int iovcnt, char **errp)
{
    ssize_t n;

    DTRACE_PROBE2(cpr_pmem, out_writev_entry, t, iovcnt);
    n = cpr_writer_appendv(W(t), iov, iovcnt, errp);
    DTRACE_PROBE2(cpr_pmem, out_writev_return, t, n);
    return n;
}

static ssize_t out_pwritev(QemuTransportOut *t, const struct iovec *iov,
                           int iovcnt, int64_t offset, char **errp)
{
    ssize_t n = -1;

    DTRACE_PROBE3(cpr_pmem, out_pwritev_entry, t, iovcnt, offset);
    if (offset < 0) {
        cpr_error(errp, cpr_writer_path(W(t)), "invalid write offset");
    } else {
        n = cpr_writer_pwritev(W(t), (uint64_t)offset, iov, iovcnt, errp);
    }
    DTRACE_PROBE2(cpr_pmem, out_pwritev_return, t, n);
    return n;
}

static int out_commit(QemuTransportOut *t, const QemuTransportVm *vm,
                      char **errp)
{
    const CprVm cvm = { vm, NULL, 0 };
    const char *bad;
    char buf[128];
    int ret = -1;

    DTRACE_PROBE1(cpr_pmem, out_commit_entry, t);
    bad = vm_problem(vm, buf, sizeof(buf));
    if (bad) {
        cpr_error(errp, cpr_writer_path(W(t)), "%s", bad);
        cpr_writer_abort(W(t));
    } else {
        ret = cpr_writer_commit_vm(W(t), &cvm, errp);
    }
    DTRACE_PROBE2(cpr_pmem, out_commit_return, t, ret);
    return ret;
}

static void out_abort(QemuTransportOut *t)
{
    DTRACE_PROBE1(cpr_pmem, out_abort_entry, t);
    cpr_writer_abort(W(t));
    DTRACE_PROBE1(cpr_pmem, out_abort_return, t);
}

static void out_close(QemuTransportOut *t)
{
    DTRACE_PROBE1(cpr_pmem, out_close_entry, t);
    cpr_writer_close(W(t));
    DTRACE_PROBE1(cpr_pmem, out_close_return, t);
}

/* What in_open's peek needs to start the binding check. */
typedef struct InOpen {
    const char *target;
    const CprVm *vm;
    CprEarlyBinding *early;
} InOpen;

static void start_binding(const CprImage *f, const CprRecord *rec,
                          void *opaque)
{
    InOpen *io = opaque;

    io->early = cpr_binding_early_start(io->target, f, rec, &cpr_host,
                                        io->vm);
}

/*
 * The whole image, then the VM it was saved with, before a byte loads:
 * the VM's check on the room helper while this thread verifies the
 * payload (binding-early.h), both done before this returns.
 */
static QemuTransportIn *in_open(const char *target,
                                const QemuTransportVm *vm, char **errp)
{
    const CprVm cvm = { vm, NULL, 0 };
    InOpen io = { target, &cvm, NULL };
    CprReader *r = NULL;
    const char *bad;
    char buf[128];

    DTRACE_PROBE1(cpr_pmem, in_open_entry, target);
    cpr_warmup_before_restore();
    bad = vm_problem(vm, buf, sizeof(buf));
    if (bad) {
        cpr_error(errp, target, "%s", bad);
    } else {
        r = cpr_reader_open_peek(target, start_binding, &io, errp);
    }
    if (cpr_binding_early_finish(io.early, r, target, &cpr_host, &cvm,
                                 errp) < 0) {
        cpr_reader_close(r);
        r = NULL;
    }
    DTRACE_PROBE1(cpr_pmem, in_open_return, r);
    return (QemuTransportIn *)r;
}

/* @iov filled from the stream at @offset, or with @offset -1 from the
 * read position (moving it); short only at the stream's end. */
static ssize_t read_iov(CprReader *r, const struct iovec *iov, int iovcnt,
                        int64_t offset, char **errp)
{
    size_t total = 0;

    for (int i = 0; i < iovcnt && total < SSIZE_MAX; i++) {
        size_t len = iov[i].iov_len;
        ssize_t n;

        if (len > (size_t)SSIZE_MAX - total) {
            len = (size_t)SSIZE_MAX - total;
        }
        n = offset < 0 ? cpr_reader_read(r, iov[i].iov_base, len, errp) :
            cpr_reader_pread(r, (uint64_t)offset + total, iov[i].iov_base,
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

static ssize_t in_preadv(QemuTransportIn *t, const struct iovec *iov,
                         int iovcnt, int64_t offset, char **errp)
{
    ssize_t n = -1;

    DTRACE_PROBE3(cpr_pmem, in_preadv_entry, t, iovcnt, offset);
    if (offset < 0) {
        cpr_error(errp, cpr_reader_path(R(t)), "invalid read offset");
    } else {
        n = read_iov(R(t), iov, iovcnt, offset, errp);
    }
    DTRACE_PROBE2(cpr_pmem, in_preadv_return, t, n);
    return n;
}

static ssize_t in_readv(QemuTransportIn *t, const struct iovec *iov,
                        int iovcnt, char **errp)
{
    ssize_t n;

    DTRACE_PROBE2(cpr_pmem, in_readv_entry, t, iovcnt);
    n = read_iov(R(t), iov, iovcnt, -1, errp);
    DTRACE_PROBE2(cpr_pmem, in_readv_return, t, n);
    return n;
}

static void in_close(QemuTransportIn *t)
{
    DTRACE_PROBE1(cpr_pmem, in_close_entry, t);
    cpr_warmup_after_restore(R(t));
    DTRACE_PROBE1(cpr_pmem, in_close_return, t);
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
    qemu_warn = host->warn;
    cpr_warmup_init();
    cpr_cmdline_prepare();
    /* Not inside a command: a save or a restore would pay for it. */
    if (cpr_cmdline_preloads_incoming(ops.scheme)) {
        cpr_reader_prepare();
    }
    return &ops;
}
