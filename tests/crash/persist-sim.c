/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Implements backend/persist.h on top of the model in persist-sim.h. */
#include "persist.h"
#include "persist-sim.h"
#include "image-file.h"

#include <xxhash.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

struct CprPersist {
    CprImage *img;
    int fd;
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
    /* The real file follows, so that the writer's fstat and hole checks
     * see its size and data (written zeros, unlike fallocated ones). */
    err = ftruncate(p->fd, (off_t)len) < 0 ? errno : 0;
    for (uint64_t off = cpr_sim.size; !err && off < len; off += 4096) {
        static const uint8_t zeros[4096];

        err = pwrite(p->fd, zeros, sizeof(zeros), (off_t)off) < 0 ? errno : 0;
    }
    if (err) {
        cpr_image_error_errno(p->img, errp, err, "cannot grow");
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
    /* Written back as data: a fallocated range would look like a hole. */
    if (pread(fd, cpr_sim.vol, len, 0) != (ssize_t)len ||
        pwrite(fd, cpr_sim.vol, len, 0) != (ssize_t)len) {
        return -1;
    }
    memcpy(cpr_sim.dur, cpr_sim.vol, len);
    return 0;
}

CprPersist *cpr_persist_map(CprImage *img, uint64_t min_len, char **errp)
{
    CprPersist *p = calloc(1, sizeof(*p));
    struct stat st;

    assert(!cpr_sim.mapped);
    if (!p) {
        abort();
    }
    p->img = img;
    p->fd = img->fd;
    if (fstat(p->fd, &st) < 0) {
        cpr_image_error_errno(img, errp, errno, "cannot stat");
    } else if (cpr_sim.size == 0 && st.st_size > 0 &&
               load(p->fd, (uint64_t)st.st_size) < 0) {
        cpr_image_error(img, errp, "cannot load into the model");
    } else if (grow_to(p, min_len, errp) == 0) {
        cpr_sim.mapped = true;
        return p;
    }
    free(p);
    return NULL;
}

int cpr_persist_grow(CprPersist *p, uint64_t len, uint64_t need,
                     char **errp)
{
    need = (need + 4095) / 4096 * 4096;
    return grow_to(p, len > need ? len : need, errp);
}

/* The real file is never sparse here (grow_to allocates all of it). */
int cpr_persist_allocate(CprPersist *p, uint64_t off, uint64_t len,
                         char **errp)
{
    (void)p, (void)off, (void)len, (void)errp;
    return 0;
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
uint64_t cpr_persist_populate(CprPersist *p, uint64_t off, uint64_t len)
{
    uint64_t size = cpr_persist_size(p);

    return off < size ? (len < size - off ? len : size - off) : 0;
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

static void inside(uint64_t off, uint64_t len)
{
    assert(off <= cpr_sim.size && len <= cpr_sim.size - off);
}

int cpr_persist_store(CprPersist *p, uint64_t off, const void *src,
                      size_t len, char **errp)
{
    (void)p, (void)errp;
    inside(off, len);
    memcpy(cpr_sim.vol + off, src, len);
    mark(off, len);
    point(CPR_SIM_AFTER_STORE);
    return 0;
}

int cpr_persist_zero(CprPersist *p, uint64_t off, uint64_t len, char **errp)
{
    (void)p, (void)errp;
    inside(off, len);
    memset(cpr_sim.vol + off, 0, len);
    mark(off, len);
    point(CPR_SIM_AFTER_STORE);
    return 0;
}

int cpr_persist_move(CprPersist *p, uint64_t dst_off, uint64_t src_off,
                     uint64_t len, char **errp)
{
    (void)p, (void)errp;
    inside(dst_off, len);
    inside(src_off, len);
    memmove(cpr_sim.vol + dst_off, cpr_sim.vol + src_off, len);
    mark(dst_off, len);
    point(CPR_SIM_AFTER_STORE);
    return 0;
}

int cpr_persist_hash(CprPersist *p, uint64_t off, uint64_t len,
                     uint64_t *xxh3, char **errp)
{
    (void)p, (void)errp;
    inside(off, len);
    *xxh3 = XXH3_64bits(cpr_sim.vol + off, len);
    return 0;
}

int cpr_persist_is_zero(CprPersist *p, uint64_t off, uint64_t len,
                        bool *zero, char **errp)
{
    (void)p, (void)errp;
    inside(off, len);
    *zero = true;
    for (uint64_t i = 0; i < len; i++) {
        if (cpr_sim.vol[off + i]) {
            *zero = false;
            break;
        }
    }
    return 0;
}

static bool failing(void)
{
    unsigned n = ++cpr_sim.persist_calls;

    return cpr_sim.fail_at &&
           (n == cpr_sim.fail_at || (cpr_sim.fail_sticky && n > cpr_sim.fail_at));
}

/* Which dirty units a flush of [off, off + len) makes durable. */
static bool promotes(uint64_t u, uint64_t off, uint64_t len, bool failed,
                     size_t nth)
{
    size_t unit = cpr_sim.unit;
    /* pmem_drain: every flushed line; msync: the pages of the range. */
    bool hit = cpr_sim.pmem ||
               (len && u * unit < off + len && (u + 1) * unit > off);

    if (!hit || !failed) {
        return hit;
    }
    switch (cpr_sim.fail_promote) {
    case CPR_SIM_PROMOTE_NONE: return false;
    case CPR_SIM_PROMOTE_ALL: return true;
    default: return nth % 2 == 0;
    }
}

int cpr_persist_range(CprPersist *p, uint64_t off, uint64_t len,
                      char **errp)
{
    size_t i, kept = 0, unit = cpr_sim.unit;
    bool failed = failing();

    inside(off, len);
    point(CPR_SIM_BEFORE_PERSIST);
    for (i = 0; i < cpr_sim.npending; i++) {
        uint64_t u = cpr_sim.pending[i];

        if (promotes(u, off, len, failed, i)) {
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
    if (failed) {
        point(CPR_SIM_PERSIST_FAILED);
        cpr_image_error(p->img, errp, "cannot flush to media: %s",
                        "simulated I/O error");
        return -1;
    }
    point(CPR_SIM_AFTER_PERSIST);
    return 0;
}

/* The msync model is a page cache: first touches go by pwrite there
 * (persist.h), the pmem model keeps its stores. */
bool cpr_persist_writes_file(const CprPersist *p)
{
    (void)p;
    return !cpr_sim.pmem;
}

/* New bytes are zeros either way (the model has no holes). */
int cpr_persist_extend(CprPersist *p, uint64_t len, char **errp)
{
    return grow_to(p, (len + 4095) / 4096 * 4096, errp);
}

int cpr_persist_write(CprPersist *p, uint64_t off, const void *src,
                      size_t len, char **errp)
{
    return cpr_persist_store(p, off, src, len, errp);
}

int cpr_persist_writev(CprPersist *p, uint64_t off, const struct iovec *iov,
                       int iovcnt, char **errp)
{
    for (int i = 0; i < iovcnt; i++) {
        if (cpr_persist_store(p, off, iov[i].iov_base, iov[i].iov_len,
                              errp) < 0) {
            return -1;
        }
        off += iov[i].iov_len;
    }
    return 0;
}

int cpr_persist_fill(CprPersist *p, uint64_t off, uint64_t len, char **errp)
{
    (void)p, (void)errp;
    inside(off, len);
    return 0;
}

/* The file gets shorter: what lay past the end, durable or not, is gone. */
int cpr_persist_trim(CprPersist *p, uint64_t len, char **errp)
{
    size_t kept = 0;

    if (len >= cpr_sim.size) {
        return 0;
    }
    assert(len % 4096 == 0);
    if (ftruncate(p->fd, (off_t)len) < 0) {
        cpr_image_error_errno(p->img, errp, errno, "cannot shrink");
        return -1;
    }
    for (size_t i = 0; i < cpr_sim.npending; i++) {
        uint64_t u = cpr_sim.pending[i];

        if (u * cpr_sim.unit < len) {
            cpr_sim.pending[kept++] = u;
        } else {
            cpr_sim.dirty[u] = 0;
        }
    }
    cpr_sim.npending = kept;
    cpr_sim.size = len;
    cpr_sim.epoch++;
    point(CPR_SIM_AFTER_GROW);
    return 0;
}

void cpr_persist_stats(CprPersistStats *s)
{
    memset(s, 0, sizeof(*s));
}
