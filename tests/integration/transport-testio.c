/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * transport-test-io1.so: a plain-file transport for the tests of QEMU's
 * side of the ABI, with what the pmem backend never does on purpose.
 *
 * "test-io1:PATH[,OPTION...]" writes PATH.tmp and renames it to PATH at
 * commit, and reads PATH back.  It has no positional calls, so QEMU
 * gives it a stream channel (mapped-ram is refused).  Options:
 *
 *   fail-read-at=N   in_readv fails with a distinctive message once N
 *                    bytes have been read
 *   report=FILE      out_open, out_commit and in_open append what QEMU
 *                    told them about the VM to FILE, as a GKeyFile group
 *                    named after the call (see report_vm())
 *   warn=TEXT        out_commit prints TEXT through QEMU's warn callback
 *   fail-commit      out_commit fails (after the report and the warning)
 *
 * If $TEST_IO1_INIT_MARK is set, qemu_transport_plugin_init() creates that
 * file, so a test can tell whether QEMU initialised the transport.
 *
 * The scheme has a digit and a '-' on purpose: -incoming must take it
 * for a URI.
 */
#include "qemu/transport-plugin.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROBE_OFFSET 0x200000   /* where the tests put a word in guest RAM */

typedef struct {
    char *path;
    long long fail_at;      /* -1: never */
    char *report;
    char *warn;
    int fail_commit;
} Target;

struct QemuTransportOut {
    int fd;
    Target tg;
    char *tmp;
};

struct QemuTransportIn {
    int fd;
    Target tg;
    long long pos;
};

static const QemuTransportHostInfo *host;

static char *message(const char *fmt, const char *path, long long n)
{
    char *msg = NULL;

    if (asprintf(&msg, fmt, path, n) < 0) {
        return NULL;
    }
    return msg;
}

/* PATH[,fail-read-at=N][,report=FILE][,warn=TEXT][,fail-commit] */
static void target_parse(Target *tg, const char *target)
{
    char *copy = strdup(target);
    char *opt = strchr(copy, ',');

    tg->fail_at = -1;
    tg->report = tg->warn = NULL;
    tg->fail_commit = 0;
    if (opt) {
        *opt++ = 0;
    }
    tg->path = strdup(copy);
    while (opt && *opt) {
        char *next = strchr(opt, ',');

        if (next) {
            *next++ = 0;
        }
        if (!strncmp(opt, "fail-read-at=", 13)) {
            tg->fail_at = atoll(opt + 13);
        } else if (!strncmp(opt, "report=", 7)) {
            tg->report = strdup(opt + 7);
        } else if (!strncmp(opt, "warn=", 5)) {
            tg->warn = strdup(opt + 5);
        } else if (!strcmp(opt, "fail-commit")) {
            tg->fail_commit = 1;
        }
        opt = next;
    }
    free(copy);
}

static void target_free(Target *tg)
{
    free(tg->path);
    free(tg->report);
    free(tg->warn);
}

static void flag_names(FILE *f, uint32_t flags)
{
    const char *sep = "";

    if (flags & QEMU_TRANSPORT_RAM_SHARED) {
        fprintf(f, "%sshared", sep);
        sep = ";";
    }
    if (flags & QEMU_TRANSPORT_RAM_PMEM) {
        fprintf(f, "%spmem", sep);
        sep = ";";
    }
    if (flags & QEMU_TRANSPORT_RAM_PREALLOC) {
        fprintf(f, "%sprealloc", sep);
    }
    fputc('\n', f);
}

/*
 * [CALL]
 * machine=pc-q35-10.2
 * cpu=qemu64
 * nr_ram=1
 * ram0.name=...                 ram0.size=BYTES
 * ram0.fd_dev=N  ram0.fd_ino=N  (of fstat(fd); -1 for no fd)
 * ram0.fd_offset=BYTES          ram0.flags=shared;pmem;prealloc
 * ram0.probe=0xWORD             (the 32-bit word at host + PROBE_OFFSET)
 */
