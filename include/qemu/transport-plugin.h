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

/**
 * struct QemuTransportHostInfo - what QEMU tells a transport about itself
 * @min_version: oldest ABI version QEMU still speaks
 * @cur_version: newest ABI version QEMU speaks
 * @qemu_version: QEMU's version, e.g. "10.0.13", never NULL
 *
 * Passed to qemu_transport_plugin_init(); valid for the life of the
 * process.
 */
typedef struct QemuTransportHostInfo {
    uint32_t min_version;
    uint32_t cur_version;
    const char *qemu_version;
} QemuTransportHostInfo;

/* Opaque per-channel state, owned by the transport. */
typedef struct QemuTransportOut QemuTransportOut;
typedef struct QemuTransportIn QemuTransportIn;

/**
 * struct QemuTransportOps - the calls QEMU makes into a transport
 *
 * One outgoing handle (QemuTransportOut) serves one migrate command, one
 * incoming handle (QemuTransportIn) one migrate_incoming; a process may
 * have had both (a restored VM saves again later).
 *
 * Errors: every call that can fail takes @errp, which is never NULL.  On
 * failure the transport stores a malloc()ed, NUL-terminated,
 * human-readable message there (QEMU frees it with free()) and returns
 * the failure value, exactly -1 for the calls that return ssize_t or int
 * (other negative values are not errors to QEMU's channel code).  A
 * message should name the target and the reason ("/mnt/pmem/vm.cpr: no
 * space left on device"); QEMU shows it in the command's error or in
 * query-migrate's error-desc, as each call says below.
 *
 * Threads: QEMU never calls into one handle from two threads at once: it
 * joins the migration thread before the main thread closes the channel.
 * The calls on one handle can still come from different threads, and
 * some with and some without the Big QEMU Lock (BQL) held; a transport
 * must not rely on either.  A transport with state shared between
 * handles protects it itself.
 *
 * Lifetime: QEMU does not always finish what it started.  When QEMU
 * exits during a migration (quit, SIGTERM, a fatal error, SIGKILL), the
 * cleanup that would call @out_abort and @out_close, or @in_close, never
 * runs, and a call in progress on the migration thread (@out_writev,
 * even @out_commit) may be cut off by the exit.  A transport must
 * therefore be safe if neither @out_abort nor @out_close is ever called:
 * an image whose @out_commit did not return 0 is simply never
 * published, and the next @out_open and @in_open must cope with what it
 * left behind.
 */
