/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * transport-test-fault.so: a seekable plain-file transport that fails,
 * shortens and counts its calls on demand, for the fault-injection tests
 * of QEMU's glue (test-fault-injection.c).  Built against the ABI header
 * alone, as any transport is.
 *
 * "test-fault:PATH[,OPTION...]" writes PATH.tmp (appends at the append
 * position, positional writes at their offsets), fsyncs it and renames
 * it to PATH at commit, and reads PATH.  Writes count from 1, out_writev
 * and out_pwritev together, per save.  Options:
 *
 *   fail-write=K         the K-th write of the save fails (-1)
 *   fail-thread-write=K  the K-th write of each thread fails: each multifd
 *                        channel writes from a thread of its own
 *   fail-delay=MS        a failing write takes MS milliseconds first, so
 *                        that the other threads run on meanwhile
 *   short-write=K        the K-th write writes half and returns that
 *   zero-write=K         the K-th write writes nothing and returns 0
 *   long-write=K         the K-th write returns one byte more than asked
 *   short-read=N         every read returns at most N bytes
 *   end-at=N             reads see a stream that ends at offset N
 *
 * Each handle appends a line to PATH.log when it closes:
 *   "out writes=W thread-writes=T committed=C aborted=A" (T: the most
 *   writes one thread made), or "in reads=R".
 */
#include "qemu/transport-plugin.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

typedef struct {
    char *path;
    long long fail_write, fail_thread_write, short_write, zero_write;
    long long long_write, short_read, end_at;   /* -1: off */
    long long fail_delay;
} Target;

struct QemuTransportOut {
    Target tg;
    int fd;
    unsigned gen;                 /* tells the threads' counters apart */
    atomic_llong writes;
    atomic_llong thread_max;
    off_t append;                 /* out_writev only: one thread */
    int committed, aborted;
};

struct QemuTransportIn {
    Target tg;
    int fd;
    off_t pos;                    /* in_readv only */
    atomic_llong reads;
};

static atomic_uint generation;
static _Thread_local unsigned thread_gen;
static _Thread_local long long thread_writes;

static char *msg(const Target *tg, const char *what, long long n)
{
    char *m = NULL;

    if (asprintf(&m, "test-fault: %s: %s %lld", tg->path, what, n) < 0) {
        return NULL;
    }
    return m;
}

static long long option(const char *opts, const char *name)
{
    size_t len = strlen(name);

    for (const char *o = opts; o && *o; o = strchr(o, ',')) {
        o += *o == ',';
        if (!strncmp(o, name, len) && o[len] == '=') {
            return atoll(o + len + 1);
        }
    }
    return -1;
}

/* PATH[,OPTION=N...] */
static void target_parse(Target *tg, const char *target)
{
    const char *opts = strchr(target, ',');

    tg->path = opts ? strndup(target, opts - target) : strdup(target);
    tg->fail_write = option(opts, "fail-write");
    tg->fail_thread_write = option(opts, "fail-thread-write");
    tg->short_write = option(opts, "short-write");
    tg->zero_write = option(opts, "zero-write");
    tg->long_write = option(opts, "long-write");
    tg->short_read = option(opts, "short-read");
    tg->end_at = option(opts, "end-at");
    tg->fail_delay = option(opts, "fail-delay");
}

static void log_line(const Target *tg, const char *line)
{
    char *log = NULL;
    FILE *f;

    if (asprintf(&log, "%s.log", tg->path) < 0) {
        return;
    }
    f = fopen(log, "a");
    if (f) {
        fprintf(f, "%s\n", line);
        fclose(f);
    }
    free(log);
}

static size_t iov_total(const struct iovec *iov, int iovcnt)
{
    size_t n = 0;

    for (int i = 0; i < iovcnt; i++) {
        n += iov[i].iov_len;
    }
    return n;
}

/* pwrite all of @len bytes of @iov at @off; -1 with errno on failure */
static int write_all(int fd, const struct iovec *iov, int iovcnt, off_t off,
                     size_t len)
{
    for (int i = 0; i < iovcnt && len; i++) {
        const char *p = iov[i].iov_base;
        size_t left = iov[i].iov_len < len ? iov[i].iov_len : len;

        len -= left;
        while (left) {
            ssize_t n = pwrite(fd, p, left, off);

            if (n < 0) {
                return -1;
            }
            p += n;
            left -= n;
            off += n;
        }
    }
    return 0;
}

/* One write, faults included; @off is where it goes. */
static ssize_t fault_write(QemuTransportOut *t, const struct iovec *iov,
                           int iovcnt, off_t off, char **errp)
{
    long long k = atomic_fetch_add(&t->writes, 1) + 1;
    size_t len = iov_total(iov, iovcnt);
    long long tk;

    if (thread_gen != t->gen) {
        thread_gen = t->gen;
        thread_writes = 0;
    }
    tk = ++thread_writes;
    for (long long m = atomic_load(&t->thread_max); tk > m &&
         !atomic_compare_exchange_weak(&t->thread_max, &m, tk);) {
    }
    if (k == t->tg.fail_write || tk == t->tg.fail_thread_write) {
        if (t->tg.fail_delay > 0) {
            usleep(t->tg.fail_delay * 1000);
        }
        *errp = msg(&t->tg, "injected failure of write", k);
        return -1;
    }
    if (k == t->tg.zero_write) {
        return 0;
    }
    if (k == t->tg.short_write && len > 1) {
        len /= 2;
    }
    if (write_all(t->fd, iov, iovcnt, off, len) < 0) {
        *errp = msg(&t->tg, strerror(errno), k);
        return -1;
    }
    return k == t->tg.long_write ? (ssize_t)len + 1 : (ssize_t)len;
}

