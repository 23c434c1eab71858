/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QEMU migration transport plugin ABI
 *
 * An out-of-tree shared object that carries the migration stream for one
 * or more URI schemes ("pmem:PATH", ...).  QEMU maps "SCHEME:REST" to
 * $QEMU_TRANSPORT_PLUGIN_DIR/transport-SCHEME.so (the directory defaults to
 * a path fixed when QEMU is built), opens it, checks the ABI version both
 * ways and then forwards the migration channel to the ops table below.
 *
 * This header is the whole contract: a transport includes it and nothing
 * from QEMU, and needs no QEMU symbols at run time.
 *
 * Versioning follows include/qemu/qemu-plugin.h: the transport exports the
 * version it was built against, QEMU refuses versions outside its
 * [MIN_VERSION, VERSION] window, and the transport sees QEMU's window in
 * QemuTransportHostInfo and may refuse it in turn.  A new version only
 * ever appends to the structures below.
 */
#ifndef QEMU_TRANSPORT_PLUGIN_H
#define QEMU_TRANSPORT_PLUGIN_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#define QEMU_TRANSPORT_PLUGIN_VERSION 1
#define QEMU_TRANSPORT_PLUGIN_MIN_VERSION 1

#define QEMU_TRANSPORT_EXPORT __attribute__((visibility("default")))

/* What QEMU tells a transport about itself when loading it. */
typedef struct QemuTransportHostInfo {
    uint32_t min_version;       /* oldest ABI version QEMU still speaks */
    uint32_t cur_version;       /* newest ABI version QEMU speaks */
    const char *qemu_version;   /* e.g. "10.0.13", never NULL */
} QemuTransportHostInfo;

/* Opaque per-channel state, owned by the transport. */
typedef struct QemuTransportOut QemuTransportOut;
typedef struct QemuTransportIn QemuTransportIn;

/*
 * Errors: every call that can fail takes @errp.  On failure the transport
 * stores a malloc()ed, NUL-terminated, human-readable message there (QEMU
 * frees it with free()) and returns the failure value.  Messages should
 * name the target and the reason ("/mnt/pmem/vm.cpr: no space left on
 * device"); QEMU shows them unchanged in query-migrate's error-desc and on
 * the monitor.  @errp is never NULL.
 *
 * Threads: QEMU never calls into one handle from two threads at once, but
 * an outgoing and an incoming handle may live in the same process.
 */
typedef struct QemuTransportOps {
    /* NULL-terminated list of the URI schemes served, without the colon. */
    const char *const *schemes;

    /*
     * Outgoing (migrate SCHEME:TARGET).
     *
     * out_open: main thread, under the BQL, when the migrate command runs.
     * @target is the URI without "SCHEME:".  Prepares a new image that does
     * not disturb the last committed one.  Returns NULL on failure; QEMU
     * then fails the command and the VM keeps running.
     */
    QemuTransportOut *(*out_open)(const char *target, char **errp);

    /*
     * out_writev: migration thread.  Appends all of @iov to the stream;
     * returns the number of bytes (the whole iov) or -1.  Short writes are
     * not allowed: the channel is blocking.
     */
    ssize_t (*out_writev)(QemuTransportOut *t, const struct iovec *iov,
                          int iovcnt, char **errp);

    /*
     * out_pwritev (optional, may be NULL): migration or multifd threads.
     * Writes @iov at stream offset @offset without moving the append
     * position; the stream length becomes at least @offset + size.  With
     * in_preadv it makes the channel seekable (mapped-ram).
     */
    ssize_t (*out_pwritev)(QemuTransportOut *t, const struct iovec *iov,
                           int iovcnt, off_t offset, char **errp);

    /*
     * out_commit: migration thread, after QEMU has written the last byte
     * and before it reports the migration "completed".  Must make the
     * stream durable and publish it atomically: once it returns 0, a
     * crash at any later point leaves this image as the one in_open
     * loads; if it fails (-1), the previous image must still be the one
     * in_open loads, and QEMU reports the migration as failed.
     * Called at most once per handle.
     */
    int (*out_commit)(QemuTransportOut *t, char **errp);

    /*
     * out_abort: any thread, when the migration fails or is cancelled
     * before out_commit succeeded.  Discards the new image; the last
     * committed one stays loadable.  Only out_close follows.
     */
    void (*out_abort)(QemuTransportOut *t);

    /* out_close: main thread, last call on @t; frees it. */
    void (*out_close)(QemuTransportOut *t);

    /*
     * Incoming (migrate_incoming SCHEME:TARGET, -incoming SCHEME:TARGET).
     *
     * in_open: main thread, under the BQL.  Must verify the whole image
     * (structure and checksums) before returning, so that QEMU never
     * loads a byte of a torn or corrupt stream.  Returns NULL on failure;
     * QEMU keeps waiting for another migrate_incoming.
     */
    QemuTransportIn *(*in_open)(const char *target, char **errp);

    /*
     * in_readv: main thread (incoming coroutine).  Fills @iov from the
     * stream; returns the bytes read (short reads allowed), 0 at the end
     * of the stream, or -1.  Must not block on anything but local I/O.
     */
    ssize_t (*in_readv)(QemuTransportIn *t, const struct iovec *iov,
                        int iovcnt, char **errp);

    /* in_preadv (optional, may be NULL): like in_readv at @offset. */
    ssize_t (*in_preadv)(QemuTransportIn *t, const struct iovec *iov,
                         int iovcnt, off_t offset, char **errp);

    /* in_close: main thread, last call on @t; frees it. */
    void (*in_close)(QemuTransportIn *t);
} QemuTransportOps;

/*
 * Symbols a transport exports.
 *
 * qemu_transport_plugin_version: QEMU_TRANSPORT_PLUGIN_VERSION as the
 * transport saw it at build time; QEMU reads it before calling anything.
 *
 * qemu_transport_plugin_init: called once, on the main thread, right
 * after loading.  Returns the ops table (static storage, valid until the
 * process exits) or NULL with *errp set.
 */
#define QEMU_TRANSPORT_VERSION_SYMBOL "qemu_transport_plugin_version"
#define QEMU_TRANSPORT_INIT_SYMBOL "qemu_transport_plugin_init"

typedef const QemuTransportOps *
(*QemuTransportInitFunc)(const QemuTransportHostInfo *host, char **errp);

extern QEMU_TRANSPORT_EXPORT const uint32_t qemu_transport_plugin_version;

QEMU_TRANSPORT_EXPORT const QemuTransportOps *
qemu_transport_plugin_init(const QemuTransportHostInfo *host, char **errp);

#endif /* QEMU_TRANSPORT_PLUGIN_H */
