/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "persist.h"
#include "fault-guard.h"
#include "format.h"
#include "hash.h"
#include "image-file.h"

#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <libpmem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/param.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/*
 * Messages name the image (cpr_image_error); those of a failed call are
 * formatted here, with strerror(), so that an error of the mapping does
 * not travel back to the image file to be worded.
 */

#define PAGE 4096u

/* What every mapping of this process did (cpr_persist_stats). */
static struct {
    _Atomic uint64_t written, extended, filled, trimmed;
} stats;

struct CprPersist {
    CprImage *img;      /* its descriptor, messages and media class */
    int fd;             /* img->fd */
    char proc[CPR_PROC_FD_LEN]; /* its /proc link: what libpmem maps */
    uint8_t *base;
    size_t len;         /* the file's size as the writer knows it */
    size_t map_len;     /* what is mapped (a trim keeps the mapping) */
    int is_pmem;        /* libpmem's: whether stores flush with the CPU */
    bool tmpfs;         /* of the image: populate with read faults */
    bool writes_file;   /* first touches by pwrite (cpr_persist_extend) */
    /* Chosen once per mapping, as libpmem2 does, not per store. */
    void *(*copy)(void *dst, const void *src, size_t len);
    void *(*fill)(void *dst, int c, size_t len);
    int (*persist)(CprPersist *p, uint64_t off, uint64_t len);
};

static int persist_drain(CprPersist *p, uint64_t off, uint64_t len)
{
    (void)p, (void)off, (void)len;
    pmem_drain();       /* the nodrain stores already flushed their lines */
    return 0;
}

static int persist_msync(CprPersist *p, uint64_t off, uint64_t len)
{
    return len ? pmem_msync(p->base + off, len) : 0;
}

/* The error for a file another process cut below @want bytes. */
static void truncated_error(CprPersist *p, uint64_t want, char **errp)
{
    struct stat st;

    cpr_image_error(p->img, errp, "was truncated by another process (to "
                    "%lld bytes) while the save made it %llu bytes long",
                    fstat(p->fd, &st) == 0 ? (long long)st.st_size : -1ll,
                    (unsigned long long)want);
}

static bool inside(const CprPersist *p, uint64_t off, uint64_t len)
{
    return off <= p->len && len <= p->len - off;
}

/* @a, with its op, on this mapping under the fault guard. */
static int guarded(CprPersist *p, void (*op)(CprAccess *), CprAccess *a,
                   char **errp)
{
    a->op = op;
    a->copy = p->copy;
    a->ctx = p;
    if (cpr_fault_guard_access(p->base, p->len, a) < 0) {
        cpr_image_error(p->img, errp, "lost blocks while being accessed "
                        "(truncated or punched by another process, or out "
                        "of space)");
        return -1;
    }
    return 0;
}

static int outside(CprPersist *p, char **errp)
{
    cpr_image_error(p->img, errp, "access beyond the mapped file (internal "
                    "error)");
    return -1;
}

/*
 * map -- map the whole file, which must be at least @want bytes long:
 * another process may cut it between its growth and this mapping, and
 * a store past a short mapping would be a crash, not an error.
 */
static int map(CprPersist *p, uint64_t want, char **errp)
{
    size_t len = 0;
    int is_pmem = 0;
    struct stat st;
    void *base;

    base = pmem_map_file(p->proc, 0, 0, 0, &len, &is_pmem);
    if (!base) {
        if (fstat(p->fd, &st) == 0 && (uint64_t)st.st_size < want) {
            truncated_error(p, want, errp);
        } else {
            cpr_image_error(p->img, errp, "cannot map: %s",
                            pmem_errormsg());
        }
        return -1;
    }
    if ((uint64_t)len < want) {
        pmem_unmap(base, len);
        truncated_error(p, want, errp);
        return -1;
    }
    if (p->base && is_pmem != p->is_pmem) {
        pmem_unmap(base, len);
        cpr_image_error(p->img, errp, "media kind changed while remapping");
        return -1;
    }
    p->base = base;
    p->len = len;
    p->map_len = len;
    p->is_pmem = is_pmem;
    p->copy = is_pmem ? pmem_memcpy_nodrain : memcpy;
    p->fill = is_pmem ? pmem_memset_nodrain : memset;
    p->persist = is_pmem ? persist_drain : persist_msync;
    return 0;
}

/*
 * Extend the file from @from to @to bytes with real blocks: a store into
 * a hole that cannot be filled would be a SIGBUS instead of an error.
 * On failure the size goes back to @from, so the blocks a partial
 * allocation got (ext4 keeps them) do not stay behind, filling the disk.
 */
