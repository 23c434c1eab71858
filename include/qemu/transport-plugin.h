/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QEMU migration transport plugin ABI
 *
 * An out-of-tree shared object that carries the migration stream for one
 * URI scheme ("pmem:PATH").  QEMU maps "SCHEME:REST" to
 * transport-SCHEME.so (.dll on Windows) in its transport directory
 * ($QEMU_TRANSPORT_PLUGIN_DIR, or "transport" in QEMU's module directory,
 * relative to QEMU's installation), loads it, checks the ABI version both
 * ways and then forwards the migration channel to the ops table below.
 * One object serves exactly one scheme, the one its file is named after;
 * QEMU refuses a table that names another.  A scheme is a lowercase
 * letter followed by lowercase letters, digits and '-'.
 *
 * This header is the whole contract: a transport includes it and nothing
 * from QEMU, and needs no QEMU symbols at run time.
 *
 * Versioning follows include/qemu/qemu-plugin.h: the transport exports the
 * version it was built against, QEMU refuses versions outside its
 * [MIN_VERSION, VERSION] window, and the transport sees QEMU's window in
 * QemuTransportHostInfo and may refuse it in turn.  A new version only
 * ever appends to the structures below; QemuTransportRamBlock comes in
 * an array, so QemuTransportVm states the size of its elements
 * (@ram_block_size, since version 2).  QEMU passes a transport of an
 * older version the elements of that version's layout.
 *
 * Version 2 added QemuTransportVm.ram_block_size; a version-1 transport
 * still loads.  Version 3 appended the VM's block nodes
 * (QemuTransportVm.disks, an array like the RAM blocks); transports of
 * versions 1 and 2 still load and never see them.
 */
#ifndef QEMU_TRANSPORT_PLUGIN_H
#define QEMU_TRANSPORT_PLUGIN_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#define QEMU_TRANSPORT_PLUGIN_VERSION 3
#define QEMU_TRANSPORT_PLUGIN_MIN_VERSION 1

#define QEMU_TRANSPORT_EXPORT __attribute__((visibility("default")))

/**
 * struct QemuTransportHostInfo - what QEMU tells a transport about itself
 * @min_version: oldest ABI version QEMU still speaks
 * @cur_version: newest ABI version QEMU speaks
 * @qemu_version: QEMU's version, e.g. "10.2.2", never NULL
 * @warn: prints @msg (one line, no newline) as a QEMU warning, on the
 *     monitor that runs the command or on stderr; callable from any
 *     thread, never NULL
 *
 * Passed to qemu_transport_plugin_init(); valid for the life of the
 * process.
 */
typedef struct QemuTransportHostInfo {
    uint32_t min_version;
    uint32_t cur_version;
    const char *qemu_version;
    void (*warn)(const char *msg);
} QemuTransportHostInfo;

/* QemuTransportRamBlock.flags */
#define QEMU_TRANSPORT_RAM_SHARED   (1u << 0)   /* mapped MAP_SHARED */
#define QEMU_TRANSPORT_RAM_PMEM     (1u << 1)   /* pmem=on (MAP_SYNC if DAX) */
#define QEMU_TRANSPORT_RAM_PREALLOC (1u << 2)   /* prealloc=on: populated */

/**
 * struct QemuTransportRamBlock - guest RAM that the stream does not carry
 * @name: the RAM block's id, e.g. "pc.ram" or "/objects/ram0"
 * @host: where QEMU maps the block in this process
 * @size: bytes of the block in use
 * @fd: descriptor of the file backing the block, or -1 (anonymous
 *     memory); valid during the call only, dup() it to keep it
 * @fd_offset: offset of the block in that file
 * @flags: QEMU_TRANSPORT_RAM_*
 *
 * With the x-ignore-shared capability, QEMU leaves shared file-backed RAM
 * where it is instead of copying it into the stream.  A transport that
 * stores images can bind an image to that RAM: record what it was at
 * @out_commit and refuse, at @in_open, RAM that is not what the image
 * was saved with.
 */
typedef struct QemuTransportRamBlock {
    const char *name;
    const void *host;
    uint64_t size;
    int fd;
    uint64_t fd_offset;
    uint32_t flags;
} QemuTransportRamBlock;

/* QemuTransportDisk.flags */
#define QEMU_TRANSPORT_DISK_READ_ONLY (1u << 0)  /* opened read-only */
#define QEMU_TRANSPORT_DISK_PROTOCOL  (1u << 1)  /* a protocol node */

/**
 * struct QemuTransportDisk - a block node of the VM (since version 3)
 * @node_name: the node's name: the user's, or one QEMU generated
 *     ("#block123", which differs from one process to the next)
 * @filename: what the node opens: the file of a "file" or "host_device"
 *     node, the address of another protocol's ("nbd://..."), the
 *     filename of a format node's file child
 * @driver: the block driver, e.g. "qcow2", "raw", "file", "nbd"
 * @size: the node's length in bytes, 0 if unknown
 * @flags: QEMU_TRANSPORT_DISK_*
 *
 * Every node of QEMU's block graph, from -drive, -blockdev or hot-added:
 * the format nodes and the protocol nodes under them, each file of a
 * backing chain.  The guest's disks are not in the stream; a transport
 * that stores images can bind an image to them as to the RAM: record
 * the files at @out_commit (QEMU has flushed and inactivated them) and
 * refuse, at @in_open, files that changed since.
 */
typedef struct QemuTransportDisk {
    const char *node_name;
    const char *filename;
    const char *driver;
    uint64_t size;
    uint32_t flags;
} QemuTransportDisk;

/**
 * struct QemuTransportVm - the VM a stream belongs to
 * @ram: the RAM blocks the stream does not carry, @nr_ram of them, in
 *     QEMU's RAM block order (none without x-ignore-shared; then @ram
 *     may be NULL); step through it by @ram_block_size, e.g. with
 *     qemu_transport_vm_ram()
 * @nr_ram: number of elements in @ram
 * @machine: the machine type as resolved, e.g. "pc-q35-10.2" for
 *     "-machine q35", never NULL
 * @cpu: the CPU model of the first vCPU, e.g. "qemu64", never NULL
 * @ram_block_size: the size of an element of @ram, at least
 *     sizeof(QemuTransportRamBlock) as version 2 has it (since version 2:
 *     a transport reads it only if QemuTransportHostInfo.cur_version is
 *     at least 2)
 * @disks: the block nodes of the VM, @nr_disks of them (may be NULL
 *     when there are none); step through it by @disk_size, e.g. with
 *     qemu_transport_vm_disk() (since version 3, as the next two)
 * @nr_disks: number of elements in @disks
 * @disk_size: the size of an element of @disks, at least
 *     sizeof(QemuTransportDisk) as version 3 has it
 *
 * Valid during the call it is passed to.  The transport can read the
 * rest of the configuration, e.g. the command line, itself.
 */
typedef struct QemuTransportVm {
    const QemuTransportRamBlock *ram;
    uint32_t nr_ram;
    const char *machine;
    const char *cpu;
    uint32_t ram_block_size;
    const QemuTransportDisk *disks;
    uint32_t nr_disks;
    uint32_t disk_size;
} QemuTransportVm;

/**
 * qemu_transport_vm_ram() - an element of QemuTransportVm.ram
 * @vm: the VM, from a QEMU of version 2 or later
 * @i: the element's index, below @vm->nr_ram
 *
 * Returns: the @i-th RAM block of @vm, found by @vm->ram_block_size.
 */
static inline const QemuTransportRamBlock *
qemu_transport_vm_ram(const QemuTransportVm *vm, uint32_t i)
{
    return (const QemuTransportRamBlock *)
        ((const char *)vm->ram + (size_t)i * vm->ram_block_size);
}

/**
 * qemu_transport_vm_disk() - an element of QemuTransportVm.disks
 * @vm: the VM, from a QEMU of version 3 or later
 * @i: the element's index, below @vm->nr_disks
 *
 * Returns: the @i-th block node of @vm, found by @vm->disk_size.
 */
static inline const QemuTransportDisk *
qemu_transport_vm_disk(const QemuTransportVm *vm, uint32_t i)
{
    return (const QemuTransportDisk *)
        ((const char *)vm->disks + (size_t)i * vm->disk_size);
}

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
 * Counts: a write (@out_writev, @out_pwritev) writes all of @iov and
 * returns its size, or fails with -1.  A read (@in_readv, @in_preadv)
 * returns 1 to the size of @iov bytes, 0 only at the end of the stream,
 * or -1; QEMU calls again for the rest of a short read.  Any other value
 * (a short write, 0 from a write, more than asked, a negative value but
 * -1) fails the migration or the load with a message naming the call.
 *
 * Threads: apart from @out_pwritev and @in_preadv (see there), QEMU never
 * calls into one handle from two threads at once: it joins the migration
 * thread and the multifd threads before the main thread closes the channel.
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
     * @scheme: the URI scheme served, without the colon; QEMU uses the
     * table only if this equals the scheme in the object's file name.
     */
    const char *scheme;

    /**
     * @out_open: start a new outgoing stream (migrate SCHEME:TARGET).
     *
     * @target: the URI without "SCHEME:", never NULL
     * @vm: the VM to be saved (still running: its RAM blocks are final,
     *     their contents are not), so that work that does not need it
     *     stopped stays out of the pause
     * @errp: where to store the error message
     *
     * Prepares a new image that does not disturb the last committed one.
     *
     * Context: main thread, BQL held, inside the migrate command, after
     * QEMU's own checks passed and the migration moved to "setup".  QEMU
     * refuses the migration modes cpr-transfer and cpr-exec on a
     * transport before it gets here.
     *
     * Returns: a new handle, or NULL with *@errp set.  QEMU then fails the
     * command with the message, query-migrate reports "failed" with it as
     * error-desc, and the VM keeps running.
     */
    QemuTransportOut *(*out_open)(const char *target,
                                  const QemuTransportVm *vm, char **errp);

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
     * Returns: the total size of @iov, or -1 with *@errp set (see Counts
     * above).  On -1 the migration fails with the message as
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
     * Writes @iov at @offset without moving the append position (the
     * end of what @out_writev wrote); the stream length becomes at least
     * @offset + size, and a gap reads as zeros.  A transport that
     * provides both @out_pwritev and @in_preadv gets a seekable channel,
     * so that the mapped-ram capability (with or without multifd
     * channels) works through it; one that lacks either gets a stream
     * channel, and QEMU refuses mapped-ram.
     *
     * QEMU appends with @out_writev for as long as its own position in
     * the stream is the append position.  Once it has moved it (mapped-ram
     * leaves room for the RAM pages and writes on after it), it writes
     * everything at its position with @out_pwritev, not only RAM pages,
     * so the stream may end past the append position.  Reading mirrors
     * this: @in_readv from the start, @in_preadv once QEMU moved away.
     *
     * Context: the migration thread and, with multifd, every multifd
     * send thread: several calls on one handle may run at once (on
     * disjoint ranges), and concurrently with @out_writev.  BQL not
     * held.  All of them have returned before @out_commit.
     *
     * Returns: the size of @iov, or -1 with *@errp set (as @out_writev;
     * see Counts above).
     */
    ssize_t (*out_pwritev)(QemuTransportOut *t, const struct iovec *iov,
                           int iovcnt, int64_t offset, char **errp);

    /**
     * @out_commit: make the stream durable and publish it atomically.
     *
     * @t: the handle from @out_open
     * @vm: the VM being saved; the RAM it lists (left in place) does not
     *     change during the call
     * @errp: where to store the error message
     *
     * Called at most once per handle, after QEMU has flushed the last
     * byte through @out_writev or @out_pwritev and before it reports the
     * migration "completed", and only if every write succeeded and the
     * migration is still under way (not failed, not cancelled); otherwise
     * @out_abort follows instead.  The VM is stopped, except in a
     * background snapshot (capability background-snapshot), where it has
     * run on since the start of the save while QEMU kept the stream's
     * copy of RAM as it was then; QEMU refuses x-ignore-shared with a
     * background snapshot on a transport, so @vm lists no RAM then.
     * Once it returns 0, a
     * crash at any later point leaves this image as the one @in_open
     * loads; if it fails, or is cut off by QEMU's exit or a host crash,
     * the previous image must still be the one @in_open loads.
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
    int (*out_commit)(QemuTransportOut *t, const QemuTransportVm *vm,
                      char **errp);

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
     * @vm: the VM about to be loaded: its RAM is mapped, and the guest
     *     has not run
     * @errp: where to store the error message
     *
     * Must verify the whole image (structure and checksums) before
     * returning, so that QEMU never loads a byte of a torn or corrupt
     * stream, nor a stream whose @vm does not match (a transport that
     * binds images to their RAM).
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
    QemuTransportIn *(*in_open)(const char *target,
                                const QemuTransportVm *vm, char **errp);

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
     * Returns: the number of bytes read, 0 at the end of the stream, or
     * -1 with *@errp set (see Counts above).  On -1 the load fails
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
     * Context: the incoming coroutine (as @in_readv) and, with multifd,
     * every multifd receive thread: several calls on one handle may run
     * at once, and concurrently with @in_readv.  BQL not held in the
     * multifd threads.  A read that reaches the end of the stream is
     * short.  QEMU reads at an offset only what it wrote there: if the
     * stream ends first, the load fails.
     *
     * Returns: like @in_readv.
     */
    ssize_t (*in_preadv)(QemuTransportIn *t, const struct iovec *iov,
                         int iovcnt, int64_t offset, char **errp);

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
 * then QEMU unloads the object, and a later use loads it and calls this
 * again.  QEMU also unloads it, without any other call, if the table
 * names another scheme or lacks a mandatory call (every call but
 * @out_pwritev and @in_preadv).
 *
 * Returns: the ops table (static storage, valid until the process exits),
 * or NULL with *@errp set.  A failure at start-up is a warning; a
 * failure for a command fails that command with the message, and the
 * migration state stays as it was.
 */
QEMU_TRANSPORT_EXPORT const QemuTransportOps *
qemu_transport_plugin_init(const QemuTransportHostInfo *host, char **errp);

#endif /* QEMU_TRANSPORT_PLUGIN_H */
