/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ABI glue: the only file that knows about QEMU.  The opaque handles QEMU
 * holds are our writer and reader objects themselves.
 */
#include "qemu/transport-plugin.h"

#include "binding.h"
#include "errmsg.h"
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

/* The ABI's flags, bit by bit, so that the core never sees the ABI. */
static uint32_t ram_flags(uint32_t f)
{
    return (f & QEMU_TRANSPORT_RAM_SHARED ? CPR_RAM_SHARED : 0) |
           (f & QEMU_TRANSPORT_RAM_PMEM ? CPR_RAM_PMEM : 0) |
           (f & QEMU_TRANSPORT_RAM_PREALLOC ? CPR_RAM_PREALLOC : 0);
}

/* QEMU's block nodes (ABI version 3) as CprDisks; *@out NULL if none. */
static int to_cpr_disks(const QemuTransportVm *vm, CprDisk **out,
                        const char *target, char **errp)
{
    CprDisk *disks;

    *out = NULL;
    if (!vm->nr_disks) {
        return 0;
    }
    /* a later ABI appends to the elements; they are never smaller */
    if (!vm->disks || vm->disk_size < sizeof(QemuTransportDisk)) {
        cpr_error(errp, target, "block node elements of %" PRIu32
                  " bytes, fewer than this transport's %zu", vm->disk_size,
                  sizeof(QemuTransportDisk));
        return -1;
    }
    disks = calloc(vm->nr_disks, sizeof(*disks));
    if (!disks) {
        cpr_error(errp, target, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < vm->nr_disks; i++) {
        const QemuTransportDisk *g = qemu_transport_vm_disk(vm, i);

        disks[i] = (CprDisk){
            .node_name = g->node_name, .filename = g->filename,
            .driver = g->driver, .size = g->size,
            .flags = (g->flags & QEMU_TRANSPORT_DISK_READ_ONLY ?
                      CPR_DISK_READ_ONLY : 0) |
                     (g->flags & QEMU_TRANSPORT_DISK_PROTOCOL ?
                      CPR_DISK_PROTOCOL : 0),
        };
    }
    *out = disks;
    return 0;
}

/*
 * @vm as the core's CprVm; free out->ram and out->disks afterwards.
 * NULL @vm: none.
 */
static int to_cpr_vm(const QemuTransportVm *vm, CprVm *out,
                     const char *target, char **errp)
{
    CprRamBlock *ram = NULL;
    CprDisk *disks = NULL;

    memset(out, 0, sizeof(*out));
    if (!vm) {
        return 0;
    }
    if (to_cpr_disks(vm, &disks, target, errp) < 0) {
        return -1;
    }
    if (vm->nr_ram) {
        if (!vm->ram) {
            cpr_error(errp, target, "no RAM block list");
            free(disks);
            return -1;
        }
        /* a later ABI appends to the elements; they are never smaller */
        if (vm->ram_block_size < sizeof(QemuTransportRamBlock)) {
            cpr_error(errp, target, "RAM block elements of %" PRIu32
                      " bytes, fewer than this transport's %zu",
                      vm->ram_block_size, sizeof(QemuTransportRamBlock));
            free(disks);
            return -1;
        }
        ram = calloc(vm->nr_ram, sizeof(*ram));
        if (!ram) {
            free(disks);
            cpr_error(errp, target, "out of memory");
            return -1;
        }
    }
    for (uint32_t i = 0; i < vm->nr_ram; i++) {
        const QemuTransportRamBlock *b = qemu_transport_vm_ram(vm, i);

        ram[i] = (CprRamBlock){
            .name = b->name, .host = b->host, .size = b->size, .fd = b->fd,
            .fd_offset = b->fd_offset, .flags = ram_flags(b->flags),
        };
    }
    out->ram = ram;
    out->nr_ram = vm->nr_ram;
    out->machine = vm->machine;
    out->cpu = vm->cpu;
    out->disks = disks;
    out->nr_disks = disks ? vm->nr_disks : 0;
    return 0;
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
    CprWriter *w;
    CprVm cvm;

    cpr_room_stop();
    if (to_cpr_vm(vm, &cvm, target, errp) < 0) {
        return NULL;
    }
    w = cpr_writer_open_vm(target, &cpr_host, &cvm, errp);
    free((void *)cvm.ram);
    free((void *)cvm.disks);
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
    CprVm cvm;
    int ret;

    if (to_cpr_vm(vm, &cvm, cpr_writer_path(W(t)), errp) < 0) {
        cpr_writer_abort(W(t));
        return -1;
    }
    ret = cpr_writer_commit_vm(W(t), &cvm, errp);
    free((void *)cvm.ram);
    free((void *)cvm.disks);
    return ret;
}

static void out_abort(QemuTransportOut *t)
{
    cpr_writer_abort(W(t));
}

static void out_close(QemuTransportOut *t)
{
    cpr_writer_close(W(t));
}

/* The whole image, then the VM it was saved with, before a byte loads. */
static QemuTransportIn *in_open(const char *target,
                                const QemuTransportVm *vm, char **errp)
{
    CprReader *r;
    CprVm cvm;

    if (to_cpr_vm(vm, &cvm, target, errp) < 0) {
        return NULL;
    }
    r = cpr_reader_open(target, errp);
    if (r && cpr_binding_verify(target, cpr_reader_record(r),
                                cpr_reader_vmdesc(r), &cpr_host, &cvm,
                                errp) < 0) {
        cpr_reader_close(r);
        r = NULL;
    }
    free((void *)cvm.ram);
    free((void *)cvm.disks);
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
    if (offset < 0) {
        cpr_error(errp, cpr_reader_path(R(t)), "invalid read offset");
        return -1;
    }
    return read_iov(R(t), iov, iovcnt, offset, errp);
}

static ssize_t in_readv(QemuTransportIn *t, const struct iovec *iov,
                        int iovcnt, char **errp)
{
    return read_iov(R(t), iov, iovcnt, -1, errp);
}

static void in_close(QemuTransportIn *t)
{
    cpr_warmup_after_restore(R(t));
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
    return &ops;
}