static int allocate_tail(CprPersist *p, uint64_t from, uint64_t to,
                         char **errp)
{
    int err;

    if (to > (uint64_t)INT64_MAX) {
        cpr_image_error(p->img, errp, "image would exceed the maximum file "
                        "size");
        return -1;
    }
    err = posix_fallocate(p->fd, (off_t)from, (off_t)(to - from));
    if (err) {
        if (ftruncate(p->fd, (off_t)from) < 0) {
            /* The error below is the one that matters. */
        }
        cpr_image_error(p->img, errp, "cannot grow to %llu bytes: %s",
                        (unsigned long long)to, strerror(err));
        return -1;
    }
    return 0;
}

CprPersist *cpr_persist_map(CprImage *img, uint64_t min_len, char **errp)
{
    CprPersist *p = calloc(1, sizeof(*p));
    struct stat st;

    if (!p) {
        cpr_image_error(img, errp, "out of memory");
        return NULL;
    }
    p->img = img;
    p->fd = img->fd;
    /*
     * libpmem maps by path; going through our fd's /proc link makes sure
     * it maps the very file we opened and locked, even if PATH was
     * replaced in the meantime.
     */
    cpr_proc_fd(p->proc, p->fd);
    p->tmpfs = cpr_image_is_tmpfs(img);
    /*
     * Where the mapping is a view of the page cache (tmpfs, a disk
     * filesystem), pwrite() puts first-touched bytes there at about twice
     * the speed of stores through a fresh mapping, which fault and zero
     * each page first (bench/README.md); a MAP_SYNC DAX mapping is the
     * medium itself and keeps its stores.  Chosen once, as libpmem2
     * chooses its flush functions.
     */
    p->writes_file = p->tmpfs ||
                     cpr_image_media(img, NULL) == CPR_MEDIA_PAGE_CACHE;
    if (cpr_image_stat(img, &st, errp) == 0 &&
        ((uint64_t)st.st_size >= min_len ||
         allocate_tail(p, (uint64_t)st.st_size, min_len, errp) == 0) &&
        map(p, min_len, errp) == 0) {
        return p;
    }
    free(p);
    return NULL;
}

static int unmap(CprPersist *p, char **errp)
{
    int ret = 0;

    if (p->base && pmem_unmap(p->base, p->map_len) < 0) {
        cpr_image_error(p->img, errp, "cannot unmap: %s", strerror(errno));
        ret = -1;
    }
    p->base = NULL;
    p->len = 0;
    p->map_len = 0;
    return ret;
}

/* Before a growth: a file shorter than the mapping was cut by someone. */
static int still_whole(CprPersist *p, char **errp)
{
    struct stat st;

    if (cpr_image_stat(p->img, &st, errp) < 0) {
        return -1;
    }
    if ((uint64_t)st.st_size < p->len) {
        cpr_image_error(p->img, errp, "was truncated by another process "
                        "during the save");
        return -1;
    }
    return 0;
}

int cpr_persist_grow(CprPersist *p, uint64_t len, uint64_t need,
                     char **errp)
{
    uint64_t old = p->len, exact = (need + PAGE - 1) / PAGE * PAGE;

    len = len > exact ? len : exact;
    if (len <= old) {
        return 0;
    }
    if (still_whole(p, errp) < 0) {
        return -1;
    }
    /* Growth by doubling saves remaps; a tight disk still gets the save. */
    if (allocate_tail(p, old, len, exact < len ? NULL : errp) < 0) {
        if (exact == len || allocate_tail(p, old, exact, errp) < 0) {
            return -1;
        }
        len = exact;
    }
    if (unmap(p, errp) < 0) {
        return -1;
    }
    return map(p, len, errp);
}

bool cpr_persist_writes_file(const CprPersist *p)
{
    return p->writes_file;
}

int cpr_persist_extend(CprPersist *p, uint64_t len, char **errp)
{
    uint64_t old = p->len;

    if (len <= old) {
        return 0;
    }
    if (len > (uint64_t)INT64_MAX) {
        cpr_image_error(p->img, errp, "image would exceed the maximum file "
                        "size");
        return -1;
    }
    if (still_whole(p, errp) < 0) {
        return -1;
    }
    if (ftruncate(p->fd, (off_t)len) < 0) {
        cpr_image_error(p->img, errp, "cannot grow to %llu bytes: %s",
                        (unsigned long long)len, strerror(errno));
        return -1;
    }
    atomic_fetch_add(&stats.extended, len - old);
    if (unmap(p, errp) < 0) {
        return -1;
    }
    return map(p, len, errp);
}