typedef struct QemuTransportOps {
    /**
     * @schemes: NULL-terminated list of the URI schemes served, without
     * the colon.  QEMU only uses the table for a scheme listed here.
     */
    const char *const *schemes;

    /**
     * @out_open: start a new outgoing stream (migrate SCHEME:TARGET).
     *
     * @target: the URI without "SCHEME:", never NULL
     * @errp: where to store the error message
     *
     * Prepares a new image that does not disturb the last committed one.
     *
     * Context: main thread, BQL held, inside the migrate command, after
     * QEMU's own checks passed and the migration moved to "setup".
     *
     * Returns: a new handle, or NULL with *@errp set.  QEMU then fails the
     * command with the message, query-migrate reports "failed" with it as
     * error-desc, and the VM keeps running.
     */
    QemuTransportOut *(*out_open)(const char *target, char **errp);

    /**
     * @out_writev: append to the stream.
     *
     * @t: the handle from @out_open
     * @iov: the data, @iovcnt elements
     * @iovcnt: number of elements in @iov, at least 1
     * @errp: where to store the error message
     *
     * The channel is blocking: write all of @iov before returning.
     *
     * Context: usually the migration thread (the background-snapshot
     * thread for a background snapshot), sometimes with the BQL held
     * (while QEMU saves device state), mostly without.  Also the main
     * thread, BQL held: when migration_cleanup() closes the channel it
     * flushes the bytes QEMU still buffers, after the migration thread
     * has ended and before @out_abort or @out_close.  A cancel does not
     * interrupt a call in progress, so a call must end in bounded time
     * (local I/O only).
     *
     * Returns: the total size of @iov, or -1 with *@errp set.  QEMU would
     * write the rest of a short count again, but 0 makes it call again
     * forever.  On -1 the migration fails with the message as
     * query-migrate's error-desc; @out_abort and @out_close follow.
     */
    ssize_t (*out_writev)(QemuTransportOut *t, const struct iovec *iov,
                          int iovcnt, char **errp);

    /**
     * @out_pwritev: write at a stream offset (optional, may be NULL).
     *
     * @t: the handle from @out_open
     * @iov: the data, @iovcnt elements
     * @iovcnt: number of elements in @iov
     * @offset: stream offset of the first byte
     * @errp: where to store the error message
     *
     * Writes @iov at @offset without moving the append position; the
     * stream length becomes at least @offset + size.  Meant for a seekable
     * channel (mapped-ram) together with @in_preadv.
     *
     * Context: not called by this QEMU: its plugin channel is not
     * seekable, and mapped-ram and multifd refuse plugin transports.
     *
     * Returns: the number of bytes written, or -1 with *@errp set.
     */
    ssize_t (*out_pwritev)(QemuTransportOut *t, const struct iovec *iov,
                           int iovcnt, off_t offset, char **errp);

    /**
     * @out_commit: make the stream durable and publish it atomically.
     *
     * @t: the handle from @out_open
     * @errp: where to store the error message
     *
     * Called at most once per handle, after QEMU has flushed the last
     * byte through @out_writev and before it reports the migration
     * "completed".  Once it returns 0, a crash at any later point leaves
     * this image as the one @in_open loads; if it fails, or is cut off by
     * QEMU's exit or a host crash, the previous image must still be the
     * one @in_open loads.
     *
     * Context: the migration thread (the background-snapshot thread for a
     * background snapshot), BQL not held.  A migrate_cancel cannot revoke
     * a commit in progress: it does not interrupt the call, and if the
     * call returns 0 QEMU reports "completed", not "cancelled".
     *
     * Returns: 0, or -1 with *@errp set.  On -1 the migration fails with
     * the message as query-migrate's error-desc, the VM keeps running,
     * and @out_abort and @out_close follow.
     */
    int (*out_commit)(QemuTransportOut *t, char **errp);

    /**
     * @out_abort: discard the new image.
     *
     * @t: the handle from @out_open
     *
     * Called when the channel is closed before @out_commit succeeded
     * (the migration failed or was cancelled); the last committed image
     * stays loadable.  Only @out_close follows.  Not called at all when
     * QEMU exits first (see Lifetime above).
     *
     * Context: the thread that closes the channel: normally the main
     * thread with the BQL held (migration_cleanup()), but also the
     * migration thread without it, when QEMU releases a return path that
     * shares the channel.  This QEMU refuses the capabilities that open a
     * return path on a plugin transport; do not rely on that.
     */
    void (*out_abort)(QemuTransportOut *t);

    /**
     * @out_close: release an outgoing handle.
     *
     * @t: the handle from @out_open; free it
     *
     * The last call on @t: after a successful @out_commit, or after
     * @out_abort.  Not called when QEMU exits first (see Lifetime above).
     *
     * Context: the same thread as @out_abort: normally the main thread
     * with the BQL held, possibly the migration thread without it.
     */
    void (*out_close)(QemuTransportOut *t);

    /**
     * @in_open: open the last committed image for an incoming migration
     * (migrate_incoming SCHEME:TARGET, -incoming SCHEME:TARGET).
     *
     * @target: the URI without "SCHEME:", never NULL
     * @errp: where to store the error message
     *
     * Must verify the whole image (structure and checksums) before
     * returning, so that QEMU never loads a byte of a torn or corrupt
     * stream.
     *
     * Context: main thread, BQL held, inside migrate_incoming (or while
     * QEMU starts, for -incoming on the command line), after QEMU's own
     * checks passed.
     *
     * Returns: a new handle, or NULL with *@errp set.  QEMU then fails the
     * command with the message and keeps waiting for another
     * migrate_incoming; for -incoming on the command line it prints the
     * message and exits.
     */
    QemuTransportIn *(*in_open)(const char *target, char **errp);

    /**
     * @in_readv: read the stream.
     *
     * @t: the handle from @in_open
     * @iov: where to put the data, @iovcnt elements
     * @iovcnt: number of elements in @iov, at least 1
     * @errp: where to store the error message
     *
     * Context: main thread, BQL held, in the incoming migration's
     * coroutine: the monitor and the main loop wait while it runs, so it
     * must not block on anything but local I/O.
     *
     * Returns: the number of bytes read (short reads are fine), 0 at the
     * end of the stream, or -1 with *@errp set.  On -1 the load fails
     * and query-migrate's error-desc on the destination says "load of
     * migration failed: " followed by the message; with exit-on-error
     * (the default) QEMU prints that and exits after @in_close.
     */
    ssize_t (*in_readv)(QemuTransportIn *t, const struct iovec *iov,
                        int iovcnt, char **errp);

    /**
     * @in_preadv: read at a stream offset (optional, may be NULL).
     *
     * @t: the handle from @in_open
     * @iov: where to put the data, @iovcnt elements
     * @iovcnt: number of elements in @iov
     * @offset: stream offset of the first byte
     * @errp: where to store the error message
     *
     * Context: not called by this QEMU (see @out_pwritev).
     *
     * Returns: like @in_readv.
     */
    ssize_t (*in_preadv)(QemuTransportIn *t, const struct iovec *iov,
                         int iovcnt, off_t offset, char **errp);

    /**
     * @in_close: release an incoming handle.
     *
     * @t: the handle from @in_open; free it
     *
     * The last call on @t, when the load has completed or failed.  Not
     * called when QEMU exits before (quit while waiting or loading).
     *
     * Context: main thread, BQL held.
     */
    void (*in_close)(QemuTransportIn *t);
} QemuTransportOps;

