/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "prefault.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Small enough to stop within a millisecond, large enough to be cheap. */
#define STEP (2ull << 20)

struct CprPrefault {
    pthread_t thread;
    CprPersist *p;
    char *path;                 /* set: the thread maps (and grows) it */
    uint64_t end;
    _Atomic uint64_t done;      /* populated below this offset */
    _Atomic uint64_t skip;      /* the writer populated below this one */
    atomic_bool stop;
};

static void populate(CprPrefault *pf)
{
    uint64_t off = atomic_load(&pf->done);

    while (off < pf->end && !atomic_load(&pf->stop)) {
        uint64_t skip = atomic_load(&pf->skip);
        uint64_t len;

        off = off > skip ? off : skip;
        len = pf->end - off < STEP ? pf->end - off : STEP;
        if (off < pf->end) {
            cpr_persist_prefault(pf->p, off, len);
            off += len;
        }
        atomic_store(&pf->done, off);
    }
}

static void *run(void *opaque)
{
    CprPrefault *pf = opaque;
    char *err = NULL;
    int fd;

    if (!pf->path) {
        populate(pf);
        return NULL;
    }
    /* Off QEMU's main thread: growing a file can take a while. */
    fd = open(pf->path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        return NULL;
    }
    pf->p = cpr_persist_map(fd, pf->path, pf->end, &err);
    if (pf->p) {
        populate(pf);
        cpr_persist_unmap(pf->p);
    }
    free(err);
    close(fd);
    return NULL;
}

static CprPrefault *start(CprPersist *p, const char *path, uint64_t off,
                          uint64_t end)
{
    CprPrefault *pf;

    if (off >= end || !(pf = calloc(1, sizeof(*pf)))) {
        return NULL;
    }
    pf->p = p;
    pf->end = end;
    atomic_init(&pf->done, off);
    atomic_init(&pf->skip, off);
    atomic_init(&pf->stop, false);
    if ((path && !(pf->path = strdup(path))) ||
        pthread_create(&pf->thread, NULL, run, pf) != 0) {
        free(pf->path);
        free(pf);
        return NULL;
    }
    return pf;
}

CprPrefault *cpr_prefault_start(CprPersist *p, uint64_t off, uint64_t end)
{
    return start(p, NULL, off, end);
}

CprPrefault *cpr_prefault_start_file(const char *path, uint64_t off,
                                     uint64_t end)
{
    return start(NULL, path, off, end);
}

uint64_t cpr_prefault_done(const CprPrefault *pf)
{
    return pf ? atomic_load(&((CprPrefault *)pf)->done) : 0;
}

void cpr_prefault_skip(CprPrefault *pf, uint64_t off)
{
    if (pf) {
        atomic_store(&pf->skip, off);
    }
}

void cpr_prefault_stop(CprPrefault *pf)
{
    if (!pf) {
        return;
    }
    atomic_store(&pf->stop, true);
    pthread_join(pf->thread, NULL);
    free(pf->path);
    free(pf);
}