int cpr_persist_write(CprPersist *p, uint64_t off, const void *src,
                      size_t len, char **errp)
{
    const uint8_t *at = src;
    size_t left = len;

    if (!inside(p, off, len)) {
        return outside(p, errp);
    }
    while (left) {
        ssize_t n = pwrite(p->fd, at, left, (off_t)off);

        if (n <= 0) {
            cpr_image_error(p->img, errp, "cannot write %zu bytes at offset "
                            "%llu: %s", left, (unsigned long long)off,
                            n < 0 ? strerror(errno) : "no progress");
            return -1;
        }
        at += n;
        off += (uint64_t)n;
        left -= (size_t)n;
    }
    atomic_fetch_add(&stats.written, len);
    return 0;
}

int cpr_persist_writev(CprPersist *p, uint64_t off, const struct iovec *iov,
                       int iovcnt, char **errp)
{
    uint64_t len = 0;
    ssize_t n;

    for (int i = 0; i < iovcnt; i++) {
        len += iov[i].iov_len;
    }
    if (!inside(p, off, len)) {
        return outside(p, errp);
    }
    n = pwritev(p->fd, iov, iovcnt, (off_t)off);
    if (n == (ssize_t)len) {
        atomic_fetch_add(&stats.written, len);
        return 0;
    }
    if (n < 0 && errno != EINTR) {
        cpr_image_error(p->img, errp, "cannot write %llu bytes at offset "
                        "%llu: %s", (unsigned long long)len,
                        (unsigned long long)off, strerror(errno));
        return -1;
    }
    /* Short (or interrupted): the rest element by element. */
    n = n < 0 ? 0 : n;
    atomic_fetch_add(&stats.written, (uint64_t)n);
    for (int i = 0; i < iovcnt; i++) {
        size_t skip = MIN((size_t)n, iov[i].iov_len);

        n -= (ssize_t)skip;
        if (skip < iov[i].iov_len &&
            cpr_persist_write(p, off + skip,
                              (const uint8_t *)iov[i].iov_base + skip,
                              iov[i].iov_len - skip, errp) < 0) {
            return -1;
        }
        off += iov[i].iov_len;
    }
    return 0;
}

int cpr_persist_fill(CprPersist *p, uint64_t off, uint64_t len, char **errp)
{
    int err;

    if (!inside(p, off, len)) {
        return outside(p, errp);
    }
    err = len ? posix_fallocate(p->fd, (off_t)off, (off_t)len) : 0;
    if (err) {
        cpr_image_error(p->img, errp, "cannot allocate %llu bytes at "
                        "offset %llu: %s", (unsigned long long)len,
                        (unsigned long long)off, strerror(err));
        return -1;
    }
    atomic_fetch_add(&stats.filled, len);
    return 0;
}

int cpr_persist_trim(CprPersist *p, uint64_t len, char **errp)
{
    if (len >= p->len) {
        return 0;
    }
    if (ftruncate(p->fd, (off_t)len) < 0) {
        cpr_image_error(p->img, errp, "cannot shrink to %llu bytes: %s",
                        (unsigned long long)len, strerror(errno));
        return -1;
    }
    atomic_fetch_add(&stats.trimmed, p->len - len);
    /* The mapping stays (unmapped whole at the end); nothing past the
     * new end is accessed: inside() now refuses it. */
    p->len = len;
    return 0;
}

void cpr_persist_stats(CprPersistStats *s)
{
    s->written = atomic_load(&stats.written);
    s->extended = atomic_load(&stats.extended);
    s->filled = atomic_load(&stats.filled);
    s->trimmed = atomic_load(&stats.trimmed);
}

int cpr_persist_allocate(CprPersist *p, uint64_t off, uint64_t len,
                         char **errp)
{
    uint64_t end = off + len;
    struct stat st;

    /* Filling a hole must not grow back a file another process cut. */
    if (fstat(p->fd, &st) == 0 && (uint64_t)st.st_size < p->len) {
        truncated_error(p, p->len, errp);
        return -1;
    }
    while (off < end) {
        int64_t hole = cpr_image_find_hole(p->fd, off, end - off);
        off_t data;
        int err;

        if (hole < 0) {
            cpr_image_error(p->img, errp, "cannot look for holes: %s",
                            strerror(errno));
            return -1;
        }
        if ((uint64_t)hole >= end) {
            break;
        }
        data = lseek(p->fd, (off_t)hole, SEEK_DATA);
        off = data < 0 || (uint64_t)data > end ? end : (uint64_t)data;
        if (off == (uint64_t)hole) {
            continue;   /* filled meanwhile (a populator's fault) */
        }
        err = posix_fallocate(p->fd, (off_t)hole, (off_t)(off - hole));
        if (err) {
            cpr_image_error(p->img, errp, "cannot allocate %llu bytes at "
                            "offset %llu: %s",
                            (unsigned long long)(off - (uint64_t)hole),
                            (unsigned long long)hole, strerror(err));
            return -1;
        }
    }
    return 0;
}