static QemuTransportOut *out_open(const char *target,
                                  const QemuTransportVm *vm, char **errp)
{
    QemuTransportOut *t = calloc(1, sizeof(*t));
    char *tmp = NULL;

    (void)vm;
    target_parse(&t->tg, target);
    t->gen = atomic_fetch_add(&generation, 1) + 1;
    if (asprintf(&tmp, "%s.tmp", t->tg.path) < 0) {
        tmp = NULL;
    }
    t->fd = tmp ? open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)
                : -1;
    free(tmp);
    if (t->fd < 0) {
        *errp = msg(&t->tg, "cannot create the temporary, errno", errno);
        free(t->tg.path);
        free(t);
        return NULL;
    }
    return t;
}

static ssize_t out_writev(QemuTransportOut *t, const struct iovec *iov,
                          int iovcnt, char **errp)
{
    ssize_t n = fault_write(t, iov, iovcnt, t->append, errp);

    if (n > 0) {
        t->append += n;
    }
    return n;
}

static ssize_t out_pwritev(QemuTransportOut *t, const struct iovec *iov,
                           int iovcnt, int64_t offset, char **errp)
{
    return fault_write(t, iov, iovcnt, offset, errp);
}

static int out_commit(QemuTransportOut *t, const QemuTransportVm *vm,
                      char **errp)
{
    char *tmp = NULL;
    int ret = -1;

    (void)vm;
    if (asprintf(&tmp, "%s.tmp", t->tg.path) >= 0 && fsync(t->fd) == 0 &&
        rename(tmp, t->tg.path) == 0) {
        t->committed = 1;
        ret = 0;
    } else {
        *errp = msg(&t->tg, "commit failed, errno", errno);
    }
    free(tmp);
    return ret;
}

static void out_abort(QemuTransportOut *t)
{
    char *tmp = NULL;

    t->aborted = 1;
    if (asprintf(&tmp, "%s.tmp", t->tg.path) >= 0) {
        unlink(tmp);
        free(tmp);
    }
}

static void out_close(QemuTransportOut *t)
{
    char line[160];

    snprintf(line, sizeof(line),
             "out writes=%lld thread-writes=%lld committed=%d aborted=%d",
             (long long)atomic_load(&t->writes),
             (long long)atomic_load(&t->thread_max), t->committed,
             t->aborted);
    log_line(&t->tg, line);
    close(t->fd);
    free(t->tg.path);
    free(t);
}

static QemuTransportIn *in_open(const char *target,
                                const QemuTransportVm *vm, char **errp)
{
    QemuTransportIn *t = calloc(1, sizeof(*t));

    (void)vm;
    target_parse(&t->tg, target);
    t->fd = open(t->tg.path, O_RDONLY | O_CLOEXEC);
    if (t->fd < 0) {
        *errp = msg(&t->tg, "cannot open, errno", errno);
        free(t->tg.path);
        free(t);
        return NULL;
    }
    return t;
}

/* One read at @off, shortened and cut at end-at as asked. */
static ssize_t fault_read(QemuTransportIn *t, const struct iovec *iov,
                          int iovcnt, off_t off, char **errp)
{
    size_t len = iov_total(iov, iovcnt);
    size_t done = 0;

    atomic_fetch_add(&t->reads, 1);
    if (t->tg.short_read > 0 && len > (size_t)t->tg.short_read) {
        len = t->tg.short_read;
    }
    if (t->tg.end_at >= 0) {
        len = off >= t->tg.end_at ? 0 :
              len < (size_t)(t->tg.end_at - off) ? len :
              (size_t)(t->tg.end_at - off);
    }
    for (int i = 0; i < iovcnt && done < len; i++) {
        size_t want = iov[i].iov_len < len - done ? iov[i].iov_len
                                                  : len - done;
        ssize_t n = pread(t->fd, iov[i].iov_base, want, off + done);

        if (n < 0) {
            *errp = msg(&t->tg, strerror(errno), (long long)off);
            return -1;
        }
        done += n;
        if ((size_t)n < want) {
            break;
        }
    }
    return done;
}

static ssize_t in_readv(QemuTransportIn *t, const struct iovec *iov,
                        int iovcnt, char **errp)
{
    ssize_t n = fault_read(t, iov, iovcnt, t->pos, errp);

    if (n > 0) {
        t->pos += n;
    }
    return n;
}

static ssize_t in_preadv(QemuTransportIn *t, const struct iovec *iov,
                         int iovcnt, int64_t offset, char **errp)
{
    return fault_read(t, iov, iovcnt, offset, errp);
}

static void in_close(QemuTransportIn *t)
{
    char line[64];

    snprintf(line, sizeof(line), "in reads=%lld",
             (long long)atomic_load(&t->reads));
    log_line(&t->tg, line);
    close(t->fd);
    free(t->tg.path);
    free(t);
}

static const QemuTransportOps ops = {
    .scheme = "test-fault",
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

/*
 * Version 1 on purpose: it reads nothing version 2 added, and QEMU must
 * still load a transport built for version 1.
 */
QEMU_TRANSPORT_EXPORT const uint32_t qemu_transport_plugin_version = 1;

QEMU_TRANSPORT_EXPORT const QemuTransportOps *
qemu_transport_plugin_init(const QemuTransportHostInfo *host, char **errp)
{
    (void)host;
    (void)errp;
    return &ops;
}
