/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ABI glue: the only file that knows about QEMU.  The opaque handles QEMU
 * holds are our writer and reader objects themselves.
 */
#include "qemu/transport-plugin.h"

#include "binding.h"
#include "errmsg.h"
#include "image-file.h"
#include "placement.h"
#include "populate.h"
#include "reader.h"
#include "writer.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
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

/* @vm as the core's CprVm; free out->ram afterwards.  NULL @vm: none. */
static int to_cpr_vm(const QemuTransportVm *vm, CprVm *out,
                     const char *target, char **errp)
{
    CprRamBlock *ram = NULL;

    memset(out, 0, sizeof(*out));
    if (!vm) {
        return 0;
    }
    if (vm->nr_ram) {
        if (!vm->ram) {
            cpr_error(errp, target, "no RAM block list");
            return -1;
        }
        ram = calloc(vm->nr_ram, sizeof(*ram));
        if (!ram) {
            cpr_error(errp, target, "out of memory");
            return -1;
        }
    }
    for (uint32_t i = 0; i < vm->nr_ram; i++) {
        const QemuTransportRamBlock *b = &vm->ram[i];

        ram[i] = (CprRamBlock){
            .name = b->name, .host = b->host, .size = b->size, .fd = b->fd,
            .fd_offset = b->fd_offset, .flags = ram_flags(b->flags),
        };
    }
    out->ram = ram;
    out->nr_ram = vm->nr_ram;
    out->machine = vm->machine;
    out->cpu = vm->cpu;
    return 0;
}

/*
 * Room for the next save, being populated since the last restore.  QEMU
 * calls in_close and out_open from its main thread.
 *
 * in_close runs in the main-loop callback that has just resumed the VM,
 * before QEMU answers any QMP command.  Closing the reader there (its
 * 1 MiB cache goes back with a heap trim: a TLB shootdown of every CPU
 * the vCPUs run on), reopening the image and creating the populating
 * thread (~100-300 µs of the main thread, and a new thread at normal
 * priority next to the vCPU until it lowers its own) is what a
 * management client saw as a late "running".  So in_close only hands the
 * reader to a helper made when the transport loads (at start-up with
 * x-preload-transports).  The helper waits at SCHED_IDLE, so it gets a
 * CPU when one has nothing else to do, then does the job at normal
 * priority (it takes malloc's and glibc's locks: it must not be starved
 * holding them) and lowers itself again.  @lock guards the job and
 * @room; the helper holds it while it works, so out_open never misses a
 * populator that is being started.
 */
static CprPopulator *room;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static CprReader *job;          /* the restore's reader, not closed yet */
static bool job_room;           /* and make room for the next save */
static bool helper_running;

static CprReader *R(QemuTransportIn *t);

/* Under @lock: close @r, having started the populator of the room the
 * next save into its image will use if @make_room. */
static void room_start(CprReader *r, bool make_room)
{
    const CprRecord *rec = cpr_reader_record(r);
    CprPlacement next = cpr_place_new(rec->payload_off, rec->payload_len);
    uint64_t len = cpr_place_room(rec->payload_len);
    /* The very file that was verified, not whatever the path names now. */
    int fd = make_room ? cpr_image_reopen_rw(cpr_reader_file(r)) : -1;

    cpr_populator_free(room);
    room = NULL;
    /* The next save into this image goes to @next, about as long (and
     * never into the payload just restored). */
    if (fd >= 0) {
        room = cpr_populator_start_file(fd, cpr_reader_path(r), next.base,
                                        next.base + (len < next.limit ?
                                                     len : next.limit));
    }
    cpr_reader_close(r);
}

static void set_idle(bool idle)
{
    struct sched_param p = { 0 };

    pthread_setschedparam(pthread_self(), idle ? SCHED_IDLE : SCHED_OTHER, &p);
}

static void *room_helper(void *opaque)
{
    (void)opaque;
    set_idle(true);
    pthread_mutex_lock(&lock);
    for (;;) {
        while (!job) {
            pthread_cond_wait(&wake, &lock);
        }
        set_idle(false);
        room_start(job, job_room);
        job = NULL;
        set_idle(true);
    }
    return NULL;
}

static void room_helper_create(void)
{
    pthread_attr_t attr;
    pthread_t t;

    if (pthread_attr_init(&attr) == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        helper_running = pthread_create(&t, &attr, room_helper, NULL) == 0;
        pthread_attr_destroy(&attr);
    }
}

/* At load: the helper; without one, in_close does the job itself. */
static void room_helper_start(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    pthread_once(&once, room_helper_create);
}

/* A save is about to start: no room job may run any more. */
static void room_stop(void)
{
    CprPopulator *pop;

    pthread_mutex_lock(&lock);
    /* A save right after a restore, before the helper got a CPU: the
     * room is made all the same (the join below waits for the growth),
     * as every restore promises. */
    if (job) {
        room_start(job, job_room);
        job = NULL;
    }
    pop = room;
    room = NULL;
    pthread_mutex_unlock(&lock);
    /* Whatever it has not done, the save does; it must not compete. */
    cpr_populator_free(pop);
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

    room_stop();
    if (to_cpr_vm(vm, &cvm, target, errp) < 0) {
        return NULL;
    }
    w = cpr_writer_open_vm(target, &cpr_host, &cvm, errp);
    free((void *)cvm.ram);
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
    return (QemuTransportIn *)r;
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
    /* Measurement only (bench/restore-outside.c): no room at all. */
    bool make_room = getenv("CPR_PMEM_NO_ROOM") == NULL;

    pthread_mutex_lock(&lock);
    if (job) {                  /* not expected: one restore per process */
        room_start(job, job_room);
        job = NULL;
    }
    if (helper_running) {
        job = R(t);
        job_room = make_room;
        pthread_cond_signal(&wake);
    } else {
        room_start(R(t), make_room);
    }
    pthread_mutex_unlock(&lock);
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
    room_helper_start();
    return &ops;
}