static void report_vm(const Target *tg, const char *call,
                      const QemuTransportVm *vm)
{
    FILE *f;

    if (!tg->report || !(f = fopen(tg->report, "a"))) {
        return;
    }
    fprintf(f, "[%s]\nmachine=%s\ncpu=%s\nnr_ram=%" PRIu32 "\n", call,
            vm->machine, vm->cpu, vm->nr_ram);
    for (uint32_t i = 0; i < vm->nr_ram; i++) {
        const QemuTransportRamBlock *rb = qemu_transport_vm_ram(vm, i);
        struct stat st;
        uint32_t probe = 0;

        if (rb->fd < 0 || fstat(rb->fd, &st) < 0) {
            st.st_dev = (dev_t)-1;
            st.st_ino = (ino_t)-1;
        }
        if (rb->size >= PROBE_OFFSET + sizeof(probe)) {
            memcpy(&probe, (const char *)rb->host + PROBE_OFFSET,
                   sizeof(probe));
        }
        fprintf(f, "ram%" PRIu32 ".name=%s\nram%" PRIu32 ".size=%" PRIu64
                "\nram%" PRIu32 ".fd_dev=%lld\nram%" PRIu32
                ".fd_ino=%lld\nram%" PRIu32 ".fd_offset=%" PRIu64
                "\nram%" PRIu32 ".probe=0x%08" PRIx32 "\nram%" PRIu32
                ".flags=", i, rb->name, i, rb->size, i,
                rb->fd < 0 ? -1LL : (long long)st.st_dev, i,
                rb->fd < 0 ? -1LL : (long long)st.st_ino, i, rb->fd_offset,
                i, probe, i);
        flag_names(f, rb->flags);
    }
    fclose(f);
}

static QemuTransportOut *out_open(const char *target,
                                  const QemuTransportVm *vm, char **errp)
{
    QemuTransportOut *t = calloc(1, sizeof(*t));

    target_parse(&t->tg, target);
    report_vm(&t->tg, "out_open", vm);
    if (asprintf(&t->tmp, "%s.tmp", t->tg.path) < 0) {
        abort();
    }
    t->fd = open(t->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (t->fd < 0) {
        *errp = message("test-io1: %s: cannot create (errno %lld)", t->tmp,
                        errno);
        free(t->tmp);
        target_free(&t->tg);
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

static int out_commit(QemuTransportOut *t, const QemuTransportVm *vm,
                      char **errp)
{
    report_vm(&t->tg, "out_commit", vm);
    if (t->tg.warn) {
        host->warn(t->tg.warn);
    }
    if (t->tg.fail_commit) {
        if (asprintf(errp, "test-io1: %s: injected commit failure",
                     t->tg.path) < 0) {
            *errp = NULL;
        }
        return -1;
    }
    if (fsync(t->fd) < 0 || rename(t->tmp, t->tg.path) < 0) {
        *errp = message("test-io1: %s: commit failed (errno %lld)",
                        t->tg.path, errno);
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
    target_free(&t->tg);
    free(t);
}

static QemuTransportIn *in_open(const char *target,
                                const QemuTransportVm *vm, char **errp)
{
    QemuTransportIn *t = calloc(1, sizeof(*t));

    target_parse(&t->tg, target);
    report_vm(&t->tg, "in_open", vm);
    t->fd = open(t->tg.path, O_RDONLY | O_CLOEXEC);
    if (t->fd < 0) {
        *errp = message("test-io1: %s: cannot open (errno %lld)", t->tg.path,
                        errno);
        target_free(&t->tg);
        free(t);
        return NULL;
    }
    return t;
}

static ssize_t in_readv(QemuTransportIn *t, const struct iovec *iov,
                        int iovcnt, char **errp)
{
    size_t len = iovcnt ? iov[0].iov_len : 0;
    long long fail_at = t->tg.fail_at;
    ssize_t n;

    if (fail_at >= 0 && t->pos >= fail_at) {
        *errp = message("test-io1: %s: injected read failure at byte %lld",
                        t->tg.path, t->pos);
        return -1;
    }
    if (fail_at >= 0 && (long long)len > fail_at - t->pos) {
        len = fail_at - t->pos;
    }
    n = read(t->fd, iov[0].iov_base, len);
    if (n < 0) {
        *errp = message("test-io1: %s: read failed (errno %lld)", t->tg.path,
                        errno);
        return -1;
    }
    t->pos += n;
    return n;
}

static void in_close(QemuTransportIn *t)
{
    close(t->fd);
    target_free(&t->tg);
    free(t);
}

static const QemuTransportOps ops = {
    .scheme = "test-io1",
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
qemu_transport_plugin_init(const QemuTransportHostInfo *info, char **errp)
{
    const char *mark = getenv("TEST_IO1_INIT_MARK");

    (void)errp;
    host = info;
    if (mark) {
        int fd = open(mark, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

        if (fd >= 0) {
            close(fd);
        }
    }
    return &ops;
}
