/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "persist.h"
#include "errmsg.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <libpmem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

struct CprPersist {
    int fd;
    char *path;
    uint8_t *base;
    size_t len;
    int is_pmem;        /* the one place that knows the media kind */
    bool tmpfs;
};

static int map(CprPersist *p, char **errp)
{
    char proc[64];
    size_t len = 0;
    int is_pmem = 0;
    void *base;

    /*
     * libpmem maps by path; going through our fd's /proc link makes sure
     * it maps the very file we opened and locked, even if PATH was
     * replaced in the meantime.
     */
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", p->fd);
    base = pmem_map_file(proc, 0, 0, 0, &len, &is_pmem);
    if (!base) {
        cpr_error(errp, p->path, "cannot map: %s", pmem_errormsg());
        return -1;
    }
    if (p->base && is_pmem != p->is_pmem) {
        pmem_unmap(base, len);
        cpr_error(errp, p->path, "media kind changed while remapping");
        return -1;
    }
    p->base = base;
    p->len = len;
    p->is_pmem = is_pmem;
    return 0;
}

static int allocate(CprPersist *p, uint64_t from, uint64_t to, char **errp)
{
    int err;

    if (to > (uint64_t)INT64_MAX) {
        cpr_error(errp, p->path, "image would exceed the maximum file size");
        return -1;
    }
    /* Allocate blocks now: a store into a hole that cannot be filled
     * would be a SIGBUS instead of an error message. */
    err = posix_fallocate(p->fd, (off_t)from, (off_t)(to - from));
    if (err) {
        cpr_error_errno(errp, p->path, err, "cannot grow to %llu bytes",
                        (unsigned long long)to);
        return -1;
    }
    return 0;
}

CprPersist *cpr_persist_map(int fd, const char *path, uint64_t min_len,
                            char **errp)
{
    CprPersist *p = calloc(1, sizeof(*p));
    struct statfs sfs;
    struct stat st;

    if (!p || !(p->path = strdup(path))) {
        free(p);
        cpr_error(errp, path, "out of memory");
        return NULL;
    }
    p->fd = fd;
    p->tmpfs = fstatfs(fd, &sfs) == 0 && sfs.f_type == TMPFS_MAGIC;
    if (fstat(fd, &st) < 0) {
        cpr_error_errno(errp, path, errno, "cannot stat");
    } else if ((uint64_t)st.st_size >= min_len ||
               allocate(p, (uint64_t)st.st_size, min_len, errp) == 0) {
        if (map(p, errp) == 0) {
            return p;
        }
    }
    free(p->path);
    free(p);
    return NULL;
}

static int unmap(CprPersist *p, char **errp)
{
    int ret = 0;

    if (p->base && pmem_unmap(p->base, p->len) < 0) {
        cpr_error_errno(errp, p->path, errno, "cannot unmap");
        ret = -1;
    }
    p->base = NULL;
    p->len = 0;
    return ret;
}

int cpr_persist_grow(CprPersist *p, uint64_t len, char **errp)
{
    uint64_t old = p->len;

    if (len <= old) {
        return 0;
    }
    if (allocate(p, old, len, errp) < 0 || unmap(p, errp) < 0) {
        return -1;
    }
    return map(p, errp);
}

void cpr_persist_prefault(CprPersist *p, uint64_t off, uint64_t len)
{
    uint64_t start = off & ~(uint64_t)4095;   /* madvise wants a page */

    assert(off <= p->len);
    len = len < p->len - off ? len : p->len - off;
#ifdef MADV_POPULATE_WRITE
    /*
     * tmpfs does no dirty tracking, so a read fault maps a shared page
     * writable, and maps its neighbours with it: a third of the cost of
     * write faults.  Elsewhere the first store would still fault.  An old
     * kernel (EINVAL) only loses the speed-up.
     */
    if (len) {
        (void)madvise(p->base + start, off - start + len,
                      p->tmpfs ? MADV_POPULATE_READ : MADV_POPULATE_WRITE);
    }
#endif
}

void cpr_persist_unmap(CprPersist *p)
{
    if (!p) {
        return;
    }
    unmap(p, NULL);
    free(p->path);
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

const uint8_t *cpr_persist_view(const CprPersist *p, uint64_t off)
{
    assert(off <= p->len);
    return p->base + off;
}

void cpr_persist_write(CprPersist *p, uint64_t off, const void *src,
                       size_t len)
{
    assert(off <= p->len && len <= p->len - off);
    if (p->is_pmem) {
        pmem_memcpy_nodrain(p->base + off, src, len);
    } else {
        memcpy(p->base + off, src, len);
    }
}

void cpr_persist_zero(CprPersist *p, uint64_t off, uint64_t len)
{
    assert(off <= p->len && len <= p->len - off);
    if (p->is_pmem) {
        pmem_memset_nodrain(p->base + off, 0, len);
    } else {
        memset(p->base + off, 0, len);
    }
}

int cpr_persist_range(CprPersist *p, uint64_t off, uint64_t len,
                      char **errp)
{
    assert(off <= p->len && len <= p->len - off);
    if (p->is_pmem) {
        /* The nodrain stores already flushed their lines. */
        pmem_drain();
        return 0;
    }
    if (len && pmem_msync(p->base + off, len) < 0) {
        cpr_error_errno(errp, p->path, errno, "cannot flush to media");
        return -1;
    }
    return 0;
}
