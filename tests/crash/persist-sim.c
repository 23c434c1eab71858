/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Implements backend/persist.h on top of the model in persist-sim.h. */
#include "persist.h"
#include "persist-sim.h"
#include "errmsg.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct CprPersist {
    int fd;
    char *path;
};

CprSim cpr_sim;

static void *xrealloc(void *ptr, size_t len)
{
    void *p = realloc(ptr, len ? len : 1);

    if (!p) {
        abort();
    }
    return p;
}

void cpr_sim_free(void)
{
    free(cpr_sim.vol);
    free(cpr_sim.dur);
    free(cpr_sim.dirty);
    free(cpr_sim.pending);
}

void cpr_sim_reset(bool pmem)
{
    void (*hook)(CprSimPoint, void *) = cpr_sim.hook;
    void *opaque = cpr_sim.opaque;

    cpr_sim_free();
    memset(&cpr_sim, 0, sizeof(cpr_sim));
    cpr_sim.pmem = pmem;
    cpr_sim.unit = pmem ? 8 : 4096;
    cpr_sim.hook = hook;
    cpr_sim.opaque = opaque;
}

static void point(CprSimPoint pt)
{
    if (cpr_sim.hook) {
        cpr_sim.hook(pt, cpr_sim.opaque);
    }
}

/* Both views get longer; new bytes are zero and durable (preallocated). */
static void extend(uint64_t len)
{
    uint64_t old = cpr_sim.size;

    assert(len % 4096 == 0 && len > old);
    cpr_sim.vol = xrealloc(cpr_sim.vol, len);
    cpr_sim.dur = xrealloc(cpr_sim.dur, len);
    cpr_sim.dirty = xrealloc(cpr_sim.dirty, len / cpr_sim.unit);
    memset(cpr_sim.vol + old, 0, len - old);
    memset(cpr_sim.dur + old, 0, len - old);
    memset(cpr_sim.dirty + old / cpr_sim.unit, 0, (len - old) / cpr_sim.unit);
    cpr_sim.size = len;
    cpr_sim.epoch++;
}

static int grow_to(CprPersist *p, uint64_t len, char **errp)
{
    int err;

    if (len <= cpr_sim.size) {
        return 0;
    }
    /* The real file follows, so the writer's pread/fstat see its size. */
    err = posix_fallocate(p->fd, 0, (off_t)len);
    if (err) {
        cpr_error_errno(errp, p->path, err, "cannot grow");
        return -1;
    }
    extend(len);
    point(CPR_SIM_AFTER_GROW);
    return 0;
}

/* An existing file the model has not seen yet counts as fully durable. */
static int load(int fd, uint64_t len)
{
    extend(len);
    if (pread(fd, cpr_sim.vol, len, 0) != (ssize_t)len) {
        return -1;
    }
    memcpy(cpr_sim.dur, cpr_sim.vol, len);
    return 0;
}

CprPersist *cpr_persist_map(int fd, const char *path, uint64_t min_len,
                            char **errp)
{
    CprPersist *p = calloc(1, sizeof(*p));
    struct stat st;

    assert(!cpr_sim.mapped);
    if (!p || !(p->path = strdup(path))) {
        abort();
    }
    p->fd = fd;
    if (fstat(fd, &st) < 0) {
        cpr_error_errno(errp, path, errno, "cannot stat");
    } else if (cpr_sim.size == 0 && st.st_size > 0 &&
               load(fd, (uint64_t)st.st_size) < 0) {
        cpr_error(errp, path, "cannot load into the model");
    } else if (grow_to(p, min_len, errp) == 0) {
        cpr_sim.mapped = true;
        return p;
    }
    free(p->path);
    free(p);
    return NULL;
}

int cpr_persist_grow(CprPersist *p, uint64_t len, char **errp)
{
    return grow_to(p, len, errp);
}

/* What a later open sees is the page cache: the volatile view. */
void cpr_persist_unmap(CprPersist *p)
{
    if (!p) {
        return;
    }
    if (pwrite(p->fd, cpr_sim.vol, cpr_sim.size, 0) != (ssize_t)cpr_sim.size) {
        abort();
    }
    cpr_sim.mapped = false;
    free(p->path);
    free(p);
}

uint64_t cpr_persist_size(const CprPersist *p)
{
    (void)p;
    return cpr_sim.size;
}

bool cpr_persist_is_pmem(const CprPersist *p)
{
    (void)p;
    return cpr_sim.pmem;
}

/* Page tables only: nothing becomes durable or changes. */
void cpr_persist_prefault(CprPersist *p, uint64_t off, uint64_t len)
{
    (void)p;
    assert(off <= cpr_sim.size);
    (void)len;
}

const uint8_t *cpr_persist_view(const CprPersist *p, uint64_t off)
{
    (void)p;
    assert(off <= cpr_sim.size);
    return cpr_sim.vol + off;
}

static void mark(uint64_t off, uint64_t len)
{
    uint64_t u;

    if (!len) {
        return;
    }
    for (u = off / cpr_sim.unit; u <= (off + len - 1) / cpr_sim.unit; u++) {
        if (cpr_sim.dirty[u]) {
            continue;
        }
        if (cpr_sim.npending == cpr_sim.cap) {
            cpr_sim.cap = cpr_sim.cap ? cpr_sim.cap * 2 : 1024;
            cpr_sim.pending = xrealloc(cpr_sim.pending,
                                       cpr_sim.cap * sizeof(uint64_t));
        }
        cpr_sim.dirty[u] = 1;
        cpr_sim.pending[cpr_sim.npending++] = u;
    }
}

void cpr_persist_write(CprPersist *p, uint64_t off, const void *src,
                       size_t len)
{
    (void)p;
    assert(off <= cpr_sim.size && len <= cpr_sim.size - off);
    memcpy(cpr_sim.vol + off, src, len);
    mark(off, len);
    point(CPR_SIM_AFTER_STORE);
}

void cpr_persist_zero(CprPersist *p, uint64_t off, uint64_t len)
{
    (void)p;
    assert(off <= cpr_sim.size && len <= cpr_sim.size - off);
    memset(cpr_sim.vol + off, 0, len);
    mark(off, len);
    point(CPR_SIM_AFTER_STORE);
}

int cpr_persist_range(CprPersist *p, uint64_t off, uint64_t len,
                      char **errp)
{
    size_t i, kept = 0, unit = cpr_sim.unit;

    (void)p;
    (void)errp;
    assert(off <= cpr_sim.size && len <= cpr_sim.size - off);
    point(CPR_SIM_BEFORE_PERSIST);
    for (i = 0; i < cpr_sim.npending; i++) {
        uint64_t u = cpr_sim.pending[i];
        /* pmem_drain: every flushed line; msync: the pages of the range. */
        bool hit = cpr_sim.pmem ||
                   (len && u * unit < off + len && (u + 1) * unit > off);

        if (hit) {
            memcpy(cpr_sim.dur + u * unit, cpr_sim.vol + u * unit, unit);
            cpr_sim.dirty[u] = 0;
        } else {
            cpr_sim.pending[kept++] = u;
        }
    }
    if (kept != cpr_sim.npending) {
        cpr_sim.npending = kept;
        cpr_sim.epoch++;
    }
    point(CPR_SIM_AFTER_PERSIST);
    return 0;
}