/*
 * Symbols a transport exports.
 *
 * qemu_transport_plugin_version: QEMU_TRANSPORT_PLUGIN_VERSION as the
 * transport saw it at build time; QEMU reads it before calling anything.
 */
#define QEMU_TRANSPORT_VERSION_SYMBOL "qemu_transport_plugin_version"
#define QEMU_TRANSPORT_INIT_SYMBOL "qemu_transport_plugin_init"

typedef const QemuTransportOps *
(*QemuTransportInitFunc)(const QemuTransportHostInfo *host, char **errp);

extern QEMU_TRANSPORT_EXPORT const uint32_t qemu_transport_plugin_version;

/**
 * qemu_transport_plugin_init() - initialise a transport after loading it
 * @host: QEMU's ABI window and version
 * @errp: where to store the error message
 *
 * QEMU loads a transport the first time a scheme it serves is needed:
 * at start-up if the scheme is named in the migration property
 * x-preload-transports (before the guest runs, and before QEMU gives up
 * privileges with -run-with), otherwise when a migrate or
 * migrate_incoming command (or -incoming) first names the scheme,
 * before the migration state changes.  Nothing else loads it: a QEMU
 * that never names the scheme never runs this function.
 *
 * Context: main thread, BQL held; once per process, unless it fails:
 * then QEMU dlclose()s the object, and a later use loads it and calls
 * this again.  QEMU also dlclose()s it, without any other call, if the
 * table does not list the scheme or lacks a mandatory call.
 *
 * Returns: the ops table (static storage, valid until the process exits),
 * or NULL with *@errp set.  A failure at start-up is a warning; a
 * failure for a command fails that command with the message, and the
 * migration state stays as it was.
 */
QEMU_TRANSPORT_EXPORT const QemuTransportOps *
qemu_transport_plugin_init(const QemuTransportHostInfo *host, char **errp);

#endif /* QEMU_TRANSPORT_PLUGIN_H */
