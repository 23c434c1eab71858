/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cpr-fingerprint: what binding an image to its RAM (BINDING.md) costs.
 *
 *   cpr-fingerprint [--quick] [DIR]
 *
 * For a RAM block of 1 GiB (allocated and written, as a running guest's)
 * and of 64 GiB (a sparse file: only what is touched gets pages; this
 * machine has 24 GiB, like many that run 64 GiB guests do not) in DIR
 * (default /dev/shm), mapped MAP_SHARED as QEMU maps
 * memory-backend-file,share=on, it times the transport's own functions:
 *
 *   open            cpr_binding_open() on a fresh mapping: seed, identity,
 *                   media class, and mapping in the 64 pages the commit
 *                   will sample (out_open, while the VM still runs)
 *   commit          cpr_binding_commit(): fstat and the XXH3 of the 64
 *                   sampled pages through the fault guard - what
 *                   out_commit adds to the pause for each block
 *   commit, cold    the same after the pages left the page tables again
 *                   (a fresh mapping): every sampled page faults in (on
 *                   the sparse file, tmpfs allocates it) - the worst case
 *   verify          cpr_binding_verify() as in_open runs it on a fresh
 *                   mapping (a restarted QEMU): identity, mtime, the 64
 *                   pages and the command line (not in the pause)
 *
 * Medians over REPS runs, in µs, as "key value" lines and a table.
 */
#include "micro-time.h"
#include "binding.h"
#include "format.h"
#include "image-file.h"
#include "metadata.h"
#include "vmdesc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define GiB (1ull << 30)

static void die(const char *what, const char *err)
{
    fprintf(stderr, "cpr-fingerprint: %s: %s\n", what, err ? err : "failed");
    exit(1);
}

typedef struct Block {
    char path[4096];
    int fd;
    uint64_t size;
    uint8_t *host;
} Block;

static void map_block(Block *b)
{
    b->host = mmap(NULL, b->size, PROT_READ | PROT_WRITE, MAP_SHARED, b->fd,
                   0);
    if (b->host == MAP_FAILED) {
        die(b->path, strerror(errno));
    }
}

static void open_block(Block *b, const char *dir, uint64_t size, bool fill)
{
    snprintf(b->path, sizeof(b->path), "%s/cpr-fingerprint-%llu.ram", dir,
             (unsigned long long)(size / GiB));
    unlink(b->path);
    b->fd = open(b->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    b->size = size;
    if (b->fd < 0 || ftruncate(b->fd, (off_t)size) < 0) {
        die(b->path, strerror(errno));
    }
    map_block(b);
    if (fill) {
        for (uint64_t off = 0; off < size; off += 4096) {
            b->host[off] = (uint8_t)(off >> 12);
            b->host[off + 2048] = (uint8_t)(off >> 20);
        }
    }
}

/* The VM of block @b (one at a time: the ABI's VM is kept here). */
static CprVm vm_of(const Block *b, CprRamBlock *rb)
{
    static QemuTransportVm q;

    *rb = (CprRamBlock){ "pc.ram", b->host, b->size, b->fd, 0,
                         CPR_RAM_SHARED };
    q = cpr_vm_abi(rb, 1, "pc-q35-10.0", "qemu64", NULL, 0);
    return (CprVm){ &q, NULL, 0 };
}

static void run(const char *dir, uint64_t size, int reps)
{
    static const CprHost host = { "10.0.13-bench", NULL, NULL };
    const char *image = "/proc/self/exe";   /* any file, for the class */
    double *warm = calloc(reps, sizeof(double));
    double *cold = calloc(reps, sizeof(double));
    double *verify = calloc(reps, sizeof(double));
    double *open_us = calloc(reps, sizeof(double));
    CprMetadata md;
    CprRamBlock rb;
    Block b;
    CprVm vm;
    /* Borrowed descriptor and path: never closed through the image. */
    CprImage img = { .fd = open(image, O_RDONLY | O_CLOEXEC),
                     .path = (char *)image };
    char *err = NULL;

    cpr_metadata_collect(&md, "10.0.13-bench");
    open_block(&b, dir, size, size <= 4 * GiB);
    vm = vm_of(&b, &rb);
    for (int r = 0; r < reps; r++) {
        CprRecord rec = { .version = CPR_REC_VERSION, .generation = 1 };
        CprVmdesc *d;
        double t0;

        /* What QEMU gets: a mapping whose sampled pages out_open mapped
         * in (the guest may never have touched them). */
        munmap(b.host, b.size);
        map_block(&b);
        vm = vm_of(&b, &rb);
        img.classified = false;     /* a save classifies its image anew */
        t0 = now_us();
        d = cpr_binding_open(&host, &md, &vm, &img, &err);
        if (!d) {
            die("cpr_binding_open", err);
        }
        open_us[r] = now_us() - t0;
        t0 = now_us();
        if (cpr_binding_commit(d, NULL, &vm, &img, &err) < 0) {
            die("cpr_binding_commit", err);
        }
        warm[r] = now_us() - t0;
        /* The worst case: the pages are gone from the page tables again
         * (a fresh mapping) when the commit comes. */
        munmap(b.host, b.size);
        map_block(&b);
        vm = vm_of(&b, &rb);
        t0 = now_us();
        if (cpr_binding_commit(d, NULL, &vm, &img, &err) < 0) {
            die("cpr_binding_commit", err);
        }
        cold[r] = now_us() - t0;
        /* Restore: a restarted QEMU maps the file afresh. */
        munmap(b.host, b.size);
        map_block(&b);
        vm = vm_of(&b, &rb);
        t0 = now_us();
        if (cpr_binding_verify(image, &rec, d, &host, &vm, &err) < 0) {
            die("cpr_binding_verify", err);
        }
        verify[r] = now_us() - t0;
        cpr_vmdesc_free(d);
    }
    printf("fingerprint_%lluGiB_open_us %.1f\n",
           (unsigned long long)(size / GiB), median(open_us, reps));
    printf("fingerprint_%lluGiB_commit_warm_us %.1f\n",
           (unsigned long long)(size / GiB), median(warm, reps));
    printf("fingerprint_%lluGiB_commit_cold_us %.1f\n",
           (unsigned long long)(size / GiB), median(cold, reps));
    printf("fingerprint_%lluGiB_verify_us %.1f\n",
           (unsigned long long)(size / GiB), median(verify, reps));
    fflush(stdout);
    fprintf(stderr, "| %llu GiB%s | %.1f | %.1f | %.1f | %.1f |\n",
            (unsigned long long)(size / GiB),
            size <= 4 * GiB ? ", written" : ", sparse", median(open_us, reps),
            median(warm, reps), median(cold, reps), median(verify, reps));
    munmap(b.host, b.size);
    close(b.fd);
    unlink(b.path);
    close(img.fd);
    cpr_metadata_free(&md);
    free(warm);
    free(cold);
    free(verify);
    free(open_us);
}

int main(int argc, char **argv)
{
    bool quick = argc > 1 && !strcmp(argv[1], "--quick");
    const char *dir = argc > 1 + quick ? argv[1 + quick] : "/dev/shm";
    int reps = quick ? 5 : 101;

    fprintf(stderr, "RAM block in %s, medians of %d runs, µs:\n\n"
            "| block | out_open share (VM runs) | out_commit share (pause) "
            "| out_commit, pages unmapped again (worst case) "
            "| in_open share |\n|---|---|---|---|---|\n", dir, reps);
    run(dir, 1 * GiB, reps);
    run(dir, 64 * GiB, reps);
    return 0;
}
