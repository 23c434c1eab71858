/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "provision.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define STEP (2ull << 20)

struct CprProvision {
    pthread_t thread;
    char *path;
    uint64_t off, len;
    atomic_bool stop;
};

static void *run(void *opaque)
{
    CprProvision *pv = opaque;
    int fd = open(pv->path, O_RDWR | O_CLOEXEC);
    uint8_t *map;

    if (fd < 0) {
        return NULL;
    }
    /* Not through persist.c: nothing here stores or needs to persist. */
    if (posix_fallocate(fd, (off_t)pv->off, (off_t)pv->len) == 0 &&
        (map = mmap(NULL, pv->len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                    (off_t)pv->off)) != MAP_FAILED) {
#ifdef MADV_POPULATE_WRITE
        for (uint64_t done = 0; done < pv->len && !atomic_load(&pv->stop);
             done += STEP) {
            uint64_t n = pv->len - done < STEP ? pv->len - done : STEP;

            if (madvise(map + done, n, MADV_POPULATE_WRITE) < 0) {
                break;
            }
        }
#endif
        munmap(map, pv->len);
    }
    close(fd);
    return NULL;
}

CprProvision *cpr_provision_start(const char *path, uint64_t off,
                                  uint64_t len)
{
    CprProvision *pv;

    if (!len || off % 4096 || !(pv = calloc(1, sizeof(*pv)))) {
        return NULL;
    }
    pv->path = strdup(path);
    pv->off = off;
    pv->len = len;
    atomic_init(&pv->stop, false);
    if (!pv->path || pthread_create(&pv->thread, NULL, run, pv) != 0) {
        free(pv->path);
        free(pv);
        return NULL;
    }
    return pv;
}

void cpr_provision_stop(CprProvision *pv)
{
    if (!pv) {
        return;
    }
    atomic_store(&pv->stop, true);
    pthread_join(pv->thread, NULL);
    free(pv->path);
    free(pv);
}
