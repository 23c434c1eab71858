/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pmem-probe DIR: does libpmem take DIR for persistent memory on its own?
 * Maps a 2 MiB file there with pmem_map_file() and prints
 * "is_pmem=N DIR"; exits 0 only for is_pmem=1.  Refuses to run with
 * PMEM_IS_PMEM_FORCE set, which would make the answer meaningless.
 */
#include <libpmem.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    char path[4096];
    size_t len = 0;
    int is_pmem = 0;
    void *p;

    if (argc != 2) {
        fprintf(stderr, "usage: pmem-probe DIR\n");
        return 2;
    }
    if (getenv("PMEM_IS_PMEM_FORCE")) {
        fprintf(stderr, "pmem-probe: PMEM_IS_PMEM_FORCE is set; unset it\n");
        return 2;
    }
    snprintf(path, sizeof(path), "%s/.pmem-probe", argv[1]);
    p = pmem_map_file(path, 2 << 20, PMEM_FILE_CREATE, 0600, &len, &is_pmem);
    if (!p) {
        fprintf(stderr, "pmem-probe: %s: %s\n", path, pmem_errormsg());
        return 2;
    }
    /* A store and a flush through the path libpmem chose. */
    ((volatile char *)p)[0] = 1;
    if (is_pmem) {
        pmem_persist(p, 64);
    } else {
        pmem_msync(p, 64);
    }
    pmem_unmap(p, len);
    unlink(path);
    printf("is_pmem=%d %s\n", is_pmem, argv[1]);
    return is_pmem ? 0 : 1;
}