void cpr_persist_unmap(CprPersist *p)
{
    if (!p) {
        return;
    }
    unmap(p, NULL);
    free(p);
}

uint64_t cpr_persist_size(const CprPersist *p)
{
    return p->len;
}

bool cpr_persist_is_pmem(const CprPersist *p)
{
    return p->is_pmem;
}

uint64_t cpr_persist_populate(CprPersist *p, uint64_t off, uint64_t len)
{
    uint64_t start = off & ~(uint64_t)(PAGE - 1);   /* madvise wants a page */

    if (off >= p->len) {
        return 0;
    }
    len = len < p->len - off ? len : p->len - off;
#ifdef MADV_POPULATE_WRITE
    /*
     * tmpfs does no dirty tracking, so a read fault maps a shared page
     * writable, and maps its neighbours with it: a third of the cost of
     * write faults.  Elsewhere the first store would still fault.  An old
     * kernel (EINVAL) only loses the speed-up; a page that is gone
     * (EFAULT, where an access would be a SIGBUS) is the stores' problem.
     */
    if (len) {
        (void)madvise(p->base + start, off - start + len,
                      p->tmpfs ? MADV_POPULATE_READ : MADV_POPULATE_WRITE);
    }
#endif
    return len;
}

/* The accesses of this mapping's own (cpr_access_copy() copies). */
static void do_zero(CprAccess *a)
{
    const CprPersist *p = a->ctx;

    p->fill(a->dst, 0, a->len);
}

static void do_hash(CprAccess *a)
{
    a->result = XXH3_64bits(a->src, a->len);
}

static void do_is_zero(CprAccess *a)
{
    a->result = cpr_all_zero(a->src, a->len);
}

int cpr_persist_store(CprPersist *p, uint64_t off, const void *src,
                      size_t len, char **errp)
{
    CprAccess a = { .dst = p->base + off, .src = src, .len = len };

    if (!inside(p, off, len)) {
        return outside(p, errp);
    }
    return guarded(p, cpr_access_copy, &a, errp);
}

int cpr_persist_zero(CprPersist *p, uint64_t off, uint64_t len, char **errp)
{
    CprAccess a = { .dst = p->base + off, .len = len };

    if (!inside(p, off, len)) {
        return outside(p, errp);
    }
    return guarded(p, do_zero, &a, errp);
}

int cpr_persist_move(CprPersist *p, uint64_t dst_off, uint64_t src_off,
                     uint64_t len, char **errp)
{
    CprAccess a = { .dst = p->base + dst_off, .src = p->base + src_off,
                    .len = len };

    if (!inside(p, dst_off, len) || !inside(p, src_off, len)) {
        return outside(p, errp);
    }
    return guarded(p, cpr_access_copy, &a, errp);
}

int cpr_persist_hash(CprPersist *p, uint64_t off, uint64_t len,
                     uint64_t *xxh3, char **errp)
{
    CprAccess a = { .src = p->base + off, .len = len };

    if (!inside(p, off, len)) {
        return outside(p, errp);
    }
    if (guarded(p, do_hash, &a, errp) < 0) {
        return -1;
    }
    *xxh3 = a.result;
    return 0;
}

int cpr_persist_is_zero(CprPersist *p, uint64_t off, uint64_t len,
                        bool *zero, char **errp)
{
    CprAccess a = { .src = p->base + off, .len = len };

    if (!inside(p, off, len)) {
        return outside(p, errp);
    }
    if (guarded(p, do_is_zero, &a, errp) < 0) {
        return -1;
    }
    *zero = a.result != 0;
    return 0;
}

int cpr_persist_range(CprPersist *p, uint64_t off, uint64_t len,
                      char **errp)
{
    if (!inside(p, off, len)) {
        return outside(p, errp);
    }
    if (p->persist(p, off, len) < 0) {
        cpr_image_error(p->img, errp, "cannot flush to media: %s",
                        strerror(errno));
        return -1;
    }
    return 0;
}
